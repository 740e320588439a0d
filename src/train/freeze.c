/* Partial training: which layers train, from --freeze / --train-only layer lists (names, a..b
 * ranges in graph order, last:N), and the trainer's masks over nodes and parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "graph/executor.h"
#include "train/trainer.h"

/* The layer named by name[0..len) (mh_graph_find on a copy of the piece), or -1; never the input. */
static int find_node(const mh_graph *g, const char *name, size_t len) {
  char piece[MH_NAME_MAX + 1];
  if (len >= sizeof piece) return -1;
  memcpy(piece, name, len), piece[len] = 0;
  int i = mh_graph_find(g, piece);
  return i > 0 ? i : -1;
}

/* "conv1, conv2, fc1, ..." for messages */
static void param_layers(const mh_graph *g, char *out, size_t cap) {
  size_t len = 0;
  out[0] = 0;
  for (int i = 1; i < g->n_nodes && len + 1 < cap; i++)
    if (g->nodes[i].n_params) len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", g->nodes[i].name);
}

int mh__layers_resolve(const mh_graph *g, const char *spec, const char *what, unsigned char *mark) {
  char names[512];
  param_layers(g, names, sizeof names);
  memset(mark, 0, (size_t)g->n_nodes);
  int n_param_layers = 0, marked = 0;
  for (int i = 1; i < g->n_nodes; i++) n_param_layers += g->nodes[i].n_params > 0;
  const char *p = spec;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *dots = NULL;
    for (size_t k = 0; k + 1 < len; k++)
      if (p[k] == '.' && p[k + 1] == '.') dots = p + k;
    if (len > 5 && !strncmp(p, "last:", 5)) {
      char *e;
      long n = strtol(p + 5, &e, 10);
      if (e != p + len || n < 1 || n > n_param_layers)
        return mh__error(MH_ERR_INVALID_ARG, "%s %s: '%.*s' needs N in [1, %d] (the layers with parameters)", what, spec,
                         (int)len, p, n_param_layers);
      for (int i = g->n_nodes - 1, left = (int)n; i >= 1 && left; i--)
        if (g->nodes[i].n_params) mark[i] = 1, left--;
    } else if (dots) {
      int a = find_node(g, p, (size_t)(dots - p)), b = find_node(g, dots + 2, len - (size_t)(dots - p) - 2);
      if (a < 0 || b < 0 || a > b)
        return mh__error(MH_ERR_INVALID_ARG, "%s %s: range '%.*s' needs two layers of %s in graph order (layers with "
                         "parameters: %s)", what, spec, (int)len, p, g->model_name, names);
      for (int i = a; i <= b; i++) mark[i] = g->nodes[i].n_params > 0;
    } else {
      int i = find_node(g, p, len);
      if (i < 0)
        return mh__error(MH_ERR_INVALID_ARG, "%s %s: %s has no layer '%.*s' (layers with parameters: %s)", what, spec,
                         g->model_name, (int)len, p, names);
      if (!g->nodes[i].n_params)
        return mh__error(MH_ERR_INVALID_ARG, "%s %s: layer '%.*s' has no parameters (layers with parameters: %s)", what,
                         spec, (int)len, p, names);
      mark[i] = 1;
    }
    p = end ? end + 1 : NULL;
  }
  for (int i = 1; i < g->n_nodes; i++) marked += mark[i];
  if (!marked) return mh__error(MH_ERR_INVALID_ARG, "%s '%s' names no layer with parameters (%s)", what, spec, names);
  return MH_OK;
}

int mh__trainer_set_frozen(mh_trainer *t, const char *freeze, const char *train_only) {
  const mh_graph *g = &t->m->g;
  if (freeze && *freeze && train_only && *train_only)
    return mh__error(MH_ERR_INVALID_ARG, "--freeze and --train-only exclude each other (one says what stays, one what trains)");
  const char *spec = freeze && *freeze ? freeze : train_only && *train_only ? train_only : NULL;
  if (!spec) {
    free(t->param_trains), t->param_trains = NULL;
    t->frozen[0] = 0;
    t->planned_batch = 0; /* the executor plans again */
    return mh_exec_set_trainable(t->ex, NULL);
  }
  unsigned char *mark = malloc((size_t)g->n_nodes), *pt = malloc((size_t)g->n_params + 1);
  if (!mark || !pt) {
    free(mark), free(pt);
    return mh__error(MH_ERR_NOMEM, "trainer: out of memory");
  }
  int st = mh__layers_resolve(g, spec, spec == freeze ? "--freeze" : "--train-only", mark);
  if (st == MH_OK) {
    if (spec == freeze)
      for (int i = 0; i < g->n_nodes; i++) mark[i] = !mark[i];
    st = mh_exec_set_trainable(t->ex, mark);
  }
  if (st == MH_OK) {
    size_t len = 0;
    t->frozen[0] = 0;
    for (int i = 1; i < g->n_nodes; i++) {
      for (int k = 0; k < g->nodes[i].n_params; k++) pt[g->nodes[i].param0 + k] = mark[i];
      if (g->nodes[i].n_params && !mark[i] && len + strlen(g->nodes[i].name) + 2 < sizeof t->frozen)
        len += (size_t)snprintf(t->frozen + len, sizeof t->frozen - len, "%s%s", len ? "," : "", g->nodes[i].name);
    }
    free(t->param_trains);
    t->param_trains = pt, pt = NULL;
    t->planned_batch = 0; /* the executor plans again */
  }
  free(mark), free(pt);
  return st;
}
