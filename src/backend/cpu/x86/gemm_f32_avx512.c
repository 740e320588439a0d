/* AVX-512 FP32 micro-kernel: a 14x32 register tile (28 zmm accumulators, 2 B loads per k, A
 * broadcast from memory into each FMA). Compiled with -mavx512f -mfma; only called after a CPU check. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

#define MH_ROW(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define MH_FMA(i)                                                 \
  do {                                                            \
    __m512 ai = _mm512_set1_ps(a[i]);                             \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                   \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                   \
  } while (0)
#define MH_STORE(i)                                                                 \
  do {                                                                              \
    float *r = c + (size_t)(i)*ldc;                                                 \
    if (accumulate) {                                                               \
      c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(r));                         \
      c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(r + 16));                    \
    }                                                                               \
    _mm512_storeu_ps(r, c##i##0);                                                   \
    _mm512_storeu_ps(r + 16, c##i##1);                                              \
  } while (0)

void mh__ukernel_f32_14x32_avx512(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  MH_ROW(0) MH_ROW(1) MH_ROW(2) MH_ROW(3) MH_ROW(4) MH_ROW(5) MH_ROW(6)
  MH_ROW(7) MH_ROW(8) MH_ROW(9) MH_ROW(10) MH_ROW(11) MH_ROW(12) MH_ROW(13)
  /* the C tile is read (or written) after the K loop: fetch its rows meanwhile */
  for (int i = 0; i < 14; i++) {
    _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
  }
  for (int p = 0; p < kc; p++) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    MH_FMA(0); MH_FMA(1); MH_FMA(2); MH_FMA(3); MH_FMA(4); MH_FMA(5); MH_FMA(6);
    MH_FMA(7); MH_FMA(8); MH_FMA(9); MH_FMA(10); MH_FMA(11); MH_FMA(12); MH_FMA(13);
    a += 14;
    b += 32;
  }
  MH_STORE(0); MH_STORE(1); MH_STORE(2); MH_STORE(3); MH_STORE(4); MH_STORE(5); MH_STORE(6);
  MH_STORE(7); MH_STORE(8); MH_STORE(9); MH_STORE(10); MH_STORE(11); MH_STORE(12); MH_STORE(13);
}
