/* conv2d for the int8 (mixed-precision) algorithm: activations, weights and output gradients are
 * quantised to int8 with per-tensor power-of-two exponents, the three GEMMs run int8 x int8 -> int32,
 * and results return to FP32 scaled by 2^(e_a + e_b) (the input gradient after its columns are summed
 * in int32, so each element is rounded once). Forward and weights round to nearest; output gradients
 * round stochastically (keyed by seed, step, node) so their quantisation is unbiased.
 * The int8 input and weights are saved for backward instead of the FP32 input. */
#include <math.h>
#include <string.h>

#include "ops/conv2d_common.h"
#include "quant/quantize.h"

/* Scratch (bytes, 64-aligned pieces): dy_q (N*O*P*Q), dW int32 (O*kk), then either (stride 1, no
 * groups) the padded path's buffers (conv2d_s8_padded.c), or col_q (kk x cols), the chunk's gathered
 * dy_q (Og x cols), acc int32 (max(Og, kk) x cols) and the chunk's input gradient planes in int32
 * (cnt*Cg x H*W), where the columns' contributions sum exactly. */
typedef struct {
  int8_t *dyq, *colq, *gq;
  int32_t *acc, *dwacc, *dxacc;
  void *padded; /* the padded path's buffers */
} s8_scratch;

static int s8_padded_chunk(const conv_dims *d) { return mh__conv_s8_padded_chunk(d, MH_S8_PADDED_COLS); }

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

static size_t s8_bytes(const conv_dims *d, s8_scratch *out, void *base) {
  size_t kk = (size_t)d->Cg * d->K * d->K, cols = (size_t)mh__conv_chunk_samples(d) * d->P * d->Q;
  size_t rows = (size_t)d->Og > kk ? (size_t)d->Og : kk;
  size_t planes = (size_t)mh__conv_chunk_samples(d) * d->Cg * d->H * d->W;
  int padded = mh__conv_s8_padded_ok(d);
  /* dxacc is kept with the padded path too: the DSP's backward-data columns come back through col2im */
  size_t sz[6] = {al((size_t)d->N * d->O * d->P * d->Q), al((size_t)d->O * kk * 4), 0, 0, 0, al(planes * 4)};
  if (padded) sz[2] = al(mh__conv_s8_padded_bytes(d, s8_padded_chunk(d), NULL, NULL));
  else sz[2] = al(kk * cols), sz[3] = al((size_t)d->Og * cols), sz[4] = al(rows * cols * 4);
  size_t off = 0;
  char *b = base;
  void *ptr[6];
  for (int i = 0; i < 6; i++) ptr[i] = b ? b + off : NULL, off += sz[i];
  if (out) {
    memset(out, 0, sizeof *out);
    out->dyq = ptr[0], out->dwacc = ptr[1], out->dxacc = ptr[5];
    if (padded) out->padded = ptr[2];
    else out->colq = ptr[2], out->gq = ptr[3], out->acc = ptr[4];
  }
  return off;
}

/* Saved from forward to backward (bytes, 64-aligned): the exponents of x and W, x_q (N*C*H*W) and
 * W_q (O*kk): backward reuses forward's int8 tensors, and the FP32 input need not stay alive. */
typedef struct {
  int32_t *e; /* e[0] of x, e[1] of W */
  int8_t *xq, *wq;
} s8_state;

static size_t s8_state_bytes(const conv_dims *d, s8_state *out, void *base) {
  size_t sz[3] = {64, al((size_t)d->N * d->C * d->H * d->W), al((size_t)d->O * d->Cg * d->K * d->K)}, off = 0;
  char *b = base;
  void *ptr[3];
  for (int i = 0; i < 3; i++) ptr[i] = b ? b + off : NULL, off += sz[i];
  if (out) out->e = ptr[0], out->xq = ptr[1], out->wq = ptr[2];
  return off;
}

static size_t conv_s8_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  conv_dims d = mh__conv_dims_of(g, nd, n);
  return s8_bytes(&d, NULL, NULL) / 4 + 16;
}

static size_t conv_s8_state(const mh_graph *g, const mh_node *nd, int n, int precision) {
  conv_dims d = mh__conv_dims_of(g, nd, n);
  return s8_state_bytes(&d, NULL, NULL) / 4;
}

/* col_q (kk x cnt*P*Q) from x_q for samples [n0, n0+cnt) of group g; padding is 0. Rows are
 * independent, so they are split across the pool; the valid range of each output row is found once. */
typedef struct {
  const conv_dims *d;
  const int8_t *xq;
  int8_t *col;
  int n0, cnt, g;
} im2col_s8_job;

static void im2col_s8_rows(void *p, long lo, long hi) {
  const im2col_s8_job *j = p;
  const conv_dims *d = j->d;
  size_t cols = (size_t)j->cnt * d->P * d->Q;
  for (long r = lo; r < hi; r++) {
    int c = (int)(r / (d->K * d->K)), kh = (int)(r / d->K % d->K), kw = (int)(r % d->K);
    int q0 = 0, q1 = d->Q; /* valid q: 0 <= q*S - D + kw < W */
    while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
    while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
    int8_t *dst = j->col + (size_t)r * cols;
    for (int s = 0; s < j->cnt; s++) {
      const int8_t *plane = j->xq + (((size_t)(j->n0 + s) * d->C) + j->g * d->Cg + c) * d->H * d->W;
      for (int p = 0; p < d->P; p++) {
        int ih = p * d->S - d->D + kh;
        int8_t *out = dst + ((size_t)s * d->P + p) * d->Q;
        if (ih < 0 || ih >= d->H) {
          memset(out, 0, (size_t)d->Q);
          continue;
        }
        const int8_t *row = plane + (size_t)ih * d->W - d->D + kw;
        memset(out, 0, (size_t)q0);
        if (d->S == 1) memcpy(out + q0, row + q0, (size_t)(q1 - q0));
        else
          for (int q = q0; q < q1; q++) out[q] = row[(size_t)q * d->S];
        memset(out + q1, 0, (size_t)(d->Q - q1));
      }
    }
  }
}

void mh__conv_im2col_s8(const mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, int8_t *col, int n0, int cnt,
                        int g) {
  im2col_s8_job j = {d, xq, col, n0, cnt, g};
  mh_parallel_for(ctx->pool, (long)d->Cg * d->K * d->K, im2col_s8_rows, &j);
}

/* y (NCHW, FP32) for samples [n0, n0+cnt) of group g = acc (Og x cnt*P*Q) * scale + bias. */
static void s8_emit(mh_op_ctx *ctx, const conv_dims *d, const int32_t *acc, int n0, int cnt, int g, float scale,
                    const float *b) {
  size_t pq = (size_t)d->P * d->Q, cols = (size_t)cnt * pq;
  for (int sm = 0; sm < cnt; sm++)
    for (int o = 0; o < d->Og; o++) {
      float *dst = ctx->y + ((size_t)(n0 + sm) * d->O + g * d->Og + o) * pq, bv = b ? b[g * d->Og + o] : 0.f;
      const int32_t *src = acc + (size_t)o * cols + (size_t)sm * pq;
      for (size_t i = 0; i < pq; i++) dst[i] = (float)src[i] * scale + bv;
    }
}

void mh__conv_gather_s8(const conv_dims *d, const int8_t *dyq, int8_t *gq, int n0, int cnt, int g) {
  size_t pq = (size_t)d->P * d->Q, cols = (size_t)cnt * pq;
  for (int sm = 0; sm < cnt; sm++)
    for (int o = 0; o < d->Og; o++)
      memcpy(gq + (size_t)o * cols + (size_t)sm * pq, dyq + ((size_t)(n0 + sm) * d->O + g * d->Og + o) * pq, pq);
}

void mh__conv_s8_bufs(const mh_op_ctx *ctx, const conv_dims *d, mh_conv_s8_bufs *b) {
  s8_scratch s;
  s8_bytes(d, &s, ctx->scratch);
  s8_state v;
  s8_state_bytes(d, &v, ctx->state);
  b->e = v.e, b->xq = v.xq, b->wq = v.wq, b->dyq = s.dyq, b->dwacc = s.dwacc, b->dxacc = s.dxacc;
}

float mh__conv_s8_quantize_inputs(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b) {
  long nx = (long)d->N * d->C * d->H * d->W; /* max |x| from the producer when it recorded it: no max pass */
  b->e[0] = ctx->x_absmax[0] >= 0
                ? mh_quantize_f32_s8_max(ctx->kt, ctx->pool, ctx->x[0], nx, b->xq, MH_ROUND_NEAREST, 0, ctx->x_absmax[0])
                : mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->x[0], nx, b->xq, MH_ROUND_NEAREST, 0);
  b->e[1] = mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->w, (long)d->O * d->Cg * d->K * d->K, b->wq, MH_ROUND_NEAREST, 0);
  return (float)ldexp(1.0, b->e[0] + b->e[1]);
}

int mh__conv_s8_quantize_dy(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b) {
  uint32_t key = mh_q_stoch_key(ctx->seed, (uint64_t)ctx->step, (uint32_t)ctx->node_id);
  return mh_quantize_f32_s8(ctx->kt, ctx->pool, ctx->dy, (long)d->N * d->O * d->P * d->Q, b->dyq, MH_ROUND_STOCH, key);
}

void mh__conv_s8_finish_weights(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b, int ey) {
  int kk = d->Cg * d->K * d->K, pq = d->P * d->Q;
  mh_dequantize_s32_f32(ctx->pool, b->dwacc, (long)d->O * kk, ey + b->e[0], ctx->dw, 0);
  if (!ctx->node->bias) return;
  float *db = ctx->dw + (size_t)d->O * kk; /* the bias gradient stays FP32: a sum of dL/dy */
  for (int o = 0; o < d->O; o++) {
    double acc = 0;
    for (int n = 0; n < d->N; n++) {
      const float *gp = ctx->dy + ((size_t)n * d->O + o) * pq;
      for (int i = 0; i < pq; i++) acc += gp[i];
    }
    db[o] = (float)acc;
  }
}

static void conv_s8_forward(mh_op_ctx *ctx) {
  conv_dims d = mh__conv_dims(ctx);
  s8_scratch s;
  s8_bytes(&d, &s, ctx->scratch);
  s8_state v;
  s8_state_bytes(&d, &v, ctx->state);
  mh_conv_s8_bufs bufs;
  mh__conv_s8_bufs(ctx, &d, &bufs);
  int nb = mh__conv_chunk_samples(&d), kk = d.Cg * d.K * d.K, pq = d.P * d.Q;
  float scale = mh__conv_s8_quantize_inputs(ctx, &d, &bufs);
  const float *b = ctx->node->bias ? ctx->w + (size_t)d.O * kk : NULL;
  if (s.padded) {
    mh_conv_out out = {ctx->y, scale, b, 0, NULL};
    mh__conv_s8_padded_forward(ctx, &d, s8_padded_chunk(&d), v.xq, v.wq, &out, s.padded);
    return;
  }
  if (mh__conv_s8_depthwise_ok(&d)) {
    mh__conv_s8_depthwise_forward(ctx, &d, v.xq, v.wq, scale, b);
    return;
  }
  for (int n0 = 0; n0 < d.N; n0 += nb) {
    int cnt = d.N - n0 < nb ? d.N - n0 : nb, cols = cnt * pq;
    for (int g = 0; g < d.G; g++) {
      mh__conv_im2col_s8(ctx, &d, v.xq, s.colq, n0, cnt, g);
      mh_gemm_s8_args ga = {d.Og, cols, kk, v.wq + (size_t)g * d.Og * kk, kk, 0, s.colq, cols, 0, s.acc, cols, 0};
      mh_gemm_s8(ctx->kt, ctx->pool, &ga);
      s8_emit(ctx, &d, s.acc, n0, cnt, g, scale, b);
    }
  }
}

/* dx (+)= 2^e * col2im(dcol) for samples [n0, n0+cnt) of group g: dcol is the int32 GEMM result
 * (kk rows of stride ld, the chunk's first column at column 0); each input plane sums its
 * contributions exactly in int32 (its own slot of acc) and is converted to FP32 once. */
typedef struct {
  const conv_dims *d;
  const int32_t *dcol;
  size_t ld;
  int32_t *acc;
  float *dx, scale;
  int n0, g, accumulate;
} col2im_s32_job;

/* plane (H x W int32) += the contributions of channel c (within the group) of sample s from dcol
 * (kk rows of stride ld, the chunk's columns from 0): col2im of one plane, exact in int32. */
void mh__conv_col2im_s32_plane(const conv_dims *d, const int32_t *dcol, size_t ld, int s, int c, int32_t *plane) {
  size_t pq = (size_t)d->P * d->Q;
  for (int kh = 0; kh < d->K; kh++)
    for (int kw = 0; kw < d->K; kw++) {
      const int32_t *src = dcol + ((size_t)(c * d->K + kh) * d->K + kw) * ld + (size_t)s * pq;
      int q0 = 0, q1 = d->Q; /* valid q: 0 <= q*S - D + kw < W */
      while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
      while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
      for (int pp = 0; pp < d->P; pp++) {
        int ih = pp * d->S - d->D + kh;
        if (ih < 0 || ih >= d->H) continue;
        int32_t *restrict row = plane + (size_t)ih * d->W - d->D + kw;
        const int32_t *restrict in = src + (size_t)pp * d->Q;
        if (d->S == 1)
          for (int q = q0; q < q1; q++) row[q] += in[q];
        else
          for (int q = q0; q < q1; q++) row[(size_t)q * d->S] += in[q];
      }
    }
}

static void col2im_s32_planes(void *p, long lo, long hi) {
  const col2im_s32_job *j = p;
  const conv_dims *d = j->d;
  size_t hw = (size_t)d->H * d->W;
  for (long t = lo; t < hi; t++) {
    int s = (int)(t / d->Cg), c = (int)(t % d->Cg);
    int32_t *acc = j->acc + (size_t)t * hw;
    memset(acc, 0, sizeof(int32_t) * hw);
    mh__conv_col2im_s32_plane(d, j->dcol, j->ld, s, c, acc);
    float *plane = j->dx + (((size_t)(j->n0 + s) * d->C) + j->g * d->Cg + c) * hw, sc = j->scale;
    if (j->accumulate)
      for (size_t i = 0; i < hw; i++) plane[i] += (float)acc[i] * sc;
    else
      for (size_t i = 0; i < hw; i++) plane[i] = (float)acc[i] * sc;
  }
}

void mh__conv_s8_col2im(mh_op_ctx *ctx, const conv_dims *d, const int32_t *dcol, size_t ld, int32_t *acc, int n0,
                        int cnt, int g, int e) {
  col2im_s32_job j = {d, dcol, ld, acc, ctx->dx[0], ldexpf(1.f, e), n0, g, ctx->dx_accumulate[0]};
  mh_parallel_for(ctx->pool, (long)cnt * d->Cg, col2im_s32_planes, &j);
}

/* The backward GEMMs in `parts` (MH_PASS_BWD_W into s->dwacc, MH_PASS_BWD_D into dx) on the CPU,
 * in sample chunks; ey is dy_q's exponent. */
static void conv_s8_backward_cpu(mh_op_ctx *ctx, const conv_dims *dp, const s8_scratch *s, const s8_state *v, int ey,
                                 unsigned parts) {
  conv_dims d = *dp;
  if (s->padded) {
    mh_conv_out dx = {ctx->dx[0], ldexpf(1.f, v->e[1] + ey), NULL, ctx->dx_accumulate[0], NULL};
    mh__conv_s8_padded_backward(ctx, &d, s8_padded_chunk(&d), v->xq, v->wq, s->dyq, &dx, s->dwacc, parts,
                                s->padded);
    return;
  }
  if (mh__conv_s8_depthwise_ok(&d)) {
    mh__conv_s8_depthwise_backward(ctx, &d, v->xq, v->wq, s->dyq, ldexpf(1.f, v->e[1] + ey), s->dwacc, parts);
    return;
  }
  int nb = mh__conv_chunk_samples(&d), kk = d.Cg * d.K * d.K, pq = d.P * d.Q;
  int8_t *gq = s->gq; /* the chunk's output gradient as (Og x cols) */
  for (int n0 = 0; n0 < d.N; n0 += nb) {
    int cnt = d.N - n0 < nb ? d.N - n0 : nb, cols = cnt * pq;
    for (int g = 0; g < d.G; g++) {
      mh__conv_gather_s8(&d, s->dyq, gq, n0, cnt, g);
      if (parts & MH_PASS_BWD_W) {
        mh__conv_im2col_s8(ctx, &d, v->xq, s->colq, n0, cnt, g);
        /* dW_g (Og x kk) += G (Og x cols) * col^T, exactly in int32 across chunks */
        mh_gemm_s8_args gw = {d.Og, kk, cols, gq, cols, 0, s->colq, cols, 1, s->dwacc + (size_t)g * d.Og * kk, kk, n0 > 0};
        mh_gemm_s8(ctx->kt, ctx->pool, &gw);
      }
      if (parts & MH_PASS_BWD_D) {
        /* dcol (kk x cols) = W_g^T * G in int32, summed into the input planes in int32, then to FP32 */
        mh_gemm_s8_args gd = {kk, cols, d.Og, v->wq + (size_t)g * d.Og * kk, kk, 1, gq, cols, 0, s->acc, cols, 0};
        mh_gemm_s8(ctx->kt, ctx->pool, &gd);
        mh__conv_s8_col2im(ctx, &d, s->acc, (size_t)cols, s->dxacc, n0, cnt, g, v->e[1] + ey);
      }
    }
  }
}

/* Backward: the passes asked for (ctx->passes; 0: both), each complete by itself, so a backend can
 * take the other one: the weight gradient (int32 sums, then FP32, and the bias gradient) and the
 * input gradient. Both quantise dy the same way. */
static void conv_s8_backward(mh_op_ctx *ctx) {
  conv_dims d = mh__conv_dims(ctx);
  s8_scratch s;
  s8_bytes(&d, &s, ctx->scratch);
  s8_state v; /* forward's int8 x and W */
  s8_state_bytes(&d, &v, ctx->state);
  mh_conv_s8_bufs bufs;
  mh__conv_s8_bufs(ctx, &d, &bufs);
  unsigned parts = (ctx->passes ? ctx->passes : MH_PASS_BWD_W | MH_PASS_BWD_D) &
                   (MH_PASS_BWD_W | (ctx->dx[0] ? MH_PASS_BWD_D : 0u));
  int ey = mh__conv_s8_quantize_dy(ctx, &d, &bufs);
  conv_s8_backward_cpu(ctx, &d, &s, &v, ey, parts);
  if (parts & MH_PASS_BWD_W) mh__conv_s8_finish_weights(ctx, &d, &bufs, ey);
}

const mh_op_impl mh_op_conv2d_s8 = {
    .scratch_floats = conv_s8_scratch,
    .state_floats = conv_s8_state,
    .forward = conv_s8_forward,
    .backward = conv_s8_backward,
};
