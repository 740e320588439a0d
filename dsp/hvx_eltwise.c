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
