/* The op interface: what the executor hands an op (its inputs, output, gradients, parameters,
 * scratch) and the table of per-op forward/backward functions. Gradients are true dL/dx. */
#ifndef MH_OPS_OPS_H
#define MH_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "graph/graph.h"

/* Which arithmetic conv and linear layers use (the algorithm decides; other ops stay FP32). */
typedef enum mh_precision {
  MH_PRECISION_FP32 = 0,
  MH_PRECISION_INT8 = 1 /* int8 x int8 -> int32 GEMMs with per-tensor power-of-two scales, FP32 around them */
} mh_precision;

/* Shapes: every activation is NCHW with the node's per-sample (c, h, w); n is the batch. */
typedef struct mh_op_ctx {
  const mh_graph *g;
  const mh_node *node;
  int n;              /* batch */
  const float *x[2];  /* inputs, (n, in.c, in.h, in.w) */
  float *y;           /* output, (n, c, h, w) */
  const float *dy;    /* backward: dL/dy */
  float *dx[2];       /* backward: dL/dx, or NULL when the input needs no gradient */
  int dx_accumulate[2]; /* 1: add into dx (another consumer wrote it first), 0: overwrite */
  float *w;           /* this node's parameters, in registration order (weight, bias) */
  float *dw;          /* their gradients: overwritten by backward */
  float *buf;         /* this node's persistent buffers (batch-norm running statistics) */
  float *state;       /* per-step saved state from forward to backward (state_floats) */
  float *scratch;     /* scratch_floats, shared by all ops (valid during one call) */
  int training;
  int reference;      /* 1: use the oracle kernels (naive loops) */
  int precision;      /* mh_precision */
  uint64_t seed;      /* stochastic rounding key: (seed, step, node) */
  long step;
  int node_id;
  mh_pool *pool;
  const mh_cpu_kernels *kt;
} mh_op_ctx;

typedef struct mh_op_impl {
  int save_input;   /* backward reads the inputs */
  int save_output;  /* backward reads the output */
  int alias_input;  /* the output is the input's memory (flatten) */
  size_t (*scratch_floats)(const mh_graph *g, const mh_node *node, int n, int precision);
  size_t (*state_floats)(const mh_node *node);
  void (*forward)(mh_op_ctx *ctx);
  void (*backward)(mh_op_ctx *ctx);
} mh_op_impl;

const mh_op_impl *mh_op_impl_get(mh_op_type op);

/* Per-op tables, defined in src/ops/<op>.c */
extern const mh_op_impl mh_op_conv2d, mh_op_linear, mh_op_batchnorm, mh_op_relu, mh_op_relu6, mh_op_maxpool,
    mh_op_avgpool, mh_op_gap, mh_op_add, mh_op_flatten;

/* Softmax cross-entropy over (n, classes) logits with mean reduction: returns the loss and writes
 * dlogits = (softmax - onehot) / n when dlogits is non-NULL. Labels must be in [0, classes). */
double mh_softmax_xent_f32(const float *logits, const int32_t *labels, int n, int classes, float *dlogits);

/* Adds dy into dx, or copies it (accumulate = 0), over n floats. */
void mh__add_or_copy(float *dx, const float *dy, size_t n, int accumulate);


#endif
