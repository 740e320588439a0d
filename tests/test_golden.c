/* Golden tests: the C engine against PyTorch (fixtures from scripts/gen_golden.py, reference/zoo.py).
 *
 * For each case (lenet5, cnn6, resblock, fanout) the fixture holds PyTorch's initial parameters, a batch
 * of 4, the logits, loss and every parameter gradient of one training-mode forward/backward, the losses
 * of 5 SGD steps (lr 0.05, momentum 0.9, wd 5e-4, the same batch each step), the parameters after them,
 * the batch-norm running statistics and the eval-mode logits. The C model gets the same parameters; then
 *   1. forward + softmax cross-entropy + backward through the executor (the trainer's step without the
 *      SGD update): logits, loss and every gradient are compared (fanout: a tensor with three readers,
 *      whose gradient is the sum of three parts);
 *   2. from the same start, 5 mh_trainer_step calls: each step's loss, the final parameters, the BN
 *      running statistics and the logits of an inference forward (BN from its running statistics);
 *   3. fanout only: 5 steps with Nesterov momentum under a per-step cosine schedule against
 *      torch.optim.SGD(nesterov=True) + CosineAnnealingLR, and the step and cosine schedules' rates
 *      against StepLR and CosineAnnealingLR.
 * Everything runs on every kernel table this CPU has (FP32 summation order differs between them, within
 * the tolerances below) and once more with the oracle kernels (force_reference = 1).
 * Any mismatch fails the test (exit 1) naming the case, kernels, tensor and worst element. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "train/safetensors.h"
#include "train/trainer.h"
#include "testlib.h"
#include "tl_tables.h"

#define BATCH 4
#define STEPS 5
#define LR 0.05f
#define MOMENTUM 0.9f
#define WD 5e-4f

/* ---- tolerances -----------------------------------------------------------------------------
 * Both sides compute in FP32 but sum in different orders (blocked GEMM / im2col here, ATen/oneDNN
 * there; BN statistics in double here, float there), so exact equality is not expected. Yardsticks:
 * PyTorch itself, FP32 vs FP64 from the same start, differs by <= 4e-7 on logits, <= 2.3e-6 * max|g|
 * on gradients and <= 3.2e-6 * max|w| on the parameters after 5 steps (cnn6, the worst case: its loss
 * climbs to 14 and the trajectory amplifies rounding). The engine's differences to PyTorch FP32 are
 * of the same size (fast and oracle kernels alike): logits <= 6e-7, gradients <= 2.6e-6 * max|g|,
 * 5-step losses <= 5.6e-5 (on a loss of 14), final parameters <= 5e-6 * max|w|, BN statistics
 * <= 1.2e-6 * max. Each bound below is >= 10x that noise, and still far below what a real bug does:
 * perturbing one conv weight by 1e-3 gives gradient errors ~2e-2 * max|g|; dropping weight decay
 * moves the 5-step parameters by >= 3.3e-4 * max|w| (lenet5, resblock) and 0.14 (cnn6); lr off by
 * 0.1% by >= 9e-4. */
/* logits and loss, elementwise: |got - want| <= atol + rtol * |want| */
#define TOL_LOGIT_ATOL 1e-5
#define TOL_LOGIT_RTOL 1e-4
/* gradients, per tensor: max|got - want| <= rtol * max|want| (+ a 1e-9 floor for all-zero tensors).
 * Relative to the tensor's largest gradient, not per element: single elements are sums of terms of
 * both signs and may cancel to ~0, where a per-element relative error means nothing. */
#define TOL_GRAD_RTOL 5e-5
/* losses of the 5 SGD steps, elementwise like the loss (the step-5 loss of cnn6 is ~14) */
#define TOL_LOSSES_ATOL 1e-5
#define TOL_LOSSES_RTOL 1e-4
/* parameters after 5 steps and BN running statistics, per tensor: max|got - want| <= rtol * max|want| */
#define TOL_FINAL_RTOL 5e-5
#define TOL_BUF_RTOL 3e-5
#define TOL_FLOOR 1e-9
/* eval-mode logits after the 5 steps, elementwise: they inherit the final parameters' and running
 * statistics' differences (measured <= 3.1e-5, cnn6); batch norm evaluated without its square root moves
 * them by >= 5% */
#define TOL_EVAL_ATOL 1e-4
#define TOL_EVAL_RTOL 1e-3
/* learning rates (see optimiser_case) */
#define TOL_LR_RTOL 1e-6

static const char k_resblock_text[] =
    "# nn.Sequential(zoo.Basic(16, 32, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))\n"
    "input 16x8x8\n"
    "conv      c1    out=32 k=3 stride=2 pad=1 bias=false\n"
    "batchnorm b1\n"
    "relu      r1\n"
    "conv      c2    out=32 k=3 pad=1 bias=false\n"
    "batchnorm b2\n"
    "conv      sc    out=32 k=1 stride=2 bias=false in=input\n"
    "batchnorm sc_bn\n"
    "add       add   in=b2,sc_bn\n"
    "relu      out   \n"
    "gap       gap\n"
    "flatten   flat\n"
    "linear    fc    out=10\n";

typedef struct {
  const char *name;
  const char *zoo;  /* zoo name, or NULL: built from text */
  const char *text;
} golden_case;

static const char k_fanout_text[] =
    "# scripts/gen_golden.py FanOut: r1 is read by c2, a1 and sc; in backward sc writes its gradient,\n"
    "# then the add a1 and the conv c2 add theirs\n"
    "input 3x8x8\n"
    "conv      c1  out=8 k=3 pad=1\n"
    "relu      r1\n"
    "conv      c2  out=8 k=3 pad=1 bias=false\n"
    "batchnorm b2\n"
    "add       a1  in=b2,r1\n"
    "conv      sc  out=8 k=1 bias=false in=r1\n"
    "add       a2  in=a1,sc\n"
    "relu      r2\n"
    "maxpool   p   k=2\n"
    "flatten   f\n"
    "linear    fc  out=10\n";

static const golden_case k_cases[] = {
    {"lenet5", "lenet5", NULL},
    {"cnn6", "cnn6", NULL},
    {"resblock", NULL, k_resblock_text},
    {"fanout", NULL, k_fanout_text},
};

/* the worst error of a category over a run, for the summary line */
typedef struct {
  double logits, loss, grad, losses, final, buf, eval; /* logits/loss/losses/eval: max abs; others: max abs / max|want| */
} summary;

static const char *g_case, *g_mode;

static const mh_st_tensor *need(const mh_st_file *f, const char *name, mh_dtype dt) {
  const mh_st_tensor *t = mh_st_find(f, name);
  if (!t) {
    TL_FAIL("%s: fixture has no tensor '%s'", g_case, name);
    return NULL;
  }
  if (t->dtype != dt) {
    TL_FAIL("%s: fixture tensor '%s' has dtype %s, expected %s", g_case, name, mh_dtype_name(t->dtype),
            mh_dtype_name(dt));
    return NULL;
  }
  return t;
}

static int64_t numel(const mh_st_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* The fixture's floats, copied (the reader does not promise alignment). */
static float *floats(const mh_st_tensor *t) {
  float *a = malloc(t->nbytes + 4);
  if (a) memcpy(a, t->data, t->nbytes);
  return a;
}

/* Elementwise |got - want| <= atol + rtol*|want| over n values; returns the max abs error. */
static double cmp_elementwise(const char *what, const float *got, const float *want, int64_t n, double atol,
                              double rtol) {
  double worst = 0;
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - (double)want[i]);
    if (!(e <= atol + rtol * fabs((double)want[i])) && bad < 0) bad = i;
    if (!(e <= worst)) worst = e; /* NaN propagates */
  }
  tl_checks++;
  if (bad >= 0)
    TL_FAIL("%s [%s] %s: element %lld: got %.9g, PyTorch %.9g (|diff| %.3g > atol %g + rtol %g * |want|)", g_case,
            g_mode, what, (long long)bad, got[bad], want[bad], fabs((double)got[bad] - want[bad]), atol, rtol);
  return worst;
}

/* Per tensor: max|got[i*stride] - want[i]| <= rtol * max|want| + floor; returns max err / max|want|.
 * `stride` > 1 when the fixture holds a subsample flat[0::stride] of the tensor. */
static double cmp_tensor(const char *what, const float *got, int64_t stride, const float *want, int64_t n,
                         double rtol) {
  double scale = 0, worst = 0;
  int64_t wi = 0;
  for (int64_t i = 0; i < n; i++)
    if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i * stride] - (double)want[i]);
    if (!(e <= worst)) worst = e, wi = i;
  }
  double tol = rtol * scale + TOL_FLOOR, rel = scale > 0 ? worst / scale : worst;
  tl_checks++;
  if (!(worst <= tol))
    TL_FAIL("%s [%s] %s: max |diff| %.3g at element %lld (got %.9g, PyTorch %.9g) > %g * max|want| %.3g", g_case,
            g_mode, what, worst, (long long)(wi * stride), got[wi * stride], want[wi], rtol, scale);
  return rel;
}

static int subsample_stride(const mh_st_file *f, const char *name) {
  const char *list = mh_st_meta_get(f, "subsampled"), *s = mh_st_meta_get(f, "subsample_stride");
  if (!list || !s) return 1;
  size_t len = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
    if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) return atoi(s);
  return 1;
}

/* Compares one model tensor with fixture tensor `name` (full, or subsampled per the metadata). */
static double cmp_param_tensor(const mh_st_file *f, const char *name, const char *label, const float *got,
                               int64_t n_got, double rtol) {
  const mh_st_tensor *t = need(f, name, MH_DTYPE_F32);
  if (!t) return INFINITY;
  int stride = subsample_stride(f, name);
  int64_t n = numel(t);
  if (stride < 1 || n != (n_got + stride - 1) / stride) {
    TL_FAIL("%s: fixture '%s' has %lld values, the model's tensor %lld (stride %d)", g_case, name, (long long)n,
            (long long)n_got, stride);
    return INFINITY;
  }
  float *want = floats(t);
  char what[256];
  snprintf(what, sizeof what, "%s (%s%s)", name, label, stride > 1 ? ", subsampled" : "");
  double r = cmp_tensor(what, got, stride, want, n, rtol);
  free(want);
  return r;
}

static double maxd(double a, double b) { return (a >= b || a != a) ? a : b; }

static int meta_matches(const mh_st_file *f, const char *key, double want) {
  const char *v = mh_st_meta_get(f, key);
  if (!v || fabs(strtod(v, NULL) - want) > 1e-6 * fabs(want)) {
    TL_FAIL("%s: fixture metadata %s=%s, the test uses %g (regenerate or update the test)", g_case, key,
            v ? v : "(missing)", want);
    return 0;
  }
  return 1;
}

static int build_model(const golden_case *c, mh_model **m) {
  if (c->zoo) return mh_model_create(m, c->zoo, 1);
  mh_graph g;
  int st = mh_model_parse(&g, c->text, strlen(c->text), c->name);
  if (st) return st;
  return mh__model_from_graph(m, &g, 1);
}

/* Builds the model and loads the fixture's parameters; checks count, order and shapes. */
static int load_model(const golden_case *c, const mh_st_file *f, mh_model **out) {
  *out = NULL;
  mh_model *m;
  int st = build_model(c, &m);
  if (st) {
    TL_FAIL("%s: building the model failed: %s", c->name, mh_last_error());
    return st;
  }
  const mh_graph *g = &m->g;
  const char *np = mh_st_meta_get(f, "n_params"), *nb = mh_st_meta_get(f, "n_buffers"),
             *pc = mh_st_meta_get(f, "param_count");
  int ok = 1;
  tl_checks += 3;
  if (!np || atoi(np) != g->n_params) {
    TL_FAIL("%s: %d parameter tensors, PyTorch %s", c->name, g->n_params, np ? np : "?");
    ok = 0;
  }
  if (!nb || atoi(nb) != g->n_buffers) {
    TL_FAIL("%s: %d buffers, PyTorch %s", c->name, g->n_buffers, nb ? nb : "?");
    ok = 0;
  }
  if (!pc || atoll(pc) != mh_model_param_count(m)) {
    TL_FAIL("%s: %lld parameters, PyTorch %s", c->name, (long long)mh_model_param_count(m), pc ? pc : "?");
    ok = 0;
  }
  for (int i = 0; ok && i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    char name[64];
    snprintf(name, sizeof name, "param.%d", i);
    const mh_st_tensor *t = need(f, name, MH_DTYPE_F32);
    if (!t) {
      ok = 0;
      break;
    }
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    tl_checks++;
    if (!same) {
      char a[64] = "", b[64] = "";
      for (int d = 0; d < p->ndim; d++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%d", d ? "x" : "", p->shape[d]);
      for (int d = 0; d < t->ndim; d++)
        snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? "x" : "", (long long)t->shape[d]);
      TL_FAIL("%s: parameter %d (%s) has shape %s, PyTorch's is %s", c->name, i, p->name, a, b);
      ok = 0;
      break;
    }
    memcpy(m->params + p->offset, t->data, (size_t)p->numel * sizeof(float));
  }
  for (int j = 0; ok && j < g->n_buffers; j++) {
    char name[64];
    snprintf(name, sizeof name, "buf.%d", j);
    const mh_st_tensor *t = need(f, name, MH_DTYPE_F32);
    tl_checks++;
    if (!t || numel(t) != g->buffers[j].numel) {
      TL_FAIL("%s: buffer %d (%s) has %lld values, PyTorch's %lld", c->name, j, g->buffers[j].name,
              (long long)g->buffers[j].numel, t ? (long long)numel(t) : -1LL);
      ok = 0;
    }
  }
  if (!ok) {
    mh_model_free(m);
    return MH_ERR_SHAPE;
  }
  *out = m;
  return MH_OK;
}

/* From the fixture's start: 5 steps with Nesterov momentum and a per-step cosine schedule to 0 over
 * the 5 steps (torch.optim.SGD(nesterov=True) + CosineAnnealingLR(T_max=5)); then the rates of the
 * step schedule (StepLR(step_size=2, gamma=0.5), 7 epochs, also as this engine's default step size
 * epochs/3) and of a 12-step cosine schedule against the fixture's. */
static void optimiser_case(const mh_st_file *f, mh_model *m, const float *x, const int32_t *labels, const char *isa,
                           int reference,
                           summary *s) {
  const mh_graph *g = &m->g;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.batch = BATCH, cfg.lr = LR, cfg.momentum = MOMENTUM, cfg.weight_decay = WD, cfg.nesterov = 1;
  cfg.schedule = MH_SCHEDULE_COSINE, cfg.epochs = 1, cfg.threads = 2, cfg.force_reference = reference, cfg.isa = isa;
  mh_trainer *t = NULL;
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) return;
  t->steps_per_epoch = STEPS; /* what mh_fit sets from the data: the schedule spans 5 steps */
  float got[STEPS];
  for (int k = 0; k < STEPS; k++) {
    got[k] = NAN;
    CHECK_OK(mh_trainer_step(t, x, labels, BATCH, &got[k]));
  }
  const mh_st_tensor *tl = need(f, "losses_nesterov", MH_DTYPE_F32);
  if (tl && numel(tl) == STEPS) {
    float *want = floats(tl);
    s->losses = maxd(s->losses, cmp_elementwise("losses (5 Nesterov steps, cosine)", got, want, STEPS, TOL_LOSSES_ATOL,
                                                TOL_LOSSES_RTOL));
    free(want);
  }
  for (int i = 0; i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    char name[64];
    snprintf(name, sizeof name, "final_nesterov.%d", i);
    s->final = maxd(s->final, cmp_param_tensor(f, name, p->name, m->params + p->offset, p->numel, TOL_FINAL_RTOL));
  }
  /* learning rates: the fixture's are float32 values of PyTorch's double rates; ours start from a float
   * lr (0.05f = 0.05 + 7e-10), so they agree to ~1e-8 relative; a wrong formula or index is off by
   * far more (a factor of gamma, or a cosine phase) */
  const mh_st_tensor *ts = need(f, "lr_step", MH_DTYPE_F32), *tc = need(f, "lr_cosine", MH_DTYPE_F32);
  for (int dflt = 0; ts && dflt <= 1; dflt++) {
    t->cfg.schedule = MH_SCHEDULE_STEP, t->cfg.epochs = (int)numel(ts), t->cfg.gamma = 0.5f;
    t->cfg.step_size = dflt ? 0 : 2; /* 0: the default, epochs / 3 = 2 for 7 epochs */
    float *want = floats(ts), lr[64];
    for (int e = 0; e < numel(ts) && e < 64; e++) t->epoch = e, t->step = 1000 + e, lr[e] = (float)mh__trainer_lr(t);
    cmp_elementwise(dflt ? "step schedule rates (default step size)" : "step schedule rates", lr, want, numel(ts), 0,
                    TOL_LR_RTOL);
    free(want);
  }
  if (tc) {
    t->cfg.schedule = MH_SCHEDULE_COSINE, t->cfg.epochs = 3, t->steps_per_epoch = 4; /* 12 steps in all */
    float *want = floats(tc), lr[64];
    for (int k = 0; k < numel(tc) && k < 64; k++) t->epoch = k / 4, t->step = k, lr[k] = (float)mh__trainer_lr(t);
    cmp_elementwise("cosine schedule rates (12 steps)", lr, want, numel(tc), 1e-9, TOL_LR_RTOL);
    free(want);
  }
  mh_trainer_free(t);
}

/* From the fixture's start: 5 steps of Adam (lr 0.01, weight decay 5e-4 as an L2 term) or AdamW
 * (lr 0.01, decoupled weight decay 0.01) at a constant rate, betas (0.9, 0.999), eps 1e-8, against
 * torch.optim.Adam / AdamW: the losses before each step and the final parameters. */
static void adam_case(const mh_st_file *f, mh_model *m, const float *x, const int32_t *labels, const char *isa,
                      int reference, const char *opt, summary *s) {
  const mh_graph *g = &m->g;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.batch = BATCH, cfg.lr = 0.01f, cfg.optimizer = opt, cfg.weight_decay = strcmp(opt, "adam") ? 0.01f : WD;
  cfg.schedule = MH_SCHEDULE_CONSTANT, cfg.epochs = 1, cfg.threads = 2, cfg.force_reference = reference, cfg.isa = isa;
  mh_trainer *t = NULL;
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) return;
  float got[STEPS];
  for (int k = 0; k < STEPS; k++) {
    got[k] = NAN;
    CHECK_OK(mh_trainer_step(t, x, labels, BATCH, &got[k]));
  }
  char name[64], what[64];
  snprintf(name, sizeof name, "losses_%s", opt);
  const mh_st_tensor *tl = need(f, name, MH_DTYPE_F32);
  if (tl && numel(tl) == STEPS) {
    float *want = floats(tl);
    snprintf(what, sizeof what, "losses (5 %s steps)", opt);
    s->losses = maxd(s->losses, cmp_elementwise(what, got, want, STEPS, TOL_LOSSES_ATOL, TOL_LOSSES_RTOL));
    free(want);
  }
  for (int i = 0; i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    snprintf(name, sizeof name, "final_%s.%d", opt, i);
    s->final = maxd(s->final, cmp_param_tensor(f, name, p->name, m->params + p->offset, p->numel, TOL_FINAL_RTOL));
  }
  mh_trainer_free(t);
}

/* One full check of a case with a kernel table (reference = 0) or the oracle kernels (reference = 1). */
static void run_case(const golden_case *c, const mh_st_file *f, const char *isa, int reference, summary *s) {
  g_mode = reference ? "oracle" : isa;
  memset(s, 0, sizeof *s);
  const mh_st_tensor *tx = need(f, "x", MH_DTYPE_F32), *tl = need(f, "labels", MH_DTYPE_S32),
                     *tlog = need(f, "logits", MH_DTYPE_F32), *tloss = need(f, "loss", MH_DTYPE_F32),
                     *tlosses = need(f, "losses", MH_DTYPE_F32);
  if (!tx || !tl || !tlog || !tloss || !tlosses) return;
  if (!meta_matches(f, "lr", LR) || !meta_matches(f, "momentum", MOMENTUM) || !meta_matches(f, "weight_decay", WD))
    return;
  mh_model *m;
  if (load_model(c, f, &m)) return;
  const mh_graph *g = &m->g;
  int classes = g->nodes[g->n_nodes - 1].c;
  int64_t in_floats = (int64_t)g->nodes[0].c * g->nodes[0].h * g->nodes[0].w;
  tl_checks += 4;
  if (tx->ndim != 4 || tx->shape[0] != BATCH || numel(tx) != BATCH * in_floats || numel(tl) != BATCH ||
      numel(tlog) != (int64_t)BATCH * classes || numel(tlosses) != STEPS || tloss->ndim != 0) {
    TL_FAIL("%s: fixture x/labels/logits/loss/losses shapes do not fit the model", c->name);
    mh_model_free(m);
    return;
  }
  float *x = floats(tx), *want_logits = floats(tlog), *want_losses = floats(tlosses), want_loss;
  int32_t labels[BATCH];
  memcpy(labels, tl->data, sizeof labels);
  memcpy(&want_loss, tloss->data, sizeof want_loss);
  size_t np = (size_t)g->n_param_floats, nb = (size_t)g->n_buffer_floats;
  float *params0 = malloc(np * sizeof(float) + 4), *bufs0 = malloc(nb * sizeof(float) + 4);
  memcpy(params0, m->params, np * sizeof(float));
  memcpy(bufs0, m->buffers, nb * sizeof(float));

  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.batch = BATCH, cfg.lr = LR, cfg.momentum = MOMENTUM, cfg.weight_decay = WD;
  cfg.schedule = MH_SCHEDULE_CONSTANT, cfg.threads = 2, cfg.force_reference = reference, cfg.isa = isa;
  mh_trainer *t = NULL;
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) goto out;

  /* 1. forward + loss + backward: mh_trainer_step without the SGD update (see trainer.c) */
  CHECK_OK(mh__trainer_prepare(t, BATCH));
  CHECK_OK(mh_exec_forward(t->ex, x, BATCH, m->params, m->buffers, 1));
  double loss = mh_softmax_xent_f32(mh_exec_output(t->ex), labels, BATCH, classes, mh_exec_output_grad(t->ex));
  s->logits = cmp_elementwise("logits", mh_exec_output(t->ex), want_logits, (int64_t)BATCH * classes,
                              TOL_LOGIT_ATOL, TOL_LOGIT_RTOL);
  float lossf = (float)loss;
  s->loss = cmp_elementwise("loss", &lossf, &want_loss, 1, TOL_LOGIT_ATOL, TOL_LOGIT_RTOL);
  CHECK_OK(mh_exec_backward(t->ex, m->params, m->grads));
  for (int i = 0; i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    char name[64];
    snprintf(name, sizeof name, "grad.%d", i);
    s->grad = maxd(s->grad, cmp_param_tensor(f, name, p->name, m->grads + p->offset, p->numel, TOL_GRAD_RTOL));
  }

  /* 2. five SGD steps from the same start (the forward above moved the BN running statistics) */
  memcpy(m->params, params0, np * sizeof(float));
  memcpy(m->buffers, bufs0, nb * sizeof(float));
  float got_losses[STEPS];
  for (int k = 0; k < STEPS; k++) {
    got_losses[k] = NAN;
    CHECK_OK(mh_trainer_step(t, x, labels, BATCH, &got_losses[k]));
  }
  s->losses = cmp_elementwise("losses (5 SGD steps)", got_losses, want_losses, STEPS, TOL_LOSSES_ATOL,
                              TOL_LOSSES_RTOL);
  for (int i = 0; i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    char name[64];
    snprintf(name, sizeof name, "final.%d", i);
    s->final = maxd(s->final, cmp_param_tensor(f, name, p->name, m->params + p->offset, p->numel, TOL_FINAL_RTOL));
  }
  for (int j = 0; j < g->n_buffers; j++) {
    const mh_buffer *b = &g->buffers[j];
    char name[64];
    snprintf(name, sizeof name, "buf.%d", j);
    s->buf = maxd(s->buf, cmp_param_tensor(f, name, b->name, m->buffers + b->offset, b->numel, TOL_BUF_RTOL));
  }
  const mh_st_tensor *tev = need(f, "eval_logits", MH_DTYPE_F32);
  if (tev && numel(tev) == (int64_t)BATCH * classes) { /* inference forward: BN from the running statistics */
    float *want_eval = floats(tev);
    CHECK_OK(mh_exec_forward(t->ex, x, BATCH, m->params, m->buffers, 0));
    s->eval = cmp_elementwise("eval_logits (after 5 steps)", mh_exec_output(t->ex), want_eval, (int64_t)BATCH * classes,
                              TOL_EVAL_ATOL, TOL_EVAL_RTOL);
    free(want_eval);
  }
  if (mh_st_find(f, "final_nesterov.0")) {
    memcpy(m->params, params0, np * sizeof(float));
    memcpy(m->buffers, bufs0, nb * sizeof(float));
    optimiser_case(f, m, x, labels, isa, reference, s);
  }
  for (int a = 0; a < 2; a++) {
    static const char *const opts[2] = {"adam", "adamw"};
    char key[32];
    snprintf(key, sizeof key, "final_%s.0", opts[a]);
    if (!mh_st_find(f, key)) continue;
    memcpy(m->params, params0, np * sizeof(float));
    memcpy(m->buffers, bufs0, nb * sizeof(float));
    adam_case(f, m, x, labels, isa, reference, opts[a], s);
  }
out:
  mh_trainer_free(t);
  mh_model_free(m);
  free(x), free(want_logits), free(want_losses), free(params0), free(bufs0);
}

int main(int argc, char **argv) {
  int fails_before;
  const mh_cpu_kernels *tables[8];
  int n_tables = tl_kernel_tables(tables, 8);
  for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++) {
    const golden_case *c = &k_cases[ci];
    if (argc > 1) { /* optional case names on the command line */
      int want = 0;
      for (int a = 1; a < argc; a++) want |= strcmp(argv[a], c->name) == 0;
      if (!want) continue;
    }
    g_case = c->name;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/%s.safetensors", MH_SOURCE_DIR, c->name);
    mh_st_file *f = NULL;
    tl_checks++;
    if (mh_st_read(&f, path) != MH_OK) {
      TL_FAIL("%s: cannot read the fixture: %s (regenerate with scripts/gen_golden.py)", c->name, mh_last_error());
      continue;
    }
    for (int mode = 0; mode <= n_tables; mode++) {
      int reference = mode == n_tables;
      const char *isa = reference ? NULL : tables[mode]->isa;
      summary s;
      fails_before = tl_failures;
      run_case(c, f, isa, reference, &s);
      printf("golden %-8s [%-10s] %s: logits %.2e  loss %.2e  grad %.2e  losses %.2e  final %.2e  buf %.2e  eval %.2e\n",
             c->name, reference ? "oracle" : isa, tl_failures == fails_before ? "ok  " : "FAIL", s.logits, s.loss,
             s.grad, s.losses, s.final, s.buf, s.eval);
      fflush(stdout);
    }
    mh_st_free(f);
  }
  printf("(logits, loss, losses, eval: max |diff|; grad, final, buf: max over tensors of max|diff| / max|PyTorch|)\n");
  return tl_exit();
}
