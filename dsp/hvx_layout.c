/* Layout kernels on HVX (see hvx_layout.h). Rows are copied with unaligned 128-byte vectors in
 * increasing address order, so a vector that runs past its row only writes bytes a later row
 * rewrites; near the end of the readable region bytes go one by one. A row's last partial vector
 * of arithmetic is done on the vector ending at the row's end, keeping the lanes already done. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_edge.h"
#include "hvx_layout.h"
#include "quant/qformat.h"

/* Copies `bytes` from s to d, a vector at a time; with zero_tail the bytes of the last vector past
 * the copy are zeros (else whatever follows s). Vectors stay below dend (the destination tensor's
 * end) and send (the region's end); near them bytes go one by one. */
static void copy_run(int8_t *d, const int8_t *s, uint32_t bytes, int zero_tail, const int8_t *dend, const int8_t *send) {
  while (bytes) {
    uint32_t cnt = bytes < 128 ? bytes : 128;
    if (dend - d < 128 || send - s < 128) {
      for (uint32_t i = 0; i < cnt; i++) d[i] = s[i];
    } else {
      HVX_Vector v = ((const uvec *)s)->v;
      if (zero_tail && cnt < 128) v = Q6_V_vmux_QVV(Q6_Q_vsetq_R(cnt), v, Q6_V_vzero());
      ((uvec *)d)->v = v;
    }
    d += cnt, s += cnt, bytes -= cnt;
  }
}

static void zero_run(int8_t *d, uint32_t bytes, const int8_t *dend) {
  HVX_Vector z = Q6_V_vzero();
  for (; bytes >= 128 && dend - d >= 128; d += 128, bytes -= 128) ((uvec *)d)->v = z;
  for (uint32_t i = 0; i < bytes; i++) d[i] = 0;
}

/* Rows of `len` bytes (<= 128) from s (stride ss) to d (stride ds), `rows` of them, each one
 * unaligned vector load and store (the vector's bytes past the row are whatever follows the source
 * row: a later row rewrites them). Rows whose vector would cross dend or send go byte by byte. */
static inline __attribute__((always_inline)) void copy_rows(int8_t *d, uint32_t ds, const int8_t *s, uint32_t ss,
                                                            uint32_t rows, uint32_t len, const int8_t *dend,
                                                            const int8_t *send) {
  uint32_t r = 0, safe = rows; /* rows whose vectors stay below both ends: all but a last few */
  while (safe && (dend - (d + (uint64_t)(safe - 1) * ds) < 128 || send - (s + (uint64_t)(safe - 1) * ss) < 128)) safe--;
  for (; r + 4 <= safe; r += 4, d += 4 * ds, s += 4 * ss) { /* four rows a step: the loads ahead of the stores */
    HVX_Vector v0 = ((const uvec *)s)->v, v1 = ((const uvec *)(s + ss))->v, v2 = ((const uvec *)(s + 2 * ss))->v,
               v3 = ((const uvec *)(s + 3 * ss))->v;
    ((uvec *)d)->v = v0, ((uvec *)(d + ds))->v = v1, ((uvec *)(d + 2 * ds))->v = v2, ((uvec *)(d + 3 * ds))->v = v3;
  }
  for (; r < safe; r++, d += ds, s += ss) ((uvec *)d)->v = ((const uvec *)s)->v;
  for (; r < rows; r++, d += ds, s += ss)
    for (uint32_t i = 0; i < len; i++) d[i] = s[i];
}

/* Row routing by delta networks (see hvx_layout.h). The map keeps the bytes' order, so a spread
 * routes through vdelta's stages (lane bit 64 down to 1) and a squeeze through vrdelta's (1 up to
 * 64) without two bytes ever meeting in a lane: after the stages of the high bits two bytes share
 * those bits of their destination, lie less than that block apart, and so differ in their low bits
 * (and the same the other way round). Controls are cached by shape: a program uses a handful. */
typedef struct {
  HVX_Vector ctl;
  uint32_t key[7];
} route;

static route routes[16];
static uint32_t n_routes, next_route;

HVX_Vector mh_hvx_route_ctl(uint32_t rows, uint32_t len, uint32_t ss, uint32_t se, uint32_t ds, uint32_t de,
                            uint32_t off) {
  const uint32_t key[7] = {rows, len, ss, se, ds, de, off};
  for (uint32_t i = 0; i < n_routes; i++) {
    int same = 1;
    for (int k = 0; k < 7; k++) same &= routes[i].key[k] == key[k];
    if (same) return routes[i].ctl;
  }
  union {
    HVX_Vector v;
    uint8_t b[128];
  } c;
  const int spread = ds >= ss && de >= se;
  for (int i = 0; i < 128; i++) c.b[i] = 0x80;
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t x = 0; x < len; x++) {
      uint32_t pos = r * ss + x * se, d = r * ds + off + x * de;
      for (uint32_t k = 0; k < 7; k++) {
        uint32_t o = spread ? 64u >> k : 1u << k;
        if ((pos ^ d) & o) pos ^= o, c.b[pos] |= (uint8_t)o;
      }
      c.b[d] &= 0x7f;
    }
  route *r = &routes[next_route];
  next_route = (next_route + 1) & 15u, n_routes += n_routes < 16;
  r->ctl = c.v;
  for (int k = 0; k < 7; k++) r->key[k] = key[k];
  return c.v;
}

/* Zeros from d up to at least `to` (vectors may pass it, never dend); returns where they end. */
static int8_t *zero_to(int8_t *d, const int8_t *to, const int8_t *dend) {
  for (; d < to; d += 128) mh_store_prefix(d, Q6_V_vzero(), 128, dend);
  return d < dend ? d : (int8_t *)dend;
}

/* One spread vector near the source's or the grid's end (see pad_spread). */
static __attribute__((noinline)) void pad_near(const int8_t *sp, int8_t *g, HVX_Vector ctl, HVX_VectorPred hole,
                                                  const int8_t *dend, const int8_t *send) {
  mh_store_prefix(g, Q6_V_vmux_QVV(hole, Q6_V_vzero(), Q6_V_vdelta_VV(mh_load_near(sp, send), ctl)), 128, dend);
}

/* Planes of whole aligned vectors (q divides 128, p q a multiple of 128, each channel's grid
 * aligned): vector k of a plane holds grid rows [kR, kR + R), its data rows spread from one load by
 * a route of its own and its pads zero, so every store is aligned and no byte is written twice.
 * Returns 0 when the shape or the placement is not of this kind. */
__attribute__((noinline)) static int pad_tiles(const int8_t *src, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int8_t *dst, uint32_t p,
                     uint32_t q, uint32_t top, uint32_t ld, const int8_t *end) {
  const uint32_t R = mh_rows_per_vector(q), plane = p * q, in_plane = h * w;
  uint32_t V = 0;
  for (uint32_t z = 0; z < plane; z += 128) V++;
  if (R * q != 128 || V * 128 != plane || V > 8 || ((uintptr_t)dst & 127u) || (ld & 127u) || (uint64_t)n * plane > ld)
    return 0;
  const uint64_t s_stride = (uint64_t)c * in_plane;
  const int8_t *dend = dst + (uint64_t)c * ld;
  if (!(src + (uint64_t)n * s_stride + 128 <= dst || dend + 128 <= src)) return 0; /* loads run ahead of stores */
  HVX_Vector ctl[8], zero = Q6_V_vzero();
  uint32_t src0[8], has[8], last_src = 0;
  for (uint32_t k = 0; k < V; k++) {
    uint32_t ra = k * R > top ? k * R : top, rb = k * R + R < top + h ? k * R + R : top + h;
    has[k] = ra < rb, src0[k] = has[k] ? (ra - top) * w : 0;
    ctl[k] = has[k] ? mh_hvx_route_ctl(rb - ra, w, w, 1, q, 1, (ra - k * R) * q + top) : zero;
    last_src = has[k] ? src0[k] : last_src;
  }
  if (end - (src + (uint64_t)(n - 1) * s_stride + (uint64_t)(c - 1) * in_plane + last_src) < 128) return 0;
  if (V == 2 && has[0] && has[1]) { /* two vectors a plane (14 x 14 padded to 16 x 16): two planes a step */
    const HVX_Vector c0 = ctl[0], c1 = ctl[1];
    const HVX_VectorPred h0 = Q6_Q_vand_VR(c0, 0x80808080u), h1 = Q6_Q_vand_VR(c1, 0x80808080u);
    const uint32_t o0 = src0[0], o1 = src0[1];
    for (uint32_t ch = 0; ch < c; ch++) {
      const int8_t *sp = src + (uint64_t)ch * in_plane;
      int8_t *d = dst + (uint64_t)ch * ld;
      uint32_t s = 0;
      for (; s + 2 <= n; s += 2, sp += 2 * s_stride, d += 512) {
        HVX_Vector v0 = ((const uvec *)(sp + o0))->v, v1 = ((const uvec *)(sp + o1))->v;
        HVX_Vector v2 = ((const uvec *)(sp + s_stride + o0))->v, v3 = ((const uvec *)(sp + s_stride + o1))->v;
        ((HVX_Vector *)d)[0] = Q6_V_vmux_QVV(h0, zero, Q6_V_vdelta_VV(v0, c0));
        ((HVX_Vector *)d)[1] = Q6_V_vmux_QVV(h1, zero, Q6_V_vdelta_VV(v1, c1));
        ((HVX_Vector *)d)[2] = Q6_V_vmux_QVV(h0, zero, Q6_V_vdelta_VV(v2, c0));
        ((HVX_Vector *)d)[3] = Q6_V_vmux_QVV(h1, zero, Q6_V_vdelta_VV(v3, c1));
      }
      if (s < n) {
        HVX_Vector v0 = ((const uvec *)(sp + o0))->v, v1 = ((const uvec *)(sp + o1))->v;
        ((HVX_Vector *)d)[0] = Q6_V_vmux_QVV(h0, zero, Q6_V_vdelta_VV(v0, c0));
        ((HVX_Vector *)d)[1] = Q6_V_vmux_QVV(h1, zero, Q6_V_vdelta_VV(v1, c1));
        d += 256;
      }
      zero_to(d, dst + (uint64_t)ch * ld + ld, dend);
    }
    return 1;
  }
  for (uint32_t ch = 0; ch < c; ch++) {
    const int8_t *sp = src + (uint64_t)ch * in_plane;
    int8_t *d = dst + (uint64_t)ch * ld;
    for (uint32_t s = 0; s < n; s++, sp += s_stride)
      for (uint32_t k = 0; k < V; k++, d += 128) {
        HVX_Vector v = zero;
        if (has[k])
          v = Q6_V_vmux_QVV(Q6_Q_vand_VR(ctl[k], 0x80808080u), zero, Q6_V_vdelta_VV(((const uvec *)(sp + src0[k]))->v, ctl[k]));
        *(HVX_Vector *)d = v;
      }
    zero_to(d, dst + (uint64_t)ch * ld + ld, dend);
  }
  return 1;
}

/* Planes of 4 + REST vectors (REST 1..4, a constant where it is inlined) with one run of zeros each,
 * software-pipelined by hand: the first four vectors of the next plane are loaded between this
 * plane's stores (the grid does not overlap the source), so loads, routes and stores of two planes
 * share packets. */
static inline __attribute__((always_inline)) void pad_planes_piped(const int REST, const int8_t *sp, uint64_t s_stride,
                                                                   int8_t *g, uint32_t plane, uint32_t n, uint32_t step,
                                                                   uint32_t sstep, uint32_t data, HVX_Vector ctl,
                                                                   HVX_VectorPred hole) {
  const HVX_Vector zero = Q6_V_vzero();
  HVX_Vector a[4], b[4];
  for (int j = 0; j < 4; j++) a[j] = ((const uvec *)(sp + j * sstep))->v;
  for (uint32_t s = 0; s < n; s++, sp += s_stride, g += plane) {
    for (int j = 0; j < REST; j++) b[j] = ((const uvec *)(sp + (4 + j) * sstep))->v;
    for (int j = 0; j < 4; j++) ((uvec *)(g + j * step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(a[j], ctl));
    if (s + 1 < n)
      for (int j = 0; j < 4; j++) a[j] = ((const uvec *)(sp + s_stride + j * sstep))->v;
    for (int j = 0; j < REST; j++)
      ((uvec *)(g + (4 + j) * step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(b[j], ctl));
    ((uvec *)(g + data))->v = zero;
  }
}

/* One channel's planes far from both ends (see pad_spread): a plane's vectors four at a time and
 * the rest as one block, their loads ahead of the stores; small planes (up to two vectors) two at a
 * time. Its own function, so that the few values the loops use stay in registers. */
__attribute__((noinline)) static void pad_channel(const int8_t *sp, uint64_t s_stride, int8_t *g, uint32_t plane,
                                                     uint32_t n, uint32_t vecs, uint32_t step, uint32_t sstep,
                                                     uint32_t data, uint32_t gap_vecs, HVX_Vector ctl) {
  const HVX_Vector zero = Q6_V_vzero();
  const HVX_VectorPred hole = Q6_Q_vand_VR(ctl, 0x80808080u);
  uint32_t s = 0;
  if (vecs > 4 && vecs <= 8 && gap_vecs == 1) {
    switch (vecs) {
      case 5: pad_planes_piped(1, sp, s_stride, g, plane, n, step, sstep, data, ctl, hole); break;
      case 6: pad_planes_piped(2, sp, s_stride, g, plane, n, step, sstep, data, ctl, hole); break;
      case 7: pad_planes_piped(3, sp, s_stride, g, plane, n, step, sstep, data, ctl, hole); break;
      default: pad_planes_piped(4, sp, s_stride, g, plane, n, step, sstep, data, ctl, hole); break;
    }
    return;
  }
  if (vecs <= 2 && gap_vecs == 1)
    for (; s + 2 <= n; s += 2, sp += 2 * s_stride, g += 2 * plane) {
      const int8_t *b = sp + s_stride;
      int8_t *e = g + plane;
      HVX_Vector v0 = ((const uvec *)sp)->v, v1 = ((const uvec *)(sp + sstep))->v, v2 = ((const uvec *)b)->v,
                 v3 = ((const uvec *)(b + sstep))->v;
      ((uvec *)g)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v0, ctl));
      if (vecs == 2) ((uvec *)(g + step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v1, ctl));
      ((uvec *)(g + data))->v = zero;
      ((uvec *)e)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v2, ctl));
      if (vecs == 2) ((uvec *)(e + step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v3, ctl));
      ((uvec *)(e + data))->v = zero;
    }
  for (; s < n; s++, sp += s_stride, g += plane) {
    const int8_t *a = sp;
    int8_t *d = g;
    uint32_t j = 0;
    for (; j + 4 <= vecs; j += 4, a += 4 * sstep, d += 4 * step) {
      HVX_Vector v0 = ((const uvec *)a)->v, v1 = ((const uvec *)(a + sstep))->v,
                 v2 = ((const uvec *)(a + 2 * sstep))->v, v3 = ((const uvec *)(a + 3 * sstep))->v;
      ((uvec *)d)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v0, ctl));
      ((uvec *)(d + step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v1, ctl));
      ((uvec *)(d + 2 * step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v2, ctl));
      ((uvec *)(d + 3 * step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v3, ctl));
    }
    if (j + 3 == vecs) {
      HVX_Vector v0 = ((const uvec *)a)->v, v1 = ((const uvec *)(a + sstep))->v, v2 = ((const uvec *)(a + 2 * sstep))->v;
      ((uvec *)d)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v0, ctl));
      ((uvec *)(d + step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v1, ctl));
      ((uvec *)(d + 2 * step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v2, ctl));
    } else if (j + 2 == vecs) {
      HVX_Vector v0 = ((const uvec *)a)->v, v1 = ((const uvec *)(a + sstep))->v;
      ((uvec *)d)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v0, ctl));
      ((uvec *)(d + step))->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(v1, ctl));
    } else if (j + 1 == vecs)
      ((uvec *)d)->v = Q6_V_vmux_QVV(hole, zero, Q6_V_vdelta_VV(((const uvec *)a)->v, ctl));
    ((uvec *)(g + data))->v = zero;
    for (uint32_t z = 1; z < gap_vecs; z++) ((uvec *)(g + data + 128 * z))->v = zero;
  }
}

/* Rows of up to 128-byte grid rows: each vector takes R source rows (R w bytes, contiguous) and
 * spreads them over R grid rows, their left and right pads zero, stored from the first row's start.
 * Stores go in increasing address order, except that after a plane's vectors one run of zeros from
 * the end of its data rows (the bottom pad rows, the next plane's top rows) rewrites the lanes of its
 * last vector that took rows past h; the first plane's top rows and the channel's tail are zeroed
 * apart. */
__attribute__((noinline)) static void pad_spread(const int8_t *src, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int8_t *dst, uint32_t p,
                       uint32_t q, uint32_t top, uint32_t ld, const int8_t *end) {
  const int8_t *dend = dst + (uint64_t)c * ld;
  const uint32_t R = mh_rows_per_vector(q), plane = p * q, in_plane = h * w, step = R * q, sstep = R * w;
  uint32_t vecs = 0, gap_vecs = 0; /* a plane's vectors; zero vectors over the gap to the next plane (no division) */
  for (uint32_t r = 0; r < h; r += R) vecs++;
  for (uint32_t z = 0; z < (p - h) * q; z += 128) gap_vecs++;
  gap_vecs += !gap_vecs; /* at least the one that clears the last vector's rows past h */
  const uint64_t s_stride = (uint64_t)c * in_plane, data = (uint64_t)h * q;
  HVX_Vector ctl = mh_hvx_route_ctl(R, w, w, 1, q, 1, top);
  HVX_VectorPred hole = Q6_Q_vand_VR(ctl, 0x80808080u);
  /* the fast path reads ahead of its stores: only when the source and the grid do not overlap */
  const int apart = src + (uint64_t)n * s_stride + 128 <= dst || dend + 128 <= src;
  for (uint32_t ch = 0; ch < c; ch++) {
    int8_t *base = dst + (uint64_t)ch * ld, *g = base + (uint64_t)top * q;
    const int8_t *sp = src + (uint64_t)ch * in_plane;
    int8_t *done = zero_to(base, g, dend); /* bytes below `done` are written */
    /* planes whose vectors and zeros lie far from both ends need no checks: all of them, or all but
     * the last (the last channel's zeros usually reach the grid's end) */
    uint32_t nf = 0;
    for (uint32_t k = n; apart && k + 2 > n && k > 0 && !nf; k--)
      if (end - (sp + (k - 1) * s_stride + (vecs - 1) * sstep) >= 128 &&
          dend - (g + (uint64_t)(k - 1) * plane + data + 128 * gap_vecs) >= 0)
        nf = k;
    if (nf) {
      pad_channel(sp, s_stride, g, plane, nf, vecs, step, sstep, data, gap_vecs, ctl);
      done = g + (uint64_t)(nf - 1) * plane + data + 128 * gap_vecs;
      sp += nf * s_stride, g += (uint64_t)nf * plane;
    }
    for (uint32_t s = nf; s < n; s++, sp += s_stride, g += plane) {
      if (done < g) done = zero_to(done, g, dend);
      const int8_t *a = sp;
      int8_t *d = g;
      for (uint32_t j = 0; j < vecs; j++, d += step, a += sstep) pad_near(a, d, ctl, hole, dend, end);
      done = zero_to(g + data, g + data + 1, dend); /* (p > h: the grid has a bottom pad row) */
    }
    zero_to(done, base + ld, dend);
  }
}

void mh_hvx_pad_s8(const int8_t *src, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int8_t *dst, uint32_t p,
                   uint32_t q, uint32_t top, uint32_t ld, const int8_t *end) {
  if (q <= 128) {
    if (!pad_tiles(src, n, c, h, w, dst, p, q, top, ld, end)) pad_spread(src, n, c, h, w, dst, p, q, top, ld, end);
    return;
  }
  const int8_t *dend = dst + (uint64_t)c * ld;
  uint32_t plane = p * q, in_plane = h * w;
  for (uint32_t ch = 0; ch < c; ch++) {
    int8_t *row = dst + (uint64_t)ch * ld;
    zero_run(row, ld, dend);
    int8_t *d = row + top * q + top;
    const int8_t *sp = src + (uint64_t)ch * in_plane;
    for (uint32_t s = 0; s < n; s++, d += plane, sp += (uint64_t)c * in_plane)
      for (uint32_t y = 0; y < h; y++) copy_run(d + (uint64_t)y * q, sp + (uint64_t)y * w, w, 1, dend, end);
  }
}

/* Grid rows of `len` bytes at stride gs squeezed R to a vector into rows at stride len (R >= 2). The
 * vector's bytes past its rows are whatever the network left there: a later store rewrites them. */
static void gather_squeeze(const int8_t *src, uint32_t gs, int8_t *o, uint32_t rows, uint32_t len, uint32_t R,
                           HVX_Vector ctl, const int8_t *dend, const int8_t *send) {
  for (uint32_t y = 0; y < rows; y += R, src += R * gs, o += R * len) {
    /* near the tensor's end only the rows' own bytes */
    mh_store_prefix(o, Q6_V_vrdelta_VV(mh_load_near(src, send), ctl), (rows - y < R ? rows - y : R) * len, dend);
  }
}

void mh_hvx_grid_to_nchw(const void *grid, uint32_t ld, uint32_t gp, uint32_t gq, uint32_t n, uint32_t c, uint32_t h,
                         uint32_t w, uint32_t size, void *out, const int8_t *end) {
  const int8_t *g = grid;
  int8_t *o = out;
  const int8_t *dend = o + (uint64_t)n * c * h * w * size;
  const uint32_t len = w * size, gs = gq * size, R = gs <= 64 ? mh_rows_per_vector(gs) : 1, step = R * gs, ostep = R * len;
  const uint64_t plane_out = (uint64_t)h * len, ch_step = (uint64_t)ld * size, s_step = (uint64_t)gp * gq * size;
  HVX_Vector ctl = R > 1 ? mh_hvx_route_ctl(R, len, gs, 1, len, 1, 0) : Q6_V_vzero();
  uint32_t vecs = 0, planes = n * c, done = 0;
  for (uint32_t r = 0; r < h; r += R) vecs++;
  /* squeezed planes far from both ends (every plane but the last, whose vectors reach furthest):
   * two vectors at a time, their loads ahead of the stores (when the grid and out do not overlap) */
  const int8_t *g_last = g + (uint64_t)(c - 1) * ch_step + (uint64_t)(n - 1) * s_step + (uint64_t)(vecs - 1) * step;
  const int8_t *o_last = o + (uint64_t)(planes >= 2 ? planes - 2 : 0) * plane_out + (uint64_t)(vecs - 1) * ostep;
  const int fast = R > 1 && (g_last + 128 <= o || dend + 128 <= g) && end - g_last >= 128 && dend - o_last >= 128;
  for (uint32_t s = 0; s < n; s++)
    for (uint32_t ch = 0; ch < c; ch++, done++, o += plane_out) {
      const int8_t *a = g + (uint64_t)ch * ch_step + (uint64_t)s * s_step;
      if (fast && done + 1 < planes) {
        int8_t *d = o;
        uint32_t j = 0;
        for (; j + 2 <= vecs; j += 2, a += 2 * step, d += 2 * ostep) {
          HVX_Vector v0 = ((const uvec *)a)->v, v1 = ((const uvec *)(a + step))->v;
          ((uvec *)d)->v = Q6_V_vrdelta_VV(v0, ctl);
          ((uvec *)(d + ostep))->v = Q6_V_vrdelta_VV(v1, ctl);
        }
        if (j < vecs) ((uvec *)d)->v = Q6_V_vrdelta_VV(((const uvec *)a)->v, ctl);
      } else if (R > 1)
        gather_squeeze(a, gs, o, h, len, R, ctl, dend, end);
      else if (len <= 128)
        copy_rows(o, len, a, gs, h, len, dend, end);
      else
        for (uint32_t y = 0; y < h; y++) copy_run(o + (uint64_t)y * len, a + (uint64_t)y * gs, len, 0, dend, end);
    }
}

/* max(x + b saturated, -INT32_MAX): vaddw:sat gives INT32_MIN on a negative overflow and for an exact
 * INT32_MIN, both of which become -INT32_MAX. */
static HVX_Vector add_sat(HVX_Vector x, HVX_Vector b, HVX_Vector lo) {
  return Q6_Vw_vmax_VwVw(Q6_Vw_vadd_VwVw_sat(x, b), lo);
}

void mh_hvx_add_rows_s32(int32_t *x, uint32_t rows, uint32_t cols, uint32_t ld, const int32_t *bias) {
  HVX_Vector lo = Q6_V_vsplat_R(-2147483647);
  for (uint32_t r = 0; r < rows; r++) {
    int32_t *row = x + (uint64_t)r * ld;
    HVX_Vector b = Q6_V_vsplat_R(bias[r]);
    uint32_t i = 0;
    if (cols < 32) {
      for (; i < cols; i++) row[i] = mh_q_add_sat32(row[i], bias[r]);
      continue;
    }
    for (; i + 32 <= cols; i += 32) ((uvec *)(row + i))->v = add_sat(((uvec *)(row + i))->v, b, lo);
    if (i < cols) { /* the vector ending at the row's end; its first lanes are done already */
      uvec *t = (uvec *)(row + cols - 32);
      HVX_Vector old = t->v;
      t->v = Q6_V_vmux_QVV(Q6_Q_vsetq_R((32 - (cols - i)) * 4), old, add_sat(old, b, lo));
    }
  }
}

void mh_hvx_channel_sums_s8(const int8_t *in, uint32_t n, uint32_t c, uint32_t plane, int32_t *sums,
                            const int8_t *end) {
  HVX_Vector ones = Q6_V_vsplat_R(0x01010101), zero = Q6_V_vzero();
  for (uint32_t ch = 0; ch < c; ch++) {
    HVX_Vector acc = zero;
    int32_t tail = 0;
    for (uint32_t s = 0; s < n; s++) {
      const int8_t *x = in + ((uint64_t)s * c + ch) * plane;
      uint32_t i = 0;
      for (; i + 128 <= plane && end - (x + i) >= 128; i += 128) acc = Q6_Vw_vrmpyacc_VwVbVb(acc, ((const uvec *)(x + i))->v, ones);
      if (i < plane && plane >= 128) { /* the vector ending at the plane's end, without the lanes summed */
        HVX_Vector v = ((const uvec *)(x + plane - 128))->v;
        acc = Q6_Vw_vrmpyacc_VwVbVb(acc, Q6_V_vmux_QVV(Q6_Q_vsetq_R(128 - (plane - i)), zero, v), ones);
      } else
        for (; i < plane; i++) tail += x[i];
    }
    union {
      HVX_Vector v;
      int32_t w[32];
    } u;
    u.v = acc;
    uint32_t sum = (uint32_t)tail;
    for (int k = 0; k < 32; k++) sum += (uint32_t)u.w[k];
    sums[ch] = (int32_t)sum;
  }
}
