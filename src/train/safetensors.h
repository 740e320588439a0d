/* The safetensors file format: an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw data. Reader validates everything. */
#ifndef MH_TRAIN_SAFETENSORS_H
#define MH_TRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mandheling.h"

#define MH_ST_MAX_DIMS 8
#define MH_ST_MAX_NAME 256

typedef struct mh_st_tensor {
  char name[MH_ST_MAX_NAME];
  mh_dtype dtype;
  int ndim;
  int64_t shape[MH_ST_MAX_DIMS];
  const void *data; /* writer: caller's bytes; reader: points into the parsed file */
  size_t nbytes;    /* must equal product(shape) * dtype size */
} mh_st_tensor;

typedef struct mh_st_meta {
  const char *key;
  const char *value;
} mh_st_meta;

/* Writes atomically: `path`.tmp.<pid> is written, flushed, fsync'd and renamed over `path`, so a
 * crash never leaves a torn file; on any error the temporary is removed and `path` is untouched.
 * Tensors are stored in the order given (data 8-byte aligned); metadata goes to "__metadata__". */
int mh_st_write(const char *path, const mh_st_tensor *tensors, int n_tensors, const mh_st_meta *meta,
                int n_meta);

typedef struct mh_st_file mh_st_file;

/* Parses a safetensors image in memory (the buffer is copied). `name` is used in messages.
 * Checks: header length fits, JSON well formed, known dtype, shape dims >= 0, offsets in range,
 * end - begin == product(shape) * size, no two tensors overlap, no duplicate names. */
int mh_st_parse(mh_st_file **out, const uint8_t *buf, size_t len, const char *name);
int mh_st_read(mh_st_file **out, const char *path); /* reads the file then mh_st_parse */
void mh_st_free(mh_st_file *f);                      /* NULL-safe */

int mh_st_count(const mh_st_file *f);
const mh_st_tensor *mh_st_get(const mh_st_file *f, int i);
const mh_st_tensor *mh_st_find(const mh_st_file *f, const char *name); /* NULL when absent */
const char *mh_st_meta_get(const mh_st_file *f, const char *key);      /* NULL when absent */

#endif
