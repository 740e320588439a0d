/* 2x2 stride-2 max-pool on int8 planes with HVX, forward and backward (the error goes to the first
 * maximum of each window in scan order), bit-exact to src/ops/int_simple.c. Floor mode: a last odd
 * row or column belongs to no window (its error is 0). */
#ifndef MH_DSP_HVX_POOL_H
#define MH_DSP_HVX_POOL_H

#include <stdint.h>

#include "vtcm.h"

/* x: planes of h x w; y: planes of (h/2) x (w/2). `end`: first byte past the readable region. */
int mh_hvx_maxpool2_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t planes, uint32_t h, uint32_t w,
                       const int8_t *end);
/* x: the forward input; dy: (h/2) x (w/2) per plane; dx: h x w per plane (written whole). */
int mh_hvx_maxpool2_bwd_s8(mh_vtcm *v, const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t planes, uint32_t h,
                           uint32_t w, const int8_t *end);

#endif
