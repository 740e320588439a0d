/* Every op's backward against central finite differences of L = sum(y * r), on both the fast and
 * the oracle kernels, and fast-vs-oracle forward agreement. FP32 with eps = 1e-2 on inputs scaled
 * so that FD truncation error stays below the stated tolerance (2e-2 relative + 2e-3 absolute). */
#include <string.h>

#include "core/rng.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "testlib.h"

typedef struct {
  mh_graph g;
  int id;     /* node under test */
  int n;      /* batch */
  float *x[2], *y, *r, *dy, *dx[2], *w, *dw, *buf, *state, *scratch;
  size_t nx[2], ny, nw;
} harness;

static mh_pool *g_pool;
static mh_rng g_rng;

static float urand(void) { return mh_rng_uniform(&g_rng) * 2.f - 1.f; }

static void setup(harness *h, int id, int n) {
  h->id = id;
  h->n = n;
  const mh_node *nd = &h->g.nodes[id];
  for (int k = 0; k < nd->n_in; k++) {
    const mh_node *in = &h->g.nodes[nd->in[k]];
    h->nx[k] = (size_t)n * in->c * in->h * in->w;
    h->x[k] = malloc(h->nx[k] * 4);
    h->dx[k] = malloc(h->nx[k] * 4);
    for (size_t i = 0; i < h->nx[k]; i++) h->x[k][i] = urand();
    mh_op_type t = h->g.nodes[id].op;
    if (t == MH_OP_RELU || t == MH_OP_RELU6 || t == MH_OP_MAXPOOL) {
      /* Kinks (0, 6, ties of the max) closer than eps break finite differences: use distinct values
       * on a 0.1 grid offset by 0.05, shuffled, so every kink is >= 0.05 away. */
      size_t m = h->nx[k];
      for (size_t i = 0; i < m; i++) h->x[k][i] = ((float)i - (float)(m / 2)) * 0.1f + 0.05f;
      for (size_t i = m - 1; i > 0; i--) {
        size_t j = mh_rng_below(&g_rng, (uint32_t)(i + 1));
        float t2 = h->x[k][i];
        h->x[k][i] = h->x[k][j];
        h->x[k][j] = t2;
      }
    }
  }
  h->ny = (size_t)n * nd->c * nd->h * nd->w;
  h->y = malloc(h->ny * 4), h->r = malloc(h->ny * 4), h->dy = malloc(h->ny * 4);
  for (size_t i = 0; i < h->ny; i++) h->r[i] = h->dy[i] = urand();
  h->nw = 0;
  for (int p = 0; p < nd->n_params; p++) h->nw += h->g.params[nd->param0 + p].numel;
  h->w = malloc(h->nw * 4 + 4), h->dw = malloc(h->nw * 4 + 4);
  for (size_t i = 0; i < h->nw; i++) h->w[i] = urand();
  h->buf = calloc(4096, 4);
  h->state = calloc(4096, 4);
  const mh_op_impl *op = mh_op_impl_get(nd->op);
  size_t sc = op->scratch_floats ? op->scratch_floats(&h->g, nd, n, MH_PRECISION_FP32) : 0;
  h->scratch = malloc(sc * 4 + 64);
}

static void teardown(harness *h) {
  for (int k = 0; k < 2; k++) free(h->x[k]), free(h->dx[k]);
  free(h->y), free(h->r), free(h->dy), free(h->w), free(h->dw), free(h->buf), free(h->state), free(h->scratch);
  mh_graph_free(&h->g);
  memset(h, 0, sizeof *h);
}

static mh_op_ctx ctx_of(harness *h, int reference) {
  mh_op_ctx c;
  memset(&c, 0, sizeof c);
  c.g = &h->g, c.node = &h->g.nodes[h->id], c.n = h->n;
  c.x[0] = h->x[0], c.x[1] = h->x[1], c.y = h->y, c.dy = h->dy, c.dx[0] = h->dx[0], c.dx[1] = h->dx[1];
  c.w = h->w, c.dw = h->dw, c.buf = h->buf, c.state = h->state, c.scratch = h->scratch;
  c.training = 1, c.reference = reference, c.pool = g_pool, c.kt = mh_cpu_kernels_get(0);
  return c;
}

static double loss(harness *h, int reference) {
  mh_op_ctx c = ctx_of(h, reference);
  const mh_op_impl *op = mh_op_impl_get(c.node->op);
  if (op->alias_input) memcpy(h->y, h->x[0], h->ny * 4);
  op->forward(&c);
  double s = 0;
  for (size_t i = 0; i < h->ny; i++) s += (double)h->y[i] * h->r[i];
  return s;
}

/* Checks analytic d/dv against FD for up to `samples` entries of v. */
static void fd_check(harness *h, int reference, const char *what, float *v, const float *grad, size_t nv, int samples) {
  const float eps = 1e-2f;
  int bad = 0;
  for (int s = 0; s < samples && s < (int)nv; s++) {
    size_t i = nv <= (size_t)samples ? (size_t)s : mh_rng_below(&g_rng, (uint32_t)nv);
    float old = v[i];
    v[i] = old + eps;
    double lp = loss(h, reference);
    v[i] = old - eps;
    double lm = loss(h, reference);
    v[i] = old;
    double fd = (lp - lm) / (2 * eps), an = grad[i];
    if (fabs(fd - an) > 2e-3 + 2e-2 * fabs(fd)) {
      if (bad++ < 3)
        TL_FAIL("%s %s[%zu] (%s): analytic %.6g vs finite difference %.6g", mh_op_name(h->g.nodes[h->id].op), what, i,
                reference ? "oracle" : "fast", an, fd);
    }
    tl_checks++;
  }
}

static void check_node(harness *h, int n, const char *label) {
  for (int reference = 0; reference < 2; reference++) {
    loss(h, reference);
    mh_op_ctx c = ctx_of(h, reference);
    const mh_op_impl *op = mh_op_impl_get(c.node->op);
    /* backward with dy = r, i.e. dL/dy of L = sum(y*r) */
    memcpy(h->dy, h->r, h->ny * 4);
    op->backward(&c);
    /* copy analytic grads: fd_check re-runs forward which may overwrite state */
    float *gx[2] = {NULL, NULL}, *gw = malloc(h->nw * 4 + 4);
    memcpy(gw, h->dw, h->nw * 4);
    for (int k = 0; k < c.node->n_in; k++) {
      gx[k] = malloc(h->nx[k] * 4);
      memcpy(gx[k], h->dx[k], h->nx[k] * 4);
    }
    for (int k = 0; k < c.node->n_in; k++) fd_check(h, reference, k ? "x1" : "x0", h->x[k], gx[k], h->nx[k], 24);
    if (h->nw) fd_check(h, reference, "w", h->w, gw, h->nw, 24);
    /* accumulate mode adds exactly the same gradient on top */
    if (c.node->n_in == 1 && !op->alias_input) {
      float *acc = malloc(h->nx[0] * 4);
      for (size_t i = 0; i < h->nx[0]; i++) acc[i] = 1.f;
      loss(h, reference);
      mh_op_ctx c2 = ctx_of(h, reference);
      c2.dx[0] = acc, c2.dx_accumulate[0] = 1;
      op->backward(&c2);
      int ok = 1;
      for (size_t i = 0; i < h->nx[0]; i++)
        if (fabsf(acc[i] - (1.f + gx[0][i])) > 1e-5f * (1 + fabsf(gx[0][i]))) ok = 0;
      if (!ok) TL_FAIL("%s: accumulate mode differs from 1 + overwrite mode", label);
      tl_checks++;
      free(acc);
    }
    free(gw), free(gx[0]), free(gx[1]);
  }
  /* fast and oracle forwards agree */
  loss(h, 1);
  float *yr = malloc(h->ny * 4);
  memcpy(yr, h->y, h->ny * 4);
  loss(h, 0);
  double maxe = 0;
  for (size_t i = 0; i < h->ny; i++) maxe = fmax(maxe, fabs((double)yr[i] - h->y[i]));
  if (maxe > 1e-4) TL_FAIL("%s: fast vs oracle forward differ by %g", label, maxe);
  tl_checks++;
  free(yr);
  (void)n;
}

#define BUILD(c, hh, ww, expr)                           \
  do {                                                   \
    harness h;                                           \
    memset(&h, 0, sizeof h);                             \
    CHECK_OK(mh_graph_init(&h.g, c, hh, ww));            \
    int id = (expr);                                     \
    CHECK(id > 0);                                       \
    setup(&h, id, 3);                                    \
    check_node(&h, 3, #expr);                            \
    teardown(&h);                                        \
  } while (0)

int main(void) {
  g_rng = mh_rng_make(7);
  CHECK_OK(mh_pool_init(&g_pool, 2));
  /* conv: dense, strided, padded, grouped, depthwise (stride 1 and 2), pointwise, bias */
  BUILD(3, 7, 6, mh_graph_conv2d(&h.g, "c", 0, 4, 3, 1, 1, 1, 1));
  BUILD(2, 9, 9, mh_graph_conv2d(&h.g, "c", 0, 5, 3, 2, 1, 1, 0));
  BUILD(4, 6, 5, mh_graph_conv2d(&h.g, "c", 0, 6, 3, 1, 0, 2, 1));
  BUILD(6, 8, 7, mh_graph_conv2d(&h.g, "c", 0, 6, 3, 1, 1, 6, 0));
  BUILD(5, 9, 8, mh_graph_conv2d(&h.g, "c", 0, 5, 3, 2, 1, 5, 1));
  BUILD(8, 5, 5, mh_graph_conv2d(&h.g, "c", 0, 7, 1, 1, 0, 1, 0));
  BUILD(3, 9, 9, mh_graph_conv2d(&h.g, "c", 0, 4, 1, 2, 0, 1, 1));
  BUILD(1, 12, 12, mh_graph_conv2d(&h.g, "c", 0, 3, 5, 1, 2, 1, 1));
  /* stride 1 on planes wide enough for the padded-grid path (forward and transposed backward-data) */
  BUILD(3, 12, 12, mh_graph_conv2d(&h.g, "c", 0, 5, 3, 1, 1, 1, 1));
  BUILD(4, 11, 13, mh_graph_conv2d(&h.g, "c", 0, 6, 3, 1, 1, 2, 0));
  BUILD(2, 16, 16, mh_graph_conv2d(&h.g, "c", 0, 3, 5, 1, 2, 1, 0));
  /* small planes: many samples per GEMM chunk */
  BUILD(4, 2, 2, mh_graph_conv2d(&h.g, "c", 0, 3, 3, 1, 1, 1, 0));
  BUILD(3, 4, 4, mh_graph_linear(&h.g, "fc", 0, 5, 1));
  BUILD(7, 1, 1, mh_graph_linear(&h.g, "fc", 0, 3, 0));
  BUILD(3, 4, 5, mh_graph_batchnorm(&h.g, "bn", 0, 1e-5f, 0.1f));
  BUILD(2, 5, 4, mh_graph_relu(&h.g, "r", 0));
  BUILD(2, 5, 4, mh_graph_relu6(&h.g, "r", 0));
  BUILD(2, 6, 6, mh_graph_maxpool(&h.g, "m", 0, 2, 2, 0));
  BUILD(2, 7, 7, mh_graph_maxpool(&h.g, "m", 0, 3, 2, 1));
  BUILD(2, 6, 6, mh_graph_avgpool(&h.g, "a", 0, 2, 2, 0));
  BUILD(2, 7, 7, mh_graph_avgpool(&h.g, "a", 0, 3, 2, 1));
  BUILD(3, 4, 4, mh_graph_gap(&h.g, "gap", 0));
  BUILD(2, 3, 3, mh_graph_flatten(&h.g, "f", 0));
  BUILD(2, 3, 3, mh_graph_add(&h.g, "add", 0, mh_graph_relu(&h.g, "r", 0)));

  /* softmax cross-entropy gradient */
  {
    float z[12], d[12];
    int32_t y[3] = {0, 3, 2};
    for (int i = 0; i < 12; i++) z[i] = urand() * 3;
    mh_softmax_xent_f32(z, y, 3, 4, d);
    for (int i = 0; i < 12; i++) {
      float o = z[i];
      z[i] = o + 1e-3f;
      double lp = mh_softmax_xent_f32(z, y, 3, 4, NULL);
      z[i] = o - 1e-3f;
      double lm = mh_softmax_xent_f32(z, y, 3, 4, NULL);
      z[i] = o;
      CHECK_NEAR(d[i], (lp - lm) / 2e-3, 1e-4, 1e-3);
    }
  }
  mh_pool_free(g_pool);
  return tl_exit();
}
