/* The requantise epilogue on HVX: int32 -> int8 by a shift with nearest or NITI pseudo-stochastic
 * rounding and saturation to [-127, 127], measuring max|x| and the saturation count in the same
 * pass; bit-exact to the host's requant_s8 kernels. */
#ifndef MH_DSP_HVX_REQUANT_H
#define MH_DSP_HVX_REQUANT_H

#include <stdint.h>

#include "vtcm.h"

/* x and y 128-byte aligned; n >= 1; shift 0..31; mode 0 nearest, 1 psto. Returns 0 or a wire status. */
int mh_hvx_requant_s8(mh_vtcm *v, const int32_t *x, int8_t *y, uint32_t n, int shift, int mode, uint32_t *max_abs,
                      uint32_t *saturated);

#endif
