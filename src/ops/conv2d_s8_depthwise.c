/* The int8 depthwise convolution (one K x K filter per channel) as direct loops instead of one tiny
 * GEMM per channel. Each plane is worked on the stride-1 grid of a zero-padded copy, where every
 * kernel tap is one multiply-add over the whole flattened plane (the kernel table's mac_row_s8 and
 * dot_s8); a stride-S convolution is the stride-1 one read every S-th row and column, and its
 * gradients are the stride-1 ones of the output gradient spread onto that grid with zeros between.
 * Everything sums int8 products exactly in int32 and converts each element once: the same integer
 * sums as the GEMM path, so the same results. */
#include <stdlib.h>
#include <string.h>

#include "ops/conv2d_common.h"

int mh__conv_s8_depthwise_ok(const conv_dims *d) { return d->G > 1 && d->Cg == 1 && d->Og == 1; }

/* The stride-1 grid: P1 x Q1 outputs of the padded Hp x Wp plane; a row of the grid is Wp wide so
 * that output (p, q) and tap (kh, kw) read padded element (p + kh) * Wp + q + kw. */
typedef struct {
  int hp, wp, p1, q1;
  size_t span; /* grid elements a tap covers: (P1 - 1) * Wp + Q1 */
} dw_grid;

static dw_grid grid_of(const conv_dims *d) {
  dw_grid g;
  g.hp = d->H + 2 * d->D, g.wp = d->W + 2 * d->D;
  g.p1 = g.hp - d->K + 1, g.q1 = g.wp - d->K + 1;
  g.span = (size_t)(g.p1 - 1) * g.wp + g.q1;
  return g;
}

/* Per-range buffers: a padded int8 plane (hp x wp, plus slack), an int8 plane of the output
 * gradient on the grid, padded again by K-1 for the input gradient, and an int32 plane. */
typedef struct {
  int8_t *xp, *gp;
  int32_t *acc;
  void *mem;
} dw_bufs;

static int bufs_get(const conv_dims *d, dw_bufs *b) {
  dw_grid g = grid_of(d);
  size_t px = (size_t)g.hp * g.wp + 64, pg = (size_t)(g.p1 + 2 * (d->K - 1)) * (g.q1 + 2 * (d->K - 1)) + 64;
  size_t pa = (size_t)(d->H + d->K) * (g.wp + d->K) + 64;
  b->mem = malloc(px + pg + pa * sizeof(int32_t) + 64);
  if (!b->mem) return 0;
  b->acc = (int32_t *)b->mem, b->xp = (int8_t *)(b->acc + pa), b->gp = b->xp + px;
  return 1;
}

/* dst (rows x cols) = src (h x w) placed at (top, left) with stride `step` between its elements, zeros elsewhere */
static void place(int8_t *dst, int rows, int cols, const int8_t *src, int h, int w, int top, int left, int step) {
  memset(dst, 0, (size_t)rows * cols);
  for (int y = 0; y < h; y++) {
    int8_t *r = dst + (size_t)(top + y * step) * cols + left;
    if (step == 1) memcpy(r, src + (size_t)y * w, (size_t)w);
    else
      for (int x = 0; x < w; x++) r[x * step] = src[(size_t)y * w + x];
  }
}

typedef struct {
  const conv_dims *d;
  const mh_cpu_kernels *kt;
  const int8_t *x, *w, *dy;
  float *out, scale;
  const float *bias;
  int32_t *dw; /* per channel K*K */
  int accumulate;
} dw_job;

/* y plane t = n*C + c */
static void fwd_plane(const dw_job *j, dw_bufs *bp, long t) {
  const conv_dims *d = j->d;
  dw_grid g = grid_of(d);
  dw_bufs b = *bp;
  {
    int c = (int)(t % d->C);
    const int8_t *w = j->w + (size_t)c * d->K * d->K;
    place(b.xp, g.hp, g.wp, j->x + (size_t)t * d->H * d->W, d->H, d->W, d->D, d->D, 1);
    memset(b.acc, 0, sizeof(int32_t) * g.span);
    for (int kh = 0; kh < d->K; kh++)
      for (int kw = 0; kw < d->K; kw++) j->kt->mac_row_s8(b.acc, b.xp + (size_t)kh * g.wp + kw, (long)g.span, w[kh * d->K + kw]);
    float *y = j->out + (size_t)t * d->P * d->Q, bias = j->bias ? j->bias[c] : 0.f;
    for (int pp = 0; pp < d->P; pp++) {
      const int32_t *a = b.acc + (size_t)pp * d->S * g.wp;
      for (int q = 0; q < d->Q; q++) y[(size_t)pp * d->Q + q] = (float)a[(size_t)q * d->S] * j->scale + bias;
    }
  }
}

/* dx planes t = n*C + c: the stride-1 input gradient of the output gradient on the grid, i.e. the
 * grid gradient padded by K-1 around, against the flipped kernel */
static void bwd_data_plane(const dw_job *j, dw_bufs *bp, long t) {
  const conv_dims *d = j->d;
  dw_grid g = grid_of(d);
  dw_bufs b = *bp;
  int gr = g.p1 + 2 * (d->K - 1), gc = g.q1 + 2 * (d->K - 1); /* = hp + K - 1, wp + K - 1 */
  size_t span = (size_t)(g.hp - 1) * gc + g.wp;                /* the padded input plane, rows gc wide */
  {
    int c = (int)(t % d->C);
    const int8_t *w = j->w + (size_t)c * d->K * d->K;
    place(b.gp, gr, gc, j->dy + (size_t)t * d->P * d->Q, d->P, d->Q, d->K - 1, d->K - 1, d->S);
    memset(b.acc, 0, sizeof(int32_t) * span);
    for (int kh = 0; kh < d->K; kh++)
      for (int kw = 0; kw < d->K; kw++)
        j->kt->mac_row_s8(b.acc, b.gp + (size_t)kh * gc + kw, (long)span, w[(d->K - 1 - kh) * d->K + d->K - 1 - kw]);
    /* acc holds the gradient of the padded plane (hp x wp, rows gc wide): keep the unpadded part */
    float *dx = j->out + (size_t)t * d->H * d->W;
    for (int y = 0; y < d->H; y++) {
      const int32_t *a = b.acc + (size_t)(y + d->D) * gc + d->D;
      float *o = dx + (size_t)y * d->W;
      if (j->accumulate)
        for (int x = 0; x < d->W; x++) o[x] += (float)a[x] * j->scale;
      else
        for (int x = 0; x < d->W; x++) o[x] = (float)a[x] * j->scale;
    }
  }
}

/* dW for channels [lo, hi): per tap, the dot product of the grid gradient with the padded input */
static void bwd_weight_channel(const dw_job *j, dw_bufs *bp, long c) {
  const conv_dims *d = j->d;
  dw_grid g = grid_of(d);
  dw_bufs b = *bp;
  {
    int32_t *w = j->dw + (size_t)c * d->K * d->K;
    memset(w, 0, sizeof(int32_t) * d->K * d->K);
    for (int n = 0; n < d->N; n++) {
      size_t t = (size_t)n * d->C + c;
      place(b.xp, g.hp, g.wp, j->x + t * d->H * d->W, d->H, d->W, d->D, d->D, 1);
      place(b.gp, g.p1, g.wp, j->dy + t * d->P * d->Q, d->P, d->Q, 0, 0, d->S);
      for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) w[kh * d->K + kw] += j->kt->dot_s8(b.gp, b.xp + (size_t)kh * g.wp + kw, (long)g.span);
    }
  }
}

/* ---- by rows, without buffers: the fallback when a range cannot allocate its planes ---- */
static void fwd_rows(const dw_job *j, long t) {
  const conv_dims *d = j->d;
  int c = (int)(t % d->C);
  const int8_t *x = j->x + (size_t)t * d->H * d->W, *w = j->w + (size_t)c * d->K * d->K;
  float *y = j->out + (size_t)t * d->P * d->Q, bias = j->bias ? j->bias[c] : 0.f;
  for (int pp = 0; pp < d->P; pp++)
    for (int q = 0; q < d->Q; q++) {
      int32_t s = 0;
      for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
          int ih = pp * d->S - d->D + kh, iw = q * d->S - d->D + kw;
          if (ih >= 0 && ih < d->H && iw >= 0 && iw < d->W) s += x[(size_t)ih * d->W + iw] * w[kh * d->K + kw];
        }
      y[(size_t)pp * d->Q + q] = (float)s * j->scale + bias;
    }
}

static void bwd_data_rows(const dw_job *j, long t) {
  const conv_dims *d = j->d;
  int c = (int)(t % d->C);
  const int8_t *gq = j->dy + (size_t)t * d->P * d->Q, *w = j->w + (size_t)c * d->K * d->K;
  float *dx = j->out + (size_t)t * d->H * d->W;
  for (int ih = 0; ih < d->H; ih++)
    for (int iw = 0; iw < d->W; iw++) {
      int32_t s = 0;
      for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
          int a = ih + d->D - kh, e = iw + d->D - kw;
          if (a < 0 || e < 0 || a % d->S || e % d->S || a / d->S >= d->P || e / d->S >= d->Q) continue;
          s += gq[(size_t)(a / d->S) * d->Q + e / d->S] * w[kh * d->K + kw];
        }
      float *o = dx + (size_t)ih * d->W + iw;
      *o = j->accumulate ? *o + (float)s * j->scale : (float)s * j->scale;
    }
}

static void bwd_weight_rows(const dw_job *j, long c) {
  const conv_dims *d = j->d;
  for (int kh = 0; kh < d->K; kh++)
    for (int kw = 0; kw < d->K; kw++) {
      int32_t s = 0;
      for (int n = 0; n < d->N; n++) {
        size_t t = (size_t)n * d->C + c;
        for (int pp = 0; pp < d->P; pp++)
          for (int q = 0; q < d->Q; q++) {
            int ih = pp * d->S - d->D + kh, iw = q * d->S - d->D + kw;
            if (ih >= 0 && ih < d->H && iw >= 0 && iw < d->W)
              s += j->dy[t * d->P * d->Q + (size_t)pp * d->Q + q] * j->x[t * d->H * d->W + (size_t)ih * d->W + iw];
          }
      }
      j->dw[((size_t)c * d->K + kh) * d->K + kw] = s;
    }
}

/* Runs per-item work over [0, n) on the pool, one buffer set per task; without memory for the
 * buffers (allocated before any output is touched) every item goes through the rows fallback. */
typedef void (*item_fn)(const dw_job *j, dw_bufs *b, long i);
typedef void (*rows_fn)(const dw_job *j, long i);
typedef struct {
  const dw_job *j;
  dw_bufs *b;
  long n;
  int parts;
  item_fn fn;
} run_job;

static void run_task(void *p, int task, int thread) {
  const run_job *r = p;
  long lo, hi;
  mh_split_range(r->n, r->parts, task, &lo, &hi);
  for (long i = lo; i < hi; i++) r->fn(r->j, &r->b[task], i);
}

static void run(mh_pool *pool, const dw_job *j, long n, item_fn fn, rows_fn slow) {
  int parts = mh_pool_size(pool) * 2;
  if (parts > n) parts = (int)n;
  if (parts > 64) parts = 64;
  dw_bufs b[64];
  int got = 0;
  while (got < parts && bufs_get(j->d, &b[got])) got++;
  if (got == parts) {
    run_job r = {j, b, n, parts, fn};
    mh_pool_run(pool, parts, run_task, &r);
  } else {
    for (long i = 0; i < n; i++) slow(j, i);
  }
  for (int i = 0; i < got; i++) free(b[i].mem);
}

void mh__conv_s8_depthwise_forward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq, float scale,
                                   const float *bias) {
  dw_job j = {d, ctx->kt, xq, wq, NULL, ctx->y, scale, bias, NULL, 0};
  run(ctx->pool, &j, (long)d->N * d->C, fwd_plane, fwd_rows);
}

void mh__conv_s8_depthwise_backward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq,
                                    const int8_t *dyq, float dx_scale, int32_t *dwacc, unsigned parts) {
  if (parts & MH_PASS_BWD_W) {
    dw_job j = {d, ctx->kt, xq, NULL, dyq, NULL, 0.f, NULL, dwacc, 0};
    run(ctx->pool, &j, d->C, bwd_weight_channel, bwd_weight_rows);
  }
  if (parts & MH_PASS_BWD_D) {
    dw_job j = {d, ctx->kt, NULL, wq, dyq, ctx->dx[0], dx_scale, NULL, NULL, ctx->dx_accumulate[0]};
    run(ctx->pool, &j, (long)d->N * d->C, bwd_data_plane, bwd_data_rows);
  }
}
