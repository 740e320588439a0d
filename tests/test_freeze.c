/* Partial training (--freeze / --train-only): frozen parameters stay bit-identical in every
 * algorithm; backward does no work below the first trainable layer; training only the last layer
 * equals training a one-layer model on the frozen trunk's features, bit for bit; layer lists
 * resolve as documented and bad ones are refused; a new head (--classes) keeps the trunk. */
#include <string.h>

#include "graph/executor.h"
#include "graph/graph.h"
#include "mandheling.h"
#include "testlib.h"
#include "train/model.h"
#include "train/trainer.h"

enum { B = 8 };

static void batch(float *x, int32_t *y, int s) {
  for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 2654435761u + s * 97u) % 997) / 498.f - 1.f;
  for (int i = 0; i < B; i++) y[i] = (i + 3 * s) % 10;
}

static mh_trainer *make(mh_model *m, const char *precision, const char *freeze, const char *train_only) {
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = precision, cfg.batch = B, cfg.freeze = freeze, cfg.train_only = train_only;
  cfg.schedule = MH_SCHEDULE_CONSTANT;
  mh_trainer *t = NULL;
  if (mh_trainer_create(&t, m, &cfg)) TL_FAIL("trainer (%s, freeze %s, train-only %s): %s", precision, freeze ? freeze : "-",
                                              train_only ? train_only : "-", mh_last_error());
  return t;
}

/* lenet5 with conv1..conv2 frozen, 3 steps: their parameters unchanged (float masters, or int8
 * weights under niti), every other parameter changed; backward time only for fc layers and the
 * layers after them. */
static void frozen_stay(const char *precision) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 7));
  mh_trainer *t = make(m, precision, "conv1..conv2", NULL);
  if (!t) {
    mh_model_free(m);
    return;
  }
  const mh_graph *g = &m->g;
  int integer = !strcmp(precision, "niti");
  size_t bytes = (size_t)g->n_param_floats * (integer ? 1 : sizeof(float));
  void *before = malloc(bytes);
  static float x[B * 784];
  int32_t y[B];
  batch(x, y, 0);
  CHECK_OK(mh_trainer_step(t, x, y, B, NULL)); /* integer weights exist from here */
  memcpy(before, integer ? (void *)m->qparams : (void *)m->params, bytes);
  CHECK_OK(mh_exec_set_profile(t->ex, 1));
  for (int s = 1; s < 4; s++) {
    batch(x, y, s);
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
  }
  const double *prof = mh_exec_profile(t->ex);
  for (int i = 0; i < g->n_params; i++) {
    const mh_param *p = &g->params[i];
    size_t off = (size_t)p->offset * (integer ? 1 : sizeof(float)), n = (size_t)p->numel * (integer ? 1 : sizeof(float));
    int same = memcmp((char *)before + off, (char *)(integer ? (void *)m->qparams : (void *)m->params) + off, n) == 0;
    int frozen = !strncmp(p->name, "conv", 4);
    if (same != frozen) TL_FAIL("%s: %s %s", precision, p->name, frozen ? "changed though frozen" : "did not train");
    tl_checks++;
  }
  for (int i = 1; i < g->n_nodes; i++) { /* backward runs from fc1 up: the nodes up to flatten do none */
    int below = i < 8; /* conv1 conv1_relu pool1 conv2 conv2_relu pool2 flatten */
    if (below != (prof[2 * i + 1] == 0))
      TL_FAIL("%s: node %s spent %g s in backward", precision, g->nodes[i].name, prof[2 * i + 1]);
    tl_checks++;
  }
  free(before);
  mh_trainer_free(t);
  mh_model_free(m);
}

/* Last layer only, one step: the same as a one-layer model (linear 84 -> 10) trained one step on
 * the features the frozen trunk (lenet5 up to fc2_relu, evaluated) gives. Bit for bit in fp32. */
static void last_layer_is_a_head(void) {
  mh_model *m = NULL, *trunk = NULL, *head = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 3));
  static const char trunk_text[] =
      "input 1x28x28\nconv conv1 out=6 k=5 pad=2\nrelu conv1_relu\nmaxpool pool1 k=2\nconv conv2 out=16 k=5\n"
      "relu conv2_relu\nmaxpool pool2 k=2\nflatten flatten\nlinear fc1 out=120\nrelu fc1_relu\nlinear fc2 out=84\n"
      "relu fc2_relu\n";
  static const char head_text[] = "input 84x1x1\nlinear fc3 out=10\n";
  FILE *f = fopen(MH_BINARY_DIR "/trunk.mh", "w");
  fputs(trunk_text, f), fclose(f);
  f = fopen(MH_BINARY_DIR "/head.mh", "w");
  fputs(head_text, f), fclose(f);
  CHECK_OK(mh_model_create(&trunk, MH_BINARY_DIR "/trunk.mh", 3));
  CHECK_OK(mh_model_create(&head, MH_BINARY_DIR "/head.mh", 3));
  if (!m || !trunk || !head) goto out;
  /* the same weights in all three: trunk = lenet5's first parameters, head = fc3 */
  memcpy(trunk->params, m->params, sizeof(float) * (size_t)trunk->g.n_param_floats);
  memcpy(head->params, m->params + trunk->g.n_param_floats, sizeof(float) * (size_t)head->g.n_param_floats);
  mh_trainer *t = make(m, "fp32", NULL, "last:1"), *tt = make(trunk, "fp32", NULL, NULL), *th = make(head, "fp32", NULL, NULL);
  static float x[B * 784], h[B * 84];
  int32_t y[B];
  batch(x, y, 5);
  if (t && tt && th) {
    CHECK_OK(mh_trainer_predict(tt, x, B, h)); /* the frozen trunk's features (inference form) */
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    CHECK_OK(mh_trainer_step(th, h, y, B, NULL));
    const float *fc3 = m->params + trunk->g.n_param_floats;
    CHECK(memcmp(fc3, head->params, sizeof(float) * (size_t)head->g.n_param_floats) == 0);
    CHECK(memcmp(m->params, trunk->params, sizeof(float) * (size_t)trunk->g.n_param_floats) == 0);
  }
  mh_trainer_free(t), mh_trainer_free(tt), mh_trainer_free(th);
out:
  mh_model_free(m), mh_model_free(trunk), mh_model_free(head);
}

/* A frozen batch norm: by default the eval form (running statistics untouched), with
 * frozen_bn_train batch statistics (running statistics move); gamma and beta fixed either way. */
static void frozen_bn(void) {
  /* conv1_bn below the trainable layers (conv3..fc2), and above the only trainable one (conv1):
   * there its eval form's backward carries the gradient down to conv1 */
  for (int k = 0; k < 4; k++) {
    int batch_stats = k & 1;
    mh_model *m = NULL;
    CHECK_OK(mh_model_create(&m, "cnn6", 2));
    mh_train_config cfg;
    mh_train_config_default(&cfg);
    cfg.batch = B, cfg.train_only = k < 2 ? "conv3..fc2" : "conv1", cfg.frozen_bn_train = batch_stats;
    mh_trainer *t = NULL;
    CHECK_OK(mh_trainer_create(&t, m, &cfg));
    if (t) {
      const mh_graph *g = &m->g;
      int bn = mh_graph_find(g, "conv1_bn");
      const mh_buffer *rm = &g->buffers[g->nodes[bn].buffer0];
      float rm0 = m->buffers[rm->offset], gamma0 = m->params[g->params[g->nodes[bn].param0].offset];
      static float x[B * 784];
      int32_t y[B];
      batch(x, y, 1);
      CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
      CHECK((m->buffers[rm->offset] != rm0) == batch_stats);
      CHECK(m->params[g->params[g->nodes[bn].param0].offset] == gamma0);
    }
    mh_trainer_free(t);
    mh_model_free(m);
  }
}

/* Layer lists: names, ranges, last:N; and the errors */
static void lists(void) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "cnn6", 1));
  const mh_graph *g = &m->g;
  unsigned char mark[64];
  CHECK_OK(mh__layers_resolve(g, "conv2..conv3_bn,fc2", "--freeze", mark));
  const char *want[] = {"conv2", "conv2_bn", "conv3", "conv3_bn", "fc2"};
  int n = 0;
  for (int i = 1; i < g->n_nodes; i++)
    if (mark[i]) {
      CHECK(n < 5 && !strcmp(g->nodes[i].name, want[n]));
      n++;
    }
  CHECK_EQ_INT(n, 5);
  CHECK_OK(mh__layers_resolve(g, "last:3", "--train-only", mark));
  n = 0;
  for (int i = 1; i < g->n_nodes; i++) n += mark[i];
  CHECK(n == 3 && mark[g->n_nodes - 1] && mark[g->n_nodes - 3]); /* fc2, fc1, conv4_bn */
  static const char *bad[][2] = {{"conv9", "no layer 'conv9'"},       {"conv1_relu", "has no parameters"},
                                 {"last:0", "needs N in [1, 10]"},     {"last:11", "needs N in [1, 10]"},
                                 {"conv3..conv1", "range 'conv3..conv1'"}, {"pool1", "has no parameters"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    int st = mh__layers_resolve(g, bad[k][0], "--freeze", mark);
    if (st == MH_OK || !strstr(mh_last_error(), bad[k][1]))
      TL_FAIL("--freeze %s: %s (wanted '%s')", bad[k][0], st ? mh_last_error() : "accepted", bad[k][1]);
    tl_checks++;
  }
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.freeze = "conv1..fc2"; /* everything */
  CHECK(mh_trainer_create(&t, m, &cfg) != MH_OK && strstr(mh_last_error(), "nothing to train"));
  cfg.freeze = "conv1", cfg.train_only = "fc2";
  CHECK(mh_trainer_create(&t, m, &cfg) != MH_OK && strstr(mh_last_error(), "exclude each other"));
  mh_model_free(m);
}

/* --classes: the last layer replaced (shape and fresh values), everything else as it was */
static void new_head(void) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "cnn6", 1));
  if (!m) return;
  mh_model *old = m;
  int64_t keep = m->g.params[m->g.n_params - 2].offset; /* fc2.weight starts here */
  float *copy = malloc(sizeof(float) * (size_t)keep);
  memcpy(copy, m->params, sizeof(float) * (size_t)keep);
  CHECK_OK(mh_model_set_classes(&m, 5, 9));
  CHECK(m != old);
  CHECK_EQ_INT(mh_model_classes(m), 5);
  CHECK(memcmp(copy, m->params, sizeof(float) * (size_t)keep) == 0);
  CHECK_EQ_INT(m->g.params[m->g.n_params - 2].numel, 5 * 128);
  CHECK(mh_model_set_classes(&m, 1, 9) != MH_OK && strstr(mh_last_error(), "--classes 1"));
  mh_model *l = NULL;
  CHECK_OK(mh_model_create(&l, "resnet18", 1));
  CHECK(mh_model_set_classes(&l, 5, 1) == MH_OK); /* its head is linear too */
  mh_model_free(l);
  free(copy);
  mh_model_free(m);
}

/* The plan of partial training holds the work that runs: with conv1..conv2 frozen, lenet5's backward
 * is fc3..fc1 only (no bwd of the layers up to flatten, no bwd-data of fc1), and its update covers the
 * fc layers' 59,706 parameters. */
static void plan_partial(void) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 1));
  char *text = NULL;
  mh_plan_report r;
  CHECK_OK(mh_model_plan_partial(m, "int8", "sd865", 32, 1, "conv1..conv2", NULL, &text, &r));
  if (text) {
    static const char *has[] = {"bwd-weight fc3", "bwd-data fc3", "bwd-weight fc1", "bwd fc1_relu"},
                      *lacks[] = {"bwd-data fc1", "bwd-weight conv2", "bwd-data conv2", "bwd pool2", "bwd conv1_relu",
                                  "bwd-weight conv1"};
    for (size_t k = 0; k < 4; k++) CHECK(strstr(text, has[k]) != NULL);
    for (size_t k = 0; k < 6; k++)
      if (strstr(text, lacks[k])) TL_FAIL("the partial plan lists '%s'", lacks[k]);
  }
  free(text);
  text = NULL;
  CHECK(mh_model_plan_partial(m, "int8", "sd865", 32, 1, "conv1", "fc1", &text, &r) != MH_OK);
  mh_model_free(m);
}

/* Freezing in the middle of a niti run: the frozen layers' int32 gradients from the earlier step are
 * not applied (the update skips them, it does not rely on their being zero). */
static void freeze_mid_run(void) {
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 5));
  mh_trainer *t = make(m, "niti", NULL, NULL);
  if (t) {
    static float x[B * 784];
    int32_t y[B];
    batch(x, y, 2);
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    CHECK_OK(mh__trainer_set_frozen(t, "conv1..conv2", NULL));
    int64_t n = m->g.params[mh_graph_find(&m->g, "fc1") > 0 ? m->g.nodes[mh_graph_find(&m->g, "fc1")].param0 : 0].offset;
    int8_t *before = malloc((size_t)n);
    memcpy(before, m->qparams, (size_t)n); /* conv1 and conv2's weights and biases come first */
    batch(x, y, 3);
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    CHECK(memcmp(before, m->qparams, (size_t)n) == 0);
    free(before);
  }
  mh_trainer_free(t);
  mh_model_free(m);
}

int main(void) {
  frozen_stay("fp32");
  frozen_stay("int8");
  frozen_stay("niti");
  last_layer_is_a_head();
  lists();
  new_head();
  plan_partial();
  frozen_bn();
  freeze_mid_run();
  return tl_exit();
}
