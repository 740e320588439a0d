/* A fully connected layer on the DSP (int8 and integer paths) as one subgraph: forward (transposed,
 * so the requantise epilogue's bias is per row), weight gradient and input gradient over the batch,
 * prepared once per layer and batch size, the weights resident and packed once per version. */
#include <string.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/subgraph.h"
#include "core/status.h"

enum { MH_LIN_W, MH_LIN_BIAS, MH_LIN_DW, MH_LIN_X, MH_LIN_G, MH_LIN_Y }; /* tensors; nodes: MH_PASS_* */

/* The layer's subgraph: a batch of N inputs of F features, O outputs. */
void mh__dsp_linear_desc(int N, int F, int O, mh_dsp_sg_desc *s) {
  memset(s, 0, sizeof *s);
  s->n_tensors = 6, s->n_nodes = 3, s->weights = MH_LIN_W;
  mh_dsp_sg_tensor t[6] = {{(size_t)O * F, 1}, {(size_t)O * 4, 1}, {(size_t)O * F * 4, 0},
                           {(size_t)N * F, 0}, {(size_t)N * O, 0}, {(size_t)N * (O > F ? O : F) * 4, 0}};
  memcpy(s->t, t, sizeof t);
  /* forward: Y (O x N) = W (O x F) * x^T; weight gradient: DW = dy^T x; input gradient: Y (N x F) = dy W */
  mh_dsp_sg_node fwd = {O, N, F, MH_LIN_W, F, 0, MH_LIN_X, F, 1, MH_LIN_Y, N, MH_LIN_BIAS, 1, 1};
  mh_dsp_sg_node bw = {O, F, N, MH_LIN_G, O, 1, MH_LIN_X, F, 0, MH_LIN_DW, F, -1, 0, 0};
  mh_dsp_sg_node bd = {N, F, O, MH_LIN_G, O, 0, MH_LIN_W, F, 0, MH_LIN_Y, F, -1, 0, 0};
  s->nodes[0] = fwd, s->nodes[1] = bw, s->nodes[2] = bd;
}

static struct mh_dsp_sg *linear_sg(mh_dsp_backend *b, const mh_op_ctx *ctx, int N, int F, int O, const int8_t *wq) {
  if (!b->dsp->alive) return NULL;
  mh_dsp_sg_desc s;
  mh__dsp_linear_desc(N, F, O, &s);
  struct mh_dsp_sg *sg = mh_dsp_sg_get(b->dsp, ctx->node_id, &s, b->cnt);
  if (sg) mh_dsp_sg_set_weights(b->dsp, sg, wq, (size_t)O * F, b->cnt);
  return sg;
}

static int run(mh_dsp_backend *b, struct mh_dsp_sg *sg, unsigned mask, int epilogue, int shift, mh_requant_stats *st) {
  MH_TRY(mh_dsp_sg_post(b->dsp, sg, mask, epilogue, shift, MH_ROUND_PSTO, b->cnt));
  return mh_dsp_sg_wait(b->dsp, sg, st, b->cnt);
}

/* int8 forward: quantised input and weights (saved for backward), Y^T back, FP32 y with the bias. */
static int s8_forward(mh_dsp_backend *b, mh_op_ctx *ctx, int N, int F, int O) {
  mh_linear_s8_bufs bufs;
  mh__linear_s8_bufs(ctx, N, F, O, &bufs);
  mh__linear_s8_quantize_inputs(ctx, N, F, O, &bufs);
  struct mh_dsp_sg *sg = linear_sg(b, ctx, N, F, O, bufs.wq);
  if (!sg) return MH_ERR_BACKEND;
  memcpy(mh_dsp_sg_at(b->dsp, sg, MH_LIN_X), bufs.xq, (size_t)N * F);
  MH_TRY(run(b, sg, MH_PASS_FWD, 0, 0, NULL));
  const int32_t *yt = mh_dsp_sg_at(b->dsp, sg, MH_LIN_Y);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) bufs.acc[(size_t)n * O + o] = yt[(size_t)o * N + n];
  mh__linear_s8_finish_forward(ctx, N, F, O, &bufs);
  return MH_OK;
}

/* niti forward. Exact rescaling: the int32 result comes back. Adaptive with a prediction: the
 * requantise epilogue is fused at the predicted shift, the adaptive rule judges the measured max and
 * saturations exactly as on the CPU, and a fallback runs again with the exact shift. */
static int int_forward(mh_dsp_backend *b, mh_op_ctx *ctx, int N, int F, int O) {
  int e_acc = ctx->ex[0] + ctx->ew[0];
  struct mh_dsp_sg *sg = linear_sg(b, ctx, N, F, O, ctx->qw);
  if (!sg) return MH_ERR_BACKEND;
  memcpy(mh_dsp_sg_at(b->dsp, sg, MH_LIN_X), ctx->qx[0], (size_t)N * F);
  void *y = mh_dsp_sg_at(b->dsp, sg, MH_LIN_Y);
  int32_t *acc = (int32_t *)ctx->scratch;
  if (mh_rescale_needs_exact(&ctx->rs[0], ctx->rescale) || !mh_wire_fused_fits((uint32_t)O, (uint32_t)F)) {
    MH_TRY(run(b, sg, MH_PASS_FWD, 0, 0, NULL));
    mh__linear_int_untranspose(ctx, y, N, F, O, e_acc, acc);
    *ctx->ey = e_acc + mh__int_rescale(ctx, 0, acc, (long)N * O, ctx->qy);
    return MH_OK;
  }
  int32_t *bias = mh_dsp_sg_at(b->dsp, sg, MH_LIN_BIAS);
  for (int o = 0; o < O; o++) bias[o] = ctx->node->bias ? mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc) : 0;
  mh_requant_stats s;
  MH_TRY(run(b, sg, MH_PASS_FWD, 1, ctx->rs[0].shift, &s));
  int redo, shift = mh_rescale_after_predicted(&ctx->rs[0], ctx->rc, &s, (long)N * O, &redo);
  if (redo && run(b, sg, MH_PASS_FWD, 1, shift, &s)) {
    /* the DSP went away after the rule moved on: finish here with the decided shift, as the CPU would */
    mh_gemm_s8_args a = {N, O, F, ctx->qx[0], F, 0, ctx->qw, F, 1, acc, O, 0};
    mh_gemm_s8(ctx->kt, ctx->pool, &a);
    if (ctx->node->bias)
      for (int o = 0; o < O; o++) {
        int32_t add = mh_q_align32(ctx->qw[(size_t)O * F + o], ctx->ew[1] - e_acc);
        for (int n = 0; n < N; n++) acc[(size_t)n * O + o] = mh_q_add_sat32(acc[(size_t)n * O + o], add);
      }
    ctx->kt->requant_s8(acc, ctx->qy, (long)N * O, shift, MH_ROUND_PSTO, 0, 0, &s);
    b->cnt->cpu_fallbacks++;
  } else {
    const int8_t *yt = y;
    for (int o = 0; o < O; o++)
      for (int n = 0; n < N; n++) ctx->qy[(size_t)n * O + o] = yt[(size_t)o * N + n];
  }
  *ctx->ey = e_acc + shift;
  return MH_OK;
}

int mh__dsp_linear_post(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes) {
  int N = ctx->n, F, O, integer = ctx->precision == MH_PRECISION_INTEGER;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  if (passes & MH_PASS_FWD) return integer ? int_forward(b, ctx, N, F, O) : s8_forward(b, ctx, N, F, O);
  const int8_t *xq = ctx->qx[0], *wq = ctx->qw, *dyq = ctx->qdy;
  if (!integer) {
    mh_linear_s8_bufs bufs;
    mh__linear_s8_bufs(ctx, N, F, O, &bufs);
    b->ey = mh__linear_s8_quantize_dy(ctx, N, O, &bufs);
    xq = bufs.xq, wq = bufs.wq, dyq = bufs.dyq;
  }
  struct mh_dsp_sg *sg = linear_sg(b, ctx, N, F, O, wq);
  if (!sg) return MH_ERR_BACKEND;
  if (passes & MH_PASS_BWD_W) memcpy(mh_dsp_sg_at(b->dsp, sg, MH_LIN_X), xq, (size_t)N * F);
  memcpy(mh_dsp_sg_at(b->dsp, sg, MH_LIN_G), dyq, (size_t)N * O);
  MH_TRY(mh_dsp_sg_post(b->dsp, sg, passes, 0, 0, MH_ROUND_PSTO, b->cnt));
  b->sg = sg;
  return MH_OK;
}

int mh__dsp_linear_wait(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes) {
  if (passes & MH_PASS_FWD) return MH_OK; /* completed in post */
  struct mh_dsp_sg *sg = b->sg;
  b->sg = NULL;
  MH_TRY(mh_dsp_sg_wait(b->dsp, sg, NULL, b->cnt));
  int N = ctx->n, F, O;
  mh__linear_dims(ctx->g, ctx->node, &F, &O);
  const int32_t *dw = mh_dsp_sg_at(b->dsp, sg, MH_LIN_DW), *dx = mh_dsp_sg_at(b->dsp, sg, MH_LIN_Y);
  if (ctx->precision == MH_PRECISION_INTEGER) {
    if (passes & MH_PASS_BWD_W) {
      memcpy(ctx->qdw, dw, sizeof(int32_t) * O * F);
      mh__linear_int_bias_grad(ctx, N, F, O);
    }
    if (passes & MH_PASS_BWD_D) {
      int32_t *acc = (int32_t *)ctx->scratch;
      memcpy(acc, dx, sizeof(int32_t) * N * F);
      mh__linear_int_finish_dx(ctx, N, F, O, acc);
    }
    return MH_OK;
  }
  mh_linear_s8_bufs bufs;
  mh__linear_s8_bufs(ctx, N, F, O, &bufs);
  if (passes & MH_PASS_BWD_W) {
    memcpy(bufs.acc, dw, sizeof(int32_t) * O * F);
    mh__linear_s8_finish_weights(ctx, N, F, O, &bufs, b->ey);
  }
  if (passes & MH_PASS_BWD_D) {
    memcpy(bufs.dxacc, dx, sizeof(int32_t) * N * F);
    mh__linear_s8_finish_dx(ctx, N, F, &bufs, b->ey);
  }
  return MH_OK;
}
