/* ONNX export of a model's inference graph (batch norm in eval form, dynamic batch): the graph
 * built as ONNX's own protobuf messages (onnx.proto compiled by protoc-c) and serialised by
 * protobuf-c. Float weights: fp32/int8 masters, or niti's int8 weights dequantised (q * 2^e). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "train/model.h"

#ifdef MH_HAVE_ONNX
#include "onnx.pb-c.h"

/* Every allocation of one export, freed together. */
typedef struct {
  void **p;
  size_t n, cap;
  int oom;
} pool;

static void *take(pool *a, size_t bytes) {
  if (a->oom) return NULL;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 256;
    void **p = realloc(a->p, cap * sizeof *p);
    if (!p) return a->oom = 1, NULL;
    a->p = p, a->cap = cap;
  }
  void *q = calloc(1, bytes ? bytes : 1);
  if (!q) return a->oom = 1, NULL;
  return a->p[a->n++] = q;
}

static char *str(pool *a, const char *fmt, const char *s, int k) {
  size_t n = strlen(fmt) + (s ? strlen(s) : 0) + 24;
  char *o = take(a, n);
  if (o) snprintf(o, n, fmt, s, k);
  return o;
}

typedef struct {
  pool *a;
  Onnx__GraphProto *g;
  size_t cap_node, cap_init;
} builder;

static void push(pool *a, void ***arr, size_t *n, size_t *cap, void *item) {
  if (!item || a->oom) return;
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 64;
    void **p = take(a, c * sizeof *p);
    if (!p) return;
    if (*n) memcpy(p, *arr, *n * sizeof *p);
    *arr = p, *cap = c;
  }
  (*arr)[(*n)++] = item;
}

/* An attribute of one type, named; NULL when out of memory. */
static Onnx__AttributeProto *attr(pool *a, const char *name, Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *t = take(a, sizeof *t);
  if (!t) return NULL;
  onnx__attribute_proto__init(t);
  t->name = (char *)name, t->has_type = 1, t->type = type;
  return t;
}

static Onnx__AttributeProto *attr_ints(pool *a, const char *name, const int64_t *v, int n) {
  Onnx__AttributeProto *t = attr(a, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  int64_t *vals = take(a, sizeof(int64_t) * (size_t)n);
  if (!t || !vals) return NULL;
  memcpy(vals, v, sizeof(int64_t) * (size_t)n);
  t->n_ints = (size_t)n, t->ints = vals;
  return t;
}

static Onnx__AttributeProto *attr_int(pool *a, const char *name, int64_t v) {
  Onnx__AttributeProto *t = attr(a, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (t) t->has_i = 1, t->i = v;
  return t;
}

static Onnx__AttributeProto *attr_float(pool *a, const char *name, float v) {
  Onnx__AttributeProto *t = attr(a, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (t) t->has_f = 1, t->f = v;
  return t;
}

/* A node op(inputs) -> output with up to 4 attributes. */
static Onnx__NodeProto *node(builder *b, const char *op, const char *name, char **in, int n_in, char *out,
                             Onnx__AttributeProto **attrs, int n_attr) {
  pool *a = b->a;
  Onnx__NodeProto *nd = take(a, sizeof *nd);
  char **ins = take(a, sizeof(char *) * (size_t)n_in), **outs = take(a, sizeof(char *));
  Onnx__AttributeProto **at = take(a, sizeof *at * (size_t)(n_attr ? n_attr : 1));
  if (!nd || !ins || !outs || !at) return NULL;
  onnx__node_proto__init(nd);
  memcpy(ins, in, sizeof(char *) * (size_t)n_in);
  outs[0] = out;
  for (int i = 0; i < n_attr; i++) at[i] = attrs[i];
  nd->op_type = (char *)op, nd->name = (char *)name;
  nd->n_input = (size_t)n_in, nd->input = ins, nd->n_output = 1, nd->output = outs;
  nd->n_attribute = (size_t)n_attr, nd->attribute = at;
  push(a, (void ***)&b->g->node, &b->g->n_node, &b->cap_node, nd);
  return nd;
}

/* An initializer: float data (copied) or int64 data. */
static char *init_tensor(builder *b, const char *name, const int64_t *dims, int nd, const float *f, const int64_t *i64) {
  pool *a = b->a;
  Onnx__TensorProto *t = take(a, sizeof *t);
  int64_t *d = take(a, sizeof(int64_t) * (size_t)nd), n = 1;
  if (!t || !d) return NULL;
  onnx__tensor_proto__init(t);
  for (int k = 0; k < nd; k++) d[k] = dims[k], n *= dims[k];
  t->n_dims = (size_t)nd, t->dims = d, t->name = (char *)name, t->has_data_type = 1;
  if (f) {
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = 1, t->raw_data.len = (size_t)n * sizeof(float);
    t->raw_data.data = take(a, t->raw_data.len);
    if (t->raw_data.data) memcpy(t->raw_data.data, f, t->raw_data.len); /* little-endian, as ONNX stores */
  } else {
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->has_raw_data = 1, t->raw_data.len = (size_t)n * sizeof(int64_t);
    t->raw_data.data = take(a, t->raw_data.len);
    if (t->raw_data.data) memcpy(t->raw_data.data, i64, t->raw_data.len);
  }
  push(a, (void ***)&b->g->initializer, &b->g->n_initializer, &b->cap_init, t);
  return (char *)name;
}

/* A parameter as an initializer named as in the checkpoint. */
static char *param_init(builder *b, const mh_param *p, const float *w) {
  int64_t d[4];
  for (int k = 0; k < p->ndim; k++) d[k] = p->shape[k];
  return init_tensor(b, p->name, d, p->ndim, w + p->offset, NULL);
}

/* A float tensor value [batch, dims...] for the graph's inputs and outputs. */
static Onnx__ValueInfoProto *value(pool *a, const char *name, const int64_t *dims, int nd) {
  Onnx__ValueInfoProto *v = take(a, sizeof *v);
  Onnx__TypeProto *tp = take(a, sizeof *tp);
  Onnx__TypeProto__Tensor *tt = take(a, sizeof *tt);
  Onnx__TensorShapeProto *sh = take(a, sizeof *sh);
  Onnx__TensorShapeProto__Dimension **dd = take(a, sizeof *dd * (size_t)(nd + 1));
  if (!v || !tp || !tt || !sh || !dd) return NULL;
  onnx__value_info_proto__init(v), onnx__type_proto__init(tp), onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(sh);
  for (int k = 0; k <= nd; k++) {
    Onnx__TensorShapeProto__Dimension *d = take(a, sizeof *d);
    if (!d) return NULL;
    onnx__tensor_shape_proto__dimension__init(d);
    if (k == 0) d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = "batch";
    else d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[k - 1];
    dd[k] = d;
  }
  sh->n_dim = (size_t)nd + 1, sh->dim = dd;
  tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tt->shape = sh;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
  v->name = (char *)name, v->type = tp;
  return v;
}

/* The model's weights as floats: the masters, or niti's int8 values times 2^exponent. */
static float *float_weights(const mh_model *m, int integer) {
  size_t n = (size_t)m->g.n_param_floats;
  float *w = malloc(n * sizeof(float) + 16);
  if (w) mh__model_float_params(m, integer, w);
  return w;
}

int mh_model_export_onnx(const mh_model *m, int integer, const char *path) {
  if (integer && (!m->qparams || !m->qexp)) return mh__error(MH_ERR_INVALID_ARG, "%s: the model has no integer weights", path);
  const mh_graph *g = &m->g;
  pool a = {0};
  builder b = {&a, NULL, 0, 0};
  float *w = float_weights(m, integer);
  Onnx__ModelProto *mp = take(&a, sizeof *mp);
  Onnx__GraphProto *gp = take(&a, sizeof *gp);
  Onnx__OperatorSetIdProto *ops = take(&a, sizeof *ops), **opsp = take(&a, sizeof *opsp);
  char **names = take(&a, sizeof(char *) * (size_t)g->n_nodes);
  int *rank = take(&a, sizeof(int) * (size_t)g->n_nodes); /* 4: N,C,H,W; 2: N,F (after flatten/linear) */
  int st = MH_OK;
  if (!w || !mp || !gp || !ops || !opsp || !names || !rank) goto oom;
  onnx__model_proto__init(mp), onnx__graph_proto__init(gp), onnx__operator_set_id_proto__init(ops);
  b.g = gp;
  ops->domain = "", ops->has_version = 1, ops->version = 13;
  opsp[0] = ops;
  mp->has_ir_version = 1, mp->ir_version = 7, mp->n_opset_import = 1, mp->opset_import = opsp;
  mp->producer_name = "mandheling", mp->producer_version = MH_VERSION_STRING, mp->graph = gp;
  mp->doc_string = integer ? "niti model: integer weights dequantised to float (q * 2^exponent); the integer "
                             "rescaling between layers is not represented, so logits differ slightly"
                           : "inference graph; batch norm in eval form";
  gp->name = (char *)g->model_name;
  names[0] = "input", rank[0] = 4;
  static const int64_t flat4[4] = {0, -1, 1, 1};
  char *to4 = NULL; /* the [0, -1, 1, 1] shape initializer, made when first needed */
  for (int i = 1; i < g->n_nodes && st == MH_OK; i++) {
    const mh_node *nd = &g->nodes[i];
    char *x = names[nd->in[0]], *y = str(&a, "%s", nd->name, 0);
    int needs4 = nd->op == MH_OP_CONV2D || nd->op == MH_OP_MAXPOOL || nd->op == MH_OP_AVGPOOL || nd->op == MH_OP_GAP;
    if (needs4 && rank[nd->in[0]] == 2) { /* a flat tensor into a spatial op: [N, F] -> [N, F, 1, 1] */
      int64_t d4[1] = {4};
      if (!to4) to4 = init_tensor(&b, "mh_shape_n_c_1_1", d4, 1, NULL, flat4);
      char *r = str(&a, "%s_as_4d", nd->name, 0), *in2[2] = {x, to4};
      node(&b, "Reshape", r, in2, 2, r, NULL, 0);
      x = r;
    }
    rank[i] = needs4 ? 4 : rank[nd->in[0]];
    switch (nd->op) {
      case MH_OP_CONV2D: {
        const mh_param *pwp = &g->params[nd->param0];
        int64_t ks[2] = {nd->k, nd->k}, st2[2] = {nd->stride, nd->stride}, pd[4] = {nd->pad, nd->pad, nd->pad, nd->pad};
        char *in3[3] = {x, param_init(&b, pwp, w), nd->bias ? param_init(&b, pwp + 1, w) : NULL};
        Onnx__AttributeProto *at[4] = {attr_ints(&a, "kernel_shape", ks, 2), attr_ints(&a, "strides", st2, 2),
                                       attr_ints(&a, "pads", pd, 4), attr_int(&a, "group", nd->groups)};
        node(&b, "Conv", y, in3, nd->bias ? 3 : 2, y, at, 4);
        break;
      }
      case MH_OP_LINEAR: {
        if (rank[nd->in[0]] == 4) { /* C x H x W read flat, as our linear does */
          char *f = str(&a, "%s_flat", nd->name, 0), *in1[1] = {x};
          Onnx__AttributeProto *at[1] = {attr_int(&a, "axis", 1)};
          node(&b, "Flatten", f, in1, 1, f, at, 1);
          x = f;
        }
        rank[i] = 2;
        const mh_param *pwp = &g->params[nd->param0];
        char *in3[3] = {x, param_init(&b, pwp, w), nd->bias ? param_init(&b, pwp + 1, w) : NULL};
        Onnx__AttributeProto *at[1] = {attr_int(&a, "transB", 1)};
        node(&b, "Gemm", y, in3, nd->bias ? 3 : 2, y, at, 1);
        break;
      }
      case MH_OP_BATCHNORM: {
        const mh_param *gm = &g->params[nd->param0], *bt = &g->params[nd->param0 + 1];
        const mh_buffer *rm = &g->buffers[nd->buffer0], *rv = &g->buffers[nd->buffer0 + 1];
        int64_t c[1] = {nd->c};
        char *in5[5] = {x, init_tensor(&b, gm->name, c, 1, w + gm->offset, NULL), init_tensor(&b, bt->name, c, 1, w + bt->offset, NULL),
                        init_tensor(&b, rm->name, c, 1, m->buffers + rm->offset, NULL),
                        init_tensor(&b, rv->name, c, 1, m->buffers + rv->offset, NULL)};
        Onnx__AttributeProto *at[1] = {attr_float(&a, "epsilon", nd->eps)};
        node(&b, "BatchNormalization", y, in5, 5, y, at, 1);
        break;
      }
      case MH_OP_RELU: {
        char *in1[1] = {x};
        node(&b, "Relu", y, in1, 1, y, NULL, 0);
        break;
      }
      case MH_OP_RELU6: {
        static const float lo = 0.f, hi = 6.f;
        int64_t none[1] = {0};
        char *in3[3] = {x, init_tensor(&b, str(&a, "%s_min", nd->name, 0), none, 0, &lo, NULL),
                        init_tensor(&b, str(&a, "%s_max", nd->name, 0), none, 0, &hi, NULL)};
        node(&b, "Clip", y, in3, 3, y, NULL, 0);
        break;
      }
      case MH_OP_MAXPOOL:
      case MH_OP_AVGPOOL: {
        int64_t ks[2] = {nd->pool_k, nd->pool_k}, s2[2] = {nd->pool_s, nd->pool_s},
                pd[4] = {nd->pool_p, nd->pool_p, nd->pool_p, nd->pool_p};
        Onnx__AttributeProto *at[4] = {attr_ints(&a, "kernel_shape", ks, 2), attr_ints(&a, "strides", s2, 2),
                                       attr_ints(&a, "pads", pd, 4), attr_int(&a, "count_include_pad", 1)};
        char *in1[1] = {x};
        node(&b, nd->op == MH_OP_MAXPOOL ? "MaxPool" : "AveragePool", y, in1, 1, y, at, nd->op == MH_OP_MAXPOOL ? 3 : 4);
        break;
      }
      case MH_OP_GAP: {
        char *in1[1] = {x};
        node(&b, "GlobalAveragePool", y, in1, 1, y, NULL, 0);
        break;
      }
      case MH_OP_FLATTEN: {
        char *in1[1] = {x};
        Onnx__AttributeProto *at[1] = {attr_int(&a, "axis", 1)};
        node(&b, "Flatten", y, in1, 1, y, at, 1);
        rank[i] = 2;
        break;
      }
      case MH_OP_ADD: {
        char *x2 = names[nd->in[1]];
        if (rank[nd->in[0]] != rank[nd->in[1]]) { /* one flat, one [N, C, 1, 1]: both flat */
          char *f = str(&a, "%s_flat_b", nd->name, 0), *in1[1] = {rank[nd->in[0]] == 4 ? x : x2};
          Onnx__AttributeProto *at[1] = {attr_int(&a, "axis", 1)};
          node(&b, "Flatten", f, in1, 1, f, at, 1);
          if (rank[nd->in[0]] == 4) x = f;
          else x2 = f;
          rank[i] = 2;
        }
        char *in2[2] = {x, x2};
        node(&b, "Add", y, in2, 2, y, NULL, 0);
        break;
      }
      default: st = mh__error(MH_ERR_UNSUPPORTED, "%s: node '%s' (%s) has no ONNX form here", path, nd->name, mh_op_name(nd->op));
    }
    names[i] = y;
  }
  if (st) goto done;
  /* logits [batch, classes] */
  int last = g->n_nodes - 1;
  char *logits = names[last];
  if (rank[last] == 4) {
    char *in1[1] = {logits};
    Onnx__AttributeProto *at[1] = {attr_int(&a, "axis", 1)};
    logits = "logits";
    node(&b, "Flatten", logits, in1, 1, logits, at, 1);
  }
  const mh_node *in0 = &g->nodes[0];
  int64_t din[3] = {in0->c, in0->h, in0->w}, dout[1] = {g->nodes[last].c};
  Onnx__ValueInfoProto **gi = take(&a, sizeof *gi), **go = take(&a, sizeof *go);
  if (!gi || !go) goto oom;
  gi[0] = value(&a, "input", din, 3), go[0] = value(&a, logits, dout, 1);
  gp->n_input = 1, gp->input = gi, gp->n_output = 1, gp->output = go;
  if (a.oom || !gi[0] || !go[0]) goto oom;
  size_t len = onnx__model_proto__get_packed_size(mp);
  uint8_t *buf = malloc(len + 1);
  if (!buf) goto oom;
  onnx__model_proto__pack(mp, buf);
  /* atomically: a temporary next to path, renamed when complete */
  size_t tcap = strlen(path) + 32;
  char *tmp = malloc(tcap);
  if (!tmp) {
    free(buf);
    goto oom;
  }
  snprintf(tmp, tcap, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  int ok = f && fwrite(buf, 1, len, f) == len;
  if (f && fclose(f)) ok = 0;
  if (!ok || rename(tmp, path)) {
    remove(tmp);
    st = mh__error(MH_ERR_IO, "%s: cannot write the ONNX file", path);
  }
  free(tmp);
  free(buf);
  goto done;
oom:
  st = mh__error(MH_ERR_NOMEM, "%s: out of memory while building the ONNX graph", path);
done:
  for (size_t k = 0; k < a.n; k++) free(a.p[k]);
  free(a.p);
  free(w);
  return st;
}

#else

int mh_model_export_onnx(const mh_model *m, int integer, const char *path) {
  (void)m, (void)integer;
  return mh__error(MH_ERR_UNSUPPORTED, "%s: this build has no ONNX export (it needs protobuf-c-compiler, "
                   "libprotobuf-c-dev and libonnx-dev at build time: scripts/setup.sh installs them)", path);
}

#endif
