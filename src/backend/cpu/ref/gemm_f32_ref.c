/* Reference FP32 GEMM (the oracle for tests) and the portable micro-kernel.
 * Deliberately unoptimised: clarity over speed. */
#include "backend/cpu/kernels.h"

void mh_gemm_f32_ref(const mh_gemm_f32_args *g) {
  for (int i = 0; i < g->m; i++)
    for (int j = 0; j < g->n; j++) {
      double s = 0;
      for (int p = 0; p < g->k; p++) {
        float a = g->trans_a ? g->a[(size_t)p * g->lda + i] : g->a[(size_t)i * g->lda + p];
        float b;
        if (g->pack_b) g->pack_b(g->pack_b_ctx, p, 1, j, 1, 1, &b); /* a 1x1 "panel" */
        else b = g->trans_b ? g->b[(size_t)j * g->ldb + p] : g->b[(size_t)p * g->ldb + j];
        s += (double)a * b;
      }
      float *c = &g->c[(size_t)i * g->ldc + j];
      *c = g->accumulate ? *c + (float)s : (float)s;
    }
}

/* 4x8 portable micro-kernel (MR=4, NR=8); compilers vectorise the j loop. */
void mh__ukernel_f32_4x8_ref(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  float acc[4][8] = {{0}};
  for (int p = 0; p < kc; p++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 8; j++) acc[i][j] += a[p * 4 + i] * b[p * 8 + j];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++) c[(size_t)i * ldc + j] = accumulate ? c[(size_t)i * ldc + j] + acc[i][j] : acc[i][j];
}

void mh__pack_transpose_f32_ref(const float *src, long lds, int cols, int kc, int stride, float *dst) {
  for (int p = 0; p < kc; p++) {
    for (int c = 0; c < cols; c++) dst[(long)p * stride + c] = src[c * lds + p];
    for (int c = cols; c < stride; c++) dst[(long)p * stride + c] = 0.f;
  }
}
