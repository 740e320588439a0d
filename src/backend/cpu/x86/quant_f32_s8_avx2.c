/* AVX2 float -> int8 quantiser, 32 values per iteration: the same float operations as the reference
 * (an exact power-of-two multiply, one add, truncating conversion), so results match bit for bit;
 * the stochastic hash runs in 32-bit lanes. Compiled with -mavx2. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/x86/qhash_avx2.h"
#include "quant/qformat.h"

void mh__quant_f32_s8_ref(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);

void mh__quant_f32_s8_avx2(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0) {
  const __m256 sc = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
  const __m256 inv24 = _mm256_set1_ps(1.0f / 16777216.0f);
  const __m256i hi = _mm256_set1_epi32(MH_Q8_MAX), lo = _mm256_set1_epi32(-MH_Q8_MAX), k = _mm256_set1_epi32((int)key);
  __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)index0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i step8 = _mm256_set1_epi32(8);
  long i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i t[4];
    for (int j = 0; j < 4; j++) {
      __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), sc);
      if (mode == MH_ROUND_STOCH) {
        __m256i r = _mm256_srli_epi32(mh__q_hash32x8(_mm256_xor_si256(k, mh__q_hash32x8(idx))), 8);
        __m256 a = _mm256_add_ps(v, _mm256_mul_ps(_mm256_cvtepi32_ps(r), inv24));
        __m256i ti = _mm256_cvttps_epi32(a);
        /* floor: subtract 1 where the truncated value is above a (true lanes are -1) */
        ti = _mm256_add_epi32(ti, _mm256_castps_si256(_mm256_cmp_ps(_mm256_cvtepi32_ps(ti), a, _CMP_GT_OQ)));
        t[j] = ti;
      } else {
        /* v + copysign(0.5, v): v >= 0 gets +0.5 (also for -0.0, as the reference's v >= 0 test) */
        __m256 ge = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
        __m256 h = _mm256_blendv_ps(_mm256_or_ps(half, sign), half, ge);
        t[j] = _mm256_cvttps_epi32(_mm256_add_ps(v, h));
      }
      t[j] = _mm256_max_epi32(_mm256_min_epi32(t[j], hi), lo);
      idx = _mm256_add_epi32(idx, step8);
    }
    __m256i w01 = _mm256_packs_epi32(t[0], t[1]), w23 = _mm256_packs_epi32(t[2], t[3]);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(q + i), b);
  }
  if (i < n) mh__quant_f32_s8_ref(x + i, q + i, n - i, scale, mode, key, index0 + (uint32_t)i);
}

/* max |x[i]| with NaN ignored, as the reference: maxps(a, m) returns m when a is NaN. */
float mh__absmax_f32_avx2(const float *x, long n) {
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
  long i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs), m0);
    m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), abs), m1);
    m2 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 16), abs), m2);
    m3 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 24), abs), m3);
  }
  m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  float lanes[8], m = 0.f;
  _mm256_storeu_ps(lanes, m0);
  for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
  for (; i < n; i++) {
    float a = x[i] < 0.f ? -x[i] : x[i];
    m = a > m ? a : m;
  }
  return m;
}
