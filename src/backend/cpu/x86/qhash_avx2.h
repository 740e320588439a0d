/* The stochastic-rounding hash of quant/qformat.h (mh_q_hash32) in eight 32-bit AVX2 lanes, shared
 * by the AVX2 quantiser and requantise kernels. Include only from files compiled with -mavx2. */
#ifndef MH_BACKEND_CPU_X86_QHASH_AVX2_H
#define MH_BACKEND_CPU_X86_QHASH_AVX2_H

#include <immintrin.h>

static inline __m256i mh__q_hash32x8(__m256i v) {
  v = _mm256_xor_si256(v, _mm256_srli_epi32(v, 16));
  v = _mm256_mullo_epi32(v, _mm256_set1_epi32(0x7feb352d));
  v = _mm256_xor_si256(v, _mm256_srli_epi32(v, 15));
  v = _mm256_mullo_epi32(v, _mm256_set1_epi32((int)0x846ca68bu));
  return _mm256_xor_si256(v, _mm256_srli_epi32(v, 16));
}

#endif
