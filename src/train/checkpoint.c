/* Checkpoints as safetensors: every parameter, batch-norm buffer and momentum buffer by name, and
 * metadata (model text, training position, RNG state, hyper-parameters). Loading validates all of it
 * against the live model before touching anything, so a bad file changes nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "quant/qformat.h"
#include "train/algo.h"
#include "train/safetensors.h"
#include "train/trainer.h"

#define CKPT_FORMAT "mandheling-checkpoint/1"
#define MOMENTUM_PREFIX "optimizer.momentum." /* SGD */
#define EXP_AVG_PREFIX "optimizer.exp_avg."   /* Adam, AdamW: first moments */
#define EXP_AVG_SQ_PREFIX "optimizer.exp_avg_sq." /* ... second moments */
#define EXPONENTS "integer.exponents"   /* int32 [n_params]: value = q * 2^exponent */
#define RESCALE_STATE "integer.rescale" /* int32 [2 * n_nodes, 3]: each tensor's shift history */


static const char *schedule_name(mh_schedule s) {
  return s == MH_SCHEDULE_STEP ? "step" : s == MH_SCHEDULE_COSINE ? "cosine" : "constant";
}

/* Float checkpoints hold per parameter the weights and the optimizer's state: SGD's momentum, or
 * Adam's two moments. Pass p's tensor name prefix and the trainer's array for it. */
static int float_passes(const char *optimizer) { return strcmp(optimizer, "sgd") ? 3 : 2; }
static const char *pass_prefix(const char *optimizer, int pass) {
  return pass == 0 ? "" : pass == 2 ? EXP_AVG_SQ_PREFIX : strcmp(optimizer, "sgd") ? EXP_AVG_PREFIX : MOMENTUM_PREFIX;
}
static float *pass_array(const mh_trainer *t, int pass) {
  return pass == 0 ? t->m->params : pass == 1 ? t->momentum : t->adam_sq;
}

/* Tensors a checkpoint holds: float parameters and optimizer state, or (integer algorithms) int8
 * parameters, their exponents and the rescale histories; then the buffers. */
static int n_tensors(const mh_trainer *t, const char *optimizer) {
  const mh_graph *g = &t->m->g;
  return (t->algo->integer_params ? g->n_params + 2 : float_passes(optimizer) * g->n_params) + g->n_buffers;
}

int mh_trainer_save(mh_trainer *t, const char *path) {
  const mh_graph *g = &t->m->g;
  int n = n_tensors(t, t->optimizer), q = t->algo->integer_params;
  mh_st_tensor *ts = calloc((size_t)n, sizeof *ts);
  if (!ts) return mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
  int k = 0;
  for (int pass = 0; pass < (q ? 1 : float_passes(t->optimizer)); pass++)
    for (int i = 0; i < g->n_params; i++) {
      const mh_param *p = &g->params[i];
      mh_st_tensor *s = &ts[k++];
      snprintf(s->name, sizeof s->name, "%s%s", pass_prefix(t->optimizer, pass), p->name);
      s->dtype = q ? MH_DTYPE_S8 : MH_DTYPE_F32;
      s->ndim = p->ndim;
      for (int d = 0; d < p->ndim; d++) s->shape[d] = p->shape[d];
      if (q) s->data = t->m->qparams + p->offset;
      else s->data = pass_array(t, pass) + p->offset;
      s->nbytes = (size_t)p->numel * (q ? 1 : sizeof(float));
    }
  if (q) {
    mh_st_tensor *s = &ts[k++];
    snprintf(s->name, sizeof s->name, "%s", EXPONENTS);
    s->dtype = MH_DTYPE_S32, s->ndim = 1, s->shape[0] = g->n_params;
    s->data = t->m->qexp, s->nbytes = sizeof(int) * g->n_params;
    s = &ts[k++];
    snprintf(s->name, sizeof s->name, "%s", RESCALE_STATE);
    s->dtype = MH_DTYPE_S32, s->ndim = 2, s->shape[0] = 2 * g->n_nodes, s->shape[1] = 3;
    s->data = mh_exec_rescale_states(t->ex), s->nbytes = sizeof(mh_rescale_state) * 2 * g->n_nodes;
  }
  for (int i = 0; i < g->n_buffers; i++) {
    const mh_buffer *b = &g->buffers[i];
    mh_st_tensor *s = &ts[k++];
    snprintf(s->name, sizeof s->name, "%s", b->name);
    s->dtype = MH_DTYPE_F32;
    s->ndim = 1;
    s->shape[0] = b->numel;
    s->data = t->m->buffers + b->offset;
    s->nbytes = (size_t)b->numel * sizeof(float);
  }
  char step[32], epoch[32], bie[32], seed[32], lr[32], mom[32], wd[32], nest[8], epochs[16], batch[16], spe[32],
      gamma[32], ssize[16], aug[8], b1[32], b2[32], eps[32];
  snprintf(step, sizeof step, "%ld", t->step);
  snprintf(epoch, sizeof epoch, "%d", t->epoch);
  snprintf(bie, sizeof bie, "%ld", t->batch_in_epoch);
  snprintf(spe, sizeof spe, "%ld", t->steps_per_epoch);
  snprintf(seed, sizeof seed, "%" PRIu64, t->cfg.seed);
  snprintf(lr, sizeof lr, "%.9g", t->cfg.lr);
  snprintf(mom, sizeof mom, "%.9g", t->cfg.momentum);
  snprintf(wd, sizeof wd, "%.9g", t->cfg.weight_decay);
  snprintf(gamma, sizeof gamma, "%.9g", t->cfg.gamma);
  snprintf(nest, sizeof nest, "%d", t->cfg.nesterov);
  snprintf(epochs, sizeof epochs, "%d", t->cfg.epochs);
  snprintf(batch, sizeof batch, "%d", t->cfg.batch);
  snprintf(ssize, sizeof ssize, "%d", t->cfg.step_size);
  snprintf(aug, sizeof aug, "%d", t->cfg.augment);
  char in_mean[64] = "", in_std[64] = "";
  int ch = g->nodes[0].c < 3 ? g->nodes[0].c : 3;
  for (int c = 0; t->norm_known && c < ch; c++) {
    snprintf(in_mean + strlen(in_mean), sizeof in_mean - strlen(in_mean), "%s%.9g", c ? "," : "", t->norm_mean[c]);
    snprintf(in_std + strlen(in_std), sizeof in_std - strlen(in_std), "%s%.9g", c ? "," : "", t->norm_std[c]);
  }
  snprintf(b1, sizeof b1, "%.17g", t->cfg.beta1);
  snprintf(b2, sizeof b2, "%.17g", t->cfg.beta2);
  snprintf(eps, sizeof eps, "%.17g", t->cfg.eps);
  /* Every random draw is a pure function of (seed, stream, epoch, index) (src/core/rng.h), so the
   * seed and the position (epoch, batch_in_epoch) are the whole RNG state. */
  const mh_st_meta meta[] = {
      {"format", CKPT_FORMAT},     {"model", g->model_name},     {"model_text", t->m->text},
      {"precision", t->precision}, {"step", step},               {"epoch", epoch},
      {"batch_in_epoch", bie},     {"steps_per_epoch", spe},     {"seed", seed},
      {"rng", "counter-based splitmix64; state = (seed, epoch, batch_in_epoch)"},
      {"lr", lr},                  {"momentum", mom},            {"weight_decay", wd},
      {"nesterov", nest},          {"schedule", schedule_name(t->cfg.schedule)},
      {"gamma", gamma},            {"step_size", ssize},         {"epochs", epochs},
      {"batch", batch},            {"augment", aug},             {"rescale", t->rescale},
      {"mu", t->mu},               {"optimizer", t->optimizer},  {"beta1", b1},
      {"beta2", b2},               {"eps", eps},
      {"input_mean", in_mean},     {"input_std", in_std}, /* empty: not known when saved */
      {"frozen", t->frozen},       /* the frozen layers' names (empty: all train) */
      {"frozen_bn_train", t->cfg.frozen_bn_train ? "1" : "0"},
  };
  int st = mh_st_write(path, ts, k, meta, (int)(sizeof meta / sizeof meta[0]));
  free(ts);
  return st;
}

static int meta_long(const mh_st_file *f, const char *path, const char *key, long lo, long hi, long *out) {
  const char *v = mh_st_meta_get(f, key);
  if (!v) return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata lacks '%s'", path, key);
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < lo || x > hi)
    return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata '%s' = '%.40s' is not an integer in [%ld, %ld]", path, key,
                     v, lo, hi);
  *out = x;
  return MH_OK;
}

static int meta_double(const mh_st_file *f, const char *path, const char *key, double *out) {
  const char *v = mh_st_meta_get(f, key);
  if (!v) return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata lacks '%s'", path, key);
  char *end;
  double x = strtod(v, &end);
  if (!*v || *end || !(x == x))
    return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata '%s' = '%.40s' is not a number", path, key, v);
  *out = x;
  return MH_OK;
}

static int meta_float(const mh_st_file *f, const char *path, const char *key, float *out) {
  double x = 0;
  MH_TRY(meta_double(f, path, key, &x));
  *out = (float)x;
  return MH_OK;
}

/* The checkpoint's optimizer (checkpoints without one are SGD's), checked. */
static int meta_optimizer(const mh_st_file *f, const char *path, const char **out) {
  const char *o = mh_st_meta_get(f, "optimizer");
  if (!o) o = "sgd";
  if (strcmp(o, "sgd") && strcmp(o, "adam") && strcmp(o, "adamw"))
    return mh__error(MH_ERR_FORMAT, "%s: checkpoint optimizer '%.20s' is not sgd, adam or adamw", path, o);
  *out = o;
  return MH_OK;
}

/* The run's hyper-parameters, validated into a copy of the config. */
static int read_config(const mh_st_file *f, const char *path, mh_train_config *c) {
  long nest, epochs, batch, ssize, aug;
  MH_TRY(meta_float(f, path, "lr", &c->lr));
  MH_TRY(meta_float(f, path, "momentum", &c->momentum));
  MH_TRY(meta_float(f, path, "weight_decay", &c->weight_decay));
  MH_TRY(meta_float(f, path, "gamma", &c->gamma));
  MH_TRY(meta_long(f, path, "nesterov", 0, 1, &nest));
  MH_TRY(meta_long(f, path, "epochs", 1, 100000, &epochs));
  MH_TRY(meta_long(f, path, "batch", 1, 65536, &batch));
  MH_TRY(meta_long(f, path, "step_size", 0, 100000, &ssize));
  MH_TRY(meta_long(f, path, "augment", 0, 1, &aug));
  const char *seed = mh_st_meta_get(f, "seed"), *sched = mh_st_meta_get(f, "schedule");
  char *end;
  if (!seed || !*seed || (c->seed = strtoull(seed, &end, 10), *end))
    return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata 'seed' missing or not an integer", path);
  if (!sched) return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata lacks 'schedule'", path);
  if (!strcmp(sched, "cosine")) c->schedule = MH_SCHEDULE_COSINE;
  else if (!strcmp(sched, "step")) c->schedule = MH_SCHEDULE_STEP;
  else if (!strcmp(sched, "constant")) c->schedule = MH_SCHEDULE_CONSTANT;
  else return mh__error(MH_ERR_FORMAT, "%s: checkpoint schedule '%.20s' unknown", path, sched);
  c->nesterov = (int)nest, c->epochs = (int)epochs, c->batch = (int)batch, c->step_size = (int)ssize;
  c->augment = (int)aug;
  const char *opt = "sgd";
  MH_TRY(meta_optimizer(f, path, &opt));
  if (strcmp(opt, "sgd")) {
    MH_TRY(meta_double(f, path, "beta1", &c->beta1));
    MH_TRY(meta_double(f, path, "beta2", &c->beta2));
    MH_TRY(meta_double(f, path, "eps", &c->eps));
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0 && c->eps < 1))
      return mh__error(MH_ERR_FORMAT, "%s: checkpoint Adam hyper-parameters out of range", path);
  }
  if (!(c->lr >= 0) || !(c->momentum >= 0 && c->momentum < 1) || !(c->weight_decay >= 0) || !(c->gamma > 0))
    return mh__error(MH_ERR_FORMAT, "%s: checkpoint hyper-parameters out of range", path);
  return MH_OK;
}

/* The input normalisation a checkpoint carries (input_mean, input_std: one value per channel), when
 * it has one (*known = 0 for checkpoints without it). */
static int read_norm(const mh_st_file *f, const char *path, int channels, float *mean, float *std, int *known) {
  const char *m = mh_st_meta_get(f, "input_mean"), *s = mh_st_meta_get(f, "input_std");
  *known = 0;
  if (!m || !s || (!*m && !*s)) return MH_OK;
  const char *v[2] = {m, s};
  float *out[2] = {mean, std};
  for (int k = 0; k < 2; k++) {
    const char *p = v[k];
    for (int c = 0; c < channels; c++) {
      char *end;
      double x = strtod(p, &end);
      if (end == p || !(x == x) || (k == 1 && !(x > 0)) || (*end != (c + 1 < channels ? ',' : '\0')))
        return mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata '%s' = '%.60s' is not %d %snumbers", path,
                         k ? "input_std" : "input_mean", v[k], channels, k ? "positive " : "");
      out[k][c] = (float)x;
      p = end + 1;
    }
  }
  *known = 1;
  return MH_OK;
}

static int match_tensor(const mh_st_file *f, const char *path, const char *name, mh_dtype dt, int ndim,
                        const int64_t *shape, const void **data) {
  const mh_st_tensor *s = mh_st_find(f, name);
  if (!s) return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' missing from checkpoint", path, name);
  if (s->dtype != dt)
    return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' is %s, expected %s", path, name, mh_dtype_name(s->dtype),
                     mh_dtype_name(dt));
  int same = s->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = s->shape[d] == shape[d];
  if (!same) {
    char want[96] = "", got[96] = "";
    for (int d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "", (long long)shape[d]);
    for (int d = 0; d < s->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "x" : "", (long long)s->shape[d]);
    return mh__error(MH_ERR_SHAPE, "%s: tensor '%s' has shape [%s], the model needs [%s]", path, name, got, want);
  }
  *data = s->data;
  return MH_OK;
}

int mh_trainer_load(mh_trainer *t, const char *path) {
  mh_st_file *f = NULL;
  MH_TRY(mh_st_read(&f, path));
  const mh_graph *g = &t->m->g;
  int st = MH_OK;
  const char *fmt = mh_st_meta_get(f, "format");
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
    st = mh__error(MH_ERR_FORMAT, "%s: not a Mandheling checkpoint (metadata format = '%.40s', expected '%s')", path,
                   fmt ? fmt : "(none)", CKPT_FORMAT);
    goto done;
  }
  const char *prec = mh_st_meta_get(f, "precision");
  if (!prec || strcmp(prec, t->precision) != 0) {
    st = mh__error(MH_ERR_INVALID_ARG, "%s: checkpoint precision '%s' differs from the requested '%s'", path,
                   prec ? prec : "(none)", t->precision);
    goto done;
  }
  /* Validate everything first: a bad file must leave the trainer untouched. */
  const char *opt = "sgd";
  if ((st = meta_optimizer(f, path, &opt))) goto done;
  int n = n_tensors(t, opt), q = t->algo->integer_params;
  const void **src = calloc((size_t)n, sizeof *src);
  if (!src) {
    st = mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
    goto done;
  }
  int k = 0;
  for (int pass = 0; pass < (q ? 1 : float_passes(opt)) && st == MH_OK; pass++)
    for (int i = 0; i < g->n_params && st == MH_OK; i++) {
      const mh_param *p = &g->params[i];
      char name[MH_ST_MAX_NAME];
      int64_t shape[4];
      for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
      snprintf(name, sizeof name, "%s%s", pass_prefix(opt, pass), p->name);
      st = match_tensor(f, path, name, q ? MH_DTYPE_S8 : MH_DTYPE_F32, p->ndim, shape, &src[k++]);
    }
  if (q && st == MH_OK) {
    int64_t se[1] = {g->n_params}, sr[2] = {2 * g->n_nodes, 3};
    st = match_tensor(f, path, EXPONENTS, MH_DTYPE_S32, 1, se, &src[k++]);
    if (st == MH_OK) st = match_tensor(f, path, RESCALE_STATE, MH_DTYPE_S32, 2, sr, &src[k++]);
    for (int i = 0; i < g->n_params && st == MH_OK; i++) {
      int32_t e;
      memcpy(&e, (const char *)src[k - 2] + sizeof e * i, sizeof e); /* the file's alignment is not ours to trust */
      const int8_t *w = src[i];
      for (int64_t j = 0; j < g->params[i].numel && st == MH_OK; j++)
        if (w[j] < -MH_Q8_MAX) st = mh__error(MH_ERR_FORMAT, "%s: tensor '%s' holds -128, outside int8 [-127, 127]", path, g->params[i].name);
      if (st == MH_OK && (e < -200 || e > 200))
        st = mh__error(MH_ERR_FORMAT, "%s: exponent %d of '%s' is out of range [-200, 200]", path, e, g->params[i].name);
    }
    for (int i = 0; i < 2 * g->n_nodes && st == MH_OK; i++) {
      int32_t rs[3];
      memcpy(rs, (const char *)src[k - 1] + sizeof rs * i, sizeof rs);
      if (rs[0] < 0 || rs[0] > 31 || (rs[1] & ~1) || rs[2] < 0)
        st = mh__error(MH_ERR_FORMAT, "%s: rescale state %d is out of range", path, i);
    }
  }
  for (int i = 0; i < g->n_buffers && st == MH_OK; i++) {
    int64_t shape[1] = {g->buffers[i].numel};
    st = match_tensor(f, path, g->buffers[i].name, MH_DTYPE_F32, 1, shape, &src[k++]);
  }
  if (st == MH_OK && mh_st_count(f) != n)
    st = mh__error(MH_ERR_FORMAT, "%s: checkpoint has %d tensors, the model '%s' has %d", path, mh_st_count(f),
                   g->model_name, n);
  long step = 0, epoch = 0, bie = 0, spe = 0;
  if (st == MH_OK) st = meta_long(f, path, "step", 0, 1L << 50, &step);
  if (st == MH_OK) st = meta_long(f, path, "epoch", 0, 1 << 30, &epoch);
  if (st == MH_OK) st = meta_long(f, path, "batch_in_epoch", 0, 1L << 40, &bie);
  if (st == MH_OK) st = meta_long(f, path, "steps_per_epoch", 0, 1L << 40, &spe);
  mh_train_config cfg = t->cfg;
  if (st == MH_OK) st = read_config(f, path, &cfg);
  /* niti's settings (absent from checkpoints of older builds: the defaults) */
  const char *rescale = mh_st_meta_get(f, "rescale"), *mu = mh_st_meta_get(f, "mu");
  if (!rescale) rescale = "adaptive";
  if (!mu) mu = "";
  if (st == MH_OK && strcmp(rescale, "exact") != 0 && strcmp(rescale, "adaptive") != 0)
    st = mh__error(MH_ERR_FORMAT, "%s: checkpoint rescale '%.20s' is neither exact nor adaptive", path, rescale);
  if (st == MH_OK && (strlen(mu) >= sizeof t->mu || mh_niti_mu_check(*mu ? mu : NULL)))
    st = mh__error(MH_ERR_FORMAT, "%s: checkpoint mu schedule '%.40s' is invalid", path, mu);
  float nm[3] = {0}, ns[3] = {0};
  int norm = 0;
  if (st == MH_OK) st = read_norm(f, path, g->nodes[0].c < 3 ? g->nodes[0].c : 3, nm, ns, &norm);
  if (st == MH_OK && !q && strcmp(opt, "sgd")) st = mh__trainer_adam_state(t); /* before anything changes */
  if (st == MH_OK) {
    t->cfg = cfg;
    if (!q) snprintf(t->optimizer, sizeof t->optimizer, "%s", opt);
    t->cfg.optimizer = t->optimizer;
    snprintf(t->rescale, sizeof t->rescale, "%s", rescale);
    snprintf(t->mu, sizeof t->mu, "%s", mu);
    t->cfg.rescale = t->rescale;
    t->cfg.mu = *t->mu ? t->mu : NULL;
    mh_exec_set_rescale(t->ex, strcmp(rescale, "exact") == 0 ? MH_RESCALE_EXACT : MH_RESCALE_ADAPTIVE);
    k = 0;
    for (int pass = 0; pass < (q ? 1 : float_passes(opt)); pass++)
      for (int i = 0; i < g->n_params; i++) {
        const mh_param *p = &g->params[i];
        if (q) memcpy(t->m->qparams + p->offset, src[k++], (size_t)p->numel);
        else memcpy(pass_array(t, pass) + p->offset, src[k++], (size_t)p->numel * sizeof(float));
      }
    if (q) {
      memcpy(t->m->qexp, src[k++], sizeof(int) * g->n_params);
      memcpy(mh_exec_rescale_states(t->ex), src[k++], sizeof(mh_rescale_state) * 2 * g->n_nodes);
    }
    for (int i = 0; i < g->n_buffers; i++)
      memcpy(t->m->buffers + g->buffers[i].offset, src[k++], (size_t)g->buffers[i].numel * sizeof(float));
    t->step = step, t->epoch = (int)epoch, t->batch_in_epoch = bie, t->steps_per_epoch = spe;
    if (norm) memcpy(t->norm_mean, nm, sizeof nm), memcpy(t->norm_std, ns, sizeof ns), t->norm_known = 1;
    const char *frozen = mh_st_meta_get(f, "frozen"), *fbt = mh_st_meta_get(f, "frozen_bn_train");
    t->cfg.frozen_bn_train = fbt && !strcmp(fbt, "1");
    mh_exec_set_frozen_bn_batch_stats(t->ex, t->cfg.frozen_bn_train);
    if (frozen && *frozen) st = mh__trainer_set_frozen(t, frozen, NULL);
  }
  free(src);
done:
  mh_st_free(f);
  return st;
}

int mh_checkpoint_model(const char *path, uint64_t seed, mh_model **model) {
  *model = NULL;
  mh_st_file *f = NULL;
  MH_TRY(mh_st_read(&f, path));
  const char *text = mh_st_meta_get(f, "model_text"), *name = mh_st_meta_get(f, "model");
  int st;
  mh_graph g;
  if (!text) {
    st = mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata lacks 'model_text'", path);
  } else {
    char label[512];
    snprintf(label, sizeof label, "%s (model_text)", path);
    st = mh_model_parse(&g, text, strlen(text), label);
    if (st == MH_OK) {
      if (name) snprintf(g.model_name, sizeof g.model_name, "%s", name);
      st = mh__model_from_graph(model, &g, seed);
    }
  }
  mh_st_free(f);
  return st;
}

int mh_checkpoint_precision(const char *path, char *out, size_t size) {
  mh_st_file *f = NULL;
  MH_TRY(mh_st_read(&f, path));
  const char *p = mh_st_meta_get(f, "precision");
  int st = MH_OK;
  if (!p || !*p || strlen(p) >= size) st = mh__error(MH_ERR_FORMAT, "%s: checkpoint metadata 'precision' missing or too long", path);
  else snprintf(out, size, "%s", p);
  mh_st_free(f);
  return st;
}
