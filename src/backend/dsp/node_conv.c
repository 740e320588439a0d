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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/dsp/backend_dsp.h"
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
void mh__dsp_conv_grid(const conv_dims *d, int *hp, int *wp, int *hq, int *wq, size_t *jt, size_t *jt2) {
  *hp = d->H + 2 * d->D, *wp = d->W + 2 * d->D;
  int d2 = d->K - 1 - d->D;
  *hq = d->P + 2 * d2, *wq = d->Q + 2 * d2;
  *jt = (size_t)(d->N - 1) * *hp * *wp + (size_t)(d->P - 1) * *wp + d->Q;
  *jt2 = (size_t)(d->N - 1) * *hq * *wq + (size_t)(d->H - 1) * *wq + d->W;
}

/* Whether the layer's subgraph takes the grid form (the CPU's padded-path convolutions). */
int mh__dsp_conv_is_grid(const conv_dims *d) { return mh__conv_s8_padded_ok(d); }
#define is_grid mh__dsp_conv_is_grid

static void grid_desc(const conv_dims *d, mh_dsp_sg_desc *s) {
  int hp, wp, hq, wq, kk = d->C * d->K * d->K, kk2 = d->O * d->K * d->K;
  size_t jt, jt2;
  mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  size_t y = (size_t)d->O * jt > (size_t)d->C * jt2 ? (size_t)d->O * jt : (size_t)d->C * jt2;
  /* K-1-D = D (same padding): the padded error is the error on the forward grid shifted by D rows
   * and D columns, with zeros between, so the weight gradient reads it there and G is not written */
  int same = d->K - 1 - d->D == d->D;
  memset(s, 0, sizeof *s);
  s->n_tensors = 10, s->n_nodes = 3, s->weights = MH_CONV_W, s->weights2 = MH_CONV_WT, s->dw_t = 1, s->g_in_dyp = same;
  mh_dsp_sg_tensor t[10] = {{(size_t)d->O * kk, 1},           {(size_t)d->O * 4, 1},   {(size_t)d->O * kk * 4, 0},
                            {(size_t)d->C * d->N * hp * wp, 0}, {same ? 1 : (size_t)d->O * jt, 0}, {y * 4, 0},
                            {(size_t)d->C * kk2, 1},           {(size_t)kk * 4, 1},     {(size_t)d->O * d->N * hq * wq, 0},
                            {(size_t)kk2 * 4, 1}};
  memcpy(s->t, t, sizeof t);
  /* forward: Y (O x jt) = W (O x kk) * X-runs; the fused epilogue measures the valid grid only */
  mh_dsp_sg_node fwd = {d->O, (int)jt, kk, MH_CONV_W, kk, 0, MH_CONV_X, 0, 0, MH_CONV_Y, (int)jt, MH_CONV_BIAS, 1, 1,
                        MH_CONV_RX, wp, hp, d->Q, d->P};
  /* weight gradient, transposed: DW^T (kk x O) = X-runs (kk x jt, A by its row table) * G-grid^T (G
   * stored O x jt): the transposition the kernel's packing does is of O columns, not of kk */
  mh_dsp_sg_node bw = {kk, d->O, (int)jt, MH_CONV_X, 0, 0, MH_CONV_G, (int)jt, 1, MH_CONV_DW, d->O, -1, 0, 0,
                       0, 0, 0, 0, 0, MH_CONV_RX, 0};
  if (same) bw.b = MH_CONV_DYP, bw.ldb = d->N * hq * wq, bw.b_at = d->D * wq + d->D;
  /* input gradient on its grid: Y (C x jt2) = Wt (C x O*K*K) * dY-runs */
  mh_dsp_sg_node bd = {d->C, (int)jt2, kk2, MH_CONV_WT, kk2, 0, MH_CONV_DYP, 0, 0, MH_CONV_Y, (int)jt2, -1, 1, 0,
                       MH_CONV_RD, 0, 0, 0, 0};
  s->nodes[0] = fwd, s->nodes[1] = bw, s->nodes[2] = bd;
}

void mh__dsp_conv_read_dw(const mh_dsp_sg_desc *desc, const int32_t *dw, int O, int kk, int32_t *out) {
  if (!desc->dw_t) {
    memcpy(out, dw, sizeof(int32_t) * (size_t)O * kk);
    return;
  }
  for (int o = 0; o < O; o++)
    for (int j = 0; j < kk; j++) out[(size_t)o * kk + j] = dw[(size_t)j * O + o];
}

void mh__dsp_conv_desc(const conv_dims *d, mh_dsp_sg_desc *desc) {
  if (is_grid(d)) grid_desc(d, desc);
  else conv_dsp_desc(d, desc);
}

mh_dsp_sg *mh__dsp_conv_sg(mh_dsp_backend *b, const mh_op_ctx *ctx, const conv_dims *d, const int8_t *wq, int keep) {
  if (!b->dsp->alive || d->G != 1) return NULL;
  mh_dsp_sg_desc desc;
  int grid = is_grid(d);
  size_t wbytes = (size_t)d->O * d->C * d->K * d->K;
  mh__dsp_conv_desc(d, &desc);
  desc.keep_all = keep;
  /* a segment's subgraph is another one than the layer's own: each keeps its layout */
  mh_dsp_sg *sg = mh_dsp_sg_get(b->dsp, ctx->node_id + (keep ? MH_DSP_SEG_KEY : 0), &desc, b->cnt);
  if (!sg) return NULL;
  mh_dsp_sg_set_weights(b->dsp, sg, wq, wbytes, b->cnt);
  if (grid) {
    int8_t tmp[4096], *flip = wbytes <= sizeof tmp ? tmp : malloc(wbytes); /* compared with the region's copy */
    if (!flip) {
      mh__error(MH_ERR_NOMEM, "DSP: out of memory for flipped weights");
      return NULL;
    }
    mh__conv_flip_weights(d, wq, flip);
    mh_dsp_sg_set_const(b->dsp, sg, MH_CONV_WT, flip, wbytes, b->cnt);
    if (flip != tmp) free(flip);
    if (!sg->tables_written) { /* the row tables depend on the shapes alone: written once per layout */
      int hp, wp, hq, wq_;
      size_t jt, jt2;
      mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq_, &jt, &jt2);
      mh__conv_row_offsets(d->C, d->K, d->N, hp, wp, mh_dsp_sg_at(b->dsp, sg, MH_CONV_RX));
      mh__conv_row_offsets(d->O, d->K, d->N, hq, wq_, mh_dsp_sg_at(b->dsp, sg, MH_CONV_RD));
      sg->tables_written = 1;
      b->cnt->bytes_to_dsp += 4.0 * (d->C + d->O) * d->K * d->K;
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

/* Writes the whole batch's inputs: from xq (when given) and from dyq (when given). */
static void conv_inputs(mh_dsp_backend *b, const mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const int8_t *xq,
                        const int8_t *dyq) {
  if (!is_grid(d)) {
    if (xq) mh__conv_im2col_s8(ctx, d, xq, mh_dsp_sg_at(b->dsp, sg, MH_CONV_X), 0, d->N, 0);
    if (dyq) mh__conv_gather_s8(d, dyq, mh_dsp_sg_at(b->dsp, sg, MH_CONV_G), 0, d->N, 0);
    return;
  }
  int hp, wp, hq, wq;
  size_t jt, jt2;
  mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  if (xq) mh__conv_pad_image(ctx, xq, d->C, d->H, d->W, d->D, hp, wp, 0, d->N, mh_dsp_sg_at(b->dsp, sg, MH_CONV_X));
  if (dyq) {
    if (!sg->desc.g_in_dyp) dy_on_grid(d, dyq, mh_dsp_sg_at(b->dsp, sg, MH_CONV_G), jt, hp, wp);
    mh__conv_pad_image(ctx, dyq, d->O, d->P, d->Q, d->K - 1 - d->D, hq, wq, 0, d->N,
                       mh_dsp_sg_at(b->dsp, sg, MH_CONV_DYP));
  }
}

/* The forward result (int32, in Y) into out; the fused form's int8 result into qy (NCHW); the grid
 * form's input gradient (int32, in Y) into out. */
static void emit_y(mh_dsp_backend *b, mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const mh_conv_out *out) {
  int hp = d->P, wp = d->Q, hq, wq;
  size_t ld = (size_t)d->N * d->P * d->Q, jt2;
  if (is_grid(d)) mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq, &ld, &jt2);
  mh__conv_grid_emit(ctx, mh_dsp_sg_at(b->dsp, sg, MH_CONV_Y), ld, out, 0, d->N, d->O, d->P, d->Q, hp, wp);
}

static void extract_y8(mh_dsp_backend *b, const conv_dims *d, mh_dsp_sg *sg, int8_t *qy) {
  int hp = d->P, wp = d->Q, hq, wq;
  size_t ld = (size_t)d->N * d->P * d->Q, jt2;
  if (is_grid(d)) mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq, &ld, &jt2);
  mh__conv_grid_extract_s8(mh_dsp_sg_at(b->dsp, sg, MH_CONV_Y), ld, qy, d->N, d->O, d->P, d->Q, hp, wp);
}

static void emit_dx(mh_dsp_backend *b, mh_op_ctx *ctx, const conv_dims *d, mh_dsp_sg *sg, const mh_conv_out *out) {
  int hp, wp, hq, wq;
  size_t jt, jt2;
  mh__dsp_conv_grid(d, &hp, &wp, &hq, &wq, &jt, &jt2);
  mh__conv_grid_emit(ctx, mh_dsp_sg_at(b->dsp, sg, MH_CONV_Y), jt2, out, 0, d->N, d->C, d->H, d->W, hq, wq);
}

/* One subgraph run in two halves (the CPU may work in between), with its counters. */
static int sg_post(mh_dsp_backend *b, mh_dsp_sg *sg, unsigned mask, int epilogue, int shift) {
  return mh_dsp_sg_post(b->dsp, sg, mask, epilogue, shift, MH_ROUND_PSTO, b->cnt);
}
static int sg_run(mh_dsp_backend *b, mh_dsp_sg *sg, unsigned mask, int epilogue, int shift, mh_requant_stats *st) {
  MH_TRY(sg_post(b, sg, mask, epilogue, shift));
  return mh_dsp_sg_wait(b->dsp, sg, st, b->cnt);
}

/* int8 forward: the quantised input and weights (saved for backward as on the CPU), one run, the
 * FP32 output with its scale and bias. */
static int s8_forward(mh_dsp_backend *b, mh_op_ctx *ctx, const conv_dims *d) {
  mh_conv_s8_bufs bufs;
  mh__conv_s8_bufs(ctx, d, &bufs);
  float scale = mh__conv_s8_quantize_inputs(ctx, d, &bufs);
  mh_dsp_sg *sg = mh__dsp_conv_sg(b, ctx, d, bufs.wq, 0);
  if (!sg) return MH_ERR_BACKEND; /* why: mh_last_error() */
  conv_inputs(b, ctx, d, sg, bufs.xq, NULL);
  MH_TRY(sg_run(b, sg, MH_PASS_FWD, 0, 0, NULL));
  mh_conv_out out = {ctx->y, scale, ctx->node->bias ? ctx->w + (size_t)d->O * d->C * d->K * d->K : NULL, 0, NULL};
  emit_y(b, ctx, d, sg, &out);
  return MH_OK;
}

/* niti forward. Exact rescaling: the int32 result comes back, the bias is added and the node's
 * rescale slot shifts it here. Adaptive with a prediction: the requantise epilogue is fused at the
 * predicted shift (the channel bias is the epilogue's row bias), the max and saturations are judged
 * by the same rule as on the CPU, and a fallback runs again with the exact shift; the int32 result
 * never leaves the DSP. */
static int int_forward(mh_dsp_backend *b, mh_op_ctx *ctx, const conv_dims *d) {
  int kk = d->C * d->K * d->K, e_acc = ctx->ex[0] + ctx->ew[0];
  long n_out = (long)d->N * d->O * d->P * d->Q;
  mh_dsp_sg *sg = mh__dsp_conv_sg(b, ctx, d, ctx->qw, 0);
  if (!sg) return MH_ERR_BACKEND; /* why: mh_last_error() */
  conv_inputs(b, ctx, d, sg, ctx->qx[0], NULL);
  int32_t *big = mh__conv_int_big(ctx, d);
  if (mh_rescale_needs_exact(&ctx->rs[0], ctx->rescale) || !mh_wire_fused_fits((uint32_t)d->O, (uint32_t)kk)) {
    MH_TRY(sg_run(b, sg, MH_PASS_FWD, 0, 0, NULL));
    mh_conv_out out = {NULL, 0.f, NULL, 0, big};
    emit_y(b, ctx, d, sg, &out);
    mh__conv_int_bias(ctx, d, big, e_acc);
    *ctx->ey = e_acc + mh__int_rescale(ctx, 0, big, n_out, ctx->qy);
    return MH_OK;
  }
  int32_t *bias = mh_dsp_sg_at(b->dsp, sg, MH_CONV_BIAS);
  for (int o = 0; o < d->O; o++) bias[o] = ctx->node->bias ? mh_q_align32(ctx->qw[(size_t)d->O * kk + o], ctx->ew[1] - e_acc) : 0;
  mh_requant_stats st;
  MH_TRY(sg_run(b, sg, MH_PASS_FWD, 1, ctx->rs[0].shift, &st));
  int redo, shift = mh_rescale_after_predicted(&ctx->rs[0], ctx->rc, &st, n_out, &redo);
  if (redo && sg_run(b, sg, MH_PASS_FWD, 1, shift, &st)) {
    /* the DSP went away after the rule moved on: finish here with the decided shift, as the CPU would */
    mh__conv_int_acc(ctx, d, e_acc);
    ctx->kt->requant_s8(big, ctx->qy, n_out, shift, MH_ROUND_PSTO, 0, 0, &st);
    b->cnt->cpu_fallbacks++;
  } else
    extract_y8(b, d, sg, ctx->qy);
  *ctx->ey = e_acc + shift;
  return MH_OK;
}

int mh__dsp_conv_post(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes) {
  conv_dims d = mh__conv_dims(ctx);
  int integer = ctx->precision == MH_PRECISION_INTEGER;
  if (passes & MH_PASS_FWD) return integer ? int_forward(b, ctx, &d) : s8_forward(b, ctx, &d);
  /* backward: the inputs of the asked GEMMs, one run posted */
  const int8_t *xq, *wq, *dyq;
  if (integer) {
    xq = ctx->qx[0], wq = ctx->qw, dyq = ctx->qdy;
  } else {
    mh_conv_s8_bufs bufs;
    mh__conv_s8_bufs(ctx, &d, &bufs);
    b->ey = mh__conv_s8_quantize_dy(ctx, &d, &bufs);
    xq = bufs.xq, wq = bufs.wq, dyq = bufs.dyq;
  }
  mh_dsp_sg *sg = mh__dsp_conv_sg(b, ctx, &d, wq, 0);
  if (!sg) return MH_ERR_BACKEND; /* why: mh_last_error() */
  conv_inputs(b, ctx, &d, sg, passes & MH_PASS_BWD_W ? xq : NULL, dyq);
  MH_TRY(sg_post(b, sg, passes, 0, 0));
  b->sg = sg;
  return MH_OK;
}

int mh__dsp_conv_wait(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes) {
  if (passes & MH_PASS_FWD) return MH_OK; /* completed in post */
  mh_dsp_sg *sg = b->sg;
  b->sg = NULL;
  MH_TRY(mh_dsp_sg_wait(b->dsp, sg, NULL, b->cnt));
  conv_dims d = mh__conv_dims(ctx);
  int kk = d.C * d.K * d.K;
  const int32_t *y = mh_dsp_sg_at(b->dsp, sg, MH_CONV_Y), *dw = mh_dsp_sg_at(b->dsp, sg, MH_CONV_DW);
  if (ctx->precision == MH_PRECISION_INTEGER) {
    if (passes & MH_PASS_BWD_W) {
      mh__dsp_conv_read_dw(&sg->desc, dw, d.O, kk, ctx->qdw);
      mh__conv_int_bias_grad(ctx, &d);
    }
    if (passes & MH_PASS_BWD_D) {
      int32_t *big = mh__conv_int_big(ctx, &d);
      mh_conv_out out = {NULL, 0.f, NULL, 0, big};
      if (is_grid(&d)) emit_dx(b, ctx, &d, sg, &out);
      else {
        memset(big, 0, sizeof(int32_t) * d.N * d.C * d.H * d.W);
        mh__conv_int_col2im(ctx, &d, y, big);
      }
      mh__conv_int_finish_dx(ctx, &d);
    }
    return MH_OK;
  }
  mh_conv_s8_bufs bufs;
  mh__conv_s8_bufs(ctx, &d, &bufs);
  if (passes & MH_PASS_BWD_W) {
    mh__dsp_conv_read_dw(&sg->desc, dw, d.O, kk, bufs.dwacc);
    mh__conv_s8_finish_weights(ctx, &d, &bufs, b->ey);
  }
  if (passes & MH_PASS_BWD_D) {
    int e = bufs.e[1] + b->ey;
    if (is_grid(&d)) {
      mh_conv_out out = {ctx->dx[0], ldexpf(1.f, e), NULL, ctx->dx_accumulate[0], NULL};
      emit_dx(b, ctx, &d, sg, &out);
    } else { /* the whole batch's int32 columns, into the input planes chunk by chunk */
      int nb = mh__conv_chunk_samples(&d), pq = d.P * d.Q;
      for (int n0 = 0; n0 < d.N; n0 += nb)
        mh__conv_s8_col2im(ctx, &d, y + (size_t)n0 * pq, (size_t)d.N * pq, bufs.dxacc, n0, d.N - n0 < nb ? d.N - n0 : nb,
                           0, e);
    }
  }
  return MH_OK;
}
