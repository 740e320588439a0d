/* Fully connected layer on integer tensors (MH_PRECISION_INTEGER): y = x W^T + b in int32 with the
 * bias aligned to the accumulator, shifted back to int8; backward gives int32 weight/bias sums and
 * an int8 input error. */
#include <string.h>

#include "ops/ops.h"

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

static void dims(const mh_graph *g, const mh_node *nd, int *F, int *O) {
  const mh_node *in = &g->nodes[nd->in[0]];
  *F = in->c * in->h * in->w, *O = nd->c;
}

/* Scratch: int32 result (max(N*O, N*F)) then, when the input's gradient may accumulate (several
 * consumers), an int8 input error (N*F). */
static size_t lin_int_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  int F, O;
  dims(g, nd, &F, &O);
  size_t acc = (size_t)n * (O > F ? O : F);
  return (al(acc * 4) + (g->nodes[nd->in[0]].n_consumers > 1 ? al((size_t)n * F) : 0)) / 4 + 16;
}

static void lin_int_forward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  dims(ctx->g, ctx->node, &F, &O);
  int32_t *acc = (int32_t *)ctx->scratch;
  mh_gemm_s8_args a = {N, O, F, ctx->qx[0], F, 0, ctx->qw, F, 1, acc, O, 0};
  mh__op_gemm_s8(ctx, &a);
  int e_acc = ctx->ex[0] + ctx->ew[0];
  if (ctx->node->bias) {
    const int8_t *b = ctx->qw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      int32_t add = mh_q_align32(b[o], ctx->ew[1] - e_acc);
      for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(acc[(size_t)n * O + o], add);
    }
  }
  *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
}

static void lin_int_backward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  dims(ctx->g, ctx->node, &F, &O);
  int32_t *acc = (int32_t *)ctx->scratch;
  mh_gemm_s8_args gw = {O, F, N, ctx->qdy, O, 1, ctx->qx[0], F, 0, ctx->qdw, F, 0}; /* dW = dy^T x */
  mh__op_gemm_s8(ctx, &gw);
  if (ctx->node->bias) {
    int32_t *db = ctx->qdw + (size_t)O * F;
    for (int o = 0; o < O; o++) {
      int32_t s = 0;
      for (int n = 0; n < N; n++) s += ctx->qdy[(size_t)n * O + o];
      db[o] = s;
    }
  }
  if (!ctx->qdx[0]) return;
  mh_gemm_s8_args gd = {N, F, O, ctx->qdy, O, 0, ctx->qw, F, 0, acc, F, 0}; /* dx = dy W */
  mh__op_gemm_s8(ctx, &gd);
  int8_t *g8 = ctx->dx_accumulate[0] ? (int8_t *)ctx->scratch + al((size_t)N * (O > F ? O : F) * 4) : ctx->qdx[0];
  int sh = mh__int_rescale(ctx, 1, acc, (long)N * F, g8);
  mh__int_emit_grad(ctx, 0, g8, ctx->edy + ctx->ew[0] + sh, (long)N * F);
}

const mh_op_impl mh_op_linear_int = {
    .save_input = 1,
    .scratch_floats = lin_int_scratch,
    .forward = lin_int_forward,
    .backward = lin_int_backward,
};
