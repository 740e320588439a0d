/* The few compiler support routines a freestanding Hexagon program needs (no libc, no libgcc):
 * clang emits calls to these for struct copies and large initialisers. */
#include <stddef.h>
#include <stdint.h>

/* Byte loops through volatile pointers, so the compiler cannot turn them back into calls. */
void *memcpy(void *dst, const void *src, size_t n) {
  volatile uint8_t *d = dst;
  const volatile uint8_t *s = src;
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  volatile uint8_t *d = dst;
  for (size_t i = 0; i < n; i++) d[i] = (uint8_t)c;
  return dst;
}

/* Hexagon's copy helper for blocks of at least 32 bytes, a multiple of 8, that are *likely* 8-byte
 * aligned: clang calls it for structs of 4-byte alignment too, so a pair of pointers that is not
 * 8-byte aligned goes word by word (a misaligned 8-byte access faults on the DSP; qemu-hexagon 7.2
 * aborts on one that crosses a page). */
void *__hexagon_memcpy_likely_aligned_min32bytes_mult8bytes(void *dst, const void *src, size_t n) {
  if ((((uintptr_t)dst | (uintptr_t)src) & 7u) == 0) {
    volatile uint64_t *d = dst;
    const volatile uint64_t *s = src;
    for (size_t i = 0; i < n / 8; i++) d[i] = s[i];
  } else if ((((uintptr_t)dst | (uintptr_t)src) & 3u) == 0) {
    volatile uint32_t *d = dst;
    const volatile uint32_t *s = src;
    for (size_t i = 0; i < n / 4; i++) d[i] = s[i];
  } else
    memcpy(dst, src, n);
  return dst;
}
