/* The DSP's VTCM arena: a bump allocator over a fixed budget (256 KB on v66). The emulator does not
 * model VTCM, so the budget is enforced here: kernels that need more must split their work. */
#ifndef MH_DSP_VTCM_H
#define MH_DSP_VTCM_H

#include <stdint.h>

typedef struct mh_vtcm {
  uint8_t *base;
  uint32_t size, used, peak;
} mh_vtcm;

/* 128-byte aligned bytes from the arena, or 0 when the budget is exhausted. */
static inline void *mh_vtcm_alloc(mh_vtcm *v, uint32_t bytes) {
  uint32_t off = (v->used + 127u) & ~127u;
  if (bytes > v->size || off > v->size - bytes) return 0;
  v->used = off + bytes;
  if (v->used > v->peak) v->peak = v->used;
  return v->base + off;
}
static inline void mh_vtcm_reset(mh_vtcm *v) { v->used = 0; }

#endif
