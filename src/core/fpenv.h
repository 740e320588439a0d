/* The floating-point environment of training: flush-to-zero and denormals-are-zero. Denormal
 * operands cost ~100x on many x86 cores; gradients drift into that range late in training. */
#ifndef MH_CORE_FPENV_H
#define MH_CORE_FPENV_H

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
typedef unsigned mh_fpenv;
static inline mh_fpenv mh_fpenv_get(void) { return _mm_getcsr(); }
static inline void mh_fpenv_set(mh_fpenv e) { _mm_setcsr(e); }
/* MXCSR bit 15: FTZ, bit 6: DAZ */
static inline mh_fpenv mh_fpenv_ftz(mh_fpenv e) { return e | 0x8040u; }
#elif defined(__aarch64__)
typedef unsigned long mh_fpenv;
static inline mh_fpenv mh_fpenv_get(void) {
  unsigned long v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return v;
}
static inline void mh_fpenv_set(mh_fpenv e) { __asm__ __volatile__("msr fpcr, %0" ::"r"(e)); }
/* FPCR bit 24: FZ */
static inline mh_fpenv mh_fpenv_ftz(mh_fpenv e) { return e | (1ul << 24); }
#else
typedef unsigned mh_fpenv;
static inline mh_fpenv mh_fpenv_get(void) { return 0; }
static inline void mh_fpenv_set(mh_fpenv e) { (void)e; }
static inline mh_fpenv mh_fpenv_ftz(mh_fpenv e) { return e; }
#endif

#endif
