/* Loads a data directory by recognising its layout: MNIST-style IDX names (plain or .gz) or
 * CIFAR-10 binary batches (in the directory or its cifar-10-batches-bin/). Deliberately no
 * downloading, no archive (.tar.gz) extraction and no guessing beyond those file names. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "data/dataset.h"

#define MH_PATH_MAX 4096
#define MH_CIFAR_FILE_MAX ((size_t)256 << 20)
#define MH_DATASET_MAX_SAMPLES (1 << 24)

enum { MNIST_TRAIN_IMAGES, MNIST_TRAIN_LABELS, MNIST_TEST_IMAGES, MNIST_TEST_LABELS, MNIST_FILES };
static const char *const k_mnist_names[MNIST_FILES] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

#define CIFAR_TRAIN_FILES 5
static const char *const k_cifar_train[CIFAR_TRAIN_FILES] = {"data_batch_1.bin", "data_batch_2.bin",
                                                             "data_batch_3.bin", "data_batch_4.bin",
                                                             "data_batch_5.bin"};
static const char *const k_cifar_test = "test_batch.bin";

static int join(char *out, const char *dir, const char *name) {
  size_t dl = strlen(dir);
  int sep = dl > 0 && dir[dl - 1] != '/';
  int r = snprintf(out, MH_PATH_MAX, "%s%s%s", dir, sep ? "/" : "", name);
  if (r < 0 || r >= MH_PATH_MAX) return mh__error(MH_ERR_INVALID_ARG, "%s: path too long", dir);
  return MH_OK;
}

static int is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Finds dir/base or dir/base.gz (plain preferred). 1 found, 0 not, negative on error. */
static int find_maybe_gz(char *out, const char *dir, const char *base) {
  MH_TRY(join(out, dir, base));
  if (is_file(out)) return 1;
  char gz[MH_PATH_MAX];
  int r = snprintf(gz, sizeof gz, "%s.gz", out);
  if (r < 0 || r >= (int)sizeof gz) return mh__error(MH_ERR_INVALID_ARG, "%s: path too long", dir);
  if (is_file(gz)) {
    memcpy(out, gz, (size_t)r + 1);
    return 1;
  }
  return 0;
}

/* Appends ", item" (or "item") to a bounded list. */
static void list_add(char *list, size_t cap, const char *item, const char *suffix) {
  size_t l = strlen(list);
  if (l >= cap) return;
  snprintf(list + l, cap - l, "%s%s%s", l ? ", " : "", item, suffix);
}

static int load_mnist(const char *dir, mh_dataset *train, mh_dataset *test) {
  char path[MNIST_FILES][MH_PATH_MAX];
  int need[MNIST_FILES] = {train != NULL, train != NULL, test != NULL, test != NULL};
  char missing[1024] = "";
  for (int i = 0; i < MNIST_FILES; i++) {
    if (!need[i]) continue;
    int r = find_maybe_gz(path[i], dir, k_mnist_names[i]);
    if (r < 0) return r;
    if (r == 0) list_add(missing, sizeof missing, k_mnist_names[i], "[.gz]");
  }
  if (missing[0])
    return mh__error(MH_ERR_IO, "%s: incomplete MNIST-style data set, missing %s", dir, missing);
  if (train) MH_TRY(mh_dataset_load_idx(train, path[MNIST_TRAIN_IMAGES], path[MNIST_TRAIN_LABELS]));
  if (test) {
    int st = mh_dataset_load_idx(test, path[MNIST_TEST_IMAGES], path[MNIST_TEST_LABELS]);
    if (st < 0) {
      mh_dataset_free(train);
      return st;
    }
    if (train && (train->h != test->h || train->w != test->w)) {
      st = mh__error(MH_ERR_FORMAT, "%s: training images are %dx%d but test images are %dx%d", dir, train->h,
                     train->w, test->h, test->w);
      mh_dataset_free(train);
      mh_dataset_free(test);
      return st;
    }
  }
  return MH_OK;
}

/* Parses each file on its own (so errors name the file) and concatenates the records. */
static int load_cifar_files(mh_dataset *out, const char *dir, const char *const *names, int count) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < count; i++) {
    char path[MH_PATH_MAX];
    MH_TRY(join(path, dir, names[i]));
    uint8_t *buf = NULL;
    size_t len = 0;
    mh_dataset part;
    int st = mh_read_file_maybe_gz(path, MH_CIFAR_FILE_MAX, &buf, &len);
    if (st == MH_OK) {
      st = mh_cifar_parse(buf, len, path, &part);
      free(buf);
    }
    if (st == MH_OK && part.n > MH_DATASET_MAX_SAMPLES - out->n) {
      st = mh__error(MH_ERR_FORMAT, "%s: more than %d samples in total", dir, MH_DATASET_MAX_SAMPLES);
      mh_dataset_free(&part);
    }
    if (st < 0) {
      mh_dataset_free(out);
      return st;
    }
    if (out->n == 0) {
      *out = part;
      continue;
    }
    size_t sample = (size_t)part.c * part.h * part.w;
    size_t total = (size_t)out->n + (size_t)part.n;
    uint8_t *px = realloc(out->pixels, total * sample);
    if (px) out->pixels = px;
    uint8_t *lb = px ? realloc(out->labels, total) : NULL;
    if (lb) out->labels = lb;
    if (!px || !lb) {
      mh_dataset_free(&part);
      mh_dataset_free(out);
      return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu CIFAR-10 samples", dir, total);
    }
    memcpy(out->pixels + (size_t)out->n * sample, part.pixels, (size_t)part.n * sample);
    memcpy(out->labels + out->n, part.labels, (size_t)part.n);
    out->n = (int)total;
    mh_dataset_free(&part);
  }
  return MH_OK;
}

static int load_cifar(const char *dir, mh_dataset *train, mh_dataset *test) {
  char missing[1024] = "", path[MH_PATH_MAX];
  if (train)
    for (int i = 0; i < CIFAR_TRAIN_FILES; i++) {
      MH_TRY(join(path, dir, k_cifar_train[i]));
      if (!is_file(path)) list_add(missing, sizeof missing, k_cifar_train[i], "");
    }
  if (test) {
    MH_TRY(join(path, dir, k_cifar_test));
    if (!is_file(path)) list_add(missing, sizeof missing, k_cifar_test, "");
  }
  if (missing[0]) return mh__error(MH_ERR_IO, "%s: incomplete CIFAR-10 data set, missing %s", dir, missing);
  if (train) MH_TRY(load_cifar_files(train, dir, k_cifar_train, CIFAR_TRAIN_FILES));
  if (test) {
    int st = load_cifar_files(test, dir, &k_cifar_test, 1);
    if (st < 0) {
      mh_dataset_free(train);
      return st;
    }
  }
  return MH_OK;
}

int mh_dataset_load_dir(const char *dir, mh_dataset *train, mh_dataset *test) {
  if (train) memset(train, 0, sizeof *train);
  if (test) memset(test, 0, sizeof *test);
  if (!dir || !dir[0]) return mh__error(MH_ERR_INVALID_ARG, "mh_dataset_load_dir: no directory given");
  if (!train && !test) return mh__error(MH_ERR_INVALID_ARG, "%s: neither train nor test requested", dir);
  struct stat sb;
  if (stat(dir, &sb) != 0) return mh__error(MH_ERR_IO, "%s: cannot access data directory: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return mh__error(MH_ERR_IO, "%s: not a directory", dir);

  char path[MH_PATH_MAX];
  int any_mnist = 0;
  for (int i = 0; i < MNIST_FILES && !any_mnist; i++) {
    int r = find_maybe_gz(path, dir, k_mnist_names[i]);
    if (r < 0) return r;
    any_mnist = r;
  }
  if (any_mnist) return load_mnist(dir, train, test);

  int any_cifar = 0;
  for (int i = 0; i < CIFAR_TRAIN_FILES && !any_cifar; i++) {
    MH_TRY(join(path, dir, k_cifar_train[i]));
    any_cifar = is_file(path);
  }
  if (!any_cifar) {
    MH_TRY(join(path, dir, k_cifar_test));
    any_cifar = is_file(path);
  }
  if (any_cifar) return load_cifar(dir, train, test);

  char sub[MH_PATH_MAX];
  MH_TRY(join(sub, dir, "cifar-10-batches-bin"));
  if (is_dir(sub)) return load_cifar(sub, train, test);

  return mh__error(MH_ERR_IO,
                   "%s: no data set found: expected MNIST-style files (train-images-idx3-ubyte[.gz], "
                   "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) "
                   "or CIFAR-10 binary batches (data_batch_1.bin..data_batch_5.bin, test_batch.bin), "
                   "possibly in cifar-10-batches-bin/",
                   dir);
}
