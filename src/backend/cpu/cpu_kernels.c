/* Run-time selection of the CPU kernel table: the tables this build has, each usable only where
 * CPUID and the OS allow (cpu_features.c); NEON is baseline on arm64. MH_FORCE_REF=1 forces the
 * portable kernels, MH_ISA=name (or --isa) a named table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"
#include "core/status.h"

void mh__ukernel_f32_4x8_ref(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__pack_transpose_f32_ref(const float *src, long lds, int cols, int kc, int stride, float *dst);
void mh__ukernel_s8_4x8_ref(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate);
void mh__requant_s8_ref(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                        mh_requant_stats *st);
void mh__quant_f32_s8_ref(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);
float mh__absmax_f32_ref(const float *x, long n);
void mh__mac_row_s8_ref(int32_t *acc, const int8_t *x, long n, int32_t w);
int32_t mh__dot_s8_ref(const int8_t *a, const int8_t *b, long n);
#if defined(__x86_64__)
void mh__ukernel_f32_6x16_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__pack_transpose_f32_avx2(const float *src, long lds, int cols, int kc, int stride, float *dst);
void mh__ukernel_s8_6x16_avx2(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate);
void mh__requant_s8_avx2(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                         mh_requant_stats *st);
void mh__quant_f32_s8_avx2(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);
float mh__absmax_f32_avx2(const float *x, long n);
void mh__mac_row_s8_avx2(int32_t *acc, const int8_t *x, long n, int32_t w);
int32_t mh__dot_s8_avx2(const int8_t *a, const int8_t *b, long n);
void mh__ukernel_f32_14x32_avx512(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__ukernel_s8q_6x16_avxvnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c, int ldc,
                                  int accumulate);
void mh__ukernel_s8q_14x32_avx512vnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c,
                                      int ldc, int accumulate);
#endif

/* In order of preference: a later table is faster where the CPU has it. */
static const mh_cpu_kernels k_tables[] = {
    {"ref", 0, 4, 8, mh__ukernel_f32_4x8_ref, mh__pack_transpose_f32_ref, 4, 8, mh__ukernel_s8_4x8_ref, NULL,
     mh__requant_s8_ref, mh__quant_f32_s8_ref, mh__absmax_f32_ref, mh__mac_row_s8_ref, mh__dot_s8_ref, "portable C 4x8", "portable C 4x8 (int16 pairs)", "portable C"},
#if defined(__x86_64__)
    {"avx2", MH_CPU_AVX2, 6, 16, mh__ukernel_f32_6x16_avx2, mh__pack_transpose_f32_avx2, 6, 16,
     mh__ukernel_s8_6x16_avx2, NULL, mh__requant_s8_avx2, mh__quant_f32_s8_avx2, mh__absmax_f32_avx2, mh__mac_row_s8_avx2, mh__dot_s8_avx2, "AVX2 FMA 6x16",
     "AVX2 vpmaddwd 6x16 (int16 pairs)", "AVX2"},
    {"avxvnni", MH_CPU_AVX2 | MH_CPU_AVXVNNI, 6, 16, mh__ukernel_f32_6x16_avx2, mh__pack_transpose_f32_avx2, 6, 16,
     NULL, mh__ukernel_s8q_6x16_avxvnni, mh__requant_s8_avx2, mh__quant_f32_s8_avx2, mh__absmax_f32_avx2, mh__mac_row_s8_avx2, mh__dot_s8_avx2, "AVX2 FMA 6x16",
     "AVX-VNNI vpdpbusd ymm 6x16 (k quads)", "AVX2"},
    {"avx512", MH_CPU_AVX2 | MH_CPU_AVX512, 14, 32, mh__ukernel_f32_14x32_avx512, mh__pack_transpose_f32_avx2, 6, 16,
     mh__ukernel_s8_6x16_avx2, NULL, mh__requant_s8_avx2, mh__quant_f32_s8_avx2, mh__absmax_f32_avx2, mh__mac_row_s8_avx2, mh__dot_s8_avx2, "AVX-512 FMA 14x32",
     "AVX2 vpmaddwd 6x16 (int16 pairs)", "AVX2"},
    {"avx512vnni", MH_CPU_AVX2 | MH_CPU_AVX512 | MH_CPU_AVX512VNNI, 14, 32, mh__ukernel_f32_14x32_avx512,
     mh__pack_transpose_f32_avx2, 14, 32, NULL, mh__ukernel_s8q_14x32_avx512vnni, mh__requant_s8_avx2,
     mh__quant_f32_s8_avx2, mh__absmax_f32_avx2, mh__mac_row_s8_avx2, mh__dot_s8_avx2, "AVX-512 FMA 14x32", "AVX512-VNNI vpdpbusd zmm 14x32 (k quads)", "AVX2"},
#endif
};
enum { N_TABLES = (int)(sizeof k_tables / sizeof k_tables[0]) };

const mh_cpu_kernels *mh_cpu_kernels_at(int i) { return i >= 0 && i < N_TABLES ? &k_tables[i] : NULL; }

int mh_cpu_kernels_available(const mh_cpu_kernels *kt) {
  return kt && (mh_cpu_info_get()->isa & kt->needs) == kt->needs;
}

static const mh_cpu_kernels *fastest(void) {
  for (int i = N_TABLES - 1; i > 0; i--)
    if (mh_cpu_kernels_available(&k_tables[i])) return &k_tables[i];
  return &k_tables[0];
}

const mh_cpu_kernels *mh_cpu_kernels_get(int force_ref) {
  const char *env = getenv("MH_FORCE_REF");
  if (force_ref || (env && strcmp(env, "1") == 0)) return &k_tables[0];
  return fastest();
}

int mh_cpu_kernels_select(const char *name, int force_ref, const mh_cpu_kernels **out) {
  const char *how = "--isa";
  if (!name || !*name) {
    const char *env = getenv("MH_ISA");
    if (env && *env) name = env, how = "MH_ISA";
  }
  if (!name || !*name || force_ref) {
    *out = mh_cpu_kernels_get(force_ref);
    return MH_OK;
  }
  char have[128] = "";
  for (int i = 0; i < N_TABLES; i++)
    if (mh_cpu_kernels_available(&k_tables[i]))
      snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", *have ? ", " : "", k_tables[i].isa);
  for (int i = 0; i < N_TABLES; i++) {
    if (strcmp(name, k_tables[i].isa) != 0) continue;
    if (!mh_cpu_kernels_available(&k_tables[i]))
      return mh__error(MH_ERR_UNSUPPORTED, "%s %s: this CPU (%s) lacks it; available here: %s", how, name,
                       mh_cpu_info_get()->brand, have);
    *out = &k_tables[i];
    return MH_OK;
  }
  return mh__error(MH_ERR_INVALID_ARG, "%s %s: unknown instruction set; available here: %s", how, name, have);
}
