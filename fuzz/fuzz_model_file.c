/* libFuzzer target for the text model format (docs/MODEL_FORMAT.md).
 * Any input must be parsed or refused without UB or leaks; whatever parses must survive a
 * round trip: mh_model_write's text must parse again, into the same graph. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

static int same_graph(const mh_graph *a, const mh_graph *b) {
  if (a->n_nodes != b->n_nodes || a->n_params != b->n_params || a->n_buffers != b->n_buffers ||
      a->n_param_floats != b->n_param_floats || a->n_buffer_floats != b->n_buffer_floats)
    return 0;
  for (int i = 0; i < a->n_nodes; i++) {
    const mh_node *x = &a->nodes[i], *y = &b->nodes[i];
    if (x->op != y->op || strcmp(x->name, y->name) || x->n_in != y->n_in || x->in[0] != y->in[0] ||
        (x->n_in == 2 && x->in[1] != y->in[1]) || x->c != y->c || x->h != y->h || x->w != y->w ||
        x->out_c != y->out_c || x->k != y->k || x->stride != y->stride || x->pad != y->pad ||
        x->groups != y->groups || x->bias != y->bias || x->pool_k != y->pool_k || x->pool_s != y->pool_s ||
        x->pool_p != y->pool_p || memcmp(&x->eps, &y->eps, sizeof x->eps) ||
        memcmp(&x->momentum, &y->momentum, sizeof x->momentum) || x->n_consumers != y->n_consumers)
      return 0;
  }
  for (int i = 0; i < a->n_params; i++) {
    const mh_param *x = &a->params[i], *y = &b->params[i];
    if (strcmp(x->name, y->name) || x->numel != y->numel || x->offset != y->offset || x->ndim != y->ndim ||
        x->fan_in != y->fan_in)
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mh_graph g, g2;
  if (mh_model_parse(&g, (const char *)data, size, "fuzz.mh") != 0) {
    if (g.nodes || g.params || g.buffers) abort(); /* failure must leave nothing behind */
    return 0;
  }
  /* a parsed graph is always a usable model: an output of C x 1 x 1, every other layer used */
  if (g.n_nodes < 2 || mh_graph_validate(&g) != 0) abort();
  char *text = NULL;
  if (mh_model_write(&g, &text) != 0 || !text) abort();
  if (mh_model_parse(&g2, text, strlen(text), "fuzz.mh") != 0) abort();
  if (!same_graph(&g, &g2)) abort();
  free(text);
  mh_graph_free(&g);
  mh_graph_free(&g2);
  return 0;
}
