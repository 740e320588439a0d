/* Training configurations for language bindings: one on the heap, its fields set by name from
 * strings (the strings copied and owned by it), so a binding never mirrors the C struct. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "mandheling.h"

typedef struct {
  mh_train_config cfg; /* first: the pointer handed out is this one */
  char *owned[16];     /* the string fields' copies */
} config_box;

mh_train_config *mh_train_config_new(void) {
  config_box *b = calloc(1, sizeof *b);
  if (!b) {
    mh__error(MH_ERR_NOMEM, "config: out of memory");
    return NULL;
  }
  mh_train_config_default(&b->cfg);
  return &b->cfg;
}

void mh_train_config_free(mh_train_config *c) {
  if (!c) return;
  config_box *b = (config_box *)c;
  for (int i = 0; i < 16; i++) free(b->owned[i]);
  free(b);
}

static int num(const char *key, const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi)
    return mh__error(MH_ERR_INVALID_ARG, "config %s = '%.40s': not a number in [%g, %g]", key, v, lo, hi);
  *out = x;
  return MH_OK;
}

int mh_train_config_set(mh_train_config *c, const char *key, const char *value) {
  if (!c || !key || !value) return mh__error(MH_ERR_INVALID_ARG, "config: NULL argument");
  config_box *b = (config_box *)c;
  static const char *const strs[] = {"precision", "rescale", "backend", "profile", "mu", "optimizer",
                                     "freeze", "train_only", "isa"};
  const char **sfield[] = {&c->precision, &c->rescale, &c->backend, &c->profile, &c->mu, &c->optimizer,
                           &c->freeze, &c->train_only, &c->isa};
  for (int i = 0; i < 9; i++)
    if (!strcmp(key, strs[i])) {
      char *copy = strdup(value);
      if (!copy) return mh__error(MH_ERR_NOMEM, "config: out of memory");
      free(b->owned[i]);
      b->owned[i] = copy;
      *sfield[i] = copy;
      return MH_OK;
    }
  if (!strcmp(key, "schedule")) {
    if (!strcmp(value, "cosine")) c->schedule = MH_SCHEDULE_COSINE;
    else if (!strcmp(value, "step")) c->schedule = MH_SCHEDULE_STEP;
    else if (!strcmp(value, "constant")) c->schedule = MH_SCHEDULE_CONSTANT;
    else return mh__error(MH_ERR_INVALID_ARG, "config schedule = '%.40s': expected cosine, step or constant", value);
    return MH_OK;
  }
  double x = 0;
  static const struct {
    const char *key;
    double lo, hi;
  } nums[] = {{"epochs", 1, 100000},     {"batch", 1, 65536},     {"lr", 0, 1e6},        {"momentum", 0, 1},
              {"weight_decay", 0, 1},    {"nesterov", 0, 1},      {"beta1", 0, 1},       {"beta2", 0, 1},
              {"eps", 0, 1},             {"frozen_bn_train", 0, 1}, {"step_size", 0, 100000}, {"gamma", 0, 1},
              {"threads", 1, 256},       {"seed", 0, 9007199254740992.0}, {"max_steps", 0, 1e15}, {"augment", 0, 1},
              {"no_reuse", 0, 1},        {"keep_denormals", 0, 1}, {"no_segments", 0, 1}, {"force_reference", 0, 1}};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    if (strcmp(key, nums[i].key)) continue;
    MH_TRY(num(key, value, nums[i].lo, nums[i].hi, &x));
    switch (i) {
      case 0: c->epochs = (int)x; break;
      case 1: c->batch = (int)x; break;
      case 2: c->lr = (float)x; break;
      case 3: c->momentum = (float)x; break;
      case 4: c->weight_decay = (float)x; break;
      case 5: c->nesterov = (int)x; break;
      case 6: c->beta1 = x; break;
      case 7: c->beta2 = x; break;
      case 8: c->eps = x; break;
      case 9: c->frozen_bn_train = (int)x; break;
      case 10: c->step_size = (int)x; break;
      case 11: c->gamma = (float)x; break;
      case 12: c->threads = (int)x; break;
      case 13: c->seed = (uint64_t)x; break;
      case 14: c->max_steps = (long)x; break;
      case 15: c->augment = (int)x; break;
      case 16: c->no_reuse = (int)x; break;
      case 17: c->keep_denormals = (int)x; break;
      case 18: c->no_segments = (int)x; break;
      default: c->force_reference = (int)x; break;
    }
    return MH_OK;
  }
  return mh__error(MH_ERR_INVALID_ARG, "config: unknown key '%.40s'", key);
}
