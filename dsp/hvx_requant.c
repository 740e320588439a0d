/* HVX requantise: 128 int32 (four vectors) per step, magnitudes as unsigned words so INT32_MIN is
 * 2^31 exactly, rounding on the discarded bits, saturation counted per lane, and two saturating
 * packs (word -> half -> byte) into one 128-byte output vector. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_requant.h"
#include "wire.h"

typedef struct {
  HVX_Vector zero, one, k127, mask_s, mask_h;
  int s, h, odd, mode;
} rq_consts;

/* One vector of 32 int32: the rounded, saturated, signed words; updates the max and count lanes. */
static HVX_Vector rq_words(const rq_consts *c, HVX_Vector x, HVX_Vector *vmax, HVX_Vector *vsat) {
  HVX_VectorPred neg = Q6_Q_vcmp_gt_VwVw(c->zero, x);
  HVX_Vector a = Q6_Vw_vabs_Vw(x); /* wraps: INT32_MIN stays 0x80000000 = 2^31 as unsigned */
  *vmax = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(a, *vmax), a, *vmax);
  HVX_Vector q = a;
  if (c->s > 0) {
    q = Q6_Vuw_vlsr_VuwR(a, c->s);
    HVX_Vector up;
    if (c->mode == 0) { /* nearest, ties away: the highest discarded bit */
      up = Q6_V_vand_VV(Q6_Vuw_vlsr_VuwR(a, c->s - 1), c->one);
    } else { /* psto: upper half of the discarded bits against the lower half (doubled when s is odd) */
      HVX_Vector r = Q6_V_vand_VV(a, c->mask_s);
      HVX_Vector hi = Q6_Vuw_vlsr_VuwR(r, c->h), lo = Q6_V_vand_VV(r, c->mask_h);
      if (c->odd) lo = Q6_Vw_vadd_VwVw(lo, lo);
      up = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(hi, lo), c->one, c->zero);
    }
    q = Q6_Vw_vadd_VwVw(q, up);
  }
  HVX_VectorPred sat = Q6_Q_vcmp_gt_VuwVuw(q, c->k127);
  *vsat = Q6_Vw_vadd_VwVw(*vsat, Q6_V_vmux_QVV(sat, c->one, c->zero));
  q = Q6_V_vmux_QVV(sat, c->k127, q);
  return Q6_V_vmux_QVV(neg, Q6_Vw_vsub_VwVw(c->zero, q), q);
}

int mh_hvx_requant_s8(mh_vtcm *v, const int32_t *x, int8_t *y, uint32_t n, int shift, int mode, uint32_t *max_abs,
                      uint32_t *saturated) {
  HVX_Vector *tail_in = mh_vtcm_alloc(v, 512), *tail_out = mh_vtcm_alloc(v, 128), *lanes = mh_vtcm_alloc(v, 256);
  if (!tail_in || !tail_out || !lanes) return MH_WIRE_E_VTCM;
  rq_consts c;
  c.zero = Q6_V_vzero(), c.one = Q6_V_vsplat_R(1), c.k127 = Q6_V_vsplat_R(127);
  c.s = shift, c.h = shift >> 1, c.odd = shift & 1, c.mode = mode;
  c.mask_s = Q6_V_vsplat_R((int32_t)(shift >= 32 ? 0xffffffffu : (1u << shift) - 1u));
  c.mask_h = Q6_V_vsplat_R((int32_t)((1u << c.h) - 1u));
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
    HVX_Vector w0 = rq_words(&c, src[0], &vmax, &vsat), w1 = rq_words(&c, src[1], &vmax, &vsat);
    HVX_Vector w2 = rq_words(&c, src[2], &vmax, &vsat), w3 = rq_words(&c, src[3], &vmax, &vsat);
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
