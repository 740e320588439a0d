/* HVX ReLU on int8: 128 elements per vector; the tail goes through a zero-padded VTCM copy. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_eltwise.h"
#include "wire.h"

/* Runs f over n bytes of up to two inputs, whole vectors in place and the tail via VTCM. */
typedef HVX_Vector (*vec_fn)(HVX_Vector a, HVX_Vector b);

static int map2(mh_vtcm *v, const int8_t *a, const int8_t *b, int8_t *out, uint32_t n, vec_fn f) {
  HVX_Vector *ta = mh_vtcm_alloc(v, 128), *tb = mh_vtcm_alloc(v, 128), *to = mh_vtcm_alloc(v, 128);
  if (!ta || !tb || !to) return MH_WIRE_E_VTCM;
  uint32_t full = n / 128u * 128u;
  for (uint32_t i = 0; i < full; i += 128)
    *(HVX_Vector *)(out + i) = f(*(const HVX_Vector *)(a + i), b ? *(const HVX_Vector *)(b + i) : Q6_V_vzero());
  if (full < n) {
    int8_t *pa = (int8_t *)ta, *pb = (int8_t *)tb, *po = (int8_t *)to;
    for (uint32_t k = 0; k < 128; k++) pa[k] = full + k < n ? a[full + k] : 0, pb[k] = b && full + k < n ? b[full + k] : 0;
    *to = f(*ta, *tb);
    for (uint32_t k = 0; full + k < n; k++) out[full + k] = po[k];
  }
  return MH_WIRE_OK;
}

static HVX_Vector relu_f(HVX_Vector x, HVX_Vector unused) {
  (void)unused;
  return Q6_Vb_vmax_VbVb(x, Q6_V_vzero());
}
static HVX_Vector relu_bwd_f(HVX_Vector y, HVX_Vector dy) {
  return Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VbVb(y, Q6_V_vzero()), dy, Q6_V_vzero());
}

int mh_hvx_relu_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t n) { return map2(v, x, 0, y, n, relu_f); }
int mh_hvx_relu_bwd_s8(mh_vtcm *v, const int8_t *y, const int8_t *dy, int8_t *dx, uint32_t n) {
  return map2(v, y, dy, dx, n, relu_bwd_f);
}

/* Nearest rounding (ties away from zero) of halfwords by s in [0, 8]. */
static HVX_Vector round_h(HVX_Vector v, int s) {
  if (s <= 0) return v;
  HVX_Vector a = Q6_Vh_vabs_Vh(v), one = Q6_Vh_vsplat_R(1), zero = Q6_V_vzero();
  HVX_Vector q = Q6_Vh_vadd_VhVh(Q6_Vuh_vlsr_VuhR(a, s), Q6_V_vand_VV(Q6_Vuh_vlsr_VuhR(a, s - 1), one));
  return Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VhVh(zero, v), Q6_Vh_vsub_VhVh(zero, q), q);
}

/* 128 aligned sums (as two halfword vectors, even and odd elements) of a chunk. */
static void add_chunk(HVX_Vector a, HVX_Vector b, int sa, int sb, HVX_Vector *lo, HVX_Vector *hi) {
  HVX_VectorPair wa = Q6_Wh_vsxt_Vb(a), wb = Q6_Wh_vsxt_Vb(b);
  *lo = Q6_Vh_vadd_VhVh(round_h(Q6_V_lo_W(wa), sa), round_h(Q6_V_lo_W(wb), sb));
  *hi = Q6_Vh_vadd_VhVh(round_h(Q6_V_hi_W(wa), sa), round_h(Q6_V_hi_W(wb), sb));
}

int mh_hvx_add_s8(mh_vtcm *v, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, uint32_t n, int *ey) {
  HVX_Vector *ta = mh_vtcm_alloc(v, 128), *tb = mh_vtcm_alloc(v, 128), *to = mh_vtcm_alloc(v, 128);
  if (!ta || !tb || !to) return MH_WIRE_E_VTCM;
  int e = ea > eb ? ea : eb, sa = e - ea > 8 ? 8 : e - ea, sb = e - eb > 8 ? 8 : e - eb; /* |q| < 128: 8 bits clear it */
  uint32_t chunks = (n + 127) / 128;
  HVX_Vector big = Q6_V_vzero(), k127 = Q6_Vh_vsplat_R(127);
  for (int pass = 0; pass < 2; pass++) { /* pass 0: does any sum leave [-127, 127]? pass 1: write */
    int over = 0;
    if (pass == 1) {
      const int16_t *bl = (const int16_t *)&big;
      for (int i = 0; i < 64; i++) over |= bl[i] != 0;
    }
    for (uint32_t ch = 0; ch < chunks; ch++) {
      uint32_t i = ch * 128, rest = n - i;
      HVX_Vector va, vb;
      if (rest >= 128) va = *(const HVX_Vector *)(a + i), vb = *(const HVX_Vector *)(b + i);
      else {
        for (uint32_t k = 0; k < 128; k++) ((int8_t *)ta)[k] = k < rest ? a[i + k] : 0, ((int8_t *)tb)[k] = k < rest ? b[i + k] : 0;
        va = *ta, vb = *tb;
      }
      HVX_Vector lo, hi;
      add_chunk(va, vb, sa, sb, &lo, &hi);
      if (pass == 0) {
        HVX_Vector m = Q6_Vh_vmax_VhVh(Q6_Vh_vabs_Vh(lo), Q6_Vh_vabs_Vh(hi));
        big = Q6_V_vmux_QVV(Q6_Q_vcmp_gt_VhVh(m, k127), Q6_Vh_vsplat_R(1), big);
        continue;
      }
      if (over) lo = round_h(lo, 1), hi = round_h(hi, 1);
      HVX_Vector out = Q6_Vb_vshuffe_VbVb(hi, lo); /* low bytes back in element order */
      if (rest >= 128) *(HVX_Vector *)(y + i) = out;
      else {
        *to = out;
        for (uint32_t k = 0; k < rest; k++) y[i + k] = ((const int8_t *)to)[k];
      }
    }
    if (pass == 1) *ey = over ? e + 1 : e;
  }
  return MH_WIRE_OK;
}
