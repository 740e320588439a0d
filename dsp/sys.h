/* Linux system calls for the freestanding DSP program under qemu-hexagon: trap0(#1) with the
 * number in r6 and arguments in r0-r5 (the asm-generic numbering). No libc. */
#ifndef MH_DSP_SYS_H
#define MH_DSP_SYS_H

#define MH_SYS_READ 63
#define MH_SYS_WRITE 64
#define MH_SYS_EXIT_GROUP 94
#define MH_SYS_MUNMAP 215
#define MH_SYS_MMAP2 222

static inline long mh_sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r0 __asm__("r0") = a, r1 __asm__("r1") = b, r2 __asm__("r2") = c;
  register long r3 __asm__("r3") = d, r4 __asm__("r4") = e, r5 __asm__("r5") = f, r6 __asm__("r6") = n;
  __asm__ volatile("trap0(#1)" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r6) : "memory");
  return r0;
}

static inline long mh_sys_read(int fd, void *buf, unsigned long n) { return mh_sys6(MH_SYS_READ, fd, (long)buf, (long)n, 0, 0, 0); }
static inline long mh_sys_write(int fd, const void *buf, unsigned long n) {
  return mh_sys6(MH_SYS_WRITE, fd, (long)buf, (long)n, 0, 0, 0);
}
/* mmap2(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0) */
static inline void *mh_sys_map_shared(int fd, unsigned long len) {
  return (void *)mh_sys6(MH_SYS_MMAP2, 0, (long)len, 3, 1, fd, 0);
}
static inline long mh_sys_munmap(void *p, unsigned long len) { return mh_sys6(MH_SYS_MUNMAP, (long)p, (long)len, 0, 0, 0, 0); }
static inline void mh_sys_exit(int code) {
  mh_sys6(MH_SYS_EXIT_GROUP, code, 0, 0, 0, 0, 0);
  for (;;) {
  }
}

#endif
