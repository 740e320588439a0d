/* AVX-512 float -> int8 quantiser, 64 values per iteration: the AVX2 kernel's operations on 16 lanes
 * (an exact power-of-two multiply, one add, truncating conversion; the stochastic hash in 32-bit
 * lanes), so results match the reference bit for bit. Compiled with -mavx512f -mavx512bw. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"
#include "quant/qformat.h"

void mh__quant_f32_s8_ref(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);

static inline __m512i hash16(__m512i v) {
  v = _mm512_xor_si512(v, _mm512_srli_epi32(v, 16));
  v = _mm512_mullo_epi32(v, _mm512_set1_epi32(0x7feb352d));
  v = _mm512_xor_si512(v, _mm512_srli_epi32(v, 15));
  v = _mm512_mullo_epi32(v, _mm512_set1_epi32((int)0x846ca68bu));
  return _mm512_xor_si512(v, _mm512_srli_epi32(v, 16));
}

void mh__quant_f32_s8_avx512(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0) {
  const __m512 sc = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f), mhalf = _mm512_set1_ps(-0.5f);
  const __m512 inv24 = _mm512_set1_ps(1.0f / 16777216.0f);
  const __m512i hi = _mm512_set1_epi32(MH_Q8_MAX), lo = _mm512_set1_epi32(-MH_Q8_MAX), k = _mm512_set1_epi32((int)key);
  __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)index0),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m512i step16 = _mm512_set1_epi32(16);
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), sc);
    __m512i t;
    if (mode == MH_ROUND_STOCH) {
      __m512i r = _mm512_srli_epi32(hash16(_mm512_xor_si512(k, hash16(idx))), 8);
      __m512 a = _mm512_add_ps(v, _mm512_mul_ps(_mm512_cvtepi32_ps(r), inv24));
      t = _mm512_cvttps_epi32(a);
      /* floor: subtract 1 where the truncated value is above a */
      __mmask16 gt = _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(t), a, _CMP_GT_OQ);
      t = _mm512_mask_sub_epi32(t, gt, t, _mm512_set1_epi32(1));
    } else { /* v + copysign(0.5, v): v >= 0 (also -0.0) gets +0.5 */
      __mmask16 ge = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
      t = _mm512_cvttps_epi32(_mm512_add_ps(v, _mm512_mask_blend_ps(ge, mhalf, half)));
    }
    t = _mm512_max_epi32(_mm512_min_epi32(t, hi), lo);
    _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(t));
    idx = _mm512_add_epi32(idx, step16);
  }
  if (i < n) mh__quant_f32_s8_ref(x + i, q + i, n - i, scale, mode, key, index0 + (uint32_t)i);
}
