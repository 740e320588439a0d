/* The text model format: one layer per line, `op [name] [key=value ...]`, '#' comments. Parsing
 * reports file:line and the reason; writing turns any graph (the zoo too) into an editable file. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "graph/graph.h"

#define MAX_TOKENS 16
#define MAX_LINE 1024

typedef struct {
  const char *file;
  int line;
  char *key[MAX_TOKENS], *val[MAX_TOKENS];
  int used[MAX_TOKENS];
  int n;
} kv_list;

static int perr(const kv_list *kv, const char *op, const char *fmt, const char *a) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, a);
  return mh__error(MH_ERR_FORMAT, "%s:%d: %s: %s", kv->file, kv->line, op, msg);
}

static const char *kv_get(kv_list *kv, const char *key) {
  for (int i = 0; i < kv->n; i++)
    if (strcmp(kv->key[i], key) == 0) {
      kv->used[i] = 1;
      return kv->val[i];
    }
  return NULL;
}

/* Integer value of `key` in [lo, hi]; `def` when absent and not required. */
static int kv_int(kv_list *kv, const char *op, const char *key, int required, int def, int lo, int hi, int *out) {
  const char *v = kv_get(kv, key);
  if (!v) {
    if (required) return perr(kv, op, "missing required key '%s'", key);
    *out = def;
    return MH_OK;
  }
  if (strcmp(key, "bias") == 0 && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
    *out = v[0] == 't';
    return MH_OK;
  }
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s=%.60s is not an integer", key, v);
    return perr(kv, op, "%s", msg);
  }
  if (x < lo || x > hi) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s=%ld out of range [%d, %d]", key, x, lo, hi);
    return perr(kv, op, "%s", msg);
  }
  *out = (int)x;
  return MH_OK;
}

static int kv_float(kv_list *kv, const char *op, const char *key, float def, float *out) {
  const char *v = kv_get(kv, key);
  if (!v) {
    *out = def;
    return MH_OK;
  }
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite((float)x)) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s=%.60s is not a finite number", key, v);
    return perr(kv, op, "%s", msg);
  }
  *out = (float)x;
  return MH_OK;
}

/* Resolves in= (comma-separated names) to node ids; the previous node by default. */
static int kv_inputs(kv_list *kv, const mh_graph *g, const char *op, int want, int *ids) {
  const char *v = kv_get(kv, "in");
  if (!v) {
    if (want == 2) return perr(kv, op, "%s", "needs two inputs: in=a,b");
    ids[0] = g->n_nodes - 1;
    return MH_OK;
  }
  /* split by hand: strtok would skip empty names ("in=a,,b") and a copy could truncate */
  int n = 0;
  for (const char *t = v;;) {
    const char *e = strchr(t, ',');
    size_t len = e ? (size_t)(e - t) : strlen(t);
    if (n == want) return perr(kv, op, "too many inputs in in=%.100s", v);
    if (len == 0) return perr(kv, op, "empty layer name in in=%.100s", v);
    char nm[MH_NAME_MAX];
    if (len >= sizeof nm) return perr(kv, op, "input '%.40s...' is not a layer defined above", t);
    memcpy(nm, t, len);
    nm[len] = 0;
    int id = mh_graph_find(g, nm);
    if (id < 0) return perr(kv, op, "input '%s' is not a layer defined above", nm);
    ids[n++] = id;
    if (!e) break;
    t = e + 1;
  }
  if (n != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "wrong number of inputs in in=%.100s (needs %s)", v, want == 2 ? "two: in=a,b" : "one");
    return perr(kv, op, "%s", msg);
  }
  return MH_OK;
}

static int parse_shape(const char *s, int *c, int *h, int *w) {
  char *end;
  long a = strtol(s, &end, 10);
  if (*end != 'x') return -1;
  long b = strtol(end + 1, &end, 10);
  if (*end != 'x') return -1;
  long d = strtol(end + 1, &end, 10);
  if (*end || a < 1 || b < 1 || d < 1 || a > 65536 || b > 65536 || d > 65536) return -1;
  *c = (int)a, *h = (int)b, *w = (int)d;
  return 0;
}

static int parse_line(mh_graph *g, kv_list *kv, char **tok, int ntok, int *have_input) {
  const char *op = tok[0];
  const char *name = NULL;
  int first = 1;
  if (ntok > 1 && !strchr(tok[1], '=')) name = tok[1], first = 2;
  kv->n = 0;
  for (int i = first; i < ntok; i++) {
    char *eq = strchr(tok[i], '=');
    if (!eq || eq == tok[i]) return perr(kv, op, "expected key=value, got '%s'", tok[i]);
    *eq = 0;
    for (int k = 0; k < kv->n; k++)
      if (strcmp(kv->key[k], tok[i]) == 0) return perr(kv, op, "key '%s' given twice", tok[i]);
    kv->key[kv->n] = tok[i], kv->val[kv->n] = eq + 1, kv->used[kv->n] = 0, kv->n++;
  }
  if (strcmp(op, "input") == 0) {
    if (*have_input) return perr(kv, op, "%s", "only one input line is allowed");
    int c, h, w;
    if (!name || parse_shape(name, &c, &h, &w)) return perr(kv, op, "%s", "expected a shape like 'input 1x28x28'");
    if (kv->n) return perr(kv, op, "unknown key '%s'", kv->key[0]);
    *have_input = 1;
    int st = mh_graph_init(g, c, h, w);
    if (st) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", mh_last_error());
      return mh__error(st, "%s:%d: input: %s", kv->file, kv->line, msg);
    }
    return MH_OK;
  }
  if (!*have_input) return perr(kv, op, "%s", "the first layer line must be 'input CxHxW'");
  if (name && strlen(name) >= MH_NAME_MAX) return perr(kv, op, "layer name '%.40s' too long", name);
  int in[2], id, st;
  mh_clear_error();
  if (strcmp(op, "conv") == 0) {
    int out, k, s, p, gr, b;
    if ((st = kv_inputs(kv, g, op, 1, in)) || (st = kv_int(kv, op, "out", 1, 0, 1, 1 << 20, &out)) ||
        (st = kv_int(kv, op, "k", 1, 0, 1, 64, &k)) || (st = kv_int(kv, op, "stride", 0, 1, 1, 64, &s)) ||
        (st = kv_int(kv, op, "pad", 0, 0, 0, 64, &p)) || (st = kv_int(kv, op, "groups", 0, 1, 1, 1 << 20, &gr)) ||
        (st = kv_int(kv, op, "bias", 0, 1, 0, 1, &b)))
      return st;
    id = mh_graph_conv2d(g, name, in[0], out, k, s, p, gr, b);
  } else if (strcmp(op, "linear") == 0) {
    int out, b;
    if ((st = kv_inputs(kv, g, op, 1, in)) || (st = kv_int(kv, op, "out", 1, 0, 1, 1 << 24, &out)) ||
        (st = kv_int(kv, op, "bias", 0, 1, 0, 1, &b)))
      return st;
    id = mh_graph_linear(g, name, in[0], out, b);
  } else if (strcmp(op, "batchnorm") == 0) {
    float eps, mom;
    if ((st = kv_inputs(kv, g, op, 1, in)) || (st = kv_float(kv, op, "eps", 1e-5f, &eps)) ||
        (st = kv_float(kv, op, "momentum", 0.1f, &mom)))
      return st;
    id = mh_graph_batchnorm(g, name, in[0], eps, mom);
  } else if (strcmp(op, "maxpool") == 0 || strcmp(op, "avgpool") == 0) {
    int k, s, p;
    if ((st = kv_inputs(kv, g, op, 1, in)) || (st = kv_int(kv, op, "k", 1, 0, 1, 64, &k)) ||
        (st = kv_int(kv, op, "stride", 0, k, 1, 64, &s)) || (st = kv_int(kv, op, "pad", 0, 0, 0, 32, &p)))
      return st;
    id = op[0] == 'm' ? mh_graph_maxpool(g, name, in[0], k, s, p) : mh_graph_avgpool(g, name, in[0], k, s, p);
  } else if (strcmp(op, "add") == 0) {
    if ((st = kv_inputs(kv, g, op, 2, in))) return st;
    id = mh_graph_add(g, name, in[0], in[1]);
  } else if (strcmp(op, "relu") == 0 || strcmp(op, "relu6") == 0 || strcmp(op, "gap") == 0 ||
             strcmp(op, "flatten") == 0) {
    if ((st = kv_inputs(kv, g, op, 1, in))) return st;
    id = strcmp(op, "relu") == 0    ? mh_graph_relu(g, name, in[0])
         : strcmp(op, "relu6") == 0 ? mh_graph_relu6(g, name, in[0])
         : strcmp(op, "gap") == 0   ? mh_graph_gap(g, name, in[0])
                                    : mh_graph_flatten(g, name, in[0]);
  } else {
    return perr(kv, op, "%s",
                "unknown layer type (known: input, conv, linear, batchnorm, relu, relu6, maxpool, avgpool, gap, add, "
                "flatten)");
  }
  if (id < 0) { /* the builder's reason, prefixed with the location */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", mh_last_error());
    return mh__error(id, "%s:%d: %s", kv->file, kv->line, msg);
  }
  for (int i = 0; i < kv->n; i++)
    if (!kv->used[i]) return perr(kv, op, "unknown key '%s'", kv->key[i]);
  return MH_OK;
}

int mh_model_parse(mh_graph *g, const char *text, size_t len, const char *name) {
  memset(g, 0, sizeof *g);
  kv_list kv;
  memset(&kv, 0, sizeof kv);
  kv.file = name;
  int have_input = 0, st = MH_OK;
  size_t pos = 0;
  char line[MAX_LINE + 1];
  const char *nul = len ? memchr(text, 0, len) : NULL;
  if (nul) {
    int at = 1;
    for (const char *c = text; c < nul; c++) at += *c == '\n';
    return mh__error(MH_ERR_FORMAT, "%s:%d: contains a NUL byte (not a text model file)", name, at);
  }
  int *lines = NULL, cap_lines = 0; /* the line each node was defined on, for validation messages */
  while (pos < len && st == MH_OK) {
    size_t e = pos;
    while (e < len && text[e] != '\n') e++;
    kv.line++;
    if (e - pos > MAX_LINE) {
      st = mh__error(MH_ERR_FORMAT, "%s:%d: line longer than %d characters", name, kv.line, MAX_LINE);
      break;
    }
    memcpy(line, text + pos, e - pos);
    line[e - pos] = 0;
    pos = e + 1;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    for (char *c = line; *c; c++)
      if (!isprint((unsigned char)*c) && !isspace((unsigned char)*c)) {
        st = mh__error(MH_ERR_FORMAT, "%s:%d: non-text byte 0x%02x", name, kv.line, (unsigned char)*c);
        break;
      }
    if (st) break;
    char *tok[MAX_TOKENS + 2];
    int ntok = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
      if (ntok == MAX_TOKENS + 2) {
        st = mh__error(MH_ERR_FORMAT, "%s:%d: too many fields", name, kv.line);
        break;
      }
      tok[ntok++] = t;
    }
    if (st || ntok == 0) continue;
    if (ntok > MAX_TOKENS) {
      st = mh__error(MH_ERR_FORMAT, "%s:%d: too many fields", name, kv.line);
      break;
    }
    int before = have_input ? g->n_nodes : 0;
    st = parse_line(g, &kv, tok, ntok, &have_input);
    if (st == MH_OK && g->n_nodes > before) {
      if (g->n_nodes > cap_lines) {
        int nc = cap_lines ? 2 * cap_lines : 64;
        while (nc < g->n_nodes) nc *= 2;
        int *nl = realloc(lines, sizeof *nl * (size_t)nc);
        if (!nl) {
          st = mh__error(MH_ERR_NOMEM, "%s: out of memory", name);
          break;
        }
        lines = nl, cap_lines = nc;
      }
      for (int i = before; i < g->n_nodes; i++) lines[i] = kv.line;
    }
  }
  if (st == MH_OK && !have_input) st = mh__error(MH_ERR_FORMAT, "%s: no 'input CxHxW' line", name);
  if (st == MH_OK) {
    st = mh_graph_validate(g);
    if (st) { /* point at the layer: the output when it is not C x 1 x 1, else the first unused one */
      const mh_node *out = &g->nodes[g->n_nodes - 1];
      int bad = g->n_nodes - 1;
      if (g->n_nodes >= 2 && out->h == 1 && out->w == 1 && out->c >= 2)
        for (int i = 1; i < g->n_nodes - 1; i++)
          if (g->nodes[i].n_consumers == 0) {
            bad = i;
            break;
          }
      char msg[512];
      snprintf(msg, sizeof msg, "%s", mh_last_error());
      st = mh__error(st, "%s:%d: %s: %s", name, lines[bad], mh_op_name(g->nodes[bad].op), msg);
    }
  }
  free(lines);
  if (st) {
    mh_graph_free(g);
    return st;
  }
  snprintf(g->model_name, sizeof g->model_name, "%s", name);
  return MH_OK;
}

int mh_model_parse_file(mh_graph *g, const char *path) {
  memset(g, 0, sizeof *g);
  FILE *f = fopen(path, "rb");
  if (!f) return mh__error(MH_ERR_IO, "%s: cannot open model file: %s", path, strerror(errno));
  enum { MAX_MODEL_FILE = 4 << 20 };
  char *buf = malloc(MAX_MODEL_FILE + 1);
  if (!buf) {
    fclose(f);
    return mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
  }
  size_t n = fread(buf, 1, MAX_MODEL_FILE + 1, f);
  int rerr = ferror(f);
  fclose(f);
  if (rerr) {
    free(buf);
    return mh__error(MH_ERR_IO, "%s: read error", path);
  }
  if (n > MAX_MODEL_FILE) {
    free(buf);
    return mh__error(MH_ERR_FORMAT, "%s: model file larger than %d bytes", path, MAX_MODEL_FILE);
  }
  int st = mh_model_parse(g, buf, n, path);
  free(buf);
  return st;
}

int mh_model_write(const mh_graph *g, char **text) {
  size_t cap = 256 + (size_t)g->n_nodes * 400;
  char *out = malloc(cap), *p = out;
  if (!out) return mh__error(MH_ERR_NOMEM, "out of memory");
  const mh_node *in0 = &g->nodes[0];
  /* the name goes into a comment: control characters (a newline above all) must not end it */
  p += sprintf(p, "# ");
  const char *mn = g->model_name[0] ? g->model_name : "model";
  for (size_t i = 0; mn[i] && i < sizeof g->model_name; i++)
    *p++ = (unsigned char)mn[i] < 0x20 || mn[i] == 0x7f ? '?' : mn[i];
  p += sprintf(p, "\ninput %dx%dx%d\n", in0->c, in0->h, in0->w);
  for (int i = 1; i < g->n_nodes; i++) {
    const mh_node *n = &g->nodes[i];
    p += sprintf(p, "%-9s %s", mh_op_name(n->op), n->name);
    switch (n->op) {
      case MH_OP_CONV2D:
        p += sprintf(p, " out=%d k=%d", n->out_c, n->k);
        if (n->stride != 1) p += sprintf(p, " stride=%d", n->stride);
        if (n->pad) p += sprintf(p, " pad=%d", n->pad);
        if (n->groups != 1) p += sprintf(p, " groups=%d", n->groups);
        if (!n->bias) p += sprintf(p, " bias=false");
        break;
      case MH_OP_LINEAR:
        p += sprintf(p, " out=%d", n->out_c);
        if (!n->bias) p += sprintf(p, " bias=false");
        break;
      case MH_OP_BATCHNORM:
        if (n->eps != 1e-5f) p += sprintf(p, " eps=%.9g", n->eps); /* 9 digits: the float again */
        if (n->momentum != 0.1f) p += sprintf(p, " momentum=%.9g", n->momentum);
        break;
      case MH_OP_MAXPOOL:
      case MH_OP_AVGPOOL:
        p += sprintf(p, " k=%d", n->pool_k);
        if (n->pool_s != n->pool_k) p += sprintf(p, " stride=%d", n->pool_s);
        if (n->pool_p) p += sprintf(p, " pad=%d", n->pool_p);
        break;
      default: break;
    }
    if (n->n_in == 2) p += sprintf(p, " in=%s,%s", g->nodes[n->in[0]].name, g->nodes[n->in[1]].name);
    else if (n->in[0] != i - 1) p += sprintf(p, " in=%s", g->nodes[n->in[0]].name);
    *p++ = '\n';
  }
  *p = 0;
  *text = out;
  return MH_OK;
}
