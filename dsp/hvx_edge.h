/* Vectors at the edges of the shared region and of tensors, for the layout and pool kernels:
 * unaligned vector access, loads and stores that stop at an end, and rows per vector. */
#ifndef MH_DSP_HVX_EDGE_H
#define MH_DSP_HVX_EDGE_H

#include <hexagon_types.h>
#include <stdint.h>

typedef struct {
  HVX_Vector v;
} __attribute__((packed, aligned(1))) uvec;

/* 128 bytes from p, or those below `end` (the rest read 0) when p lies within 128 bytes of it. */
static inline HVX_Vector mh_load_near(const int8_t *p, const int8_t *end) {
  if (end - p >= 128) return ((const uvec *)p)->v;
  union {
    HVX_Vector v;
    int8_t b[128];
  } t;
  for (int i = 0; i < 128; i++) t.b[i] = p + i < end ? p[i] : 0;
  return t.v;
}

/* v's 128 bytes to d when they lie below `lim`; else its first `cnt` bytes, never past lim. A whole
 * store may spill past cnt into bytes the callers write later (they order their stores so). */
static inline void mh_store_prefix(int8_t *d, HVX_Vector v, uint32_t cnt, const int8_t *lim) {
  if (lim - d >= 128) {
    ((uvec *)d)->v = v;
    return;
  }
  union {
    HVX_Vector v;
    int8_t b[128];
  } t;
  t.v = v;
  for (uint32_t i = 0; i < cnt && d + i < lim; i++) d[i] = t.b[i];
}

/* How many rows of `bytes` (1..128) fit in a vector (no division on the DSP). */
static inline uint32_t mh_rows_per_vector(uint32_t bytes) {
  uint32_t r = 0;
  for (uint32_t t = bytes; t <= 128; t += bytes) r++;
  return r;
}

#endif
