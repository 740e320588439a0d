/* libFuzzer target for weights in (--init): any safetensors byte string either loads into a small
 * model (input 1x2x2, conv, batch norm, linear) or is refused with the model unchanged; on success
 * every parameter and buffer equals the file's tensor of its name (a violation traps). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "train/model.h"
#include "train/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char text[] = "input 1x2x2\nconv c out=2 k=1\nbatchnorm c_bn\nlinear fc out=2\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mh_model *m;
  if (!m) {
    mh_graph g;
    if (mh_model_parse(&g, text, strlen(text), "fuzz.mh") || mh__model_from_graph(&m, &g, 1)) __builtin_trap();
  }
  mh_st_file *f = NULL;
  if (mh_st_parse(&f, data, size, "fuzz.safetensors") != 0) return 0;
  size_t np = (size_t)m->g.n_param_floats, nb = (size_t)m->g.n_buffer_floats;
  float *p0 = malloc(np * sizeof(float)), *b0 = malloc(nb * sizeof(float));
  memcpy(p0, m->params, np * sizeof(float)), memcpy(b0, m->buffers, nb * sizeof(float));
  if (mh__model_load_weights_st(m, f, "fuzz.safetensors") != 0) { /* refused: nothing changed */
    if (memcmp(p0, m->params, np * sizeof(float)) || memcmp(b0, m->buffers, nb * sizeof(float))) __builtin_trap();
  } else { /* loaded: every parameter and buffer is its tensor */
    for (int i = 0; i < m->g.n_params; i++) {
      const mh_st_tensor *t = mh_st_find(f, m->g.params[i].name);
      if (!t || t->nbytes != (size_t)m->g.params[i].numel * sizeof(float) ||
          memcmp(t->data, m->params + m->g.params[i].offset, t->nbytes))
        __builtin_trap();
    }
    for (int i = 0; i < m->g.n_buffers; i++) {
      const mh_st_tensor *t = mh_st_find(f, m->g.buffers[i].name);
      if (!t || memcmp(t->data, m->buffers + m->g.buffers[i].offset, t->nbytes)) __builtin_trap();
    }
  }
  free(p0), free(b0);
  mh_st_free(f);
  return 0;
}
