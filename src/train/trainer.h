/* The trainer object behind mh_trainer: model, executor, pool, optimizer state and the training
 * position (step, epoch, batch) that checkpoints save and restore. Internal. */
#ifndef MH_TRAIN_TRAINER_H
#define MH_TRAIN_TRAINER_H

#include <signal.h>
#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "graph/executor.h"
#include "train/algo.h"
#include "train/model.h"

struct mh_trainer {
  mh_model *m;
  mh_train_config cfg;
  char precision[16], rescale[16], mu[64], backend[8], profile[4352]; /* owned copies of the config's strings (a path up to PATH_MAX) */
  struct mh_dsp *dsp;    /* the DSP session the DSP backend runs on (NULL: CPU only) */
  struct mh_dsp_counts *dsp_counts;
  struct mh_dsp_backend *dsp_backend; /* the backend the executor gives the placed passes to */
  const mh_algo *algo;
  mh_pool *pool;
  const mh_cpu_kernels *kt;
  mh_executor *ex;
  int planned_batch;
  float *momentum;       /* SGD momentum buffers, or Adam's first moments: the parameters' layout */
  float *adam_sq;        /* Adam's second moments (NULL under SGD) */
  char optimizer[8];     /* "sgd", "adam", "adamw" */
  volatile sig_atomic_t stop; /* mh_trainer_request_stop: mh_fit ends at the next step boundary */
  /* partial training: per parameter, 1 where it trains (NULL: all); the frozen layers' names */
  unsigned char *param_trains;
  char frozen[4096];
  /* the input normalisation of training, x = (pixel/255 - mean[c]) / std[c]: from the training
   * split's statistics (mh_fit) or a checkpoint; norm_known 0: not yet known */
  float norm_mean[3], norm_std[3];
  int norm_known;
  float *logits;         /* integer algorithms: dequantised logits (+ loss work space) for a batch */
  long step;             /* optimizer steps taken */
  int epoch;             /* current epoch, 0-based */
  long batch_in_epoch;   /* next batch of the current epoch */
  long steps_per_epoch;  /* known once a data set is attached (fit); 0 before */
};

/* What rescaling int32 results to int8 did since the last reset (integer algorithms). */
void mh__trainer_rescale_report(const mh_trainer *t, mh_rescale_report *r);

/* niti's gradient bit width for the current epoch; 0 for float-updated algorithms. */
int mh__trainer_mu(const mh_trainer *t);

/* The learning rate for the trainer's current position. */
double mh__trainer_lr(const mh_trainer *t);
/* Plans memory for batches up to `batch` (the prepare stage). */
int mh__trainer_prepare(mh_trainer *t, int batch);

/* SGD with momentum, weight decay and optional Nesterov, PyTorch semantics (dampening 0):
 * d = g + wd*w; buf = first ? d : momentum*buf + d; d = nesterov ? d + momentum*buf : buf; w -= lr*d. */
/* Adam (decoupled = 0: L2 term wd*w added to the gradient) and AdamW (decoupled = 1: w *= 1 - lr*wd
 * first), torch.optim 1.13 (single-tensor path): m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 * w -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps); step counts from 1. */
void mh__adam_step(mh_pool *pool, float *w, const float *g, float *m, float *v, long n, double lr, double b1, double b2,
                   double eps, double wd, int decoupled, long step);
/* Marks the layers a --freeze / --train-only list names (comma-separated names, a..b ranges in
 * graph order, last:N = the last N layers with parameters): only layers with parameters; an error
 * names what matched nothing. `what` names the option in messages. */
int mh__layers_resolve(const mh_graph *g, const char *spec, const char *what, unsigned char *mark);
/* Freezes the layers `freeze` names, or all but those `train_only` names (both NULL: all train). */
int mh__trainer_set_frozen(mh_trainer *t, const char *freeze, const char *train_only);
/* Allocates Adam's second moments (zero) if the trainer has none. */
int mh__trainer_adam_state(mh_trainer *t);
void mh__sgd_step(mh_pool *pool, float *w, const float *g, float *buf, long n, float lr, float momentum, float wd,
                  int nesterov, int first);

#endif
