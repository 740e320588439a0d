/* Data sets held in memory as raw bytes (IDX: MNIST/Fashion-MNIST; CIFAR-10 binary),
 * validated before trusted, and the batcher that shuffles, augments, normalises and prefetches. */
#ifndef MH_DATA_DATASET_H
#define MH_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "mandheling.h"

/* n samples of c x h x w bytes (NCHW per sample) and one label byte each. */
typedef struct mh_dataset {
  int n, c, h, w;
  int n_classes;     /* labels are in [0, n_classes) */
  uint8_t *pixels;   /* n * c * h * w, owned */
  uint8_t *labels;   /* n, owned */
} mh_dataset;

void mh_dataset_free(mh_dataset *ds); /* frees the arrays, zeroes the struct; NULL-safe */

/* IDX parsers over a memory buffer (already decompressed). `name` appears in error messages.
 * Images: magic 0x00000803, dims n, rows, cols; labels: magic 0x00000801, dim n.
 * Validate the magic, that dims are positive and sane (<= 2^24 samples, <= 4096 rows/cols),
 * and that the byte count is exactly header + product(dims). */
int mh_idx_parse_images(const uint8_t *buf, size_t len, const char *name, mh_dataset *out);
int mh_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, uint8_t **labels, int *n);

/* Reads a whole file, transparently gunzipping when it starts with 1f 8b (zlib),
 * refusing inputs that decompress to more than `max_bytes`. Caller frees *buf. */
int mh_read_file_maybe_gz(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* Loads an images/labels IDX pair (gzipped or not); checks the counts agree and labels < 10. */
int mh_dataset_load_idx(mh_dataset *ds, const char *images_path, const char *labels_path);

/* CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (3x32x32). Parses one or more
 * batch files' bytes; length must be a multiple of 3073 and labels < 10. */
int mh_cifar_parse(const uint8_t *buf, size_t len, const char *name, mh_dataset *out);

/* Loads a data directory: MNIST-style names (train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])
 * or CIFAR-10 binary (data_batch_1..5.bin + test_batch.bin, also inside cifar-10-batches-bin/).
 * Either of train/test may be NULL. Error messages name the directory and what is missing. */
int mh_dataset_load_dir(const char *dir, mh_dataset *train, mh_dataset *test);

/* Per-channel mean and standard deviation of pixel/255 over the whole set (double precision). */
void mh_dataset_channel_stats(const mh_dataset *ds, float *mean, float *std);

/* ---- batcher ---------------------------------------------------------------------------- */
typedef struct mh_batcher_config {
  int batch;          /* samples per batch, >= 1 */
  uint64_t seed;      /* shuffle and augmentation key */
  int shuffle;        /* 1: a fresh permutation each epoch from (seed, epoch) */
  int drop_last;      /* 1: drop the final partial batch */
  int crop_pad;       /* >0: random crop of the original size after zero-padding by this many pixels */
  int hflip;          /* 1: random horizontal flip with p = 0.5 */
  float mean[3], std[3]; /* x = (pixel/255 - mean[c]) / std[c] */
  int prefetch;       /* 1: a background thread prepares the next batches */
} mh_batcher_config;

typedef struct mh_batcher mh_batcher;

int mh_batcher_init(mh_batcher **b, const mh_dataset *ds, const mh_batcher_config *cfg);
void mh_batcher_free(mh_batcher *b); /* joins the prefetch thread; NULL-safe */
int mh_batcher_batches_per_epoch(const mh_batcher *b);
/* Positions the batcher at batch `first_batch` of `epoch`. Batch contents are a pure function of
 * (seed, epoch, batch index), so resuming mid-epoch reproduces the same batches exactly. */
int mh_batcher_start_epoch(mh_batcher *b, int epoch, int first_batch);
/* Returns 1 and fills the next batch (x: n*c*h*w floats, y: n labels, valid until the next call),
 * or 0 at the end of the epoch. Negative on error. */
int mh_batcher_next(mh_batcher *b, const float **x, const int32_t **y, int *n);

#endif
