/* AVX2 int8 micro-kernel, 6x16: operands pre-widened to int16 k-pairs, vpmaddwd multiplies a row's
 * broadcast pair by 16 columns' pairs into 8 exact int32 sums per instruction (no VNNI, and no
 * vpmaddubsw, whose int16 saturation would break exactness). Only called after a CPUID check. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"

void mh__ukernel_s8_6x16_avx2(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int p = 0; p < kc2; p++) {
    __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 16));
    int32_t pr[6];
    memcpy(pr, a, sizeof pr); /* row i's pair (k, k+1) as one 32-bit lane */
    __m256i a0 = _mm256_set1_epi32(pr[0]), a1 = _mm256_set1_epi32(pr[1]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a0, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a0, b1));
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a1, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a1, b1));
    __m256i a2 = _mm256_set1_epi32(pr[2]), a3 = _mm256_set1_epi32(pr[3]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(a2, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(a2, b1));
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(a3, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(a3, b1));
    __m256i a4 = _mm256_set1_epi32(pr[4]), a5 = _mm256_set1_epi32(pr[5]);
    c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(a4, b0));
    c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(a4, b1));
    c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(a5, b0));
    c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(a5, b1));
    a += 12;
    b += 32;
  }
#define MH_STORE_ROW_S8(i, x0, x1)                                                          \
  do {                                                                                      \
    int32_t *r = c + (size_t)(i)*ldc;                                                       \
    if (accumulate) {                                                                       \
      x0 = _mm256_add_epi32(x0, _mm256_loadu_si256((const __m256i *)r));                    \
      x1 = _mm256_add_epi32(x1, _mm256_loadu_si256((const __m256i *)(r + 8)));              \
    }                                                                                       \
    _mm256_storeu_si256((__m256i *)r, x0);                                                  \
    _mm256_storeu_si256((__m256i *)(r + 8), x1);                                            \
  } while (0)
  MH_STORE_ROW_S8(0, c00, c01);
  MH_STORE_ROW_S8(1, c10, c11);
  MH_STORE_ROW_S8(2, c20, c21);
  MH_STORE_ROW_S8(3, c30, c31);
  MH_STORE_ROW_S8(4, c40, c41);
  MH_STORE_ROW_S8(5, c50, c51);
#undef MH_STORE_ROW_S8
}

/* acc[i] += x[i] * w: int8 widened to int16, multiplied by w in int16 (|x * w| <= 127 * 127 fits),
 * widened to int32 and added: 16 elements per step. w is an int8 value. */
void mh__mac_row_s8_avx2(int32_t *acc, const int8_t *x, long n, int32_t w) {
  const __m256i wv = _mm256_set1_epi16((int16_t)w);
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i p = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + i))), wv);
    __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)), hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1));
    _mm256_storeu_si256((__m256i *)(acc + i), _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i)), lo));
    _mm256_storeu_si256((__m256i *)(acc + i + 8), _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i + 8)), hi));
  }
  for (; i < n; i++) acc[i] += x[i] * w;
}

/* sum of a[i] * b[i]: int16 products summed in pairs by vpmaddwd into int32 lanes, 16 per step. */
int32_t mh__dot_s8_avx2(const int8_t *a, const int8_t *b, long n) {
  __m256i s = _mm256_setzero_si256();
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
    __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
  }
  int32_t l[8], r = 0;
  _mm256_storeu_si256((__m256i *)l, s);
  for (int k = 0; k < 8; k++) r += l[k];
  for (; i < n; i++) r += a[i] * b[i];
  return r;
}

/* 32 columns of 4 rows of B (k..k+3, from column col) into 32 k-quads (128 bytes) of u8 = value + 128:
 * byte and halfword interleaves within 128-bit lanes, then the lanes put in column order. */
void mh__pack_quad32_s8_avx2(const uint8_t *const *rows, int col, uint8_t *out) {
  const __m256i x80 = _mm256_set1_epi8((char)0x80);
  __m256i r0 = _mm256_loadu_si256((const __m256i *)(rows[0] + col)), r1 = _mm256_loadu_si256((const __m256i *)(rows[1] + col));
  __m256i r2 = _mm256_loadu_si256((const __m256i *)(rows[2] + col)), r3 = _mm256_loadu_si256((const __m256i *)(rows[3] + col));
  __m256i a = _mm256_unpacklo_epi8(r0, r1), b = _mm256_unpackhi_epi8(r0, r1);
  __m256i c = _mm256_unpacklo_epi8(r2, r3), d = _mm256_unpackhi_epi8(r2, r3);
  /* per 128-bit lane L: q0 = columns 16L+0..3, q1 = 4..7, q2 = 8..11, q3 = 12..15 */
  __m256i q0 = _mm256_unpacklo_epi16(a, c), q1 = _mm256_unpackhi_epi16(a, c);
  __m256i q2 = _mm256_unpacklo_epi16(b, d), q3 = _mm256_unpackhi_epi16(b, d);
  _mm256_storeu_si256((__m256i *)out, _mm256_xor_si256(_mm256_permute2x128_si256(q0, q1, 0x20), x80));
  _mm256_storeu_si256((__m256i *)(out + 32), _mm256_xor_si256(_mm256_permute2x128_si256(q2, q3, 0x20), x80));
  _mm256_storeu_si256((__m256i *)(out + 64), _mm256_xor_si256(_mm256_permute2x128_si256(q0, q1, 0x31), x80));
  _mm256_storeu_si256((__m256i *)(out + 96), _mm256_xor_si256(_mm256_permute2x128_si256(q2, q3, 0x31), x80));
}
