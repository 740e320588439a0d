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

/* The subgraphs the runners prepare (node i of a descriptor is pass bit 1 << i): a convolution's
 * (ungrouped) and a linear layer's over a batch of N inputs of F features and O outputs. */
struct mh_dsp_sg_desc;
void mh__dsp_conv_desc(const conv_dims *d, struct mh_dsp_sg_desc *desc);
void mh__dsp_linear_desc(int N, int F, int O, struct mh_dsp_sg_desc *desc);

#endif
