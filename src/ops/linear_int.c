/* Fully connected layer on integer tensors (MH_PRECISION_INTEGER): y = x W^T + b in int32 with the
 * bias aligned to the accumulator, shifted back to int8; backward gives int32 weight/bias sums and
 * an int8 input error. */
#include <string.h>

#include "ops/ops.h"

static size_t al(size_t b) { return (b + 63) / 64 * 64; }

/* Scratch: int32 result (max(N*O, N*F)), then an int8 input error (N*F) when the input's gradient
 * may accumulate (several consumers). */
static size_t lin_int_scratch(const mh_graph *g, const mh_node *nd, int n, int precision) {
  int F, O;
  mh__linear_dims(g, nd, &F, &O);
  size_t acc = (size_t)n * (O > F ? O : F);
  return (al(acc * 4) + (g->nodes[nd->in[0]].n_consumers > 1 ? al((size_t)n * F) : 0)) / 4 + 16;
}

/* acc (N x O int32) = x W^T plus the bias aligned to the accumulator's exponent e_acc. */
static void lin_int_acc(mh_op_ctx *ctx, int N, int F, int O, int e_acc, int32_t *acc) {
  mh_gemm_s8_args a = {N, O, F, ctx->qx[0], F, 0, ctx->qw, F, 1, acc, O, 0};
  mh_gemm_s8(ctx->kt, ctx->pool, &a);
  if (!ctx->node->bias) return;
  const int8_t *b = ctx->qw + (size_t)O * F;
  for (int o = 0; o < O; o++) {
    int32_t add = mh_q_align32(b[o], ctx->ew[1] - e_acc);
    for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(acc[(size_t)n * O + o], add);
  }
}

/* acc (N x O) = the transposed forward result Y (O x N), plus the aligned bias. */
void mh__linear_int_untranspose(const mh_op_ctx *ctx, const int32_t *y, int N, int F, int O, int e_acc, int32_t *acc) {
  for (int o = 0; o < O; o++) {
    int32_t add = ctx->node->bias ? mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc) : 0;
    for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(y[(size_t)o * N + n], add);
  }
}

static void lin_int_forward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  int e_acc = ctx->ex[0] + ctx->ew[0];
  int32_t *acc = (int32_t *)ctx->scratch;
  lin_int_acc(ctx, N, F, O, e_acc, acc);
  *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
}

void mh__linear_int_bias_grad(mh_op_ctx *ctx, int N, int F, int O) {
  if (!ctx->node->bias) return;
  int32_t *db = ctx->qdw + (size_t)O * F;
  for (int o = 0; o < O; o++) {
    int32_t s = 0;
    for (int n = 0; n < N; n++) s += ctx->qdy[(size_t)n * O + o];
    db[o] = s;
  }
}

void mh__linear_int_finish_dx(mh_op_ctx *ctx, int N, int F, int O, const int32_t *acc) {
  int8_t *g8 = ctx->dx_accumulate[0] ? (int8_t *)ctx->scratch + al((size_t)N * (O > F ? O : F) * 4) : ctx->qdx[0];
  int sh = mh__int_rescale(ctx, 1, acc, (long)N * F, g8);
  mh__int_emit_grad(ctx, 0, g8, ctx->edy + ctx->ew[0] + sh, (long)N * F);
}

/* Backward: the passes asked for (ctx->passes; 0: both), each complete by itself. */
static void lin_int_backward(mh_op_ctx *ctx) {
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  int32_t *acc = (int32_t *)ctx->scratch; /* the input gradient's int32 sums */
  unsigned parts = (ctx->passes ? ctx->passes : MH_PASS_BWD_W | MH_PASS_BWD_D) &
                   (MH_PASS_BWD_W | (ctx->qdx[0] ? MH_PASS_BWD_D : 0u));
  mh__linear_backward_gemms(ctx, N, F, O, ctx->qx[0], ctx->qw, ctx->qdy, ctx->qdw, acc, parts);
  if (parts & MH_PASS_BWD_W) mh__linear_int_bias_grad(ctx, N, F, O);
  if (parts & MH_PASS_BWD_D) mh__linear_int_finish_dx(ctx, N, F, O, acc);
}

const mh_op_impl mh_op_linear_int = {
    .save_input = 1,
    .scratch_floats = lin_int_scratch,
    .forward = lin_int_forward,
    .backward = lin_int_backward,
};
