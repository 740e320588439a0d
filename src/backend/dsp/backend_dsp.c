/* The DSP backend (backend_dsp.h): what the Hexagon program runs, and the dispatch of a node's passes
 * to its runner. One run is in flight at a time: the executor waits before it posts again. */
#include "backend/dsp/backend_dsp.h"

#include <stdlib.h>

#include "backend/dsp/packets.h"
#include "core/status.h"
#include "ops/conv2d_common.h"

int mh_dsp_supports(const mh_graph *g, int node, unsigned pass, int precision) {
  if (precision == MH_PRECISION_FP32 || node <= 0 || node >= g->n_nodes) return 0; /* v66 HVX has no vector float */
  const mh_node *nd = &g->nodes[node], *in = &g->nodes[nd->in[0]];
  int integer = precision == MH_PRECISION_INTEGER;
  switch (nd->op) {
    case MH_OP_CONV2D:
      if (mh__conv_dims_of(g, nd, 1).G != 1) return 0; /* grouped and depthwise: direct loops on the CPU */
      /* fall through */
    case MH_OP_LINEAR: return pass == MH_PASS_FWD || pass == MH_PASS_BWD_W || (pass == MH_PASS_BWD_D && nd->in[0] != 0);
    case MH_OP_RELU: return integer && (pass == MH_PASS_FWD || pass == MH_PASS_BWD_D);
    case MH_OP_MAXPOOL: /* the HVX kernel's windows: 2x2, stride 2, no padding, whole planes */
      return integer && (pass == MH_PASS_FWD || pass == MH_PASS_BWD_D) && nd->pool_k == 2 && nd->pool_s == 2 &&
             nd->pool_p == 0 && nd->h == in->h / 2 && nd->w == in->w / 2;
    case MH_OP_ADD: return integer && pass == MH_PASS_FWD; /* its backward only hands the error on */
    default: return 0;
  }
}

static int supports(void *self, const mh_graph *g, int node, unsigned pass, int precision) {
  (void)self;
  return mh_dsp_supports(g, node, pass, precision);
}

static int gemm_op(const mh_op_ctx *ctx) { return ctx->node->op == MH_OP_CONV2D || ctx->node->op == MH_OP_LINEAR; }

static int post(void *self, mh_op_ctx *ctx, unsigned passes) {
  mh_dsp_backend *b = self;
  if (!b->dsp->alive) return mh__error(MH_ERR_BACKEND, "DSP: the session is gone");
  double hvx;
  mh_dsp_packets_totals(b->dsp, &b->packets_at_post, &hvx);
  int st = ctx->node->op == MH_OP_CONV2D   ? mh__dsp_conv_post(b, ctx, passes)
           : ctx->node->op == MH_OP_LINEAR ? mh__dsp_linear_post(b, ctx, passes)
                                           : mh__dsp_eltwise_run(b, ctx, passes);
  if (st == MH_OK && gemm_op(ctx) && !(passes & MH_PASS_FWD)) {
    unsigned all = MH_PASS_BWD_W | (ctx->node->in[0] != 0 ? MH_PASS_BWD_D : 0u);
    if (passes != all) b->cnt->cosched_runs++; /* the executor does the other backward pass meanwhile */
  }
  b->pending = st == MH_OK ? passes : 0;
  return st;
}

static int wait(void *self, mh_op_ctx *ctx, unsigned passes) {
  mh_dsp_backend *b = self;
  b->pending = 0;
  int st = !gemm_op(ctx)                    ? MH_OK /* element-wise passes complete in post */
           : ctx->node->op == MH_OP_CONV2D ? mh__dsp_conv_wait(b, ctx, passes)
                                           : mh__dsp_linear_wait(b, ctx, passes);
  if (st == MH_OK && b->node_packets && ctx->node_id > 0 && ctx->node_id < b->n_nodes) {
    double now, hvx;
    mh_dsp_packets_totals(b->dsp, &now, &hvx);
    b->node_packets[2 * ctx->node_id + !(passes & MH_PASS_FWD)] += now - b->packets_at_post;
  }
  return st;
}

static void fell_back(void *self, const mh_op_ctx *ctx, unsigned passes) {
  (void)ctx, (void)passes;
  mh_dsp_backend *b = self;
  if (!b->dsp->alive && !b->cnt->dsp_lost) {
    mh__log(MH_LOG_WARN, "%s; continuing on the CPU", mh_last_error());
    b->cnt->dsp_lost = 1;
  }
  b->cnt->cpu_fallbacks++;
}

static int stats(void *self, mh_stat *out, int max) {
  const mh_dsp_backend *b = self;
  const mh_dsp_counts *c = b->cnt;
  double packets = 0, hvx = 0;
  int counted = mh_dsp_packets_active(b->dsp);
  if (counted) mh_dsp_packets_totals(b->dsp, &packets, &hvx);
  const mh_stat all[] = {
      {"gemms", (double)c->gemms},
      {"messages", (double)b->dsp->messages},
      {"cpu_fallbacks", (double)c->cpu_fallbacks},
      {"macs", c->macs},
      {"bytes_to", c->bytes_to_dsp},
      {"bytes_from", c->bytes_from_dsp},
      {"reuse", (double)b->dsp->reuse},
      {"subgraph_runs", (double)c->sg_runs},
      {"subgraph_prepares", (double)c->sg_prepares},
      {"nodes_checked", (double)c->sg_nodes_checked},
      {"weight_bytes", c->weight_bytes},
      {"packed_bytes", c->packed_bytes},
      {"fused_gemms", (double)c->fused_gemms},
      {"int32_bytes_kept", c->int32_bytes_kept},
      {"cosched_runs", (double)c->cosched_runs},
      {"eltwise_ops", (double)c->eltwise_ops},
      {"segment_runs", (double)c->seg_runs},
      {"segment_prepares", (double)c->seg_prepares},
      {"pad_bytes", c->pad_bytes},
      {"split_parts", (double)c->split_parts},
      {"vtcm_chunks", (double)c->vtcm_chunks},
      {"packets", packets},
      {"hvx_packets", hvx},
      {"packets_forward", b->dsp->pkt_pass[MH_PKT_PASS_FWD]},
      {"packets_backward", b->dsp->pkt_pass[MH_PKT_PASS_BWD]},
      {"packets_other", b->dsp->pkt_pass[MH_PKT_PASS_OTHER]},
  };
  int n = (int)(sizeof all / sizeof all[0]) - (counted ? 0 : 5); /* the packet counts last */
  for (int i = 0; i < n && i < max; i++) out[i] = all[i];
  return n;
}

static int segment(void *self, const mh_graph *g, int node, const unsigned char *place, int precision) {
  return mh__dsp_segment_last(self, g, node, place, precision);
}

static int run_segment(void *self, mh_op_ctx *ctx, int n, unsigned pass) {
  return mh__dsp_segment_run(self, ctx, n, pass);
}

int mh_dsp_backend_init(mh_dsp_backend *b, mh_dsp *d, mh_dsp_counts *cnt, int n_nodes) {
  b->be.name = "dsp";
  b->be.self = b;
  b->be.supports = supports;
  b->be.post = post;
  b->be.wait = wait;
  b->be.fell_back = fell_back;
  b->be.segment = segment;
  b->be.run_segment = run_segment;
  b->be.stats = stats;
  b->segs = NULL, b->n_segs = 0;
  b->dsp = d, b->cnt = cnt, b->sg = NULL, b->pending = 0, b->ey = 0;
  b->n_nodes = n_nodes, b->packets_at_post = 0, b->node_packets = NULL;
  if (mh_dsp_packets_active(d) && !(b->node_packets = calloc((size_t)n_nodes * 2, sizeof(double))))
    return mh__error(MH_ERR_NOMEM, "DSP backend: out of memory");
  return MH_OK;
}

void mh_dsp_backend_release(mh_dsp_backend *b) {
  if (!b) return;
  free(b->node_packets), b->node_packets = NULL;
  mh__dsp_segments_release(b);
}
