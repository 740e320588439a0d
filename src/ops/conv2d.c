/* conv2d forward and backward (data and weight) in FP32: implicit-im2col packed GEMM for dense and
 * grouped convolutions (backward-data as a transposed convolution when stride is 1), direct loops for depthwise, and naive 7-loop oracles used when ctx->reference is set. */
#include <stdint.h>
#include <string.h>

#include "ops/conv2d_common.h"


conv_dims mh__conv_dims_of(const mh_graph *g, const mh_node *nd, int n) {
  const mh_node *in = &g->nodes[nd->in[0]];
  conv_dims d = {n, in->c, in->h, in->w, nd->c, nd->h, nd->w, nd->groups, 0, 0, nd->k, nd->stride, nd->pad};
  d.Cg = d.C / d.G;
  d.Og = d.O / d.G;
  return d;
}

static conv_dims dims_of(const mh_op_ctx *ctx) { return mh__conv_dims_of(ctx->g, ctx->node, ctx->n); }

static int is_depthwise(const conv_dims *d) { return d->G > 1 && d->Cg == 1 && d->Og == 1; }
static int is_pointwise(const conv_dims *d) { return d->K == 1 && d->S == 1 && d->D == 0; }

/* ---- oracle: direct loops ------------------------------------------------------------ */
static void conv_fwd_ref(const conv_dims *d, const float *x, const float *w, const float *b, float *y) {
  for (int n = 0; n < d->N; n++)
    for (int o = 0; o < d->O; o++) {
      int g = o / d->Og;
      for (int p = 0; p < d->P; p++)
        for (int q = 0; q < d->Q; q++) {
          double s = b ? b[o] : 0;
          for (int c = 0; c < d->Cg; c++)
            for (int kh = 0; kh < d->K; kh++)
              for (int kw = 0; kw < d->K; kw++) {
                int ih = p * d->S - d->D + kh, iw = q * d->S - d->D + kw;
                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                s += (double)x[(((size_t)n * d->C + g * d->Cg + c) * d->H + ih) * d->W + iw] *
                     w[(((size_t)o * d->Cg + c) * d->K + kh) * d->K + kw];
              }
          y[(((size_t)n * d->O + o) * d->P + p) * d->Q + q] = (float)s;
        }
    }
}

static void conv_bwd_ref(const conv_dims *d, const float *x, const float *w, const float *dy, float *dx, int dx_acc,
                         float *dw, float *db) {
  size_t wn = (size_t)d->O * d->Cg * d->K * d->K;
  memset(dw, 0, wn * sizeof(float));
  if (db) memset(db, 0, (size_t)d->O * sizeof(float));
  if (dx && !dx_acc) memset(dx, 0, (size_t)d->N * d->C * d->H * d->W * sizeof(float));
  for (int n = 0; n < d->N; n++)
    for (int o = 0; o < d->O; o++) {
      int g = o / d->Og;
      for (int p = 0; p < d->P; p++)
        for (int q = 0; q < d->Q; q++) {
          float gy = dy[(((size_t)n * d->O + o) * d->P + p) * d->Q + q];
          if (db) db[o] += gy;
          for (int c = 0; c < d->Cg; c++)
            for (int kh = 0; kh < d->K; kh++)
              for (int kw = 0; kw < d->K; kw++) {
                int ih = p * d->S - d->D + kh, iw = q * d->S - d->D + kw;
                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                size_t xi = (((size_t)n * d->C + g * d->Cg + c) * d->H + ih) * d->W + iw;
                size_t wi = (((size_t)o * d->Cg + c) * d->K + kh) * d->K + kw;
                dw[wi] += gy * x[xi];
                if (dx) dx[xi] += gy * w[wi];
              }
        }
    }
}

/* ---- explicit im2col (weight gradient) and col2im (strided backward-data) --------------------- */
/* col (Cg*K*K rows, nb*P*Q columns): row (c, kh, kw), column (sample s, p, q). */
typedef struct {
  const conv_dims *d;
  const float *x; /* (N, C, H, W) */
  float *col;
  int n0, nb, g;
} im2col_job;

static void im2col_rows(void *p, long lo, long hi) {
  const im2col_job *j = p;
  const conv_dims *d = j->d;
  size_t cols = (size_t)j->nb * d->P * d->Q;
  for (long r = lo; r < hi; r++) {
    int c = (int)(r / (d->K * d->K)), kh = (int)(r / d->K % d->K), kw = (int)(r % d->K);
    float *dst = j->col + (size_t)r * cols;
    for (int s = 0; s < j->nb; s++) {
      const float *plane = j->x + (((size_t)(j->n0 + s) * d->C) + j->g * d->Cg + c) * d->H * d->W;
      for (int p = 0; p < d->P; p++) {
        int ih = p * d->S - d->D + kh;
        float *out = dst + ((size_t)s * d->P + p) * d->Q;
        if (ih < 0 || ih >= d->H) {
          memset(out, 0, sizeof(float) * d->Q);
          continue;
        }
        const float *row = plane + (size_t)ih * d->W;
        if (d->S == 1) {
          /* valid q: 0 <= q - D + kw < W */
          int q0 = d->D - kw > 0 ? d->D - kw : 0, q1 = d->W + d->D - kw < d->Q ? d->W + d->D - kw : d->Q;
          for (int q = 0; q < q0; q++) out[q] = 0.f;
          if (q1 > q0) memcpy(out + q0, row + q0 - d->D + kw, sizeof(float) * (q1 - q0));
          for (int q = q1 > q0 ? q1 : q0; q < d->Q; q++) out[q] = 0.f;
        } else {
          for (int q = 0; q < d->Q; q++) {
            int iw = q * d->S - d->D + kw;
            out[q] = iw >= 0 && iw < d->W ? row[iw] : 0.f;
          }
        }
      }
    }
  }
}

/* dx (+)= col2im(dcol): each (c) input plane is owned by one range, so this is race-free. */
typedef struct {
  const conv_dims *d;
  const float *dcol;
  float *dx;
  int n0, nb, g, accumulate;
} col2im_job;

static void col2im_planes(void *p, long lo, long hi) {
  const col2im_job *j = p;
  const conv_dims *d = j->d;
  size_t cols = (size_t)j->nb * d->P * d->Q;
  for (long t = lo; t < hi; t++) {
    int s = (int)(t / d->Cg), c = (int)(t % d->Cg);
    float *plane = j->dx + (((size_t)(j->n0 + s) * d->C) + j->g * d->Cg + c) * d->H * d->W;
    if (!j->accumulate) memset(plane, 0, sizeof(float) * d->H * d->W);
    for (int kh = 0; kh < d->K; kh++)
      for (int kw = 0; kw < d->K; kw++) {
        const float *src = j->dcol + ((size_t)(c * d->K + kh) * d->K + kw) * cols + (size_t)s * d->P * d->Q;
        for (int p = 0; p < d->P; p++) {
          int ih = p * d->S - d->D + kh;
          if (ih < 0 || ih >= d->H) continue;
          float *row = plane + (size_t)ih * d->W;
          const float *in = src + (size_t)p * d->Q;
          /* valid q: 0 <= q*S - D + kw < W, found once per row instead of tested per element */
          int q0 = 0, q1 = d->Q;
          while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
          while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
          if (d->S == 1) {
            float *r = row - d->D + kw;
            for (int q = q0; q < q1; q++) r[q] += in[q];
          } else {
            for (int q = q0; q < q1; q++) row[q * d->S - d->D + kw] += in[q];
          }
        }
      }
  }
}

/* ---- implicit im2col: pack GEMM B panels straight from the image ------------------------------
 * An element of the column matrix is x at (sample, channel, h, w) = (position part) + (kernel part):
 * kernel index k = (c, kh, kw) contributes c*H*W + kh*W + kw and (kh, kw); column index
 * j = (s, p, q) contributes the sample/group plane offset + (p*S-D)*W + (q*S-D) and (p*S-D, q*S-D).
 * The value is 0 where h or w fall in the padding. B = col: rows k, columns j. */
typedef struct {
  long off;
  int h, w;
} col_part;

typedef struct {
  const conv_dims *d;
  const float *x;
  int n0, g;
} im2col_view;

static col_part kernel_part(const conv_dims *d, int k) {
  int c = k / (d->K * d->K), kh = k / d->K % d->K, kw = k % d->K;
  col_part r = {(long)c * d->H * d->W + (long)kh * d->W + kw, kh, kw};
  return r;
}

static col_part position_part(const im2col_view *v, int j) {
  const conv_dims *d = v->d;
  int pq = d->P * d->Q, s = j / pq, p = j % pq / d->Q, q = j % d->Q;
  int h = p * d->S - d->D, w = q * d->S - d->D;
  col_part r = {((long)(v->n0 + s) * d->C + (long)v->g * d->Cg) * d->H * d->W + (long)h * d->W + w, h, w};
  return r;
}

static void pack_b_im2col(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst) {
  const im2col_view *v = ctx;
  const conv_dims *d = v->d;
  col_part cols[512], rows[256];
  if (nc > 512 || kc > 256) { /* the GEMM driver's blocks never exceed these; split defensively */
    if (kc > 256) {
      /* rows [p0, p0+256) then the rest, into the same panels: pack both halves via a temporary */
      for (int jp = 0; jp < nc; jp += 512)
        for (int pp = 0; pp < kc; pp++) {
          float tmp[32];
          int w = nc - jp < 512 ? nc - jp : 512;
          for (int q = 0; q < w; q += nr) {
            pack_b_im2col(ctx, p0 + pp, 1, j0 + jp + q, w - q < nr ? w - q : nr, nr, tmp);
            memcpy(dst + (size_t)(jp + q) * kc + (size_t)pp * nr, tmp, sizeof(float) * nr);
          }
        }
      return;
    }
    for (int jp = 0; jp < nc; jp += 512)
      pack_b_im2col(ctx, p0, kc, j0 + jp, nc - jp < 512 ? nc - jp : 512, nr, dst + (size_t)jp * kc);
    return;
  }
  for (int jj = 0; jj < nc; jj++) cols[jj] = position_part(v, j0 + jj);
  for (int kk = 0; kk < kc; kk++) rows[kk] = kernel_part(d, p0 + kk);
  for (int jp = 0; jp < nc; jp += nr) {
    int width = nc - jp < nr ? nc - jp : nr;
    float *panel = dst + (size_t)jp * kc;
    const col_part *cp = cols + jp;
    /* Split the panel's columns into segments that walk one output row (same h, w and offset
     * advancing by the stride): within a segment the valid part is one strided run of x. */
    int seg_start[33], nseg = 0;
    for (int t = 0; t < width; t++)
      if (t == 0 || cp[t].h != cp[t - 1].h || cp[t].w != cp[t - 1].w + d->S || cp[t].off != cp[t - 1].off + d->S)
        seg_start[nseg++] = t;
    seg_start[nseg] = width;
    for (int kk = 0; kk < kc; kk++) {
      col_part r = rows[kk];
      float *out = panel + (size_t)kk * nr;
      for (int sg = 0; sg < nseg; sg++) {
        int t0 = seg_start[sg], len = seg_start[sg + 1] - t0;
        int h = r.h + cp[t0].h, w0 = r.w + cp[t0].w;
        /* valid t in [lo, hi): 0 <= w0 + t*S < W (no division on the common stride 1) */
        int lo, hi;
        if (d->S == 1) {
          lo = w0 < 0 ? -w0 : 0;
          hi = d->W - w0;
        } else {
          lo = w0 < 0 ? (-w0 + d->S - 1) / d->S : 0;
          hi = w0 < d->W ? (d->W - w0 + d->S - 1) / d->S : 0;
        }
        if (hi > len) hi = len;
        if ((unsigned)h >= (unsigned)d->H || hi <= lo) lo = hi = 0;
        float *o = out + t0;
        const float *src = v->x + r.off + cp[t0].off;
        for (int t = 0; t < lo; t++) o[t] = 0.f;
        if (d->S == 1)
          for (int t = lo; t < hi; t++) o[t] = src[t];
        else
          for (int t = lo; t < hi; t++) o[t] = src[(long)t * d->S];
        for (int t = hi > lo ? hi : lo; t < len; t++) o[t] = 0.f;
      }
      for (int t = width; t < nr; t++) out[t] = 0.f;
    }
  }
}

/* Samples per GEMM: enough columns (>= 512) and enough work (>= 4M MACs) per call that packing and
 * thread hand-off stay small next to the multiply; tiny convolutions (lenet5) batch everything. */
static int chunk_samples(const conv_dims *d) {
  long pq = (long)d->P * d->Q, per_sample = (long)d->Og * d->Cg * d->K * d->K * pq;
  long nb_cols = (512 + pq - 1) / pq, nb_work = ((4L << 20) + per_sample - 1) / (per_sample > 0 ? per_sample : 1);
  long nb = nb_cols > nb_work ? nb_cols : nb_work;
  return nb < 1 ? 1 : nb > d->N ? d->N : (int)nb;
}

/* Floats of the (channels x columns) buffer that gathers chunked outputs/gradients, forward and
 * for the transposed (backward-data) convolution. */
static size_t gathered_floats(const conv_dims *d) {
  conv_dims t = {d->N, d->O, d->P, d->Q, d->C, d->H, d->W, d->G, d->Og, d->Cg, d->K, 1, 0};
  size_t a = (size_t)d->O * chunk_samples(d) * d->P * d->Q, b = (size_t)d->C * chunk_samples(&t) * d->H * d->W;
  return a > b ? a : b;
}

static int use_padded_grid(const conv_dims *d);
static size_t padded_floats(const conv_dims *d, int nb);

/* The backward's weight region: flipped weights (O x kk), or W^T packed with kk rows rounded up. */
static size_t wt_floats(const conv_dims *d) { return (size_t)d->O * (d->Cg * d->K * d->K + 16) + 16; }

/* One group's weights packed for the GEMM (rows rounded up to any micro-tile height <= 16). */
static size_t packed_w_floats(const conv_dims *d) { return (size_t)(d->Og + 16) * d->Cg * d->K * d->K + 16; }
static int padded_chunk(const conv_dims *d);

static size_t conv_scratch_floats(const mh_graph *g, const mh_node *nd, int n, int precision) {
  conv_dims d = mh__conv_dims_of(g, nd, n);
  if (is_depthwise(&d)) return 0;
  size_t cols = (size_t)chunk_samples(&d) * d.P * d.Q, kk = (size_t)d.Cg * d.K * d.K;
  /* [flipped weights (O x kk) | the larger of: col + dcol (kk x cols) + gathered outputs/gradients
   * (backward), or a padded-grid forward of this conv or of its transposed (backward-data) conv] */
  size_t body = 2 * kk * cols + gathered_floats(&d), fwd = packed_w_floats(&d) + gathered_floats(&d);
  if (fwd > body) body = fwd;
  conv_dims t = {n, d.O, d.P, d.Q, d.C, d.H, d.W, d.G, d.Og, d.Cg, d.K, 1, d.K - 1 - d.D};
  if (use_padded_grid(&d) && padded_floats(&d, padded_chunk(&d)) > body) body = padded_floats(&d, padded_chunk(&d));
  if (d.S == 1 && t.D >= 0 && use_padded_grid(&t) && padded_floats(&t, padded_chunk(&t)) > body)
    body = padded_floats(&t, padded_chunk(&t));
  if (d.S == 1 && t.D >= 0 && packed_w_floats(&t) + gathered_floats(&d) > body) body = packed_w_floats(&t) + gathered_floats(&d);
  return wt_floats(&d) + body + 64;
}

/* ---- depthwise: direct loops -------------------------------------------------------------- */
typedef struct {
  const conv_dims *d;
  const float *x, *w, *b, *dy;
  float *y, *dx, *dw, *db;
  int dx_acc;
} dw_job;

/* out[p][q] += sum_k in[p*S-D+kh][q*S-D+kw] * w[kh][kw] over one plane. */
static void dw_plane_fwd(const conv_dims *d, const float *in, const float *w, float *out) {
  for (int kh = 0; kh < d->K; kh++)
    for (int kw = 0; kw < d->K; kw++) {
      float wv = w[kh * d->K + kw];
      int q0 = 0, q1 = d->Q;
      while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
      while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
      for (int p = 0; p < d->P; p++) {
        int ih = p * d->S - d->D + kh;
        if (ih < 0 || ih >= d->H) continue;
        const float *row = in + (size_t)ih * d->W + (q0 * d->S - d->D + kw);
        float *o = out + (size_t)p * d->Q;
        if (d->S == 1)
          for (int q = q0; q < q1; q++) o[q] += row[q - q0] * wv;
        else
          for (int q = q0; q < q1; q++) o[q] += row[(size_t)(q - q0) * d->S] * wv;
      }
    }
}

static void dw_fwd_planes(void *p, long lo, long hi) {
  const dw_job *j = p;
  const conv_dims *d = j->d;
  for (long t = lo; t < hi; t++) {
    int c = (int)(t % d->C);
    float *out = j->y + (size_t)t * d->P * d->Q;
    float bv = j->b ? j->b[c] : 0.f;
    for (int i = 0; i < d->P * d->Q; i++) out[i] = bv;
    dw_plane_fwd(d, j->x + (size_t)t * d->H * d->W, j->w + (size_t)c * d->K * d->K, out);
  }
}

static void dw_bwd_data_planes(void *p, long lo, long hi) {
  const dw_job *j = p;
  const conv_dims *d = j->d;
  for (long t = lo; t < hi; t++) {
    int c = (int)(t % d->C);
    float *dxp = j->dx + (size_t)t * d->H * d->W;
    const float *dyp = j->dy + (size_t)t * d->P * d->Q, *w = j->w + (size_t)c * d->K * d->K;
    if (!j->dx_acc) memset(dxp, 0, sizeof(float) * d->H * d->W);
    for (int kh = 0; kh < d->K; kh++)
      for (int kw = 0; kw < d->K; kw++) {
        float wv = w[kh * d->K + kw];
        int q0 = 0, q1 = d->Q;
        while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
        while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
        for (int pp = 0; pp < d->P; pp++) {
          int ih = pp * d->S - d->D + kh;
          if (ih < 0 || ih >= d->H) continue;
          float *row = dxp + (size_t)ih * d->W + (q0 * d->S - d->D + kw);
          const float *g = dyp + (size_t)pp * d->Q;
          if (d->S == 1)
            for (int q = q0; q < q1; q++) row[q - q0] += g[q] * wv;
          else
            for (int q = q0; q < q1; q++) row[(size_t)(q - q0) * d->S] += g[q] * wv;
        }
      }
  }
}

/* dw[c] and db[c] sum over the batch; each channel belongs to one range (deterministic). */
static void dw_bwd_weight_channels(void *p, long lo, long hi) {
  const dw_job *j = p;
  const conv_dims *d = j->d;
  for (long c = lo; c < hi; c++) {
    float *w = j->dw + (size_t)c * d->K * d->K;
    double bsum = 0;
    for (int i = 0; i < d->K * d->K; i++) w[i] = 0.f;
    for (int n = 0; n < d->N; n++) {
      size_t t = (size_t)n * d->C + c;
      const float *in = j->x + t * d->H * d->W, *g = j->dy + t * d->P * d->Q;
      for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
          int q0 = 0, q1 = d->Q;
          while (q0 < q1 && q0 * d->S - d->D + kw < 0) q0++;
          while (q1 > q0 && (q1 - 1) * d->S - d->D + kw >= d->W) q1--;
          float s = 0.f;
          for (int pp = 0; pp < d->P; pp++) {
            int ih = pp * d->S - d->D + kh;
            if (ih < 0 || ih >= d->H) continue;
            const float *row = in + (size_t)ih * d->W + (q0 * d->S - d->D + kw), *gr = g + (size_t)pp * d->Q;
            if (d->S == 1)
              for (int q = q0; q < q1; q++) s += row[q - q0] * gr[q];
            else
              for (int q = q0; q < q1; q++) s += row[(size_t)(q - q0) * d->S] * gr[q];
          }
          w[kh * d->K + kw] += s;
        }
      if (j->db)
        for (int i = 0; i < d->P * d->Q; i++) bsum += g[i];
    }
    if (j->db) j->db[c] = (float)bsum;
  }
}

/* ---- stride 1 on a padded grid: im2col rows become contiguous copies ---------------------------
 * With the input zero-padded to Hp x Wp and the output computed on Wp-wide rows (the last K-1
 * columns of each row are garbage and dropped), the column element (c, kh, kw) x (p, q') is
 * xp[c][p + kh][q' + kw] = xp_flat[c*Hp*Wp + kh*Wp + kw + (p*Wp + q')]: every row of the column
 * matrix is a contiguous run of the padded plane, so packing is a plain copy. Worth it when the
 * wasted columns are few: Wp <= 1.25 Q. */
static int use_padded_grid(const conv_dims *d) {
  return d->S == 1 && d->K > 1 && (long)(d->W + 2 * d->D) * 4 <= (long)d->Q * 5;
}

typedef struct {
  const float *xp;   /* cnt samples x Cg x Hp x Wp, plus K slack floats */
  const long *row;   /* per kernel index k = (c, kh, kw): c*Hp*Wp + kh*Wp + kw */
  long sample_stride; /* Cg*Hp*Wp */
  int cols_per_sample; /* P*Wp */
} padded_view;

static void pack_b_padded(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst) {
  const padded_view *v = ctx;
  for (int jp = 0; jp < nc; jp += nr) {
    int width = nc - jp < nr ? nc - jp : nr, j = j0 + jp;
    int s = j / v->cols_per_sample, local = j - s * v->cols_per_sample;
    int run = v->cols_per_sample - local < width ? v->cols_per_sample - local : width; /* up to a sample edge */
    const float *base0 = v->xp + s * v->sample_stride + local, *base1 = v->xp + (s + 1) * v->sample_stride;
    float *panel = dst + (size_t)jp * kc;
    for (int kk = 0; kk < kc; kk++) {
      float *out = panel + (size_t)kk * nr;
      const float *src = base0 + v->row[p0 + kk];
      if (run == 16 && nr == 16) { /* the AVX2 panel width: a fixed-size copy the compiler inlines */
        for (int t = 0; t < 16; t++) out[t] = src[t];
        continue;
      }
      if (run == 32 && nr == 32) { /* the AVX-512 panel width */
        for (int t = 0; t < 32; t++) out[t] = src[t];
        continue;
      }
      for (int t = 0; t < run; t++) out[t] = src[t];
      const float *src1 = base1 + v->row[p0 + kk];
      for (int t = run; t < width; t++) out[t] = src1[t - run];
      for (int t = width; t < nr; t++) out[t] = 0.f;
    }
  }
}

static size_t padded_floats(const conv_dims *d, int nb) {
  size_t hp = (size_t)d->H + 2 * d->D, wp = (size_t)d->W + 2 * d->D;
  /* packed weights + padded input + its row table + the Wp-wide output block */
  return packed_w_floats(d) + (size_t)nb * d->Cg * hp * wp + d->K + 16 + 16 + ((size_t)d->Cg * d->K * d->K * sizeof(long) + 3) / 4 +
         (size_t)d->Og * nb * d->P * wp + 64;
}

static int padded_chunk(const conv_dims *d) {
  long pw = (long)d->P * (d->W + 2 * d->D), per_sample = (long)d->Og * d->Cg * d->K * d->K * pw;
  long nb_cols = (512 + pw - 1) / pw, nb_work = ((4L << 20) + per_sample - 1) / (per_sample > 0 ? per_sample : 1);
  long nb = nb_cols > nb_work ? nb_cols : nb_work;
  return nb < 1 ? 1 : nb > d->N ? d->N : (int)nb;
}

static void conv_gemm_forward_padded(const mh_op_ctx *ctx, const conv_dims *d, const float *x, const float *w,
                                     float *y, int accumulate, float *scratch) {
  int nb = padded_chunk(d), kk = d->Cg * d->K * d->K, Hp = d->H + 2 * d->D, Wp = d->W + 2 * d->D;
  long plane = (long)Hp * Wp, sample_stride = (long)d->Cg * plane;
  int cps = d->P * Wp;
  /* [packed weights of one group | padded input | row table | Wp-wide output block] */
  float *apk = scratch, *xp = apk + packed_w_floats(d);
  /* the row table starts on a 64-byte boundary (a long needs 8) */
  long *row = (long *)(((uintptr_t)(xp + (size_t)nb * sample_stride + d->K + 16) + 63) & ~(uintptr_t)63);
  float *cbuf = (float *)(row + kk) + 16;
  for (int k = 0; k < kk; k++) {
    int c = k / (d->K * d->K), kh = k / d->K % d->K, kw = k % d->K;
    row[k] = c * plane + (long)kh * Wp + kw;
  }
  for (int g = 0; g < d->G; g++) {
    mh_gemm_f32_args wa = {d->Og, 0, kk, w + (size_t)g * d->Og * kk, kk, 0};
    mh_gemm_f32_pack_a(ctx->kt, &wa, apk); /* once per call, shared by every chunk */
    for (int n0 = 0; n0 < d->N; n0 += nb) {
      int cnt = d->N - n0 < nb ? d->N - n0 : nb, cols = cnt * cps;
      /* the padded input of this chunk and group, zero border; K floats of slack stay zero */
      memset(xp, 0, sizeof(float) * ((size_t)cnt * sample_stride + d->K + 16));
      for (int sm = 0; sm < cnt; sm++)
        for (int c = 0; c < d->Cg; c++) {
          const float *src = x + (((size_t)(n0 + sm) * d->C) + g * d->Cg + c) * d->H * d->W;
          float *dst = xp + sm * sample_stride + c * plane + (long)d->D * Wp + d->D;
          for (int h = 0; h < d->H; h++) memcpy(dst + (long)h * Wp, src + (long)h * d->W, sizeof(float) * d->W);
        }
      padded_view view = {xp, row, sample_stride, cps};
      mh_gemm_f32_args ga = {d->Og, cols, kk, w + (size_t)g * d->Og * kk, kk, 0, NULL, cols, 0, cbuf, cols, 0};
      ga.pack_b = pack_b_padded;
      ga.pack_b_ctx = &view;
      ga.a_packed = apk;
      mh_gemm_f32(ctx->kt, ctx->pool, &ga);
      /* keep the first Q of every Wp-wide row */
      for (int sm = 0; sm < cnt; sm++)
        for (int o = 0; o < d->Og; o++)
          for (int p = 0; p < d->P; p++) {
            float *dst = y + (((size_t)(n0 + sm) * d->O + g * d->Og + o) * d->P + p) * d->Q;
            const float *src = cbuf + (size_t)o * cols + (size_t)sm * cps + (size_t)p * Wp;
            if (accumulate)
              for (int q = 0; q < d->Q; q++) dst[q] += src[q];
            else
              memcpy(dst, src, sizeof(float) * d->Q);
          }
    }
  }
}

/* ---- dense / grouped: implicit-im2col GEMM ------------------------------------------------------ */
/* y (+)= conv(x, w) without bias: per group, per chunk of samples, W_g (Og x kk) * col (kk x cols).
 * tmp holds (Og x cols) when a chunk has several samples (their planes are not contiguous in y). */
static void conv_gemm_forward(const mh_op_ctx *ctx, const conv_dims *d, const float *x, const float *w, float *y,
                              int accumulate, float *tmp) {
  if (use_padded_grid(d)) {
    conv_gemm_forward_padded(ctx, d, x, w, y, accumulate, tmp);
    return;
  }
  int nb = chunk_samples(d), kk = d->Cg * d->K * d->K, pq = d->P * d->Q;
  float *apk = tmp; /* [packed weights of one group | gathered output block] */
  tmp += packed_w_floats(d);
  for (int g = 0; g < d->G; g++) {
    mh_gemm_f32_args wa = {d->Og, 0, kk, w + (size_t)g * d->Og * kk, kk, 0};
    mh_gemm_f32_pack_a(ctx->kt, &wa, apk); /* once per call, shared by every chunk */
    for (int n0 = 0; n0 < d->N; n0 += nb) {
      int cnt = d->N - n0 < nb ? d->N - n0 : nb, cols = cnt * pq;
      im2col_view view = {d, x, n0, g};
      mh_gemm_f32_args ga = {d->Og, cols, kk, w + (size_t)g * d->Og * kk, kk, 0, NULL, cols, 0, NULL, cols, 0};
      ga.a_packed = apk;
      if (is_pointwise(d) && cnt == 1) {
        ga.b = x + ((size_t)n0 * d->C + g * d->Cg) * pq; /* a 1x1 conv reads its input as is */
      } else {
        ga.pack_b = pack_b_im2col;
        ga.pack_b_ctx = &view;
      }
      if (cnt == 1) {
        ga.c = y + ((size_t)n0 * d->O + g * d->Og) * pq;
        ga.accumulate = accumulate;
        mh_gemm_f32(ctx->kt, ctx->pool, &ga);
        continue;
      }
      ga.c = tmp;
      mh_gemm_f32(ctx->kt, ctx->pool, &ga);
      for (int s = 0; s < cnt; s++) /* scatter (Og, s, pq) -> y[n0+s][g*Og + o] */
        for (int o = 0; o < d->Og; o++) {
          float *dst = y + ((size_t)(n0 + s) * d->O + g * d->Og + o) * pq;
          const float *src = tmp + (size_t)o * cols + (size_t)s * pq;
          if (accumulate)
            for (int i = 0; i < pq; i++) dst[i] += src[i];
          else
            memcpy(dst, src, sizeof(float) * pq);
        }
    }
  }
}

static void conv_forward(mh_op_ctx *ctx) {
  conv_dims d = dims_of(ctx);
  const float *w = ctx->w, *b = ctx->node->bias ? ctx->w + (size_t)d.O * d.Cg * d.K * d.K : NULL;
  if (ctx->reference) {
    conv_fwd_ref(&d, ctx->x[0], w, b, ctx->y);
    return;
  }
  if (is_depthwise(&d)) {
    dw_job j = {&d, ctx->x[0], w, b, NULL, ctx->y, NULL, NULL, NULL, 0};
    mh_parallel_for(ctx->pool, (long)d.N * d.C, dw_fwd_planes, &j);
    return;
  }
  conv_gemm_forward(ctx, &d, ctx->x[0], w, ctx->y, 0, ctx->scratch);
  int pq = d.P * d.Q;
  if (b)
    for (int n = 0; n < d.N; n++)
      for (int o = 0; o < d.O; o++) {
        float *yp = ctx->y + ((size_t)n * d.O + o) * pq, bv = b[o];
        for (int i = 0; i < pq; i++) yp[i] += bv;
      }
}

/* Stride 1: dL/dx is the convolution of dL/dy with the kernel flipped in space and transposed in
 * channels, padding K-1-D (a "full" correlation), so it runs on the same implicit-GEMM path. */
/* Chosen when it packs no more than ~2x the column elements of the col2im path (which writes,
 * re-reads and scatters its column matrix): the transposed conv packs (O*K*K) x (H*W) per sample,
 * col2im handles (C*K*K) x (P*Q). A 3x3 "same" conv has equal sizes and saves the scatter pass;
 * lenet5's 5x5 valid conv would pack 2.6x more zeros of padding, so it takes col2im. */
static int bwd_data_as_conv(const conv_dims *d) {
  return d->S == 1 && d->D <= d->K - 1 && (long)d->O * d->H * d->W <= 2L * d->C * d->P * d->Q;
}

static void conv_bwd_data_transposed(mh_op_ctx *ctx, const conv_dims *d, float *wt, float *tmp) {
  /* wt[g][c][o][kh][kw] = w[g*Og + o][c][K-1-kh][K-1-kw] */
  int K = d->K;
  for (int g = 0; g < d->G; g++)
    for (int c = 0; c < d->Cg; c++)
      for (int o = 0; o < d->Og; o++)
        for (int kh = 0; kh < K; kh++)
          for (int kw = 0; kw < K; kw++)
            wt[((((size_t)g * d->Cg + c) * d->Og + o) * K + kh) * K + kw] =
                ctx->w[((((size_t)g * d->Og + o) * d->Cg + c) * K + (K - 1 - kh)) * K + (K - 1 - kw)];
  conv_dims t = {d->N, d->O, d->P, d->Q, d->C, d->H, d->W, d->G, d->Og, d->Cg, K, 1, K - 1 - d->D};
  conv_gemm_forward(ctx, &t, ctx->dy, wt, ctx->dx[0], ctx->dx_accumulate[0], tmp);
}

static void conv_backward(mh_op_ctx *ctx) {
  conv_dims d = dims_of(ctx);
  int kk = d.Cg * d.K * d.K, pq = d.P * d.Q;
  const float *w = ctx->w;
  float *dw = ctx->dw, *db = ctx->node->bias ? ctx->dw + (size_t)d.O * kk : NULL;
  if (ctx->reference) {
    conv_bwd_ref(&d, ctx->x[0], w, ctx->dy, ctx->dx[0], ctx->dx_accumulate[0], dw, db);
    return;
  }
  if (is_depthwise(&d)) {
    dw_job j = {&d, ctx->x[0], w, NULL, ctx->dy, NULL, ctx->dx[0], dw, db, ctx->dx_accumulate[0]};
    mh_parallel_for(ctx->pool, d.C, dw_bwd_weight_channels, &j);
    if (ctx->dx[0]) mh_parallel_for(ctx->pool, (long)d.N * d.C, dw_bwd_data_planes, &j);
    return;
  }
  int nb = chunk_samples(&d);
  size_t cols_max = (size_t)nb * pq;
  /* scratch: [flipped or packed weights | col (kk x cols) | dcol (kk x cols) | gathered dy]
   * (conv_scratch_floats) */
  float *wt = ctx->scratch, *col = wt + wt_floats(&d), *dcol = col + (size_t)kk * cols_max,
        *tmp = dcol + (size_t)kk * cols_max;
  int transposed_dx = ctx->dx[0] && bwd_data_as_conv(&d);
  /* col2im path, one group: W^T is packed once for every chunk's dcol GEMM */
  int packed_wt = ctx->dx[0] && !transposed_dx && d.G == 1;
  if (packed_wt) {
    mh_gemm_f32_args wa = {kk, 0, d.Og, w, kk, 1};
    mh_gemm_f32_pack_a(ctx->kt, &wa, wt);
  }
  for (int n0 = 0; n0 < d.N; n0 += nb) {
    int cnt = d.N - n0 < nb ? d.N - n0 : nb, cols = cnt * pq;
    int direct = is_pointwise(&d) && cnt == 1;
    for (int g = 0; g < d.G; g++) {
      /* the output gradient as (Og, cols) */
      const float *G = tmp;
      if (cnt == 1) {
        G = ctx->dy + ((size_t)n0 * d.O + g * d.Og) * pq;
      } else {
        for (int s = 0; s < cnt; s++)
          for (int o = 0; o < d.Og; o++)
            memcpy(tmp + (size_t)o * cols + (size_t)s * pq, ctx->dy + ((size_t)(n0 + s) * d.O + g * d.Og + o) * pq,
                   sizeof(float) * pq);
      }
      /* the input columns, materialised: the weight gradient reads them transposed */
      const float *B = col;
      if (direct) {
        B = ctx->x[0] + ((size_t)n0 * d.C + g * d.Cg) * pq;
      } else {
        im2col_job j = {&d, ctx->x[0], col, n0, cnt, g};
        mh_parallel_for(ctx->pool, kk, im2col_rows, &j);
      }
      /* dW_g (Og x kk) (+)= G (Og x cols) * col^T; chunks accumulate in a fixed order */
      mh_gemm_f32_args gw = {d.Og, kk, cols, G, cols, 0, B, cols, 1, dw + (size_t)g * d.Og * kk, kk, n0 > 0};
      mh_gemm_f32(ctx->kt, ctx->pool, &gw);
      if (!ctx->dx[0] || transposed_dx) continue;
      /* dcol (kk x cols) = W_g^T * G, then scatter-add into dx */
      float *D = direct ? ctx->dx[0] + ((size_t)n0 * d.C + g * d.Cg) * pq : dcol;
      mh_gemm_f32_args gd = {kk, cols, d.Og, w + (size_t)g * d.Og * kk, kk, 1, G, cols, 0, D, cols,
                             direct && ctx->dx_accumulate[0]};
      if (packed_wt) gd.a_packed = wt;
      mh_gemm_f32(ctx->kt, ctx->pool, &gd);
      if (!direct) {
        col2im_job j = {&d, dcol, ctx->dx[0], n0, cnt, g, ctx->dx_accumulate[0]};
        mh_parallel_for(ctx->pool, (long)cnt * d.Cg, col2im_planes, &j);
      }
    }
  }
  if (transposed_dx) conv_bwd_data_transposed(ctx, &d, wt, col); /* col.. is free again */
  if (db)
    for (int o = 0; o < d.O; o++) {
      double s = 0;
      for (int n = 0; n < d.N; n++) {
        const float *g = ctx->dy + ((size_t)n * d.O + o) * pq;
        for (int i = 0; i < pq; i++) s += g[i];
      }
      db[o] = (float)s;
    }
}

conv_dims mh__conv_dims(const mh_op_ctx *ctx) { return dims_of(ctx); }
int mh__conv_chunk_samples(const conv_dims *d) { return chunk_samples(d); }

const mh_op_impl mh_op_conv2d = {
    .save_input = 1,
    .scratch_floats = conv_scratch_floats,
    .forward = conv_forward,
    .backward = conv_backward,
};
