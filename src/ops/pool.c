/* Max pooling, average pooling (count_include_pad, floor mode) and global average pooling, forward
 * and backward. Max-pool backward routes to the first maximum in scan order (a NaN counting as the
 * maximum), as PyTorch's CPU kernel. */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ops/ops.h"

typedef struct {
  mh_op_ctx *ctx;
  int H, W, P, Q, K, S, D;
} pool_job;

static pool_job make_job(mh_op_ctx *ctx) {
  const mh_node *nd = ctx->node, *in = &ctx->g->nodes[nd->in[0]];
  pool_job j = {ctx, in->h, in->w, nd->h, nd->w, nd->pool_k, nd->pool_s, nd->pool_p};
  return j;
}

/* v beats the window's best so far: greater, or NaN (a NaN is the maximum, as in PyTorch's CPU kernel,
 * so a diverging run shows NaN instead of a clean-looking maximum). */
static inline int beats(float v, float best) { return v > best || v != v; }

/* Index within the plane of the window maximum at (p, q): first max in (kh, kw) scan order. */
static int argmax_at(const pool_job *j, const float *x, int p, int q) {
  int best = -1;
  float bv = 0;
  for (int kh = 0; kh < j->K; kh++) {
    int ih = p * j->S - j->D + kh;
    if (ih < 0 || ih >= j->H) continue;
    for (int kw = 0; kw < j->K; kw++) {
      int iw = q * j->S - j->D + kw;
      if (iw < 0 || iw >= j->W) continue;
      float v = x[ih * j->W + iw];
      if (best < 0 || beats(v, bv)) best = ih * j->W + iw, bv = v;
    }
  }
  return best;
}

static void max_fwd(void *p, long lo, long hi) {
  const pool_job *j = p;
  for (long t = lo; t < hi; t++) {
    const float *x = j->ctx->x[0] + (size_t)t * j->H * j->W;
    float *y = j->ctx->y + (size_t)t * j->P * j->Q;
    if (j->K == 2 && j->S == 2 && j->D == 0) { /* the common 2x2/2 case without index bookkeeping */
      for (int pp = 0; pp < j->P; pp++) {
        const float *r0 = x + (size_t)2 * pp * j->W, *r1 = r0 + j->W;
        for (int q = 0; q < j->Q; q++) {
          float a = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], d = r1[2 * q + 1];
          float m = beats(b, a) ? b : a;
          m = beats(c, m) ? c : m;
          y[pp * j->Q + q] = beats(d, m) ? d : m;
        }
      }
      continue;
    }
    for (int pp = 0; pp < j->P; pp++)
      for (int q = 0; q < j->Q; q++) y[pp * j->Q + q] = x[argmax_at(j, x, pp, q)];
  }
}

static void max_bwd(void *p, long lo, long hi) {
  const pool_job *j = p;
  for (long t = lo; t < hi; t++) {
    const float *x = j->ctx->x[0] + (size_t)t * j->H * j->W, *dy = j->ctx->dy + (size_t)t * j->P * j->Q;
    float *dx = j->ctx->dx[0] + (size_t)t * j->H * j->W;
    if (!j->ctx->dx_accumulate[0]) memset(dx, 0, sizeof(float) * j->H * j->W);
    if (j->K == 2 && j->S == 2 && j->D == 0) { /* 2x2/2: the same first-max rule, unrolled */
      for (int pp = 0; pp < j->P; pp++)
        for (int q = 0; q < j->Q; q++) {
          int i0 = 2 * pp * j->W + 2 * q, best = i0;
          if (beats(x[i0 + 1], x[best])) best = i0 + 1;
          if (beats(x[i0 + j->W], x[best])) best = i0 + j->W;
          if (beats(x[i0 + j->W + 1], x[best])) best = i0 + j->W + 1;
          dx[best] += dy[pp * j->Q + q];
        }
      continue;
    }
    for (int pp = 0; pp < j->P; pp++)
      for (int q = 0; q < j->Q; q++) dx[argmax_at(j, x, pp, q)] += dy[pp * j->Q + q];
  }
}

static void avg_fwd(void *p, long lo, long hi) {
  const pool_job *j = p;
  float inv = 1.f / (float)(j->K * j->K);
  for (long t = lo; t < hi; t++) {
    const float *x = j->ctx->x[0] + (size_t)t * j->H * j->W;
    float *y = j->ctx->y + (size_t)t * j->P * j->Q;
    for (int pp = 0; pp < j->P; pp++)
      for (int q = 0; q < j->Q; q++) {
        float s = 0;
        for (int kh = 0; kh < j->K; kh++) {
          int ih = pp * j->S - j->D + kh;
          if (ih < 0 || ih >= j->H) continue;
          for (int kw = 0; kw < j->K; kw++) {
            int iw = q * j->S - j->D + kw;
            if (iw >= 0 && iw < j->W) s += x[ih * j->W + iw];
          }
        }
        y[pp * j->Q + q] = s * inv;
      }
  }
}

static void avg_bwd(void *p, long lo, long hi) {
  const pool_job *j = p;
  float inv = 1.f / (float)(j->K * j->K);
  for (long t = lo; t < hi; t++) {
    const float *dy = j->ctx->dy + (size_t)t * j->P * j->Q;
    float *dx = j->ctx->dx[0] + (size_t)t * j->H * j->W;
    if (!j->ctx->dx_accumulate[0]) memset(dx, 0, sizeof(float) * j->H * j->W);
    for (int pp = 0; pp < j->P; pp++)
      for (int q = 0; q < j->Q; q++) {
        float g = dy[pp * j->Q + q] * inv;
        for (int kh = 0; kh < j->K; kh++) {
          int ih = pp * j->S - j->D + kh;
          if (ih < 0 || ih >= j->H) continue;
          for (int kw = 0; kw < j->K; kw++) {
            int iw = q * j->S - j->D + kw;
            if (iw >= 0 && iw < j->W) dx[ih * j->W + iw] += g;
          }
        }
      }
  }
}

static long planes(const mh_op_ctx *ctx) { return (long)ctx->n * ctx->node->c; }

static void maxpool_forward(mh_op_ctx *ctx) {
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), max_fwd, &j);
}
static void maxpool_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), max_bwd, &j);
}
static void avgpool_forward(mh_op_ctx *ctx) {
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), avg_fwd, &j);
}
static void avgpool_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), avg_bwd, &j);
}

/* Global average pool: (N, C, H, W) -> (N, C, 1, 1). */
static void gap_forward(mh_op_ctx *ctx) {
  const mh_node *in = &ctx->g->nodes[ctx->node->in[0]];
  int hw = in->h * in->w;
  for (long t = 0; t < planes(ctx); t++) {
    const float *x = ctx->x[0] + (size_t)t * hw;
    float s = 0;
    for (int i = 0; i < hw; i++) s += x[i];
    ctx->y[t] = s / (float)hw;
  }
}
static void gap_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  const mh_node *in = &ctx->g->nodes[ctx->node->in[0]];
  int hw = in->h * in->w;
  for (long t = 0; t < planes(ctx); t++) {
    float g = ctx->dy[t] / (float)hw, *dx = ctx->dx[0] + (size_t)t * hw;
    if (ctx->dx_accumulate[0])
      for (int i = 0; i < hw; i++) dx[i] += g;
    else
      for (int i = 0; i < hw; i++) dx[i] = g;
  }
}

const mh_op_impl mh_op_maxpool = {.save_input = 1, .forward = maxpool_forward, .backward = maxpool_backward};
const mh_op_impl mh_op_avgpool = {.forward = avgpool_forward, .backward = avgpool_backward};
const mh_op_impl mh_op_gap = {.forward = gap_forward, .backward = gap_backward};

/* ---- max-pool for the int8 algorithm: the window position of each maximum (uint16, kh*K + kw)
 * is saved instead of the FP32 input, so the input need not live until backward ---- */
static size_t maxpool_s8_state(const mh_graph *g, const mh_node *nd, int n, int precision) {
  return ((size_t)n * nd->c * nd->h * nd->w * sizeof(uint16_t) + 3) / 4;
}

/* 2x2 windows, stride 2: branch-free selects of the first maximum (NaN included) and its position. */
static void max_fwd_pos_2x2(const pool_job *j, const float *x, float *y, uint16_t *pos) {
  for (int pp = 0; pp < j->P; pp++) {
    const float *r0 = x + (size_t)2 * pp * j->W, *r1 = r0 + j->W;
    float *yo = y + (size_t)pp * j->Q;
    uint16_t *po = pos + (size_t)pp * j->Q;
    for (int q = 0; q < j->Q; q++) {
      float m = r0[2 * q], b = r0[2 * q + 1], c = r1[2 * q], d = r1[2 * q + 1];
      int k = 0, t = beats(b, m);
      m = t ? b : m, k = t ? 1 : k;
      t = beats(c, m);
      m = t ? c : m, k = t ? 2 : k;
      t = beats(d, m);
      m = t ? d : m, k = t ? 3 : k;
      yo[q] = m, po[q] = (uint16_t)k;
    }
  }
}

static void max_fwd_pos(void *p, long lo, long hi) {
  const pool_job *j = p;
  float m = 0.f; /* max |y| (NaN ignored), recorded for the next layer's quantiser */
  for (long t = lo; t < hi; t++) {
    const float *x = j->ctx->x[0] + (size_t)t * j->H * j->W;
    float *y = j->ctx->y + (size_t)t * j->P * j->Q;
    uint16_t *pos = (uint16_t *)j->ctx->state + (size_t)t * j->P * j->Q;
    if (j->K == 2 && j->S == 2 && j->D == 0) {
      max_fwd_pos_2x2(j, x, y, pos);
    } else {
      for (int pp = 0; pp < j->P; pp++)
        for (int q = 0; q < j->Q; q++) {
          int best = argmax_at(j, x, pp, q);
          y[pp * j->Q + q] = x[best];
          pos[pp * j->Q + q] = (uint16_t)((best / j->W - (pp * j->S - j->D)) * j->K + best % j->W - (q * j->S - j->D));
        }
    }
    for (long i = 0; i < (long)j->P * j->Q; i++) {
      float a = y[i] < 0.f ? -y[i] : y[i];
      m = a > m ? a : m;
    }
  }
  mh__op_record_absmax(j->ctx, m);
}

/* 2x2 windows, stride 2: each input element is in at most one window, so every window writes all four
 * of its elements (the gradient where its maximum was, 0 elsewhere) and no clearing pass is needed
 * but for a last odd row or column. */
static void max_bwd_pos_2x2(const pool_job *j, const float *dy, const uint16_t *pos, float *dx, int accumulate) {
  for (int pp = 0; pp < j->P; pp++) {
    float *r0 = dx + (size_t)2 * pp * j->W, *r1 = r0 + j->W;
    const float *g = dy + (size_t)pp * j->Q;
    const uint16_t *po = pos + (size_t)pp * j->Q;
    int q = 0;
#if defined(__SSE2__)
    /* four windows at a time: the gradient masked by position, interleaved back into the two rows */
    for (; q + 4 <= j->Q; q += 4) {
      __m128 gv = _mm_loadu_ps(g + q);
      __m128i k = _mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)(po + q)), _mm_setzero_si128());
      __m128 v0 = _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(0))));
      __m128 v1 = _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(1))));
      __m128 v2 = _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(2))));
      __m128 v3 = _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(3))));
      __m128 a = _mm_unpacklo_ps(v0, v1), b = _mm_unpackhi_ps(v0, v1), c = _mm_unpacklo_ps(v2, v3), d = _mm_unpackhi_ps(v2, v3);
      if (accumulate) {
        a = _mm_add_ps(a, _mm_loadu_ps(r0 + 2 * q)), b = _mm_add_ps(b, _mm_loadu_ps(r0 + 2 * q + 4));
        c = _mm_add_ps(c, _mm_loadu_ps(r1 + 2 * q)), d = _mm_add_ps(d, _mm_loadu_ps(r1 + 2 * q + 4));
      }
      _mm_storeu_ps(r0 + 2 * q, a), _mm_storeu_ps(r0 + 2 * q + 4, b);
      _mm_storeu_ps(r1 + 2 * q, c), _mm_storeu_ps(r1 + 2 * q + 4, d);
    }
#endif
    for (; q < j->Q; q++) {
      int k = po[q];
      float v0 = k == 0 ? g[q] : 0.f, v1 = k == 1 ? g[q] : 0.f, v2 = k == 2 ? g[q] : 0.f, v3 = k == 3 ? g[q] : 0.f;
      if (accumulate) r0[2 * q] += v0, r0[2 * q + 1] += v1, r1[2 * q] += v2, r1[2 * q + 1] += v3;
      else r0[2 * q] = v0, r0[2 * q + 1] = v1, r1[2 * q] = v2, r1[2 * q + 1] = v3;
    }
    if (!accumulate && j->W > 2 * j->Q) r0[2 * j->Q] = r1[2 * j->Q] = 0.f; /* odd width: the last column */
  }
  if (!accumulate && j->H > 2 * j->P) memset(dx + (size_t)2 * j->P * j->W, 0, sizeof(float) * j->W);
}

static void max_bwd_pos(void *p, long lo, long hi) {
  const pool_job *j = p;
  for (long t = lo; t < hi; t++) {
    const float *dy = j->ctx->dy + (size_t)t * j->P * j->Q;
    const uint16_t *pos = (const uint16_t *)j->ctx->state + (size_t)t * j->P * j->Q;
    float *dx = j->ctx->dx[0] + (size_t)t * j->H * j->W;
    if (j->K == 2 && j->S == 2 && j->D == 0) {
      max_bwd_pos_2x2(j, dy, pos, dx, j->ctx->dx_accumulate[0]);
      continue;
    }
    if (!j->ctx->dx_accumulate[0]) memset(dx, 0, sizeof(float) * j->H * j->W);
    for (int pp = 0; pp < j->P; pp++)
      for (int q = 0; q < j->Q; q++) {
        int k = pos[pp * j->Q + q], ih = pp * j->S - j->D + k / j->K, iw = q * j->S - j->D + k % j->K;
        dx[ih * j->W + iw] += dy[pp * j->Q + q];
      }
  }
}

static void maxpool_s8_forward(mh_op_ctx *ctx) {
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), max_fwd_pos, &j);
}
static void maxpool_s8_backward(mh_op_ctx *ctx) {
  if (!ctx->dx[0]) return;
  pool_job j = make_job(ctx);
  mh_parallel_for(ctx->pool, planes(ctx), max_bwd_pos, &j);
}

const mh_op_impl mh_op_maxpool_s8 = {.records_absmax = 1, .state_floats = maxpool_s8_state, .forward = maxpool_s8_forward, .backward = maxpool_s8_backward};
