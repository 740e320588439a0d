/* HVX max-pool 2x2/2: 64 windows per step. A window row pair is two unaligned 128-byte loads; even
 * and odd bytes are separated with vpacke/vpacko, the first maximum found by byte compares, and
 * (backward) the error bytes interleaved back with vshuff. Loads that would run past the readable
 * region and partial outputs go through VTCM staging. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_pool.h"
#include "wire.h"

typedef struct {
  HVX_Vector v;
} __attribute__((packed, aligned(1))) uvec;

/* 128 bytes from p, or fewer (zero-padded) through `stage` when they would cross `end`. */
static HVX_Vector load128(const int8_t *p, const int8_t *end, HVX_Vector *stage) {
  if (end - p >= 128) return ((const uvec *)p)->v;
  int8_t *s = (int8_t *)stage;
  for (int i = 0; i < 128; i++) s[i] = p + i < end ? p[i] : 0;
  return *stage;
}

/* The four window elements of 64 windows (low halves): a b / c d. */
static void windows(const int8_t *top, const int8_t *bot, const int8_t *end, HVX_Vector *stage, HVX_Vector *a,
                    HVX_Vector *b, HVX_Vector *c, HVX_Vector *d) {
  HVX_Vector t = load128(top, end, stage), u = load128(bot, end, stage);
  *a = Q6_Vb_vpacke_VhVh(t, t), *b = Q6_Vb_vpacko_VhVh(t, t);
  *c = Q6_Vb_vpacke_VhVh(u, u), *d = Q6_Vb_vpacko_VhVh(u, u);
}

/* Stores the first `cnt` bytes of v at dst. A whole-vector store may spill past them into bytes
 * that are written later (the callers order their stores so); only near the tensor's end (`lim`)
 * are the bytes copied one by one. */
static void store_prefix(int8_t *dst, HVX_Vector v, uint32_t cnt, const int8_t *lim, HVX_Vector *stage) {
  if (lim - dst >= 128) {
    ((uvec *)dst)->v = v;
    return;
  }
  *stage = v;
  for (uint32_t i = 0; i < cnt; i++) dst[i] = ((const int8_t *)stage)[i];
}

int mh_hvx_maxpool2_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t planes, uint32_t h, uint32_t w,
                       const int8_t *end) {
  HVX_Vector *stage = mh_vtcm_alloc(v, 128), *out = mh_vtcm_alloc(v, 128);
  if (!stage || !out) return MH_WIRE_E_VTCM;
  uint32_t P = h / 2, Q = w / 2;
  const int8_t *lim = y + (uint64_t)planes * P * Q;
  for (uint32_t t = 0; t < planes; t++)
    for (uint32_t p = 0; p < P; p++)
      for (uint32_t q0 = 0; q0 < Q; q0 += 64) {
        const int8_t *top = x + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        HVX_Vector a, b, c, d;
        windows(top, top + w, end, stage, &a, &b, &c, &d);
        HVX_Vector m = Q6_Vb_vmax_VbVb(Q6_Vb_vmax_VbVb(a, b), Q6_Vb_vmax_VbVb(c, d));
        uint32_t cnt = Q - q0 < 64 ? Q - q0 : 64;
        store_prefix(y + ((uint64_t)t * P + p) * Q + q0, m, cnt, lim, out);
      }
  return MH_WIRE_OK;
}

int mh_hvx_maxpool2_bwd_s8(mh_vtcm *v, const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t planes, uint32_t h,
                           uint32_t w, const int8_t *end) {
  HVX_Vector *stage = mh_vtcm_alloc(v, 128), *out = mh_vtcm_alloc(v, 128);
  if (!stage || !out) return MH_WIRE_E_VTCM;
  uint32_t P = h / 2, Q = w / 2;
  uint64_t total = (uint64_t)planes * h * w, i = 0;
  const int8_t *lim = dx + total;
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
        HVX_Vector g = Q6_V_vmux_QVV(Q6_Q_vsetq_R(cnt), load128(dy + ((uint64_t)t * P + p) * Q + q0, end, stage), zero);
        HVX_Vector a, b, c, d;
        windows(top, top + w, end, stage, &a, &b, &c, &d);
        HVX_Vector m = Q6_Vb_vmax_VbVb(Q6_Vb_vmax_VbVb(a, b), Q6_Vb_vmax_VbVb(c, d));
        /* first maximum in scan order a, b, c, d */
        HVX_VectorPred sa = Q6_Q_vcmp_eq_VbVb(a, m);
        HVX_VectorPred sb = Q6_Q_and_QQn(Q6_Q_vcmp_eq_VbVb(b, m), sa);
        HVX_VectorPred ab = Q6_Q_or_QQ(sa, sb);
        HVX_VectorPred sc = Q6_Q_and_QQn(Q6_Q_vcmp_eq_VbVb(c, m), ab);
        HVX_VectorPred sd = Q6_Q_not_Q(Q6_Q_or_QQ(ab, sc));
        HVX_Vector ga = Q6_V_vmux_QVV(sa, g, zero), gb = Q6_V_vmux_QVV(sb, g, zero);
        HVX_Vector gc = Q6_V_vmux_QVV(sc, g, zero), gd = Q6_V_vmux_QVV(sd, g, zero);
        HVX_VectorPair top2 = Q6_W_vshuff_VVR(gb, ga, -1), bot2 = Q6_W_vshuff_VVR(gd, gc, -1);
        int8_t *d0 = dx + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        store_prefix(d0, Q6_V_lo_W(top2), 2 * cnt, lim, out);
        store_prefix(d0 + w, Q6_V_lo_W(bot2), 2 * cnt, lim, out);
        if (q0 == 0) break;
      }
  return MH_WIRE_OK;
}
