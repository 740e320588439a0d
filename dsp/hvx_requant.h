/* The requantise epilogue on HVX: int32 -> int8 by a shift with nearest or NITI pseudo-stochastic
 * rounding and saturation to [-127, 127], measuring max|x| and the saturation count in the same
 * pass; bit-exact to the host's requant_s8 kernels. */
#ifndef MH_DSP_HVX_REQUANT_H
#define MH_DSP_HVX_REQUANT_H

#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>
#include <stdint.h>

#include "vtcm.h"

/* Splatted constants of one requantisation (shift 0..31, mode 0 nearest / 1 psto). */
typedef struct mh_rq_consts {
  HVX_Vector zero, one, k127, mask_s, mask_h;
  int s, h, odd, mode;
} mh_rq_consts;

static inline mh_rq_consts mh_rq_make(int shift, int mode) {
  mh_rq_consts c;
  c.zero = Q6_V_vzero(), c.one = Q6_V_vsplat_R(1), c.k127 = Q6_V_vsplat_R(127);
  c.s = shift, c.h = shift >> 1, c.odd = shift & 1, c.mode = mode;
  c.mask_s = Q6_V_vsplat_R((int32_t)((1u << shift) - 1u)); /* shift <= 31 */
  c.mask_h = Q6_V_vsplat_R((int32_t)((1u << c.h) - 1u));
  return c;
}

/* One vector of 32 int32: the rounded, saturated, signed words; updates the max and count lanes. */
static inline HVX_Vector mh_rq_words(const mh_rq_consts *c, HVX_Vector x, HVX_Vector *vmax, HVX_Vector *vsat) {
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

/* The same for pseudo-stochastic rounding without branches (any shift 0..31: with 0 the discarded
 * bits are none, so nothing rounds), so four vectors of a row interleave in the packets. */
static inline HVX_Vector mh_rq_words_psto(const mh_rq_consts *c, HVX_Vector x, HVX_Vector *vmax, HVX_Vector *vsat) {
  HVX_Vector sign = Q6_Vw_vasr_VwR(x, 31); /* -1 where negative: the sign comes back as (q ^ sign) - sign,
                                              which keeps the few predicate registers for the rest */
  HVX_Vector a = Q6_Vw_vabs_Vw(x); /* wraps: INT32_MIN stays 0x80000000 = 2^31 as unsigned */
  *vmax = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VuwVuw(a, *vmax), a, *vmax);
  HVX_Vector r = Q6_V_vand_VV(a, c->mask_s);
  HVX_Vector hi = Q6_Vuw_vlsr_VuwR(r, c->h), lo = Q6_Vw_vasl_VwR(Q6_V_vand_VV(r, c->mask_h), c->odd);
  HVX_Vector q = Q6_Vw_condacc_QVwVw(Q6_Q_vcmp_gt_VuwVuw(hi, lo), Q6_Vuw_vlsr_VuwR(a, c->s), c->one);
  HVX_VectorPred sat = Q6_Q_vcmp_gt_VuwVuw(q, c->k127);
  *vsat = Q6_Vw_condacc_QVwVw(sat, *vsat, c->one);
  q = Q6_V_vmux_QVV(sat, c->k127, q);
  return Q6_Vw_vsub_VwVw(Q6_V_vxor_VV(q, sign), sign);
}

/* x and y 128-byte aligned; n >= 1; shift 0..31; mode 0 nearest, 1 psto. Returns 0 or a wire status. */
int mh_hvx_requant_s8(mh_vtcm *v, const int32_t *x, int8_t *y, uint32_t n, int shift, int mode, uint32_t *max_abs,
                      uint32_t *saturated);

/* max |x| over n int32 (x 128-byte aligned), as unsigned: INT32_MIN counts 2^31, as in the requantise. */
uint32_t mh_hvx_max_abs_s32(const int32_t *x, uint32_t n);

#endif
