/* AVX512-VNNI int8 micro-kernel, 8x48: vpdpbusd multiplies 4 consecutive k of 16 columns (u8, the
 * packed B with +128) by a row's 4 k (s8, broadcast) and adds into 16 int32 sums, exactly. The +128
 * comes back off as 128 x the row's sum of A over the block (corr). Only called after a CPU check. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

/* acc += vpdpbusd(b, a): GCC 12's builtin confines vpdpbusd to zmm0-15, which spills the accumulator
 * tile to the stack on every k; the instruction itself may use all 32 registers. */
#define MH_DPBUSD(acc, b, a) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(b), "v"(a))

/* 24 accumulators, 3 B vectors per k quad. Eight rows divide the channel counts convolutions have
 * (32, 64, 128, ...), where 14-row panels (a 14x32 tile) left a mostly empty last one. */
#define MH_ROW3(i) __m512i d##i##0 = _mm512_setzero_si512(), d##i##1 = d##i##0, d##i##2 = d##i##0;
#define MH_DOT3(i)                                                          \
  do {                                                                      \
    int32_t q;                                                              \
    __builtin_memcpy(&q, a + 4 * (i), 4);                                   \
    __m512i ai = _mm512_set1_epi32(q);                                      \
    MH_DPBUSD(d##i##0, b0, ai);                                             \
    MH_DPBUSD(d##i##1, b1, ai);                                             \
    MH_DPBUSD(d##i##2, b2, ai);                                             \
  } while (0)
#define MH_STORE3(i)                                                                       \
  do {                                                                                     \
    int32_t *r = c + (size_t)(i)*ldc;                                                      \
    __m512i k = _mm512_set1_epi32(corr[i]);                                                \
    d##i##0 = _mm512_sub_epi32(d##i##0, k), d##i##1 = _mm512_sub_epi32(d##i##1, k);        \
    d##i##2 = _mm512_sub_epi32(d##i##2, k);                                                \
    if (accumulate) {                                                                      \
      d##i##0 = _mm512_add_epi32(d##i##0, _mm512_loadu_si512(r));                          \
      d##i##1 = _mm512_add_epi32(d##i##1, _mm512_loadu_si512(r + 16));                     \
      d##i##2 = _mm512_add_epi32(d##i##2, _mm512_loadu_si512(r + 32));                     \
    }                                                                                      \
    _mm512_storeu_si512(r, d##i##0);                                                       \
    _mm512_storeu_si512(r + 16, d##i##1);                                                  \
    _mm512_storeu_si512(r + 32, d##i##2);                                                  \
  } while (0)

void mh__ukernel_s8q_8x48_avx512vnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c,
                                     int ldc, int accumulate) {
  MH_ROW3(0) MH_ROW3(1) MH_ROW3(2) MH_ROW3(3) MH_ROW3(4) MH_ROW3(5) MH_ROW3(6) MH_ROW3(7)
  for (int p = 0; p < kq; p++) {
    __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64), b2 = _mm512_loadu_si512(b + 128);
    MH_DOT3(0); MH_DOT3(1); MH_DOT3(2); MH_DOT3(3); MH_DOT3(4); MH_DOT3(5); MH_DOT3(6); MH_DOT3(7);
    a += 8 * 4;
    b += 48 * 4;
  }
  MH_STORE3(0); MH_STORE3(1); MH_STORE3(2); MH_STORE3(3); MH_STORE3(4); MH_STORE3(5); MH_STORE3(6); MH_STORE3(7);
}
