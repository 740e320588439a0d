/* HVX max-pool 2x2/2. Even planes up to 32 bytes wide go as runs of window rows, several to a
 * vector; wider or odd planes 64 windows a step: a window row pair is two unaligned 128-byte loads,
 * even and odd bytes separated with vpacke/vpacko, the first maximum found by byte compares and
 * (backward) the error bytes interleaved back with vshuff. Loads near the readable region's end and
 * stores near the output's end stop there (hvx_edge.h). */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_edge.h"
#include "hvx_layout.h"
#include "hvx_pool.h"
#include "wire.h"

/* The four window elements of 64 windows (low halves): a b / c d. */
static void windows(const int8_t *top, const int8_t *bot, const int8_t *end, HVX_Vector *a, HVX_Vector *b,
                    HVX_Vector *c, HVX_Vector *d) {
  HVX_Vector t = mh_load_near(top, end), u = mh_load_near(bot, end);
  *a = Q6_Vb_vpacke_VhVh(t, t), *b = Q6_Vb_vpacko_VhVh(t, t);
  *c = Q6_Vb_vpacke_VhVh(u, u), *d = Q6_Vb_vpacko_VhVh(u, u);
}

/* Even planes of rows up to 32 bytes: a tensor of them is a run of window rows of 2w bytes (a top
 * row, then its bottom row), alike from plane to plane, so the kernels below walk the window rows of
 * all planes k at a time (2kw <= 128 bytes, one vector) with no per-plane work. Returns k, or 0 when
 * the planes are not of this kind. */
static uint32_t window_rows_per_vector(uint32_t h, uint32_t w) {
  return (h | w) & 1u || !w || w > 32 ? 0 : mh_rows_per_vector(2 * w);
}

/* The forward over `rows` window rows: the vertical maxima (top vs bottom row) and the horizontal
 * ones (lane i vs i + 1) leave window (r, i)'s maximum in lane 2rw + 2i, squeezed to r Q + i. */
static void maxpool2_flat(const int8_t *x, int8_t *y, uint32_t rows, uint32_t w, uint32_t k, const int8_t *end,
                          const int8_t *lim) {
  const uint32_t Q = w / 2, in_step = 2 * w * k, out_step = Q * k;
  HVX_Vector ctl = mh_hvx_route_ctl(k, Q, 2 * w, 2, Q, 1, 0);
  uint32_t t = 0;
  for (; t < rows && end - (x + w) >= 128 && lim - y >= 128; t += k, x += in_step, y += out_step) {
    HVX_Vector v = Q6_Vb_vmax_VbVb(((const uvec *)x)->v, ((const uvec *)(x + w))->v);
    ((uvec *)y)->v = Q6_V_vrdelta_VV(Q6_Vb_vmax_VbVb(v, Q6_V_vror_VR(v, 1)), ctl);
  }
  for (; t < rows; t += k, x += in_step, y += out_step) { /* near the region's or the output's end */
    uint32_t kk = rows - t < k ? rows - t : k;
    HVX_Vector v = Q6_Vb_vmax_VbVb(mh_load_near(x, end), mh_load_near(x + w, end));
    mh_store_prefix(y, Q6_V_vrdelta_VV(Q6_Vb_vmax_VbVb(v, Q6_V_vror_VR(v, 1)), ctl), kk * Q, lim);
  }
}

int mh_hvx_maxpool2_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t planes, uint32_t h, uint32_t w,
                       const int8_t *end) {
  (void)v; /* no scratch */
  uint32_t P = h / 2, Q = w / 2, k = window_rows_per_vector(h, w);
  const int8_t *lim = y + (uint64_t)planes * P * Q;
  if (k) {
    maxpool2_flat(x, y, planes * P, w, k, end, lim);
    return MH_WIRE_OK;
  }
  for (uint32_t t = 0; t < planes; t++)
    for (uint32_t p = 0; p < P; p++)
      for (uint32_t q0 = 0; q0 < Q; q0 += 64) {
        const int8_t *top = x + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        HVX_Vector a, b, c, d;
        windows(top, top + w, end, &a, &b, &c, &d);
        HVX_Vector m = Q6_Vb_vmax_VbVb(Q6_Vb_vmax_VbVb(a, b), Q6_Vb_vmax_VbVb(c, d));
        uint32_t cnt = Q - q0 < 64 ? Q - q0 : 64;
        mh_store_prefix(y + ((uint64_t)t * P + p) * Q + q0, m, cnt, lim);
      }
  return MH_WIRE_OK;
}

/* Each window's error to its first maximum (scan order a, b, c, d), for 64 windows in lanes. */
static void route(HVX_Vector a, HVX_Vector b, HVX_Vector c, HVX_Vector d, HVX_Vector g, HVX_Vector *top, HVX_Vector *bot) {
  HVX_Vector zero = Q6_V_vzero(), m = Q6_Vb_vmax_VbVb(Q6_Vb_vmax_VbVb(a, b), Q6_Vb_vmax_VbVb(c, d));
  HVX_VectorPred sa = Q6_Q_vcmp_eq_VbVb(a, m);
  HVX_VectorPred sb = Q6_Q_and_QQn(Q6_Q_vcmp_eq_VbVb(b, m), sa);
  HVX_VectorPred ab = Q6_Q_or_QQ(sa, sb);
  HVX_VectorPred sc = Q6_Q_and_QQn(Q6_Q_vcmp_eq_VbVb(c, m), ab);
  HVX_VectorPred sd = Q6_Q_not_Q(Q6_Q_or_QQ(ab, sc));
  HVX_Vector ga = Q6_V_vmux_QVV(sa, g, zero), gb = Q6_V_vmux_QVV(sb, g, zero);
  HVX_Vector gc = Q6_V_vmux_QVV(sc, g, zero), gd = Q6_V_vmux_QVV(sd, g, zero);
  *top = Q6_V_lo_W(Q6_W_vshuff_VVR(gb, ga, -1)), *bot = Q6_V_lo_W(Q6_W_vshuff_VVR(gd, gc, -1));
}

/* One backward vector over window rows (see maxpool2_bwd_flat), from the top rows' vector tv, the
 * bottom rows' bv and the errors g: dx of the rows, top rows in their lanes and bottom rows moved
 * up a row into the lanes between. */
static inline HVX_Vector pool_bwd_vector(HVX_Vector tv, HVX_Vector bv, HVX_Vector g, HVX_Vector spread,
                                         HVX_VectorPred even, HVX_VectorPred top_rows, uint32_t w) {
  const HVX_Vector ff = Q6_V_vsplat_R(-1), zero = Q6_V_vzero(), v = Q6_Vb_vmax_VbVb(tv, bv);
  HVX_Vector h = Q6_Vb_vmax_VbVb(v, Q6_V_vror_VR(v, 1)), m = Q6_V_vmux_QVV(even, h, Q6_V_vror_VR(h, 127));
  HVX_Vector ea = Q6_V_vmux_QVV(Q6_Q_vcmp_eq_VbVb(tv, m), ff, zero), ea_prev = Q6_V_vror_VR(ea, 127);
  HVX_Vector any_top = Q6_V_vor_VV(ea, Q6_V_vmux_QVV(even, Q6_V_vror_VR(ea, 1), ea_prev));
  HVX_Vector sel_top = Q6_V_vmux_QVV(even, ea, Q6_V_vand_VV(ea, Q6_V_vnot_V(ea_prev)));
  HVX_Vector ec = Q6_V_vmux_QVV(Q6_Q_vcmp_eq_VbVb(bv, m), ff, zero);
  HVX_Vector sel_bot = Q6_V_vand_VV(Q6_V_vnot_V(any_top), Q6_V_vmux_QVV(even, ec, Q6_V_vnot_V(Q6_V_vror_VR(ec, 127))));
  HVX_Vector gs = Q6_V_vdelta_VV(g, spread), g2 = Q6_V_vmux_QVV(even, gs, Q6_V_vror_VR(gs, 127));
  HVX_Vector dbot = Q6_V_vand_VV(g2, sel_bot);
  return Q6_V_vmux_QVV(top_rows, Q6_V_vand_VV(g2, sel_top), Q6_V_vror_VR(dbot, (int)(128 - w)));
}

/* The backward over `rows` window rows (see window_rows_per_vector), in the lanes of the top rows'
 * vector: the window maximum M in both lanes of a window; the first maximum in scan order a b / c d
 * from byte masks shifted a lane either way; the errors spread from lane r Q + i to 2rw + 2i and
 * doubled into the odd lane; the bottom rows' bytes moved up a row into the rows between. */
static void maxpool2_bwd_flat(const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t rows, uint32_t w, uint32_t k,
                              const int8_t *end, const int8_t *lim, HVX_Vector *rows_mem) {
  const uint32_t Q = w / 2, in_step = 2 * w * k, dy_step = Q * k;
  for (uint32_t i = 0, r = 0, col = 0; i < 128; i++) { /* the top rows' lanes */
    ((uint8_t *)rows_mem)[i] = r < k && col < w ? 1 : 0;
    if (++col == 2 * w) col = 0, r++;
  }
  const HVX_VectorPred top_rows = Q6_Q_vand_VR(*rows_mem, 0x01010101), even = Q6_Q_vand_VR(Q6_V_vsplat_R(0x01010101), 0x00010001);
  const HVX_Vector spread = mh_hvx_route_ctl(k, Q, Q, 1, 2 * w, 2, 0);
  uint32_t t = 0;
  for (; t < rows && end - (x + w) >= 128 && end - dy >= 128 && lim - dx >= 128; t += k, x += in_step, dy += dy_step, dx += in_step)
    ((uvec *)dx)->v = pool_bwd_vector(((const uvec *)x)->v, ((const uvec *)(x + w))->v, ((const uvec *)dy)->v, spread,
                                      even, top_rows, w);
  for (; t < rows; t += k, x += in_step, dy += dy_step, dx += in_step) { /* near the region's or dx's end */
    uint32_t kk = rows - t < k ? rows - t : k;
    mh_store_prefix(dx, pool_bwd_vector(mh_load_near(x, end), mh_load_near(x + w, end), mh_load_near(dy, end), spread,
                                        even, top_rows, w),
                    2 * kk * w, lim);
  }
}

int mh_hvx_maxpool2_bwd_s8(mh_vtcm *v, const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t planes, uint32_t h,
                           uint32_t w, const int8_t *end) {
  HVX_Vector *even = mh_vtcm_alloc(v, 128);
  if (!even) return MH_WIRE_E_VTCM;
  uint32_t P = h / 2, Q = w / 2, k = window_rows_per_vector(h, w);
  uint64_t total = (uint64_t)planes * h * w, i = 0;
  const int8_t *lim = dx + total;
  if (k) {
    maxpool2_bwd_flat(x, dy, dx, planes * P, w, k, end, lim, even);
    return MH_WIRE_OK;
  }
  HVX_Vector zero = Q6_V_vzero();
  for (; i + 128 <= total; i += 128) ((uvec *)(dx + i))->v = zero; /* odd edges belong to no window */
  for (; i < total; i++) dx[i] = 0;
  uint32_t last = Q ? (Q - 1) & ~63u : 0;
  for (uint32_t t = 0; t < planes; t++)
    for (uint32_t p = 0; p < P && Q; p++)
      /* right to left: the partial block's spill from the top row into the bottom row is written
       * over by the bottom row's own blocks, which come after it */
      for (uint32_t q0 = last;; q0 -= 64) {
        const int8_t *top = x + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        uint32_t cnt = Q - q0 < 64 ? Q - q0 : 64;
        /* the windows' errors; lanes past cnt are zero, so what they spill writes zeros */
        HVX_Vector g = Q6_V_vmux_QVV(Q6_Q_vsetq_R(cnt), mh_load_near(dy + ((uint64_t)t * P + p) * Q + q0, end), zero);
        HVX_Vector a, b, c, d, up, down;
        windows(top, top + w, end, &a, &b, &c, &d);
        route(a, b, c, d, g, &up, &down);
        int8_t *d0 = dx + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        mh_store_prefix(d0, up, 2 * cnt, lim);
        mh_store_prefix(d0 + w, down, 2 * cnt, lim);
        if (q0 == 0) break;
      }
  return MH_WIRE_OK;
}
