/* The C API for apps and federated clients, through the public header only: parameters enumerated
 * with checkpoint names and shapes, the whole state copied out and in (two trainers made equal give
 * equal predictions; FedAvg of two clients' states is their element-wise mean), the learning rate
 * set between steps (0: the weights stay), a fit stopped from its progress callback, and two
 * trainers stepping in two threads at once giving what each gives alone. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mandheling.h"
#include "testlib.h"

enum { B = 8 };

static void batch(float *x, int32_t *y, int s) {
  for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 2654435761u + s * 131u) % 991) / 495.f - 1.f;
  for (int i = 0; i < B; i++) y[i] = (i * 7 + s) % 10;
}

static mh_trainer *make(mh_model **m, const char *precision, uint64_t seed) {
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = precision, cfg.batch = B, cfg.threads = 1;
  mh_trainer *t = NULL;
  if (mh_model_create(m, "cnn6", seed) || mh_trainer_create(&t, *m, &cfg)) TL_FAIL("%s: %s", precision, mh_last_error());
  return t;
}

static void params(void) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 1));
  CHECK_EQ_INT(mh_model_n_params(m), 10);
  const char *name = NULL;
  int nd = 0;
  int64_t sh[4];
  CHECK_OK(mh_model_param_info(m, 0, &name, &nd, sh));
  CHECK(!strcmp(name, "conv1.weight") && nd == 4 && sh[0] == 6 && sh[1] == 1 && sh[2] == 5 && sh[3] == 5);
  CHECK_OK(mh_model_param_info(m, 9, &name, &nd, sh));
  CHECK(!strcmp(name, "fc3.bias") && nd == 1 && sh[0] == 10);
  int64_t total = 0;
  for (int i = 0; i < mh_model_n_params(m); i++) {
    CHECK_OK(mh_model_param_info(m, i, NULL, &nd, sh));
    total += sh[0] * sh[1] * sh[2] * sh[3];
  }
  CHECK_EQ_INT(total, mh_model_param_count(m));
  CHECK(mh_model_param_info(m, 10, &name, &nd, sh) != MH_OK && strstr(mh_last_error(), "out of range"));
  mh_model_free(m);
}

/* two clients trained apart, their states averaged and set into both: equal states, equal logits */
static void fedavg(const char *precision) {
  mh_model *ma = NULL, *mb = NULL;
  mh_trainer *a = make(&ma, precision, 1), *b = make(&mb, precision, 2);
  if (!a || !b) goto out;
  static float x[B * 784], za[B * 10], zb[B * 10];
  int32_t y[B];
  for (int s = 0; s < 3; s++) {
    batch(x, y, s);
    CHECK_OK(mh_trainer_step(a, x, y, B, NULL));
    batch(x, y, s + 10);
    CHECK_OK(mh_trainer_step(b, x, y, B, NULL));
  }
  size_t n = mh_trainer_state_floats(a);
  CHECK_EQ_INT(n, mh_model_param_count(ma) + 2 * (32 + 32 + 64 + 64));
  float *sa = malloc(n * sizeof(float)), *sb = malloc(n * sizeof(float)), *avg = malloc(n * sizeof(float));
  CHECK_OK(mh_trainer_get_state(a, sa, n));
  CHECK_OK(mh_trainer_get_state(b, sb, n));
  for (size_t i = 0; i < n; i++) avg[i] = 0.5f * (sa[i] + sb[i]);
  CHECK_OK(mh_trainer_set_state(a, avg, n));
  CHECK_OK(mh_trainer_set_state(b, avg, n));
  CHECK_OK(mh_trainer_get_state(a, sa, n));
  CHECK_OK(mh_trainer_get_state(b, sb, n));
  CHECK(memcmp(sa, sb, n * sizeof(float)) == 0);
  if (!strcmp(precision, "fp32")) CHECK(memcmp(sa, avg, n * sizeof(float)) == 0); /* float: exactly the mean */
  batch(x, y, 20);
  CHECK_OK(mh_trainer_predict(a, x, B, za));
  CHECK_OK(mh_trainer_predict(b, x, B, zb));
  CHECK(memcmp(za, zb, sizeof za) == 0);
  CHECK(mh_trainer_set_state(a, avg, n - 1) != MH_OK && strstr(mh_last_error(), "floats given"));
  avg[3] = NAN;
  CHECK(mh_trainer_set_state(a, avg, n) != MH_OK && strstr(mh_last_error(), "not finite"));
  free(sa), free(sb), free(avg);
out:
  mh_trainer_free(a), mh_trainer_free(b);
  mh_model_free(ma), mh_model_free(mb);
}

/* lr 0 from the next step: the weights stay although the momentum buffer is not zero */
static void set_lr(void) {
  mh_model *m = NULL;
  mh_trainer *t = make(&m, "fp32", 3);
  if (!t) goto out;
  static float x[B * 784];
  int32_t y[B];
  batch(x, y, 1);
  CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
  size_t n = mh_trainer_state_floats(t), np = (size_t)mh_model_param_count(m);
  float *s0 = malloc(n * sizeof(float)), *s1 = malloc(n * sizeof(float));
  CHECK_OK(mh_trainer_get_state(t, s0, n));
  CHECK_OK(mh_trainer_set_lr(t, 0.f));
  CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
  CHECK_OK(mh_trainer_get_state(t, s1, n));
  CHECK(memcmp(s0, s1, np * sizeof(float)) == 0);
  CHECK_OK(mh_trainer_set_lr(t, 0.01f));
  CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
  CHECK_OK(mh_trainer_get_state(t, s1, n));
  CHECK(memcmp(s0, s1, np * sizeof(float)) != 0);
  CHECK(mh_trainer_set_lr(t, -1.f) != MH_OK);
  free(s0), free(s1);
out:
  mh_trainer_free(t);
  mh_model_free(m);
}

/* a fit stopped from its progress callback after 5 steps */
static void stop_cb(void *user, const mh_progress *p) {
  if (p->step == 5) mh_trainer_request_stop(user);
}
static void stop_fit(void) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.batch = 32, cfg.epochs = 1;
  CHECK_OK(mh_model_create(&m, "lenet5", 1));
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  mh_fit_summary sum;
  int st = t ? mh_fit(t, "/usr/share/datasets/fashion-mnist", stop_cb, t, &sum) : -1;
  if (st == MH_ERR_IO) printf("# fit stop: no Fashion-MNIST here, skipped\n");
  else {
    CHECK_OK(st);
    CHECK(sum.stopped == 1 && sum.steps == 5);
  }
  mh_trainer_free(t);
  mh_model_free(m);
}

/* two trainers in two threads: each thread's result equals the same run alone */
typedef struct {
  uint64_t seed;
  float out[B * 10];
} run_job;
static void *run(void *p) {
  run_job *j = p;
  mh_model *m = NULL;
  mh_trainer *t = make(&m, "int8", j->seed);
  static _Thread_local float x[B * 784];
  int32_t y[B];
  for (int s = 0; t && s < 4; s++) {
    batch(x, y, s + (int)j->seed);
    mh_trainer_step(t, x, y, B, NULL);
  }
  if (t) mh_trainer_predict(t, x, B, j->out);
  mh_trainer_free(t);
  mh_model_free(m);
  return NULL;
}
static void threads(void) {
  run_job alone[2] = {{5, {0}}, {6, {0}}}, both[2] = {{5, {0}}, {6, {0}}};
  run(&alone[0]), run(&alone[1]);
  pthread_t th[2];
  for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, run, &both[k]);
  for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
  for (int k = 0; k < 2; k++) CHECK(memcmp(alone[k].out, both[k].out, sizeof alone[k].out) == 0);
}

int main(void) {
  params();
  fedavg("fp32");
  fedavg("int8");
  set_lr();
  stop_fit();
  threads();
  return tl_exit();
}
