/* Executor: per-mode plans (buffer offsets in one arena from lifetimes, accumulate flags for
 * gradients of shared inputs, scratch and saved-state sizes) and the forward/backward walks. */
#include "graph/executor.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/memplan.h"
#include "backend/backend.h"
#include "core/status.h"
#include "ops/ops.h"
#include "quant/quantize.h"

typedef struct plan {
  int valid, max_batch, training;
  size_t *y_off, *dy_off;  /* per node, in bytes; dy_off is (size_t)-1 when there is none */
  int *dx_acc;             /* per node x 2: accumulate flag for each input's gradient */
  size_t *state_off;       /* per node, floats into state */
  unsigned char *arena;    /* activations and gradients: floats, or int8 for integer tensors */
  float *scratch, *state;
  mh_exec_stats stats;
} plan;

struct mh_executor {
  const mh_graph *g;
  mh_pool *pool;
  const mh_cpu_kernels *kt;
  int reference;
  int precision; /* mh_precision of the ops; fixed before the first prepare */
  int *e_act, *e_grad;       /* integer tensors: exponent of each node's output and of its gradient */
  _Atomic uint32_t *absmax;  /* int8 forward: max |y| of each node's output as float bits, where its op
                                recorded it (all ones: not recorded) */
  const int *param_exp;      /* integer tensors: one exponent per parameter */
  mh_rescale_mode rescale;
  mh_rescale_state *rs;      /* per node: [2i] forward output, [2i+1] input gradient */
  mh_rescale_counts rc;
  /* partial training (NULL: everything trains): per node, whether its parameters train, and
   * whether its backward runs at all (its own parameters train, or some earlier node's do) */
  unsigned char *trainable, *needs_bwd;
  int frozen_bn_batch_stats; /* 1: frozen batch norms still normalise with batch statistics */
  const struct mh_backend *be; /* runs the passes of place[] it supports; NULL: the CPU runs everything */
  unsigned char *place;        /* per node: the MH_PASS_* bits given to the backend */
  unsigned char *ran;          /* per node: the passes the backend completed in the last step */
  int *seg_first;              /* per node: the first node of the backend segment it ended in the last
                                  forward (-1: none), where its backward segment starts */
  mh_rescale_state rs_infer[2]; /* scratch history for inference forwards */
  mh_rescale_counts rc_infer;
  uint64_t seed;
  long step;
  plan plans[2]; /* [0] inference, [1] training */
  plan *last;    /* plan of the last forward */
  double *prof;  /* per node: forward seconds, backward seconds (NULL: profiling off) */
  int last_n, last_training;
};

#define NONE ((size_t)-1)

static void plan_free(plan *p) {
  free(p->y_off), free(p->dy_off), free(p->dx_acc), free(p->state_off);
  free(p->arena), free(p->scratch), free(p->state);
  memset(p, 0, sizeof *p);
}

int mh_exec_init(mh_executor **out, const mh_graph *g, mh_pool *pool, const mh_cpu_kernels *kt) {
  *out = NULL;
  mh_executor *ex = calloc(1, sizeof *ex);
  if (!ex) return mh__error(MH_ERR_NOMEM, "executor: out of memory");
  ex->g = g, ex->pool = pool, ex->kt = kt;
  ex->rescale = MH_RESCALE_ADAPTIVE;
  ex->e_act = calloc((size_t)g->n_nodes, sizeof(int));
  ex->absmax = calloc((size_t)g->n_nodes, sizeof *ex->absmax);
  ex->e_grad = calloc((size_t)g->n_nodes, sizeof(int));
  ex->rs = calloc((size_t)g->n_nodes * 2, sizeof *ex->rs);
  if (!ex->e_act || !ex->e_grad || !ex->rs || !ex->absmax) {
    mh_exec_free(ex);
    return mh__error(MH_ERR_NOMEM, "executor: out of memory");
  }
  *out = ex;
  return MH_OK;
}

void mh_exec_free(mh_executor *ex) {
  if (!ex) return;
  plan_free(&ex->plans[0]);
  plan_free(&ex->plans[1]);
  free(ex->prof);
  free(ex->e_act), free(ex->e_grad), free(ex->rs), free((void *)ex->absmax);
  free(ex->place), free(ex->ran), free(ex->seg_first);
  free(ex->trainable), free(ex->needs_bwd);
  free(ex);
}

void mh_exec_set_reference(mh_executor *ex, int reference) { ex->reference = reference; }

/* Whether node i's backward runs / whether its parameters train (both 1 without a mask). */
static int bwd_runs(const mh_executor *ex, int i) { return !ex->needs_bwd || ex->needs_bwd[i]; }
static int trains(const mh_executor *ex, int i) { return !ex->trainable || ex->trainable[i]; }
/* A frozen batch norm: normalises with its running statistics in training steps too (eval form). */
static int frozen_bn(const mh_executor *ex, int i) {
  return !trains(ex, i) && ex->g->nodes[i].op == MH_OP_BATCHNORM && !ex->frozen_bn_batch_stats;
}

void mh_exec_set_frozen_bn_batch_stats(mh_executor *ex, int on) { ex->frozen_bn_batch_stats = on ? 1 : 0; }

int mh_exec_set_trainable(mh_executor *ex, const unsigned char *trainable) {
  const mh_graph *g = ex->g;
  int N = g->n_nodes, any = 0;
  unsigned char *t = NULL, *up = NULL;
  if (trainable) {
    t = malloc((size_t)N), up = calloc((size_t)N, 1);
    if (!t || !up) {
      free(t), free(up);
      return mh__error(MH_ERR_NOMEM, "executor: out of memory");
    }
    any = mh_graph_backward_needs(g, trainable, t, up);
    if (!any) {
      free(t), free(up);
      return mh__error(MH_ERR_INVALID_ARG, "%s: every layer with parameters is frozen: nothing to train", g->model_name);
    }
  }
  free(ex->trainable), free(ex->needs_bwd);
  ex->trainable = t, ex->needs_bwd = up;
  plan_free(&ex->plans[0]), plan_free(&ex->plans[1]); /* lifetimes depend on which backwards run */
  ex->last = NULL;
  return MH_OK;
}

void mh_exec_set_precision(mh_executor *ex, int precision) {
  if (precision != ex->precision) { /* scratch sizes depend on it: plan again */
    plan_free(&ex->plans[0]);
    plan_free(&ex->plans[1]);
    ex->last = NULL;
  }
  ex->precision = precision;
}

void mh_exec_set_step(mh_executor *ex, uint64_t seed, long step) {
  ex->seed = seed;
  ex->step = step;
}

/* The node whose memory node i's output lives in (flatten views its input). */
static int storage_of(const mh_graph *g, int i) {
  while (mh_op_impl_get(g->nodes[i].op) && mh_op_impl_get(g->nodes[i].op)->alias_input) i = g->nodes[i].in[0];
  return i;
}

static const mh_op_impl *impl(const mh_executor *ex, int i) { return mh_op_impl_for(ex->g->nodes[i].op, ex->precision); }

/* Bytes per activation/gradient element: 1 for integer tensors, 4 for floats. */
static size_t elem_bytes(const mh_executor *ex) { return ex->precision == MH_PRECISION_INTEGER ? 1 : sizeof(float); }

static size_t node_floats(const mh_graph *g, int i, int batch) {
  const mh_node *n = &g->nodes[i];
  return (size_t)batch * n->c * n->h * n->w;
}

static int build_plan(mh_executor *ex, plan *p, int B, int training) {
  const mh_graph *g = ex->g;
  int N = g->n_nodes, out = N - 1;
  size_t esz = elem_bytes(ex);
  plan_free(p);
  for (int i = 1; i < N; i++)
    if (!impl(ex, i))
      return mh__error(MH_ERR_UNSUPPORTED, "%s: node %d '%s' (%s) has no integer-only form", g->model_name, i,
                       g->nodes[i].name, mh_op_name(g->nodes[i].op));
  p->y_off = malloc(sizeof(size_t) * N);
  p->dy_off = malloc(sizeof(size_t) * N);
  p->dx_acc = calloc((size_t)N * 2, sizeof(int));
  p->state_off = malloc(sizeof(size_t) * N);
  mh_mem_block *blk = calloc((size_t)N * 2, sizeof *blk);
  int *yblk = malloc(sizeof(int) * N);
  if (!p->y_off || !p->dy_off || !p->dx_acc || !p->state_off || !blk || !yblk) {
    free(blk), free(yblk);
    plan_free(p);
    return mh__error(MH_ERR_NOMEM, "executor: out of memory while planning");
  }
  /* Time: forward of node i at i, the loss at N, backward of node i at 2N - i. */
  int nb = 0;
  for (int i = 0; i < N; i++) {
    yblk[i] = -1;
    if (storage_of(g, i) != i) continue;
    yblk[i] = nb;
    blk[nb].size = node_floats(g, i, B) * esz;
    blk[nb].start = blk[nb].end = i;
    nb++;
  }
  for (int i = 0; i < N; i++) {
    const mh_op_impl *op = impl(ex, i);
    mh_mem_block *own = &blk[yblk[storage_of(g, i)]];
    if (i > own->end) own->end = i;
    if (i == out && N > own->end) own->end = N;
    int bwd = training && bwd_runs(ex, i); /* frozen layers below the first trainable one save nothing */
    if (bwd && op && op->save_output && 2 * N - i > own->end) own->end = 2 * N - i;
    for (int k = 0; k < g->nodes[i].n_in; k++) {
      mh_mem_block *src = &blk[yblk[storage_of(g, g->nodes[i].in[k])]];
      int t = bwd && op->save_input ? 2 * N - i : i;
      if (t > src->end) src->end = t;
    }
  }
  int first_dy = nb;
  if (training) {
    /* dL/dy of node i (i >= 1): written first by its last consumer's backward (or by the loss),
     * read by its own backward. Flatten passes gradients on, so it owns a buffer too. */
    int *written = calloc((size_t)N, sizeof(int));
    if (!written) {
      free(blk), free(yblk);
      plan_free(p);
      return mh__error(MH_ERR_NOMEM, "executor: out of memory while planning");
    }
    for (int i = 1; i < N; i++) { /* no gradient for nodes whose backward does not run: a token block */
      blk[nb].size = bwd_runs(ex, i) ? node_floats(g, i, B) * esz : 64;
      blk[nb].start = i == out ? N : 2 * N;
      blk[nb].end = 2 * N - i;
      nb++;
    }
    for (int i = N - 1; i >= 1; i--)
      for (int k = 0; k < g->nodes[i].n_in; k++) {
        int j = g->nodes[i].in[k];
        if (j == 0) continue;
        mh_mem_block *d = &blk[first_dy + j - 1];
        if (2 * N - i < d->start) d->start = 2 * N - i;
        p->dx_acc[2 * i + k] = written[j];
        written[j] = 1;
      }
    free(written);
  }
  size_t arena = mh_memplan_assign(blk, nb, 64);
  if (arena == (size_t)-1) {
    free(blk), free(yblk);
    plan_free(p);
    return mh__error(MH_ERR_NOMEM, "executor: out of memory while planning");
  }
  size_t naive = 0;
  for (int b = 0; b < nb; b++) naive += (blk[b].size + 63) / 64 * 64;
  for (int i = 0; i < N; i++) {
    p->y_off[i] = blk[yblk[storage_of(g, i)]].offset;
    p->dy_off[i] = training && i >= 1 ? blk[first_dy + i - 1].offset : NONE;
  }
  size_t scratch = 0, state = 0;
  for (int i = 1; i < N; i++) {
    const mh_op_impl *op = impl(ex, i);
    size_t s = op->scratch_floats ? op->scratch_floats(g, &g->nodes[i], B, ex->precision) : 0;
    if (s > scratch) scratch = s;
    p->state_off[i] = state;
    state += op->state_floats ? (op->state_floats(g, &g->nodes[i], B, ex->precision) + 15) / 16 * 16 : 0;
  }
  free(blk), free(yblk);
  p->arena = aligned_alloc(64, (arena + 64) / 64 * 64);
  p->scratch = aligned_alloc(64, (scratch * sizeof(float) + 64) / 64 * 64);
  p->state = aligned_alloc(64, (state * sizeof(float) + 64) / 64 * 64);
  if (!p->arena || !p->scratch || !p->state) {
    plan_free(p);
    return mh__error(MH_ERR_NOMEM, "executor: cannot allocate %zu bytes of activations for batch %d", arena, B);
  }
  p->stats.arena_bytes = arena;
  p->stats.arena_naive_bytes = naive;
  p->stats.scratch_bytes = scratch * sizeof(float);
  p->stats.state_bytes = state * sizeof(float);
  p->valid = 1, p->max_batch = B, p->training = training;
  return MH_OK;
}

int mh_exec_prepare(mh_executor *ex, int max_batch, int training) {
  if (max_batch < 1 || max_batch > 1 << 20)
    return mh__error(MH_ERR_INVALID_ARG, "batch size %d out of range [1, %d]", max_batch, 1 << 20);
  plan *p = &ex->plans[training ? 1 : 0];
  if (p->valid && p->max_batch == max_batch) return MH_OK;
  return build_plan(ex, p, max_batch, training ? 1 : 0);
}

int mh_exec_stats_get(const mh_executor *ex, int training, mh_exec_stats *st) {
  const plan *p = &ex->plans[training ? 1 : 0];
  if (!p->valid) return mh__error(MH_ERR_INVALID_ARG, "executor: %s plan not prepared", training ? "training" : "inference");
  *st = p->stats;
  return MH_OK;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int mh_exec_set_profile(mh_executor *ex, int on) {
  free(ex->prof);
  ex->prof = NULL;
  if (on && !(ex->prof = calloc((size_t)ex->g->n_nodes * 2, sizeof(double))))
    return mh__error(MH_ERR_NOMEM, "executor: out of memory");
  return MH_OK;
}

const double *mh_exec_profile(const mh_executor *ex) { return ex->prof; }

static mh_op_ctx make_ctx(mh_executor *ex, plan *p, int i, int n, int training, const void *params, void *grads,
                          float *buffers) {
  const mh_graph *g = ex->g;
  const mh_node *nd = &g->nodes[i];
  mh_op_ctx c;
  memset(&c, 0, sizeof c);
  c.g = g, c.node = nd, c.n = n;
  for (int k = 0; k < nd->n_in; k++) {
    uint32_t bits = atomic_load(&ex->absmax[nd->in[k]]);
    float m;
    memcpy(&m, &bits, sizeof m);
    c.x_absmax[k] = bits == UINT32_MAX ? -1.f : m;
    c.x[k] = (const float *)(p->arena + p->y_off[nd->in[k]]);
    c.qx[k] = (const int8_t *)(p->arena + p->y_off[nd->in[k]]);
    c.ex[k] = ex->e_act[nd->in[k]];
  }
  c.y = (float *)(p->arena + p->y_off[i]);
  c.qy = (int8_t *)(p->arena + p->y_off[i]);
  c.ey = &ex->e_act[i];
  if (nd->n_params) {
    int64_t off = g->params[nd->param0].offset;
    if (ex->precision == MH_PRECISION_INTEGER) {
      c.qw = (const int8_t *)params + off;
      if (grads) c.qdw = (int32_t *)grads + off;
      c.ew = ex->param_exp + nd->param0;
    } else {
      c.w = (float *)params + off;
      if (grads) c.dw = (float *)grads + off;
    }
  }
  if (training) {
    c.rescale = ex->rescale;
    c.rs = &ex->rs[2 * i];
    c.rc = &ex->rc;
  } else { /* inference: exact shifts, and the training histories and counts stay untouched */
    c.rescale = MH_RESCALE_EXACT;
    c.rs = ex->rs_infer;
    c.rc = &ex->rc_infer;
  }
  if (nd->n_buffers && buffers) c.buf = buffers + g->buffers[nd->buffer0].offset;
  c.state = p->state + p->state_off[i];
  c.scratch = p->scratch;
  c.training = training;
  c.reference = ex->reference;
  c.precision = ex->precision;
  c.seed = ex->seed;
  c.step = ex->step;
  c.node_id = i;
  c.pool = ex->pool;
  c.kt = ex->kt;
  return c;
}

/* The passes of `want` that node i gives the backend: placed there and supported. */
static unsigned backend_passes(const mh_executor *ex, int i, unsigned want) {
  if (!ex->be) return 0;
  unsigned out = 0;
  for (unsigned bit = MH_PASS_FWD; bit <= MH_PASS_BWD_D; bit <<= 1)
    if ((want & bit) && (ex->place[i] & bit) && ex->be->supports(ex->be->self, ex->g, i, bit, ex->precision)) out |= bit;
  return out;
}

static void fall_back(const mh_executor *ex, const mh_op_ctx *c, unsigned passes) {
  if (ex->be->fell_back) ex->be->fell_back(ex->be->self, c, passes);
}

/* Runs passes on the backend start to end: MH_OK, or nonzero after telling it that the CPU takes over. */
static int run_on_backend(const mh_executor *ex, mh_op_ctx *c, unsigned passes) {
  if (ex->be->post(ex->be->self, c, passes) == MH_OK && ex->be->wait(ex->be->self, c, passes) == MH_OK) {
    ex->ran[c->node_id] |= (unsigned char)passes;
    return MH_OK;
  }
  fall_back(ex, c, passes);
  return MH_ERR_BACKEND;
}

/* Node i's forward: on the backend when placed there and it succeeds, else on the CPU. */
static void forward_node(mh_executor *ex, plan *p, int i, int n, int training, const void *params, float *buffers) {
  mh_op_ctx c = make_ctx(ex, p, i, n, training, params, NULL, buffers);
  if (training && frozen_bn(ex, i)) c.training = 0;
  /* below the first trainable layer nothing is saved for backward: the inference form (integer
   * tensors keep the training form, whose rescale histories belong to the run; batch norms asked
   * to keep batch statistics keep it too) */
  if (training && !bwd_runs(ex, i) && ex->precision != MH_PRECISION_INTEGER &&
      !(ex->frozen_bn_batch_stats && ex->g->nodes[i].op == MH_OP_BATCHNORM))
    c.training = 0;
  if (ex->precision == MH_PRECISION_INT8) {
    atomic_store(&ex->absmax[i], 0u);
    c.y_absmax = &ex->absmax[i];
  }
  double t0 = ex->prof ? now_s() : 0;
  c.passes = MH_PASS_FWD;
  if (!backend_passes(ex, i, MH_PASS_FWD) || run_on_backend(ex, &c, MH_PASS_FWD)) impl(ex, i)->forward(&c);
  if (ex->prof) ex->prof[2 * i] += now_s() - t0;
  if (c.y_absmax && atomic_load(c.y_absmax) == 0u && impl(ex, i)->alias_input) /* a view: its input's */
    atomic_store(&ex->absmax[i], atomic_load(&ex->absmax[ex->g->nodes[i].in[0]]));
  else if (c.y_absmax && !impl(ex, i)->records_absmax) atomic_store(&ex->absmax[i], UINT32_MAX);
}

/* The last node of the backend segment that starts at node i (i: none; the node runs alone). */
static int segment_last(const mh_executor *ex, int i) {
  if (!ex->be || !ex->be->segment || !ex->seg_first) return i;
  int last = ex->be->segment(ex->be->self, ex->g, i, ex->place, ex->precision);
  return last > i && last < ex->g->n_nodes ? last : i;
}

/* Nodes first..last forward as one backend segment: MH_OK, or an error after which nothing of them
 * counts as done (the caller runs them one by one). */
static int forward_segment(mh_executor *ex, plan *p, int first, int last, int n, int training, const void *params,
                           float *buffers) {
  mh_op_ctx c[MH_SEGMENT_MAX];
  int cnt = last - first + 1;
  if (cnt > MH_SEGMENT_MAX) return MH_ERR_UNSUPPORTED;
  double t0 = ex->prof ? now_s() : 0;
  for (int k = 0; k < cnt; k++) {
    c[k] = make_ctx(ex, p, first + k, n, training, params, NULL, buffers);
    c[k].passes = MH_PASS_FWD;
  }
  int st = ex->be->run_segment(ex->be->self, c, cnt, MH_PASS_FWD);
  if (st != MH_OK) { /* declined (unsupported): nothing was tried, the layers go one by one */
    mh__log(MH_LOG_DEBUG, "segment at node %d runs layer by layer: %s", first, mh_last_error());
    if (st != MH_ERR_UNSUPPORTED) fall_back(ex, &c[0], MH_PASS_FWD);
    return st;
  }
  for (int k = first; k <= last; k++) ex->ran[k] |= (unsigned char)MH_PASS_FWD;
  ex->seg_first[last] = first;
  if (ex->prof) ex->prof[2 * first] += now_s() - t0; /* the segment's time goes to its first node */
  return MH_OK;
}

int mh_exec_forward(mh_executor *ex, const float *x, int n, const void *params, float *buffers, int training) {
  training = training ? 1 : 0;
  plan *p = &ex->plans[training];
  /* Inference can run in a training plan's memory (its lifetimes are a superset), which saves
   * a second arena when a trainer evaluates. */
  if (!training && !p->valid && ex->plans[1].valid) p = &ex->plans[1];
  if (!p->valid) return mh__error(MH_ERR_INVALID_ARG, "executor: forward before prepare");
  if (n < 1 || n > p->max_batch)
    return mh__error(MH_ERR_INVALID_ARG, "batch of %d samples exceeds the prepared batch size %d", n, p->max_batch);
  if (ex->precision == MH_PRECISION_INTEGER) { /* the data enters as int8 with its own exponent */
    if (!ex->param_exp) return mh__error(MH_ERR_INVALID_ARG, "executor: integer forward without parameter exponents");
    ex->e_act[0] = mh_quantize_f32_s8(ex->kt, ex->pool, x, (long)node_floats(ex->g, 0, n),
                                      (int8_t *)(p->arena + p->y_off[0]), MH_ROUND_NEAREST, 0);
  } else {
    memcpy(p->arena + p->y_off[0], x, node_floats(ex->g, 0, n) * sizeof(float));
  }
  for (int i = 0; i < ex->g->n_nodes; i++) atomic_store(&ex->absmax[i], UINT32_MAX);
  if (ex->ran) memset(ex->ran, 0, (size_t)ex->g->n_nodes);
  if (ex->seg_first)
    for (int i = 0; i < ex->g->n_nodes; i++) ex->seg_first[i] = -1;
  for (int i = 1; i < ex->g->n_nodes; i++) {
    int last = segment_last(ex, i);
    if (last > i && forward_segment(ex, p, i, last, n, training, params, buffers) == MH_OK) {
      i = last;
      continue;
    }
    forward_node(ex, p, i, n, training, params, buffers);
  }
  ex->last = p, ex->last_n = n, ex->last_training = training;
  return MH_OK;
}

const float *mh_exec_output(const mh_executor *ex) {
  return ex->last ? (const float *)(ex->last->arena + ex->last->y_off[ex->g->n_nodes - 1]) : NULL;
}

float *mh_exec_output_grad(mh_executor *ex) {
  if (!ex->last || !ex->last_training) return NULL;
  return (float *)(ex->last->arena + ex->last->dy_off[ex->g->n_nodes - 1]);
}

const int8_t *mh_exec_output_q(const mh_executor *ex, int *exp) {
  if (!ex->last) return NULL;
  *exp = ex->e_act[ex->g->n_nodes - 1];
  return (const int8_t *)(ex->last->arena + ex->last->y_off[ex->g->n_nodes - 1]);
}

int8_t *mh_exec_output_grad_q(mh_executor *ex, int exp) {
  if (!ex->last || !ex->last_training) return NULL;
  ex->e_grad[ex->g->n_nodes - 1] = exp;
  return (int8_t *)(ex->last->arena + ex->last->dy_off[ex->g->n_nodes - 1]);
}

void mh_exec_set_param_exps(mh_executor *ex, const int *exps) { ex->param_exp = exps; }

void mh_exec_set_rescale(mh_executor *ex, mh_rescale_mode mode) { ex->rescale = mode; }

void mh_exec_set_backend(mh_executor *ex, const mh_backend *be, const unsigned char *place) {
  ex->be = NULL;
  free(ex->place);
  ex->place = NULL;
  free(ex->ran);
  ex->ran = NULL;
  free(ex->seg_first);
  ex->seg_first = NULL;
  if (!be) return;
  ex->place = malloc((size_t)ex->g->n_nodes), ex->ran = calloc((size_t)ex->g->n_nodes, 1);
  if (be->segment && !(ex->seg_first = malloc(sizeof(int) * (size_t)ex->g->n_nodes))) return;
  if (!ex->place || !ex->ran) return; /* out of memory: the CPU runs everything */
  for (int i = 0; ex->seg_first && i < ex->g->n_nodes; i++) ex->seg_first[i] = -1;
  if (place) memcpy(ex->place, place, (size_t)ex->g->n_nodes);
  else memset(ex->place, MH_PASS_FWD | MH_PASS_BWD_W | MH_PASS_BWD_D, (size_t)ex->g->n_nodes);
  ex->be = be;
}

const unsigned char *mh_exec_backend_ran(const mh_executor *ex) { return ex->ran; }

const int *mh_exec_segment_first(const mh_executor *ex) { return ex->seg_first; }

mh_rescale_state *mh_exec_rescale_states(mh_executor *ex) { return ex->rs; }

const int *mh_exec_exponents(const mh_executor *ex, int grad) { return grad ? ex->e_grad : ex->e_act; }

const mh_rescale_counts *mh_exec_rescale_counts(const mh_executor *ex) { return &ex->rc; }

void mh_exec_reset_rescale_counts(mh_executor *ex) { memset(&ex->rc, 0, sizeof ex->rc); }

/* Node i's backward context: its error, its inputs' gradients (none for the data and frozen layers
 * below), and the accumulate flags. */
static mh_op_ctx backward_ctx(mh_executor *ex, plan *p, int i, const void *params, void *grads) {
  const mh_node *nd = &ex->g->nodes[i];
  mh_op_ctx c = make_ctx(ex, p, i, ex->last_n, 1, params, grads, NULL);
  if (frozen_bn(ex, i)) c.training = 0; /* the eval form's backward: dy scaled by gamma * invstd */
  c.dy = (const float *)(p->arena + p->dy_off[i]);
  c.qdy = (const int8_t *)(p->arena + p->dy_off[i]);
  c.edy = ex->e_grad[i];
  for (int k = 0; k < nd->n_in; k++) {
    int j = nd->in[k];
    int none = j == 0 || !bwd_runs(ex, j); /* the data, and frozen layers below, need no gradient */
    c.dx[k] = none ? NULL : (float *)(p->arena + p->dy_off[j]);
    c.qdx[k] = none ? NULL : (int8_t *)(p->arena + p->dy_off[j]);
    c.edx[k] = &ex->e_grad[j];
    c.dx_accumulate[k] = p->dx_acc[2 * i + k];
  }
  return c;
}

/* The backward passes node i needs: GEMM ops the weight gradient when the layer trains, the input
 * gradient when its input needs one. */
static unsigned backward_passes(const mh_executor *ex, int i, const mh_op_ctx *c) {
  const mh_node *nd = &ex->g->nodes[i];
  unsigned want = MH_PASS_BWD_W | MH_PASS_BWD_D;
  if (nd->op == MH_OP_CONV2D || nd->op == MH_OP_LINEAR) {
    if (!trains(ex, i)) want &= ~MH_PASS_BWD_W;
    if (!c->dx[0]) want &= ~MH_PASS_BWD_D;
  }
  return want;
}

/* Node i's backward: the backend's share starts, the CPU does the rest meanwhile, then the backend
 * completes; what it fails, the CPU redoes from the same inputs. */
static void backward_node(mh_executor *ex, plan *p, int i, const void *params, void *grads) {
  mh_op_ctx c = backward_ctx(ex, p, i, params, grads);
  double t0 = ex->prof ? now_s() : 0;
  unsigned want = backward_passes(ex, i, &c);
  unsigned bk = backend_passes(ex, i, want), cpu = want & ~bk;
  if (bk && ex->be->post(ex->be->self, &c, bk) != MH_OK) fall_back(ex, &c, bk), cpu = want, bk = 0;
  if (cpu) {
    c.passes = cpu;
    impl(ex, i)->backward(&c);
  }
  if (bk && ex->be->wait(ex->be->self, &c, bk) != MH_OK) {
    fall_back(ex, &c, bk);
    c.passes = bk;
    impl(ex, i)->backward(&c);
  } else if (bk)
    ex->ran[i] |= (unsigned char)bk;
  if (ex->prof) ex->prof[2 * i + 1] += now_s() - t0;
}

/* Nodes first..last backward as one backend segment (its forward ran there in this step): MH_OK, or
 * an error after which the caller runs them one by one. */
static int backward_segment(mh_executor *ex, plan *p, int first, int last, const void *params, void *grads) {
  mh_op_ctx c[MH_SEGMENT_MAX];
  int cnt = last - first + 1;
  if (cnt > MH_SEGMENT_MAX) return MH_ERR_UNSUPPORTED;
  for (int k = first; k <= last; k++)
    if (!bwd_runs(ex, k)) return MH_ERR_UNSUPPORTED;
  double t0 = ex->prof ? now_s() : 0;
  for (int k = 0; k < cnt; k++) {
    c[k] = backward_ctx(ex, p, first + k, params, grads);
    c[k].passes = backward_passes(ex, first + k, &c[k]);
  }
  int st = ex->be->run_segment(ex->be->self, c, cnt, MH_PASS_BWD_W | MH_PASS_BWD_D);
  if (st != MH_OK) {
    if (st != MH_ERR_UNSUPPORTED) fall_back(ex, &c[cnt - 1], MH_PASS_BWD_W | MH_PASS_BWD_D);
    return st;
  }
  for (int k = 0; k < cnt; k++) ex->ran[first + k] |= (unsigned char)backend_passes(ex, first + k, c[k].passes);
  if (ex->prof) ex->prof[2 * last + 1] += now_s() - t0;
  return MH_OK;
}

int mh_exec_backward(mh_executor *ex, const void *params, void *grads) {
  if (!ex->last || !ex->last_training) return mh__error(MH_ERR_INVALID_ARG, "executor: backward without a training forward");
  plan *p = ex->last;
  const mh_graph *g = ex->g;
  for (int i = g->n_nodes - 1; i >= 1; i--) {
    if (!bwd_runs(ex, i)) continue; /* below the first trainable layer: no gradient is needed */
    int first = ex->seg_first ? ex->seg_first[i] : -1;
    if (first >= 1 && first < i && backward_segment(ex, p, first, i, params, grads) == MH_OK) {
      i = first;
      continue;
    }
    backward_node(ex, p, i, params, grads);
  }
  return MH_OK;
}
