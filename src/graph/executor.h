/* The executor: the prepare stage plans activation/gradient memory for a batch size and mode; the
 * execute stage runs forward and backward over the graph with no allocation and no planning. */
#ifndef MH_GRAPH_EXECUTOR_H
#define MH_GRAPH_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "graph/graph.h"
#include "quant/rescale.h"

typedef struct mh_executor mh_executor;

typedef struct mh_exec_stats {
  size_t arena_bytes;      /* planned activations + gradients (with reuse) */
  size_t arena_naive_bytes; /* the same buffers without reuse */
  size_t scratch_bytes;    /* shared op scratch (im2col columns) */
  size_t state_bytes;      /* per-step saved state (batch-norm statistics) */
} mh_exec_stats;

int mh_exec_init(mh_executor **ex, const mh_graph *g, mh_pool *pool, const mh_cpu_kernels *kt);
void mh_exec_free(mh_executor *ex);
/* 1: oracle kernels for every op (tests) */
void mh_exec_set_reference(mh_executor *ex, int reference);

/* The ops' arithmetic (mh_precision in ops/ops.h); changing it drops the plans. With
 * MH_PRECISION_INTEGER activations and gradients are int8 (a quarter of the FP32 arena), params
 * are int8 with exponents (mh_exec_set_param_exps) and parameter gradients int32. */
void mh_exec_set_precision(mh_executor *ex, int precision);
/* Keys stochastic rounding of the next forward/backward: (seed, step, node, element). */
void mh_exec_set_step(mh_executor *ex, uint64_t seed, long step);

/* Prepare stage: plans memory for batches of up to `max_batch` in training (forward+backward) or
 * inference mode. Cheap when nothing changed. */
int mh_exec_prepare(mh_executor *ex, int max_batch, int training);
int mh_exec_stats_get(const mh_executor *ex, int training, mh_exec_stats *st);

/* Execute stage. x: (n, c, h, w) with n <= the prepared batch. params/buffers are the model's flat
 * arrays (see graph.h offsets). Forward in training mode updates batch-norm running statistics. */
int mh_exec_forward(mh_executor *ex, const float *x, int n, const void *params, float *buffers, int training);
const float *mh_exec_output(const mh_executor *ex); /* logits (n, classes) of the last forward */
float *mh_exec_output_grad(mh_executor *ex);        /* write dL/dlogits here before backward */
/* Backward of the last training forward: writes every parameter gradient into grads (overwrite). */
int mh_exec_backward(mh_executor *ex, const void *params, void *grads);

/* ---- integer tensors (MH_PRECISION_INTEGER) ---- */
/* Exponents of the parameters (one per mh_param), read on every forward/backward. */
void mh_exec_set_param_exps(mh_executor *ex, const int *exps);
const int8_t *mh_exec_output_q(const mh_executor *ex, int *exp);
/* The exponents of every node's output (grad 0) or of its gradient (grad 1) after the last step. */
const int *mh_exec_exponents(const mh_executor *ex, int grad); /* int8 logits and their exponent */
int8_t *mh_exec_output_grad_q(mh_executor *ex, int exp);        /* write int8 dL/dlogits (exponent exp) here */
/* How int32 results are shifted back to int8 (adaptive by default), the per-tensor histories
 * (2 per node; checkpoints save them) and what rescaling did since the last reset. */
void mh_exec_set_rescale(mh_executor *ex, mh_rescale_mode mode);
/* Partial training: per node, 1 where its parameters train (NULL: every node's). Frozen layers
 * compute no weight gradient; backward stops below the first trainable layer (no input gradient is
 * computed for it, and frozen layers there save nothing for backward); a frozen batch norm
 * normalises with its running statistics (eval form) in training steps too. Plans again. An error
 * when no layer with parameters trains. */
int mh_exec_set_trainable(mh_executor *ex, const unsigned char *trainable);
/* 1: frozen batch norms keep normalising with batch statistics and updating their running
 * statistics (their gamma and beta stay fixed); 0 (default): the eval form. */
void mh_exec_set_frozen_bn_batch_stats(mh_executor *ex, int on);
mh_rescale_state *mh_exec_rescale_states(mh_executor *ex);
const mh_rescale_counts *mh_exec_rescale_counts(const mh_executor *ex);
void mh_exec_reset_rescale_counts(mh_executor *ex);

struct mh_backend;
/* Gives the passes `place` names (per node, MH_PASS_* bits; NULL: every pass the backend supports)
 * to a backend; the rest, and whatever the backend fails, run on the CPU (NULL backend: all). */
void mh_exec_set_backend(mh_executor *ex, const struct mh_backend *be, const unsigned char *place);
/* Per node, the first node of the backend segment it ended in the last forward (-1: none); NULL
 * without a backend that runs segments. */
const int *mh_exec_segment_first(const mh_executor *ex);
/* From that array (may be NULL) for n nodes: the last node of the segment that starts at node i, or i. */
static inline int mh_exec_segment_last(const int *seg_first, int n, int i) {
  for (int j = n - 1; seg_first && j > i; j--)
    if (seg_first[j] == i) return j;
  return i;
}
/* Per node, the passes the backend completed in the last step (since its forward); NULL without one. */
const unsigned char *mh_exec_backend_ran(const mh_executor *ex);

/* Per-node timing: when on, forward and backward seconds accumulate per node; the array has
 * 2 * n_nodes doubles (forward, backward), NULL when profiling is off. Turning on resets it. */
int mh_exec_set_profile(mh_executor *ex, int on);
const double *mh_exec_profile(const mh_executor *ex);


#endif
