/* Elementwise int8 kernels on HVX for integer (niti) tensors: ReLU forward (y = max(x, 0)) and
 * backward (dx = y > 0 ? dy : 0), and the exponent-aligned residual add; bit-exact to
 * src/ops/int_simple.c and int_common.c. */
#ifndef MH_DSP_HVX_ELTWISE_H
#define MH_DSP_HVX_ELTWISE_H

#include <stdint.h>

#include "vtcm.h"

/* All pointers 128-byte aligned; n >= 1. Return 0 or a wire status. */
int mh_hvx_relu_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t n);
int mh_hvx_relu_bwd_s8(mh_vtcm *v, const int8_t *y, const int8_t *dy, int8_t *dx, uint32_t n);
/* Residual add with exponent alignment (mh__int_add): both to the larger exponent (nearest), summed,
 * one more bit of shift when a sum leaves [-127, 127]; *ey the result's exponent. y may alias a. */
int mh_hvx_add_s8(mh_vtcm *v, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, uint32_t n, int *ey);

#endif
