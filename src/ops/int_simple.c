/* The integer-tensor forms of ReLU, max-pool, residual add and flatten: int8 values in, int8 out,
 * exponents passed on (ReLU, pool, flatten) or aligned (add). Backward masks and routes int8 errors. */
#include <string.h>

#include "ops/ops.h"

static long numel(const mh_op_ctx *ctx) { return (long)ctx->n * ctx->node->c * ctx->node->h * ctx->node->w; }
static long in_numel(const mh_op_ctx *ctx) {
  const mh_node *in = &ctx->g->nodes[ctx->node->in[0]];
  return (long)ctx->n * in->c * in->h * in->w;
}
/* Gradient scratch: an input gradient that may accumulate (several consumers) is built here
 * first, then (max-pool) int16 sums of routed errors. */
static size_t acc_bytes(const mh_graph *g, const mh_node *nd, int n) {
  const mh_node *in = &g->nodes[nd->in[0]];
  return in->n_consumers > 1 ? ((size_t)n * in->c * in->h * in->w + 63) / 64 * 64 : 0;
}
static size_t relu_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  return acc_bytes(g, nd, n) / 4 + 16;
}
static size_t pool_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  const mh_node *in = &g->nodes[nd->in[0]];
  return (acc_bytes(g, nd, n) + (size_t)n * in->c * in->h * in->w * 2) / 4 + 16;
}
static int8_t *grad_dst(mh_op_ctx *ctx) { return ctx->dx_accumulate[0] ? (int8_t *)ctx->scratch : ctx->qdx[0]; }

/* ---- ReLU: y = max(x, 0); the error passes where y > 0 ---- */
static void relu_fwd(mh_op_ctx *ctx) {
  long n = numel(ctx);
  const int8_t *x = ctx->qx[0];
  *ctx->ey = ctx->ex[0];
  int8_t *restrict y = ctx->qy; /* restrict: an int8 store may otherwise alias ctx and stop vectorisation */
  for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
static void relu_bwd(mh_op_ctx *ctx) {
  if (!ctx->qdx[0]) return;
  long n = numel(ctx);
  int8_t *g = grad_dst(ctx);
  const int8_t *restrict y = ctx->qy, *restrict dy = ctx->qdy;
  int8_t *restrict o = g;
  for (long i = 0; i < n; i++) o[i] = (int8_t)(dy[i] & -(y[i] > 0)); /* a mask, so dy loads unconditionally */
  mh__int_emit_grad(ctx, 0, g, ctx->edy, n);
}
const mh_op_impl mh_op_relu_int = {.save_output = 1, .scratch_floats = relu_scratch, .forward = relu_fwd, .backward = relu_bwd};

/* ---- max-pool: the window's first maximum in scan order; its error goes to that position ---- */
typedef struct {
  int H, W, P, Q, K, S, D;
} pool_dims;
static pool_dims pdims(const mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  pool_dims d = {in->h, in->w, nd->h, nd->w, nd->pool_k, nd->pool_s, nd->pool_p};
  return d;
}
static int argmax8(const pool_dims *d, const int8_t *x, int p, int q) {
  int best = -1;
  for (int kh = 0; kh < d->K; kh++) {
    int ih = p * d->S - d->D + kh;
    if (ih < 0 || ih >= d->H) continue;
    for (int kw = 0; kw < d->K; kw++) {
      int iw = q * d->S - d->D + kw;
      if (iw < 0 || iw >= d->W) continue;
      if (best < 0 || x[ih * d->W + iw] > x[best]) best = ih * d->W + iw;
    }
  }
  return best;
}
static void maxpool_fwd(mh_op_ctx *ctx) {
  pool_dims d = pdims(ctx);
  long planes = (long)ctx->n * ctx->node->c;
  *ctx->ey = ctx->ex[0];
  for (long t = 0; t < planes; t++) {
    const int8_t *restrict x = ctx->qx[0] + t * d.H * d.W;
    int8_t *restrict y = ctx->qy + t * d.P * d.Q;
    if (d.K == 2 && d.S == 2 && d.D == 0) { /* the maximum of each 2x2 window, branch-free */
      for (int p = 0; p < d.P; p++) {
        const int8_t *r0 = x + (size_t)2 * p * d.W, *r1 = r0 + d.W;
        for (int q = 0; q < d.Q; q++) {
          int8_t a = r0[2 * q] > r0[2 * q + 1] ? r0[2 * q] : r0[2 * q + 1];
          int8_t b = r1[2 * q] > r1[2 * q + 1] ? r1[2 * q] : r1[2 * q + 1];
          y[(size_t)p * d.Q + q] = a > b ? a : b;
        }
      }
      continue;
    }
    for (int p = 0; p < d.P; p++)
      for (int q = 0; q < d.Q; q++) y[p * d.Q + q] = x[argmax8(&d, x, p, q)];
  }
}

/* 2x2/2 backward: windows do not overlap, so each window writes its four elements (the error at its
 * first maximum, 0 elsewhere) and the shift is 0; odd last rows and columns get 0. */
static void maxpool2_bwd_int(const pool_dims *d, const int8_t *restrict x, const int8_t *restrict dy, int8_t *restrict g) {
  for (int p = 0; p < d->P; p++) {
    const int8_t *r0 = x + (size_t)2 * p * d->W, *r1 = r0 + d->W;
    int8_t *o0 = g + (size_t)2 * p * d->W, *o1 = o0 + d->W;
    for (int q = 0; q < d->Q; q++) {
      int8_t a = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], e = r1[2 * q + 1], v = dy[(size_t)p * d->Q + q];
      int k = b > a ? 1 : 0; /* the first maximum in scan order: a later element must be strictly greater */
      int8_t m = b > a ? b : a;
      k = c > m ? 2 : k, m = c > m ? c : m;
      k = e > m ? 3 : k;
      o0[2 * q] = k == 0 ? v : 0, o0[2 * q + 1] = k == 1 ? v : 0;
      o1[2 * q] = k == 2 ? v : 0, o1[2 * q + 1] = k == 3 ? v : 0;
    }
    if (d->W > 2 * d->Q) o0[2 * d->Q] = o1[2 * d->Q] = 0;
  }
  if (d->H > 2 * d->P) memset(g + (size_t)2 * d->P * d->W, 0, (size_t)d->W);
}
static void maxpool_bwd(mh_op_ctx *ctx) {
  if (!ctx->qdx[0]) return;
  pool_dims d = pdims(ctx);
  long planes = (long)ctx->n * ctx->node->c, n = in_numel(ctx);
  int8_t *g = grad_dst(ctx);
  if (d.K == 2 && d.S == 2 && d.D == 0) {
    for (long t = 0; t < planes; t++)
      maxpool2_bwd_int(&d, ctx->qx[0] + t * d.H * d.W, ctx->qdy + t * d.P * d.Q, g + t * d.H * d.W);
    mh__int_emit_grad(ctx, 0, g, ctx->edy, n);
    return;
  }
  int16_t *sum = (int16_t *)((char *)ctx->scratch + acc_bytes(ctx->g, ctx->node, ctx->n)); /* windows may overlap */
  memset(sum, 0, sizeof(int16_t) * n);
  for (long t = 0; t < planes; t++) {
    const int8_t *x = ctx->qx[0] + t * d.H * d.W, *dy = ctx->qdy + t * d.P * d.Q;
    int16_t *s = sum + t * d.H * d.W;
    for (int p = 0; p < d.P; p++)
      for (int q = 0; q < d.Q; q++) s[argmax8(&d, x, p, q)] += dy[p * d.Q + q];
  }
  uint32_t m = 0;
  for (long i = 0; i < n; i++) m = mh_q_abs32(sum[i]) > m ? mh_q_abs32(sum[i]) : m;
  int sh = mh_q_shift_for(m); /* 0 unless windows overlap */
  for (long i = 0; i < n; i++) g[i] = (int8_t)mh_q_round_nearest(sum[i], sh);
  mh__int_emit_grad(ctx, 0, g, ctx->edy + sh, n);
}
const mh_op_impl mh_op_maxpool_int = {.save_input = 1, .scratch_floats = pool_scratch, .forward = maxpool_fwd, .backward = maxpool_bwd};

/* ---- residual add: exponents aligned; backward hands the error to both inputs ---- */
static void add_fwd(mh_op_ctx *ctx) {
  *ctx->ey = mh__int_add(ctx->pool, ctx->qx[0], ctx->ex[0], ctx->qx[1], ctx->ex[1], ctx->qy, numel(ctx));
}
static void add_bwd(mh_op_ctx *ctx) {
  for (int k = 0; k < 2; k++) mh__int_emit_grad(ctx, k, ctx->qdy, ctx->edy, numel(ctx));
}
const mh_op_impl mh_op_add_int = {.forward = add_fwd, .backward = add_bwd};

/* ---- flatten: a view; the exponent passes through ---- */
static void flatten_fwd(mh_op_ctx *ctx) { *ctx->ey = ctx->ex[0]; }
static void flatten_bwd(mh_op_ctx *ctx) { mh__int_emit_grad(ctx, 0, ctx->qdy, ctx->edy, numel(ctx)); }
const mh_op_impl mh_op_flatten_int = {.alias_input = 1, .forward = flatten_fwd, .backward = flatten_bwd};
