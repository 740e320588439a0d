/* A convolution layer as one DSP subgraph (int8 and integer paths, ungrouped convolutions): the
 * three GEMMs over the whole batch prepared once per layer and batch size, the weights resident and
 * packed once per version, each pass one message. Two forms:
 * - grid (stride 1, where the CPU runs the padded path): no column matrix crosses to the DSP. The
 *   batch's image is padded into [channel][sample][Hp][Wp] and the GEMMs read its runs through row
 *   tables (forward W * X, weight gradient G * X^T with G on the padded grid); the input gradient is
 *   the convolution of the output gradient padded by K-1-D with the flipped weights (a second
 *   constant tensor), so it comes back as C planes on a grid, not as K*K times as many columns.
 *   Results on a grid carry columns past each row and sample, which the host drops.
 * - columns (other convolutions): the host writes col and gathered G, and col2im's the input
 *   gradient's columns. */
#include <stdlib.h>
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

/* The grid form's geometry: padded input (hp x wp per sample), the output gradient padded by
 * K-1-D (hq x wq), and the columns of the forward/weight-gradient grid (jt) and of the input
 * gradient's (jt2), for the whole batch. */
static void grid_dims(const conv_dims *d, int *hp, int *wp, int *hq, int *wq, size_t *jt, size_t *jt2) {
  *hp = d->H + 2 * d->D, *wp = d->W + 2 * d->D;
  int d2 = d->K - 1 - d->D;
  *hq = d->P + 2 * d2, *wq = d->Q + 2 * d2;
  *jt = (size_t)(d->N - 1) * *hp * *wp + (size_t)(d->P - 1) * *wp + d->Q;
  *jt2 = (size_t)(d->N - 1) * *hq * *wq + (size_t)(d->H - 1) * *wq + d->W;
}

int mh__conv_dsp_grid(const conv_dims *d) { return mh__conv_s8_padded_ok(d); }

static void grid_desc(const conv_dims *d, mh_dsp_sg_desc *s) {
  int hp, wp, hq, wq, kk = d->C * d->K * d->K, kk2 = d->O * d->K * d->K;
  size_t jt, jt2;
  grid_dims(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  size_t y = (size_t)d->O * jt > (size_t)d->C * jt2 ? (size_t)d->O * jt : (size_t)d->C * jt2;
  memset(s, 0, sizeof *s);
  s->n_tensors = 10, s->n_nodes = 3, s->weights = MH_CONV_W, s->weights2 = MH_CONV_WT;
  mh_dsp_sg_tensor t[10] = {{(size_t)d->O * kk, 1},           {(size_t)d->O * 4, 1},   {(size_t)d->O * kk * 4, 0},
                            {(size_t)d->C * d->N * hp * wp, 0}, {(size_t)d->O * jt, 0},  {y * 4, 0},
                            {(size_t)d->C * kk2, 1},           {(size_t)kk * 4, 1},     {(size_t)d->O * d->N * hq * wq, 0},
                            {(size_t)kk2 * 4, 1}};
  memcpy(s->t, t, sizeof t);
  /* forward: Y (O x jt) = W (O x kk) * X-runs; the fused epilogue measures the valid grid only */
  mh_dsp_sg_node fwd = {d->O, (int)jt, kk, MH_CONV_W, kk, 0, MH_CONV_X, 0, 0, MH_CONV_Y, (int)jt, MH_CONV_BIAS, 1, 1,
                        MH_CONV_RX, wp, hp, d->Q, d->P};
  /* weight gradient: DW (O x kk) = G-grid (O x jt) * X-runs^T (each run is a stored column) */
  mh_dsp_sg_node bw = {d->O, kk, (int)jt, MH_CONV_G, (int)jt, 0, MH_CONV_X, 0, 1, MH_CONV_DW, kk, -1, 0, 0,
                       MH_CONV_RX, 0, 0, 0, 0};
  /* input gradient on its grid: Y (C x jt2) = Wt (C x O*K*K) * dY-runs */
  mh_dsp_sg_node bd = {d->C, (int)jt2, kk2, MH_CONV_WT, kk2, 0, MH_CONV_DYP, 0, 0, MH_CONV_Y, (int)jt2, -1, 1, 0,
                       MH_CONV_RD, 0, 0, 0, 0};
  s->nodes[0] = fwd, s->nodes[1] = bw, s->nodes[2] = bd;
}

mh_dsp_sg *mh__conv_dsp(const mh_op_ctx *ctx, const conv_dims *d, const int8_t *wq) {
  if (!ctx->dsp || !ctx->dsp->alive || d->G != 1) return NULL;
  mh_dsp_sg_desc desc;
  int grid = mh__conv_dsp_grid(d);
  size_t wbytes = (size_t)d->O * d->C * d->K * d->K;
  if (grid) grid_desc(d, &desc);
  else conv_dsp_desc(d, &desc);
  mh_dsp_sg *sg = mh_dsp_sg_get(ctx->dsp, ctx->node_id, &desc, ctx->dsp_counts);
  if (!sg) {
    mh__op_dsp_failed(ctx);
    return NULL;
  }
  mh_dsp_sg_set_weights(ctx->dsp, sg, wq, wbytes, ctx->dsp_counts);
  if (grid) {
    int8_t tmp[4096], *flip = wbytes <= sizeof tmp ? tmp : malloc(wbytes); /* compared with the region's copy */
    if (!flip) {
      mh__error(MH_ERR_NOMEM, "DSP: out of memory for flipped weights");
      mh__op_dsp_failed(ctx);
      return NULL;
    }
    mh__conv_flip_weights(d, wq, flip);
    mh_dsp_sg_set_const(ctx->dsp, sg, MH_CONV_WT, flip, wbytes, ctx->dsp_counts);
    if (flip != tmp) free(flip);
    if (!sg->tables_written) { /* the row tables depend on the shapes alone: written once per layout */
      int hp, wp, hq, wq_;
      size_t jt, jt2;
      grid_dims(d, &hp, &wp, &hq, &wq_, &jt, &jt2);
      mh__conv_row_offsets(d->C, d->K, d->N, hp, wp, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_RX));
      mh__conv_row_offsets(d->O, d->K, d->N, hq, wq_, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_RD));
      sg->tables_written = 1;
      ctx->dsp_counts->bytes_to_dsp += 4.0 * (d->C + d->O) * d->K * d->K;
    }
  }
  return sg;
}

/* dst [o][s*hp*wp + p*wp + q] = dyq[s, o, p, q]: the output gradient on the forward grid, zeros
 * between rows and samples. */
static void dy_on_grid(const conv_dims *d, const int8_t *dyq, int8_t *dst, size_t jt, int hp, int wp) {
  for (int o = 0; o < d->O; o++) {
    int8_t *r = dst + (size_t)o * jt;
    memset(r, 0, jt);
    for (int s = 0; s < d->N; s++)
      for (int y = 0; y < d->P; y++)
        memcpy(r + (size_t)s * hp * wp + (size_t)y * wp, dyq + (((size_t)s * d->O + o) * d->P + y) * d->Q, (size_t)d->Q);
  }
}

void mh__conv_dsp_inputs(const mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const int8_t *xq, const int8_t *dyq) {
  if (!mh__conv_dsp_grid(d)) {
    if (xq) mh__conv_im2col_s8(ctx, d, xq, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_X), 0, d->N, 0);
    if (dyq) mh__conv_gather_s8(d, dyq, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_G), 0, d->N, 0);
    return;
  }
  int hp, wp, hq, wq;
  size_t jt, jt2;
  grid_dims(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  if (xq) mh__conv_pad_image(ctx, xq, d->C, d->H, d->W, d->D, hp, wp, 0, d->N, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_X));
  if (dyq) {
    dy_on_grid(d, dyq, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_G), jt, hp, wp);
    mh__conv_pad_image(ctx, dyq, d->O, d->P, d->Q, d->K - 1 - d->D, hq, wq, 0, d->N,
                       mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_DYP));
  }
}

void mh__conv_dsp_emit_y(mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const mh_conv_out *out) {
  int hp = d->P, wp = d->Q, hq, wq;
  size_t ld = (size_t)d->N * d->P * d->Q, jt2;
  if (mh__conv_dsp_grid(d)) grid_dims(d, &hp, &wp, &hq, &wq, &ld, &jt2);
  mh__conv_grid_emit(ctx, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_Y), ld, out, 0, d->N, d->O, d->P, d->Q, hp, wp);
}

void mh__conv_dsp_extract_y8(const mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, int8_t *qy) {
  int hp = d->P, wp = d->Q, hq, wq;
  size_t ld = (size_t)d->N * d->P * d->Q, jt2;
  if (mh__conv_dsp_grid(d)) grid_dims(d, &hp, &wp, &hq, &wq, &ld, &jt2);
  mh__conv_grid_extract_s8(mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_Y), ld, qy, d->N, d->O, d->P, d->Q, hp, wp);
}

void mh__conv_dsp_emit_dx(mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const mh_conv_out *out) {
  int hp, wp, hq, wq;
  size_t jt, jt2;
  grid_dims(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  mh__conv_grid_emit(ctx, mh_dsp_sg_at(ctx->dsp, sg, MH_CONV_Y), jt2, out, 0, d->N, d->C, d->H, d->W, hq, wq);
}
