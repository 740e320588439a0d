/* AVX2 requantise epilogue, 32 elements per iteration: magnitude via vpabsd, the three rounding
 * modes on the magnitude (stochastic hashes in 32-bit lanes), saturation counted before the clamp,
 * sign restored, packed to int8. Bit-exact to the reference; compiled with -mavx2. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/x86/qhash_avx2.h"
#include "quant/qformat.h"

void mh__requant_s8_ref(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                        mh_requant_stats *st);

/* 8 lanes: rounded magnitude (before saturation) of x, updating the running max of |x|. */
static inline __m256i round8(__m256i x, int s, int mode, __m256i *mx, __m256i idx, uint32_t key) {
  __m256i a = _mm256_abs_epi32(x); /* INT32_MIN stays 0x80000000 = 2^31 read unsigned */
  *mx = _mm256_max_epu32(*mx, a);
  if (s == 0) return a;
  __m128i sc = _mm_cvtsi32_si128(s);
  __m256i q = _mm256_srl_epi32(a, sc), up;
  __m256i mask = _mm256_set1_epi32((int)((1u << s) - 1u)), r = _mm256_and_si256(a, mask);
  if (mode == MH_ROUND_NEAREST) {
    up = _mm256_and_si256(_mm256_srl_epi32(a, _mm_cvtsi32_si128(s - 1)), _mm256_set1_epi32(1));
    return _mm256_add_epi32(q, up);
  }
  __m256i cmp_with;
  if (mode == MH_ROUND_PSTO) {
    int h = s >> 1;
    __m256i hi = _mm256_srl_epi32(r, _mm_cvtsi32_si128(h));
    __m256i lo = _mm256_and_si256(r, _mm256_set1_epi32((int)((1u << h) - 1u)));
    if (s & 1) lo = _mm256_slli_epi32(lo, 1);
    /* hi > lo: both < 2^31, so the signed compare is the unsigned one */
    up = _mm256_cmpgt_epi32(hi, lo);
    return _mm256_sub_epi32(q, up); /* true lanes are -1 */
  }
  /* stochastic: round up when r > (hash32(key ^ hash32(i)) & mask) */
  cmp_with = _mm256_and_si256(mh__q_hash32x8(_mm256_xor_si256(_mm256_set1_epi32((int)key), mh__q_hash32x8(idx))), mask);
  up = _mm256_cmpgt_epi32(r, cmp_with);
  return _mm256_sub_epi32(q, up);
}

void mh__requant_s8_avx2(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                         mh_requant_stats *st) {
  __m256i mx = _mm256_setzero_si256(), satc = _mm256_setzero_si256();
  const __m256i lim = _mm256_set1_epi32(MH_Q8_MAX), step8 = _mm256_set1_epi32(8);
  __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)index0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  long i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; k++) {
      __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i + 8 * k));
      __m256i q = round8(xv, shift, mode, &mx, idx, key);
      idx = _mm256_add_epi32(idx, step8);
      /* q <= 2^31 fits unsigned; q > 127 <=> max_epu32(q, 127) != 127 */
      __m256i over = _mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(q, lim), lim), _mm256_set1_epi32(-1));
      satc = _mm256_sub_epi32(satc, over);
      q = _mm256_min_epu32(q, lim);
      v[k] = _mm256_sign_epi32(q, xv); /* sign(x) * q, and 0 where x == 0 (q is 0 there too) */
    }
    /* int32 -> int8 (values in [-127, 127], so the saturating packs are exact); fix lane order */
    __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
    __m256i b = _mm256_packs_epi16(w01, w23);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(y + i), b);
  }
  uint32_t lanes[8];
  _mm256_storeu_si256((__m256i *)lanes, mx);
  uint32_t m = 0;
  for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
  int32_t sc[8];
  _mm256_storeu_si256((__m256i *)sc, satc);
  long sat = 0;
  for (int k = 0; k < 8; k++) sat += (uint32_t)sc[k];
  if (i < n) { /* the tail by the reference definition */
    mh_requant_stats t;
    mh__requant_s8_ref(x + i, y + i, n - i, shift, mode, key, index0 + (uint32_t)i, &t);
    m = t.max_abs > m ? t.max_abs : m;
    sat += t.saturated;
  }
  st->max_abs = m;
  st->saturated = sat;
}
