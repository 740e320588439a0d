/* conv2d on integer tensors (MH_PRECISION_INTEGER): int8 image and weights, the three GEMMs in
 * int32, the bias aligned into the accumulator, and every result shifted back to int8 through the
 * node's rescale slot (pseudo-stochastic rounding). Weight and bias gradients stay int32 sums. */
#include <string.h>

#include "ops/conv2d_common.h"

/* Scratch (bytes, 64-aligned): col (kk x cols), gathered dy (Og x cols), GEMM result
 * (Og x cols int32, or kk x cols when the input needs an error), the whole layer's int32 result
 * (forward output or input gradient), and an int8 error when the input's gradient may accumulate
 * (an input with several consumers). */
typedef struct {
  int8_t *col, *gq, *g8;
  int32_t *acc, *big;
  void *padded; /* stride 1, no groups: the im2col-free GEMMs' buffers (conv2d_s8_padded.c) instead of col, gq, acc */
} int_scratch;

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

/* Samples per GEMM chunk: enough for >= 512 columns and no more, so the int32 chunk buffer stays
 * small next to the layer's whole int32 result, which exact rescaling needs anyway. */
static int int_chunk(const conv_dims *d) {
  int pq = d->P * d->Q, nb = (512 + pq - 1) / pq;
  return nb > d->N ? d->N : nb;
}

/* The padded path's chunk: a quarter of int8's, as the layer's whole int32 result is held besides. */
static int int_padded_chunk(const conv_dims *d) { return mh__conv_s8_padded_chunk(d, 4096); }

static size_t scratch_bytes(const conv_dims *d, int needs_dx, int may_acc, int_scratch *out, void *base) {
  size_t kk = (size_t)d->Cg * d->K * d->K, cols = (size_t)int_chunk(d) * d->P * d->Q;
  size_t rows = (size_t)d->Og > kk || !needs_dx ? (size_t)d->Og : kk;
  size_t ny = (size_t)d->N * d->O * d->P * d->Q, nx = needs_dx ? (size_t)d->N * d->C * d->H * d->W : 0;
  int padded = mh__conv_s8_padded_ok(d);
  size_t sz[6] = {al(kk * cols), al((size_t)d->Og * cols), al(may_acc ? nx : 0), al(rows * cols * 4),
                  al((ny > nx ? ny : nx) * 4), 0};
  if (padded) sz[0] = sz[1] = sz[3] = 0, sz[5] = al(mh__conv_s8_padded_bytes(d, int_padded_chunk(d), NULL, NULL));
  size_t off = 0;
  char *b = base;
  void *ptr[6];
  for (int i = 0; i < 6; i++) ptr[i] = b ? b + off : NULL, off += sz[i];
  if (out) {
    out->col = ptr[0], out->gq = ptr[1], out->g8 = ptr[2], out->acc = ptr[3], out->big = ptr[4];
    out->padded = padded ? ptr[5] : NULL;
  }
  return off;
}

/* Whether the node's input gets an error (not the data) and whether that error may accumulate. */
static int needs_dx(const mh_graph *g, const mh_node *nd) { return nd->in[0] != 0; }
static int may_acc(const mh_graph *g, const mh_node *nd) { return g->nodes[nd->in[0]].n_consumers > 1; }

static size_t conv_int_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  conv_dims d = mh__conv_dims_of(g, nd, n);
  return scratch_bytes(&d, needs_dx(g, nd), may_acc(g, nd), NULL, NULL) / 4 + 16;
}

/* Adds the bias q_b * 2^e_b, aligned to the accumulator's exponent, to the NCHW int32 result. */
void mh__conv_int_bias(mh_op_ctx *ctx, const conv_dims *d, int32_t *big, int e_acc) {
  if (!ctx->node->bias) return;
  int kk = d->Cg * d->K * d->K, pq = d->P * d->Q;
  const int8_t *b = ctx->qw + (size_t)d->O * kk;
  for (int n = 0; n < d->N; n++)
    for (int o = 0; o < d->O; o++) {
      int32_t add = mh_q_align32(b[o], ctx->ew[1] - e_acc), *y = big + ((size_t)n * d->O + o) * pq;
      for (int i = 0; i < pq; i++) y[i] = mh_q_add_sat32(y[i], add);
    }
}

/* Samples [n0, n0+cnt) of group g from a GEMM result (Og x cnt*P*Q, elements of `size` bytes) into
 * the NCHW tensor y. */
static void conv_scatter(const conv_dims *d, const void *res, size_t size, void *y, int n0, int cnt, int g) {
  size_t pq = (size_t)d->P * d->Q, cols = (size_t)cnt * pq;
  for (int sm = 0; sm < cnt; sm++)
    for (int o = 0; o < d->Og; o++)
      memcpy((char *)y + (((size_t)(n0 + sm) * d->O + g * d->Og + o) * pq) * size,
             (const char *)res + ((size_t)o * cols + (size_t)sm * pq) * size, pq * size);
}

/* The layer's int32 result with the bias added, NCHW in s->big. */
static void conv_int_acc(mh_op_ctx *ctx, const conv_dims *dp, const int_scratch *s, int e_acc) {
  conv_dims d = *dp;
  if (s->padded) {
    mh_conv_out out = {NULL, 0.f, NULL, 0, s->big};
    mh__conv_s8_padded_forward(ctx, &d, int_padded_chunk(&d), ctx->qx[0], ctx->qw, &out, s->padded);
    mh__conv_int_bias(ctx, &d, s->big, e_acc);
    return;
  }
  int nb = int_chunk(&d), kk = d.Cg * d.K * d.K, pq = d.P * d.Q;
  for (int n0 = 0; n0 < d.N; n0 += nb) {
    int cnt = d.N - n0 < nb ? d.N - n0 : nb, cols = cnt * pq;
    for (int g = 0; g < d.G; g++) {
      mh__conv_im2col_s8(ctx, &d, ctx->qx[0], s->col, n0, cnt, g);
      mh_gemm_s8_args ga = {d.Og, cols, kk, ctx->qw + (size_t)g * d.Og * kk, kk, 0, s->col, cols, 0, s->acc, cols, 0};
      mh_gemm_s8(ctx->kt, ctx->pool, &ga);
      conv_scatter(&d, s->acc, 4, s->big, n0, cnt, g);
    }
  }
  mh__conv_int_bias(ctx, &d, s->big, e_acc);
}

void mh__conv_int_acc(mh_op_ctx *ctx, const conv_dims *d, int e_acc) {
  int_scratch s;
  scratch_bytes(d, needs_dx(ctx->g, ctx->node), may_acc(ctx->g, ctx->node), &s, ctx->scratch);
  conv_int_acc(ctx, d, &s, e_acc);
}

int32_t *mh__conv_int_big(const mh_op_ctx *ctx, const conv_dims *d) {
  int_scratch s;
  scratch_bytes(d, needs_dx(ctx->g, ctx->node), may_acc(ctx->g, ctx->node), &s, ctx->scratch);
  return s.big;
}

static void conv_int_forward(mh_op_ctx *ctx) {
  conv_dims d = mh__conv_dims(ctx);
  int_scratch s;
  scratch_bytes(&d, needs_dx(ctx->g, ctx->node), may_acc(ctx->g, ctx->node), &s, ctx->scratch);
  int e_acc = ctx->ex[0] + ctx->ew[0];
  conv_int_acc(ctx, &d, &s, e_acc);
  *ctx->ey = e_acc + mh__int_rescale(ctx, 0, s.big, (long)d.N * d.O * d.P * d.Q, ctx->qy);
}

/* dx planes (int32) += col2im(dcol) for samples [n0, n0+cnt) of group g, one input channel per range item. */
typedef struct {
  const conv_dims *d;
  const int32_t *dcol;
  int32_t *dx;
  int n0, cnt, g;
} col2im_job;

static void col2im_channels(void *p, long lo, long hi) {
  const col2im_job *j = p;
  const conv_dims *d = j->d;
  size_t cols = (size_t)j->cnt * d->P * d->Q;
  for (long c = lo; c < hi; c++)
    for (int sm = 0; sm < j->cnt; sm++)
      mh__conv_col2im_s32_plane(d, j->dcol, cols, sm, (int)c,
                                j->dx + (((size_t)(j->n0 + sm) * d->C) + j->g * d->Cg + c) * d->H * d->W);
}

/* The backward GEMMs in `parts` (MH_PASS_BWD_W, MH_PASS_BWD_D) on the CPU, in sample chunks. */
static void conv_int_backward_cpu(mh_op_ctx *ctx, const conv_dims *dp, const int_scratch *s, unsigned parts) {
  conv_dims d = *dp;
  if (s->padded) { /* the input gradient's int32 sums straight into s->big */
    mh_conv_out dx = {NULL, 0.f, NULL, 0, s->big};
    mh__conv_s8_padded_backward(ctx, &d, int_padded_chunk(&d), ctx->qx[0], ctx->qw, ctx->qdy, &dx, ctx->qdw, parts,
                                s->padded);
    return;
  }
  int nb = int_chunk(&d), kk = d.Cg * d.K * d.K, pq = d.P * d.Q;
  for (int n0 = 0; n0 < d.N; n0 += nb) {
    int cnt = d.N - n0 < nb ? d.N - n0 : nb, cols = cnt * pq;
    for (int g = 0; g < d.G; g++) {
      mh__conv_gather_s8(&d, ctx->qdy, s->gq, n0, cnt, g);
      if (parts & MH_PASS_BWD_W) {
        mh__conv_im2col_s8(ctx, &d, ctx->qx[0], s->col, n0, cnt, g);
        /* dW_g (Og x kk) += G (Og x cols) * col^T: exact int32 sums across chunks */
        mh_gemm_s8_args gw = {d.Og, kk, cols, s->gq, cols, 0, s->col, cols, 1, ctx->qdw + (size_t)g * d.Og * kk, kk, n0 > 0};
        mh_gemm_s8(ctx->kt, ctx->pool, &gw);
      }
      if (parts & MH_PASS_BWD_D) {
        /* dcol (kk x cols) = W_g^T * G, then col2im into the int32 input gradient */
        mh_gemm_s8_args gd = {kk, cols, d.Og, ctx->qw + (size_t)g * d.Og * kk, kk, 1, s->gq, cols, 0, s->acc, cols, 0};
        mh_gemm_s8(ctx->kt, ctx->pool, &gd);
        col2im_job j = {&d, s->acc, s->big, n0, cnt, g};
        mh_parallel_for(ctx->pool, d.Cg, col2im_channels, &j);
      }
    }
  }
}

void mh__conv_int_col2im(mh_op_ctx *ctx, const conv_dims *d, const int32_t *dcol, int32_t *dx) {
  col2im_job j = {d, dcol, dx, 0, d->N, 0};
  mh_parallel_for(ctx->pool, d->Cg, col2im_channels, &j);
}

void mh__conv_int_bias_grad(mh_op_ctx *ctx, const conv_dims *d) {
  if (!ctx->node->bias) return; /* the error summed over samples and positions */
  int kk = d->Cg * d->K * d->K, pq = d->P * d->Q;
  int32_t *db = ctx->qdw + (size_t)d->O * kk;
  for (int o = 0; o < d->O; o++) {
    int32_t acc = 0;
    for (int n = 0; n < d->N; n++) {
      const int8_t *gp = ctx->qdy + ((size_t)n * d->O + o) * pq;
      for (int i = 0; i < pq; i++) acc += gp[i];
    }
    db[o] = acc;
  }
}

void mh__conv_int_finish_dx(mh_op_ctx *ctx, const conv_dims *d) {
  int_scratch s;
  scratch_bytes(d, needs_dx(ctx->g, ctx->node), may_acc(ctx->g, ctx->node), &s, ctx->scratch);
  long nx = (long)d->N * d->C * d->H * d->W;
  int8_t *g8 = ctx->dx_accumulate[0] ? s.g8 : ctx->qdx[0];
  int sh = mh__int_rescale(ctx, 1, s.big, nx, g8);
  mh__int_emit_grad(ctx, 0, g8, ctx->edy + ctx->ew[0] + sh, nx);
}

/* Backward: the passes asked for (ctx->passes; 0: both), each complete by itself, so a backend can
 * take the other one: the weight and bias gradients (int32 sums), and the input gradient (int32
 * planes, rescaled to int8). */
static void conv_int_backward(mh_op_ctx *ctx) {
  conv_dims d = mh__conv_dims(ctx);
  int_scratch s;
  scratch_bytes(&d, needs_dx(ctx->g, ctx->node), may_acc(ctx->g, ctx->node), &s, ctx->scratch);
  unsigned parts = (ctx->passes ? ctx->passes : MH_PASS_BWD_W | MH_PASS_BWD_D) &
                   (MH_PASS_BWD_W | (ctx->qdx[0] ? MH_PASS_BWD_D : 0u));
  if (parts & MH_PASS_BWD_D) memset(s.big, 0, sizeof(int32_t) * d.N * d.C * d.H * d.W);
  conv_int_backward_cpu(ctx, &d, &s, parts);
  if (parts & MH_PASS_BWD_W) mh__conv_int_bias_grad(ctx, &d);
  if (parts & MH_PASS_BWD_D) mh__conv_int_finish_dx(ctx, &d);
}

const mh_op_impl mh_op_conv2d_int = {
    .save_input = 1,
    .scratch_floats = conv_int_scratch,
    .forward = conv_int_forward,
    .backward = conv_int_backward,
};
