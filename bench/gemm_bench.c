/* GEMM speed of every kernel table this CPU has, each against the peak of the instruction it is built
 * on (measured here by register-only loops) and the FP32 GEMM against OpenBLAS (sgemm), same shapes,
 * same thread count, in one run: best of 10 repetitions each.
 *   ./build/gemm_bench [threads [table]]   (built when OpenBLAS is installed: libopenblas-dev) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Peak MAC rate of one core for one instruction: 10 independent accumulator chains (latency hidden)
 * in assembly, so the compiler can neither fold nor vectorise them differently. GMAC/s. */
#if defined(__x86_64__)
#define PEAK_LOOP(insn, reg)                                                                                      \
  "vpxor %%xmm0,%%xmm0,%%xmm0\n" /* zero the sources: integer ops then add zeros, floats stay finite */            \
  "vpxor %%xmm1,%%xmm1,%%xmm1\n vpxor %%xmm2,%%xmm2,%%xmm2\n vpxor %%xmm3,%%xmm3,%%xmm3\n"                         \
  "vpxor %%xmm4,%%xmm4,%%xmm4\n vpxor %%xmm5,%%xmm5,%%xmm5\n vpxor %%xmm6,%%xmm6,%%xmm6\n"                         \
  "vpxor %%xmm7,%%xmm7,%%xmm7\n vpxor %%xmm8,%%xmm8,%%xmm8\n vpxor %%xmm9,%%xmm9,%%xmm9\n"                         \
  "vpxor %%xmm10,%%xmm10,%%xmm10\n vpxor %%xmm11,%%xmm11,%%xmm11\n"                                                \
  "1:\n" insn " %%" reg "10,%%" reg "11,%%" reg "0\n" insn " %%" reg "10,%%" reg "11,%%" reg "1\n"                  \
  insn " %%" reg "10,%%" reg "11,%%" reg "2\n" insn " %%" reg "10,%%" reg "11,%%" reg "3\n"                         \
  insn " %%" reg "10,%%" reg "11,%%" reg "4\n" insn " %%" reg "10,%%" reg "11,%%" reg "5\n"                         \
  insn " %%" reg "10,%%" reg "11,%%" reg "6\n" insn " %%" reg "10,%%" reg "11,%%" reg "7\n"                         \
  insn " %%" reg "10,%%" reg "11,%%" reg "8\n" insn " %%" reg "10,%%" reg "11,%%" reg "9\n dec %0\n jnz 1b\n"
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"

enum { PEAK_FMA_YMM, PEAK_FMA_ZMM, PEAK_MADDWD_YMM, PEAK_DPBUSD_YMM, PEAK_DPBUSD_ZMM, N_PEAKS };
static const char *peak_name[N_PEAKS] = {"FP32 FMA ymm", "FP32 FMA zmm", "vpmaddwd ymm", "vpdpbusd ymm (AVX-VNNI)",
                                         "vpdpbusd zmm"};
/* MACs per instruction: 8 or 16 float lanes; vpmaddwd 16 int16 products; vpdpbusd 4 per 32-bit lane */
static const double peak_macs[N_PEAKS] = {8, 16, 16, 32, 64};

static double peak_gmacs(int which) {
  long iters = 50000000;
  double t = now();
  switch (which) {
    case PEAK_FMA_YMM: __asm__ volatile(PEAK_LOOP("vfmadd231ps", "ymm") : "+r"(iters)::CLOBBERS); break;
    case PEAK_FMA_ZMM: __asm__ volatile(PEAK_LOOP("vfmadd231ps", "zmm") : "+r"(iters)::CLOBBERS); break;
    case PEAK_MADDWD_YMM: __asm__ volatile(PEAK_LOOP("vpmaddwd", "ymm") : "+r"(iters)::CLOBBERS); break;
    case PEAK_DPBUSD_YMM: __asm__ volatile(PEAK_LOOP("%{vex%} vpdpbusd", "ymm") : "+r"(iters)::CLOBBERS); break;
    case PEAK_DPBUSD_ZMM: __asm__ volatile(PEAK_LOOP("vpdpbusd", "zmm") : "+r"(iters)::CLOBBERS); break;
  }
  t = now() - t;
  return 5e7 * 10 * peak_macs[which] / t * 1e-9;
}
#endif

/* The instruction each table's kernels are bound by (-1: none measured). */
static void table_peaks(const mh_cpu_kernels *kt, int *f32, int *s8) {
  *f32 = *s8 = -1;
#if defined(__x86_64__)
  if (!strcmp(kt->isa, "avx2")) *f32 = PEAK_FMA_YMM, *s8 = PEAK_MADDWD_YMM;
  if (!strcmp(kt->isa, "avxvnni")) *f32 = PEAK_FMA_YMM, *s8 = PEAK_DPBUSD_YMM;
  if (!strcmp(kt->isa, "avx512")) *f32 = PEAK_FMA_ZMM, *s8 = PEAK_MADDWD_YMM;
  if (!strcmp(kt->isa, "avx512vnni")) *f32 = PEAK_FMA_ZMM, *s8 = PEAK_DPBUSD_ZMM;
#endif
}

int main(int argc, char **argv) {
  int th = argc > 1 ? atoi(argv[1]) : 2;
  const char *only = argc > 2 ? argv[2] : NULL; /* one kernel table, by name */
  mh_pool *pool;
  if (th < 1 || mh_pool_init(&pool, th)) return 1;
  openblas_set_num_threads(th);
  const mh_cpu_info *cpu = mh_cpu_info_get();
  printf("cpu: %s (family %d, model %d), %d thread%s\n", cpu->brand, cpu->family, cpu->model, th, th > 1 ? "s" : "");
  double peak[8] = {0};
#if defined(__x86_64__)
  unsigned need[N_PEAKS] = {MH_CPU_AVX2, MH_CPU_AVX512, MH_CPU_AVX2, MH_CPU_AVXVNNI, MH_CPU_AVX512VNNI};
  printf("peak of one core, register-only loops:\n");
  for (int p = 0; p < N_PEAKS; p++) {
    if ((cpu->isa & need[p]) != need[p]) {
      printf("  %-24s not supported here\n", peak_name[p]);
      continue;
    }
    peak[p] = peak_gmacs(p);
    printf("  %-24s %7.1f GMAC/s (%.1f GFLOP/s)\n", peak_name[p], peak[p], 2 * peak[p]);
  }
#endif
  const int shapes[][3] = {{32, 3136, 288}, {64, 1024, 576}, {128, 1024, 1152}, {256, 512, 2304}, {512, 512, 4608},
                           {256, 1024, 2304}};
  printf("\n%-11s %-17s %10s %9s %9s %10s %9s\n", "table", "m x n x k", "fp32 GMAC", "/peak", "/OpenBLAS",
         "int8 GMAC", "/peak");
  for (int ti = 0; mh_cpu_kernels_at(ti); ti++) {
    const mh_cpu_kernels *kt = mh_cpu_kernels_at(ti);
    if (!mh_cpu_kernels_available(kt) || !strcmp(kt->isa, "ref") || (only && strcmp(kt->isa, only))) continue;
    int pf, ps;
    table_peaks(kt, &pf, &ps);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
      float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
      int8_t *a8 = malloc((size_t)m * k), *b8 = malloc((size_t)k * n);
      int32_t *c32 = malloc(sizeof(int32_t) * m * n);
      for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) - 3, a8[i] = (int8_t)(i % 7 - 3);
      for (long i = 0; i < (long)k * n; i++) b[i] = (float)(i % 5) - 2, b8[i] = (int8_t)(i % 5 - 2);
      mh_gemm_f32_args g = {m, n, k, a, k, 0, b, n, 0, c, n, 0};
      mh_gemm_s8_args g8 = {m, n, k, a8, k, 0, b8, n, 0, c32, n, 0};
      double best = 1e9, best_blas = 1e9, best8 = 1e9;
      for (int r = 0; r < 10; r++) {
        double t = now();
        mh_gemm_f32(kt, pool, &g);
        t = now() - t;
        best = t < best ? t : best;
        t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
        t = now() - t;
        best_blas = t < best_blas ? t : best_blas;
        t = now();
        mh_gemm_s8(kt, pool, &g8);
        t = now() - t;
        best8 = t < best8 ? t : best8;
      }
      double macs = (double)m * n * k * 1e-9;
      char shape[32];
      snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
      printf("%-11s %-17s %10.1f %8.0f%% %8.2fx %10.1f %8.0f%%\n", kt->isa, shape, macs / best,
             pf >= 0 && peak[pf] > 0 ? 100 * macs / best / (peak[pf] * th) : 0, best_blas / best, macs / best8,
             ps >= 0 && peak[ps] > 0 ? 100 * macs / best8 / (peak[ps] * th) : 0);
      free(a), free(b), free(c), free(a8), free(b8), free(c32);
    }
  }
  printf("(GMAC/s for %d thread%s; /peak against the table's instruction peak x threads; /OpenBLAS > 1 is faster)\n",
         th, th > 1 ? "s" : "");
  mh_pool_free(pool);
  return 0;
}
