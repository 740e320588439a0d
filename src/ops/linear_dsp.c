/* A fully connected layer as one DSP subgraph (int8 and integer paths): forward (transposed, so
 * the requantise epilogue's bias is per row), weight gradient and input gradient over the batch,
 * prepared once per layer and batch size, the weights resident and packed once per version. */
#include <string.h>

#include "backend/dsp/subgraph.h"
#include "ops/ops.h"

struct mh_dsp_sg *mh__linear_dsp(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *wq) {
  if (!ctx->dsp || !ctx->dsp->alive) return NULL;
  mh_dsp_sg_desc s;
  memset(&s, 0, sizeof s);
  s.n_tensors = 6, s.n_nodes = 3, s.weights = MH_LIN_W;
  mh_dsp_sg_tensor t[6] = {{(size_t)O * F, 1}, {(size_t)O * 4, 1}, {(size_t)O * F * 4, 0},
                           {(size_t)N * F, 0}, {(size_t)N * O, 0}, {(size_t)N * (O > F ? O : F) * 4, 0}};
  memcpy(s.t, t, sizeof t);
  /* forward: Y (O x N) = W (O x F) * x^T; weight gradient: DW = dy^T x; input gradient: Y (N x F) = dy W */
  mh_dsp_sg_node fwd = {O, N, F, MH_LIN_W, F, 0, MH_LIN_X, F, 1, MH_LIN_Y, N, MH_LIN_BIAS, 1, 1};
  mh_dsp_sg_node bw = {O, F, N, MH_LIN_G, O, 1, MH_LIN_X, F, 0, MH_LIN_DW, F, -1, 0, 0};
  mh_dsp_sg_node bd = {N, F, O, MH_LIN_G, O, 0, MH_LIN_W, F, 0, MH_LIN_Y, F, -1, 0, 0};
  s.nodes[0] = fwd, s.nodes[1] = bw, s.nodes[2] = bd;
  struct mh_dsp_sg *sg = mh_dsp_sg_get(ctx->dsp, ctx->node_id, &s, ctx->dsp_counts);
  if (!sg) {
    mh__op_dsp_failed(ctx);
    return NULL;
  }
  mh_dsp_sg_set_weights(ctx->dsp, sg, wq, (size_t)O * F, ctx->dsp_counts);
  return sg;
}
