/* Model lifetime, PyTorch-compatible initialisation and the `info` description (layers, shapes,
 * parameters, MACs, memory estimate). No training logic. */
#include "train/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "graph/executor.h"
#include "quant/quantize.h"
#include "train/algo.h"

int mh__model_from_graph(mh_model **out, mh_graph *g, uint64_t seed) {
  *out = NULL;
  mh_model *m = calloc(1, sizeof *m);
  if (!m) {
    mh_graph_free(g);
    return mh__error(MH_ERR_NOMEM, "model: out of memory");
  }
  m->g = *g;
  memset(g, 0, sizeof *g);
  size_t np = (size_t)m->g.n_param_floats, nb = (size_t)m->g.n_buffer_floats;
  m->params = malloc(np * sizeof(float) + 64);
  m->grads = calloc(np + 16, sizeof(float));
  m->buffers = malloc(nb * sizeof(float) + 64);
  if (!m->params || !m->grads || !m->buffers || mh_model_write(&m->g, &m->text) != MH_OK) {
    mh_model_free(m);
    return mh__error(MH_ERR_NOMEM, "model: out of memory for %zu parameters", np);
  }
  mh__model_init_params(m, seed);
  *out = m;
  return MH_OK;
}

void mh__model_init_params(mh_model *m, uint64_t seed) {
  for (int i = 0; i < m->g.n_params; i++) {
    const mh_param *p = &m->g.params[i];
    float *w = m->params + p->offset;
    if (p->kind == MH_PARAM_BN_GAMMA || p->kind == MH_PARAM_BN_BETA) {
      for (int64_t k = 0; k < p->numel; k++) w[k] = p->kind == MH_PARAM_BN_GAMMA ? 1.f : 0.f;
      continue;
    }
    float bound = 1.f / sqrtf((float)p->fan_in);
    mh_rng r = mh_rng_make(mh_rng_key(seed, MH_STREAM_INIT, (uint64_t)i, 0));
    for (int64_t k = 0; k < p->numel; k++) w[k] = (mh_rng_uniform(&r) * 2.f - 1.f) * bound;
  }
  for (int i = 0; i < m->g.n_buffers; i++) {
    const mh_buffer *b = &m->g.buffers[i];
    for (int64_t k = 0; k < b->numel; k++) m->buffers[b->offset + k] = b->init;
  }
}

int mh_model_create(mh_model **out, const char *name_or_path, uint64_t seed) {
  *out = NULL;
  mh_graph g;
  int st = mh_zoo_build(&g, name_or_path);
  if (st == MH_ERR_INVALID_ARG) { /* not a zoo name: a model file? */
    FILE *f = fopen(name_or_path, "rb");
    if (!f) {
      return mh__error(MH_ERR_INVALID_ARG,
                       "'%s' is neither a zoo model (lenet5, cnn6, cnn6-nobn, vgg11, resnet18, mobilenetv2) nor a "
                       "readable model file",
                       name_or_path);
    }
    fclose(f);
    st = mh_model_parse_file(&g, name_or_path);
  }
  if (st) return st;
  return mh__model_from_graph(out, &g, seed);
}

void mh_model_free(mh_model *m) {
  if (!m) return;
  mh_graph_free(&m->g);
  free(m->params), free(m->grads), free(m->buffers), free(m->text);
  free(m->qparams), free(m->qexp), free(m->qgrads);
  free(m);
}

int mh__model_make_integer(mh_model *m) {
  if (m->qparams) return MH_OK;
  size_t np = (size_t)m->g.n_param_floats;
  m->qparams = malloc(np + 64);
  m->qgrads = calloc(np + 16, sizeof(int32_t));
  m->qexp = calloc((size_t)m->g.n_params + 1, sizeof(int));
  if (!m->qparams || !m->qgrads || !m->qexp) {
    free(m->qparams), free(m->qgrads), free(m->qexp);
    m->qparams = NULL, m->qgrads = NULL, m->qexp = NULL;
    return mh__error(MH_ERR_NOMEM, "model: out of memory for integer parameters");
  }
  mh__model_quantize_params(m);
  return MH_OK;
}

void mh__model_quantize_params(mh_model *m) {
  for (int i = 0; i < m->g.n_params; i++) {
    const mh_param *p = &m->g.params[i];
    m->qexp[i] = mh_quantize_f32_s8(mh_cpu_kernels_get(1), NULL, m->params + p->offset, (long)p->numel,
                                    m->qparams + p->offset, MH_ROUND_NEAREST, 0);
    /* One bit of headroom: the exponent is fixed from here on, and trained weights grow past
     * their initial range (float training roughly doubles them); without it they clip at +-127. */
    for (int64_t k = 0; k < p->numel; k++)
      m->qparams[p->offset + k] = (int8_t)mh_q_round_nearest(m->qparams[p->offset + k], MH_INT_HEADROOM_BITS);
    m->qexp[i] += MH_INT_HEADROOM_BITS;
  }
}

int64_t mh_model_param_count(const mh_model *m) { return m->g.n_param_floats; }

const char *mh_model_name(const mh_model *m) { return m->g.model_name; }

int mh_model_to_text(const mh_model *m, char **text) {
  *text = strdup(m->text);
  return *text ? MH_OK : mh__error(MH_ERR_NOMEM, "out of memory");
}

static void fmt_bytes(char *out, size_t n, double b) {
  if (b >= 1 << 30) snprintf(out, n, "%.2f GiB", b / (1 << 30));
  else if (b >= 1 << 20) snprintf(out, n, "%.2f MiB", b / (1 << 20));
  else snprintf(out, n, "%.1f KiB", b / 1024);
}

int mh_model_describe(const mh_model *m, int batch, char **text) {
  const mh_graph *g = &m->g;
  size_t cap = 2048 + (size_t)g->n_nodes * 160;
  char *out = malloc(cap), *p = out;
  if (!out) return mh__error(MH_ERR_NOMEM, "out of memory");
  int64_t macs = 0;
  p += sprintf(p, "model %s\n%-4s %-22s %-10s %-16s %12s %14s\n", g->model_name, "#", "layer", "op", "output",
               "params", "MACs/sample");
  for (int i = 0; i < g->n_nodes; i++) {
    const mh_node *n = &g->nodes[i];
    int64_t np = 0, mc = mh_node_macs(g, i);
    for (int k = 0; k < n->n_params; k++) np += g->params[n->param0 + k].numel;
    macs += mc;
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", n->c, n->h, n->w);
    p += sprintf(p, "%-4d %-22.22s %-10s %-16s %12lld %14lld\n", i, n->name, mh_op_name(n->op), shape, (long long)np,
                 (long long)mc);
  }
  p += sprintf(p, "parameters: %lld\nMACs per sample (forward): %lld (training step ~3x: %.3f GMAC per sample)\n",
               (long long)g->n_param_floats, (long long)macs, 3.0 * (double)macs * 1e-9);
  /* the memory estimate is the executor's own plan for this batch, per algorithm */
  p += sprintf(p, "training memory at batch %d (planned):\n  %-9s %11s %17s %22s %16s %11s\n", batch, "precision",
               "total", "params+grads+opt", "activations+gradients", "saved (int8 etc)", "scratch");
  double fp32_total = 0;
  static const char *const algos[] = {"fp32", "int8", "niti"};
  for (int a = 0; a < 3; a++) {
    const mh_algo *al = mh_algo_find(algos[a]);
    if (al->check(g) != MH_OK) {
      p += sprintf(p, "  %-9s %11s\n", algos[a], "n/a (needs a BN-free model)");
      continue;
    }
    mh_executor *ex = NULL;
    mh_exec_stats st;
    if (mh_exec_init(&ex, g, NULL, NULL) == MH_OK) mh_exec_set_precision(ex, al->precision);
    if (ex && mh_exec_prepare(ex, batch, 1) == MH_OK && mh_exec_stats_get(ex, 1, &st) == MH_OK) {
      /* float: weights, gradients, momentum; integer: int8 weights, int32 gradients */
      double params = (double)g->n_param_floats * (al->integer_params ? 5 : 12) + (double)g->n_buffer_floats * 4;
      double total = params + st.arena_bytes + st.scratch_bytes + st.state_bytes;
      char t[32], w[32], ac[32], sv[32], sc[32], rel[32] = "";
      if (a == 0) fp32_total = total;
      else snprintf(rel, sizeof rel, "  (%.2fx fp32)", total / fp32_total);
      fmt_bytes(t, sizeof t, total), fmt_bytes(w, sizeof w, params);
      fmt_bytes(ac, sizeof ac, (double)st.arena_bytes), fmt_bytes(sv, sizeof sv, (double)st.state_bytes);
      fmt_bytes(sc, sizeof sc, (double)st.scratch_bytes);
      p += sprintf(p, "  %-9s %11s %17s %22s %16s %11s%s\n", algos[a], t, w, ac, sv, sc, rel);
      if (a == 0) {
        char nv[32];
        fmt_bytes(nv, sizeof nv, (double)st.arena_naive_bytes);
        p += sprintf(p, "  (fp32 activations+gradients without reuse: %s)\n", nv);
      }
    }
    mh_exec_free(ex);
  }
  mh_clear_error();
  *text = out;
  return MH_OK;
}

int mh_model_classes(const mh_model *m) { return m->g.nodes[m->g.n_nodes - 1].c; }

int mh_model_set_classes(mh_model **mp, int classes, uint64_t seed) {
  mh_model *m = *mp;
  const mh_graph *g = &m->g;
  const mh_node *last = &g->nodes[g->n_nodes - 1];
  if (classes < 2 || classes > 1 << 24)
    return mh__error(MH_ERR_INVALID_ARG, "--classes %d out of range [2, %d]", classes, 1 << 24);
  if (last->op != MH_OP_LINEAR)
    return mh__error(MH_ERR_UNSUPPORTED, "--classes: the last layer of %s, '%s', is %s; a new head replaces a linear "
                     "last layer", g->model_name, last->name, mh_op_name(last->op));
  /* the model text with the last layer's out= changed (the text is our writer's: one layer per line) */
  const char *text = m->text;
  size_t len = strlen(text);
  while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
  size_t line = len;
  while (line && text[line - 1] != '\n') line--;
  const char *out = strstr(text + line, " out=");
  if (!out || out > text + len) return mh__error(MH_ERR_FORMAT, "--classes: cannot find the last layer's out= in the model text");
  const char *after = out + 5;
  while (*after >= '0' && *after <= '9') after++;
  size_t cap = strlen(text) + 32;
  char *t2 = malloc(cap);
  if (!t2) return mh__error(MH_ERR_NOMEM, "model: out of memory");
  snprintf(t2, cap, "%.*s out=%d%s", (int)(out - text), text, classes, after);
  mh_graph g2;
  int st = mh_model_parse(&g2, t2, strlen(t2), "--classes");
  free(t2);
  if (st) return st;
  snprintf(g2.model_name, sizeof g2.model_name, "%s", g->model_name);
  mh_model *n = NULL;
  MH_TRY(mh__model_from_graph(&n, &g2, seed)); /* the new head: a fresh initialisation from the seed */
  for (int i = 0; i < n->g.n_params; i++) { /* every other parameter and buffer: as they were */
    const mh_param *p = &n->g.params[i];
    if (p->node == n->g.n_nodes - 1) continue;
    memcpy(n->params + p->offset, m->params + g->params[i].offset, sizeof(float) * (size_t)p->numel);
  }
  memcpy(n->buffers, m->buffers, sizeof(float) * (size_t)g->n_buffer_floats);
  mh_model_free(m);
  *mp = n;
  return MH_OK;
}

void mh__model_float_params(const mh_model *m, int integer, float *out) {
  if (!integer || !m->qparams) {
    memcpy(out, m->params, sizeof(float) * (size_t)m->g.n_param_floats);
    return;
  }
  for (int i = 0; i < m->g.n_params; i++) {
    const mh_param *p = &m->g.params[i];
    for (int64_t k = 0; k < p->numel; k++) out[p->offset + k] = ldexpf((float)m->qparams[p->offset + k], m->qexp[i]);
  }
}
