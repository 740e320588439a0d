/* The op interface: what the executor hands an op (its inputs, output, gradients, parameters,
 * scratch) and the table of per-op forward/backward functions. Gradients are true dL/dx. */
#ifndef MH_OPS_OPS_H
#define MH_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "graph/graph.h"
#include "quant/rescale.h"

/* The arithmetic the ops run (the algorithm in src/train/algo.c picks it; ops never see which
 * algorithm runs, only the number format). */
typedef enum mh_precision {
  MH_PRECISION_FP32 = 0,
  MH_PRECISION_INT8 = 1,   /* conv/linear: int8 x int8 -> int32 GEMMs with power-of-two scales, FP32 around them */
  MH_PRECISION_INTEGER = 2 /* every tensor int8 with a per-tensor exponent (value = q * 2^e), int32 inside GEMMs,
                              shifted back to int8 (pseudo-stochastic rounding) after each; parameters int8,
                              parameter gradients int32 */
} mh_precision;

/* The passes of an op as bits: what a backward call computes (ctx->passes), and which passes of a
 * node the schedule gives a backend (src/backend/backend.h). */
#define MH_PASS_FWD 1u   /* forward */
#define MH_PASS_BWD_W 2u /* backward-weight (GEMM ops) */
#define MH_PASS_BWD_D 4u /* backward-data (GEMM ops), or the whole backward pass of other ops */

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
  /* MH_PRECISION_INTEGER: the same buffers as int8 tensors, each with an exponent */
  const int8_t *qx[2];
  int8_t *qy;
  const int8_t *qdy;
  int8_t *qdx[2];
  int ex[2];          /* exponents of the inputs */
  int *ey;            /* forward writes the output's exponent */
  int edy;            /* backward: exponent of dL/dy */
  int *edx[2];        /* backward writes (or, accumulating, updates) each input gradient's exponent */
  const int8_t *qw;   /* this node's parameters as int8 */
  const int *ew;      /* their exponents, one per parameter */
  int32_t *qdw;       /* their gradients as int32 sums (exponent edy + ex, implied) */
  /* backward: the passes to compute, MH_PASS_BWD_W (parameter gradients) and/or MH_PASS_BWD_D (the
   * input gradient); 0: both. GEMM ops compute each completely by itself, so a backend can take
   * one while the CPU does the other. */
  unsigned passes;
  mh_rescale_mode rescale;
  mh_rescale_state *rs; /* this node's rescale history: [0] forward output, [1] input gradient */
  mh_rescale_counts *rc; /* counters to add to */
  /* int8 forward: an op that finds its output's max |y| for free records it here (as float bits,
   * raised atomically by each range; NULL: not wanted), and its consumers read it in x_absmax
   * (-1: not recorded), so quantising that input needs no max pass of its own */
  _Atomic uint32_t *y_absmax;
  float x_absmax[2];
} mh_op_ctx;

/* Raises the recorded max |y| to m (m >= 0: its float bits order as unsigned integers). */
void mh__op_record_absmax(const mh_op_ctx *ctx, float m);

typedef struct mh_op_impl {
  int save_input;   /* backward reads the inputs */
  int save_output;  /* backward reads the output */
  int alias_input;  /* the output is the input's memory (flatten) */
  int records_absmax; /* forward records max |y| through mh__op_record_absmax (int8 precision) */
  size_t (*scratch_floats)(const mh_graph *g, const mh_node *node, int n, int precision);
  /* per-step saved state (floats) for a batch of n: what backward needs besides its buffers */
  size_t (*state_floats)(const mh_graph *g, const mh_node *node, int n, int precision);
  void (*forward)(mh_op_ctx *ctx);
  void (*backward)(mh_op_ctx *ctx);
} mh_op_impl;

const mh_op_impl *mh_op_impl_get(mh_op_type op);
/* The integer-tensor version of an op (MH_PRECISION_INTEGER), or NULL when it has none. */
const mh_op_impl *mh_op_impl_int_get(mh_op_type op);
/* The implementation the executor runs for an op in a precision (NULL: unsupported). */
const mh_op_impl *mh_op_impl_for(mh_op_type op, int precision);

/* Per-op tables, defined in src/ops/<op>.c */
extern const mh_op_impl mh_op_conv2d, mh_op_linear, mh_op_batchnorm, mh_op_relu, mh_op_relu6, mh_op_maxpool,
    mh_op_avgpool, mh_op_gap, mh_op_add, mh_op_flatten;

/* Softmax cross-entropy over (n, classes) logits with mean reduction: returns the loss and writes
 * dlogits = (softmax - onehot) / n when dlogits is non-NULL. Labels must be in [0, classes). */
double mh_softmax_xent_f32(const float *logits, const int32_t *labels, int n, int classes, float *dlogits);

/* MH_PRECISION_INT8 forms: conv and linear save their int8 input and weights for backward
 * (not the FP32 input); ReLU/ReLU6 save a byte mask, max-pool the window positions, batch norm an
 * int8 copy of its normalised input. */
extern const mh_op_impl mh_op_conv2d_s8, mh_op_linear_s8, mh_op_relu_s8, mh_op_relu6_s8, mh_op_maxpool_s8,
    mh_op_batchnorm_s8;

extern const mh_op_impl mh_op_conv2d_int, mh_op_linear_int, mh_op_relu_int, mh_op_maxpool_int, mh_op_add_int,
    mh_op_flatten_int;

/* A fully connected layer's input features F (the input flattened) and outputs O (linear.c). */
void mh__linear_dims(const mh_graph *g, const mh_node *nd, int *F, int *O);

/* The backward GEMMs (int32) of a fully connected layer on the CPU: dW (O x F) = dy^T x (BWD_W) and
 * dx (N x F) = dy W (BWD_D), as `parts` asks. */
void mh__linear_backward_gemms(const mh_op_ctx *ctx, int N, int F, int O, const int8_t *xq, const int8_t *wq,
                               const int8_t *dyq, int32_t *dw, int32_t *dx, unsigned parts);

/* The int8 linear layer's pieces a backend shares (linear.c): buffers (saved exponents, int8 x and W;
 * scratch: int8 dy, the int32 result or dW, the input gradient's int32 sums), the forward's
 * quantisation and completion (FP32 y with the bias from the int32 result in acc), dy's
 * quantisation (returns its exponent), and the completion of each backward pass. */
typedef struct {
  int32_t *e;
  int8_t *xq, *wq, *dyq;
  int32_t *acc, *dxacc;
} mh_linear_s8_bufs;
void mh__linear_s8_bufs(const mh_op_ctx *ctx, int N, int F, int O, mh_linear_s8_bufs *b);
void mh__linear_s8_quantize_inputs(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b);
void mh__linear_s8_finish_forward(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b);
int mh__linear_s8_quantize_dy(mh_op_ctx *ctx, int N, int O, const mh_linear_s8_bufs *b);
void mh__linear_s8_finish_weights(mh_op_ctx *ctx, int N, int F, int O, const mh_linear_s8_bufs *b, int ey);
void mh__linear_s8_finish_dx(mh_op_ctx *ctx, int N, int F, const mh_linear_s8_bufs *b, int ey);

/* The integer linear layer's (linear_int.c): acc (N x O) from a transposed result y (O x N) with the
 * aligned bias; the bias gradient; the input gradient's completion from its int32 sums. */
void mh__linear_int_untranspose(const mh_op_ctx *ctx, const int32_t *y, int N, int F, int O, int e_acc, int32_t *acc);
void mh__linear_int_bias_grad(mh_op_ctx *ctx, int N, int F, int O);
void mh__linear_int_finish_dx(mh_op_ctx *ctx, int N, int F, int O, const int32_t *acc);

/* Integer helpers (src/ops/int_common.c). Writes n int8 values with exponent e into input k's
 * gradient: a copy, or (accumulate) an exponent-aligned sum that stays in int8. */
void mh__int_emit_grad(mh_op_ctx *ctx, int k, const int8_t *g, int e, long n);
/* y = a * 2^ea + b * 2^eb in int8: both aligned to the larger exponent (nearest), summed, and
 * shifted by one more bit when a sum leaves [-127, 127]. Returns y's exponent. y may alias a. */
int mh__int_add(mh_pool *pool, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, long n);
/* Requantises an int32 result with this node's rescale slot (0 forward, 1 backward) and the
 * pseudo-stochastic rounding; returns the shift applied. */
int mh__int_rescale(mh_op_ctx *ctx, int slot, const int32_t *acc, long n, int8_t *out);

/* NITI's integer softmax-cross-entropy gradient for int8 logits o (n x classes, exponent e): writes
 * g (n x classes, int8, exponent 0). work holds `classes` int64. The loss value is not integer:
 * callers compute it in float from o * 2^e. */
void mh_softmax_xent_grad_int(const int8_t *o, int e, const int32_t *labels, int n, int classes, int64_t *work,
                              int8_t *g);

/* Adds dy into dx, or copies it (accumulate = 0), over n floats. */
void mh__add_or_copy(float *dx, const float *dy, size_t n, int accumulate);


#endif
