/* Graph construction: shape inference and validation for every builder call, parameter and
 * buffer registration in PyTorch's registration order. Pure bookkeeping: no tensors are allocated. */
#include "graph/graph.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static const char *const k_op_names[MH_OP_COUNT] = {"input", "conv", "linear", "batchnorm", "relu",   "relu6",
                                                    "maxpool", "avgpool", "gap", "add", "flatten"};

const char *mh_op_name(mh_op_type op) { return op >= 0 && op < MH_OP_COUNT ? k_op_names[op] : "?"; }

/* Per-sample activations and each parameter tensor hold at most INT_MAX elements, so shapes,
 * feature counts and fan-ins stay exact in int and byte sizes in size_t. */
#define MH_MAX_ELEMS ((int64_t)INT_MAX)

int mh_graph_init(mh_graph *g, int c, int h, int w) {
  memset(g, 0, sizeof *g);
  if (c < 1 || h < 1 || w < 1 || c > 65536 || h > 65536 || w > 65536)
    return mh__error(MH_ERR_INVALID_ARG, "input shape %dx%dx%d out of range", c, h, w);
  if ((int64_t)c * h * w > MH_MAX_ELEMS)
    return mh__error(MH_ERR_INVALID_ARG, "input shape %dx%dx%d has more than %lld elements per sample", c, h, w,
                     (long long)MH_MAX_ELEMS);
  g->cap_nodes = 16;
  g->nodes = calloc((size_t)g->cap_nodes, sizeof *g->nodes);
  if (!g->nodes) return mh__error(MH_ERR_NOMEM, "graph: out of memory");
  mh_node *n = &g->nodes[0];
  n->op = MH_OP_INPUT;
  snprintf(n->name, sizeof n->name, "input");
  n->c = c, n->h = h, n->w = w;
  g->n_nodes = 1;
  return MH_OK;
}

void mh_graph_free(mh_graph *g) {
  if (!g) return;
  free(g->nodes);
  free(g->params);
  free(g->buffers);
  memset(g, 0, sizeof *g);
}

int mh_graph_find(const mh_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

int mh_graph_output(const mh_graph *g) { return g->n_nodes - 1; }

/* Appends a node of `op` reading `in`; fills name and input links. Returns a pointer or NULL. */
static mh_node *add_node(mh_graph *g, mh_op_type op, const char *name, int in0, int in1, int *status) {
  int n_in = in1 >= 0 ? 2 : 1;
  int ins[2] = {in0, in1};
  for (int i = 0; i < n_in; i++)
    if (ins[i] < 0 || ins[i] >= g->n_nodes) {
      *status = mh__error(MH_ERR_INVALID_ARG, "%s: input node %d does not exist", mh_op_name(op), ins[i]);
      return NULL;
    }
  char auto_name[MH_NAME_MAX];
  if (!name || !*name) {
    snprintf(auto_name, sizeof auto_name, "%s%d", mh_op_name(op), g->n_nodes);
    name = auto_name;
  }
  if (strlen(name) >= MH_NAME_MAX) {
    *status = mh__error(MH_ERR_INVALID_ARG, "%s: layer name '%.20s...' longer than %d characters", mh_op_name(op), name,
                        MH_NAME_MAX - 1);
    return NULL;
  }
  if (mh_graph_find(g, name) >= 0) {
    *status = mh__error(MH_ERR_INVALID_ARG, "%s: layer name '%s' used twice", mh_op_name(op), name);
    return NULL;
  }
  if (g->n_nodes == g->cap_nodes) {
    mh_node *nn = realloc(g->nodes, sizeof *nn * (size_t)g->cap_nodes * 2);
    if (!nn) {
      *status = mh__error(MH_ERR_NOMEM, "graph: out of memory");
      return NULL;
    }
    g->nodes = nn;
    g->cap_nodes *= 2;
  }
  mh_node *n = &g->nodes[g->n_nodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  snprintf(n->name, sizeof n->name, "%s", name);
  n->n_in = n_in;
  n->in[0] = in0;
  n->in[1] = in1;
  n->param0 = g->n_params;
  n->buffer0 = g->n_buffers;
  const mh_node *src = &g->nodes[in0];
  n->c = src->c, n->h = src->h, n->w = src->w;
  return n;
}

/* Registers the node; its id. The caller has filled shape and attributes (and checked the shape
 * with out_shape when it can grow). */
static int commit_node(mh_graph *g, mh_node *n) {
  for (int i = 0; i < n->n_in; i++) g->nodes[n->in[i]].n_consumers++;
  return g->n_nodes++;
}

/* Sets an output shape computed in 64 bits, refusing one of more than MH_MAX_ELEMS elements. */
static int out_shape(mh_node *n, int64_t c, int64_t h, int64_t w) {
  if (c < 1 || h < 1 || w < 1 || c > MH_MAX_ELEMS || h > MH_MAX_ELEMS || w > MH_MAX_ELEMS ||
      c * h > MH_MAX_ELEMS || c * h * w > MH_MAX_ELEMS)
    return mh__error(MH_ERR_SHAPE, "%s '%s': output %lldx%lldx%lld has more than %lld elements per sample",
                     mh_op_name(n->op), n->name, (long long)c, (long long)h, (long long)w, (long long)MH_MAX_ELEMS);
  n->c = (int)c, n->h = (int)h, n->w = (int)w;
  return MH_OK;
}

/* A weight of `rows` x `per_row` elements, refused beyond MH_MAX_ELEMS. */
static int check_weight(const mh_node *n, int64_t rows, int64_t per_row) {
  if (per_row > MH_MAX_ELEMS / rows)
    return mh__error(MH_ERR_SHAPE, "%s '%s': weight of %lld x %lld elements is larger than %lld", mh_op_name(n->op),
                     n->name, (long long)rows, (long long)per_row, (long long)MH_MAX_ELEMS);
  return MH_OK;
}

static int add_param(mh_graph *g, mh_node *n, const char *suffix, mh_param_kind kind, int ndim, const int *shape,
                     int fan_in) {
  if (g->n_params == g->cap_params) {
    int cap = g->cap_params ? g->cap_params * 2 : 16;
    mh_param *np = realloc(g->params, sizeof *np * (size_t)cap);
    if (!np) return mh__error(MH_ERR_NOMEM, "graph: out of memory");
    g->params = np;
    g->cap_params = cap;
  }
  mh_param *p = &g->params[g->n_params++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s.%s", n->name, suffix);
  p->kind = kind;
  p->node = (int)(n - g->nodes);
  p->ndim = ndim;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->numel *= shape[i];
  p->offset = g->n_param_floats;
  p->fan_in = fan_in;
  g->n_param_floats += p->numel;
  n->n_params++;
  return MH_OK;
}

static int add_buffer(mh_graph *g, mh_node *n, const char *suffix, int64_t numel, float init) {
  if (g->n_buffers == g->cap_buffers) {
    int cap = g->cap_buffers ? g->cap_buffers * 2 : 16;
    mh_buffer *nb = realloc(g->buffers, sizeof *nb * (size_t)cap);
    if (!nb) return mh__error(MH_ERR_NOMEM, "graph: out of memory");
    g->buffers = nb;
    g->cap_buffers = cap;
  }
  mh_buffer *b = &g->buffers[g->n_buffers++];
  memset(b, 0, sizeof *b);
  snprintf(b->name, sizeof b->name, "%s.%s", n->name, suffix);
  b->node = (int)(n - g->nodes);
  b->numel = numel;
  b->offset = g->n_buffer_floats;
  b->init = init;
  g->n_buffer_floats += numel;
  n->n_buffers++;
  return MH_OK;
}

int mh_graph_conv2d(mh_graph *g, const char *name, int in, int out_c, int k, int stride, int pad, int groups,
                    int bias) {
  int st = 0;
  mh_node *n = add_node(g, MH_OP_CONV2D, name, in, -1, &st);
  if (!n) return st;
  int in_c = n->c;
  if (out_c < 1 || k < 1 || stride < 1 || pad < 0 || groups < 1 || out_c > 1 << 20 || k > 64 || stride > 64 || pad > 64)
    return mh__error(MH_ERR_INVALID_ARG, "conv '%s': out=%d k=%d stride=%d pad=%d groups=%d out of range", n->name,
                     out_c, k, stride, pad, groups);
  if (in_c % groups || out_c % groups)
    return mh__error(MH_ERR_SHAPE, "conv '%s': groups=%d must divide input channels %d and output channels %d",
                     n->name, groups, in_c, out_c);
  int64_t hp = (int64_t)n->h + 2 * pad, wp = (int64_t)n->w + 2 * pad;
  if (hp < k || wp < k)
    return mh__error(MH_ERR_SHAPE, "conv '%s': kernel %d larger than padded input %lldx%lld", n->name, k,
                     (long long)hp, (long long)wp);
  MH_TRY(check_weight(n, out_c, (int64_t)(in_c / groups) * k * k));
  MH_TRY(out_shape(n, out_c, (hp - k) / stride + 1, (wp - k) / stride + 1));
  n->out_c = out_c, n->k = k, n->stride = stride, n->pad = pad, n->groups = groups, n->bias = bias ? 1 : 0;
  int fan_in = in_c / groups * k * k;
  int wshape[4] = {out_c, in_c / groups, k, k};
  MH_TRY(add_param(g, n, "weight", MH_PARAM_WEIGHT, 4, wshape, fan_in));
  if (bias) MH_TRY(add_param(g, n, "bias", MH_PARAM_BIAS, 1, &out_c, fan_in));
  return commit_node(g, n);
}

int mh_graph_linear(mh_graph *g, const char *name, int in, int out_f, int bias) {
  int st = 0;
  mh_node *n = add_node(g, MH_OP_LINEAR, name, in, -1, &st);
  if (!n) return st;
  int in_f = n->c * n->h * n->w; /* a non-flat input is read as flattened (NCHW is contiguous) */
  if (out_f < 1 || out_f > 1 << 24)
    return mh__error(MH_ERR_INVALID_ARG, "linear '%s': out=%d out of range", n->name, out_f);
  MH_TRY(check_weight(n, out_f, in_f));
  n->out_c = out_f, n->bias = bias ? 1 : 0;
  n->c = out_f, n->h = 1, n->w = 1;
  int wshape[2] = {out_f, in_f};
  MH_TRY(add_param(g, n, "weight", MH_PARAM_WEIGHT, 2, wshape, in_f));
  if (bias) MH_TRY(add_param(g, n, "bias", MH_PARAM_BIAS, 1, &out_f, in_f));
  return commit_node(g, n);
}

int mh_graph_batchnorm(mh_graph *g, const char *name, int in, float eps, float momentum) {
  int st = 0;
  mh_node *n = add_node(g, MH_OP_BATCHNORM, name, in, -1, &st);
  if (!n) return st;
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    return mh__error(MH_ERR_INVALID_ARG, "batchnorm '%s': eps=%g must be > 0 and momentum=%g in [0, 1]", n->name,
                     eps, momentum);
  n->eps = eps, n->momentum = momentum;
  int c = n->c;
  MH_TRY(add_param(g, n, "weight", MH_PARAM_BN_GAMMA, 1, &c, 0));
  MH_TRY(add_param(g, n, "bias", MH_PARAM_BN_BETA, 1, &c, 0));
  MH_TRY(add_buffer(g, n, "running_mean", c, 0.f));
  MH_TRY(add_buffer(g, n, "running_var", c, 1.f));
  return commit_node(g, n);
}

static int simple(mh_graph *g, mh_op_type op, const char *name, int in) {
  int st = 0;
  mh_node *n = add_node(g, op, name, in, -1, &st);
  if (!n) return st;
  if (op == MH_OP_GAP) n->h = n->w = 1;
  if (op == MH_OP_FLATTEN) n->c = n->c * n->h * n->w, n->h = n->w = 1; /* <= MH_MAX_ELEMS: the input's size */
  return commit_node(g, n);
}

int mh_graph_relu(mh_graph *g, const char *name, int in) { return simple(g, MH_OP_RELU, name, in); }
int mh_graph_relu6(mh_graph *g, const char *name, int in) { return simple(g, MH_OP_RELU6, name, in); }
int mh_graph_gap(mh_graph *g, const char *name, int in) { return simple(g, MH_OP_GAP, name, in); }
int mh_graph_flatten(mh_graph *g, const char *name, int in) { return simple(g, MH_OP_FLATTEN, name, in); }

static int pool(mh_graph *g, mh_op_type op, const char *name, int in, int k, int s, int p) {
  int st = 0;
  mh_node *n = add_node(g, op, name, in, -1, &st);
  if (!n) return st;
  if (k < 1 || s < 1 || p < 0 || k > 64 || s > 64 || 2 * p > k)
    return mh__error(MH_ERR_INVALID_ARG, "%s '%s': k=%d stride=%d pad=%d invalid (need k,stride >= 1, pad <= k/2)",
                     mh_op_name(op), n->name, k, s, p);
  int64_t hp = (int64_t)n->h + 2 * p, wp = (int64_t)n->w + 2 * p;
  if (hp < k || wp < k)
    return mh__error(MH_ERR_SHAPE, "%s '%s': window %d larger than padded input %lldx%lld", mh_op_name(op), n->name, k,
                     (long long)hp, (long long)wp);
  /* floor mode, as PyTorch's default */
  MH_TRY(out_shape(n, n->c, (hp - k) / s + 1, (wp - k) / s + 1));
  n->pool_k = k, n->pool_s = s, n->pool_p = p;
  return commit_node(g, n);
}

int mh_graph_maxpool(mh_graph *g, const char *name, int in, int k, int s, int p) {
  return pool(g, MH_OP_MAXPOOL, name, in, k, s, p);
}
int mh_graph_avgpool(mh_graph *g, const char *name, int in, int k, int s, int p) {
  return pool(g, MH_OP_AVGPOOL, name, in, k, s, p);
}

int mh_graph_add(mh_graph *g, const char *name, int a, int b) {
  int st = 0;
  mh_node *n = add_node(g, MH_OP_ADD, name, a, b, &st);
  if (!n) return st;
  const mh_node *x = &g->nodes[a], *y = &g->nodes[b];
  if (x->c != y->c || x->h != y->h || x->w != y->w)
    return mh__error(MH_ERR_SHAPE, "add '%s': inputs '%s' (%dx%dx%d) and '%s' (%dx%dx%d) differ in shape", n->name,
                     x->name, x->c, x->h, x->w, y->name, y->c, y->h, y->w);
  return commit_node(g, n);
}

int mh_graph_validate(const mh_graph *g) {
  if (g->n_nodes < 2) return mh__error(MH_ERR_INVALID_ARG, "model has no layers");
  const mh_node *out = &g->nodes[g->n_nodes - 1];
  if (out->h != 1 || out->w != 1)
    return mh__error(MH_ERR_SHAPE, "model output '%s' is %dx%dx%d; the last layer must give class scores (C x 1 x 1)",
                     out->name, out->c, out->h, out->w);
  if (out->c < 2) return mh__error(MH_ERR_SHAPE, "model output '%s' has %d class(es); need at least 2", out->name, out->c);
  for (int i = 1; i < g->n_nodes - 1; i++)
    if (g->nodes[i].n_consumers == 0)
      return mh__error(MH_ERR_INVALID_ARG, "layer '%s' is never used (only the last layer may be an output)",
                       g->nodes[i].name);
  return MH_OK;
}

int64_t mh_graph_param_count(const mh_graph *g) { return g->n_param_floats; }

int64_t mh_node_macs(const mh_graph *g, int id) {
  const mh_node *n = &g->nodes[id];
  const mh_node *in = &g->nodes[n->in[0]];
  switch (n->op) {
    case MH_OP_CONV2D: return (int64_t)n->c * n->h * n->w * (in->c / n->groups) * n->k * n->k;
    case MH_OP_LINEAR: return (int64_t)n->c * in->c * in->h * in->w;
    default: return 0;
  }
}

int mh_graph_backward_needs(const mh_graph *g, const unsigned char *trainable, unsigned char *trains,
                            unsigned char *needs_bwd) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) { /* forward order: the inputs are decided first */
    trains[i] = i > 0 && g->nodes[i].n_params && (!trainable || trainable[i]);
    needs_bwd[i] = trains[i] || (!trainable && i > 0); /* no mask: every backward runs, as it always has */
    for (int k = 0; k < g->nodes[i].n_in && i > 0; k++) needs_bwd[i] |= needs_bwd[g->nodes[i].in[k]];
    n += trains[i];
  }
  return n;
}
