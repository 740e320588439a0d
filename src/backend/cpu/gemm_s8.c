/* The blocked int8 GEMM driver: packs op(A)/op(B) into panels widened to int16 k-pairs (zero-padded
 * to whole pairs, rows and columns), runs the ISA micro-kernel, and splits column blocks across the
 * pool. Integer sums are exact, so any blocking or thread split gives the oracle's result. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_split.h"
#include "backend/cpu/kernels.h"

enum { MH_S8_KC = 512, MH_S8_MC_TARGET = 96, MH_S8_NC_MAX = 512 };

typedef struct {
  const mh_cpu_kernels *kt;
  const mh_gemm_s8_args *g;
  mh_pool *pool;
  int mc, nc, mt, nt, mgroups;
} gemm_s8_job;

/* dst: for each MR-row panel, kc2 pairs of [row][2]; k beyond the end and rows beyond mc are 0. */
static void pack_a_s8(const mh_gemm_s8_args *g, int mr, int i0, int mc, int p0, int kc, int16_t *dst) {
  int kc2 = (kc + 1) / 2;
  for (int ip = 0; ip < mc; ip += mr) {
    int rows = mc - ip < mr ? mc - ip : mr;
    int16_t *d = dst + (size_t)ip * kc2 * 2;
    for (int r = 0; r < mr; r++) {
      if (r >= rows) {
        for (int p = 0; p < kc2; p++) d[((size_t)p * mr + r) * 2] = d[((size_t)p * mr + r) * 2 + 1] = 0;
        continue;
      }
      if (!g->trans_a) { /* row i of A is contiguous over k */
        const int8_t *src = g->a + (size_t)(i0 + ip + r) * g->lda + p0;
        for (int p = 0; p < kc2; p++) {
          d[((size_t)p * mr + r) * 2] = src[2 * p];
          d[((size_t)p * mr + r) * 2 + 1] = 2 * p + 1 < kc ? src[2 * p + 1] : 0;
        }
      } else { /* A^T stored: column i, stride lda over k */
        const int8_t *src = g->a + (size_t)p0 * g->lda + i0 + ip + r;
        for (int p = 0; p < kc2; p++) {
          d[((size_t)p * mr + r) * 2] = src[(size_t)(2 * p) * g->lda];
          d[((size_t)p * mr + r) * 2 + 1] = 2 * p + 1 < kc ? src[(size_t)(2 * p + 1) * g->lda] : 0;
        }
      }
    }
  }
}

static void pack_b_s8(const mh_gemm_s8_args *g, int nr, int j0, int nc, int p0, int kc, int16_t *dst) {
  int kc2 = (kc + 1) / 2;
  for (int jp = 0; jp < nc; jp += nr) {
    int cols = nc - jp < nr ? nc - jp : nr;
    int16_t *d = dst + (size_t)jp * kc2 * 2;
    if (!g->trans_b) { /* rows k0, k0+1 of B interleave into pairs */
      for (int p = 0; p < kc2; p++) {
        int k0 = p0 + 2 * p, has1 = 2 * p + 1 < kc;
        int16_t *row = d + (size_t)p * nr * 2;
        const int8_t *s0 = g->b + (size_t)k0 * g->ldb + j0 + jp, *s1 = s0 + g->ldb;
        for (int c = 0; c < cols; c++) row[2 * c] = s0[c], row[2 * c + 1] = has1 ? s1[c] : 0;
        for (int c = cols; c < nr; c++) row[2 * c] = row[2 * c + 1] = 0;
      }
    } else { /* B^T stored: column j is a contiguous run over k, whose byte pairs are the pairs */
      for (int c = 0; c < nr; c++) {
        const int8_t *src = g->b + (size_t)(j0 + jp + c) * g->ldb + p0;
        for (int p = 0; p < kc2; p++) {
          int16_t *pr = d + ((size_t)p * nr + c) * 2;
          if (c >= cols) {
            pr[0] = pr[1] = 0;
            continue;
          }
          pr[0] = src[2 * p];
          pr[1] = 2 * p + 1 < kc ? src[2 * p + 1] : 0;
        }
      }
    }
  }
}

static void gemm_s8_block(const mh_cpu_kernels *kt, const mh_gemm_s8_args *g, int i0, int i1, int mc_max, int j0,
                          int nc, int16_t *apack, int16_t *bpack) {
  const int mr = kt->mr_s8, nr = kt->nr_s8;
  int32_t edge[16 * 16];
  for (int p0 = 0; p0 < g->k; p0 += MH_S8_KC) {
    int kc = g->k - p0 < MH_S8_KC ? g->k - p0 : MH_S8_KC, kc2 = (kc + 1) / 2;
    int acc = p0 > 0 || g->accumulate;
    pack_b_s8(g, nr, j0, nc, p0, kc, bpack);
    for (int ib = i0; ib < i1; ib += mc_max) {
      int mc = i1 - ib < mc_max ? i1 - ib : mc_max;
      pack_a_s8(g, mr, ib, mc, p0, kc, apack);
      for (int jp = 0; jp < nc; jp += nr) {
        int cols = nc - jp < nr ? nc - jp : nr;
        for (int ip = 0; ip < mc; ip += mr) {
          int rows = mc - ip < mr ? mc - ip : mr;
          int32_t *c = g->c + (size_t)(ib + ip) * g->ldc + j0 + jp;
          const int16_t *ap = apack + (size_t)ip * kc2 * 2, *bp = bpack + (size_t)jp * kc2 * 2;
          if (rows == mr && cols == nr) {
            kt->ukernel_s8(kc2, ap, bp, c, g->ldc, acc);
          } else {
            for (int r = 0; r < rows; r++)
              for (int q = 0; q < cols; q++) edge[r * nr + q] = acc ? c[(size_t)r * g->ldc + q] : 0;
            kt->ukernel_s8(kc2, ap, bp, edge, nr, acc);
            for (int r = 0; r < rows; r++)
              for (int q = 0; q < cols; q++) c[(size_t)r * g->ldc + q] = edge[r * nr + q];
          }
        }
      }
    }
  }
}

static void gemm_s8_task(void *ctx, int task, int thread) {
  gemm_s8_job *job = ctx;
  const mh_gemm_s8_args *g = job->g;
  int ig = task / job->nt, jb = task % job->nt;
  long lo, hi;
  mh_split_range(job->mt, job->mgroups, ig, &lo, &hi);
  int i0 = (int)lo * job->mc, i1 = (int)hi * job->mc < g->m ? (int)hi * job->mc : g->m;
  int j0 = jb * job->nc, nc = g->n - j0 < job->nc ? g->n - j0 : job->nc;
  if (i1 <= i0) return;
  /* B follows A in one buffer: round A up to 64 bytes so B's panels stay aligned for vector loads */
  size_t a_elems = ((size_t)(job->mc + job->kt->mr_s8) * (MH_S8_KC + 2) + 31) / 32 * 32,
         b_elems = (size_t)(job->nc + job->kt->nr_s8) * (MH_S8_KC + 2);
  size_t bytes = (a_elems + b_elems) * sizeof(int16_t);
  int16_t *own = NULL, *buf = mh_pool_scratch(job->pool, thread, bytes);
  if (!buf) buf = own = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!buf) { /* out of memory for packing: this block by the oracle */
    mh_gemm_s8_args sub = *g;
    sub.m = i1 - i0, sub.n = nc;
    sub.a = g->trans_a ? g->a + i0 : g->a + (size_t)i0 * g->lda;
    sub.b = g->trans_b ? g->b + (size_t)j0 * g->ldb : g->b + j0;
    sub.c = g->c + (size_t)i0 * g->ldc + j0;
    mh_gemm_s8_ref(&sub);
    return;
  }
  gemm_s8_block(job->kt, g, i0, i1, job->mc, j0, nc, buf, buf + a_elems);
  free(own);
}

void mh_gemm_s8(const mh_cpu_kernels *kt, mh_pool *pool, const mh_gemm_s8_args *g) {
  if (g->m <= 0 || g->n <= 0) return;
  if (g->k <= 0) {
    if (!g->accumulate)
      for (int i = 0; i < g->m; i++) memset(g->c + (size_t)i * g->ldc, 0, sizeof(int32_t) * g->n);
    return;
  }
  if ((double)g->m * g->n * g->k < 65536.0) pool = NULL;
  gemm_s8_job job = {.kt = kt, .g = g, .pool = pool};
  int nth = mh_pool_size(pool), mr = kt->mr_s8, nr = kt->nr_s8;
  mh_gemm_split sp = mh__gemm_split(g->m, g->n, mr, nr, MH_S8_MC_TARGET, MH_S8_NC_MAX, nth);
  job.mc = sp.mc, job.nc = sp.nc, job.mt = sp.mt, job.nt = sp.nt, job.mgroups = sp.mgroups;
  mh_pool_run(pool, job.mgroups * job.nt, gemm_s8_task, &job);
}
