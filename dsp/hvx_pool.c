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

/* Window rows per step for even planes of Q windows a row: k rows of 4Q input bytes fit one vector
 * (their windows in lanes [2jQ, 2jQ + Q) after the even/odd split), when k >= 2 (Q <= 16). */
static uint32_t rows_per_step(uint32_t h, uint32_t w) {
  uint32_t Q = w / 2, k = 0;
  if ((h | w) & 1u || !Q) return 0;
  while ((k + 1) * Q <= 32) k++; /* no division on the DSP */
  return k >= 2 ? k : 0;
}

/* Small even planes: k window rows per step. Lanes [2jQ, 2jQ + Q) of m move to [jQ, (j+1)Q). */
static void maxpool2_rows(const int8_t *x, int8_t *y, uint32_t planes, uint32_t h, uint32_t w, uint32_t k,
                          const int8_t *end, const int8_t *lim, HVX_Vector *stage, HVX_Vector *out) {
  uint32_t P = h / 2, Q = w / 2;
  for (uint32_t t = 0; t < planes; t++)
    for (uint32_t p = 0; p < P; p += k) {
      uint32_t kk = P - p < k ? P - p : k;
      const int8_t *top = x + ((uint64_t)t * h + 2 * p) * w;
      HVX_Vector a, b, c, d;
      windows(top, top + w, end, stage, &a, &b, &c, &d);
      HVX_Vector m = Q6_Vb_vmax_VbVb(Q6_Vb_vmax_VbVb(a, b), Q6_Vb_vmax_VbVb(c, d)), o = m;
      for (uint32_t j = 1; j < kk; j++) o = Q6_V_vmux_QVV(Q6_Q_vsetq_R(j * Q), o, Q6_V_vror_VR(m, (int)(j * Q)));
      store_prefix(y + ((uint64_t)t * P + p) * Q, o, kk * Q, lim, out);
    }
}

int mh_hvx_maxpool2_s8(mh_vtcm *v, const int8_t *x, int8_t *y, uint32_t planes, uint32_t h, uint32_t w,
                       const int8_t *end) {
  HVX_Vector *stage = mh_vtcm_alloc(v, 128), *out = mh_vtcm_alloc(v, 128);
  if (!stage || !out) return MH_WIRE_E_VTCM;
  uint32_t P = h / 2, Q = w / 2, k = rows_per_step(h, w);
  const int8_t *lim = y + (uint64_t)planes * P * Q;
  if (k) {
    maxpool2_rows(x, y, planes, h, w, k, end, lim, stage, out);
    return MH_WIRE_OK;
  }
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

/* Small even planes, k window rows per step: the errors of rows p.. spread to lanes [2jQ, 2jQ + Q),
 * routed, and the top rows' and bottom rows' bytes merged into the 2k input rows (every byte of dx
 * is written: the planes are even). `even`: the bytes of even input rows of a step, as a mask. */
static void maxpool2_bwd_rows(const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t planes, uint32_t h, uint32_t w,
                              uint32_t k, const int8_t *end, const int8_t *lim, HVX_Vector *stage, HVX_Vector *out,
                              HVX_Vector *even_mem) {
  uint32_t P = h / 2, Q = w / 2;
  for (uint32_t i = 0, row = 0, col = 0; i < 128; i++) {
    ((uint8_t *)even_mem)[i] = row & 1u ? 0 : 0xff;
    if (++col == w) col = 0, row++;
  }
  HVX_VectorPred even = Q6_Q_vand_VR(*even_mem, 0x01010101);
  for (uint32_t t = 0; t < planes; t++)
    for (uint32_t p = 0; p < P; p += k) {
      uint32_t kk = P - p < k ? P - p : k;
      HVX_Vector gl = load128(dy + ((uint64_t)t * P + p) * Q, end, stage), g = gl;
      for (uint32_t j = 1; j < kk; j++) g = Q6_V_vmux_QVV(Q6_Q_vsetq_R(2 * j * Q), g, Q6_V_vror_VR(gl, (int)(128 - j * Q)));
      const int8_t *top = x + ((uint64_t)t * h + 2 * p) * w;
      HVX_Vector a, b, c, d, up, down;
      windows(top, top + w, end, stage, &a, &b, &c, &d);
      route(a, b, c, d, g, &up, &down);
      store_prefix(dx + ((uint64_t)t * h + 2 * p) * w, Q6_V_vmux_QVV(even, up, Q6_V_vror_VR(down, (int)(128 - w))),
                   2 * kk * w, lim, out);
    }
}

int mh_hvx_maxpool2_bwd_s8(mh_vtcm *v, const int8_t *x, const int8_t *dy, int8_t *dx, uint32_t planes, uint32_t h,
                           uint32_t w, const int8_t *end) {
  HVX_Vector *stage = mh_vtcm_alloc(v, 128), *out = mh_vtcm_alloc(v, 128), *even = mh_vtcm_alloc(v, 128);
  if (!stage || !out || !even) return MH_WIRE_E_VTCM;
  uint32_t P = h / 2, Q = w / 2, k = rows_per_step(h, w);
  uint64_t total = (uint64_t)planes * h * w, i = 0;
  const int8_t *lim = dx + total;
  if (k) {
    maxpool2_bwd_rows(x, dy, dx, planes, h, w, k, end, lim, stage, out, even);
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
        HVX_Vector g = Q6_V_vmux_QVV(Q6_Q_vsetq_R(cnt), load128(dy + ((uint64_t)t * P + p) * Q + q0, end, stage), zero);
        HVX_Vector a, b, c, d, up, down;
        windows(top, top + w, end, stage, &a, &b, &c, &d);
        route(a, b, c, d, g, &up, &down);
        int8_t *d0 = dx + ((uint64_t)t * h + 2 * p) * w + 2 * q0;
        store_prefix(d0, up, 2 * cnt, lim, out);
        store_prefix(d0 + w, down, 2 * cnt, lim, out);
        if (q0 == 0) break;
      }
  return MH_WIRE_OK;
}
