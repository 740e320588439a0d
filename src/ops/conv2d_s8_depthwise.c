/* The int8 depthwise convolution (one K x K filter per channel) as direct loops instead of one tiny
 * GEMM per channel: forward and input gradient sum int8 products exactly in int32 row by row and
 * convert each element once, the weight gradient sums per channel over the batch. The same integer
 * sums as the GEMM path, so the same results. */
#include <string.h>

#include "ops/conv2d_common.h"

int mh__conv_s8_depthwise_ok(const conv_dims *d) { return d->G > 1 && d->Cg == 1 && d->Og == 1; }

enum { SEG = 1024 }; /* int32 row segment on the stack */

typedef struct {
  const conv_dims *d;
  const int8_t *x, *w, *dy;
  float *out, scale;
  const float *bias;
  int accumulate;
} dw_job;

/* y[t] for planes t = n*C + c: each output row in segments of SEG columns */
static void dw_fwd_planes(void *p, long lo, long hi) {
  const dw_job *j = p;
  const conv_dims *d = j->d;
  int32_t acc[SEG];
  for (long t = lo; t < hi; t++) {
    int c = (int)(t % d->C);
    const int8_t *x = j->x + (size_t)t * d->H * d->W, *w = j->w + (size_t)c * d->K * d->K;
    float *y = j->out + (size_t)t * d->P * d->Q, b = j->bias ? j->bias[c] : 0.f;
    for (int pp = 0; pp < d->P; pp++)
      for (int q0 = 0; q0 < d->Q; q0 += SEG) {
        int n = d->Q - q0 < SEG ? d->Q - q0 : SEG;
        memset(acc, 0, sizeof(int32_t) * n);
        for (int kh = 0; kh < d->K; kh++) {
          int ih = pp * d->S - d->D + kh;
          if (ih < 0 || ih >= d->H) continue;
          const int8_t *row = x + (size_t)ih * d->W;
          for (int kw = 0; kw < d->K; kw++) {
            int32_t wv = w[kh * d->K + kw];
            /* valid q in [a, e): 0 <= q*S - D + kw < W */
            int a = q0, e = q0 + n;
            while (a < e && a * d->S - d->D + kw < 0) a++;
            while (e > a && (e - 1) * d->S - d->D + kw >= d->W) e--;
            if (d->S == 1) {
              const int8_t *r = row - d->D + kw;
              for (int q = a; q < e; q++) acc[q - q0] += r[q] * wv;
            } else {
              for (int q = a; q < e; q++) acc[q - q0] += row[q * d->S - d->D + kw] * wv;
            }
          }
        }
        float *o = y + (size_t)pp * d->Q + q0;
        for (int i = 0; i < n; i++) o[i] = (float)acc[i] * j->scale + b;
      }
  }
}

/* dx for planes t = n*C + c: input row ih gathers dy rows p with p*S - D + kh = ih */
static void dw_bwd_data_planes(void *p, long lo, long hi) {
  const dw_job *j = p;
  const conv_dims *d = j->d;
  int32_t acc[SEG];
  for (long t = lo; t < hi; t++) {
    int c = (int)(t % d->C);
    const int8_t *g = j->dy + (size_t)t * d->P * d->Q, *w = j->w + (size_t)c * d->K * d->K;
    float *dx = j->out + (size_t)t * d->H * d->W;
    for (int ih = 0; ih < d->H; ih++)
      for (int i0 = 0; i0 < d->W; i0 += SEG) {
        int n = d->W - i0 < SEG ? d->W - i0 : SEG;
        memset(acc, 0, sizeof(int32_t) * n);
        for (int kh = 0; kh < d->K; kh++) {
          int num = ih + d->D - kh;
          if (num < 0 || num % d->S) continue;
          int pp = num / d->S;
          if (pp >= d->P) continue;
          const int8_t *row = g + (size_t)pp * d->Q;
          for (int kw = 0; kw < d->K; kw++) {
            int32_t wv = w[kh * d->K + kw];
            if (d->S == 1) { /* q = iw + D - kw in [0, Q) */
              int a = i0, e = i0 + n;
              while (a < e && a + d->D - kw < 0) a++;
              while (e > a && e - 1 + d->D - kw >= d->Q) e--;
              const int8_t *r = row + d->D - kw;
              for (int iw = a; iw < e; iw++) acc[iw - i0] += r[iw] * wv;
            } else {
              for (int iw = i0; iw < i0 + n; iw++) {
                int nq = iw + d->D - kw;
                if (nq < 0 || nq % d->S || nq / d->S >= d->Q) continue;
                acc[iw - i0] += row[nq / d->S] * wv;
              }
            }
          }
        }
        float *o = dx + (size_t)ih * d->W + i0;
        if (j->accumulate)
          for (int i = 0; i < n; i++) o[i] += (float)acc[i] * j->scale;
        else
          for (int i = 0; i < n; i++) o[i] = (float)acc[i] * j->scale;
      }
  }
}

typedef struct {
  const conv_dims *d;
  const int8_t *x, *dy;
  int32_t *dw;
} dw_w_job;

/* dW[c] (K x K int32) = sum over samples and positions of dy * x, for channels [lo, hi) */
static void dw_bwd_weight_channels(void *p, long lo, long hi) {
  const dw_w_job *j = p;
  const conv_dims *d = j->d;
  for (long c = lo; c < hi; c++) {
    int32_t *w = j->dw + (size_t)c * d->K * d->K;
    for (int kh = 0; kh < d->K; kh++)
      for (int kw = 0; kw < d->K; kw++) {
        int q0 = 0, q1 = d->Q;
        while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
        while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
        int32_t s = 0;
        for (int n = 0; n < d->N; n++) {
          size_t t = (size_t)n * d->C + c;
          const int8_t *x = j->x + t * d->H * d->W, *g = j->dy + t * d->P * d->Q;
          for (int pp = 0; pp < d->P; pp++) {
            int ih = pp * d->S - d->D + kh;
            if (ih < 0 || ih >= d->H) continue;
            const int8_t *row = x + (size_t)ih * d->W, *gr = g + (size_t)pp * d->Q;
            if (d->S == 1)
              for (int q = q0; q < q1; q++) s += gr[q] * row[q - d->D + kw];
            else
              for (int q = q0; q < q1; q++) s += gr[q] * row[q * d->S - d->D + kw];
          }
        }
        w[kh * d->K + kw] = s;
      }
  }
}

void mh__conv_s8_depthwise_forward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq, float scale,
                                   const float *bias) {
  dw_job j = {d, xq, wq, NULL, ctx->y, scale, bias, 0};
  mh_parallel_for(ctx->pool, (long)d->N * d->C, dw_fwd_planes, &j);
}

void mh__conv_s8_depthwise_backward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq,
                                    const int8_t *dyq, float dx_scale, int32_t *dwacc, unsigned parts) {
  if (parts & MH_PASS_BWD_W) {
    dw_w_job j = {d, xq, dyq, dwacc};
    mh_parallel_for(ctx->pool, d->C, dw_bwd_weight_channels, &j);
  }
  if (parts & MH_PASS_BWD_D) {
    dw_job j = {d, NULL, wq, dyq, ctx->dx[0], dx_scale, NULL, ctx->dx_accumulate[0]};
    mh_parallel_for(ctx->pool, (long)d->N * d->C, dw_bwd_data_planes, &j);
  }
}
