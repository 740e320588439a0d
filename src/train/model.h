/* The model object behind the public mh_model handle: a graph plus its flat parameter, gradient
 * and buffer arrays. Internal: the trainer, checkpoints and tests reach inside. */
#ifndef MH_TRAIN_MODEL_H
#define MH_TRAIN_MODEL_H

#include "graph/graph.h"
#include "mandheling.h"

struct mh_model {
  mh_graph g;
  float *params;  /* g.n_param_floats, in registration order */
  float *grads;   /* same layout: dL/dparam of the last backward */
  float *buffers; /* g.n_buffer_floats: batch-norm running statistics */
  char *text;     /* the model in the text format (stored in checkpoints) */
  /* Integer parameters (algorithms that train in integers): int8 values at the float layout's
   * offsets, one exponent per parameter, int32 gradient sums. NULL until such an algorithm runs. */
  int8_t *qparams;
  int *qexp;
  int32_t *qgrads;
};

/* Allocates the integer parameters and quantises the float ones into them (nearest, each
 * parameter's exponent the smallest that fits its max |w| in [-127, 127], plus
 * MH_INT_HEADROOM_BITS so weights can grow). No-op when present. */
#define MH_INT_HEADROOM_BITS 1
int mh__model_make_integer(mh_model *m);

/* Takes ownership of a built graph and allocates/initialises its arrays. */
int mh__model_from_graph(mh_model **out, mh_graph *g, uint64_t seed);
/* PyTorch default initialisation: conv/linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (kaiming_uniform with a = sqrt(5)), batch-norm weight 1, bias 0, running mean 0, var 1. */
void mh__model_init_params(mh_model *m, uint64_t seed);

/* The integer parameters (qparams, qexp) from the float ones: per tensor a power-of-two exponent,
 * nearest rounding, one bit of headroom. */
void mh__model_quantize_params(mh_model *m);

/* mh_model_load_weights on a parsed safetensors file (`path` names it in messages). */
struct mh_st_file;
int mh__model_load_weights_st(mh_model *m, const struct mh_st_file *f, const char *path);

/* The parameters as floats into out (n_param_floats): the masters, or (integer = 1, an integer
 * model) the int8 values times 2^exponent. */
void mh__model_float_params(const mh_model *m, int integer, float *out);

#endif
