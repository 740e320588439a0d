/* HVX requantise: 128 int32 (four vectors) per step, magnitudes as unsigned words so INT32_MIN is
 * 2^31 exactly, rounding on the discarded bits, saturation counted per lane, and two saturating
 * packs (word -> half -> byte) into one 128-byte output vector. */
#include "hvx_requant.h"
#include "wire.h"

int mh_hvx_requant_s8(mh_vtcm *v, const int32_t *x, int8_t *y, uint32_t n, int shift, int mode, uint32_t *max_abs,
                      uint32_t *saturated) {
  HVX_Vector *tail_in = mh_vtcm_alloc(v, 512), *tail_out = mh_vtcm_alloc(v, 128), *lanes = mh_vtcm_alloc(v, 256);
  if (!tail_in || !tail_out || !lanes) return MH_WIRE_E_VTCM;
  mh_rq_consts c = mh_rq_make(shift, mode);
  HVX_Vector vmax = c.zero, vsat = c.zero;
  uint32_t full = n / 128u * 128u;
  for (uint32_t i = 0; i <= full; i += 128) {
    const HVX_Vector *src = (const HVX_Vector *)(x + i);
    HVX_Vector *dst = (HVX_Vector *)(y + i);
    uint32_t rest = n - i;
    if (i == full) { /* the tail: zero-padded copy (zeros round to zero and do not move max or count) */
      if (rest == 0) break;
      int32_t *t = (int32_t *)tail_in;
      for (uint32_t k = 0; k < 128; k++) t[k] = k < rest ? x[i + k] : 0;
      src = tail_in, dst = tail_out;
    }
    HVX_Vector w0, w1, w2, w3;
    if (mode == 1) {
      w0 = mh_rq_words_psto(&c, src[0], &vmax, &vsat), w1 = mh_rq_words_psto(&c, src[1], &vmax, &vsat);
      w2 = mh_rq_words_psto(&c, src[2], &vmax, &vsat), w3 = mh_rq_words_psto(&c, src[3], &vmax, &vsat);
    } else {
      w0 = mh_rq_words(&c, src[0], &vmax, &vsat), w1 = mh_rq_words(&c, src[1], &vmax, &vsat);
      w2 = mh_rq_words(&c, src[2], &vmax, &vsat), w3 = mh_rq_words(&c, src[3], &vmax, &vsat);
    }
    HVX_Vector h01 = Q6_Vh_vpack_VwVw_sat(w1, w0), h23 = Q6_Vh_vpack_VwVw_sat(w3, w2);
    *dst = Q6_Vb_vpack_VhVh_sat(h23, h01);
    if (i == full)
      for (uint32_t k = 0; k < rest; k++) y[i + k] = ((const int8_t *)tail_out)[k];
  }
  lanes[0] = vmax, lanes[1] = vsat;
  const uint32_t *lm = (const uint32_t *)&lanes[0], *ls = (const uint32_t *)&lanes[1];
  uint32_t m = 0, sc = 0;
  for (int k = 0; k < 32; k++) {
    m = lm[k] > m ? lm[k] : m;
    sc += ls[k];
  }
  *max_abs = m, *saturated = sc;
  return MH_WIRE_OK;
}

/* max |x| as unsigned (INT32_MIN gives 2^31), two vectors a step: the exact rule's max pass. */
uint32_t mh_hvx_max_abs_s32(const int32_t *x, uint32_t n) {
  HVX_Vector m0 = Q6_V_vzero(), m1 = m0;
  uint32_t i = 0, m = 0;
  for (; i + 64 <= n; i += 64) {
    HVX_Vector a0 = Q6_Vw_vabs_Vw(*(const HVX_Vector *)(x + i)), a1 = Q6_Vw_vabs_Vw(*(const HVX_Vector *)(x + i + 32));
    m0 = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(a0, m0), a0, m0), m1 = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(a1, m1), a1, m1);
  }
  m0 = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(m1, m0), m1, m0);
  for (int k = 0; k < 32; k++) {
    uint32_t l = (uint32_t)Q6_R_vextract_VR(m0, 4 * k);
    m = l > m ? l : m;
  }
  for (; i < n; i++) {
    uint32_t a = x[i] < 0 ? 0u - (uint32_t)x[i] : (uint32_t)x[i];
    m = a > m ? a : m;
  }
  return m;
}
