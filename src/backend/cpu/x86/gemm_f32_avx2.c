/* AVX2+FMA FP32 micro-kernel: a 6x16 register tile (12 ymm accumulators, 2 B loads and
 * 6 broadcasts per k). Compiled with -mavx2 -mfma; only called after a CPUID check. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

void mh__ukernel_f32_6x16_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 a0 = _mm256_broadcast_ss(a + 0), a1 = _mm256_broadcast_ss(a + 1);
    c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
    c10 = _mm256_fmadd_ps(a1, b0, c10); c11 = _mm256_fmadd_ps(a1, b1, c11);
    __m256 a2 = _mm256_broadcast_ss(a + 2), a3 = _mm256_broadcast_ss(a + 3);
    c20 = _mm256_fmadd_ps(a2, b0, c20); c21 = _mm256_fmadd_ps(a2, b1, c21);
    c30 = _mm256_fmadd_ps(a3, b0, c30); c31 = _mm256_fmadd_ps(a3, b1, c31);
    __m256 a4 = _mm256_broadcast_ss(a + 4), a5 = _mm256_broadcast_ss(a + 5);
    c40 = _mm256_fmadd_ps(a4, b0, c40); c41 = _mm256_fmadd_ps(a4, b1, c41);
    c50 = _mm256_fmadd_ps(a5, b0, c50); c51 = _mm256_fmadd_ps(a5, b1, c51);
    a += 6;
    b += 16;
  }
#define MH_STORE_ROW(i, x0, x1)                                                 \
  do {                                                                          \
    float *r = c + (size_t)(i)*ldc;                                             \
    if (accumulate) {                                                           \
      x0 = _mm256_add_ps(x0, _mm256_loadu_ps(r));                               \
      x1 = _mm256_add_ps(x1, _mm256_loadu_ps(r + 8));                           \
    }                                                                           \
    _mm256_storeu_ps(r, x0);                                                    \
    _mm256_storeu_ps(r + 8, x1);                                                \
  } while (0)
  MH_STORE_ROW(0, c00, c01);
  MH_STORE_ROW(1, c10, c11);
  MH_STORE_ROW(2, c20, c21);
  MH_STORE_ROW(3, c30, c31);
  MH_STORE_ROW(4, c40, c41);
  MH_STORE_ROW(5, c50, c51);
#undef MH_STORE_ROW
}
