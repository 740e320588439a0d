/* GEMM speed against the machine's FP32 FMA peak and against OpenBLAS (sgemm), same shapes, same
 * thread count, in one run: best of 10 repetitions each. Also the int8 GEMM's MAC rate.
 *   ./build/gemm_bench [threads]        (built when OpenBLAS is installed: libopenblas-dev) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/cpu/kernels.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* FP32 FMA peak of one core: 10 independent ymm FMA chains (latency hidden), in assembly so the
 * compiler cannot fold them. Returns GFLOPS. */
static double fma_peak_one_core(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  long iters = 100000000;
  double t = now();
  __asm__ volatile(
      "vxorps %%ymm0,%%ymm0,%%ymm0\n vmovaps %%ymm0,%%ymm1\n vmovaps %%ymm0,%%ymm2\n vmovaps %%ymm0,%%ymm3\n"
      "vmovaps %%ymm0,%%ymm4\n vmovaps %%ymm0,%%ymm5\n vmovaps %%ymm0,%%ymm6\n vmovaps %%ymm0,%%ymm7\n"
      "vmovaps %%ymm0,%%ymm8\n vmovaps %%ymm0,%%ymm9\n vmovaps %%ymm0,%%ymm10\n vmovaps %%ymm0,%%ymm11\n"
      "1:\n vfmadd231ps %%ymm10,%%ymm11,%%ymm0\n vfmadd231ps %%ymm10,%%ymm11,%%ymm1\n"
      "vfmadd231ps %%ymm10,%%ymm11,%%ymm2\n vfmadd231ps %%ymm10,%%ymm11,%%ymm3\n"
      "vfmadd231ps %%ymm10,%%ymm11,%%ymm4\n vfmadd231ps %%ymm10,%%ymm11,%%ymm5\n"
      "vfmadd231ps %%ymm10,%%ymm11,%%ymm6\n vfmadd231ps %%ymm10,%%ymm11,%%ymm7\n"
      "vfmadd231ps %%ymm10,%%ymm11,%%ymm8\n vfmadd231ps %%ymm10,%%ymm11,%%ymm9\n dec %0\n jnz 1b\n"
      : "+r"(iters)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11");
  t = now() - t;
  return 1e8 * 10 * 16 / t * 1e-9;
#else
  return 0;
#endif
}

int main(int argc, char **argv) {
  int th = argc > 1 ? atoi(argv[1]) : 2;
  mh_pool *pool;
  if (mh_pool_init(&pool, th)) return 1;
  openblas_set_num_threads(th);
  const mh_cpu_kernels *kt = mh_cpu_kernels_get(0);
  double peak = fma_peak_one_core();
  printf("FP32 FMA peak: %.1f GFLOPS per core, %.1f for %d threads\n", peak, peak * th, th);
  const int shapes[][3] = {{64, 1024, 576}, {128, 1024, 1152}, {256, 512, 2304}, {512, 512, 4608}, {256, 1024, 2304}};
  printf("%-18s %12s %12s %10s %10s %14s\n", "m x n x k", "ours GFLOPS", "OpenBLAS", "ours/BLAS", "ours/peak",
         "int8 GMAC/s");
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
    double f = 2.0 * m * n * k * 1e-9;
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    printf("%-18s %12.1f %12.1f %9.2fx %9.0f%% %14.1f\n", shape, f / best, f / best_blas, best_blas / best,
           peak > 0 ? 100 * f / best / (peak * th) : 0, f / 2 / best8);
    free(a), free(b), free(c), free(a8), free(b8), free(c32);
  }
  mh_pool_free(pool);
  return 0;
}
