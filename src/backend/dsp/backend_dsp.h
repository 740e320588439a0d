/* The DSP as a backend (backend.h): what the Hexagon program can run of a training step, and the
 * node runners that run it there with the results the CPU ops would give, bit for bit. */
#ifndef MH_BACKEND_DSP_BACKEND_DSP_H
#define MH_BACKEND_DSP_BACKEND_DSP_H

#include "backend/backend.h"
#include "backend/dsp/dsp.h"
#include "ops/conv2d_common.h"
#include "ops/ops.h"

typedef struct mh_dsp_backend {
  mh_backend be;
  mh_dsp *dsp;
  mh_dsp_counts *cnt;
  /* the run in flight between post and wait */
  struct mh_dsp_sg *sg;
  unsigned pending; /* passes posted and not yet completed */
  int ey;           /* the int8 algorithm's output-gradient exponent, for completing the passes */
  /* executed packets per node while packets are counted: [2i] forward, [2i+1] backward passes */
  int n_nodes;
  double *node_packets;
  double packets_at_post;
  struct mh_dsp_seg *segs; /* segment programs (segment.c) */
  int n_segs;
} mh_dsp_backend;

/* The backend over an open session and its counters (the caller keeps both alive) for a graph of
 * n_nodes nodes. MH_OK or MH_ERR_NOMEM; mh_dsp_backend_release frees what it holds. */
int mh_dsp_backend_init(mh_dsp_backend *b, mh_dsp *d, mh_dsp_counts *cnt, int n_nodes);
void mh_dsp_backend_release(mh_dsp_backend *b);

/* Whether the DSP program runs pass `pass` of node `node` in this precision: the backend's
 * supports(), and what the planner costs on the DSP. */
int mh_dsp_supports(const mh_graph *g, int node, unsigned pass, int precision);

/* Node runners: post starts the passes (a forward pass completes within post), wait completes them.
 * MH_OK, or an error after which nothing of those passes is written (the CPU then runs them). */
int mh__dsp_conv_post(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes);
int mh__dsp_conv_wait(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes);
int mh__dsp_linear_post(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes);
int mh__dsp_linear_wait(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes);
/* niti's ReLU, 2x2 max-pool and residual add: one message each, complete within the call. */
int mh__dsp_eltwise_run(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes);

/* A convolution's subgraph tensors (the columns form uses the first six: X is col, G the gathered
 * output gradient; the grid form X the padded image, G the output gradient on the forward grid, DYP
 * the output gradient padded by K-1-D, RX/RD the row tables, WT the flipped weights). */
enum { MH_CONV_W, MH_CONV_BIAS, MH_CONV_DW, MH_CONV_X, MH_CONV_G, MH_CONV_Y, MH_CONV_WT, MH_CONV_RX, MH_CONV_DYP,
       MH_CONV_RD };

/* The subgraph of a convolution node at this batch with the weights wq (and, grid form, the flipped
 * weights and the row tables) in place, or NULL with an error (no room: the executor runs the CPU
 * ops). keep: every tensor persistent (a segment's, whose activations stay in the region). */
#define MH_DSP_SEG_KEY (1 << 20)
struct mh_dsp_sg *mh__dsp_conv_sg(mh_dsp_backend *b, const mh_op_ctx *ctx, const conv_dims *d, const int8_t *wq, int keep);
/* The grid form (stride 1, padding < K: the CPU's padded path) and its geometry: the padded input
 * (hp x wp per sample), the output gradient padded by K-1-D (hq x wq), and the columns of the
 * forward / weight-gradient grid (jt) and of the input gradient's (jt2). */
int mh__dsp_conv_is_grid(const conv_dims *d);
void mh__dsp_conv_grid(const conv_dims *d, int *hp, int *wp, int *hq, int *wq, size_t *jt, size_t *jt2);
/* The weight gradient (O x kk int32) from the subgraph's DW tensor, which holds it transposed when
 * the descriptor says so (dw_t). */
struct mh_dsp_sg_desc;
void mh__dsp_conv_read_dw(const struct mh_dsp_sg_desc *desc, const int32_t *dw, int O, int kk, int32_t *out);

/* Segments (segment.c): the last node of the chain from `node` the DSP runs as one program, and
 * running one (forward, or the backward of a chain whose forward it ran in this step). */
int mh__dsp_segment_last(const mh_dsp_backend *b, const mh_graph *g, int node, const unsigned char *place, int precision);
int mh__dsp_segment_run(mh_dsp_backend *b, mh_op_ctx *ctx, int n, unsigned pass);
void mh__dsp_segments_release(mh_dsp_backend *b);

/* The subgraphs the runners prepare (node i of a descriptor is pass bit 1 << i): a convolution's
 * (ungrouped) and a linear layer's over a batch of N inputs of F features and O outputs. */
struct mh_dsp_sg_desc;
void mh__dsp_conv_desc(const conv_dims *d, struct mh_dsp_sg_desc *desc);
void mh__dsp_linear_desc(int N, int F, int O, struct mh_dsp_sg_desc *desc);

#endif
