/* Layout kernels on HVX (see hvx_layout.h). Rows are copied with unaligned 128-byte vectors in
 * increasing address order, so a vector that runs past its row only writes bytes a later row
 * rewrites; near the end of the readable region bytes go one by one. A row's last partial vector
 * of arithmetic is done on the vector ending at the row's end, keeping the lanes already done. */
#include <hexagon_types.h>
#include <hvx_hexagon_protos.h>

#include "hvx_layout.h"
#include "quant/qformat.h"

typedef struct {
  HVX_Vector v;
} __attribute__((packed, aligned(1))) uvec;

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
 * unaligned vector load and store; the vector's bytes past the row are zeros (zero_tail) or whatever
 * follows the source row. Rows whose vector would cross dend or send go byte by byte. */
static inline __attribute__((always_inline)) void copy_rows(int8_t *d, uint32_t ds, const int8_t *s, uint32_t ss, uint32_t rows, uint32_t len, int zero_tail,
                      const int8_t *dend, const int8_t *send) {
  HVX_VectorPred keep = Q6_Q_vsetq_R(len & 127u);
  HVX_Vector zero = Q6_V_vzero();
  uint32_t r = 0, safe = rows; /* rows whose vectors stay below both ends: all but a last few */
  while (safe && (dend - (d + (uint64_t)(safe - 1) * ds) < 128 || send - (s + (uint64_t)(safe - 1) * ss) < 128)) safe--;
  if (len < 128 && zero_tail) { /* four rows a step: the loads ahead of the stores, stores in order */
    for (; r + 4 <= safe; r += 4, d += 4 * ds, s += 4 * ss) {
      HVX_Vector v0 = ((const uvec *)s)->v, v1 = ((const uvec *)(s + ss))->v, v2 = ((const uvec *)(s + 2 * ss))->v,
                 v3 = ((const uvec *)(s + 3 * ss))->v;
      ((uvec *)d)->v = Q6_V_vmux_QVV(keep, v0, zero);
      ((uvec *)(d + ds))->v = Q6_V_vmux_QVV(keep, v1, zero);
      ((uvec *)(d + 2 * ds))->v = Q6_V_vmux_QVV(keep, v2, zero);
      ((uvec *)(d + 3 * ds))->v = Q6_V_vmux_QVV(keep, v3, zero);
    }
    for (; r < safe; r++, d += ds, s += ss) ((uvec *)d)->v = Q6_V_vmux_QVV(keep, ((const uvec *)s)->v, zero);
  } else {
    for (; r + 4 <= safe; r += 4, d += 4 * ds, s += 4 * ss) {
      HVX_Vector v0 = ((const uvec *)s)->v, v1 = ((const uvec *)(s + ss))->v, v2 = ((const uvec *)(s + 2 * ss))->v,
                 v3 = ((const uvec *)(s + 3 * ss))->v;
      ((uvec *)d)->v = v0, ((uvec *)(d + ds))->v = v1, ((uvec *)(d + 2 * ds))->v = v2, ((uvec *)(d + 3 * ds))->v = v3;
    }
    for (; r < safe; r++, d += ds, s += ss) ((uvec *)d)->v = ((const uvec *)s)->v;
  }
  for (; r < rows; r++, d += ds, s += ss)
    for (uint32_t i = 0; i < len; i++) d[i] = s[i];
}

void mh_hvx_pad_s8(const int8_t *src, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int8_t *dst, uint32_t p,
                   uint32_t q, uint32_t top, uint32_t ld, const int8_t *end) {
  const int8_t *dend = dst + (uint64_t)c * ld;
  uint32_t plane = p * q, in_plane = h * w;
  for (uint32_t ch = 0; ch < c; ch++) {
    int8_t *row = dst + (uint64_t)ch * ld;
    zero_run(row, ld, dend);
    int8_t *d = row + top * q + top;
    const int8_t *sp = src + (uint64_t)ch * in_plane;
    for (uint32_t s = 0; s < n; s++, d += plane, sp += (uint64_t)c * in_plane) {
      if (w <= 128) copy_rows(d, q, sp, w, h, w, 1, dend, end);
      else
        for (uint32_t y = 0; y < h; y++) copy_run(d + (uint64_t)y * q, sp + (uint64_t)y * w, w, 1, dend, end);
    }
  }
}

void mh_hvx_grid_to_nchw(const void *grid, uint32_t ld, uint32_t gp, uint32_t gq, uint32_t n, uint32_t c, uint32_t h,
                         uint32_t w, uint32_t size, void *out, const int8_t *end) {
  const int8_t *g = grid;
  int8_t *o = out;
  const int8_t *dend = o + (uint64_t)n * c * h * w * size;
  uint32_t len = w * size, gs = gq * size;
  for (uint32_t s = 0; s < n; s++)
    for (uint32_t ch = 0; ch < c; ch++, o += (uint64_t)h * len) {
      const int8_t *src = g + ((uint64_t)ch * ld + (uint64_t)s * gp * gq) * size;
      if (len <= 128) copy_rows(o, len, src, gs, h, len, 0, dend, end);
      else
        for (uint32_t y = 0; y < h; y++) copy_run(o + (uint64_t)y * len, src + (uint64_t)y * gs, len, 0, dend, end);
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
