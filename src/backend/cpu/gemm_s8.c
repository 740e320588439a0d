/* The blocked int8 GEMM driver: packs op(A)/op(B) into the table's panel layout (int16 k-pairs for
 * vpmaddwd-style kernels, or k-quads with B as u8 + 128 for vpdpbusd), zero-padded to whole pairs or
 * quads, rows and columns, runs the ISA micro-kernel, and splits column blocks across the pool.
 * Integer sums are exact, so any blocking or thread split gives the oracle's result. */
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
        const int8_t *s0 = mh_gemm_s8_b_row(g, k0) + j0 + jp, *s1 = has1 ? mh_gemm_s8_b_row(g, k0 + 1) + j0 + jp : s0;
        for (int c = 0; c < cols; c++) row[2 * c] = s0[c], row[2 * c + 1] = has1 ? s1[c] : 0;
        for (int c = cols; c < nr; c++) row[2 * c] = row[2 * c + 1] = 0;
      }
    } else { /* B^T stored: column j is a contiguous run over k, whose byte pairs are the pairs */
      for (int c = 0; c < nr; c++) {
        const int8_t *src = c < cols ? mh_gemm_s8_b_row(g, j0 + jp + c) + p0 : NULL;
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

/* k-quad layout. A: for each MR-row panel, kq quads of [row][4] (s8), then MR int32 corrections
 * (128 x the row's sum over the block); k beyond the end and rows beyond mc are 0. */
static size_t quad_a_panel_bytes(int mr, int kq) { return (size_t)kq * mr * 4 + (size_t)mr * 4; }

#if defined(__SSE2__)
#include <emmintrin.h>
/* sum of n int8 values */
static int32_t sum_s8(const int8_t *p, int n) {
  const __m128i ones = _mm_set1_epi16(1);
  __m128i acc = _mm_setzero_si128();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
    __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8), hi = _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8);
    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_add_epi16(lo, hi), ones));
  }
  int32_t lanes[4], s = 0;
  _mm_storeu_si128((__m128i *)lanes, acc);
  s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; i++) s += p[i];
  return s;
}
/* 4 rows (each contiguous over k) x 4 quads from offset k: a 4x4 transpose of 32-bit words; quad q
 * of the 4 rows lands at o + q*qs (16 bytes). */
static inline void quad4x4_words(const uint8_t *const *s, int k, uint8_t *o, size_t qs, __m128i flip) {
  __m128i r0 = _mm_loadu_si128((const __m128i *)(s[0] + k)), r1 = _mm_loadu_si128((const __m128i *)(s[1] + k));
  __m128i r2 = _mm_loadu_si128((const __m128i *)(s[2] + k)), r3 = _mm_loadu_si128((const __m128i *)(s[3] + k));
  __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
  __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
  _mm_storeu_si128((__m128i *)o, _mm_xor_si128(_mm_unpacklo_epi64(t0, t1), flip));
  _mm_storeu_si128((__m128i *)(o + qs), _mm_xor_si128(_mm_unpackhi_epi64(t0, t1), flip));
  _mm_storeu_si128((__m128i *)(o + 2 * qs), _mm_xor_si128(_mm_unpacklo_epi64(t2, t3), flip));
  _mm_storeu_si128((__m128i *)(o + 3 * qs), _mm_xor_si128(_mm_unpackhi_epi64(t2, t3), flip));
}
/* 4 values of each of 4 rows k..k+3 (row stride ld) into 4 quads (16 bytes): a byte interleave. */
static inline void quad4_rows(const uint8_t *s, size_t ld, uint8_t *o) {
  int32_t w[4];
  for (int t = 0; t < 4; t++) memcpy(&w[t], s + t * ld, 4);
  __m128i a = _mm_unpacklo_epi8(_mm_cvtsi32_si128(w[0]), _mm_cvtsi32_si128(w[1]));
  __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128(w[2]), _mm_cvtsi32_si128(w[3]));
  _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(a, b));
}
#else
static int32_t sum_s8(const int8_t *p, int n) {
  int32_t s = 0;
  for (int i = 0; i < n; i++) s += p[i];
  return s;
}
#endif

static void pack_a_quad(const mh_gemm_s8_args *g, int mr, int i0, int mc, int p0, int kc, int8_t *dst) {
  int kq = (kc + 3) / 4, kq_full = kc / 4; /* whole quads: the SSE2 packing's share */
  (void)kq_full; /* whole quads: the SSE2 packing's share */
  (void)kq_full;
  for (int ip = 0; ip < mc; ip += mr) {
    int rows = mc - ip < mr ? mc - ip : mr;
    int8_t *d = dst + (size_t)(ip / mr) * quad_a_panel_bytes(mr, kq);
    int32_t corr[32] = {0};
    int r0 = 0, q0 = 0; /* rows [0, r0) and quads [0, q0) of them were written by vector code */
    if (!g->trans_a) { /* row i of A is contiguous over k */
      const int8_t *base = g->a + (size_t)(i0 + ip) * g->lda + p0;
#if defined(__SSE2__)
      q0 = kq_full / 4 * 4;
      for (; r0 + 4 <= rows; r0 += 4) {
        const uint8_t *rp[4];
        for (int t = 0; t < 4; t++) rp[t] = (const uint8_t *)base + (size_t)(r0 + t) * g->lda;
        for (int q = 0; q < q0; q += 4)
          quad4x4_words(rp, 4 * q, (uint8_t *)d + ((size_t)q * mr + r0) * 4, (size_t)mr * 4, _mm_setzero_si128());
      }
#endif
      for (int r = 0; r < rows; r++) {
        const int8_t *src = base + (size_t)r * g->lda;
        for (int q = r < r0 ? q0 : 0; q < kq; q++)
          for (int t = 0; t < 4; t++) d[((size_t)q * mr + r) * 4 + t] = 4 * q + t < kc ? src[4 * q + t] : 0;
        corr[r] = 128 * sum_s8(src, kc);
      }
    } else { /* A^T stored: rows k..k+3 of it hold 4 k of every row i */
      const int8_t *base = g->a + (size_t)p0 * g->lda + i0 + ip;
#if defined(__SSE2__)
      r0 = rows / 4 * 4, q0 = kq_full;
      for (int q = 0; q < q0; q++)
        for (int r = 0; r < r0; r += 4)
          quad4_rows((const uint8_t *)base + (size_t)4 * q * g->lda + r, (size_t)g->lda, (uint8_t *)d + ((size_t)q * mr + r) * 4);
#endif
      for (int r = 0; r < rows; r++)
        for (int q = r < r0 ? q0 : 0; q < kq; q++)
          for (int t = 0; t < 4; t++)
            d[((size_t)q * mr + r) * 4 + t] = 4 * q + t < kc ? base[(size_t)(4 * q + t) * g->lda + r] : 0;
      for (int q = 0; q < kq; q++)
        for (int r = 0; r < rows; r++) {
          const int8_t *o = d + ((size_t)q * mr + r) * 4;
          corr[r] += 128 * (o[0] + o[1] + o[2] + o[3]);
        }
    }
    for (int q = 0; q < kq; q++)
      if (rows < mr) memset(d + ((size_t)q * mr + rows) * 4, 0, (size_t)(mr - rows) * 4);
    memcpy(d + (size_t)kq * mr * 4, corr, sizeof(int32_t) * mr);
  }
}

#if defined(__SSE2__)
/* 16 columns of 4 rows of B into 16 quads (64 bytes), xor 0x80. */
static inline void quad16_rows(const uint8_t *const *s, int col, uint8_t *o) {
  const __m128i x80 = _mm_set1_epi8((char)0x80);
  __m128i r0 = _mm_loadu_si128((const __m128i *)(s[0] + col)), r1 = _mm_loadu_si128((const __m128i *)(s[1] + col));
  __m128i r2 = _mm_loadu_si128((const __m128i *)(s[2] + col)), r3 = _mm_loadu_si128((const __m128i *)(s[3] + col));
  __m128i a = _mm_unpacklo_epi8(r0, r1), b = _mm_unpackhi_epi8(r0, r1);
  __m128i c = _mm_unpacklo_epi8(r2, r3), d = _mm_unpackhi_epi8(r2, r3);
  _mm_storeu_si128((__m128i *)o, _mm_xor_si128(_mm_unpacklo_epi16(a, c), x80));
  _mm_storeu_si128((__m128i *)(o + 16), _mm_xor_si128(_mm_unpackhi_epi16(a, c), x80));
  _mm_storeu_si128((__m128i *)(o + 32), _mm_xor_si128(_mm_unpacklo_epi16(b, d), x80));
  _mm_storeu_si128((__m128i *)(o + 48), _mm_xor_si128(_mm_unpackhi_epi16(b, d), x80));
}
#endif

/* B: for each NR-column panel, kq quads of [col][4] as u8 = value + 128 (the bit pattern xor 0x80);
 * padding (k past the end, columns past nc) meets A's zeros or is discarded. */
static void pack_b_quad(const mh_cpu_kernels *kt, const mh_gemm_s8_args *g, int nr, int j0, int nc, int p0, int kc,
                        uint8_t *dst) {
  /* rows past k and columns past nc read zeros (0x80 once flipped): a row holds nr <= 64 bytes, a
   * column kc <= MH_S8_KC */
  static const uint8_t zeros[MH_S8_KC];
  int kq = (kc + 3) / 4, kq_full = kc / 4;
  for (int jp = 0; jp < nc; jp += nr) {
    int cols = nc - jp < nr ? nc - jp : nr;
    uint8_t *d = dst + (size_t)jp * kq * 4;
    if (!g->trans_b) { /* rows k..k+3 of B interleave into quads */
      for (int q = 0; q < kq; q++) {
        uint8_t *row = d + (size_t)q * nr * 4;
        const uint8_t *rp[4];
        for (int t = 0; t < 4; t++)
          rp[t] = 4 * q + t < kc ? (const uint8_t *)mh_gemm_s8_b_row(g, p0 + 4 * q + t) + j0 + jp : zeros;
        int c0 = 0;
        if (kt->pack_quad32)
          for (; c0 + 32 <= cols; c0 += 32) kt->pack_quad32(rp, c0, row + 4 * c0);
#if defined(__SSE2__)
        for (; c0 + 16 <= cols; c0 += 16) quad16_rows(rp, c0, row + 4 * c0);
#endif
        for (int c = c0; c < cols; c++)
          for (int t = 0; t < 4; t++) row[4 * c + t] = rp[t][c] ^ 0x80u;
        memset(row + 4 * cols, 0x80, (size_t)4 * (nr - cols)); /* columns past nc */
      }
    } else { /* B^T stored: column j is a contiguous run over k; columns past nc read zeros */
      const uint8_t *cp[64];
      for (int c = 0; c < nr; c++) cp[c] = c < cols ? (const uint8_t *)mh_gemm_s8_b_row(g, j0 + jp + c) + p0 : zeros;
      int q_done = 0; /* quads the vector loop wrote for every column */
#if defined(__SSE2__)
      q_done = kq_full / 4 * 4;
      for (int c0 = 0; c0 < nr; c0 += 4) /* nr is a multiple of 4 */
        for (int q = 0; q < q_done; q += 4)
          quad4x4_words(cp + c0, 4 * q, d + ((size_t)q * nr + c0) * 4, (size_t)nr * 4, _mm_set1_epi8((char)0x80));
#endif
      for (int c = 0; c < nr; c++) {
        const uint8_t *s = cp[c];
        for (int q = q_done; q < kq; q++) {
          uint8_t *o = d + ((size_t)q * nr + c) * 4;
          for (int t = 0; t < 4; t++) o[t] = 4 * q + t < kc ? s[4 * q + t] ^ 0x80u : 0x80;
        }
      }
    }
  }
}

/* One task's K blocks: B's block packed once, then per MC row block A's, then every micro-tile; edge
 * tiles run the full tile into a scratch tile and copy the valid part. The table's kernel fixes the
 * panel layout: k-quads (ukernel_s8q) or int16 k-pairs (ukernel_s8). */
static void gemm_s8_block(const mh_cpu_kernels *kt, const mh_gemm_s8_args *g, int i0, int i1, int mc_max, int j0,
                          int nc, void *apack, void *bpack) {
  const int mr = kt->mr_s8, nr = kt->nr_s8, quad = kt->ukernel_s8q != NULL, ldc = g->ldc;
  int32_t edge[32 * 64];
  for (int p0 = 0; p0 < g->k; p0 += MH_S8_KC) {
    int kc = g->k - p0 < MH_S8_KC ? g->k - p0 : MH_S8_KC, kq = (kc + 3) / 4, kc2 = (kc + 1) / 2;
    int acc = p0 > 0 || g->accumulate;
    if (quad) pack_b_quad(kt, g, nr, j0, nc, p0, kc, bpack);
    else pack_b_s8(g, nr, j0, nc, p0, kc, bpack);
    for (int ib = i0; ib < i1; ib += mc_max) {
      int mc = i1 - ib < mc_max ? i1 - ib : mc_max;
      if (quad) pack_a_quad(g, mr, ib, mc, p0, kc, apack);
      else pack_a_s8(g, mr, ib, mc, p0, kc, apack);
      for (int jp = 0; jp < nc; jp += nr) {
        int cols = nc - jp < nr ? nc - jp : nr;
        for (int ip = 0; ip < mc; ip += mr) {
          int rows = mc - ip < mr ? mc - ip : mr, full = rows == mr && cols == nr, ld = full ? ldc : nr;
          int32_t *c = g->c + (size_t)(ib + ip) * ldc + j0 + jp, *dst = full ? c : edge;
          if (!full && acc) /* rows, not elements: g->ldc would be reloaded after every int32 store */
            for (int r = 0; r < rows; r++) memcpy(edge + r * nr, c + (size_t)r * ldc, sizeof(int32_t) * cols);
          if (quad) {
            const int8_t *ap = (const int8_t *)apack + (size_t)(ip / mr) * quad_a_panel_bytes(mr, kq);
            kt->ukernel_s8q(kq, ap, (const uint8_t *)bpack + (size_t)jp * kq * 4,
                            (const int32_t *)(ap + (size_t)kq * mr * 4), dst, ld, acc);
          } else {
            kt->ukernel_s8(kc2, (const int16_t *)apack + (size_t)ip * kc2 * 2,
                           (const int16_t *)bpack + (size_t)jp * kc2 * 2, dst, ld, acc);
          }
          if (!full)
            for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * ldc, edge + r * nr, sizeof(int32_t) * cols);
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
  /* B follows A in one buffer: round A up to 64 bytes so B's panels stay aligned for vector loads
   * (k-quad panels: 1 byte per element and 4 bytes of correction per row; pairs: 2 bytes each) */
  size_t a_elems = ((size_t)(job->mc + job->kt->mr_s8) * (MH_S8_KC + 4) + 31) / 32 * 32,
         b_elems = (size_t)(job->nc + job->kt->nr_s8) * (MH_S8_KC + 4);
  size_t bytes = (a_elems + b_elems) * sizeof(int16_t);
  int16_t *own = NULL, *buf = mh_pool_scratch(job->pool, thread, bytes);
  if (!buf) buf = own = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!buf) { /* out of memory for packing: this block by the oracle */
    mh_gemm_s8_args sub = *g;
    sub.m = i1 - i0, sub.n = nc;
    sub.a = g->trans_a ? g->a + i0 : g->a + (size_t)i0 * g->lda;
    if (g->b_rows) { /* the oracle reads B through b_rows with absolute column indices */
      sub.m = g->m, sub.n = g->n, sub.a = g->a;
      if (task == 0) mh_gemm_s8_ref(&sub);
      return;
    }
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
