/* int8 GEMM on 128-byte HVX with vrmpy: 32 rows of A per vector (4 consecutive k per 32-bit lane)
 * times a column of B held as 4 int8 in a scalar register. vrmpy multiplies unsigned vector bytes
 * by signed scalar bytes, so A is packed with +128 (xor 0x80) and 128 * (column sum of B) is
 * subtracted at the end: exact, since int32 arithmetic wraps consistently. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_gemm.h"
#include "hvx_requant.h"
#include "wire.h"

#define ROWS 32 /* int32 lanes per vector: output rows per panel */
#define NT 4    /* output columns per kernel call */

/* The inner loop (the one scripts/dsp_macs_per_packet.py reads): k advances two 4-byte steps per
 * iteration; each column's two words come in one 64-bit load (column t's pair p at
 * bt[t * cstride + p * pstride]); even and odd steps accumulate separately so consecutive vrmpy do
 * not wait on each other. 8 vrmpy = 1024 MACs per iteration. */
static void kernel_32x4(const HVX_Vector *restrict w, const int64_t *restrict bt, int pairs, int cstride, int pstride,
                        HVX_Vector *restrict acc) {
  HVX_Vector e0 = acc[0], e1 = acc[1], e2 = acc[2], e3 = acc[3];
  HVX_Vector o0 = Q6_V_vzero(), o1 = Q6_V_vzero(), o2 = Q6_V_vzero(), o3 = Q6_V_vzero();
  const int64_t *b0 = bt, *b1 = bt + cstride, *b2 = bt + 2 * cstride, *b3 = bt + 3 * cstride;
  for (int p = 0, off = 0; p < pairs; p++, off += pstride) {
    HVX_Vector w0 = w[2 * p], w1 = w[2 * p + 1];
    int64_t x0 = b0[off], x1 = b1[off], x2 = b2[off], x3 = b3[off];
    e0 = Q6_Vw_vrmpyacc_VwVubRb(e0, w0, (int32_t)x0);
    o0 = Q6_Vw_vrmpyacc_VwVubRb(o0, w1, (int32_t)(x0 >> 32));
    e1 = Q6_Vw_vrmpyacc_VwVubRb(e1, w0, (int32_t)x1);
    o1 = Q6_Vw_vrmpyacc_VwVubRb(o1, w1, (int32_t)(x1 >> 32));
    e2 = Q6_Vw_vrmpyacc_VwVubRb(e2, w0, (int32_t)x2);
    o2 = Q6_Vw_vrmpyacc_VwVubRb(o2, w1, (int32_t)(x2 >> 32));
    e3 = Q6_Vw_vrmpyacc_VwVubRb(e3, w0, (int32_t)x3);
    o3 = Q6_Vw_vrmpyacc_VwVubRb(o3, w1, (int32_t)(x3 >> 32));
  }
  acc[0] = Q6_Vw_vadd_VwVw(e0, o0), acc[1] = Q6_Vw_vadd_VwVw(e1, o1);
  acc[2] = Q6_Vw_vadd_VwVw(e2, o2), acc[3] = Q6_Vw_vadd_VwVw(e3, o3);
}

/* q vectors of the A panel of rows [m0, m0+rows) and k [k0, k0+kc): vector qq, lane i, byte j =
 * op(A)[m0+i][k0+4qq+j] + 128 (padding: 0 + 128, which meets zero padding in B). */
static void pack_panel(const int8_t *a, int lda, int trans, int m0, int rows, int k0, int kc, int q, uint8_t *wp) {
  for (int qq = 0; qq < q; qq++)
    for (int i = 0; i < ROWS; i++)
      for (int j = 0; j < 4; j++) {
        int kk = 4 * qq + j;
        int8_t val = 0;
        if (i < rows && kk < kc) val = trans ? a[(long)(k0 + kk) * lda + m0 + i] : a[(long)(m0 + i) * lda + k0 + kk];
        wp[qq * 128 + 4 * i + j] = (uint8_t)val ^ 0x80u;
      }
}

static int qpad(int k) { /* 4-byte k steps, rounded up to even */
  int q = (k + 3) / 4;
  return q + (q & 1);
}

void mh_hvx_pack_a(int m, int k, const int8_t *a, int lda, int trans, uint8_t *out) {
  int q = qpad(k);
  for (int m0 = 0; m0 < m; m0 += ROWS)
    pack_panel(a, lda, trans, m0, m - m0 < ROWS ? m - m0 : ROWS, 0, k, q, out + (long)(m0 / ROWS) * q * 128);
}

#define PANEL 128 /* columns of B transposed at once */

/* Scratch for transposed panels of B (ordinary memory, not VTCM: it can exceed the budget). */
static int64_t km_mem[(1 << 20) / 8] __attribute__((aligned(128)));

/* Columns [nb0, nb0+128) (all inside n) of B (k x n, strided columns) over k [k0, k0+kc) into km:
 * 64-bit word pair p of column j (k 8p .. 8p+7) at km[p * 128 + j], zero past kc, which the kernel
 * reads in place; the 128 column sums go to sums (4 vectors). Per 4 rows, two byte shuffles and a
 * halfword shuffle turn 128 columns into 128 words of 4 consecutive k; a word shuffle pairs them
 * into the kernel's 64-bit loads. */
static void transpose_panel(const mh_gemm_job *jb, int nb0, int k0, int kc, int q, int64_t *km, HVX_Vector *sums) {
  HVX_Vector ones = Q6_V_vsplat_R(0x01010101), s0 = Q6_V_vzero(), s1 = s0, s2 = s0, s3 = s0;
  for (int p = 0; p < q / 2; p++) {
    HVX_Vector w[2][4];
    for (int h = 0; h < 2; h++) {
      HVX_Vector r[4];
      for (int i = 0; i < 4; i++) {
        int kk = 4 * (2 * p + h) + i;
        r[i] = kk < kc ? *(const HVX_UVector *)(jb->b + (long)(k0 + kk) * jb->ldb + nb0) : Q6_V_vzero();
      }
      HVX_VectorPair p01 = Q6_W_vshuff_VVR(r[1], r[0], -1), p23 = Q6_W_vshuff_VVR(r[3], r[2], -1);
      HVX_VectorPair lo = Q6_W_vshuff_VVR(Q6_V_lo_W(p23), Q6_V_lo_W(p01), -2);
      HVX_VectorPair hi = Q6_W_vshuff_VVR(Q6_V_hi_W(p23), Q6_V_hi_W(p01), -2);
      w[h][0] = Q6_V_lo_W(lo), w[h][1] = Q6_V_hi_W(lo), w[h][2] = Q6_V_lo_W(hi), w[h][3] = Q6_V_hi_W(hi);
      /* column sums: each word's 4 bytes by vrmpy against ones, 32 columns per vector */
      s0 = Q6_Vw_vrmpyacc_VwVbVb(s0, w[h][0], ones), s1 = Q6_Vw_vrmpyacc_VwVbVb(s1, w[h][1], ones);
      s2 = Q6_Vw_vrmpyacc_VwVbVb(s2, w[h][2], ones), s3 = Q6_Vw_vrmpyacc_VwVbVb(s3, w[h][3], ones);
    }
    for (int g = 0; g < 4; g++) {
      HVX_VectorPair d = Q6_W_vshuff_VVR(w[1][g], w[0][g], -4);
      *(HVX_Vector *)(km + (long)p * PANEL + 32 * g) = Q6_V_lo_W(d);
      *(HVX_Vector *)(km + (long)p * PANEL + 32 * g + 16) = Q6_V_hi_W(d);
    }
  }
  sums[0] = s0, sums[1] = s1, sums[2] = s2, sums[3] = s3;
}

/* NT columns of op(B) [n0, n0+NT) over k [k0, k0+kc) into bt (column t: q words = 4q bytes,
 * zero padded), and each column's sum. Columns past n are zero. (Whole panels of strided columns
 * go through transpose_panel instead; the byte loop serves the last, narrower panel.) */
static void pack_b(const mh_gemm_job *jb, int n0, int k0, int kc, int q, uint8_t *bt, int32_t *colsum) {
  int cols = jb->n - n0 < NT ? jb->n - n0 : NT;
  for (int t = 0; t < NT; t++) {
    uint8_t *dst = bt + t * q * 4;
    int kk = 0;
    if (t < cols && jb->trans_b) { /* the column is contiguous: whole vectors, then bytes */
      const uint8_t *src = (const uint8_t *)jb->b + (long)(n0 + t) * jb->ldb + k0;
      for (; kk + 128 <= kc; kk += 128) *(HVX_UVector *)(dst + kk) = *(const HVX_UVector *)(src + kk);
      for (; kk < kc; kk++) dst[kk] = src[kk];
    } else if (t < cols) { /* strided, one byte per row (no room for a transposed panel) */
      const int8_t *src = jb->b + (long)k0 * jb->ldb + n0 + t;
      for (; kk < kc; kk++) dst[kk] = (uint8_t)src[(long)kk * jb->ldb];
    }
    for (; kk < 4 * q; kk++) dst[kk] = 0;
    /* the column sum with vrmpy against ones: 4 bytes per lane, then the 32 lanes */
    HVX_Vector ones = Q6_V_vsplat_R(0x01010101), sum = Q6_V_vzero();
    int full = (4 * q) & ~127;
    for (int i = 0; i < full; i += 128) sum = Q6_Vw_vrmpyacc_VwVbVb(sum, *(const HVX_UVector *)(dst + i), ones);
    int32_t total = 0;
    for (int i = full; i < 4 * q; i++) total += (int8_t)dst[i];
    for (int i = 0; i < ROWS; i++) total += Q6_R_vextract_VR(sum, 4 * i);
    colsum[t] = total;
  }
}

/* Loop order: per K chunk, every A panel is packed (or copied from the subgraph's packed weights)
 * once; per group of NT columns, B is packed once and serves every 32-row block. */
int mh_hvx_gemm_s8(mh_vtcm *v, const mh_gemm_job *jb, uint32_t *chunks, mh_gemm_epilogue *ep) {
  int m = jb->m, n = jb->n, k = jb->k, ldc = jb->ldc, blocks = (m + ROWS - 1) / ROWS;
  int32_t *c = jb->c;
  uint32_t avail = v->size - ((v->used + 127u) & ~127u);
  int max_q = (int)mh_wire_gemm_steps(avail, (uint32_t)m);
  if (!max_q) return MH_WIRE_E_VTCM;
  int kc_max = 4 * max_q;
  if (ep && k > kc_max) return MH_WIRE_E_VTCM; /* the fused epilogue needs all of K in one chunk */
  int q_all = qpad(k < kc_max ? k : kc_max), q_full = qpad(k);
  uint8_t *wp = mh_vtcm_alloc(v, (uint32_t)(blocks * q_all * 128));
  uint8_t *bt = mh_vtcm_alloc(v, (uint32_t)(NT * q_all * 4));
  int32_t *tmp = mh_vtcm_alloc(v, 128 * NT);
  HVX_Vector *acc = mh_vtcm_alloc(v, 128 * NT);
  HVX_Vector *biasv = mh_vtcm_alloc(v, (uint32_t)(128 * blocks)), *lanes = mh_vtcm_alloc(v, 256);
  HVX_Vector *psum = mh_vtcm_alloc(v, 4 * 128); /* a transposed panel's column sums */
  if (!wp || !bt || !tmp || !acc || !biasv || !lanes || !psum) return MH_WIRE_E_VTCM;
  /* strided B columns go through transposed panels when one fits the scratch */
  int64_t *km = !jb->trans_b && (long)q_all * 512 <= (long)sizeof km_mem ? km_mem : 0;
  if (ep) /* each block's row biases as one vector (padding rows: 0) */
    for (int b = 0; b < blocks; b++) {
      int32_t *bw = (int32_t *)&biasv[b];
      for (int i = 0; i < ROWS; i++) bw[i] = ep->bias && b * ROWS + i < m ? ep->bias[b * ROWS + i] : 0;
    }
  mh_rq_consts rq = mh_rq_make(ep ? ep->shift : 0, ep ? ep->mode : 0);
  HVX_Vector vmax = Q6_V_vzero(), vsat = Q6_V_vzero(), floor = Q6_V_vsplat_R(-0x7fffffff);
  *chunks = 0; /* K (the batch axis of a weight gradient) in VTCM-sized parts */
  for (int kc0 = 0; kc0 < k; kc0 += kc_max) {
    int kc = k - kc0 < kc_max ? k - kc0 : kc_max, q = qpad(kc), first = !jb->accumulate && kc0 == 0;
    ++*chunks;
    for (int b = 0; b < blocks; b++) {
      int rows = m - b * ROWS < ROWS ? m - b * ROWS : ROWS;
      if (jb->apack) { /* packed once for the subgraph: bring this chunk's vectors into VTCM */
        const HVX_Vector *src = (const HVX_Vector *)(jb->apack + ((long)b * q_full + kc0 / 4) * 128);
        for (int qq = 0; qq < q; qq++) ((HVX_Vector *)wp)[b * q + qq] = src[qq];
      } else
        pack_panel(jb->a, jb->lda, jb->trans_a, b * ROWS, rows, kc0, kc, q, wp + (long)b * q * 128);
    }
    for (int n0 = 0; n0 < n; n0 += NT) {
      int32_t colsum[NT];
      int panel = km && n - (n0 & ~(PANEL - 1)) >= PANEL; /* a whole panel of strided columns */
      if (panel && (n0 & (PANEL - 1)) == 0) transpose_panel(jb, n0, kc0, kc, q, km, psum);
      if (panel)
        for (int t = 0; t < NT; t++) colsum[t] = ((const int32_t *)psum)[(n0 & (PANEL - 1)) + t];
      else
        pack_b(jb, n0, kc0, kc, q, bt, colsum);
      for (int b = 0; b < blocks; b++) {
        int m0 = b * ROWS, rows = m - m0 < ROWS ? m - m0 : ROWS;
        for (int t = 0; t < NT; t++) {
          if (first) { /* nothing to add to */
            acc[t] = Q6_V_vzero();
            continue;
          }
          for (int i = 0; i < ROWS; i++) tmp[t * ROWS + i] = i < rows && n0 + t < n ? c[(long)(m0 + i) * ldc + n0 + t] : 0;
          acc[t] = ((HVX_Vector *)tmp)[t];
        }
        if (panel) /* straight from the transposed panel */
          kernel_32x4((const HVX_Vector *)(wp + (long)b * q * 128), km + (n0 & (PANEL - 1)), q / 2, 1, PANEL, acc);
        else
          kernel_32x4((const HVX_Vector *)(wp + (long)b * q * 128), (const int64_t *)bt, q / 2, q / 2, 1, acc);
        for (int t = 0; t < NT; t++) {
          HVX_Vector r = Q6_Vw_vsub_VwVw(acc[t], Q6_V_vsplat_R((int32_t)((uint32_t)colsum[t] * 128u)));
          if (n0 + t >= n) continue; /* padding columns: neither written nor measured */
          if (ep) { /* acc + bias, saturated to +-INT32_MAX, rounded to int8 in registers */
            r = Q6_Vw_vmax_VwVw(Q6_Vw_vadd_VwVw_sat(r, biasv[b]), floor);
            ((HVX_Vector *)tmp)[t] = mh_rq_words(&rq, r, &vmax, &vsat);
            for (int i = 0; i < rows; i++) ep->y[(long)(m0 + i) * ep->ldy + n0 + t] = (int8_t)tmp[t * ROWS + i];
          } else
            ((HVX_Vector *)tmp)[t] = r;
        }
        if (!ep) { /* row by row: each row's NT results are adjacent in C */
          int cols = n - n0 < NT ? n - n0 : NT;
          for (int i = 0; i < rows; i++) {
            int32_t *dst = c + (long)(m0 + i) * ldc + n0;
            if (cols == NT) dst[0] = tmp[i], dst[1] = tmp[ROWS + i], dst[2] = tmp[2 * ROWS + i], dst[3] = tmp[3 * ROWS + i];
            else
              for (int t = 0; t < cols; t++) dst[t] = tmp[t * ROWS + i];
          }
        }
      }
    }
  }
  if (ep) {
    lanes[0] = vmax, lanes[1] = vsat;
    const uint32_t *lm = (const uint32_t *)&lanes[0], *ls = (const uint32_t *)&lanes[1];
    ep->max_abs = 0, ep->saturated = 0;
    for (int i = 0; i < ROWS; i++) {
      ep->max_abs = lm[i] > ep->max_abs ? lm[i] : ep->max_abs;
      ep->saturated += ls[i];
    }
  }
  return MH_WIRE_OK;
}
