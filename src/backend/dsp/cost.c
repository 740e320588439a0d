/* The DSP cost model (see cost.h): work counted from the same subgraph descriptors the DSP backend
 * runs, packets per unit of work fitted to executed-packet counts by scripts/dsp_calibrate.py. */
#include "backend/dsp/cost.h"

#include <string.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/subgraph.h"

const char *const mh_dsp_work_names[MH_DSPW_COUNT] = {"tiles", "b_rows", "b_cols", "b_trans", "out_vecs", "fused_vecs", "a_bytes",
                                                      "a_trans", "a_rows", "grid", "gemms", "relu",   "pool_fwd", "pool_bwd", "add", "messages", "eltwise",
                                                      "pad_vecs", "zero_vecs", "nchw_vecs", "requant", "sums", "segments"};

/* Packets per unit of each kind of work: scripts/dsp_calibrate.sh (lenet5 and cnn6-nobn niti at
 * batches 8, 16, 32 as segments and at 16 layer by layer, lenet5 int8 at 16, on the DSP program of
 * this tree; rerun it after changing a kernel). Some kinds of work come in fixed proportion to
 * others in the zoo's layers (a segment's pads and gathers, a grid's masks and its panels), so the
 * fit puts them on one of the pair and the other reads 0. A zero: the fit found that work free beside the rest (it is kept >= 0). The residual
 * add is not in the set (no niti model of the zoo has one): its rate is an estimate, the ReLU's for
 * each of its two passes over widened halfwords plus its write. */
static const double packets_per[MH_DSPW_COUNT] = {
    [MH_DSPW_TILES] = 6.514, [MH_DSPW_B_ROWS] = 0, [MH_DSPW_B_COLS] = 0, [MH_DSPW_B_TRANS] = 98.74,
    [MH_DSPW_OUT_VECS] = 8.126, [MH_DSPW_FUSED_VECS] = 23.2, [MH_DSPW_A_BYTES] = 0, [MH_DSPW_A_TRANS] = 0,
    [MH_DSPW_A_ROWS] = 79.35, [MH_DSPW_GRID] = 142.1, [MH_DSPW_GEMMS] = 0, [MH_DSPW_RELU] = 0.01756,
    [MH_DSPW_POOL_FWD] = 12.43, [MH_DSPW_POOL_BWD] = 30.74, [MH_DSPW_ADD] = 0.05, [MH_DSPW_MESSAGES] = 1062,
    [MH_DSPW_ELTWISE] = 92.77, [MH_DSPW_PAD_VECS] = 0, [MH_DSPW_ZERO_VECS] = 0, [MH_DSPW_NCHW_VECS] = 27.08,
    [MH_DSPW_REQUANT] = 0, [MH_DSPW_SUMS] = 0, [MH_DSPW_SEGMENTS] = 0,
};

static double up(double a, double b) { return (double)(long)((a + b - 1) / b); }

/* Rows of `bytes` that fit one 128-byte vector (at least 1: longer rows take vectors of their own). */
static double per_vector(double bytes) { return bytes <= 128 ? (double)(long)(128 / bytes) : 1; }

/* Vectors of the HVX 2x2 max-pool over `planes` planes of h x w input (dsp/hvx_pool.c): even planes
 * up to 32 wide walk their window rows per vector, the rest a window row at a time, 64 windows a
 * vector. */
static double pool_vecs(double planes, int h, int w) {
  double rows = planes * (h / 2);
  if (!(h & 1) && !(w & 1) && w <= 32) return up(rows, per_vector(2.0 * w));
  return rows * up(w / 2, 64);
}

/* Vectors of rows of `len` bytes at a stride of `stride` bytes, as many rows to a vector as fit
 * (a stride up to 64 bytes; see dsp/hvx_layout.c), or a vector per row (per 128 bytes) beyond. */
static double row_vecs(double planes, double rows, double len, double stride) {
  return stride <= 64 ? planes * up(rows, per_vector(stride)) : planes * rows * up(len, 128);
}

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
  double out = (double)batch * nd->c * nd->h * nd->w;
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
      if (nd->op == MH_OP_MAXPOOL) {
        double v = pool_vecs((double)batch * in->c, in->h, in->w);
        w[MH_DSPW_POOL_FWD] += v * !!(run & MH_PASS_FWD), w[MH_DSPW_POOL_BWD] += v * !!(run & MH_PASS_BWD_D);
      }
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

/* A PAD of n x c x h x w into c rows of ld bytes, grid rows of q bytes. */
static void pad_work(double n, double c, double h, double w, double q, double ld, double *wk) {
  wk[MH_DSPW_PAD_VECS] += q <= 128 ? n * c * up(h, per_vector(q)) : n * c * h * up(w, 128);
  wk[MH_DSPW_ZERO_VECS] += c * up(ld, 128);
}

void mh_dsp_segment_work(const mh_graph *g, int first, int last, int bwd, int batch, double *w) {
  for (int i = first; i <= last; i++) {
    const mh_node *nd = &g->nodes[i];
    double out = (double)batch * nd->c * nd->h * nd->w, N = batch;
    if (nd->op == MH_OP_RELU) w[MH_DSPW_RELU] += out;
    if (nd->op == MH_OP_MAXPOOL) {
      const mh_node *in = &g->nodes[nd->in[0]];
      w[bwd ? MH_DSPW_POOL_BWD : MH_DSPW_POOL_FWD] += pool_vecs(N * in->c, in->h, in->w);
    }
    if (nd->op != MH_OP_CONV2D) continue;
    conv_dims d = mh__conv_dims_of(g, nd, batch);
    mh_dsp_sg_desc desc;
    mh__dsp_conv_desc(&d, &desc);
    int hp, wp, hq, wq;
    size_t jt, jt2;
    mh__dsp_conv_grid(&d, &hp, &wp, &hq, &wq, &jt, &jt2);
    if (!bwd) {
      pad_work(N, d.C, d.H, d.W, wp, N * hp * wp, w);
      gemm_work(&desc.nodes[0], 1, w);
      w[MH_DSPW_NCHW_VECS] += row_vecs(N * d.O, d.P, d.Q, wp); /* int8 */
      continue;
    }
    if (desc.g_in_dyp) pad_work(N, d.O, d.P, d.Q, wq, N * hq * wq, w); /* one pad for both passes */
    else pad_work(N, d.O, d.P, d.Q, d.Q, (double)jt, w);
    gemm_work(&desc.nodes[1], 0, w);
    if (nd->bias) w[MH_DSPW_SUMS] += out;
    if (i == first && nd->in[0] == 0) continue; /* no gradient for the data */
    if (!desc.g_in_dyp) pad_work(N, d.O, d.P, d.Q, wq, N * hq * wq, w);
    gemm_work(&desc.nodes[2], 0, w);
    w[MH_DSPW_NCHW_VECS] += row_vecs(N * d.C, d.H, 4.0 * d.W, 4.0 * wq), w[MH_DSPW_REQUANT] += N * d.C * d.H * d.W;
  }
  w[MH_DSPW_SEGMENTS] += 1;
}

double mh_dsp_work_packets(const double *w) {
  double p = 0;
  for (int i = 0; i < MH_DSPW_COUNT; i++) p += packets_per[i] * w[i];
  return p;
}
