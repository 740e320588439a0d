/* Trainer lifetime and the single step: forward, softmax cross-entropy, backward, SGD. Also the
 * inference batch used by evaluation. The epoch loop over a data set lives in fit.c. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fpenv.h"
#include "core/status.h"
#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/dsp.h"
#include "backend/dsp/packets.h"
#include "backend/planner.h"
#include "ops/ops.h"

void mh_train_config_default(mh_train_config *c) {
  memset(c, 0, sizeof *c);
  c->precision = "fp32";
  c->epochs = 5;
  c->batch = 64;
  c->lr = 0.05f;
  c->momentum = 0.9f;
  c->beta1 = 0.9, c->beta2 = 0.999, c->eps = 1e-8;
  c->weight_decay = 5e-4f;
  c->schedule = MH_SCHEDULE_COSINE;
  c->gamma = 0.1f;
  c->threads = 2;
  c->seed = 1;
}

static int check_config(const mh_train_config *c) {
  if (c->precision && !mh_algo_find(c->precision))
    return mh__error(MH_ERR_UNSUPPORTED, "--precision %s: known precisions are %s", c->precision, mh_algo_names());
  if (c->rescale && strcmp(c->rescale, "exact") != 0 && strcmp(c->rescale, "adaptive") != 0)
    return mh__error(MH_ERR_INVALID_ARG, "--rescale %s: expected exact or adaptive", c->rescale);
  if (c->backend && strcmp(c->backend, "cpu") != 0 && strcmp(c->backend, "dsp") != 0 && strcmp(c->backend, "auto") != 0)
    return mh__error(MH_ERR_INVALID_ARG, "--backend %s: expected cpu, dsp or auto", c->backend);
  if (c->mu && strlen(c->mu) >= 64) return mh__error(MH_ERR_INVALID_ARG, "--mu: schedule longer than 63 characters");
  MH_TRY(mh_niti_mu_check(c->mu));
  if (c->epochs < 1 || c->epochs > 100000) return mh__error(MH_ERR_INVALID_ARG, "--epochs %d out of range [1, 100000]", c->epochs);
  if (c->batch < 1 || c->batch > 65536) return mh__error(MH_ERR_INVALID_ARG, "--batch %d out of range [1, 65536]", c->batch);
  if (!(c->lr >= 0 && c->lr < 1e6)) return mh__error(MH_ERR_INVALID_ARG, "--lr %g must be a non-negative number", c->lr);
  if (!(c->momentum >= 0 && c->momentum < 1)) return mh__error(MH_ERR_INVALID_ARG, "--momentum %g must be in [0, 1)", c->momentum);
  if (!(c->weight_decay >= 0 && c->weight_decay < 1)) return mh__error(MH_ERR_INVALID_ARG, "--wd %g must be in [0, 1)", c->weight_decay);
  if (c->nesterov && c->momentum == 0) return mh__error(MH_ERR_INVALID_ARG, "--nesterov needs a non-zero --momentum");
  if (c->optimizer && strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adam") && strcmp(c->optimizer, "adamw"))
    return mh__error(MH_ERR_INVALID_ARG, "--optimizer %s: expected sgd, adam or adamw", c->optimizer);
  if (c->optimizer && strcmp(c->optimizer, "sgd")) {
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
      return mh__error(MH_ERR_INVALID_ARG, "--betas (--beta1 %g, --beta2 %g): each must be in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps > 0 && c->eps < 1)) return mh__error(MH_ERR_INVALID_ARG, "--eps %g must be in (0, 1)", c->eps);
    if (c->nesterov) return mh__error(MH_ERR_INVALID_ARG, "--nesterov is an SGD option, not %s's", c->optimizer);
    if (c->precision && !strcmp(c->precision, "niti"))
      return mh__error(MH_ERR_INVALID_ARG, "--optimizer %s: niti updates its int8 weights by its own integer rule",
                       c->optimizer);
  }
  if (c->threads < 1 || c->threads > 256) return mh__error(MH_ERR_INVALID_ARG, "--threads %d out of range [1, 256]", c->threads);
  if (c->max_steps < 0) return mh__error(MH_ERR_INVALID_ARG, "--max-steps %ld must be >= 0", c->max_steps);
  if (c->schedule < MH_SCHEDULE_CONSTANT || c->schedule > MH_SCHEDULE_COSINE) return mh__error(MH_ERR_INVALID_ARG, "unknown schedule");
  if (!(c->gamma > 0 && c->gamma <= 1)) return mh__error(MH_ERR_INVALID_ARG, "--gamma %g must be in (0, 1]", c->gamma);
  if (c->step_size < 0 || c->step_size > 100000)
    return mh__error(MH_ERR_INVALID_ARG, "--step-size %d out of range [0, 100000] (0: epochs/3)", c->step_size);
  return MH_OK;
}

/* --backend auto: the planner's co-scheduled placement for this model, algorithm and batch under
 * the device profile (cfg->profile, default sd865): per node, the passes it puts on the DSP.
 * Returns how many GEMM passes that is (0: the plan keeps everything on the CPU). */
static int auto_placement(mh_trainer *t, unsigned char *place, int *gemm_passes) {
  mh_profile p;
  MH_TRY(mh_profile_resolve(&p, t->profile, t->cfg.threads));
  mh_plan_summary sum;
  const mh_graph *g = &t->m->g;
  unsigned char *mask = t->param_trains ? malloc((size_t)g->n_nodes) : NULL; /* partial training's */
  for (int i = 0; mask && i < g->n_nodes; i++) mask[i] = g->nodes[i].n_params && t->param_trains[g->nodes[i].param0];
  if (t->param_trains && !mask) return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
  int st = mh_plan_partial(g, t->algo->precision, &p, t->cfg.batch, mask, NULL, &sum, place);
  free(mask);
  MH_TRY(st);
  int on = 0;
  *gemm_passes = 0;
  for (int i = 0; i < t->m->g.n_nodes; i++) {
    int op = t->m->g.nodes[i].op;
    if (op != MH_OP_CONV2D && op != MH_OP_LINEAR) continue;
    *gemm_passes += 2 + (t->m->g.nodes[i].in[0] != 0);
    on += !!(place[i] & MH_PASS_FWD) + !!(place[i] & MH_PASS_BWD_W) + !!(place[i] & MH_PASS_BWD_D);
  }
  return on;
}

/* --backend dsp|auto: a DSP session for the integer GEMMs; dsp puts every one there, auto what the
 * plan places there. A DSP that cannot start is a warning (dsp) or a note (auto), and training
 * runs on the CPU with the same results. */
#define DSP_REGION_BYTES (256u << 20)
static int open_dsp(mh_trainer *t) {
  if (!strcmp(t->backend, "cpu")) return MH_OK;
  int dsp = !strcmp(t->backend, "dsp");
  if (t->algo->precision == MH_PRECISION_FP32) {
    if (dsp) mh__log(MH_LOG_WARN, "--backend dsp: fp32 has no integer work for the DSP; training on the CPU");
    return MH_OK;
  }
  unsigned char *place = NULL;
  if (!dsp) {
    if (!(place = malloc((size_t)t->m->g.n_nodes))) return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
    int passes = 0, on = auto_placement(t, place, &passes);
    if (on < 0) {
      free(place);
      return on;
    }
    mh__log(MH_LOG_INFO, "--backend auto: the %s plan puts %d of %d GEMM passes on the DSP (mandheling plan shows why)",
            t->profile, on, passes);
    if (!on) {
      free(place);
      return MH_OK;
    }
  }
  if (!(t->dsp_counts = calloc(1, sizeof *t->dsp_counts))) {
    free(place);
    return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
  }
  if (mh_dsp_open(&t->dsp, DSP_REGION_BYTES) != MH_OK) {
    mh__log(dsp ? MH_LOG_WARN : MH_LOG_INFO, "--backend %s: %s; training on the CPU", t->backend, mh_last_error());
    mh_clear_error();
    free(place);
    return MH_OK;
  }
  t->dsp->reuse = !t->cfg.no_reuse;
  if (!(t->dsp_backend = malloc(sizeof *t->dsp_backend))) {
    free(place);
    return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
  }
  int st = mh_dsp_backend_init(t->dsp_backend, t->dsp, t->dsp_counts, t->m->g.n_nodes);
  if (st != MH_OK) {
    free(place);
    return st;
  }
  if (t->cfg.no_segments) t->dsp_backend->be.segment = NULL, t->dsp_backend->be.run_segment = NULL;
  mh_exec_set_backend(t->ex, &t->dsp_backend->be, place);
  free(place);
  mh__log(MH_LOG_INFO, "DSP: integer GEMMs run on the Hexagon program under %s (emulated: exact results, no timing)",
          t->dsp->emulator);
  return MH_OK;
}

int mh_trainer_create(mh_trainer **out, mh_model *m, const mh_train_config *cfg) {
  *out = NULL;
  MH_TRY(check_config(cfg));
  mh_trainer *t = calloc(1, sizeof *t);
  if (!t) return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
  t->m = m;
  t->cfg = *cfg;
  snprintf(t->precision, sizeof t->precision, "%s", cfg->precision ? cfg->precision : "fp32");
  snprintf(t->rescale, sizeof t->rescale, "%s", cfg->rescale ? cfg->rescale : "adaptive");
  snprintf(t->mu, sizeof t->mu, "%s", cfg->mu ? cfg->mu : "");
  snprintf(t->backend, sizeof t->backend, "%s", cfg->backend ? cfg->backend : "cpu");
  snprintf(t->profile, sizeof t->profile, "%s", cfg->profile ? cfg->profile : "sd865");
  snprintf(t->optimizer, sizeof t->optimizer, "%s", cfg->optimizer ? cfg->optimizer : "sgd");
  t->cfg.optimizer = t->optimizer;
  t->cfg.profile = t->profile;
  t->cfg.backend = t->backend;
  t->cfg.precision = t->precision;
  t->cfg.rescale = t->rescale;
  t->cfg.mu = cfg->mu ? t->mu : NULL;
  t->algo = mh_algo_find(t->precision);
  int st = mh_cpu_kernels_select(cfg->isa, cfg->force_reference, &t->kt);
  if (st) {
    free(t);
    return st;
  }
  t->cfg.isa = t->kt->isa; /* a static name: the caller's string need not outlive the trainer */
  st = t->algo->check(&m->g);
  if (st == MH_OK) st = mh_pool_init(&t->pool, cfg->threads);
  if (st == MH_OK) st = mh_exec_init(&t->ex, &m->g, t->pool, t->kt);
  if (st == MH_OK) {
    mh_exec_set_reference(t->ex, cfg->force_reference);
    mh_exec_set_precision(t->ex, t->algo->precision);
    mh_exec_set_rescale(t->ex, strcmp(t->rescale, "exact") == 0 ? MH_RESCALE_EXACT : MH_RESCALE_ADAPTIVE);
    /* integer algorithms keep no momentum: a stub buffer keeps checkpoints' layout uniform */
    t->momentum = calloc(t->algo->integer_params ? 16 : (size_t)m->g.n_param_floats + 16, sizeof(float));
    if (!t->momentum) st = mh__error(MH_ERR_NOMEM, "trainer: out of memory for optimizer state");
  }
  if (st == MH_OK && strcmp(t->optimizer, "sgd")) st = mh__trainer_adam_state(t);
  if (st == MH_OK && (cfg->freeze || cfg->train_only)) st = mh__trainer_set_frozen(t, cfg->freeze, cfg->train_only);
  if (st == MH_OK) mh_exec_set_frozen_bn_batch_stats(t->ex, cfg->frozen_bn_train);
  if (st == MH_OK) st = t->algo->setup(t);
  if (st == MH_OK) st = open_dsp(t);
  if (st) {
    mh_trainer_free(t);
    return st;
  }
  *out = t;
  return MH_OK;
}

void mh_trainer_free(mh_trainer *t) {
  if (!t) return;
  mh_dsp_close(t->dsp);
  free(t->dsp_counts);
  mh_dsp_backend_release(t->dsp_backend);
  free(t->dsp_backend);
  mh_exec_free(t->ex);
  mh_pool_free(t->pool);
  free(t->momentum);
  free(t->adam_sq);
  free(t->param_trains);
  free(t->logits);
  free(t);
}

int mh__trainer_prepare(mh_trainer *t, int batch) {
  if (batch <= t->planned_batch) return MH_OK;
  MH_TRY(mh_exec_prepare(t->ex, batch, 1));
  if (t->algo->integer_params) { /* dequantised logits, then int64 work space for the integer loss */
    int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
    float *z = realloc(t->logits, ((size_t)batch * classes + 16 + 2 * (size_t)classes + 16) * sizeof(float));
    if (!z) return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
    t->logits = z;
  }
  t->planned_batch = batch;
  return MH_OK;
}

static int check_labels(const mh_trainer *t, const int32_t *labels, int n) {
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= classes)
      return mh__error(MH_ERR_INVALID_ARG, "label %d of sample %d is outside the model's %d classes", labels[i], i, classes);
  return MH_OK;
}

/* Forward, loss, backward and update; the caller sets the floating-point environment. */
static int step_body(mh_trainer *t, const float *x, const int32_t *labels, int n, float *loss);

int mh_trainer_step(mh_trainer *t, const float *x, const int32_t *labels, int n, float *loss) {
  mh_fpenv saved = mh_fpenv_get();
  if (!t->cfg.keep_denormals) mh_fpenv_set(mh_fpenv_ftz(saved));
  int st = step_body(t, x, labels, n, loss);
  mh_fpenv_set(saved);
  return st;
}

static int step_body(mh_trainer *t, const float *x, const int32_t *labels, int n, float *loss) {
  MH_TRY(check_labels(t, labels, n));
  MH_TRY(mh__trainer_prepare(t, n > t->cfg.batch ? n : t->cfg.batch));
  mh_model *m = t->m;
  int q = t->algo->integer_params;
  mh_exec_set_step(t->ex, t->cfg.seed, t->step);
  MH_TRY(mh_exec_forward(t->ex, x, n, q ? (const void *)m->qparams : m->params, m->buffers, 1));
  double l = t->algo->loss_grad(t, labels, n);
  MH_TRY(mh_exec_backward(t->ex, q ? (const void *)m->qparams : m->params, q ? (void *)m->qgrads : m->grads));
  t->algo->update(t);
  t->step++;
  if (loss) *loss = (float)l;
  return MH_OK;
}

static int evaluate_body(mh_trainer *t, const float *x, const int32_t *labels, int n, long *correct,
                         double *loss_sum);

int mh_trainer_evaluate_batch(mh_trainer *t, const float *x, const int32_t *labels, int n, long *correct,
                              double *loss_sum) {
  mh_fpenv saved = mh_fpenv_get();
  if (!t->cfg.keep_denormals) mh_fpenv_set(mh_fpenv_ftz(saved));
  int st = evaluate_body(t, x, labels, n, correct, loss_sum);
  mh_fpenv_set(saved);
  return st;
}

/* An inference forward of n samples: *z the logits (n x classes; integer algorithms' dequantised),
 * valid until the next forward. */
static int forward_logits(mh_trainer *t, const float *x, int n, const float **z) {
  MH_TRY(mh__trainer_prepare(t, n > t->cfg.batch ? n : t->cfg.batch));
  mh_model *m = t->m;
  int classes = m->g.nodes[m->g.n_nodes - 1].c;
  MH_TRY(mh_exec_forward(t->ex, x, n, t->algo->integer_params ? (const void *)m->qparams : m->params, m->buffers, 0));
  *z = mh_exec_output(t->ex);
  if (t->algo->integer_params) { /* int8 logits: argmax and loss on their dequantised values */
    int e;
    const int8_t *o = mh_exec_output_q(t->ex, &e);
    for (long i = 0; i < (long)n * classes; i++) t->logits[i] = ldexpf((float)o[i], e);
    *z = t->logits;
  }
  return MH_OK;
}

int mh_trainer_predict(mh_trainer *t, const float *x, int n, float *logits) {
  if (n < 0 || (n && (!x || !logits))) return mh__error(MH_ERR_INVALID_ARG, "predict: %d samples without arrays", n);
  const mh_node *in = &t->m->g.nodes[0];
  size_t per = (size_t)in->c * in->h * in->w;
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c, st = MH_OK;
  mh_fpenv saved = mh_fpenv_get();
  if (!t->cfg.keep_denormals) mh_fpenv_set(mh_fpenv_ftz(saved));
  for (int i = 0; i < n && st == MH_OK; i += t->cfg.batch) {
    int b = n - i < t->cfg.batch ? n - i : t->cfg.batch;
    const float *z;
    st = forward_logits(t, x + (size_t)i * per, b, &z);
    if (st == MH_OK) memcpy(logits + (size_t)i * classes, z, sizeof(float) * (size_t)b * classes);
  }
  mh_fpenv_set(saved);
  return st;
}

static int evaluate_body(mh_trainer *t, const float *x, const int32_t *labels, int n, long *correct,
                         double *loss_sum) {
  MH_TRY(check_labels(t, labels, n));
  mh_model *m = t->m;
  int classes = m->g.nodes[m->g.n_nodes - 1].c;
  const float *z;
  MH_TRY(forward_logits(t, x, n, &z));
  for (int i = 0; i < n; i++) {
    int best = 0;
    for (int k = 1; k < classes; k++)
      if (z[(size_t)i * classes + k] > z[(size_t)i * classes + best]) best = k;
    if (correct) *correct += best == labels[i];
  }
  if (loss_sum) *loss_sum += mh_softmax_xent_f32(z, labels, n, classes, NULL) * n;
  return MH_OK;
}

int mh_trainer_set_length(mh_trainer *t, int epochs, long max_steps) {
  if (epochs != -1 && (epochs < 1 || epochs > 100000))
    return mh__error(MH_ERR_INVALID_ARG, "--epochs %d out of range [1, 100000]", epochs);
  if (max_steps < -1) return mh__error(MH_ERR_INVALID_ARG, "--max-steps %ld must be >= 0", max_steps);
  if (epochs != -1) t->cfg.epochs = epochs;
  if (max_steps != -1) t->cfg.max_steps = max_steps;
  return MH_OK;
}

const char *mh_trainer_optimizer(const mh_trainer *t) { return t->optimizer; }

int mh__trainer_adam_state(mh_trainer *t) {
  if (t->adam_sq) return MH_OK;
  t->adam_sq = calloc((size_t)t->m->g.n_param_floats + 16, sizeof(float));
  return t->adam_sq ? MH_OK : mh__error(MH_ERR_NOMEM, "trainer: out of memory for Adam's second moments");
}

size_t mh_trainer_peak_bytes(const mh_trainer *t) {
  const mh_graph *g = &t->m->g;
  /* parameters, their gradients and optimizer state: float x3 (SGD momentum; x4 with Adam's two
   * moments), or int8 + int32 */
  size_t bytes = (size_t)g->n_param_floats *
                     (t->algo->integer_params ? 1 + sizeof(int32_t) : sizeof(float) * (t->adam_sq ? 4 : 3)) +
                 (size_t)g->n_buffer_floats * sizeof(float);
  mh_exec_stats st;
  if (mh_exec_stats_get(t->ex, 1, &st) == MH_OK) bytes += st.arena_bytes + st.scratch_bytes + st.state_bytes;
  return bytes;
}

void mh__trainer_rescale_report(const mh_trainer *t, mh_rescale_report *r) {
  const mh_rescale_counts *c = mh_exec_rescale_counts(t->ex);
  r->calls = c->calls, r->max_passes = c->max_passes, r->passes_avoided = c->passes_avoided;
  r->fallbacks = c->fallbacks, r->mispredicted = c->mispredicted;
  r->bytes_avoided = c->int32_bytes_avoided, r->seconds = c->seconds;
}

const char *mh_trainer_isa(const mh_trainer *t) { return t->kt->isa; }

int mh__trainer_mu(const mh_trainer *t) {
  int e = t->epoch < t->cfg.epochs ? t->epoch : t->cfg.epochs - 1;
  return t->algo->integer_params ? mh_niti_mu(t->cfg.mu, e, t->cfg.epochs) : 0;
}

const char *mh_trainer_rescale_mode(const mh_trainer *t) { return t->rescale; }

void mh_trainer_dsp_report(const mh_trainer *t, mh_dsp_report *r) {
  memset(r, 0, sizeof *r);
  if (!t->dsp_counts) return;
  r->active = t->dsp && t->dsp->alive;
  r->gemms = t->dsp_counts->gemms, r->cpu_fallbacks = t->dsp_counts->cpu_fallbacks;
  r->messages = t->dsp ? t->dsp->messages : 0;
  r->macs = t->dsp_counts->macs;
  r->bytes_to_dsp = t->dsp_counts->bytes_to_dsp, r->bytes_from_dsp = t->dsp_counts->bytes_from_dsp;
  r->split_parts = t->dsp_counts->split_parts, r->vtcm_chunks = t->dsp_counts->vtcm_chunks;
  r->fused_gemms = t->dsp_counts->fused_gemms, r->int32_bytes_kept = t->dsp_counts->int32_bytes_kept;
  r->reuse = !t->cfg.no_reuse;
  r->sg_runs = t->dsp_counts->sg_runs, r->sg_prepares = t->dsp_counts->sg_prepares;
  r->sg_nodes_checked = t->dsp_counts->sg_nodes_checked;
  r->weight_bytes = t->dsp_counts->weight_bytes, r->packed_bytes = t->dsp_counts->packed_bytes;
  r->cosched_runs = t->dsp_counts->cosched_runs, r->eltwise_ops = t->dsp_counts->eltwise_ops;
  r->seg_runs = t->dsp_counts->seg_runs, r->seg_prepares = t->dsp_counts->seg_prepares;
  if (mh_dsp_packets_active(t->dsp)) {
    r->packets_counted = 1;
    mh_dsp_packets_totals(t->dsp, &r->packets, &r->hvx_packets);
    r->packets_fwd = t->dsp->pkt_pass[MH_PKT_PASS_FWD], r->packets_bwd = t->dsp->pkt_pass[MH_PKT_PASS_BWD];
    r->packets_other = t->dsp->pkt_pass[MH_PKT_PASS_OTHER];
  }
  if (t->dsp_backend && t->dsp_backend->be.stats) {
    int n = t->dsp_backend->be.stats(t->dsp_backend->be.self, r->stats, MH_STATS_MAX);
    r->n_stats = n < MH_STATS_MAX ? n : MH_STATS_MAX;
  }
}

int mh_trainer_input_norm(const mh_trainer *t, float mean[3], float std[3]) {
  if (!t->norm_known) return 0;
  memcpy(mean, t->norm_mean, sizeof t->norm_mean), memcpy(std, t->norm_std, sizeof t->norm_std);
  return 1;
}

void mh_trainer_request_stop(mh_trainer *t) { t->stop = 1; }

int mh_model_n_params(const mh_model *m) { return m->g.n_params; }

int mh_model_param_info(const mh_model *m, int i, const char **name, int *ndim, int64_t shape[4]) {
  if (i < 0 || i >= m->g.n_params)
    return mh__error(MH_ERR_INVALID_ARG, "parameter %d of %s: out of range [0, %d)", i, m->g.model_name, m->g.n_params);
  const mh_param *p = &m->g.params[i];
  if (name) *name = p->name;
  if (ndim) *ndim = p->ndim;
  for (int d = 0; shape && d < 4; d++) shape[d] = d < p->ndim ? p->shape[d] : 1;
  return MH_OK;
}

size_t mh_trainer_state_floats(const mh_trainer *t) {
  return (size_t)t->m->g.n_param_floats + (size_t)t->m->g.n_buffer_floats;
}

int mh_trainer_get_state(const mh_trainer *t, float *out, size_t n) {
  const mh_model *m = t->m;
  size_t np = (size_t)m->g.n_param_floats;
  if (n != mh_trainer_state_floats(t))
    return mh__error(MH_ERR_INVALID_ARG, "state of %s: %zu floats given, it has %zu", m->g.model_name, n, mh_trainer_state_floats(t));
  mh__model_float_params(m, t->algo->integer_params, out);
  memcpy(out + np, m->buffers, (size_t)m->g.n_buffer_floats * sizeof(float));
  return MH_OK;
}

int mh_trainer_set_state(mh_trainer *t, const float *in, size_t n) {
  mh_model *m = t->m;
  size_t np = (size_t)m->g.n_param_floats;
  if (n != mh_trainer_state_floats(t))
    return mh__error(MH_ERR_INVALID_ARG, "state of %s: %zu floats given, it has %zu", m->g.model_name, n, mh_trainer_state_floats(t));
  for (size_t i = 0; i < n; i++)
    if (!isfinite(in[i])) return mh__error(MH_ERR_INVALID_ARG, "state of %s: value %zu is not finite", m->g.model_name, i);
  memcpy(m->params, in, np * sizeof(float));
  memcpy(m->buffers, in + np, (size_t)m->g.n_buffer_floats * sizeof(float));
  if (m->qparams) mh__model_quantize_params(m);
  return MH_OK;
}

int mh_trainer_set_lr(mh_trainer *t, float lr) {
  if (!(lr >= 0 && lr < 1e6)) return mh__error(MH_ERR_INVALID_ARG, "learning rate %g must be a non-negative number", lr);
  t->cfg.lr = lr, t->cfg.schedule = MH_SCHEDULE_CONSTANT;
  return MH_OK;
}

void mh_trainer_rescale_report(const mh_trainer *t, mh_rescale_report *r) { mh__trainer_rescale_report(t, r); }
