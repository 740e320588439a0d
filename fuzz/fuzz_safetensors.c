/* libFuzzer target for the safetensors reader: any byte string must parse or fail cleanly; on
 * success every tensor is walked and the reader's invariants are checked (a violation traps). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "train/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mh_st_file *f = NULL;
  if (mh_st_parse(&f, data, size, "fuzz.safetensors") != 0) {
    if (f) __builtin_trap();
    return 0;
  }
  volatile uint8_t sink = 0;
  uint64_t total = 0;
  int n = mh_st_count(f);
  for (int i = 0; i < n; i++) {
    const mh_st_tensor *t = mh_st_get(f, i);
    if (!t || !memchr(t->name, 0, sizeof t->name)) __builtin_trap();
    if (mh_st_find(f, t->name) != t) __builtin_trap();
    if (t->ndim < 0 || t->ndim > MH_ST_MAX_DIMS || mh_dtype_size(t->dtype) == 0) __builtin_trap();
    uint64_t elems = 1;
    for (int d = 0; d < t->ndim; d++) {
      if (t->shape[d] < 0) __builtin_trap();
      elems *= (uint64_t)t->shape[d]; /* cannot wrap: the reader checked the product */
    }
    if (elems * mh_dtype_size(t->dtype) != t->nbytes || !t->data) __builtin_trap();
    const uint8_t *p = t->data;
    for (size_t b = 0; b < t->nbytes; b++) sink ^= p[b]; /* ASan flags any byte out of bounds */
    total += t->nbytes;
  }
  if (mh_st_get(f, n) != NULL || mh_st_get(f, -1) != NULL) __builtin_trap();
  if (total > size) __builtin_trap(); /* tensors never overlap, so their bytes fit in the input */
  (void)mh_st_meta_get(f, "format");
  (void)mh_st_find(f, "");
  mh_st_free(f);
  (void)sink;
  return 0;
}
