/* The int8 convolution's CPU GEMMs for stride 1 without groups, with no im2col and no col2im: the
 * chunk's int8 image is copied once into a zero-padded buffer laid out [channel][sample][Hp][Wp], so
 * the column matrix's row k = (c, kh, kw) is one contiguous run of it (the GEMM reads it through row
 * pointers) when columns are numbered over the padded grid, j = s*Hp*Wp + p*Wp + q. Columns with
 * q >= Q or p >= P are computed and dropped (about 15% extra at 28x28, 3x3; planes so small that the
 * grid is over twice the output keep the im2col path). The input gradient is the
 * same construction on the output gradient padded by K-1-D, against the flipped, transposed weights:
 * a convolution whose output is the input gradient itself. Integer sums equal the im2col path's. */
#include <string.h>

#include "ops/conv2d_common.h"

/* Worth it while the padded grid is at most twice the output: at 32x32 with a 3x3 kernel it holds 13%
 * more columns, at 8x8 56%, at 4x4 125%. Measured (vgg11, resnet18, lenet5 on AVX512-VNNI), wasted
 * columns cost less than im2col plus col2im up to about 2x; at 2x2 (4x) they cost more. */
int mh__conv_s8_padded_ok(const conv_dims *d) {
  double grid = (double)(d->H + 2 * d->D) * (d->W + 2 * d->D), out = (double)d->P * d->Q;
  return d->S == 1 && d->G == 1 && d->D <= d->K - 1 && grid <= 2.0 * out;
}

int mh__conv_s8_padded_chunk(const conv_dims *d, long cols) {
  long grid = (long)(d->H + 2 * d->D) * (d->W + 2 * d->D), nb = (cols + grid - 1) / grid;
  return nb > d->N ? d->N : (int)nb;
}

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

/* Buffers for a chunk of nb samples: the padded image (C x nb x Hp x Wp), the padded output
 * gradient for backward-data (O x nb x Hq x Wq), the output gradient on the padded grid for the
 * weight gradient (O x Jt), the int32 result, the flipped weights (C x O*K*K), row pointers. */
typedef struct {
  int8_t *xp, *dyp, *gp, *wt;
  int32_t *acc;
  const int8_t **rows;
} padded_bufs;

static void grid(const conv_dims *d, int nb, int *hp, int *wp, int *hq, int *wq, size_t *jt, size_t *jt2) {
  *hp = d->H + 2 * d->D, *wp = d->W + 2 * d->D;
  int d2 = d->K - 1 - d->D;
  *hq = d->P + 2 * d2, *wq = d->Q + 2 * d2;
  *jt = (size_t)(nb - 1) * *hp * *wp + (size_t)(d->P - 1) * *wp + d->Q;
  *jt2 = (size_t)(nb - 1) * *hq * *wq + (size_t)(d->H - 1) * *wq + d->W;
}

size_t mh__conv_s8_padded_bytes(const conv_dims *d, int nb, void *base, void *out) {
  int hp, wp, hq, wq;
  size_t jt, jt2;
  grid(d, nb, &hp, &wp, &hq, &wq, &jt, &jt2);
  size_t kk = (size_t)d->C * d->K * d->K, kk2 = (size_t)d->O * d->K * d->K;
  size_t rows = (size_t)d->O > (size_t)d->C ? (size_t)d->O : (size_t)d->C, cols = jt > jt2 ? jt : jt2;
  size_t sz[6] = {al((size_t)d->C * nb * hp * wp), al((size_t)d->O * nb * hq * wq), al((size_t)d->O * jt),
                  al((size_t)d->C * kk2), al(rows * cols * 4), al((kk > kk2 ? kk : kk2) * sizeof(void *))};
  size_t off = 0;
  char *b = base;
  void *ptr[6];
  for (int i = 0; i < 6; i++) ptr[i] = b ? b + off : NULL, off += sz[i];
  if (out) {
    padded_bufs *p = out;
    p->xp = ptr[0], p->dyp = ptr[1], p->gp = ptr[2], p->wt = ptr[3], p->acc = ptr[4], p->rows = ptr[5];
  }
  return off;
}

/* dst [ch][s][hp][wp] = src (NCHW, channels ch of samples n0..n0+cnt) placed at (pad, pad), zeros around. */
typedef struct {
  const int8_t *src;
  int8_t *dst;
  int n0, cnt, chs, h, w, hp, wp, pad;
} pad_job;

static void pad_planes(void *p, long lo, long hi) {
  const pad_job *j = p;
  size_t plane = (size_t)j->hp * j->wp;
  for (long t = lo; t < hi; t++) { /* t = c * cnt + s */
    int c = (int)(t / j->cnt), s = (int)(t % j->cnt);
    int8_t *o = j->dst + (size_t)t * plane;
    const int8_t *in = j->src + (((size_t)(j->n0 + s) * j->chs) + c) * j->h * j->w;
    memset(o, 0, (size_t)j->pad * j->wp);
    for (int y = 0; y < j->h; y++) {
      int8_t *r = o + (size_t)(y + j->pad) * j->wp;
      memset(r, 0, (size_t)j->pad);
      memcpy(r + j->pad, in + (size_t)y * j->w, (size_t)j->w);
      memset(r + j->pad + j->w, 0, (size_t)(j->wp - j->pad - j->w));
    }
    memset(o + (size_t)(j->pad + j->h) * j->wp, 0, (size_t)(j->hp - j->pad - j->h) * j->wp);
  }
}

void mh__conv_pad_image(const mh_op_ctx *ctx, const int8_t *src, int chs, int h, int w, int pad, int hp, int wp, int n0,
                        int cnt, int8_t *dst) {
  pad_job j = {src, dst, n0, cnt, chs, h, w, hp, wp, pad};
  mh_parallel_for(ctx->pool, (long)chs * cnt, pad_planes, &j);
}

void mh__conv_row_offsets(int chs, int K, int cnt, int hp, int wp, uint32_t *off) {
  for (int c = 0; c < chs; c++)
    for (int kh = 0; kh < K; kh++)
      for (int kw = 0; kw < K; kw++)
        off[((size_t)c * K + kh) * K + kw] = (uint32_t)((size_t)c * cnt * hp * wp + (size_t)kh * wp + kw);
}

/* Row pointers of a (chs x K x K) x J column matrix over a padded buffer [ch][cnt][hp][wp]. */
static void row_table(const int8_t *buf, int chs, int K, int cnt, int hp, int wp, const int8_t **rows) {
  for (int c = 0; c < chs; c++)
    for (int kh = 0; kh < K; kh++)
      for (int kw = 0; kw < K; kw++)
        rows[((size_t)c * K + kh) * K + kw] = buf + (size_t)c * cnt * hp * wp + (size_t)kh * wp + kw;
}

void mh__conv_flip_weights(const conv_dims *d, const int8_t *wq, int8_t *wt) {
  int kk1 = d->K * d->K;
  size_t kk2 = (size_t)d->O * kk1;
  for (int o = 0; o < d->O; o++)
    for (int c = 0; c < d->C; c++) {
      const int8_t *src = wq + ((size_t)o * d->C + c) * kk1;
      int8_t *dst = wt + (size_t)c * kk2 + (size_t)o * kk1;
      for (int t = 0; t < kk1; t++) dst[t] = src[kk1 - 1 - t];
    }
}

/* out[(n0+s), ch, y, x] = the valid grid of acc[ch][s*hp*wp + y*wp + x]: as FP32 (* scale, + bias,
 * or added to the output) or as int32, exactly. */
typedef struct {
  const int32_t *acc;
  size_t ld;
  const mh_conv_out *out;
  int n0, cnt, chs, h, w, hp, wp;
} emit_job;

static void emit_planes(void *p, long lo, long hi) {
  const emit_job *j = p;
  const mh_conv_out *out = j->out;
  for (long t = lo; t < hi; t++) { /* t = s * chs + ch */
    int s = (int)(t / j->chs), ch = (int)(t % j->chs);
    const int32_t *a = j->acc + (size_t)ch * j->ld + (size_t)s * j->hp * j->wp;
    size_t o0 = (((size_t)(j->n0 + s) * j->chs) + ch) * j->h * j->w;
    if (!out->f) {
      int32_t *o = out->i32 + o0;
      for (int y = 0; y < j->h; y++, a += j->wp, o += j->w) memcpy(o, a, sizeof(int32_t) * j->w);
      continue;
    }
    float *o = out->f + o0, sc = out->scale, b = out->bias ? out->bias[ch] : 0.f;
    for (int y = 0; y < j->h; y++, a += j->wp, o += j->w)
      if (out->accumulate)
        for (int x = 0; x < j->w; x++) o[x] += (float)a[x] * sc;
      else
        for (int x = 0; x < j->w; x++) o[x] = (float)a[x] * sc + b;
  }
}

void mh__conv_grid_emit(mh_op_ctx *ctx, const int32_t *acc, size_t ld, const mh_conv_out *out, int n0, int cnt,
                        int chs, int h, int w, int hp, int wp) {
  emit_job e = {acc, ld, out, n0, cnt, chs, h, w, hp, wp};
  mh_parallel_for(ctx->pool, (long)cnt * chs, emit_planes, &e);
}

void mh__conv_grid_extract_s8(const int8_t *grid, size_t ld, int8_t *dst, int n, int chs, int h, int w, int hp, int wp) {
  for (int s = 0; s < n; s++)
    for (int ch = 0; ch < chs; ch++) {
      const int8_t *a = grid + (size_t)ch * ld + (size_t)s * hp * wp;
      int8_t *o = dst + (((size_t)s * chs) + ch) * h * w;
      for (int y = 0; y < h; y++) memcpy(o + (size_t)y * w, a + (size_t)y * wp, (size_t)w);
    }
}

void mh__conv_s8_padded_forward(mh_op_ctx *ctx, const conv_dims *d, int nb, const int8_t *xq, const int8_t *wq,
                                const mh_conv_out *out, void *scratch) {
  int hp, wp, hq, wq_, kk = d->C * d->K * d->K;
  size_t jt, jt2;
  padded_bufs b;
  mh__conv_s8_padded_bytes(d, nb, scratch, &b);
  for (int n0 = 0; n0 < d->N; n0 += nb) {
    int cnt = d->N - n0 < nb ? d->N - n0 : nb;
    grid(d, cnt, &hp, &wp, &hq, &wq_, &jt, &jt2);
    mh__conv_pad_image(ctx, xq, d->C, d->H, d->W, d->D, hp, wp, n0, cnt, b.xp);
    row_table(b.xp, d->C, d->K, cnt, hp, wp, b.rows);
    mh_gemm_s8_args g = {d->O, (int)jt, kk, wq, kk, 0, NULL, 0, 0, b.acc, (int)jt, 0, b.rows};
    mh_gemm_s8(ctx->kt, ctx->pool, &g);
    emit_job e = {b.acc, jt, out, n0, cnt, d->O, d->P, d->Q, hp, wp};
    mh_parallel_for(ctx->pool, (long)cnt * d->O, emit_planes, &e);
  }
}

/* gp[o][s*hp*wp + p*wp + q] = dyq[(n0+s), o, p, q], zeros between rows and samples. */
typedef struct {
  const int8_t *dyq;
  int8_t *gp;
  size_t jt;
  int n0, cnt, O, P, Q, hp, wp;
} grid_job;

static void grid_rows(void *p, long lo, long hi) {
  const grid_job *j = p;
  for (long o = lo; o < hi; o++) {
    int8_t *r = j->gp + (size_t)o * j->jt;
    memset(r, 0, j->jt);
    for (int s = 0; s < j->cnt; s++)
      for (int y = 0; y < j->P; y++)
        memcpy(r + (size_t)s * j->hp * j->wp + (size_t)y * j->wp,
               j->dyq + (((size_t)(j->n0 + s) * j->O + o) * j->P + y) * j->Q, (size_t)j->Q);
  }
}

void mh__conv_s8_padded_backward(mh_op_ctx *ctx, const conv_dims *d, int nb, const int8_t *xq, const int8_t *wq,
                                 const int8_t *dyq, const mh_conv_out *dx, int32_t *dwacc, unsigned parts,
                                 void *scratch) {
  int hp, wp, hq, wq_, kk = d->C * d->K * d->K, kk2 = d->O * d->K * d->K;
  size_t jt, jt2;
  padded_bufs b;
  mh__conv_s8_padded_bytes(d, nb, scratch, &b);
  if (parts & MH_PASS_BWD_D) mh__conv_flip_weights(d, wq, b.wt);
  for (int n0 = 0; n0 < d->N; n0 += nb) {
    int cnt = d->N - n0 < nb ? d->N - n0 : nb;
    grid(d, cnt, &hp, &wp, &hq, &wq_, &jt, &jt2);
    if (parts & MH_PASS_BWD_W) {
      /* dW (O x kk) += G (O x Jt, on the padded grid) * col^T: col's rows are the image's runs */
      grid_job gj = {dyq, b.gp, jt, n0, cnt, d->O, d->P, d->Q, hp, wp};
      mh_parallel_for(ctx->pool, d->O, grid_rows, &gj);
      mh__conv_pad_image(ctx, xq, d->C, d->H, d->W, d->D, hp, wp, n0, cnt, b.xp);
      row_table(b.xp, d->C, d->K, cnt, hp, wp, b.rows);
      mh_gemm_s8_args g = {d->O, kk, (int)jt, b.gp, (int)jt, 0, NULL, 0, 1, dwacc, kk, n0 > 0, b.rows};
      mh_gemm_s8(ctx->kt, ctx->pool, &g);
    }
    if (parts & MH_PASS_BWD_D) {
      /* dX (C x Jt2) = Wt (C x O*K*K) * the output gradient's columns, padded by K-1-D */
      int d2 = d->K - 1 - d->D;
      mh__conv_pad_image(ctx, dyq, d->O, d->P, d->Q, d2, hq, wq_, n0, cnt, b.dyp);
      row_table(b.dyp, d->O, d->K, cnt, hq, wq_, b.rows);
      mh_gemm_s8_args g = {d->C, (int)jt2, kk2, b.wt, kk2, 0, NULL, 0, 0, b.acc, (int)jt2, 0, b.rows};
      mh_gemm_s8(ctx->kt, ctx->pool, &g);
      emit_job e = {b.acc, jt2, dx, n0, cnt, d->C, d->H, d->W, hq, wq_};
      mh_parallel_for(ctx->pool, (long)cnt * d->C, emit_planes, &e);
    }
  }
}
