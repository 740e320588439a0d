/* GEMM: the blocked/packed driver on every kernel table against the oracle, all transpose
 * combinations, odd sizes, accumulate, 1 and 2 threads (results must match bit for bit across threads). */
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/rng.h"
#include "mandheling.h"
#include "testlib.h"
#include "tl_tables.h"

static void fill(float *x, size_t n, mh_rng *r) {
  for (size_t i = 0; i < n; i++) x[i] = mh_rng_uniform(r) * 2.f - 1.f;
}

static void run_case(const mh_cpu_kernels *kt, mh_pool *p1, mh_pool *p2, int m, int n, int k, int ta, int tb,
                     int acc, mh_rng *r) {
  int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  size_t asz = (size_t)(ta ? k : m) * lda, bsz = (size_t)(tb ? n : k) * ldb, csz = (size_t)m * ldc;
  float *a = malloc(asz * 4 + 4), *b = malloc(bsz * 4 + 4), *c0 = malloc(csz * 4 + 4), *c1 = malloc(csz * 4 + 4),
        *c2 = malloc(csz * 4 + 4);
  fill(a, asz, r);
  fill(b, bsz, r);
  fill(c0, csz, r);
  memcpy(c1, c0, csz * 4);
  memcpy(c2, c0, csz * 4);
  mh_gemm_f32_args g = {m, n, k, a, lda, ta, b, ldb, tb, c0, ldc, acc};
  mh_gemm_f32_ref(&g);
  g.c = c1;
  mh_gemm_f32(kt, p1, &g);
  g.c = c2;
  mh_gemm_f32(kt, p2, &g);
  double maxerr = 0;
  int same = 1;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      size_t o = (size_t)i * ldc + j;
      double e = fabs((double)c1[o] - c0[o]);
      if (e > maxerr) maxerr = e;
      if (memcmp(&c1[o], &c2[o], 4)) same = 0;
    }
  /* fp32 accumulation of k products of magnitude <= 1: error bound ~ k * 2^-24 * sqrt(k) scale */
  double tol = 1e-6 * (k + 1) + 1e-6;
  if (maxerr > tol) TL_FAIL("%s m=%d n=%d k=%d ta=%d tb=%d acc=%d: max error %g > %g", kt->isa, m, n, k, ta, tb, acc, maxerr, tol);
  if (!same) TL_FAIL("%s m=%d n=%d k=%d: 1-thread and 2-thread results differ", kt->isa, m, n, k);
  tl_checks += 2;
  free(a), free(b), free(c0), free(c1), free(c2);
}

int main(void) {
  mh_pool *p1, *p2;
  CHECK_OK(mh_pool_init(&p1, 1));
  CHECK_OK(mh_pool_init(&p2, 2));
  mh_rng r = mh_rng_make(42);
  const mh_cpu_kernels *tables[8];
  int n_tables = tl_kernel_tables(tables, 8);
  const int sizes[][3] = {{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {5, 3, 300}, {13, 31, 257}, {96, 512, 256},
                          {100, 530, 513}, {64, 1024, 27}, {1, 700, 9}, {200, 5, 40}, {3, 2, 0}};
  for (int t = 0; t < n_tables; t++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
          for (int acc = 0; acc < 2; acc++)
            run_case(tables[t], p1, p2, sizes[s][0], sizes[s][1], sizes[s][2], ta, tb, acc, &r);
  /* no pool at all: heap packing buffers */
  for (int t = 0; t < n_tables; t++) run_case(tables[t], NULL, p2, 33, 65, 70, 0, 1, 0, &r);
  for (int t = 0; t < n_tables; t++) printf("fp32 kernel table %s: %s\n", tables[t]->isa, tables[t]->f32_desc);
  mh_pool_free(p1);
  mh_pool_free(p2);
  return tl_exit();
}
