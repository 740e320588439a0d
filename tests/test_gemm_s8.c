/* int8 GEMM: the packed driver on every kernel table must equal the oracle with ==, for all
 * transposes, odd sizes, K across the pair and block boundaries, accumulate, edge values +-127,
 * and 1, 2 or no threads. */
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/rng.h"
#include "mandheling.h"
#include "testlib.h"
#include "tl_tables.h"

static void fill(int8_t *x, size_t n, mh_rng *r, int edge) {
  for (size_t i = 0; i < n; i++) {
    int v = (int)mh_rng_below(r, 255) - 127; /* [-127, 127] */
    if (edge) v = (mh_rng_below(r, 2) ? 127 : -127);
    x[i] = (int8_t)v;
  }
}

static void run_case(const mh_cpu_kernels *kt, mh_pool *pool, int m, int n, int k, int ta, int tb, int acc, int edge,
                     int rows, mh_rng *r) {
  int lda = (ta ? m : k) + 5, ldb = (tb ? k : n) + 3, ldc = n + 1;
  size_t asz = (size_t)(ta ? k : m) * lda, bsz = (size_t)(tb ? n : k) * ldb, csz = (size_t)m * ldc;
  int8_t *a = malloc(asz + 1), *b = malloc(bsz + 1);
  int32_t *c0 = malloc(csz * 4 + 4), *c1 = malloc(csz * 4 + 4);
  fill(a, asz, r, edge);
  fill(b, bsz, r, edge);
  for (size_t i = 0; i < csz; i++) c0[i] = c1[i] = (int32_t)mh_rng_next(r) >> 8;
  mh_gemm_s8_args g = {m, n, k, a, lda, ta, b, ldb, tb, c0, ldc, acc};
  mh_gemm_s8_ref(&g);
  g.c = c1;
  /* B given by row pointers instead (as a convolution reads a padded image): the stored rows in
   * reverse order in memory, so a driver that used b + i*ldb would read the wrong rows */
  int nrows = tb ? n : k;
  int8_t *rb = NULL;
  const int8_t **rp = NULL;
  if (rows) {
    rb = malloc(bsz + 1), rp = malloc(sizeof *rp * (nrows + 1));
    for (int i = 0; i < nrows; i++) {
      memcpy(rb + (size_t)(nrows - 1 - i) * ldb, b + (size_t)i * ldb, (size_t)ldb);
      rp[i] = rb + (size_t)(nrows - 1 - i) * ldb;
    }
    g.b = NULL, g.b_rows = rp;
  }
  mh_gemm_s8(kt, pool, &g);
  int same = memcmp(c0, c1, csz * 4) == 0;
  if (!same) TL_FAIL("%s pool=%d m=%d n=%d k=%d ta=%d tb=%d acc=%d edge=%d rows=%d: differs from the oracle", kt->isa,
                     mh_pool_size(pool), m, n, k, ta, tb, acc, edge, rows);
  tl_checks++;
  free(a), free(b), free(c0), free(c1), free(rb), free(rp);
}

int main(void) {
  mh_pool *p1, *p2;
  CHECK_OK(mh_pool_init(&p1, 1));
  CHECK_OK(mh_pool_init(&p2, 2));
  mh_rng r = mh_rng_make(5);
  const mh_cpu_kernels *tables[8];
  int n_tables = tl_kernel_tables(tables, 8);
  const int sizes[][3] = {{1, 1, 1},    {6, 16, 2},    {7, 17, 3},    {5, 3, 511},  {13, 31, 513},
                          {96, 512, 512}, {100, 530, 1025}, {64, 600, 27}, {1, 700, 9},  {200, 5, 40}, {3, 2, 0}};
  mh_pool *pools[3] = {NULL, p1, p2};
  for (int t = 0; t < n_tables; t++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int v = 0; v < 16; v++)
        run_case(tables[t], pools[(s + v) % 3], sizes[s][0], sizes[s][1], sizes[s][2], v & 1, (v >> 1) & 1, (v >> 2) & 1,
                 s % 3 == 0, v >> 3, &r);
  /* the int32 range at the largest K: every product +-127*127, all the same sign */
  {
    int k = MH_GEMM_S8_MAX_K;
    int8_t *a = malloc((size_t)k), *b = malloc((size_t)k);
    memset(a, 127, (size_t)k);
    memset(b, 0x81, (size_t)k); /* -127 */
    int32_t c0 = 0, c1 = 0;
    mh_gemm_s8_args g = {1, 1, k, a, k, 0, b, 1, 0, &c0, 1, 0};
    mh_gemm_s8_ref(&g);
    CHECK_EQ_INT(c0, -127LL * 127 * k);
    for (int t = 0; t < n_tables; t++) {
      g.c = &c1;
      mh_gemm_s8(tables[t], p2, &g);
      CHECK_EQ_INT(c1, c0);
    }
    free(a), free(b);
  }
  for (int t = 0; t < n_tables; t++) printf("int8 kernel table %s: %s\n", tables[t]->isa, tables[t]->s8_desc);
  mh_pool_free(p1);
  mh_pool_free(p2);
  return tl_exit();
}
