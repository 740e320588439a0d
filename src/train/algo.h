/* The training algorithms behind --precision (DESIGN.md section 3): which arithmetic the ops run,
 * how the loss gradient is formed, how parameters update. The only code that knows which runs. */
#ifndef MH_TRAIN_ALGO_H
#define MH_TRAIN_ALGO_H

#include <stdint.h>

#include "graph/graph.h"

struct mh_trainer;

typedef struct mh_algo {
  const char *name;     /* "fp32", "int8", "niti" */
  int precision;        /* the executor's mh_precision */
  int integer_params;   /* parameters live as int8 + exponent (the model's qparams) */
  /* MH_OK when the algorithm can train g, else an error naming the node that stops it. */
  int (*check)(const mh_graph *g);
  /* Sets up the trainer's state for this algorithm (integer parameters, schedules). */
  int (*setup)(struct mh_trainer *t);
  /* After a training forward: the mean loss, and dL/dlogits written for backward. */
  double (*loss_grad)(struct mh_trainer *t, const int32_t *labels, int n);
  /* After backward: updates the parameters from their gradients. */
  void (*update)(struct mh_trainer *t);
} mh_algo;

/* The algorithm called `name`, or NULL. */
const mh_algo *mh_algo_find(const char *name);
/* "fp32, int8, niti" for messages. */
const char *mh_algo_names(void);

/* NITI's integer update of one parameter: b = bit length of max|g32|; g = 0 when b = 0, g32 when
 * b - mu < 1, else g32 shifted by b - mu with pseudo-stochastic rounding; w = clip(w - g, +-127). */
void mh_niti_update(int8_t *w, const int32_t *g32, long n, int mu);

/* The gradient bit width mu for an epoch from a schedule string ("5,4,3": per epoch, the last
 * repeats; NULL: 4, then 3 from 40% of `epochs`, then 2 from 80%, i.e. 4,4,3,3,2 for 5 epochs:
 * NITI's 5/4/3 over 200 epochs of batch 256 took steps too coarse for short runs at batch 64). */
int mh_niti_mu(const char *schedule, int epoch, int epochs);
/* Validates a schedule string: values in [1, 7] separated by commas. */
int mh_niti_mu_check(const char *schedule);

#endif
