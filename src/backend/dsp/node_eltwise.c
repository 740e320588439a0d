/* niti's element-wise passes on the DSP, one message each (eltwise_dsp.c): ReLU forward and
 * backward, 2x2 stride-2 max-pool forward and backward, and the residual add, with exponents and
 * gradient hand-off as src/ops/int_simple.c does them. */
#include "backend/dsp/backend_dsp.h"
#include "core/status.h"

int mh__dsp_eltwise_run(mh_dsp_backend *b, mh_op_ctx *ctx, unsigned passes) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  long n = (long)ctx->n * nd->c * nd->h * nd->w, nin = (long)ctx->n * in->c * in->h * in->w;
  int fwd = (passes & MH_PASS_FWD) != 0;
  /* an input gradient that accumulates is built in scratch first, as on the CPU */
  int8_t *g = !fwd && ctx->dx_accumulate[0] ? (int8_t *)ctx->scratch : fwd ? NULL : ctx->qdx[0];
  switch (nd->op) {
    case MH_OP_RELU:
      if (fwd) {
        MH_TRY(mh_dsp_relu_s8(b->dsp, ctx->qx[0], ctx->qy, n, b->cnt));
        *ctx->ey = ctx->ex[0];
        return MH_OK;
      }
      if (!ctx->qdx[0]) return MH_OK;
      MH_TRY(mh_dsp_relu_bwd_s8(b->dsp, ctx->qy, ctx->qdy, g, n, b->cnt));
      mh__int_emit_grad(ctx, 0, g, ctx->edy, n);
      return MH_OK;
    case MH_OP_MAXPOOL:
      if (fwd) {
        MH_TRY(mh_dsp_maxpool2_s8(b->dsp, ctx->qx[0], NULL, ctx->qy, (long)ctx->n * in->c, in->h, in->w, b->cnt));
        *ctx->ey = ctx->ex[0];
        return MH_OK;
      }
      if (!ctx->qdx[0]) return MH_OK;
      MH_TRY(mh_dsp_maxpool2_s8(b->dsp, ctx->qx[0], ctx->qdy, g, (long)ctx->n * in->c, in->h, in->w, b->cnt));
      mh__int_emit_grad(ctx, 0, g, ctx->edy, nin); /* windows do not overlap: the shift is 0 */
      return MH_OK;
    case MH_OP_ADD:
      return mh_dsp_add_s8(b->dsp, ctx->qx[0], ctx->ex[0], ctx->qx[1], ctx->ex[1], ctx->qy, n, ctx->ey, b->cnt);
    default:
      return mh__error(MH_ERR_UNSUPPORTED, "DSP: no element-wise form for op %s", mh_op_name(nd->op));
  }
}
