/* AVX-VNNI int8 micro-kernel, 6x16: the VEX-encoded vpdpbusd on ymm (8 columns x 4 k per
 * instruction), the same k-quad panels and +128 correction as the AVX512-VNNI kernel. For CPUs with
 * AVX-VNNI but no AVX-512 (and as a 256-bit path on those with both). Only called after a CPU check. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

/* acc += vpdpbusd(b, a) in its VEX form; as inline assembly because GCC 12 spills the tile around
 * its builtin. */
#define MH_DPBUSD(acc, b, a) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(b), "x"(a))

#define MH_ROW(i) __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();
#define MH_DOT(i)                                                           \
  do {                                                                      \
    int32_t q;                                                              \
    __builtin_memcpy(&q, a + 4 * (i), 4);                                   \
    __m256i ai = _mm256_set1_epi32(q);                                      \
    MH_DPBUSD(c##i##0, b0, ai);                                             \
    MH_DPBUSD(c##i##1, b1, ai);                                             \
  } while (0)
#define MH_STORE(i)                                                                        \
  do {                                                                                     \
    int32_t *r = c + (size_t)(i)*ldc;                                                      \
    __m256i k = _mm256_set1_epi32(corr[i]);                                                \
    c##i##0 = _mm256_sub_epi32(c##i##0, k), c##i##1 = _mm256_sub_epi32(c##i##1, k);        \
    if (accumulate) {                                                                      \
      c##i##0 = _mm256_add_epi32(c##i##0, _mm256_loadu_si256((const __m256i *)r));         \
      c##i##1 = _mm256_add_epi32(c##i##1, _mm256_loadu_si256((const __m256i *)(r + 8)));   \
    }                                                                                      \
    _mm256_storeu_si256((__m256i *)r, c##i##0);                                            \
    _mm256_storeu_si256((__m256i *)(r + 8), c##i##1);                                      \
  } while (0)

void mh__ukernel_s8q_6x16_avxvnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c, int ldc,
                                  int accumulate) {
  MH_ROW(0) MH_ROW(1) MH_ROW(2) MH_ROW(3) MH_ROW(4) MH_ROW(5)
  for (int p = 0; p < kq; p++) {
    __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
    MH_DOT(0); MH_DOT(1); MH_DOT(2); MH_DOT(3); MH_DOT(4); MH_DOT(5);
    a += 6 * 4;
    b += 16 * 4;
  }
  MH_STORE(0); MH_STORE(1); MH_STORE(2); MH_STORE(3); MH_STORE(4); MH_STORE(5);
}
