/* Reference int8 GEMM (the oracle) and the portable int8 micro-kernel on int16 k-pair panels.
 * Integer arithmetic is exact, so every backend must equal these bit for bit. */
#include "backend/cpu/kernels.h"

void mh_gemm_s8_ref(const mh_gemm_s8_args *g) {
  for (int i = 0; i < g->m; i++)
    for (int j = 0; j < g->n; j++) {
      int32_t s = 0;
      for (int p = 0; p < g->k; p++) {
        int32_t a = g->trans_a ? g->a[(size_t)p * g->lda + i] : g->a[(size_t)i * g->lda + p];
        int32_t b = g->trans_b ? mh_gemm_s8_b_row(g, j)[p] : mh_gemm_s8_b_row(g, p)[j];
        s += a * b;
      }
      int32_t *c = &g->c[(size_t)i * g->ldc + j];
      *c = g->accumulate ? *c + s : s;
    }
}

/* 4x8 tile, MR = 4, NR = 8. */
void mh__ukernel_s8_4x8_ref(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate) {
  int32_t acc[4][8] = {{0}};
  for (int p = 0; p < kc2; p++, a += 8, b += 16)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 8; j++) acc[i][j] += a[2 * i] * b[2 * j] + a[2 * i + 1] * b[2 * j + 1];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++) c[(size_t)i * ldc + j] = accumulate ? c[(size_t)i * ldc + j] + acc[i][j] : acc[i][j];
}

/* acc[i] += x[i] * w, exactly in int32 (a depthwise convolution's row). */
void mh__mac_row_s8_ref(int32_t *acc, const int8_t *x, long n, int32_t w) {
  for (long i = 0; i < n; i++) acc[i] += x[i] * w;
}

/* sum of a[i] * b[i], exactly in int32. */
int32_t mh__dot_s8_ref(const int8_t *a, const int8_t *b, long n) {
  int32_t s = 0;
  for (long i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
