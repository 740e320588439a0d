/* The int8 GEMM on HVX (128-byte vectors): C (int32) (=|+=) A (int8, m x k) * B (int8, k x n),
 * bit-exact to the host's mh_gemm_s8_ref. Working buffers come from the VTCM arena. */
#ifndef MH_DSP_HVX_GEMM_H
#define MH_DSP_HVX_GEMM_H

#include <stdint.h>

#include "vtcm.h"

/* Returns 0, or MH_WIRE_E_VTCM when even the smallest K chunk does not fit the arena. */
/* *chunks: how many K chunks the VTCM budget forced (1: none). */
int mh_hvx_gemm_s8(mh_vtcm *v, int m, int n, int k, const int8_t *a, int lda, const int8_t *b, int ldb, int32_t *c,
                   int ldc, int accumulate, uint32_t *chunks);

#endif
