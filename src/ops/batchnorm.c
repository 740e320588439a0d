/* BatchNorm2d, PyTorch semantics: training normalises with the batch mean and biased variance and
 * updates running stats with the unbiased variance; eval uses the running stats. Per-channel work. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/quantize.h"

/* x, y: (N, C, HW); gamma, beta: (C); state: mean (C), invstd (C); buf: running_mean, running_var. */
typedef struct {
  mh_op_ctx *ctx;
  int N, C, HW;
} bn_job;

static void bn_fwd_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  mh_op_ctx *ctx = j->ctx;
  const float *gamma = ctx->w, *beta = ctx->w + j->C;
  float *mean_s = ctx->state, *invstd_s = ctx->state + j->C;
  float *rmean = ctx->buf, *rvar = ctx->buf + j->C;
  const mh_node *nd = ctx->node;
  size_t M = (size_t)j->N * j->HW;
  for (long c = lo; c < hi; c++) {
    float mean, invstd;
    if (ctx->training) {
      /* two passes in double: the mean, then the centred sum of squares (stable for large M) */
      double s = 0, ss = 0;
      for (int n = 0; n < j->N; n++) {
        const float *x = ctx->x[0] + ((size_t)n * j->C + c) * j->HW;
        float ps = 0;
        for (int i = 0; i < j->HW; i++) ps += x[i];
        s += ps;
      }
      double m = s / (double)M;
      for (int n = 0; n < j->N; n++) {
        const float *x = ctx->x[0] + ((size_t)n * j->C + c) * j->HW;
        float fm = (float)m, pss = 0;
        for (int i = 0; i < j->HW; i++) {
          float dv = x[i] - fm;
          pss += dv * dv;
        }
        ss += pss;
      }
      double var = ss / (double)M;
      mean = (float)m;
      invstd = (float)(1.0 / sqrt(var + nd->eps));
      mean_s[c] = mean;
      invstd_s[c] = invstd;
      double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
      rmean[c] = (1.f - nd->momentum) * rmean[c] + nd->momentum * mean;
      rvar[c] = (1.f - nd->momentum) * rvar[c] + nd->momentum * (float)unbiased;
    } else {
      mean = rmean[c];
      invstd = 1.f / sqrtf(rvar[c] + nd->eps);
    }
    float scale = gamma[c] * invstd, shift = beta[c] - mean * scale;
    for (int n = 0; n < j->N; n++) {
      const float *x = ctx->x[0] + ((size_t)n * j->C + c) * j->HW;
      float *y = ctx->y + ((size_t)n * j->C + c) * j->HW;
      for (int i = 0; i < j->HW; i++) y[i] = x[i] * scale + shift;
    }
  }
}

/* dgamma = sum dy*xhat, dbeta = sum dy, dx = gamma*invstd/M * (M*dy - dbeta - xhat*dgamma). */
static void bn_bwd_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  mh_op_ctx *ctx = j->ctx;
  const float *gamma = ctx->w, *mean_s = ctx->state, *invstd_s = ctx->state + j->C;
  float *dgamma = ctx->dw, *dbeta = ctx->dw + j->C;
  size_t M = (size_t)j->N * j->HW;
  for (long c = lo; c < hi; c++) {
    float mean = mean_s[c], invstd = invstd_s[c];
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const float *x = ctx->x[0] + o, *dy = ctx->dy + o;
      float a = 0, b = 0;
      for (int i = 0; i < j->HW; i++) {
        a += dy[i];
        b += dy[i] * (x[i] - mean);
      }
      sdy += a;
      sdyx += b;
    }
    float dg = (float)(sdyx * invstd), dbt = (float)sdy;
    dgamma[c] = dg;
    dbeta[c] = dbt;
    if (!ctx->dx[0]) continue;
    float k = gamma[c] * invstd / (float)M, mdb = dbt, xg = dg * invstd;
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const float *x = ctx->x[0] + o, *dy = ctx->dy + o;
      float *dx = ctx->dx[0] + o;
      if (ctx->dx_accumulate[0])
        for (int i = 0; i < j->HW; i++) dx[i] += k * ((float)M * dy[i] - mdb - (x[i] - mean) * xg);
      else
        for (int i = 0; i < j->HW; i++) dx[i] = k * ((float)M * dy[i] - mdb - (x[i] - mean) * xg);
    }
  }
}

static void bn_forward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node;
  bn_job j = {ctx, ctx->n, nd->c, nd->h * nd->w};
  mh_parallel_for(ctx->pool, nd->c, bn_fwd_channels, &j);
}

static void bn_backward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node;
  bn_job j = {ctx, ctx->n, nd->c, nd->h * nd->w};
  mh_parallel_for(ctx->pool, nd->c, bn_bwd_channels, &j);
}

static size_t bn_state_floats(const mh_graph *g, const mh_node *nd, int n, int precision) { return 2 * (size_t)nd->c; }

const mh_op_impl mh_op_batchnorm = {
    .save_input = 1,
    .state_floats = bn_state_floats,
    .forward = bn_forward,
    .backward = bn_backward,
};

/* ---- batch norm for the int8 algorithm: arithmetic stays FP32, but what backward needs of the
 * input, xhat = (x - mean) * invstd, is saved as int8 with one power-of-two exponent instead of
 * the FP32 input. State: mean (C), invstd (C), [exponent, pad to 16], per-channel max|xhat| (C),
 * then xhat_q (N*C*HW int8). Backward is the same formula with xhat read from xhat_q. */
static size_t bn_s8_state(const mh_graph *g, const mh_node *nd, int n, int precision) {
  size_t C = (size_t)nd->c;
  return 3 * C + 16 + ((size_t)n * C * nd->h * nd->w + 3) / 4;
}

static float *bn_s8_cmax(const bn_job *j) { return j->ctx->state + 2 * j->C + 16; }
static int8_t *bn_s8_q(const bn_job *j) { return (int8_t *)(j->ctx->state + 3 * (size_t)j->C + 16); }

static void bn_s8_max_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  const float *mean_s = j->ctx->state, *invstd_s = j->ctx->state + j->C;
  for (long c = lo; c < hi; c++) {
    float m = 0;
    for (int n = 0; n < j->N; n++) {
      const float *x = j->ctx->x[0] + ((size_t)n * j->C + c) * j->HW;
      for (int i = 0; i < j->HW; i++) {
        float a = fabsf((x[i] - mean_s[c]) * invstd_s[c]);
        m = a > m ? a : m;
      }
    }
    bn_s8_cmax(j)[c] = m;
  }
}

/* xhat blocks go through the kernel table's float->int8 quantiser (nearest, saturating). */
static void bn_s8_quant_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  const float *mean_s = j->ctx->state, *invstd_s = j->ctx->state + j->C;
  float inv = ldexpf(1.f, -(int)j->ctx->state[2 * j->C]), xh[1024];
  for (long c = lo; c < hi; c++)
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const float *x = j->ctx->x[0] + o;
      int8_t *q = bn_s8_q(j) + o;
      for (int i0 = 0; i0 < j->HW; i0 += 1024) {
        int m = j->HW - i0 < 1024 ? j->HW - i0 : 1024;
        for (int i = 0; i < m; i++) xh[i] = (x[i0 + i] - mean_s[c]) * invstd_s[c];
        j->ctx->kt->quant_f32_s8(xh, q + i0, m, inv, MH_ROUND_NEAREST, 0, 0);
      }
    }
}

static void bn_s8_bwd_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  mh_op_ctx *ctx = j->ctx;
  const float *gamma = ctx->w, *invstd_s = ctx->state + j->C;
  float *dgamma = ctx->dw, *dbeta = ctx->dw + j->C, sc = ldexpf(1.f, (int)ctx->state[2 * j->C]);
  size_t M = (size_t)j->N * j->HW;
  for (long c = lo; c < hi; c++) {
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const int8_t *q = bn_s8_q(j) + o;
      const float *dy = ctx->dy + o;
      float a = 0, b = 0;
      for (int i = 0; i < j->HW; i++) {
        a += dy[i];
        b += dy[i] * ((float)q[i] * sc);
      }
      sdy += a;
      sdyx += b;
    }
    float dg = (float)sdyx, dbt = (float)sdy;
    dgamma[c] = dg;
    dbeta[c] = dbt;
    if (!ctx->dx[0]) continue;
    float k = gamma[c] * invstd_s[c] / (float)M;
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const int8_t *q = bn_s8_q(j) + o;
      const float *dy = ctx->dy + o;
      float *dx = ctx->dx[0] + o;
      for (int i = 0; i < j->HW; i++) {
        float g = k * ((float)M * dy[i] - dbt - ((float)q[i] * sc) * dg);
        dx[i] = ctx->dx_accumulate[0] ? dx[i] + g : g;
      }
    }
  }
}

static void bn_s8_forward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node;
  bn_job j = {ctx, ctx->n, nd->c, nd->h * nd->w};
  mh_parallel_for(ctx->pool, nd->c, bn_fwd_channels, &j);
  if (!ctx->training) return;
  mh_parallel_for(ctx->pool, nd->c, bn_s8_max_channels, &j);
  float m = 0;
  for (int c = 0; c < j.C; c++) m = bn_s8_cmax(&j)[c] > m ? bn_s8_cmax(&j)[c] : m;
  ctx->state[2 * j.C] = (float)mh_q_exp_for_max(m);
  mh_parallel_for(ctx->pool, nd->c, bn_s8_quant_channels, &j);
}

static void bn_s8_backward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node;
  bn_job j = {ctx, ctx->n, nd->c, nd->h * nd->w};
  mh_parallel_for(ctx->pool, nd->c, bn_s8_bwd_channels, &j);
}

const mh_op_impl mh_op_batchnorm_s8 = {
    .state_floats = bn_s8_state,
    .forward = bn_s8_forward,
    .backward = bn_s8_backward,
};
