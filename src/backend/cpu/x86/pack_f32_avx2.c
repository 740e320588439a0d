/* AVX2 packing for the GEMM driver's transposing cases: 8x8 register transposes instead of
 * element-wise strided copies (those cost more than the multiply when a conv's weight-gradient
 * GEMM reads its column matrix transposed). Compiled with -mavx2; called after a CPUID check. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

/* r0..r7 (rows) -> columns, in place */
static inline void transpose8(__m256 *r) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dst[p*nr + c] = src[c*lds + p] for c < cols (<= nr), p < kc; zero for c in [cols, nr). */
void mh__pack_transpose_f32_avx2(const float *src, long lds, int cols, int kc, int nr, float *dst) {
  int c0 = 0;
  for (; c0 + 8 <= cols; c0 += 8) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + (c0 + i) * lds + p);
      transpose8(r);
      for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (long)(p + i) * nr + c0, r[i]);
    }
    for (; p < kc; p++)
      for (int i = 0; i < 8; i++) dst[(long)p * nr + c0 + i] = src[(c0 + i) * lds + p];
  }
  for (int p = 0; p < kc; p++) {
    for (int c = c0; c < cols; c++) dst[(long)p * nr + c] = src[c * lds + p];
    for (int c = cols; c < nr; c++) dst[(long)p * nr + c] = 0.f;
  }
}
