/* The blocked FP32 GEMM driver: packs op(A) into MR-row panels and op(B) into NR-column panels
 * and runs the ISA micro-kernel over them. Column blocks (NC wide) are the pool's tasks. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_split.h"
#include "backend/cpu/kernels.h"

enum { MH_KC = 256, MH_MC_TARGET = 96, MH_NC_MAX = 512 };

typedef struct {
  const mh_cpu_kernels *kt;
  const mh_gemm_f32_args *g;
  mh_pool *pool;
  int mc, nc, mt, nt, mgroups;
} gemm_job;

/* op(A)[i][p] for i in [i0, i0+mc), p in [p0, p0+kc) into panels of MR rows, zero-padded. */
static void pack_a(const mh_cpu_kernels *kt, const mh_gemm_f32_args *g, int mr, int i0, int mc, int p0, int kc,
                   float *dst) {
  for (int ip = 0; ip < mc; ip += mr) {
    int rows = mc - ip < mr ? mc - ip : mr;
    float *d = dst + (size_t)ip * kc;
    if (!g->trans_a) { /* rows of A become the panel's columns: a transpose */
      kt->pack_transpose_f32(g->a + (size_t)(i0 + ip) * g->lda + p0, g->lda, rows, kc, mr, d);
      continue;
    }
    for (int p = 0; p < kc; p++) {
      const float *s = g->a + (size_t)(p0 + p) * g->lda + i0 + ip;
      int r = 0;
      for (; r < rows; r++) d[(size_t)p * mr + r] = s[r];
      for (; r < mr; r++) d[(size_t)p * mr + r] = 0.f;
    }
  }
}

/* op(B)[p][j] for p in [p0, p0+kc), j in [j0, j0+nc) into panels of NR columns, zero-padded. */
static void pack_b(const mh_cpu_kernels *kt, const mh_gemm_f32_args *g, int nr, int j0, int nc, int p0, int kc,
                   float *dst) {
  if (g->pack_b) {
    g->pack_b(g->pack_b_ctx, p0, kc, j0, nc, nr, dst);
    return;
  }
  if (!g->trans_b) {
    /* row by row, each row's whole width (sequential reads) into every panel; whole panels by
     * constant-size copies, which the compiler inlines */
    int full = nc / nr, tail = nc - full * nr;
    size_t panel = (size_t)nr * kc;
    for (int p = 0; p < kc; p++) {
      const float *s = g->b + (size_t)(p0 + p) * g->ldb + j0;
      float *d = dst + (size_t)p * nr;
      if (nr == 32)
        for (int q = 0; q < full; q++) memcpy(d + q * panel, s + 32 * q, 32 * sizeof(float));
      else
        for (int q = 0; q < full; q++) memcpy(d + q * panel, s + (size_t)nr * q, (size_t)nr * sizeof(float));
      if (tail) {
        float *t = d + full * panel;
        memcpy(t, s + (size_t)full * nr, sizeof(float) * tail);
        for (int c = tail; c < nr; c++) t[c] = 0.f;
      }
    }
    return;
  }
  for (int jp = 0; jp < nc; jp += nr) { /* B^T is stored: a transpose */
    int cols = nc - jp < nr ? nc - jp : nr;
    kt->pack_transpose_f32(g->b + (size_t)(j0 + jp) * g->ldb + p0, g->ldb, cols, kc, nr, dst + (size_t)jp * kc);
  }
}

/* One task: C rows [i0, i1) x columns [j0, j0+nc). Each K block of B is packed once and reused
 * across all the task's MC row blocks (packing B can be costly: implicit im2col). */
static void gemm_block(const mh_cpu_kernels *kt, const mh_gemm_f32_args *g, int i0, int i1, int mc_max, int j0,
                       int nc, float *apack, float *bpack) {
  const int mr = kt->mr, nr = kt->nr;
  float edge[32 * 32]; /* the largest micro-tile (AVX-512: 14x32) */
  for (int p0 = 0; p0 < g->k; p0 += MH_KC) {
    int kc = g->k - p0 < MH_KC ? g->k - p0 : MH_KC;
    int acc = p0 > 0 || g->accumulate;
    pack_b(kt, g, nr, j0, nc, p0, kc, bpack);
    for (int ib = i0; ib < i1; ib += mc_max) {
      int mc = i1 - ib < mc_max ? i1 - ib : mc_max;
      const float *ablock = apack;
      if (g->a_packed) /* K block p0 holds ceil(m/mr)*mr rows of kc; row ib starts ib*kc in */
        ablock = g->a_packed + (size_t)((g->m + mr - 1) / mr * mr) * p0 + (size_t)ib * kc;
      else
        pack_a(kt, g, mr, ib, mc, p0, kc, apack);
      for (int jp = 0; jp < nc; jp += nr) {
        int cols = nc - jp < nr ? nc - jp : nr;
        for (int ip = 0; ip < mc; ip += mr) {
          int rows = mc - ip < mr ? mc - ip : mr;
          float *c = g->c + (size_t)(ib + ip) * g->ldc + j0 + jp;
          const float *ap = ablock + (size_t)ip * kc, *bp = bpack + (size_t)jp * kc;
          if (rows == mr && cols == nr) {
            kt->ukernel_f32(kc, ap, bp, c, g->ldc, acc);
          } else {
            /* Edge tile: run the full tile into a scratch tile, copy the valid part back. */
            for (int r = 0; r < rows; r++)
              for (int q = 0; q < cols; q++) edge[r * nr + q] = acc ? c[(size_t)r * g->ldc + q] : 0.f;
            kt->ukernel_f32(kc, ap, bp, edge, nr, acc);
            for (int r = 0; r < rows; r++)
              for (int q = 0; q < cols; q++) c[(size_t)r * g->ldc + q] = edge[r * nr + q];
          }
        }
      }
    }
  }
}

static void gemm_task(void *ctx, int task, int thread) {
  gemm_job *job = ctx;
  const mh_gemm_f32_args *g = job->g;
  int ig = task / job->nt, jb = task % job->nt;
  long lo, hi;
  /* row group ig: a contiguous range of whole MC blocks */
  mh_split_range(job->mt, job->mgroups, ig, &lo, &hi);
  int i0 = (int)lo * job->mc, i1 = (int)hi * job->mc < g->m ? (int)hi * job->mc : g->m;
  int j0 = jb * job->nc;
  int nc = g->n - j0 < job->nc ? g->n - j0 : job->nc;
  if (i1 <= i0) return;
  size_t a_floats = (size_t)(job->mc + job->kt->mr) * MH_KC, b_floats = (size_t)(job->nc + job->kt->nr) * MH_KC;
  size_t bytes = (a_floats + b_floats) * sizeof(float);
  /* Packing buffers: the pool's per-thread slot, or the heap without a pool. */
  float *own = NULL, *buf = mh_pool_scratch(job->pool, thread, bytes);
  if (!buf) buf = own = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!buf) { /* out of memory for packing: this block by the unpacked oracle */
    mh_gemm_f32_args sub = *g;
    sub.m = i1 - i0;
    sub.n = nc;
    sub.a = g->trans_a ? g->a + i0 : g->a + (size_t)i0 * g->lda;
    if (g->pack_b) { /* the oracle reads B through pack_b with absolute column indices */
      sub.m = g->m, sub.n = g->n; /* recompute the whole product only once, from task 0 */
      if (task != 0) return;
      mh_gemm_f32_ref(g);
      return;
    }
    sub.b = g->trans_b ? g->b + (size_t)j0 * g->ldb : g->b + j0;
    sub.c = g->c + (size_t)i0 * g->ldc + j0;
    mh_gemm_f32_ref(&sub);
    return;
  }
  gemm_block(job->kt, g, i0, i1, job->mc, j0, nc, buf, buf + a_floats);
  free(own);
}

size_t mh_gemm_f32_packed_a_floats(const mh_cpu_kernels *kt, int m, int k) {
  return (size_t)mh__ceil_div(m, kt->mr) * kt->mr * (size_t)k;
}

void mh_gemm_f32_pack_a(const mh_cpu_kernels *kt, const mh_gemm_f32_args *g, float *dst) {
  size_t mp = (size_t)mh__ceil_div(g->m, kt->mr) * kt->mr;
  for (int p0 = 0; p0 < g->k; p0 += MH_KC) {
    int kc = g->k - p0 < MH_KC ? g->k - p0 : MH_KC;
    pack_a(kt, g, kt->mr, 0, g->m, p0, kc, dst + mp * p0);
  }
}

void mh_gemm_f32(const mh_cpu_kernels *kt, mh_pool *pool, const mh_gemm_f32_args *g) {
  if (g->m <= 0 || g->n <= 0) return;
  if (g->k <= 0) {
    if (!g->accumulate)
      for (int i = 0; i < g->m; i++) memset(g->c + (size_t)i * g->ldc, 0, sizeof(float) * g->n);
    return;
  }
  /* below ~64k MACs a thread hand-off costs more than it saves */
  if ((double)g->m * g->n * g->k < 65536.0) pool = NULL;
  gemm_job job = {.kt = kt, .g = g, .pool = pool};
  int nth = mh_pool_size(pool);
  mh_gemm_split sp = mh__gemm_split(g->m, g->n, kt->mr, kt->nr, MH_MC_TARGET, MH_NC_MAX, nth);
  job.mc = sp.mc, job.nc = sp.nc, job.mt = sp.mt, job.nt = sp.nt, job.mgroups = sp.mgroups;
  mh_pool_run(pool, job.mgroups * job.nt, gemm_task, &job);
}
