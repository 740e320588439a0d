/* The text model format (docs/MODEL_FORMAT.md): the exported zoo files in models/ parse into
 * exactly the graphs the zoo builds, writing and re-parsing changes nothing, and every kind of
 * malformed file is refused with its line number and the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "testlib.h"

/* Field-by-field comparison (everything but model_name); each difference is a failed check. */
static void check_same_graph(const char *what, const mh_graph *a, const mh_graph *b) {
  int bad = 0;
#define SAME(x, y, ...)                 \
  do {                                  \
    tl_checks++;                        \
    if ((x) != (y)) {                   \
      if (bad++ < 10) TL_FAIL(__VA_ARGS__); \
      else tl_failures++;               \
    }                                   \
  } while (0)
  SAME(a->n_nodes, b->n_nodes, "%s: %d vs %d nodes", what, a->n_nodes, b->n_nodes);
  SAME(a->n_params, b->n_params, "%s: %d vs %d params", what, a->n_params, b->n_params);
  SAME(a->n_buffers, b->n_buffers, "%s: %d vs %d buffers", what, a->n_buffers, b->n_buffers);
  SAME(a->n_param_floats, b->n_param_floats, "%s: %lld vs %lld parameter floats", what, (long long)a->n_param_floats,
       (long long)b->n_param_floats);
  SAME(a->n_buffer_floats, b->n_buffer_floats, "%s: %lld vs %lld buffer floats", what,
       (long long)a->n_buffer_floats, (long long)b->n_buffer_floats);
  if (a->n_nodes != b->n_nodes || a->n_params != b->n_params || a->n_buffers != b->n_buffers) return;
  for (int i = 0; i < a->n_nodes; i++) {
    const mh_node *x = &a->nodes[i], *y = &b->nodes[i];
    SAME(strcmp(x->name, y->name), 0, "%s: node %d named '%s' vs '%s'", what, i, x->name, y->name);
#define NODE_FIELD(f) SAME(x->f, y->f, "%s: node %d '%s': " #f " %g vs %g", what, i, x->name, (double)x->f, (double)y->f)
    NODE_FIELD(op);
    NODE_FIELD(n_in);
    NODE_FIELD(in[0]);
    if (x->n_in == 2) NODE_FIELD(in[1]);
    NODE_FIELD(c);
    NODE_FIELD(h);
    NODE_FIELD(w);
    NODE_FIELD(out_c);
    NODE_FIELD(k);
    NODE_FIELD(stride);
    NODE_FIELD(pad);
    NODE_FIELD(groups);
    NODE_FIELD(bias);
    NODE_FIELD(pool_k);
    NODE_FIELD(pool_s);
    NODE_FIELD(pool_p);
    NODE_FIELD(eps);
    NODE_FIELD(momentum);
    NODE_FIELD(param0);
    NODE_FIELD(n_params);
    NODE_FIELD(buffer0);
    NODE_FIELD(n_buffers);
    NODE_FIELD(n_consumers);
#undef NODE_FIELD
  }
  for (int i = 0; i < a->n_params; i++) {
    const mh_param *x = &a->params[i], *y = &b->params[i];
    SAME(strcmp(x->name, y->name), 0, "%s: param %d named '%s' vs '%s'", what, i, x->name, y->name);
#define PARAM_FIELD(f) SAME(x->f, y->f, "%s: param '%s': " #f " %lld vs %lld", what, x->name, (long long)x->f, (long long)y->f)
    PARAM_FIELD(kind);
    PARAM_FIELD(node);
    PARAM_FIELD(ndim);
    for (int d = 0; d < x->ndim && d < 4; d++) PARAM_FIELD(shape[d]);
    PARAM_FIELD(numel);
    PARAM_FIELD(offset);
    PARAM_FIELD(fan_in);
#undef PARAM_FIELD
  }
  for (int i = 0; i < a->n_buffers; i++) {
    const mh_buffer *x = &a->buffers[i], *y = &b->buffers[i];
    SAME(strcmp(x->name, y->name), 0, "%s: buffer %d named '%s' vs '%s'", what, i, x->name, y->name);
    SAME(x->node, y->node, "%s: buffer '%s': node %d vs %d", what, x->name, x->node, y->node);
    SAME(x->numel, y->numel, "%s: buffer '%s': numel %lld vs %lld", what, x->name, (long long)x->numel,
         (long long)y->numel);
    SAME(x->offset, y->offset, "%s: buffer '%s': offset %lld vs %lld", what, x->name, (long long)x->offset,
         (long long)y->offset);
    SAME(x->init, y->init, "%s: buffer '%s': init %g vs %g", what, x->name, x->init, y->init);
  }
#undef SAME
}

/* write -> parse must give the same graph back. */
static void check_round_trip(const char *what, const mh_graph *g) {
  char *text = NULL;
  CHECK_OK(mh_model_write(g, &text));
  if (!text) return;
  mh_graph back;
  int st = mh_model_parse(&back, text, strlen(text), what);
  CHECK_EQ_INT(st, 0);
  if (st) {
    fprintf(stderr, "round trip of %s failed: %s\n--- text ---\n%s", what, mh_last_error(), text);
  } else {
    char label[160];
    snprintf(label, sizeof label, "%s (round trip)", what);
    check_same_graph(label, g, &back);
    /* and writing the re-parsed graph gives the same text, but for the name comment */
    char *again = NULL;
    CHECK_OK(mh_model_write(&back, &again));
    if (again) {
      const char *b1 = strchr(text, '\n'), *b2 = strchr(again, '\n');
      CHECK(b1 && b2 && strcmp(b1, b2) == 0);
      free(again);
    }
    mh_graph_free(&back);
  }
  free(text);
}

static void test_zoo_files(void) {
  for (const char *const *name = mh_zoo_names(); *name; name++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.mh", MH_SOURCE_DIR, *name);
    mh_graph zoo, file;
    CHECK_OK(mh_zoo_build(&zoo, *name));
    int st = mh_model_parse_file(&file, path);
    CHECK_EQ_INT(st, 0);
    if (st) {
      fprintf(stderr, "%s: %s\n", path, mh_last_error());
      mh_graph_free(&zoo);
      continue;
    }
    CHECK(strcmp(file.model_name, path) == 0);
    check_same_graph(path, &zoo, &file);
    CHECK_EQ_INT(mh_graph_param_count(&file), mh_graph_param_count(&zoo));
    check_round_trip(*name, &zoo);
    check_round_trip(path, &file);
    /* the files in models/ are exactly what `mandheling info --export` writes for the zoo */
    char *text = NULL;
    CHECK_OK(mh_model_write(&zoo, &text));
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f && text) {
      static char buf[1 << 16];
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      buf[n] = 0;
      if (strcmp(buf, text) != 0) TL_FAIL("%s differs from mh_model_write of the zoo model '%s'", path, *name);
      tl_checks++;
    }
    if (f) fclose(f);
    free(text);
    mh_graph_free(&zoo);
    mh_graph_free(&file);
  }
}

static void test_example_mlp(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/models/example-mlp.mh", MH_SOURCE_DIR);
  mh_graph g;
  int st = mh_model_parse_file(&g, path);
  CHECK_EQ_INT(st, 0);
  if (st) {
    fprintf(stderr, "%s: %s\n", path, mh_last_error());
    return;
  }
  CHECK_EQ_INT(g.n_nodes, 5);
  CHECK_EQ_INT(g.nodes[0].c * g.nodes[0].h * g.nodes[0].w, 784);
  CHECK_EQ_INT(g.nodes[1].op, MH_OP_FLATTEN);
  CHECK_EQ_INT(g.nodes[1].c, 784);
  CHECK_EQ_INT(g.nodes[2].op, MH_OP_LINEAR);
  CHECK_EQ_INT(g.nodes[2].c, 256);
  CHECK_EQ_INT(g.nodes[3].op, MH_OP_RELU);
  CHECK_EQ_INT(g.nodes[4].op, MH_OP_LINEAR);
  CHECK_EQ_INT(g.nodes[4].c, 10);
  CHECK(strcmp(g.nodes[2].name, "hidden") == 0 && strcmp(g.nodes[4].name, "logits") == 0);
  CHECK_EQ_INT(mh_graph_param_count(&g), 784 * 256 + 256 + 256 * 10 + 10);
  CHECK(g.n_params == 4 && strcmp(g.params[0].name, "hidden.weight") == 0 && g.params[0].shape[1] == 784);
  check_round_trip("example-mlp", &g);
  mh_graph_free(&g);
}

/* Every key and syntax variant the parser accepts, against the same graph built by hand. */
static void test_syntax_variants(void) {
  const char *text =
      "# leading comment\r\n"
      "input 3x9x9   # trailing comment\r\n"
      "\n"
      "   \t \n"
      "conv c1 out=8 k=3 pad=1 bias=false\r\n"
      "batchnorm\tbn1 eps=1e-3 momentum=0.01\n"
      "relu r1\n"
      "conv c2 out=8 k=3 pad=1 stride=1 groups=1 bias=1\n"
      "add sum in=c2,r1\n"
      "relu6\n"
      "avgpool k=2\n"
      "maxpool k=3 stride=1 pad=1\n"
      "conv dw out=8 k=3 groups=8 bias=true in=maxpool8\n"
      "gap\n"
      "linear fc out=4 bias=0"; /* no final newline */
  mh_graph g, h;
  int st = mh_model_parse(&g, text, strlen(text), "variants.mh");
  CHECK_EQ_INT(st, 0);
  if (st) {
    fprintf(stderr, "variants.mh: %s\n", mh_last_error());
    return;
  }
  CHECK_OK(mh_graph_init(&h, 3, 9, 9));
  int x;
  CHECK((x = mh_graph_conv2d(&h, "c1", 0, 8, 3, 1, 1, 1, 0)) > 0);
  CHECK((x = mh_graph_batchnorm(&h, "bn1", x, 1e-3f, 0.01f)) > 0);
  int r1;
  CHECK((r1 = mh_graph_relu(&h, "r1", x)) > 0);
  CHECK((x = mh_graph_conv2d(&h, "c2", r1, 8, 3, 1, 1, 1, 1)) > 0);
  CHECK((x = mh_graph_add(&h, "sum", x, r1)) > 0);
  CHECK((x = mh_graph_relu6(&h, NULL, x)) > 0);
  CHECK((x = mh_graph_avgpool(&h, NULL, x, 2, 2, 0)) > 0);
  CHECK((x = mh_graph_maxpool(&h, NULL, x, 3, 1, 1)) > 0);
  CHECK(strcmp(h.nodes[x].name, "maxpool8") == 0);
  CHECK((x = mh_graph_conv2d(&h, "dw", x, 8, 3, 1, 0, 8, 1)) > 0);
  CHECK((x = mh_graph_gap(&h, NULL, x)) > 0);
  CHECK((x = mh_graph_linear(&h, "fc", x, 4, 0)) > 0);
  check_same_graph("variants.mh", &h, &g);
  check_round_trip("variants.mh", &g);
  mh_graph_free(&g);
  mh_graph_free(&h);

  /* linear on a non-flat input reads it flattened */
  const char *lin = "input 2x3x4\nlinear out=5\n";
  CHECK_OK(mh_model_parse(&g, lin, strlen(lin), "lin.mh"));
  if (g.nodes) {
    CHECK(g.n_params == 2 && g.params[0].shape[0] == 5 && g.params[0].shape[1] == 24);
    mh_graph_free(&g);
  }
  /* a non-default eps/momentum survives the round trip to the bit */
  const char *bn = "input 2x3x3\nbatchnorm eps=1.2345678e-05 momentum=0.3333333\ngap\nlinear out=2\n";
  CHECK_OK(mh_model_parse(&g, bn, strlen(bn), "bn.mh"));
  if (g.nodes) {
    CHECK(g.nodes[1].eps == 1.2345678e-05f && g.nodes[1].momentum == 0.3333333f);
    check_round_trip("bn.mh", &g);
    mh_graph_free(&g);
  }
  /* a model name with a newline stays inside the writer's comment */
  CHECK_OK(mh_model_parse(&g, lin, strlen(lin), "evil\ninput 1x1x1"));
  if (g.nodes) {
    check_round_trip("evil name", &g);
    mh_graph_free(&g);
  }
  CHECK_EQ_INT(mh_model_parse_file(&g, "/nonexistent/dir/net.mh"), MH_ERR_IO);
  CHECK(strstr(mh_last_error(), "/nonexistent/dir/net.mh") != NULL);
}

typedef struct {
  const char *what;
  const char *text;
  size_t len;       /* 0: strlen(text) */
  int line;         /* expected "bad.mh:<line>:" in the message; 0: a whole-file error ("bad.mh: ") */
  const char *phrase;
} bad_case;

static char long_line[1300];

static void test_malformed(void) {
  memset(long_line, 0, sizeof long_line);
  strcpy(long_line, "input 1x8x8\n# ");
  memset(long_line + strlen(long_line), 'x', 1100);
  static const char nul_text[] = "input 1x8x8\nflat\0ten\nlinear out=2\n";
  const bad_case cases[] = {
      {"unknown op", "input 1x8x8\nconvolution out=4 k=3\n", 0, 2, "unknown layer type"},
      {"unknown key", "input 1x8x8\nconv out=4 k=3 kernel=3\ngap\nlinear out=2\n", 0, 2, "unknown key 'kernel'"},
      {"unknown key on input", "input 1x8x8 out=3\nflatten\nlinear out=2\n", 0, 1, "unknown key 'out'"},
      {"missing required key", "input 1x8x8\nconv k=3\n", 0, 2, "missing required key 'out'"},
      {"missing k", "input 1x8x8\n# c\nmaxpool stride=2\n", 0, 3, "missing required key 'k'"},
      {"bad integer", "input 1x8x8\nconv out=4x k=3\n", 0, 2, "out=4x is not an integer"},
      {"bad integer (empty)", "input 1x8x8\nflatten\nlinear out=\n", 0, 3, "out= is not an integer"},
      {"bad bias", "input 1x8x8\nflatten\nlinear out=2 bias=yes\n", 0, 3, "bias=yes is not an integer"},
      {"bad float", "input 1x8x8\nbatchnorm eps=small\ngap\nlinear out=2\n", 0, 2, "eps=small is not a finite number"},
      {"out of range", "input 1x8x8\nconv out=4 k=65\n", 0, 2, "k=65 out of range [1, 64]"},
      {"out of range (huge)", "input 1x8x8\nflatten\nlinear out=99999999999999999999\n", 0, 3, "is not an integer"},
      {"stride 0", "input 1x8x8\nmaxpool k=2 stride=0\n", 0, 2, "stride=0 out of range"},
      {"bias 2", "input 1x8x8\nflatten\nlinear out=2 bias=2\n", 0, 3, "bias=2 out of range [0, 1]"},
      {"momentum > 1", "input 1x8x8\nbatchnorm momentum=2\ngap\nlinear out=2\n", 0, 2, "momentum=2 in [0, 1]"},
      {"pool pad > k/2", "input 1x8x8\nmaxpool k=2 pad=2\n", 0, 2, "pad <= k/2"},
      {"key twice", "input 1x8x8\nconv out=4 out=5 k=3\n", 0, 2, "key 'out' given twice"},
      {"not key=value", "input 1x8x8\nconv c1 c2 out=4 k=3\n", 0, 2, "expected key=value, got 'c2'"},
      {"in= unknown layer", "input 1x8x8\nflatten\nlinear out=2 in=nosuch\n", 0, 3, "input 'nosuch' is not a layer defined above"},
      {"in= a later layer", "input 1x8x8\nflatten a in=b\nflatten b\nlinear out=2\n", 0, 2, "input 'b' is not a layer defined above"},
      {"in= empty name", "input 1x8x8\nflatten a\nflatten b in=input\nadd in=a,,b\nlinear out=2\n", 0, 4, "empty layer name"},
      {"in= two for relu", "input 1x8x8\nflatten a\nrelu in=a,input\n", 0, 3, "too many inputs"},
      {"add with one input", "input 1x8x8\nflatten a\nadd in=a\nlinear out=2\n", 0, 3, "wrong number of inputs"},
      {"add without in=", "input 1x8x8\nflatten a\nadd\nlinear out=2\n", 0, 3, "needs two inputs: in=a,b"},
      {"no input line", "# comment\nflatten\nlinear out=2\n", 0, 2, "the first layer line must be 'input CxHxW'"},
      {"no input line (comments only)", "# nothing\n\n   # here\n", 0, 0, "no 'input CxHxW' line"},
      {"input twice", "input 1x8x8\ninput 1x8x8\nflatten\nlinear out=2\n", 0, 2, "only one input line is allowed"},
      {"bad input shape", "input 1x28\nflatten\nlinear out=2\n", 0, 1, "expected a shape like 'input 1x28x28'"},
      {"zero input shape", "input 0x28x28\nflatten\nlinear out=2\n", 0, 1, "expected a shape"},
      {"shape mismatch in add", "input 1x8x8\nconv a out=4 k=3\nconv b out=4 k=1 in=input\nadd in=a,b\ngap\nlinear out=2\n",
       0, 4, "differ in shape"},
      {"groups not dividing", "input 3x8x8\nconv out=4 k=3 groups=2\ngap\nlinear out=2\n", 0, 2, "groups=2 must divide"},
      {"kernel bigger than input", "input 1x4x4\nconv out=4 k=5\ngap\nlinear out=2\n", 0, 2, "kernel 5 larger than padded input 4x4"},
      {"pool window bigger than input", "input 1x4x4\nflatten\nmaxpool k=2\n", 0, 3, "window 2 larger than padded input 1x1"},
      {"duplicate layer name", "input 1x8x8\nflatten a\nrelu a\nlinear out=2\n", 0, 3, "layer name 'a' used twice"},
      {"unused layer", "input 1x8x8\nflatten a\n\nflatten b in=input\nlinear out=2\n", 0, 2, "layer 'a' is never used"},
      {"unused layer (branch)", "input 1x8x8\nconv a out=2 k=1\nconv b out=2 k=1 in=input\nrelu in=a\ngap in=b\nlinear out=2\n",
       0, 4, "layer 'relu3' is never used"},
      {"last layer not Cx1x1", "input 1x8x8\nconv out=4 k=3\n", 0, 2, "the last layer must give class scores (C x 1 x 1)"},
      {"last layer one class", "input 1x8x8\nflatten\nlinear out=1\n", 0, 3, "need at least 2"},
      {"no layers", "# x\ninput 1x8x8\n", 0, 2, "model has no layers"},
      {"NUL byte", nul_text, sizeof nul_text - 1, 2, "NUL byte"},
      {"non-text byte", "input 1x8x8\nflatten \x01\nlinear out=2\n", 0, 2, "non-text byte 0x01"},
      {"over-long line", long_line, 0, 2, "line longer than 1024 characters"},
      {"too many fields", "input 1x8x8\nflatten a b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1 p=1 q=1\n", 0, 2,
       "too many fields"},
      {"empty file", "", 0, 0, "no 'input CxHxW' line"},
      /* sizes beyond 2^31-1 elements would overflow int shapes, feature counts and fan-ins */
      {"input too large", "input 65536x65536x65536\nflatten\nlinear out=2\n", 0, 1, "more than 2147483647 elements"},
      {"conv output too large", "input 1x16384x16384\nconv out=16 k=1\ngap\nlinear out=2\n", 0, 2,
       "output 16x16384x16384 has more than 2147483647 elements"},
      {"conv weight too large", "input 65536x1x1\nconv out=65536 k=1\ngap\nlinear out=2\n", 0, 2,
       "weight of 65536 x 65536 elements"},
      {"linear weight too large", "input 1x32768x32768\nlinear out=4\n", 0, 2, "weight of 4 x 1073741824 elements"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bad_case *c = &cases[i];
    mh_graph g;
    memset(&g, 0x5a, sizeof g);
    mh_clear_error();
    int st = mh_model_parse(&g, c->text, c->len ? c->len : strlen(c->text), "bad.mh");
    const char *err = mh_last_error();
    char loc[32];
    if (c->line) snprintf(loc, sizeof loc, "bad.mh:%d: ", c->line);
    else snprintf(loc, sizeof loc, "bad.mh: ");
    tl_checks++;
    if (st >= 0) {
      TL_FAIL("%s: accepted", c->what);
      mh_graph_free(&g);
      continue;
    }
    if (strncmp(err, loc, strlen(loc)) != 0 || !strstr(err, c->phrase))
      TL_FAIL("%s: message '%s' lacks '%s' or '%s'", c->what, err, loc, c->phrase);
    CHECK(g.nodes == NULL && g.params == NULL && g.buffers == NULL && g.n_nodes == 0);
  }
}

int main(void) {
  test_zoo_files();
  test_example_mlp();
  test_syntax_variants();
  test_malformed();
  return tl_exit();
}
