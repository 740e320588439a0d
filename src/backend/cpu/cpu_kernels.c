/* Run-time selection of the CPU kernel table (CPUID on x86-64; NEON is baseline on arm64).
 * MH_FORCE_REF=1 in the environment forces the portable kernels, for testing. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"

void mh__ukernel_f32_4x8_ref(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__pack_transpose_f32_ref(const float *src, long lds, int cols, int kc, int stride, float *dst);
void mh__ukernel_s8_4x8_ref(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate);
void mh__requant_s8_ref(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                        mh_requant_stats *st);
void mh__quant_f32_s8_ref(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);
#if defined(__x86_64__)
void mh__ukernel_f32_6x16_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__pack_transpose_f32_avx2(const float *src, long lds, int cols, int kc, int stride, float *dst);
void mh__ukernel_s8_6x16_avx2(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate);
void mh__requant_s8_avx2(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                         mh_requant_stats *st);
void mh__quant_f32_s8_avx2(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);
#endif

static const mh_cpu_kernels k_ref = {"ref", 4, 8, mh__ukernel_f32_4x8_ref, mh__pack_transpose_f32_ref,
                                     4, 8, mh__ukernel_s8_4x8_ref, mh__requant_s8_ref, mh__quant_f32_s8_ref};
#if defined(__x86_64__)
static const mh_cpu_kernels k_avx2 = {"avx2", 6, 16, mh__ukernel_f32_6x16_avx2, mh__pack_transpose_f32_avx2,
                                      6, 16, mh__ukernel_s8_6x16_avx2, mh__requant_s8_avx2, mh__quant_f32_s8_avx2};
#endif

const mh_cpu_kernels *mh_cpu_kernels_get(int force_ref) {
  const char *env = getenv("MH_FORCE_REF");
  if (force_ref || (env && strcmp(env, "1") == 0)) return &k_ref;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &k_avx2;
#endif
  return &k_ref;
}
