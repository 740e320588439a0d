/* libFuzzer target for the IDX parsers and the in-memory gunzip they sit behind.
 * Not a round-trip test: it only asserts that any input is parsed or refused without UB or leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data/dataset.h"
#include "data/gz.h"

/* A small cap keeps each run fast while still exercising the "too large" path. */
#define FUZZ_GUNZIP_CAP ((size_t)4 << 20)

static void parse_all(const uint8_t *data, size_t size) {
  mh_dataset ds;
  if (mh_idx_parse_images(data, size, "fuzz", &ds) == 0) {
    if (ds.n <= 0 || ds.h <= 0 || ds.w <= 0 || !ds.pixels) abort();
    /* Touch the last pixel: the parse must have allocated n*h*w bytes. */
    volatile uint8_t last = ds.pixels[(size_t)ds.n * ds.h * ds.w - 1];
    (void)last;
    mh_dataset_free(&ds);
  }
  uint8_t *labels = NULL;
  int n = 0;
  if (mh_idx_parse_labels(data, size, "fuzz", &labels, &n) == 0) {
    if (n <= 0 || !labels) abort();
    volatile uint8_t last = labels[n - 1];
    (void)last;
    free(labels);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parse_all(data, size);
  uint8_t *out = NULL;
  size_t out_len = 0;
  if (mh__gunzip(data, size, FUZZ_GUNZIP_CAP, "fuzz.gz", &out, &out_len) == 0) {
    if (!out || out_len > FUZZ_GUNZIP_CAP) abort();
    parse_all(out, out_len);
    free(out);
  } else if (out) {
    abort(); /* failure must leave no buffer behind */
  }
  return 0;
}
