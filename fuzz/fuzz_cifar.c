/* libFuzzer target for the CIFAR-10 binary parser.
 * Not a semantic check beyond the parser's own promises: valid length, labels < 10, owned buffers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mh_dataset ds;
  if (mh_cifar_parse(data, size, "fuzz", &ds) == 0) {
    if (ds.n <= 0 || ds.c != 3 || ds.h != 32 || ds.w != 32 || !ds.pixels || !ds.labels) abort();
    if ((size_t)ds.n * 3073 != size) abort();
    for (int i = 0; i < ds.n; i++)
      if (ds.labels[i] >= 10) abort();
    volatile uint8_t last = ds.pixels[(size_t)ds.n * 3072 - 1];
    (void)last;
    mh_dataset_free(&ds);
  } else if (ds.pixels || ds.labels) {
    abort();
  }
  return 0;
}
