/* Helpers the integer-tensor ops share: exponent-aligned int8 addition, writing or accumulating an
 * input gradient, and requantising an int32 result through the node's rescale slot. */
#include <string.h>

#include "ops/ops.h"

static int8_t align8(int8_t v, int s) { return (int8_t)mh_q_round_nearest(v, s > MH_Q_MAX_SHIFT ? MH_Q_MAX_SHIFT : s); }

int mh__int_add(mh_pool *pool, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, long n) {
  (void)pool;
  int e = ea > eb ? ea : eb, sa = e - ea, sb = e - eb, over = 0;
  for (long i = 0; i < n && !over; i++) {
    int v = align8(a[i], sa) + align8(b[i], sb);
    over = v > MH_Q8_MAX || v < -MH_Q8_MAX;
  }
  for (long i = 0; i < n; i++) {
    int32_t v = align8(a[i], sa) + align8(b[i], sb);
    y[i] = (int8_t)(over ? mh_q_round_nearest(v, 1) : v); /* |v| <= 254: one bit brings it into range */
  }
  return over ? e + 1 : e;
}

void mh__int_emit_grad(mh_op_ctx *ctx, int k, const int8_t *g, int e, long n) {
  if (!ctx->qdx[k]) return;
  if (!ctx->dx_accumulate[k]) {
    if (ctx->qdx[k] != g) memcpy(ctx->qdx[k], g, (size_t)n);
    *ctx->edx[k] = e;
    return;
  }
  *ctx->edx[k] = mh__int_add(ctx->pool, ctx->qdx[k], *ctx->edx[k], g, e, ctx->qdx[k], n);
}

int mh__int_rescale(mh_op_ctx *ctx, int slot, const int32_t *acc, long n, int8_t *out) {
  return mh_rescale_s32_s8(ctx->kt, ctx->pool, acc, n, out, MH_ROUND_PSTO, ctx->rescale, &ctx->rs[slot], ctx->rc);
}
