/* The DSP cost model (see cost.h): work counted from the same subgraph descriptors the DSP backend
 * runs, packets per unit of work fitted to executed-packet counts by scripts/dsp_calibrate.py. */
#include "backend/dsp/cost.h"

#include <string.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/subgraph.h"

const char *const mh_dsp_work_names[MH_DSPW_COUNT] = {"tiles", "b_rows", "b_cols", "b_trans", "out_vecs", "fused_vecs", "a_bytes",
                                                      "a_trans", "a_rows", "grid", "gemms", "relu",   "pool_fwd", "pool_bwd", "add", "messages", "eltwise",
                                                      "pad_rows", "zero_vecs", "nchw_rows", "requant", "sums", "segments"};

/* Packets per unit of each kind of work: scripts/dsp_calibrate.sh (lenet5 and cnn6-nobn niti at
 * batches 8, 16, 32 as segments and at 16 layer by layer, lenet5 int8 at 16, on the DSP program of
 * this tree; rerun it after changing a kernel). Some kinds of work come in fixed proportion to
 * others in the zoo's layers (a segment's pads and gathers, a grid's masks and its panels), so the
 * fit puts them on one of the pair and the other reads 0. A zero: the fit found that work free beside the rest (it is kept >= 0). The residual
 * add is not in the set (no niti model of the zoo has one): its rate is an estimate, the ReLU's for
 * each of its two passes over widened halfwords plus its write. */
static const double packets_per[MH_DSPW_COUNT] = {
    [MH_DSPW_TILES] = 5.878, [MH_DSPW_B_ROWS] = 18.14, [MH_DSPW_B_COLS] = 0, [MH_DSPW_B_TRANS] = 247.4,
    [MH_DSPW_OUT_VECS] = 13.49, [MH_DSPW_FUSED_VECS] = 30.96, [MH_DSPW_A_BYTES] = 0, [MH_DSPW_A_TRANS] = 0,
    [MH_DSPW_A_ROWS] = 113.5, [MH_DSPW_GRID] = 0, [MH_DSPW_GEMMS] = 0, [MH_DSPW_RELU] = 0.01756,
    [MH_DSPW_POOL_FWD] = 28.71, [MH_DSPW_POOL_BWD] = 53.09, [MH_DSPW_ADD] = 0.05, [MH_DSPW_MESSAGES] = 567.4,
    [MH_DSPW_ELTWISE] = 92.57, [MH_DSPW_PAD_ROWS] = 3.189, [MH_DSPW_ZERO_VECS] = 0, [MH_DSPW_NCHW_ROWS] = 10.17,
    [MH_DSPW_REQUANT] = 0, [MH_DSPW_SUMS] = 0, [MH_DSPW_SEGMENTS] = 0,
};

static double up(double a, double b) { return (double)(long)((a + b - 1) / b); }

static void gemm_work(const mh_dsp_sg_node *n, int fused, double *w) {
  double m = n->m, cols = n->n, q = up(n->k, 4), panels = up(cols, 128);
  w[MH_DSPW_TILES] += up(m, 4) * panels * q;
  if (n->trans_b) w[MH_DSPW_B_TRANS] += up(cols, 32) * up(q, 32);
  else w[n->b_rows ? MH_DSPW_B_ROWS : MH_DSPW_B_COLS] += panels * q;
  w[fused ? MH_DSPW_FUSED_VECS : MH_DSPW_OUT_VECS] += m * up(cols, 32);
  w[n->trans_a ? MH_DSPW_A_TRANS : MH_DSPW_A_BYTES] += m * q * 4;
  w[MH_DSPW_A_ROWS] += m;
  if (fused && n->grid_w) w[MH_DSPW_GRID] += panels;
  w[MH_DSPW_GEMMS] += 1;
}

void mh_dsp_node_work(const mh_graph *g, int node, unsigned passes, int precision, int batch, double *w) {
  const mh_node *nd = &g->nodes[node], *in = &g->nodes[nd->in[0]];
  unsigned run = 0;
  for (unsigned bit = 1; bit <= MH_PASS_BWD_D; bit <<= 1)
    if ((passes & bit) && mh_dsp_supports(g, node, bit, precision)) run |= bit;
  if (!run) return;
  double out = (double)batch * nd->c * nd->h * nd->w, rows = (double)batch * nd->c * nd->h;
  mh_dsp_sg_desc desc;
  switch (nd->op) {
    case MH_OP_CONV2D: {
      conv_dims d = mh__conv_dims_of(g, nd, batch);
      mh__dsp_conv_desc(&d, &desc);
      break;
    }
    case MH_OP_LINEAR: mh__dsp_linear_desc(batch, in->c * in->h * in->w, nd->c, &desc); break;
    case MH_OP_RELU: w[MH_DSPW_RELU] += out * !!(run & MH_PASS_FWD) + out * !!(run & MH_PASS_BWD_D); /* fall through */
    case MH_OP_MAXPOOL:
      if (nd->op == MH_OP_MAXPOOL)
        w[MH_DSPW_POOL_FWD] += rows * !!(run & MH_PASS_FWD), w[MH_DSPW_POOL_BWD] += rows * !!(run & MH_PASS_BWD_D);
      /* fall through */
    case MH_OP_ADD:
      if (nd->op == MH_OP_ADD) w[MH_DSPW_ADD] += out;
      w[MH_DSPW_ELTWISE] += !!(run & MH_PASS_FWD) + !!(run & MH_PASS_BWD_D);
      return;
    default: return;
  }
  for (int i = 0; i < desc.n_nodes; i++)
    if (run & (1u << i)) gemm_work(&desc.nodes[i], precision == MH_PRECISION_INTEGER && desc.nodes[i].may_fuse, w);
  w[MH_DSPW_MESSAGES] += !!(run & MH_PASS_FWD) + !!(run & (MH_PASS_BWD_W | MH_PASS_BWD_D));
}

/* A PAD of n x c x h x w into c rows of ld bytes. */
static void pad_work(double n, double c, double h, double ld, double *w) {
  w[MH_DSPW_PAD_ROWS] += n * c * h, w[MH_DSPW_ZERO_VECS] += c * up(ld, 128);
}

void mh_dsp_segment_work(const mh_graph *g, int first, int last, int bwd, int batch, double *w) {
  for (int i = first; i <= last; i++) {
    const mh_node *nd = &g->nodes[i];
    double out = (double)batch * nd->c * nd->h * nd->w, N = batch;
    if (nd->op == MH_OP_RELU) w[MH_DSPW_RELU] += out;
    if (nd->op == MH_OP_MAXPOOL) w[bwd ? MH_DSPW_POOL_BWD : MH_DSPW_POOL_FWD] += N * nd->c * nd->h;
    if (nd->op != MH_OP_CONV2D) continue;
    conv_dims d = mh__conv_dims_of(g, nd, batch);
    mh_dsp_sg_desc desc;
    mh__dsp_conv_desc(&d, &desc);
    int hp, wp, hq, wq;
    size_t jt, jt2;
    mh__dsp_conv_grid(&d, &hp, &wp, &hq, &wq, &jt, &jt2);
    if (!bwd) {
      pad_work(N, d.C, d.H, N * hp * wp, w);
      gemm_work(&desc.nodes[0], 1, w);
      w[MH_DSPW_NCHW_ROWS] += N * d.O * d.P;
      continue;
    }
    if (desc.g_in_dyp) pad_work(N, d.O, d.P, N * hq * wq, w); /* one pad for both passes */
    else pad_work(N, d.O, d.P, (double)jt, w);
    gemm_work(&desc.nodes[1], 0, w);
    if (nd->bias) w[MH_DSPW_SUMS] += out;
    if (i == first && nd->in[0] == 0) continue; /* no gradient for the data */
    if (!desc.g_in_dyp) pad_work(N, d.O, d.P, N * hq * wq, w);
    gemm_work(&desc.nodes[2], 0, w);
    w[MH_DSPW_NCHW_ROWS] += N * d.C * d.H, w[MH_DSPW_REQUANT] += N * d.C * d.H * d.W;
  }
  w[MH_DSPW_SEGMENTS] += 1;
}

double mh_dsp_work_packets(const double *w) {
  double p = 0;
  for (int i = 0; i < MH_DSPW_COUNT; i++) p += packets_per[i] * w[i];
  return p;
}
