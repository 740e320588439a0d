/* The int8 GEMM on HVX (128-byte vectors): C (int32) (=|+=) A (int8, m x k) * B (int8, k x n),
 * bit-exact to the host's mh_gemm_s8_ref. Working buffers come from the VTCM arena. */
#ifndef MH_DSP_HVX_GEMM_H
#define MH_DSP_HVX_GEMM_H

#include <stdint.h>

#include "vtcm.h"

/* Returns 0, or MH_WIRE_E_VTCM when even the smallest K chunk does not fit the arena. */
/* The fused epilogue: instead of writing int32 C, add an int32 bias per row (saturating to
 * +-INT32_MAX), shift to int8 with nearest or pseudo-stochastic rounding, saturate, and write y;
 * max|acc + bias| and the saturation count come back. The int32 result never leaves VTCM, so K must
 * fit one VTCM chunk. */
typedef struct mh_gemm_epilogue {
  const int32_t *bias; /* m values, or 0 */
  int8_t *y;
  int ldy, shift, mode;
  uint32_t max_abs, saturated; /* out */
} mh_gemm_epilogue;

/* C (m x n) (=|+=) op(A) (m x k) * op(B) (k x n); op(X) = X, or X^T when trans_x (X then stored
 * as its transpose: A as k rows of m with stride lda, B as n rows of k with stride ldb). */
typedef struct mh_gemm_job {
  int m, n, k;
  const int8_t *a;
  int lda;
  const int8_t *b;
  int ldb;
  int32_t *c;
  int ldc;
  int accumulate, trans_a, trans_b;
  const uint8_t *apack; /* op(A) already packed by mh_hvx_pack_a (a subgraph's weights), or 0 */
  const uint32_t *b_rows; /* stored row i of B at b + b_rows[i] (ldb unused), or 0 */
  int grid_w, grid_h, grid_q, grid_p; /* the fused epilogue measures only these columns (grid_w 0: all) */
  const uint32_t *a_rows; /* row i of A (not transposed) at a + a_rows[i] (lda unused), or 0 */
} mh_gemm_job;

/* *chunks: how many K chunks the VTCM budget forced (1: none). ep: 0 for int32 C. */
int mh_hvx_gemm_s8(mh_vtcm *v, const mh_gemm_job *j, uint32_t *chunks, mh_gemm_epilogue *ep);

/* Packs op(A) (m x k) whole into out (mh_wire_apack_bytes(m, k) bytes, 128-byte aligned): the
 * layout the kernel reads, so a constant operand is packed once and reused by every run. */
void mh_hvx_pack_a(int m, int k, const int8_t *a, int lda, int trans, uint8_t *out);

#endif
