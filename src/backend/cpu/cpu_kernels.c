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
void mh__quant_f32_s8_avx512(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0);
void mh__ukernel_f32_14x32_avx512(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
void mh__pack_quad32_s8_avx2(const uint8_t *const *rows, int col, uint8_t *out);
void mh__ukernel_s8q_6x16_avxvnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c, int ldc,
                                  int accumulate);
void mh__ukernel_s8q_8x48_avx512vnni(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c,
                                     int ldc, int accumulate);
#endif

/* In order of preference: a later table is faster where the CPU has it. */
#define MH_REF_COMMON                                                                                          \
  .requant_s8 = mh__requant_s8_ref, .quant_f32_s8 = mh__quant_f32_s8_ref, .absmax_f32 = mh__absmax_f32_ref,      \
  .mac_row_s8 = mh__mac_row_s8_ref, .dot_s8 = mh__dot_s8_ref
#define MH_AVX2_COMMON                                                                                         \
  .requant_s8 = mh__requant_s8_avx2, .absmax_f32 = mh__absmax_f32_avx2, .mac_row_s8 = mh__mac_row_s8_avx2,       \
  .dot_s8 = mh__dot_s8_avx2
#define MH_AVX2_F32 .mr = 6, .nr = 16, .ukernel_f32 = mh__ukernel_f32_6x16_avx2, .pack_transpose_f32 = mh__pack_transpose_f32_avx2
#define MH_AVX512_F32 .mr = 14, .nr = 32, .ukernel_f32 = mh__ukernel_f32_14x32_avx512, .pack_transpose_f32 = mh__pack_transpose_f32_avx2
static const mh_cpu_kernels k_tables[] = {
    {.isa = "ref", .needs = 0, .mr = 4, .nr = 8, .ukernel_f32 = mh__ukernel_f32_4x8_ref,
     .pack_transpose_f32 = mh__pack_transpose_f32_ref, .mr_s8 = 4, .nr_s8 = 8, .ukernel_s8 = mh__ukernel_s8_4x8_ref,
     MH_REF_COMMON, .f32_desc = "portable C 4x8", .s8_desc = "portable C 4x8 (int16 pairs)", .elt_desc = "portable C"},
#if defined(__x86_64__)
    {.isa = "avx2", .needs = MH_CPU_AVX2, MH_AVX2_F32, .mr_s8 = 6, .nr_s8 = 16, .ukernel_s8 = mh__ukernel_s8_6x16_avx2,
     MH_AVX2_COMMON, .quant_f32_s8 = mh__quant_f32_s8_avx2, .f32_desc = "AVX2 FMA 6x16",
     .s8_desc = "AVX2 vpmaddwd 6x16 (int16 pairs)", .elt_desc = "AVX2"},
    {.isa = "avxvnni", .needs = MH_CPU_AVX2 | MH_CPU_AVXVNNI, MH_AVX2_F32, .mr_s8 = 6, .nr_s8 = 16,
     .ukernel_s8q = mh__ukernel_s8q_6x16_avxvnni, .pack_quad32 = mh__pack_quad32_s8_avx2, MH_AVX2_COMMON, .quant_f32_s8 = mh__quant_f32_s8_avx2,
     .f32_desc = "AVX2 FMA 6x16",
     .s8_desc = "AVX-VNNI vpdpbusd ymm 6x16 (k quads)", .elt_desc = "AVX2"},
    {.isa = "avx512", .needs = MH_CPU_AVX2 | MH_CPU_AVX512, MH_AVX512_F32, .mr_s8 = 6, .nr_s8 = 16,
     .ukernel_s8 = mh__ukernel_s8_6x16_avx2, MH_AVX2_COMMON, .quant_f32_s8 = mh__quant_f32_s8_avx512,
     .f32_desc = "AVX-512 FMA 14x32", .s8_desc = "AVX2 vpmaddwd 6x16 (int16 pairs)",
     .elt_desc = "AVX2, AVX-512 quantiser"},
    {.isa = "avx512vnni", .needs = MH_CPU_AVX2 | MH_CPU_AVX512 | MH_CPU_AVX512VNNI, MH_AVX512_F32, .mr_s8 = 8,
     .nr_s8 = 48, .ukernel_s8q = mh__ukernel_s8q_8x48_avx512vnni, .pack_quad32 = mh__pack_quad32_s8_avx2, MH_AVX2_COMMON,
     .quant_f32_s8 = mh__quant_f32_s8_avx512, .f32_desc = "AVX-512 FMA 14x32",
     .s8_desc = "AVX512-VNNI vpdpbusd zmm 8x48 (k quads)", .elt_desc = "AVX2, AVX-512 quantiser"},
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
