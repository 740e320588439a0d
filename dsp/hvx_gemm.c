/* int8 GEMM on 128-byte HVX with vrmpy, output columns in vector lanes: a vector holds 32
 * consecutive columns of one output row. B is packed in k-quads (lane j = the 4 bytes
 * B[4q..4q+3][j], +128 so they are unsigned) and A is read as scalar words of 4 consecutive k of a
 * row (signed); vrmpy multiplies unsigned vector bytes by signed scalar bytes, and 128 x the row's sum
 * of A comes back off at the end: exact, since int32 arithmetic wraps consistently.
 * Work is cut into panels of 128 columns (4 vectors) and K chunks that fit VTCM; a micro-kernel runs
 * up to 4 rows x 4 vectors (16 accumulators) over a chunk. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_gemm.h"
#include "hvx_requant.h"
#include "region.h"
#include "wire.h"

#define NP 128 /* columns per panel */
#define NG 4   /* vectors (groups of 32 columns) per panel */

/* Scratch outside VTCM (it can exceed the budget): op(A) packed when it is not readable as words
 * in place, and the fused epilogue's int32 panel when K takes several chunks. */
static int32_t a_mem[(4 << 20) / 4] __attribute__((aligned(128)));
static int32_t pacc_mem[MH_WIRE_FUSED_MAX_M * NP] __attribute__((aligned(128)));
static const uint8_t zero_row[NP] __attribute__((aligned(128)));

static int quads(int k) { return (k + 3) / 4; }

/* ceil(a / b) by binary long division: the DSP program has no libgcc (a < 2^24). */
static uint32_t ceil_div(uint32_t a, uint32_t b) {
  uint32_t q = 0, rem = a;
  for (int bit = 23; bit >= 0; bit--)
    if (((uint64_t)b << bit) <= rem) rem -= b << bit, q |= 1u << bit;
  return q + (rem != 0);
}

/* op(A) (m x k) into rows of qa words (qa = quads(k), zero-padded) followed by the m row sums
 * (mh_wire_apack_bytes(m, k) bytes). Rows stored contiguously are copied by vector, with their sum
 * taken by vrmpy against ones; transposed storage is gathered byte by byte (weights, packed once). */
void mh_hvx_pack_a(int m, int k, const int8_t *a, int lda, int trans, uint8_t *out) {
  int qa = quads(k);
  int32_t *sums = (int32_t *)(out + mh_wire_apack_rows_bytes((uint32_t)m, (uint32_t)k));
  HVX_Vector ones = Q6_V_vsplat_R(0x01010101);
  for (int r = 0; r < m; r++) {
    uint8_t *dst = out + (long)r * qa * 4;
    int32_t total = 0, kk = 0;
    if (!trans) {
      const int8_t *src = a + (long)r * lda;
      HVX_Vector s = Q6_V_vzero();
      for (; kk + 128 <= k; kk += 128) {
        HVX_Vector v = *(const HVX_UVector *)(src + kk);
        *(HVX_UVector *)(dst + kk) = v;
        s = Q6_Vw_vrmpyacc_VwVbVb(s, v, ones);
      }
      for (int i = 0; i < 32; i++) total += Q6_R_vextract_VR(s, 4 * i);
      for (; kk < k; kk++) dst[kk] = (uint8_t)src[kk], total += src[kk];
    } else {
      for (; kk < k; kk++) {
        int8_t v = a[(long)kk * lda + r];
        dst[kk] = (uint8_t)v, total += v;
      }
    }
    for (; kk < 4 * qa; kk++) dst[kk] = 0;
    sums[r] = total;
  }
}

/* Quads [q0, q0+nq) of B's panel at column n0 into bq (vector (q, g) at bq[q * NG + g]), as
 * unsigned bytes (xor 0x80). Rows past k read zeros; columns past n read whatever lies there (their
 * lanes are discarded). B stored k x n: each quad's 4 rows interleave by byte then halfword
 * shuffles into 128 words of 4 consecutive k. */
/* Four rows of B into the quad's 4 vectors: interleaved by byte then halfword shuffles, flipped. */
static inline __attribute__((always_inline)) void quad_of_rows(HVX_Vector r0, HVX_Vector r1, HVX_Vector r2, HVX_Vector r3,
                                                              HVX_Vector flip, HVX_Vector *o) {
  HVX_VectorPair p01 = Q6_W_vshuff_VVR(r1, r0, -1), p23 = Q6_W_vshuff_VVR(r3, r2, -1);
  HVX_VectorPair lo = Q6_W_vshuff_VVR(Q6_V_lo_W(p23), Q6_V_lo_W(p01), -2);
  HVX_VectorPair hi = Q6_W_vshuff_VVR(Q6_V_hi_W(p23), Q6_V_hi_W(p01), -2);
  o[0] = Q6_V_vxor_VV(Q6_V_lo_W(lo), flip), o[1] = Q6_V_vxor_VV(Q6_V_hi_W(lo), flip);
  o[2] = Q6_V_vxor_VV(Q6_V_lo_W(hi), flip), o[3] = Q6_V_vxor_VV(Q6_V_hi_W(hi), flip);
}

/* far: the largest row offset of B (its row table's, or (k-1) ldb), so that whole quads of a panel
 * whose every row lies inside the region take the straight path, without per-row checks. */
__attribute__((noinline)) static void pack_b_rows(const mh_gemm_job *jb, int n0, int q0, int nq, uint32_t far,
                                                  HVX_Vector *__restrict bq) {
  HVX_Vector flip = Q6_V_vsplat_R((int32_t)0x80808080u);
  const uint8_t *end = mh_region + mh_region_bytes, *b = (const uint8_t *)jb->b + n0;
  const uint32_t *rows = jb->b_rows; /* the job's fields in registers: the stores below may alias them */
  const int k = jb->k;
  const long ldb = jb->ldb;
  HVX_Vector tail[4];
  int q = 0, whole = (k >> 2) - q0; /* quads whose four rows are all inside k */
  whole = whole < 0 ? 0 : whole > nq ? nq : whole;
  if (b + far + NP <= end && whole > 0) { /* every row's 128 bytes inside the region */
    if (rows) { /* the next quad's rows loaded before this quad is shuffled and stored (VTCM is apart) */
      const uint32_t *rw = rows + 4 * q0;
      HVX_Vector r0 = *(const HVX_UVector *)(b + rw[0]), r1 = *(const HVX_UVector *)(b + rw[1]),
                 r2 = *(const HVX_UVector *)(b + rw[2]), r3 = *(const HVX_UVector *)(b + rw[3]);
      for (; q + 1 < whole; q++) {
        rw += 4;
        HVX_Vector n0v = *(const HVX_UVector *)(b + rw[0]), n1v = *(const HVX_UVector *)(b + rw[1]),
                   n2v = *(const HVX_UVector *)(b + rw[2]), n3v = *(const HVX_UVector *)(b + rw[3]);
        quad_of_rows(r0, r1, r2, r3, flip, bq + q * NG);
        r0 = n0v, r1 = n1v, r2 = n2v, r3 = n3v;
      }
      quad_of_rows(r0, r1, r2, r3, flip, bq + q * NG);
      q++;
    } else
      for (const uint8_t *s = b + 4 * q0 * ldb; q < whole; q++, s += 4 * ldb)
        quad_of_rows(*(const HVX_UVector *)s, *(const HVX_UVector *)(s + ldb), *(const HVX_UVector *)(s + 2 * ldb),
                     *(const HVX_UVector *)(s + 3 * ldb), flip, bq + q * NG);
  }
  for (; q < nq; q++) { /* the last quad past k, or rows near the region's end */
    const uint8_t *src[4];
#pragma clang loop unroll(full)
    for (int i = 0; i < 4; i++) {
      int kk = 4 * (q0 + q) + i;
      src[i] = kk < k ? b + (rows ? (long)rows[kk] : (long)kk * ldb) : zero_row;
      if (__builtin_expect(src[i] + NP > end, 0)) { /* the region's last bytes: copy what is there */
        uint8_t *t = (uint8_t *)&tail[i];
        for (int c = 0; c < NP; c++) t[c] = src[i] + c < end ? src[i][c] : 0;
        src[i] = t;
      }
    }
    quad_of_rows(*(const HVX_UVector *)src[0], *(const HVX_UVector *)src[1], *(const HVX_UVector *)src[2],
                 *(const HVX_UVector *)src[3], flip, bq + q * NG);
  }
}

/* The same from B^T storage (row j of storage = column j of op(B), contiguous over k): per group of
 * 32 columns and 32 quads, 32 rows of 128 bytes are transposed as 32 x 32 words by five rounds of
 * word-to-128-byte shuffles (rows enter in bit-reversed order, so lanes come out in column order). */
__attribute__((noinline)) static void pack_b_cols(const mh_gemm_job *jb, int n0, int q0, int nq, int G, HVX_Vector *bq) {
  HVX_Vector flip = Q6_V_vsplat_R((int32_t)0x80808080u);
  const uint8_t *end = mh_region + mh_region_bytes;
  static const unsigned char rev5[32] = {0, 16, 8, 24, 4, 20, 12, 28, 2, 18, 10, 26, 6, 22, 14, 30,
                                         1, 17, 9, 25, 5, 21, 13, 29, 3, 19, 11, 27, 7, 23, 15, 31};
  const uint8_t *b = (const uint8_t *)jb->b;
  const uint32_t *rows = jb->b_rows; /* the job's fields in registers: the stores below may alias them */
  const int n = jb->n;
  const long ldb = jb->ldb;
  HVX_Vector tail[32]; /* rows at the region's end, copied (apart from v and w, which stay in registers) */
  for (int g = 0; g < G; g++) /* the panel's valid groups only */
    for (int qb = 0; qb < nq; qb += 32) {
      HVX_Vector v[32], w[32];
      const uint8_t *src[32];
      for (int s = 0; s < 32; s++) {
        int j = n0 + 32 * g + rev5[s];
        src[s] = j < n ? b + (rows ? (long)rows[j] : (long)j * ldb) + 4 * (q0 + qb) : zero_row;
        if (__builtin_expect(src[s] + NP > end, 0)) {
          uint8_t *t = (uint8_t *)&tail[s];
          for (int c = 0; c < NP; c++) t[c] = src[s] + c < end ? src[s][c] : 0;
          src[s] = t;
        }
      }
#pragma clang loop unroll(full)
      for (int s = 0; s < 32; s++) v[s] = *(const HVX_UVector *)src[s];
#pragma clang loop unroll(full)
      for (int size = 4; size <= 64; size *= 2) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) {
          HVX_VectorPair p = Q6_W_vshuff_VVR(v[i + 16], v[i], -size);
          w[2 * i] = Q6_V_lo_W(p), w[2 * i + 1] = Q6_V_hi_W(p);
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < 32; i++) v[i] = w[i];
      }
      int cnt = nq - qb < 32 ? nq - qb : 32;
#pragma clang loop unroll(full)
      for (int q = 0; q < 32; q++) /* constant indices keep v in registers */
        if (q < cnt) bq[(qb + q) * NG + g] = Q6_V_vxor_VV(v[q], flip);
    }
}

/* A by rows: quads [q0, q0+nq) of every row into out (row r at out + r * nq words), zero past k,
 * their sums added to the row's lanes in vsum (m vectors) and, with `last`, the row sums finished
 * into sums. Rows go in increasing order, so a vector running past its row only writes bytes a
 * later row (or the room left after the last) rewrites. */
__attribute__((noinline)) static void pack_a_rows(const mh_gemm_job *jb, int q0, int nq, int32_t *__restrict out,
                                                  HVX_Vector *__restrict vsum, int last, int32_t *__restrict sums) {
  const uint8_t *end = mh_region + mh_region_bytes;
  const uint32_t *rows = jb->a_rows;
  const int m = jb->m, lo = 4 * q0, len = 4 * nq, valid = jb->k - lo < len ? jb->k - lo : len;
  HVX_Vector ones = Q6_V_vsplat_R(0x01010101), zero = Q6_V_vzero();
  for (int r = 0; r < m; r++) {
    const uint8_t *src = (const uint8_t *)jb->a + rows[r] + lo;
    uint8_t *dst = (uint8_t *)(out + (long)r * nq);
    HVX_Vector s = q0 ? vsum[r] : zero;
    int i = 0, tail = 0;
    if (end - src >= valid + 128) /* the whole row and a vector past it inside the region: no checks */
      for (; i + 128 <= valid; i += 128) {
        HVX_Vector v = *(const HVX_UVector *)(src + i);
        *(HVX_UVector *)(dst + i) = v;
        s = Q6_Vw_vrmpyacc_VwVbVb(s, v, ones);
      }
    for (; i + 128 <= valid && end - (src + i) >= 128; i += 128) {
      HVX_Vector v = *(const HVX_UVector *)(src + i);
      *(HVX_UVector *)(dst + i) = v;
      s = Q6_Vw_vrmpyacc_VwVbVb(s, v, ones);
    }
    if (i < valid && end - (src + i) >= 128) { /* the row's last part: bytes past it do not count */
      HVX_Vector v = *(const HVX_UVector *)(src + i);
      *(HVX_UVector *)(dst + i) = v;
      s = Q6_Vw_vrmpyacc_VwVbVb(s, Q6_V_vmux_QVV(Q6_Q_vsetq_R(valid - i), v, zero), ones);
      i = valid;
    }
    for (; i < valid; i++) dst[i] = src[i], tail += (int8_t)src[i];
    for (i = valid; i < len; i++) dst[i] = 0;
    vsum[r] = s;
    if (!last) {
      if (tail) vsum[r] = Q6_Vw_vadd_VwVw(s, Q6_V_vmux_QVV(Q6_Q_vsetq_R(4), Q6_V_vsplat_R(tail), zero));
      continue;
    }
    int32_t total = tail;
    for (int w = 0; w < 32; w++) total += Q6_R_vextract_VR(s, 4 * w);
    sums[r] = total;
  }
}

/* acc[r][g] = (fresh ? 0 : acc[r][g]) + the sum over the chunk's nq quads of vrmpy(bq[q][g], a_r[q]),
 * R rows, G vectors. The loops have constant bounds where it is called, so every accumulator is a
 * register. */
static inline __attribute__((always_inline)) void kernel(int R, int G, const int32_t *const *a, const HVX_Vector *bq,
                                                         int nq, HVX_Vector acc[4][NG], int fresh) {
  HVX_Vector c[4][NG];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) c[r][g] = fresh ? Q6_V_vzero() : acc[r][g];
  for (int q = 0; q < nq; q++) {
    HVX_Vector b[NG];
    for (int g = 0; g < G; g++) b[g] = bq[q * NG + g];
    for (int r = 0; r < R; r++) {
      int32_t w = a[r][q];
      for (int g = 0; g < G; g++) c[r][g] = Q6_Vw_vrmpyacc_VwVubRb(c[r][g], b[g], w);
    }
  }
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = c[r][g];
}

/* The kernel for a row block of R in {1, 2, 4} rows and the panel's G valid vectors; `fresh`: the
 * accumulators start at zero (in registers) instead of acc. */
__attribute__((noinline)) static void run_kernel(int R, int G, const int32_t *const *a, const HVX_Vector *bq, int nq,
                                                 HVX_Vector acc[4][NG], int fresh) {
#define MH_K(r, g) \
  if (R == r && G == g) return fresh ? kernel(r, g, a, bq, nq, acc, 1) : kernel(r, g, a, bq, nq, acc, 0)
  MH_K(4, 4); MH_K(4, 3); MH_K(4, 2); MH_K(4, 1);
  MH_K(2, 4); MH_K(2, 3); MH_K(2, 2); MH_K(2, 1);
  MH_K(1, 4); MH_K(1, 3); MH_K(1, 2); MH_K(1, 1);
#undef MH_K
}

/* Row r's finished vector g of the panel at n0: the raw sums less 128 x the row's sum of A, then
 * either added into / stored to C (int32), or biased, requantised and stored to y (int8; only
 * lanes inside n count towards the max and saturations). */
typedef struct {
  const mh_gemm_job *jb;
  mh_gemm_epilogue *ep;
  const int32_t *rowsum;
  mh_rq_consts rq;
  HVX_Vector vmax, vsat, floor;
  int add_c; /* C holds a value to add to (accumulate, or an earlier K chunk's sums) */
  const HVX_Vector *valid; /* the fused epilogue on a padded grid: the panel's lanes that count (-1), or 0 */
  HVX_Vector keep[NG];     /* the fused epilogue: the panel's lanes that count, inside n and on the grid */
} finish_ctx;

/* Row `row` of a panel through the fused epilogue, its four vectors of sums in registers: the 128
 * int8 results (lanes outside keep are 0 and count for nothing). */
static inline __attribute__((always_inline)) HVX_Vector fused_bytes(const finish_ctx *f, const mh_rq_consts *rq, int row,
                                                                    int raw, HVX_Vector a0, HVX_Vector a1, HVX_Vector a2,
                                                                    HVX_Vector a3, const HVX_Vector *keep, HVX_Vector floor,
                                                                    HVX_Vector *vmax, HVX_Vector *vsat, int psto) {
  HVX_Vector corr = Q6_V_vsplat_R(raw ? (int32_t)((uint32_t)f->rowsum[row] * 128u) : 0);
  HVX_Vector bias = Q6_V_vsplat_R(f->ep->bias ? f->ep->bias[row] : 0), in[NG] = {a0, a1, a2, a3}, words[NG];
  for (int g = 0; g < NG; g++) {
    HVX_Vector x = Q6_V_vand_VV(Q6_Vw_vmax_VwVw(Q6_Vw_vadd_VwVw_sat(Q6_Vw_vsub_VwVw(in[g], corr), bias), floor), keep[g]);
    words[g] = psto ? mh_rq_words_psto(rq, x, vmax, vsat) : mh_rq_words(rq, x, vmax, vsat);
  }
  return Q6_Vb_vpack_VhVh_sat(Q6_Vh_vpack_VwVw_sat(words[3], words[2]), Q6_Vh_vpack_VwVw_sat(words[1], words[0]));
}

/* Row `row` of a full panel into int32 C (stored, or added to what C holds). */
static inline __attribute__((always_inline)) void int32_row(const finish_ctx *f, int row, int n0, int raw, HVX_Vector a0,
                                                            HVX_Vector a1, HVX_Vector a2, HVX_Vector a3) {
  HVX_Vector corr = Q6_V_vsplat_R(raw ? (int32_t)((uint32_t)f->rowsum[row] * 128u) : 0), in[NG] = {a0, a1, a2, a3};
  HVX_UVector *c = (HVX_UVector *)(f->jb->c + (long)row * f->jb->ldc + n0);
  for (int g = 0; g < NG; g++) c[g] = f->add_c ? Q6_Vw_vadd_VwVw(Q6_Vw_vsub_VwVw(in[g], corr), c[g]) : Q6_Vw_vsub_VwVw(in[g], corr);
}

/* Rows [r0, r0+R) of the panel at n0 (G valid vectors each) finished: the raw sums less 128 x the
 * row's sum of A (when `raw`), then added into / stored to C (int32), or biased, requantised and
 * stored to y (int8; only lanes inside n count towards the max and saturations). Whole panels take
 * the straight vector path. */
/* Whether the 128 bytes at p lie in the region (a partial store may then rewrite the bytes past
 * its end with what they held: the DSP runs one thread, and nothing else writes the region then). */
static inline int fits(const void *p) { return (const uint8_t *)p + 128 <= mh_region + mh_region_bytes; }

static inline __attribute__((always_inline)) void finish_rows(finish_ctx *f, int r0, int R, int n0, int G,
                                                              HVX_Vector acc[4][NG], int raw) {
  const mh_gemm_job *jb = f->jb;
  int n = jb->n, full = n - n0 >= NP;
  if (!f->ep) { /* int32 C */
    for (int r = 0; r < R; r++) {
      if (full) {
        int32_row(f, r0 + r, n0, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        continue;
      }
      HVX_Vector corr = Q6_V_vsplat_R(raw ? (int32_t)((uint32_t)f->rowsum[r0 + r] * 128u) : 0);
      int32_t *c = jb->c + (long)(r0 + r) * jb->ldc + n0;
      for (int g = 0; g < G; g++) {
        HVX_Vector x = Q6_Vw_vsub_VwVw(acc[r][g], corr);
        int cols = n - n0 - 32 * g < 32 ? n - n0 - 32 * g : 32;
        int32_t *dst = c + 32 * g;
        if (cols == 32) { /* a whole vector of a partial panel (C 32 or 64 wide: weight gradients) */
          HVX_UVector *u = (HVX_UVector *)dst;
          *u = f->add_c ? Q6_Vw_vadd_VwVw(x, *u) : x;
          continue;
        }
        if (fits(dst)) { /* the lanes past n keep what is there: read, merge, write back */
          HVX_UVector *u = (HVX_UVector *)dst;
          HVX_Vector old = *u;
          *u = Q6_V_vmux_QVV(Q6_Q_vsetq2_R(4 * cols), f->add_c ? Q6_Vw_vadd_VwVw(x, old) : x, old);
          continue;
        }
        const int32_t *xs = (const int32_t *)&x;
        for (int i = 0; i < cols; i++) dst[i] = f->add_c ? dst[i] + xs[i] : xs[i];
      }
    }
    return;
  }
  /* the fused epilogue: its constants and running max / count in registers for the block (the
   * stores to y below may alias anything in memory, which would reload them per vector) */
  const mh_rq_consts rq = f->rq;
  HVX_Vector vmax = f->vmax, vsat = f->vsat, floor = f->floor, keep[NG];
  for (int g = 0; g < NG; g++) keep[g] = f->keep[g];
  for (int r = 0; r < R; r++) {
    HVX_Vector bytes = rq.mode == 1 /* each form inlined on its own: niti's rounding has no branches */
                           ? fused_bytes(f, &rq, r0 + r, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3], keep, floor,
                                         &vmax, &vsat, 1)
                           : fused_bytes(f, &rq, r0 + r, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3], keep, floor,
                                         &vmax, &vsat, 0);
    int8_t *y = f->ep->y + (long)(r0 + r) * f->ep->ldy + n0;
    if (full) *(HVX_UVector *)y = bytes;
    else if (fits(y)) *(HVX_UVector *)y = Q6_V_vmux_QVV(Q6_Q_vsetq2_R(n - n0), bytes, *(HVX_UVector *)y);
    else
      for (int i = 0; i < n - n0; i++) y[i] = ((const int8_t *)&bytes)[i];
  }
  f->vmax = vmax, f->vsat = vsat;
}

__attribute__((noinline)) static void finish_block(finish_ctx *f, int r0, int R, int n0, int G, HVX_Vector acc[4][NG],
                                                   int raw) {
  finish_rows(f, r0, R, n0, G, acc, raw);
}

/* Rows [0, rows) of the panel at n0 (rows a multiple of 4) as whole blocks (4 rows x 4 vectors) over
 * their last K chunk with fresh accumulators, each finished as soon as its sums are done: on a full
 * panel they go from the kernel to the epilogue in registers. Row r of A starts at a + r * stride.
 * The epilogue's constants are loaded once for the panel. */
__attribute__((noinline)) static void blocks_4x4(const int32_t *a, long stride, const HVX_Vector *bq, int nq,
                                                 finish_ctx *f, int rows, int n0, int raw) {
  HVX_Vector acc[4][NG];
  const int32_t *ap[4];
  if (f->jb->n - n0 < NP || !f->ep) { /* a partial panel, or int32 C */
    const int whole = f->jb->n - n0 >= NP;
    for (int r0 = 0; r0 < rows; r0 += 4) {
      for (int r = 0; r < 4; r++) ap[r] = a + (r0 + r) * stride;
      kernel(4, NG, ap, bq, nq, acc, 1);
      if (whole)
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) int32_row(f, r0 + r, n0, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
      else
        finish_rows(f, r0, 4, n0, NG, acc, raw);
    }
    return;
  }
  const mh_rq_consts rq = f->rq; /* in registers (the stores to y may alias anything in memory) */
  HVX_Vector vmax = f->vmax, vsat = f->vsat, floor = f->floor, keep[NG] = {f->keep[0], f->keep[1], f->keep[2], f->keep[3]};
  for (int r0 = 0; r0 < rows; r0 += 4) {
    for (int r = 0; r < 4; r++) ap[r] = a + (r0 + r) * stride;
    kernel(4, NG, ap, bq, nq, acc, 1);
    if (rq.mode == 1) /* niti's rounding, without branches */
#pragma clang loop unroll(full)
      for (int r = 0; r < 4; r++)
        *(HVX_UVector *)(f->ep->y + (long)(r0 + r) * f->ep->ldy + n0) =
            fused_bytes(f, &rq, r0 + r, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3], keep, floor, &vmax, &vsat, 1);
    else
#pragma clang loop unroll(full)
      for (int r = 0; r < 4; r++)
        *(HVX_UVector *)(f->ep->y + (long)(r0 + r) * f->ep->ldy + n0) =
            fused_bytes(f, &rq, r0 + r, raw, acc[r][0], acc[r][1], acc[r][2], acc[r][3], keep, floor, &vmax, &vsat, 0);
  }
  f->vmax = vmax, f->vsat = vsat;
}

/* The valid-column masks of a padded grid, panel by panel: lane j counts when its grid column <
 * grid_q and row < grid_p. pos[g] / pos[NG + g] hold the grid column / row of group g's lanes in the
 * current panel (set up for the first panel by grid_start), advanced 128 columns by grid_next. */
typedef struct {
  HVX_Vector pos[2 * NG];
  int32_t step_x, step_y; /* 128 columns: step_x = 128 mod grid_w columns and step_y rows (mod grid_h) */
} grid_walk;

static void grid_start(const mh_gemm_job *jb, grid_walk *w) {
  int gx = 0, gy = 0, q = NP, sy = 0;
  for (int j = 0; j < NP; j++) {
    ((int32_t *)&w->pos[j / 32])[j % 32] = gx, ((int32_t *)&w->pos[NG + j / 32])[j % 32] = gy;
    if (++gx == jb->grid_w) gx = 0, gy = gy + 1 == jb->grid_h ? 0 : gy + 1;
  }
  while (q >= jb->grid_w) q -= jb->grid_w, sy++; /* no division on the DSP */
  while (sy >= jb->grid_h) sy -= jb->grid_h;
  w->step_x = q, w->step_y = sy;
}

static void grid_masks(const mh_gemm_job *jb, const grid_walk *w, HVX_Vector *valid) {
  HVX_Vector q = Q6_V_vsplat_R(jb->grid_q), p = Q6_V_vsplat_R(jb->grid_p), on = Q6_V_vsplat_R(-1);
  for (int g = 0; g < NG; g++)
    valid[g] = Q6_V_vmux_QVV(Q6_Q_and_QQ(Q6_Q_vcmp_gt_VwVw(q, w->pos[g]), Q6_Q_vcmp_gt_VwVw(p, w->pos[NG + g])), on,
                             Q6_V_vzero());
}

static void grid_next(const mh_gemm_job *jb, grid_walk *w) {
  HVX_Vector sx = Q6_V_vsplat_R(w->step_x), sy = Q6_V_vsplat_R(w->step_y), one = Q6_V_vsplat_R(1);
  HVX_Vector gw = Q6_V_vsplat_R(jb->grid_w), gh = Q6_V_vsplat_R(jb->grid_h);
  HVX_Vector wl = Q6_V_vsplat_R(jb->grid_w - 1), hl = Q6_V_vsplat_R(jb->grid_h - 1);
  for (int g = 0; g < NG; g++) {
    HVX_Vector x = Q6_Vw_vadd_VwVw(w->pos[g], sx);
    HVX_VectorPred wrap = Q6_Q_vcmp_gt_VwVw(x, wl); /* past the row: one more row */
    x = Q6_V_vmux_QVV(wrap, Q6_Vw_vsub_VwVw(x, gw), x);
    HVX_Vector y = Q6_Vw_vadd_VwVw(Q6_Vw_vadd_VwVw(w->pos[NG + g], sy), Q6_V_vmux_QVV(wrap, one, Q6_V_vzero()));
    y = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VwVw(y, hl), Q6_Vw_vsub_VwVw(y, gh), y); /* y < 2 grid_h before */
    w->pos[g] = x, w->pos[NG + g] = y;
  }
}

int mh_hvx_gemm_s8(mh_vtcm *v, const mh_gemm_job *jb, uint32_t *chunks, mh_gemm_epilogue *ep) {
  int m = jb->m, n = jb->n, k = jb->k, qa = quads(k);
  uint32_t avail = v->size - ((v->used + 127u) & ~127u);
  int kcq = (int)mh_wire_gemm_steps(avail, (uint32_t)m); /* quads per K chunk */
  if (!kcq) return MH_WIRE_E_VTCM;
  int nchunks = (int)ceil_div((uint32_t)qa, (uint32_t)kcq);
  if (ep && nchunks > 1 && m > (int)MH_WIRE_FUSED_MAX_M) return MH_WIRE_E_VTCM;
  HVX_Vector *bq = mh_vtcm_alloc(v, (uint32_t)(kcq * NG * 128));
  if (!bq) return MH_WIRE_E_VTCM;
  /* op(A) as rows of words with their sums: packed for the subgraph, packed now, or read in place
   * (stored by rows, 4-byte aligned, whole quads: then only the sums are taken) */
  const int32_t *arows = (const int32_t *)jb->apack, *rowsum;
  long astride = qa;
  int32_t *sums_now = 0;
  int32_t *achunk = 0; /* A by rows: each K chunk of it packed here in turn, its row sums gathered in avsum */
  HVX_Vector *avsum = 0;
  if (jb->apack) {
    rowsum = (const int32_t *)(jb->apack + mh_wire_apack_rows_bytes((uint32_t)m, (uint32_t)k));
  } else if (jb->a_rows) { /* row sums, their vector lanes, then room for a chunk of A and a spill */
    uint64_t words = (uint64_t)((m + 31) & ~31) + 32ull * (uint64_t)m + (uint64_t)m * (uint64_t)kcq + 32;
    if (words * 4 > sizeof a_mem) return MH_WIRE_E_VTCM;
    rowsum = a_mem, avsum = (HVX_Vector *)(a_mem + ((m + 31) & ~31)), achunk = (int32_t *)(avsum + m);
  } else if (!jb->trans_a && k % 4 == 0 && jb->lda % 4 == 0 && ((uintptr_t)jb->a & 3u) == 0 &&
             (uint64_t)m * 4 <= sizeof a_mem) {
    arows = (const int32_t *)jb->a, astride = jb->lda / 4;
    sums_now = a_mem;
    HVX_Vector ones = Q6_V_vsplat_R(0x01010101);
    for (int r = 0; r < m; r++) {
      const int8_t *src = jb->a + (long)r * jb->lda;
      HVX_Vector s = Q6_V_vzero();
      int kk = 0, total = 0;
      for (; kk + 128 <= k; kk += 128) s = Q6_Vw_vrmpyacc_VwVbVb(s, *(const HVX_UVector *)(src + kk), ones);
      for (int i = 0; i < 32; i++) total += Q6_R_vextract_VR(s, 4 * i);
      for (; kk < k; kk++) total += src[kk];
      sums_now[r] = total;
    }
    rowsum = sums_now;
  } else {
    if (mh_wire_apack_bytes((uint32_t)m, (uint32_t)k) > sizeof a_mem) return MH_WIRE_E_VTCM;
    mh_hvx_pack_a(m, k, jb->a, jb->lda, jb->trans_a, (uint8_t *)a_mem);
    arows = a_mem;
    rowsum = (const int32_t *)((const uint8_t *)a_mem + mh_wire_apack_rows_bytes((uint32_t)m, (uint32_t)k));
  }
  finish_ctx f = {jb, ep, rowsum, mh_rq_make(ep ? ep->shift : 0, ep ? ep->mode : 0), Q6_V_vzero(), Q6_V_vzero(),
                  Q6_V_vsplat_R(-0x7fffffff), 0, 0, {Q6_V_vzero(), Q6_V_vzero(), Q6_V_vzero(), Q6_V_vzero()}};
  HVX_Vector *valid = 0;
  grid_walk walk;
  if (ep && jb->grid_w) {
    valid = mh_vtcm_alloc(v, NG * 128);
    if (!valid) return MH_WIRE_E_VTCM;
    f.valid = valid;
    grid_start(jb, &walk);
  }
  *chunks = (uint32_t)nchunks;
  uint32_t far = 0; /* B's largest row offset (stored by rows) */
  if (!jb->trans_b) {
    if (jb->b_rows)
      for (int i = 0; i < k; i++) far = jb->b_rows[i] > far ? jb->b_rows[i] : far;
    else
      far = (uint32_t)(k - 1) * (uint32_t)jb->ldb;
  }
  for (int n0 = 0; n0 < n; n0 += NP) {
    int G = (n - n0 + 31) / 32 < NG ? (n - n0 + 31) / 32 : NG;
    if (valid) grid_masks(jb, &walk, valid), grid_next(jb, &walk);
    for (int g = 0; ep && g < NG; g++) { /* the lanes that count: inside n, and on the grid's valid positions */
      int cols = n - n0 - 32 * g;
      f.keep[g] = valid ? valid[g] : Q6_V_vsplat_R(-1);
      if (cols < 32) f.keep[g] = cols > 0 ? Q6_V_vmux_QVV(Q6_Q_vsetq_R(4 * cols), f.keep[g], Q6_V_vzero()) : Q6_V_vzero();
    }
    for (int c = 0; c < nchunks; c++) {
      int q0 = c * kcq, nq = qa - q0 < kcq ? qa - q0 : kcq, last = c == nchunks - 1;
      if (jb->trans_b) pack_b_cols(jb, n0, q0, nq, G, bq);
      else pack_b_rows(jb, n0, q0, nq, far, bq);
      if (achunk) pack_a_rows(jb, q0, nq, achunk, avsum, last, (int32_t *)rowsum);
      int r_start = 0; /* the whole blocks of a last chunk with fresh sums in one call, the rest below */
      if (G == NG && !(ep && c > 0) && (!ep || last) && m >= 4) {
        f.add_c = !ep && (c > 0 || jb->accumulate);
        r_start = m & ~3;
        blocks_4x4(achunk ? achunk : arows + q0, achunk ? nq : astride, bq, nq, &f, r_start, n0, last);
      }
      for (int r0 = r_start, R; r0 < m; r0 += R) { /* blocks of 4 rows, the last 1-3 as 2 and 1 */
        R = m - r0 >= 4 ? 4 : m - r0 >= 2 ? 2 : 1;
        HVX_Vector acc[4][NG];
        int fresh = !(ep && c > 0); /* else the fused epilogue's sums so far */
        if (!fresh)
          for (int r = 0; r < R; r++)
            for (int g = 0; g < G; g++) acc[r][g] = *(HVX_Vector *)(pacc_mem + (long)(r0 + r) * NP + 32 * g);
        if (ep && G < NG) /* the fused epilogue reads whole panels (their lanes past n masked) */
          for (int r = 0; r < R; r++)
            for (int g = G; g < NG; g++) acc[r][g] = Q6_V_vzero();
        const int32_t *ap[4];
        for (int r = 0; r < R; r++) ap[r] = achunk ? achunk + (long)(r0 + r) * nq : arows + (long)(r0 + r) * astride + q0;
        f.add_c = !ep && (c > 0 || jb->accumulate);
        run_kernel(R, G, ap, bq, nq, acc, fresh);
        if (ep && !last) { /* the fused epilogue waits for the whole sum */
          for (int r = 0; r < R; r++)
            for (int g = 0; g < G; g++) *(HVX_Vector *)(pacc_mem + (long)(r0 + r) * NP + 32 * g) = acc[r][g];
          continue;
        }
        /* int32 C: the first chunk stores (or adds to C when accumulating), later chunks add; the last
         * takes the correction (int32 sums wrap alike in every order; A by rows has its sums then) */
        finish_block(&f, r0, R, n0, G, acc, last);
      }
    }
  }
  if (ep) {
    const uint32_t *lm = (const uint32_t *)&f.vmax, *ls = (const uint32_t *)&f.vsat;
    ep->max_abs = 0, ep->saturated = 0;
    for (int i = 0; i < 32; i++) {
      ep->max_abs = lm[i] > ep->max_abs ? lm[i] : ep->max_abs;
      ep->saturated += ls[i];
    }
  }
  return MH_WIRE_OK;
}
