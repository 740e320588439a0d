/* BatchNorm2d, PyTorch semantics: training normalises with the batch mean and biased variance and
 * updates running stats with the unbiased variance; eval uses the running stats. Per-channel work. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/quantize.h"

/* Sums over a plane in 8 float partial sums (element i goes to lane i % 8, lanes then added in a fixed
 * order): the compiler vectorises it, and the result depends on nothing but the data, not on the ISA
 * or the thread count. */
static float sum8(const float *x, int n) {
  float a[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a[l] += x[i + l];
  for (int l = 0; i + l < n; l++) a[l] += x[i + l];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
/* sum (x - m)^2 the same way */
static float sumsq8(const float *x, int n, float m) {
  float a[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      float d = x[i + l] - m;
      a[l] += d * d;
    }
  for (int l = 0; i + l < n; l++) {
    float d = x[i + l] - m;
    a[l] += d * d;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
/* sum dy and sum dy * (x - m) (or dy * q * sc for a saved int8 x-hat) the same way */
static void sumdy8(const float *dy, const float *x, int n, float m, float *sdy, float *sdyx) {
  float a[8] = {0}, b[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a[l] += dy[i + l], b[l] += dy[i + l] * (x[i + l] - m);
  for (int l = 0; i + l < n; l++) a[l] += dy[i + l], b[l] += dy[i + l] * (x[i + l] - m);
  *sdy = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  *sdyx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}
static void sumdyq8(const float *dy, const int8_t *q, int n, float sc, float *sdy, float *sdyx) {
  float a[8] = {0}, b[8] = {0}, xh[256];
  for (int i0 = 0; i0 < n; i0 += 256) { /* x-hat in blocks first: the conversion loop vectorises */
    int m = n - i0 < 256 ? n - i0 : 256, i = 0;
    for (int t = 0; t < m; t++) xh[t] = (float)q[i0 + t] * sc;
    const float *d = dy + i0;
    for (; i + 8 <= m; i += 8)
      for (int l = 0; l < 8; l++) a[l] += d[i + l], b[l] += d[i + l] * xh[i + l];
    for (int l = 0; i + l < m; l++) a[l] += d[i + l], b[l] += d[i + l] * xh[i + l];
  }
  *sdy = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  *sdyx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

/* x, y: (N, C, HW); gamma, beta: (C); state: mean (C), invstd (C); buf: running_mean, running_var. */
typedef struct {
  mh_op_ctx *ctx;
  int N, C, HW;
  float *cmax; /* training, int8 form: per channel max |x-hat|, found from the channel's min and max */
  int stats_only; /* statistics without y (the int8 form writes y with x-hat's int8 copy in one pass) */
} bn_job;

/* min and max of a plane, folded into *lo, *hi; in 8 lanes like sum8 so the compiler vectorises it
 * (min and max are exact, so the lanes change nothing but the speed) */
static void minmax(const float *x, int n, float *lo, float *hi) {
  float a[8], b[8];
  for (int l = 0; l < 8; l++) a[l] = *lo, b[l] = *hi;
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      float v = x[i + l];
      a[l] = v < a[l] ? v : a[l];
      b[l] = v > b[l] ? v : b[l];
    }
  for (int l = 0; i + l < n; l++) {
    float v = x[i + l];
    a[l] = v < a[l] ? v : a[l];
    b[l] = v > b[l] ? v : b[l];
  }
  float mn = a[0], mx = b[0];
  for (int l = 1; l < 8; l++) mn = a[l] < mn ? a[l] : mn, mx = b[l] > mx ? b[l] : mx;
  *lo = mn, *hi = mx;
}

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
      float lo = ctx->x[0][(size_t)c * j->HW], hi = lo;
      for (int n = 0; n < j->N; n++) {
        const float *x = ctx->x[0] + ((size_t)n * j->C + c) * j->HW;
        s += sum8(x, j->HW);
        if (j->cmax) minmax(x, j->HW, &lo, &hi);
      }
      double m = s / (double)M;
      for (int n = 0; n < j->N; n++) ss += sumsq8(ctx->x[0] + ((size_t)n * j->C + c) * j->HW, j->HW, (float)m);
      double var = ss / (double)M;
      mean = (float)m;
      invstd = (float)(1.0 / sqrt(var + nd->eps));
      if (j->cmax) { /* (x - mean) * invstd is monotonic in x, rounding included: its largest magnitude is
                        at the channel's min or max, computed with the very operations the quantiser uses */
        float a = fabsf((lo - mean) * invstd), b = fabsf((hi - mean) * invstd);
        j->cmax[c] = a > b ? a : b;
      }
      mean_s[c] = mean;
      invstd_s[c] = invstd;
      double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
      rmean[c] = (1.f - nd->momentum) * rmean[c] + nd->momentum * mean;
      rvar[c] = (1.f - nd->momentum) * rvar[c] + nd->momentum * (float)unbiased;
    } else { /* eval form; kept in the state too, for a frozen batch norm's backward */
      mean = rmean[c];
      invstd = 1.f / sqrtf(rvar[c] + nd->eps);
      mean_s[c] = mean;
      invstd_s[c] = invstd;
    }
    if (j->stats_only) continue;
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
      float a, b;
      sumdy8(ctx->dy + o, ctx->x[0] + o, j->HW, mean, &a, &b);
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

/* The eval form's backward (a frozen batch norm in a training step): y = x * gamma * invstd + shift
 * with the running statistics, so dx = dy * gamma * invstd, and no parameter gradient. */
static void bn_eval_bwd_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  mh_op_ctx *ctx = j->ctx;
  const float *gamma = ctx->w, *invstd_s = ctx->state + j->C;
  for (long c = lo; c < hi && ctx->dx[0]; c++) {
    float k = gamma[c] * invstd_s[c];
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const float *dy = ctx->dy + o;
      float *dx = ctx->dx[0] + o;
      if (ctx->dx_accumulate[0])
        for (int i = 0; i < j->HW; i++) dx[i] += dy[i] * k;
      else
        for (int i = 0; i < j->HW; i++) dx[i] = dy[i] * k;
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
  mh_parallel_for(ctx->pool, nd->c, ctx->training ? bn_bwd_channels : bn_eval_bwd_channels, &j);
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

/* xhat blocks go through the kernel table's float->int8 quantiser (nearest, saturating). */
/* y = x * scale + shift and x-hat's int8 copy, from one read of x: x-hat in blocks through the
 * kernel table's float->int8 quantiser (nearest, saturating). */
static void bn_s8_quant_channels(void *p, long lo, long hi) {
  const bn_job *j = p;
  const float *gamma = j->ctx->w, *beta = j->ctx->w + j->C, *mean_s = j->ctx->state, *invstd_s = j->ctx->state + j->C;
  float inv = ldexpf(1.f, -(int)j->ctx->state[2 * j->C]), xh[1024];
  for (long c = lo; c < hi; c++) {
    float mean = mean_s[c], invstd = invstd_s[c], scale = gamma[c] * invstd, shift = beta[c] - mean * scale;
    for (int n = 0; n < j->N; n++) {
      size_t o = ((size_t)n * j->C + c) * j->HW;
      const float *restrict x = j->ctx->x[0] + o;
      float *restrict y = j->ctx->y + o;
      int8_t *q = bn_s8_q(j) + o;
      for (int i0 = 0; i0 < j->HW; i0 += 1024) {
        int m = j->HW - i0 < 1024 ? j->HW - i0 : 1024;
        for (int i = 0; i < m; i++) {
          float v = x[i0 + i];
          xh[i] = (v - mean) * invstd;
          y[i0 + i] = v * scale + shift;
        }
        j->ctx->kt->quant_f32_s8(xh, q + i0, m, inv, MH_ROUND_NEAREST, 0, 0);
      }
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
      float a, b;
      sumdyq8(ctx->dy + o, bn_s8_q(j) + o, j->HW, sc, &a, &b);
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
  if (ctx->training) j.cmax = bn_s8_cmax(&j), j.stats_only = 1; /* y comes with x-hat's int8 copy below */
  mh_parallel_for(ctx->pool, nd->c, bn_fwd_channels, &j);
  if (!ctx->training) return;
  float m = 0;
  for (int c = 0; c < j.C; c++) m = bn_s8_cmax(&j)[c] > m ? bn_s8_cmax(&j)[c] : m;
  ctx->state[2 * j.C] = (float)mh_q_exp_for_max(m);
  mh_parallel_for(ctx->pool, nd->c, bn_s8_quant_channels, &j);
}

static void bn_s8_backward(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node;
  bn_job j = {ctx, ctx->n, nd->c, nd->h * nd->w};
  mh_parallel_for(ctx->pool, nd->c, ctx->training ? bn_s8_bwd_channels : bn_eval_bwd_channels, &j);
}

const mh_op_impl mh_op_batchnorm_s8 = {
    .state_floats = bn_s8_state,
    .forward = bn_s8_forward,
    .backward = bn_s8_backward,
};
