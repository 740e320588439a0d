/* Op boundaries, on exact inputs with hand-computed gradients compared with ==: ReLU and ReLU6 at
 * exactly 0 and exactly 6 (PyTorch: ReLU6 = hardtanh(0, 6), the gradient passes only where 0 < x < 6;
 * ReLU where x > 0), max-pool ties (the gradient goes to the first maximum in (kh, kw) scan order,
 * as PyTorch's CPU kernel) on the 2x2 fast path, the general path with overlapping windows and with
 * padding, and softmax cross-entropy at logits of +-1000 (finite only with the max subtracted).
 * Each op runs as the executor runs it (mh_op_impl_for, a context as make_ctx builds one, its saved
 * state and scratch) on a graph parsed from model text, in FP32, int8 and niti (integer) precision;
 * the op's input feeds a second layer too, so the accumulating backward (dx_accumulate, as the
 * executor sets it for the consumer that runs second) is the engine's case. */
#include <float.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/ops.h"
#include "testlib.h"

static mh_pool *g_pool;

/* A graph from model text and the id of its layer named `name`. */
static int parse(mh_graph *g, const char *text, const char *name) {
  if (mh_model_parse(g, text, strlen(text), "boundaries.mh")) {
    TL_FAIL("%s: %s", text, mh_last_error());
    exit(1);
  }
  int id = mh_graph_find(g, name);
  CHECK(id > 0);
  return id;
}

static long out_numel(const mh_graph *g, int id, int n) {
  const mh_node *nd = &g->nodes[id];
  return (long)n * nd->c * nd->h * nd->w;
}
static long in_numel(const mh_graph *g, int id, int n) { return out_numel(g, g->nodes[id].in[0], n); }

/* The context make_ctx (executor.c) gives node id for a training step of n samples. */
static mh_op_ctx base_ctx(const mh_graph *g, int id, int n, int precision, float *state, float *scratch) {
  mh_op_ctx c;
  memset(&c, 0, sizeof c);
  c.g = g, c.node = &g->nodes[id], c.n = n, c.node_id = id;
  c.state = state, c.scratch = scratch;
  c.training = 1, c.precision = precision, c.rescale = MH_RESCALE_EXACT;
  c.pool = g_pool, c.kt = mh_cpu_kernels_get(0);
  return c;
}

static float *op_buffer(size_t (*size)(const mh_graph *, const mh_node *, int, int), const mh_graph *g, int id,
                        int n, int precision) {
  size_t floats = size ? size(g, &g->nodes[id], n, precision) : 0;
  return calloc(floats + 64, sizeof(float));
}

/* FP32 or int8 precision: forward of x into y, then backward of dy into dx (accumulate: added onto
 * what dx holds, as when another consumer wrote it first). */
static void run_float(const mh_graph *g, int id, int precision, int n, const float *x, float *y, const float *dy,
                      float *dx, int accumulate) {
  const mh_op_impl *op = mh_op_impl_for(g->nodes[id].op, precision);
  float *state = op_buffer(op->state_floats, g, id, n, precision);
  float *scratch = op_buffer(op->scratch_floats, g, id, n, precision);
  mh_op_ctx c = base_ctx(g, id, n, precision, state, scratch);
  c.x[0] = x, c.y = y;
  op->forward(&c);
  c.dy = dy, c.dx[0] = dx, c.dx_accumulate[0] = accumulate;
  op->backward(&c);
  free(state), free(scratch);
}

/* niti precision: int8 tensors with exponents (value = q x 2^e), as run_float. */
static void run_int(const mh_graph *g, int id, int n, const int8_t *qx, int ex, int8_t *qy, int *ey, const int8_t *qdy,
                    int edy, int8_t *qdx, int *edx, int accumulate) {
  const mh_op_impl *op = mh_op_impl_for(g->nodes[id].op, MH_PRECISION_INTEGER);
  float *state = op_buffer(op->state_floats, g, id, n, MH_PRECISION_INTEGER);
  float *scratch = op_buffer(op->scratch_floats, g, id, n, MH_PRECISION_INTEGER);
  mh_rescale_state rs[2] = {{0, 0, 0}, {0, 0, 0}};
  mh_rescale_counts rc;
  memset(&rc, 0, sizeof rc);
  mh_op_ctx c = base_ctx(g, id, n, MH_PRECISION_INTEGER, state, scratch);
  c.rs = rs, c.rc = &rc;
  c.qx[0] = qx, c.ex[0] = ex, c.qy = qy, c.ey = ey;
  op->forward(&c);
  c.qdy = qdy, c.edy = edy, c.qdx[0] = qdx, c.edx[0] = edx, c.dx_accumulate[0] = accumulate;
  op->backward(&c);
  free(state), free(scratch);
}

#define CHECK_FLOATS(what, got, want, n)                                                                  \
  do {                                                                                                    \
    tl_checks++;                                                                                          \
    for (long i_ = 0; i_ < (long)(n); i_++)                                                               \
      if (!((got)[i_] == (want)[i_])) {                                                                   \
        TL_FAIL("%s: element %ld is %.9g, expected %.9g", what, i_, (double)(got)[i_], (double)(want)[i_]); \
        break;                                                                                            \
      }                                                                                                   \
  } while (0)

#define CHECK_INT8S(what, got, want, n)                                                          \
  do {                                                                                           \
    tl_checks++;                                                                                 \
    for (long i_ = 0; i_ < (long)(n); i_++)                                                      \
      if ((got)[i_] != (want)[i_]) {                                                             \
        TL_FAIL("%s: element %ld is %d, expected %d", what, i_, (int)(got)[i_], (int)(want)[i_]); \
        break;                                                                                   \
      }                                                                                          \
  } while (0)

/* ---- ReLU and ReLU6 ---- */

enum { NACT = 10 };

/* ReLU6 and ReLU in FP32 and int8 (which saves a byte mask instead of the output): the gradient
 * passes where 0 < x < 6 (ReLU6) or x > 0 (ReLU): ReLU6's is 0 at x = -0, 0, 6 and above 6, ReLU's
 * at x <= 0 only. Expected values: dy[i] = i + 1 where the rule passes, 0 elsewhere (plus the 100
 * already in dx when accumulating). */
static void relu_float(int precision) {
  const float six_below = nextafterf(6.f, 0.f), six_above = nextafterf(6.f, 7.f);
  const float x[NACT] = {-1.f, -0.f, 0.f, FLT_MIN, 3.f, six_below, 6.f, six_above, 7.f, 0.5f};
  float dy[NACT];
  for (int i = 0; i < NACT; i++) dy[i] = (float)(i + 1);
  /* y = min(max(x, 0), 6); the gradient passes at FLT_MIN, 3, 6-, 0.5 only */
  const float y6[NACT] = {0, 0, 0, FLT_MIN, 3, six_below, 6, 6, 6, 0.5f};
  const float d6[NACT] = {0, 0, 0, 4, 5, 6, 0, 0, 0, 10};
  /* ReLU: y = max(x, 0); the gradient passes at everything positive, 6 and above included */
  const float y1[NACT] = {0, 0, 0, FLT_MIN, 3, six_below, 6, six_above, 7, 0.5f};
  const float d1[NACT] = {0, 0, 0, 4, 5, 6, 7, 8, 9, 10};
  const char *what = precision == MH_PRECISION_FP32 ? "fp32" : "int8";
  for (int six = 0; six < 2; six++) {
    mh_graph g;
    int id = parse(&g,
                   six ? "input 1x2x5\nrelu6 r\nrelu6 r2 in=input\nadd s in=r,r2\nlinear fc out=2\n"
                       : "input 1x2x5\nrelu r\nrelu r2 in=input\nadd s in=r,r2\nlinear fc out=2\n",
                   "r");
    const float *ywant = six ? y6 : y1, *dwant = six ? d6 : d1;
    for (int acc = 0; acc < 2; acc++) {
      float y[NACT], dx[NACT], want[NACT];
      for (int i = 0; i < NACT; i++) dx[i] = acc ? 100.f : -1.f, want[i] = dwant[i] + (acc ? 100.f : 0.f);
      run_float(&g, id, precision, 1, x, y, dy, dx, acc);
      char label[64];
      snprintf(label, sizeof label, "%s %s y", what, six ? "relu6" : "relu");
      CHECK_FLOATS(label, y, ywant, NACT);
      snprintf(label, sizeof label, "%s %s dx%s", what, six ? "relu6" : "relu", acc ? " (accumulating)" : "");
      CHECK_FLOATS(label, dx, want, NACT);
    }
    mh_graph_free(&g);
  }
}

/* niti ReLU: y = max(x, 0) on int8 values with the exponent passed on; the error passes where y > 0
 * (not at 0) and keeps its exponent. Accumulating onto 10 at the same exponent adds exactly (sums stay
 * within int8). ReLU6 has no integer form. Expected values by hand from the rule. */
static void relu_int(void) {
  CHECK(mh_op_impl_for(MH_OP_RELU6, MH_PRECISION_INTEGER) == NULL);
  mh_graph g;
  int id = parse(&g, "input 1x2x4\nrelu r\nrelu r2 in=input\nadd s in=r,r2\nlinear fc out=2\n", "r");
  const int8_t x[8] = {-127, -1, 0, 1, 0, 6, 127, -6};
  const int8_t dy[8] = {1, 2, 3, 4, 5, 6, 7, -8};
  const int8_t ywant[8] = {0, 0, 0, 1, 0, 6, 127, 0}, dwant[8] = {0, 0, 0, 4, 0, 6, 7, 0};
  for (int acc = 0; acc < 2; acc++) {
    int8_t y[8], dx[8], want[8];
    int ey = 99, edx = acc ? -5 : 99;
    for (int i = 0; i < 8; i++) dx[i] = acc ? 10 : -1, want[i] = (int8_t)(dwant[i] + (acc ? 10 : 0));
    run_int(&g, id, 1, x, -3, y, &ey, dy, -5, dx, &edx, acc);
    CHECK_INT8S("niti relu y", y, ywant, 8);
    CHECK_EQ_INT(ey, -3);
    CHECK_INT8S(acc ? "niti relu dx (accumulating)" : "niti relu dx", dx, want, 8);
    CHECK_EQ_INT(edx, -5);
  }
  mh_graph_free(&g);
}

/* ---- max-pool ---- */

/* 2x2 windows, stride 2 (the fast path) on two 4x4 channels: ties at chosen window positions
 * (a b / c d in scan order). Each window's dy is distinct (1, 2, 4, ..., 64, 100), so dx shows where
 * each went. Channel 0: all four equal -> a; a = d -> a (first and last); b = c -> b; c = d -> c.
 * Channel 1: a unique maximum at d; b = d -> b; a = c -> a; all four -0/0 (equal) -> a. */
static const float k_pool2_x[32] = {
    5, 5, 7, 1,  /* window (0,0): 5 5 / 5 5    window (0,1): 7 1 / 1 7 */
    5, 5, 1, 7,
    2, 4, -1, -1, /* window (1,0): 2 4 / 4 2    window (1,1): -1 -1 / 3 3 */
    4, 2, 3, 3,
    1, 2, 0, 6,  /* window (0,0): 1 2 / 3 9    window (0,1): 0 6 / 1 6 */
    3, 9, 1, 6,
    -4, -8, -0.f, 0, /* window (1,0): -4 -8 / -4 -9    window (1,1): -0 0 / 0 -0 */
    -4, -9, 0, -0.f,
};
static const float k_pool2_y[8] = {5, 7, 4, 3, 9, 6, -4, 0};
static const float k_pool2_dy[8] = {1, 2, 4, 8, 16, 32, 64, 100};
static const float k_pool2_dx[32] = {
    1, 0, 2, 0,  /* (0,0) -> a, (0,1) -> a */
    0, 0, 0, 0,
    0, 4, 0, 0,  /* (1,0) -> b, (1,1) -> c */
    0, 0, 8, 0,
    0, 0, 0, 32, /* (0,0) -> d, (0,1) -> b */
    0, 16, 0, 0,
    64, 0, 100, 0, /* (1,0) -> a, (1,1) -> a */
    0, 0, 0, 0,
};

/* 3x3 windows, stride 2 on 5x5: overlapping windows (row 2 and column 2 shared). Ties: (0,0) between
 * its first element (0,0) and its last (2,2); (0,1) between (0,4) and (1,3); (1,0) between (2,2),
 * (3,0) and (4,1); (1,1) between its first (2,2) and its last (4,4). dy 1, 2, 4, 8: (2,2) collects
 * 4 + 8 = 12 from the two windows whose first maximum it is. */
static const float k_pool3_x[25] = {
    8, 0, 0, 0, 9,
    0, 0, 0, 9, 0,
    0, 0, 8, 0, 0,
    8, 0, 0, 0, 0,
    0, 8, 0, 0, 8,
};
static const float k_pool3_y[4] = {8, 9, 8, 8};
static const float k_pool3_dx[25] = {
    1, 0, 0, 0, 2,
    0, 0, 0, 0, 0,
    0, 0, 12, 0, 0,
    0, 0, 0, 0, 0,
    0, 0, 0, 0, 0,
};

/* 3x3 windows, stride 2, padding 1 on 4x4, all values negative (padding must never be the maximum).
 * Windows over rows/columns -1..1 and 1..3. Ties at -2: (0,0) between (0,0) and (1,1); (0,1) between
 * (0,3) and (1,1); (1,0) between (1,1) and (3,0); (1,1) between its first (1,1) and its last (3,3).
 * dy 1, 2, 4, 8: (1,1) collects 4 + 8. */
static const float k_poolp_x[16] = {
    -2, -9, -9, -2,
    -9, -2, -9, -9,
    -9, -9, -9, -9,
    -2, -9, -9, -2,
};
static const float k_poolp_y[4] = {-2, -2, -2, -2};
static const float k_poolp_dx[16] = {
    1, 0, 0, 2,
    0, 12, 0, 0,
    0, 0, 0, 0,
    0, 0, 0, 0,
};
static const float k_pool4_dy[4] = {1, 2, 4, 8};

/* 2x2 windows, stride 2, padding 1 on 4x4 (the general path: windows over rows/columns -1..0, 1..2,
 * 3..4), all negative: the corner windows hold one value each, the right and bottom ones reach past
 * the last column/row. Ties at -3: (0,1) between (0,1) and (0,2); (1,0) between (1,0) and (2,0);
 * (1,1) between (2,1) and (2,2) (its a, b are -5, -4); (1,2) between (1,3) and (2,3); (2,1) between
 * (3,1) and (3,2). dy 1..9 in window order. */
static const float k_poolq_x[16] = {
    -7, -3, -3, -7,
    -3, -5, -4, -3,
    -3, -3, -3, -3,
    -7, -3, -3, -7,
};
static const float k_poolq_y[9] = {-7, -3, -7, -3, -3, -3, -7, -3, -7};
static const float k_poolq_dy[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float k_poolq_dx[16] = {
    1, 2, 0, 3,
    4, 0, 0, 6,
    0, 5, 0, 0,
    7, 8, 0, 9,
};

typedef struct {
  const char *name, *text;
  int n_in, n_out;
  const float *x, *y, *dy, *dx;
} pool_case;

/* 2x2/2 on an odd 3x5 plane: the last row and column belong to no window (gradient 0), a tie at 5 */
static const float k_poolo_x[15] = {1, 5, 2, 2, 9, 3, 5, 7, 1, 8, 4, 4, 4, 4, 4};
static const float k_poolo_y[2] = {5, 7}, k_poolo_dy[2] = {3, -2};
static const float k_poolo_dx[15] = {0, 3, 0, 0, 0, 0, 0, -2, 0, 0, 0, 0, 0, 0, 0};

enum { NPOOL = 5 };
static const pool_case k_pools[NPOOL] = {
    {"2x2/2", "input 2x4x4\nmaxpool p k=2\nmaxpool q k=2 in=input\nadd s in=p,q\nlinear fc out=2\n", 32, 8, k_pool2_x,
     k_pool2_y, k_pool2_dy, k_pool2_dx},
    {"3x3/2", "input 1x5x5\nmaxpool p k=3 stride=2\nmaxpool q k=3 stride=2 in=input\nadd s in=p,q\nlinear fc out=2\n",
     25, 4, k_pool3_x, k_pool3_y, k_pool4_dy, k_pool3_dx},
    {"3x3/2 pad 1",
     "input 1x4x4\nmaxpool p k=3 stride=2 pad=1\nmaxpool q k=3 stride=2 pad=1 in=input\nadd s in=p,q\n"
     "linear fc out=2\n",
     16, 4, k_poolp_x, k_poolp_y, k_pool4_dy, k_poolp_dx},
    {"2x2/2 pad 1", "input 1x4x4\nmaxpool p k=2 pad=1\nmaxpool q k=2 pad=1 in=input\nadd s in=p,q\nlinear fc out=2\n",
     16, 9, k_poolq_x, k_poolq_y, k_poolq_dy, k_poolq_dx},
    {"2x2/2 odd", "input 1x3x5\nmaxpool p k=2\nmaxpool q k=2 in=input\nadd s in=p,q\nlinear fc out=2\n", 15, 2,
     k_poolo_x, k_poolo_y, k_poolo_dy, k_poolo_dx},
};

/* Max-pool in FP32 and int8 (which saves window positions instead of the input): the output is the
 * window maximum and the gradient goes to its first occurrence in scan order (PyTorch's CPU kernel);
 * overlapping windows add up. Expected values: the tables above, worked out by hand. */
static void maxpool_float(int precision) {
  const char *what = precision == MH_PRECISION_FP32 ? "fp32" : "int8";
  for (int k = 0; k < NPOOL; k++) {
    const pool_case *pc = &k_pools[k];
    mh_graph g;
    int id = parse(&g, pc->text, "p");
    CHECK_EQ_INT(in_numel(&g, id, 1), pc->n_in);
    CHECK_EQ_INT(out_numel(&g, id, 1), pc->n_out);
    for (int acc = 0; acc < 2; acc++) {
      float y[32], dx[32], want[32];
      for (int i = 0; i < pc->n_in; i++) dx[i] = acc ? 0.5f : -1.f, want[i] = pc->dx[i] + (acc ? 0.5f : 0.f);
      run_float(&g, id, precision, 1, pc->x, y, pc->dy, dx, acc);
      char label[96];
      snprintf(label, sizeof label, "%s maxpool %s y", what, pc->name);
      CHECK_FLOATS(label, y, pc->y, pc->n_out);
      snprintf(label, sizeof label, "%s maxpool %s dx%s", what, pc->name, acc ? " (accumulating)" : "");
      CHECK_FLOATS(label, dx, want, pc->n_in);
    }
    mh_graph_free(&g);
  }
}

/* niti max-pool: the same windows on int8 values (exponent passed on), the error routed to the first
 * maximum and kept at its exponent while the routed sums fit int8. When overlapping windows' errors
 * add beyond 127 the sums are shifted right by one (round to nearest) and the exponent grows by one:
 * 3x3/2 with dy 2, 4, 100, 120 puts 220 at (2,2) -> 110, 1, 2 at exponent edy + 1. */
static void maxpool_int(void) {
  for (int k = 0; k < NPOOL; k++) {
    const pool_case *pc = &k_pools[k];
    mh_graph g;
    int id = parse(&g, pc->text, "p");
    int8_t x[32], y[32], ywant[32], dy[32], dx[32], want[32];
    for (int i = 0; i < pc->n_in; i++) x[i] = (int8_t)pc->x[i];
    for (int i = 0; i < pc->n_out; i++) ywant[i] = (int8_t)pc->y[i], dy[i] = (int8_t)pc->dy[i];
    for (int acc = 0; acc < 2; acc++) {
      for (int i = 0; i < pc->n_in; i++) {
        dx[i] = acc ? 3 : -1;
        want[i] = (int8_t)(pc->dx[i] + (acc ? 3 : 0));
      }
      int ey = 99, edx = acc ? -4 : 99;
      run_int(&g, id, 1, x, -2, y, &ey, dy, -4, dx, &edx, acc);
      char label[96];
      snprintf(label, sizeof label, "niti maxpool %s y", pc->name);
      CHECK_INT8S(label, y, ywant, pc->n_out);
      CHECK_EQ_INT(ey, -2);
      snprintf(label, sizeof label, "niti maxpool %s dx%s", pc->name, acc ? " (accumulating)" : "");
      CHECK_INT8S(label, dx, want, pc->n_in);
      CHECK_EQ_INT(edx, -4);
    }
    if (k == 1) { /* the sums outgrow int8 */
      const int8_t big[4] = {2, 4, 100, 120};
      int8_t want2[25] = {0};
      want2[0] = 1, want2[4] = 2, want2[12] = 110;
      int ey = 99, edx = 99;
      run_int(&g, id, 1, x, -2, y, &ey, big, -4, dx, &edx, 0);
      CHECK_INT8S("niti maxpool 3x3/2 dx (shifted)", dx, want2, 25);
      CHECK_EQ_INT(edx, -3);
    }
    mh_graph_free(&g);
  }
}

/* ---- softmax cross-entropy ---- */

/* Softmax cross-entropy (mean over the batch) at logits of +-1000, where exp overflows unless the
 * row maximum is subtracted first. Hand values: {1000, -1000, 0} with label 0: softmax {1, e^-2000,
 * e^-1000} = {1, 0, 0} in double, loss 0, gradient {0, 0, 0}; with label 1: loss 1000 - (-1000) = 2000,
 * gradient {1, -1, 0}. Two rows {-1000, -1000} label 0 and {1000, 1000} label 1: each softmax is
 * {1/2, 1/2}, loss ln 2, gradient (softmax - onehot) / 2 = {-1/4, 1/4} and {1/4, -1/4}. */
static void softmax_extremes(void) {
  const float z3[3] = {1000.f, -1000.f, 0.f};
  float d[4];
  const int32_t l0[1] = {0}, l1[1] = {1};
  double loss = mh_softmax_xent_f32(z3, l0, 1, 3, d);
  CHECK(loss == 0);
  const float want0[3] = {0, 0, 0};
  CHECK_FLOATS("xent {1000, -1000, 0} label 0", d, want0, 3);
  loss = mh_softmax_xent_f32(z3, l1, 1, 3, d);
  CHECK(loss == 2000);
  const float want1[3] = {1, -1, 0};
  CHECK_FLOATS("xent {1000, -1000, 0} label 1", d, want1, 3);
  const float z2[4] = {-1000.f, -1000.f, 1000.f, 1000.f};
  const int32_t l2[2] = {0, 1};
  loss = mh_softmax_xent_f32(z2, l2, 2, 2, d);
  CHECK_NEAR(loss, log(2.0), 1e-12, 0);
  const float want2[4] = {-0.25f, 0.25f, 0.25f, -0.25f};
  CHECK_FLOATS("xent {-1000, -1000}, {1000, 1000}", d, want2, 4);
  CHECK(mh_softmax_xent_f32(z2, l2, 2, 2, NULL) == loss); /* the loss without the gradient */
}

/* A NaN in a max-pool window is the maximum (PyTorch's CPU kernel: (val > maxval) || isnan(val); the
 * general path's argmax_at does the same): y is NaN and the gradient goes to the NaN, on every path.
 * A 2x2/2 window 1 NaN / 3 4 and the same window as the general path sees it (3x3 stride 1 on 3x3
 * holding it in its top-left corner, the rest -9). */
static void maxpool_nan(int precision) {
  const char *what = precision == MH_PRECISION_FP32 ? "fp32" : "int8";
  const char *texts[2] = {"input 1x2x2\nmaxpool p k=2\nlinear fc out=2\n",
                          "input 1x3x3\nmaxpool p k=3 stride=1\nlinear fc out=2\n"};
  for (int t = 0; t < 2; t++) {
    mh_graph g;
    int id = parse(&g, texts[t], "p");
    float x2[4] = {1, NAN, 3, 4}, x3[9] = {1, NAN, -9, 3, 4, -9, -9, -9, -9}, y[1], dy[1] = {1}, dx[9];
    run_float(&g, id, precision, 1, t ? x3 : x2, y, dy, dx, 0);
    if (!isnan(y[0]) || dx[1] != 1)
      TL_FAIL("%s maxpool %s: window 1 NaN / 3 4 gives y %g and dx[1] = %g (want NaN and 1)", what,
              t ? "3x3/1" : "2x2/2", (double)y[0], (double)dx[1]);
    tl_checks++;
    mh_graph_free(&g);
  }
}

int main(void) {
  CHECK_OK(mh_pool_init(&g_pool, 2));
  relu_float(MH_PRECISION_FP32);
  relu_float(MH_PRECISION_INT8);
  relu_int();
  maxpool_float(MH_PRECISION_FP32);
  maxpool_float(MH_PRECISION_INT8);
  maxpool_int();
  maxpool_nan(MH_PRECISION_FP32);
  maxpool_nan(MH_PRECISION_INT8);
  softmax_extremes();
  mh_pool_free(g_pool);
  return tl_exit();
}
