/* The model zoo of MODELS.md, built layer by layer in the same order as reference/zoo.py so that
 * parameter counts and parameter order match PyTorch exactly (the golden tests rely on both). */
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "graph/graph.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static const char *const k_zoo[] = {"lenet5", "cnn6", "cnn6-nobn", "vgg11", "resnet18", "mobilenetv2", NULL};

const char *const *mh_zoo_names(void) { return k_zoo; }

/* conv (+ BN) + activation; returns the last node id or a negative status. act: 0 none, 1 relu, 6 relu6. */
static int conv_bn_act(mh_graph *g, const char *prefix, int x, int out, int k, int s, int p, int groups, int bn,
                       int act) {
  char nm[MH_NAME_MAX];
  snprintf(nm, sizeof nm, "%s", prefix);
  x = mh_graph_conv2d(g, nm, x, out, k, s, p, groups, !bn);
  if (x < 0) return x;
  if (bn) {
    snprintf(nm, sizeof nm, "%s_bn", prefix);
    x = mh_graph_batchnorm(g, nm, x, BN_EPS, BN_MOMENTUM);
    if (x < 0) return x;
  }
  if (act) {
    snprintf(nm, sizeof nm, "%s_%s", prefix, act == 6 ? "relu6" : "relu");
    x = act == 6 ? mh_graph_relu6(g, nm, x) : mh_graph_relu(g, nm, x);
  }
  return x;
}

#define STEP(expr)             \
  do {                         \
    x = (expr);                \
    if (x < 0) return x;       \
  } while (0)

static int lenet5(mh_graph *g) {
  int x = 0;
  MH_TRY(mh_graph_init(g, 1, 28, 28));
  STEP(conv_bn_act(g, "conv1", x, 6, 5, 1, 2, 1, 0, 1));
  STEP(mh_graph_maxpool(g, "pool1", x, 2, 2, 0));
  STEP(conv_bn_act(g, "conv2", x, 16, 5, 1, 0, 1, 0, 1));
  STEP(mh_graph_maxpool(g, "pool2", x, 2, 2, 0));
  STEP(mh_graph_flatten(g, "flatten", x));
  STEP(mh_graph_linear(g, "fc1", x, 120, 1));
  STEP(mh_graph_relu(g, "fc1_relu", x));
  STEP(mh_graph_linear(g, "fc2", x, 84, 1));
  STEP(mh_graph_relu(g, "fc2_relu", x));
  STEP(mh_graph_linear(g, "fc3", x, 10, 1));
  return MH_OK;
}

static int cnn6(mh_graph *g, int bn) {
  int x = 0;
  MH_TRY(mh_graph_init(g, 1, 28, 28));
  STEP(conv_bn_act(g, "conv1", x, 32, 3, 1, 1, 1, bn, 1));
  STEP(conv_bn_act(g, "conv2", x, 32, 3, 1, 1, 1, bn, 1));
  STEP(mh_graph_maxpool(g, "pool1", x, 2, 2, 0));
  STEP(conv_bn_act(g, "conv3", x, 64, 3, 1, 1, 1, bn, 1));
  STEP(conv_bn_act(g, "conv4", x, 64, 3, 1, 1, 1, bn, 1));
  STEP(mh_graph_maxpool(g, "pool2", x, 2, 2, 0));
  STEP(mh_graph_flatten(g, "flatten", x));
  STEP(mh_graph_linear(g, "fc1", x, 128, 1));
  STEP(mh_graph_relu(g, "fc1_relu", x));
  STEP(mh_graph_linear(g, "fc2", x, 10, 1));
  return MH_OK;
}

static int vgg11(mh_graph *g) {
  static const int cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
  int x = 0, conv = 0, pool = 0;
  char nm[MH_NAME_MAX];
  MH_TRY(mh_graph_init(g, 3, 32, 32));
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
    if (cfg[i] == 0) {
      snprintf(nm, sizeof nm, "pool%d", ++pool);
      STEP(mh_graph_maxpool(g, nm, x, 2, 2, 0));
    } else {
      snprintf(nm, sizeof nm, "conv%d", ++conv);
      STEP(conv_bn_act(g, nm, x, cfg[i], 3, 1, 1, 1, 1, 1));
    }
  }
  STEP(mh_graph_flatten(g, "flatten", x));
  STEP(mh_graph_linear(g, "fc", x, 10, 1));
  return MH_OK;
}

/* BasicBlock: conv-bn-relu, conv-bn, shortcut (1x1 conv + bn when the shape changes), add, relu. */
static int basic_block(mh_graph *g, const char *p, int x, int out, int stride) {
  char nm[MH_NAME_MAX];
  int in = x, in_c = g->nodes[x].c, y, sc = x;
  snprintf(nm, sizeof nm, "%s.conv1", p);
  if ((y = conv_bn_act(g, nm, x, out, 3, stride, 1, 1, 1, 1)) < 0) return y;
  snprintf(nm, sizeof nm, "%s.conv2", p);
  if ((y = conv_bn_act(g, nm, y, out, 3, 1, 1, 1, 1, 0)) < 0) return y;
  if (stride != 1 || in_c != out) {
    snprintf(nm, sizeof nm, "%s.shortcut", p);
    if ((sc = conv_bn_act(g, nm, in, out, 1, stride, 0, 1, 1, 0)) < 0) return sc;
  }
  snprintf(nm, sizeof nm, "%s.add", p);
  if ((y = mh_graph_add(g, nm, y, sc)) < 0) return y;
  snprintf(nm, sizeof nm, "%s.relu", p);
  return mh_graph_relu(g, nm, y);
}

static int resnet18(mh_graph *g) {
  static const int stages[8][2] = {{64, 1}, {64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1}};
  int x = 0;
  char nm[MH_NAME_MAX];
  MH_TRY(mh_graph_init(g, 3, 32, 32));
  STEP(conv_bn_act(g, "conv1", x, 64, 3, 1, 1, 1, 1, 1));
  for (int i = 0; i < 8; i++) {
    snprintf(nm, sizeof nm, "layer%d.%d", i / 2 + 1, i % 2);
    STEP(basic_block(g, nm, x, stages[i][0], stages[i][1]));
  }
  STEP(mh_graph_gap(g, "gap", x));
  STEP(mh_graph_linear(g, "fc", x, 10, 1));
  return MH_OK;
}

/* Inverted residual: expand 1x1 + BN + ReLU6, depthwise 3x3 + BN + ReLU6, project 1x1 + BN, (+ x). */
static int inverted_residual(mh_graph *g, const char *p, int x, int out, int t, int stride) {
  char nm[MH_NAME_MAX];
  int in = x, in_c = g->nodes[x].c, hid = in_c * t, y;
  snprintf(nm, sizeof nm, "%s.expand", p);
  if ((y = conv_bn_act(g, nm, x, hid, 1, 1, 0, 1, 1, 6)) < 0) return y;
  snprintf(nm, sizeof nm, "%s.dw", p);
  if ((y = conv_bn_act(g, nm, y, hid, 3, stride, 1, hid, 1, 6)) < 0) return y;
  snprintf(nm, sizeof nm, "%s.project", p);
  if ((y = conv_bn_act(g, nm, y, out, 1, 1, 0, 1, 1, 0)) < 0) return y;
  if (stride == 1 && in_c == out) {
    snprintf(nm, sizeof nm, "%s.add", p);
    y = mh_graph_add(g, nm, in, y);
  }
  return y;
}

static int mobilenetv2(mh_graph *g) {
  static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int x = 0, blk = 0;
  char nm[MH_NAME_MAX];
  MH_TRY(mh_graph_init(g, 3, 32, 32));
  STEP(conv_bn_act(g, "conv0", x, 32, 3, 1, 1, 1, 1, 6));
  for (int s = 0; s < 7; s++)
    for (int j = 0; j < cfg[s][2]; j++) {
      snprintf(nm, sizeof nm, "block%d", ++blk);
      STEP(inverted_residual(g, nm, x, cfg[s][1], cfg[s][0], j == 0 ? cfg[s][3] : 1));
    }
  STEP(conv_bn_act(g, "conv_last", x, 1280, 1, 1, 0, 1, 1, 6));
  STEP(mh_graph_gap(g, "gap", x));
  STEP(mh_graph_linear(g, "fc", x, 10, 1));
  return MH_OK;
}

int mh_zoo_build(mh_graph *g, const char *name) {
  int st;
  memset(g, 0, sizeof *g);
  if (strcmp(name, "lenet5") == 0) st = lenet5(g);
  else if (strcmp(name, "cnn6") == 0) st = cnn6(g, 1);
  else if (strcmp(name, "cnn6-nobn") == 0) st = cnn6(g, 0);
  else if (strcmp(name, "vgg11") == 0) st = vgg11(g);
  else if (strcmp(name, "resnet18") == 0) st = resnet18(g);
  else if (strcmp(name, "mobilenetv2") == 0) st = mobilenetv2(g);
  else
    return mh__error(MH_ERR_INVALID_ARG,
                     "unknown model '%s' (zoo: lenet5, cnn6, cnn6-nobn, vgg11, resnet18, mobilenetv2; or a model file)",
                     name);
  if (st < 0) {
    mh_graph_free(g);
    return st;
  }
  snprintf(g->model_name, sizeof g->model_name, "%s", name);
  return MH_OK;
}
