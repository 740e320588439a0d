/* Elementwise int8 kernels on HVX for integer (niti) tensors: ReLU forward (y = max(x, 0)) and
 * backward (dx = y > 0 ? dy : 0), bit-exact to src/ops/int_simple.c. */
#ifndef MH_DSP_HVX_ELTWISE_H
#define MH_DSP_HVX_ELTWISE_H

#include <stdint.h>

#include "vtcm.h"

/* All pointers 128-byte aligned; n >= 1. Return 0 or a wire status. */
int mh_hvx_relu_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t n);
int mh_hvx_relu_bwd_s8(mh_vtcm *v, const int8_t *y, const int8_t *dy, int8_t *dx, uint32_t n);

#endif
