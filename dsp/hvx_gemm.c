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
 * iteration; each column's two words come in one 64-bit load; even and odd steps accumulate
 * separately so consecutive vrmpy do not wait on each other. 8 vrmpy = 1024 MACs per iteration. */
static void kernel_32x4(const HVX_Vector *restrict w, const int64_t *restrict bt, int pairs, int bstride,
                        HVX_Vector *restrict acc) {
  HVX_Vector e0 = acc[0], e1 = acc[1], e2 = acc[2], e3 = acc[3];
  HVX_Vector o0 = Q6_V_vzero(), o1 = Q6_V_vzero(), o2 = Q6_V_vzero(), o3 = Q6_V_vzero();
  const int64_t *b0 = bt, *b1 = bt + bstride, *b2 = bt + 2 * bstride, *b3 = bt + 3 * bstride;
  for (int p = 0; p < pairs; p++) {
    HVX_Vector w0 = w[2 * p], w1 = w[2 * p + 1];
    int64_t x0 = b0[p], x1 = b1[p], x2 = b2[p], x3 = b3[p];
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

int mh_hvx_gemm_s8(mh_vtcm *v, const mh_gemm_job *jb, uint32_t *chunks, mh_gemm_epilogue *ep) {
  int m = jb->m, n = jb->n, k = jb->k, lda = jb->lda, ldb = jb->ldb, ldc = jb->ldc;
  const int8_t *a = jb->a, *b = jb->b;
  int32_t *c = jb->c;
  /* K chunk: an A panel (128 bytes per 4 k) and NT packed columns (4 bytes per 4 k) must fit */
  uint32_t avail = v->size - ((v->used + 127u) & ~127u);
  if (avail < 4096) return MH_WIRE_E_VTCM;
  int max_q = (int)((avail - 2048) / (128 + 4 * NT)) & ~1; /* 4-byte k steps per chunk, even */
  int kc_max = 4 * max_q;
  int q_all = qpad(k < kc_max ? k : kc_max), q_full = qpad(k);
  uint8_t *wp = mh_vtcm_alloc(v, (uint32_t)q_all * 128);
  int64_t *bt = mh_vtcm_alloc(v, (uint32_t)(NT * q_all * 4));
  int32_t *tmp = mh_vtcm_alloc(v, 128 * NT);
  HVX_Vector *acc = mh_vtcm_alloc(v, 128 * NT);
  HVX_Vector *biasv = mh_vtcm_alloc(v, 128), *lanes = mh_vtcm_alloc(v, 256);
  if (!wp || !bt || !tmp || !acc || !biasv || !lanes) return MH_WIRE_E_VTCM;
  if (ep && k > kc_max) return MH_WIRE_E_VTCM; /* the fused epilogue needs all of K in one chunk */
  mh_rq_consts rq = mh_rq_make(ep ? ep->shift : 0, ep ? ep->mode : 0);
  HVX_Vector vmax = Q6_V_vzero(), vsat = Q6_V_vzero(), floor = Q6_V_vsplat_R(-0x7fffffff);
  *chunks = 0; /* K (the batch axis of a weight gradient) in VTCM-sized parts; no division: no libgcc here */
  for (int kc0 = 0; kc0 < k; kc0 += kc_max) ++*chunks;
  for (int m0 = 0; m0 < m; m0 += ROWS) {
    int rows = m - m0 < ROWS ? m - m0 : ROWS;
    if (ep) { /* this block's row biases as one vector (padding rows: 0) */
      int32_t *bw = (int32_t *)biasv;
      for (int i = 0; i < ROWS; i++) bw[i] = ep->bias && i < rows ? ep->bias[m0 + i] : 0;
    }
    for (int kc0 = 0; kc0 < k; kc0 += kc_max) {
      int kc = k - kc0 < kc_max ? k - kc0 : kc_max, q = qpad(kc);
      if (jb->apack) { /* packed once for the subgraph: bring this chunk's vectors into VTCM */
        const HVX_Vector *src = (const HVX_Vector *)(jb->apack + ((long)(m0 / ROWS) * q_full + kc0 / 4) * 128);
        for (int qq = 0; qq < q; qq++) ((HVX_Vector *)wp)[qq] = src[qq];
      } else
        pack_panel(a, lda, jb->trans_a, m0, rows, kc0, kc, q, wp);
      for (int n0 = 0; n0 < n; n0 += NT) {
        int32_t colsum[NT];
        uint8_t *btb = (uint8_t *)bt;
        for (int t = 0; t < NT; t++) {
          colsum[t] = 0;
          for (int kk = 0; kk < 4 * q; kk++) {
            int8_t val = 0;
            if (n0 + t < n && kk < kc)
              val = jb->trans_b ? b[(long)(n0 + t) * ldb + kc0 + kk] : b[(long)(kc0 + kk) * ldb + n0 + t];
            btb[(t * q) * 4 + kk] = (uint8_t)val;
            colsum[t] += val;
          }
          for (int i = 0; i < ROWS; i++)
            tmp[t * ROWS + i] = (jb->accumulate || kc0 > 0) && i < rows && n0 + t < n ? c[(long)(m0 + i) * ldc + n0 + t] : 0;
          acc[t] = ((HVX_Vector *)tmp)[t];
        }
        kernel_32x4((const HVX_Vector *)wp, bt, q / 2, q / 2, acc);
        for (int t = 0; t < NT; t++) {
          HVX_Vector r = Q6_Vw_vsub_VwVw(acc[t], Q6_V_vsplat_R((int32_t)((uint32_t)colsum[t] * 128u)));
          if (n0 + t >= n) continue; /* padding columns: neither written nor measured */
          if (ep) { /* acc + bias, saturated to +-INT32_MAX, rounded to int8 in registers */
            r = Q6_Vw_vmax_VwVw(Q6_Vw_vadd_VwVw_sat(r, *biasv), floor);
            ((HVX_Vector *)tmp)[t] = mh_rq_words(&rq, r, &vmax, &vsat);
            for (int i = 0; i < rows; i++) ep->y[(long)(m0 + i) * ep->ldy + n0 + t] = (int8_t)tmp[t * ROWS + i];
          } else {
            ((HVX_Vector *)tmp)[t] = r;
            for (int i = 0; i < rows; i++) c[(long)(m0 + i) * ldc + n0 + t] = tmp[t * ROWS + i];
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
