/* Weights in from a safetensors file (a Mandheling checkpoint or a PyTorch state_dict saved with
 * safetensors): parameters and batch-norm statistics by name, checked before anything is copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "train/model.h"
#include "train/safetensors.h"

/* Parameter or buffer index of a name (buffers after the parameters), or -1. */
static int find_name(const mh_graph *g, const char *name) {
  for (int i = 0; i < g->n_params; i++)
    if (!strcmp(g->params[i].name, name)) return i;
  for (int i = 0; i < g->n_buffers; i++)
    if (!strcmp(g->buffers[i].name, name)) return g->n_params + i;
  return -1;
}

/* Whether a tensor that is no weight may be skipped: a checkpoint's optimizer and integer state,
 * or PyTorch's batch-norm step counter of one of our batch-norm layers. */
static int skippable(const mh_graph *g, const char *name) {
  if (!strncmp(name, "optimizer.", 10)) return 1;
  const char *suffix = ".num_batches_tracked";
  size_t n = strlen(name), s = strlen(suffix);
  if (n <= s || strcmp(name + n - s, suffix)) return 0;
  for (int i = 1; i < g->n_nodes; i++)
    if (g->nodes[i].op == MH_OP_BATCHNORM && strlen(g->nodes[i].name) == n - s && !strncmp(g->nodes[i].name, name, n - s))
      return 1;
  return 0;
}

static void shape_text(char *out, size_t cap, int ndim, const int64_t *shape) {
  size_t len = 0;
  out[0] = 0;
  for (int d = 0; d < ndim && len < cap; d++) len += (size_t)snprintf(out + len, cap - len, "%s%lld", d ? "x" : "", (long long)shape[d]);
}

int mh_model_load_weights(mh_model *m, const char *path) {
  mh_st_file *f = NULL;
  MH_TRY(mh_st_read(&f, path));
  int st = mh__model_load_weights_st(m, f, path);
  mh_st_free(f);
  return st;
}

int mh__model_load_weights_st(mh_model *m, const mh_st_file *f, const char *path) {
  const mh_graph *g = &m->g;
  int total = g->n_params + g->n_buffers, st = MH_OK;
  const mh_st_tensor **src = calloc((size_t)total + 1, sizeof *src);
  if (!src) return mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
  if (mh_st_find(f, "integer.exponents"))
    st = mh__error(MH_ERR_UNSUPPORTED, "%s: a niti checkpoint holds int8 weights; --init takes FP32 weights (continue a "
                   "niti run with --resume)", path);
  for (int i = 0; i < mh_st_count(f) && st == MH_OK; i++) {
    const mh_st_tensor *t = mh_st_get(f, i);
    int k = find_name(g, t->name);
    if (k < 0) {
      if (!skippable(g, t->name))
        st = mh__error(MH_ERR_FORMAT, "%s: tensor '%s' is not a parameter or buffer of model '%s' (its first parameter is "
                       "'%s'; mandheling info --model %s lists its layers)", path, t->name, g->model_name,
                       g->n_params ? g->params[0].name : "-", g->model_name);
      continue;
    }
    int ndim = k < g->n_params ? g->params[k].ndim : 1;
    int64_t shape[4] = {0};
    if (k < g->n_params)
      for (int d = 0; d < ndim; d++) shape[d] = g->params[k].shape[d];
    else
      shape[0] = g->buffers[k - g->n_params].numel;
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (t->dtype != MH_DTYPE_F32)
      st = mh__error(MH_ERR_FORMAT, "%s: tensor '%s' is %s; weights must be F32", path, t->name, mh_dtype_name(t->dtype));
    else if (!same) {
      char want[96], got[96];
      shape_text(want, sizeof want, ndim, shape);
      shape_text(got, sizeof got, t->ndim, t->shape);
      st = mh__error(MH_ERR_SHAPE, "%s: tensor '%s' has shape [%s], model '%s' needs [%s]", path, t->name, got,
                     g->model_name, want);
    } else
      src[k] = t;
  }
  for (int k = 0; k < total && st == MH_OK; k++)
    if (!src[k])
      st = mh__error(MH_ERR_FORMAT, "%s: %s '%s' of model '%s' is missing", path, k < g->n_params ? "parameter" : "buffer",
                     k < g->n_params ? g->params[k].name : g->buffers[k - g->n_params].name, g->model_name);
  if (st == MH_OK) { /* all checked: copy */
    for (int k = 0; k < g->n_params; k++) memcpy(m->params + g->params[k].offset, src[k]->data, src[k]->nbytes);
    for (int k = 0; k < g->n_buffers; k++)
      memcpy(m->buffers + g->buffers[k].offset, src[g->n_params + k]->data, src[g->n_params + k]->nbytes);
    if (m->qparams) mh__model_quantize_params(m); /* an integer model takes the new weights too */
  }
  free(src);
  return st;
}
