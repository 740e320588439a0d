/* fp32, int8 and niti: the algorithm table. fp32 and int8 share the FP32 loss and SGD with FP32
 * master weights (int8 differs only in the ops' arithmetic); niti is integer from end to end. */
#include "train/algo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/ops.h"
#include "quant/qformat.h"
#include "train/trainer.h"

static int classes_of(const struct mh_trainer *t) { return t->m->g.nodes[t->m->g.n_nodes - 1].c; }

/* ---- fp32 and int8: FP32 loss, SGD with momentum on FP32 masters ---- */
static int check_any(const mh_graph *g) { return MH_OK; }
static int setup_float(struct mh_trainer *t) { return MH_OK; }

static double loss_grad_f32(struct mh_trainer *t, const int32_t *labels, int n) {
  return mh_softmax_xent_f32(mh_exec_output(t->ex), labels, n, classes_of(t), mh_exec_output_grad(t->ex));
}

/* The update over one run [off, off + n) of trainable parameters. */
static void update_range(struct mh_trainer *t, long off, long n) {
  mh_model *m = t->m;
  if (strcmp(t->optimizer, "sgd")) {
    mh__adam_step(t->pool, m->params + off, m->grads + off, t->momentum + off, t->adam_sq + off, n, mh__trainer_lr(t),
                  t->cfg.beta1, t->cfg.beta2, t->cfg.eps, t->cfg.weight_decay, !strcmp(t->optimizer, "adamw"),
                  t->step + 1);
    return;
  }
  mh__sgd_step(t->pool, m->params + off, m->grads + off, t->momentum + off, n, (float)mh__trainer_lr(t), t->cfg.momentum,
               t->cfg.weight_decay, t->cfg.nesterov, t->step == 0);
}

/* Frozen parameters are not touched (not even by weight decay): the update runs over each run of
 * consecutive trainable parameters. */
static void update_sgd(struct mh_trainer *t) {
  const mh_graph *g = &t->m->g;
  if (!t->param_trains) {
    update_range(t, 0, (long)g->n_param_floats);
    return;
  }
  for (int i = 0; i < g->n_params;) {
    if (!t->param_trains[i]) {
      i++;
      continue;
    }
    int j = i;
    long off = (long)g->params[i].offset, n = 0;
    while (j < g->n_params && t->param_trains[j] && g->params[j].offset == off + n) n += (long)g->params[j++].numel;
    update_range(t, off, n);
    i = j;
  }
}

/* ---- niti: integer tensors, integer loss gradient, integer update ---- */
static int check_integer(const mh_graph *g) {
  for (int i = 1; i < g->n_nodes; i++)
    if (!mh_op_impl_int_get(g->nodes[i].op))
      return mh__error(MH_ERR_UNSUPPORTED,
                       "--precision niti trains integer-only models: node %d '%s' of %s is %s, which has no integer "
                       "form (niti supports conv, linear, relu, maxpool, add, flatten; use --precision int8 for "
                       "models with batch norm)",
                       i, g->nodes[i].name, g->model_name, mh_op_name(g->nodes[i].op));
  return MH_OK;
}

static int setup_niti(struct mh_trainer *t) {
  MH_TRY(mh__model_make_integer(t->m));
  mh_exec_set_param_exps(t->ex, t->m->qexp);
  return MH_OK;
}

static double loss_grad_niti(struct mh_trainer *t, const int32_t *labels, int n) {
  int e, classes = classes_of(t);
  const int8_t *o = mh_exec_output_q(t->ex, &e);
  /* the loss is only displayed: float cross-entropy of the dequantised logits */
  float *z = t->logits;
  for (long i = 0; i < (long)n * classes; i++) z[i] = ldexpf((float)o[i], e);
  double loss = mh_softmax_xent_f32(z, labels, n, classes, NULL);
  mh_softmax_xent_grad_int(o, e, labels, n, classes, (int64_t *)(z + (size_t)n * classes + 16),
                           mh_exec_output_grad_q(t->ex, 0));
  return loss;
}

void mh_niti_update(int8_t *w, const int32_t *g32, long n, int mu) {
  uint32_t m = 0;
  for (long i = 0; i < n; i++) m = mh_q_abs32(g32[i]) > m ? mh_q_abs32(g32[i]) : m;
  int b = mh_q_bitlen(m);
  if (b == 0) return;
  int s = b - mu;
  for (long i = 0; i < n; i++) {
    int32_t g = s < 1 ? g32[i] : mh_q_sat8(mh_q_round_psto(g32[i], s));
    w[i] = (int8_t)mh_q_sat8((int32_t)w[i] - g);
  }
}

static void update_niti(struct mh_trainer *t) {
  mh_model *m = t->m;
  int mu = mh__trainer_mu(t);
  for (int i = 0; i < m->g.n_params; i++) {
    const mh_param *p = &m->g.params[i];
    if (t->param_trains && !t->param_trains[i]) continue; /* frozen */
    mh_niti_update(m->qparams + p->offset, m->qgrads + p->offset, (long)p->numel, mu);
  }
}

int mh_niti_mu_check(const char *s) {
  if (!s) return MH_OK;
  const char *c = s;
  do {
    char *end;
    long v = strtol(c, &end, 10);
    if (end == c || v < 1 || v > 7 || (*end && *end != ','))
      return mh__error(MH_ERR_INVALID_ARG, "--mu '%s': expected comma-separated gradient bit widths in [1, 7]", s);
    c = *end ? end + 1 : end;
  } while (*c);
  return MH_OK;
}

int mh_niti_mu(const char *s, int epoch, int epochs) {
  if (!s || !*s) return 5 * epoch < 2 * epochs ? 4 : 5 * epoch < 4 * epochs ? 3 : 2;
  int v = 5;
  const char *c = s;
  for (int e = 0; e <= epoch && *c; e++) {
    char *end;
    v = (int)strtol(c, &end, 10);
    c = *end ? end + 1 : end;
  }
  return v;
}

static const mh_algo algos[] = {
    {"fp32", MH_PRECISION_FP32, 0, check_any, setup_float, loss_grad_f32, update_sgd},
    {"int8", MH_PRECISION_INT8, 0, check_any, setup_float, loss_grad_f32, update_sgd},
    {"niti", MH_PRECISION_INTEGER, 1, check_integer, setup_niti, loss_grad_niti, update_niti},
};

const mh_algo *mh_algo_find(const char *name) {
  for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
    if (name && strcmp(name, algos[i].name) == 0) return &algos[i];
  return NULL;
}

const char *mh_algo_names(void) { return "fp32, int8, niti"; }
