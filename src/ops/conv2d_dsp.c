/* A convolution layer as one DSP subgraph (int8 and integer paths, ungrouped convolutions): the
 * three GEMMs over the whole batch (forward W * col, weight gradient G * col^T, input gradient
 * W^T * G) prepared once per layer and batch size, the weights resident and packed once per
 * version, each pass one message. The caller writes col and G into the region and reads Y. */
#include <string.h>

#include "backend/dsp/subgraph.h"
#include "core/status.h"
#include "ops/conv2d_common.h"

static size_t conv_dsp_desc(const conv_dims *d, mh_dsp_sg_desc *s) {
  int kk = d->Cg * d->K * d->K, cols = d->N * d->P * d->Q, rows = d->Og > kk ? d->Og : kk;
  memset(s, 0, sizeof *s);
  s->n_tensors = 6, s->n_nodes = 3, s->weights = MH_CONV_W;
  mh_dsp_sg_tensor t[6] = {{(size_t)d->Og * kk, 1}, {(size_t)d->Og * 4, 1}, {(size_t)d->Og * kk * 4, 0},
                           {(size_t)kk * cols, 0},   {(size_t)d->Og * cols, 0}, {(size_t)rows * cols * 4, 0}};
  memcpy(s->t, t, sizeof t);
  /* forward: Y (Og x cols) = W (Og x kk) * col (kk x cols), may fuse the requantise epilogue */
  mh_dsp_sg_node fwd = {d->Og, cols, kk, MH_CONV_W, kk, 0, MH_CONV_X, cols, 0, MH_CONV_Y, cols, MH_CONV_BIAS, 1, 1};
  /* weight gradient: DW (Og x kk) = G (Og x cols) * col^T (col read transposed on the DSP) */
  mh_dsp_sg_node bw = {d->Og, kk, cols, MH_CONV_G, cols, 0, MH_CONV_X, cols, 1, MH_CONV_DW, kk, -1, 0, 0};
  /* input gradient columns: Y (kk x cols) = W^T (W read transposed) * G */
  mh_dsp_sg_node bd = {kk, cols, d->Og, MH_CONV_W, kk, 1, MH_CONV_G, cols, 0, MH_CONV_Y, cols, -1, 1, 0};
  s->nodes[0] = fwd, s->nodes[1] = bw, s->nodes[2] = bd;
  return (size_t)d->Og * kk;
}

mh_dsp_sg *mh__conv_dsp(const mh_op_ctx *ctx, const conv_dims *d, const int8_t *wq) {
  if (!ctx->dsp || !ctx->dsp->alive || d->G != 1) return NULL;
  mh_dsp_sg_desc desc;
  size_t wbytes = conv_dsp_desc(d, &desc);
  mh_dsp_sg *sg = mh_dsp_sg_get(ctx->dsp, ctx->node_id, &desc, ctx->dsp_counts);
  if (!sg) {
    mh__op_dsp_failed(ctx);
    return NULL;
  }
  mh_dsp_sg_set_weights(ctx->dsp, sg, wq, wbytes, ctx->dsp_counts);
  return sg;
}

void mh__conv_dsp_inputs(const mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const int8_t *xq, const int8_t *dyq) {
  if (xq) mh__conv_im2col_s8(ctx, d, xq, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_X), 0, d->N, 0);
  if (dyq) mh__conv_gather_s8(d, dyq, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_G), 0, d->N, 0);
}
