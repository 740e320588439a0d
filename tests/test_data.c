/* Tests of the data module: IDX/CIFAR parsing and rejection of malformed input, gzip handling,
 * data-directory loading, and the batcher (coverage, determinism, resume, normalisation, augmentation). */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/gz.h"
#include "mandheling.h"
#include "testlib.h"

static char g_tmp[256];

/* ---- helpers ------------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint8_t pixel_value(int i, int k) { return (uint8_t)((i * 7 + k * 13) % 251 + 1); }

/* n images of rows x cols with pixel_value(i, k); *len gets the buffer size. */
static uint8_t *make_images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len) {
  size_t body = (size_t)n * rows * cols;
  uint8_t *b = malloc(16 + body + 1);
  put_be32(b, 0x803);
  put_be32(b + 4, n);
  put_be32(b + 8, rows);
  put_be32(b + 12, cols);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < (size_t)rows * cols; k++) b[16 + i * rows * cols + k] = pixel_value((int)i, (int)k);
  *len = 16 + body;
  return b;
}

static uint8_t *make_labels(uint32_t n, size_t *len) {
  uint8_t *b = malloc(8 + n + 1);
  put_be32(b, 0x801);
  put_be32(b + 4, n);
  for (uint32_t i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 10);
  *len = 8 + n;
  return b;
}

/* gzip-compresses into a malloc'd buffer. */
static uint8_t *gzip_mem(const uint8_t *in, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  size_t cap = deflateBound(&zs, (uLong)len) + 64;
  uint8_t *out = malloc(cap);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  int r = deflate(&zs, Z_FINISH);
  *out_len = cap - zs.avail_out;
  deflateEnd(&zs);
  if (r != Z_STREAM_END) {
    free(out);
    return NULL;
  }
  return out;
}

static const char *tmp_path(const char *rel) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
  return buf[k];
}

static void write_file(const char *path, const uint8_t *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    TL_FAIL("cannot write %s", path);
    return;
  }
  if (len) fwrite(data, 1, len, f);
  fclose(f);
}

static void write_gz(const char *path, const uint8_t *data, size_t len) {
  size_t zl = 0;
  uint8_t *z = gzip_mem(data, len, &zl);
  CHECK(z != NULL);
  if (z) write_file(path, z, zl);
  free(z);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void make_dir(const char *path) {
  rm_tree(path);
  CHECK(mkdir(path, 0700) == 0);
}

static int error_mentions(const char *s) { return strstr(mh_last_error(), s) != NULL; }

/* ---- IDX ---------------------------------------------------------------------------------- */

static void test_idx_parse(void) {
  size_t len;
  uint8_t *img = make_images(5, 3, 4, &len);
  mh_dataset ds;
  CHECK_OK(mh_idx_parse_images(img, len, "img", &ds));
  CHECK_EQ_INT(ds.n, 5);
  CHECK_EQ_INT(ds.c, 1);
  CHECK_EQ_INT(ds.h, 3);
  CHECK_EQ_INT(ds.w, 4);
  CHECK(ds.labels == NULL);
  int same = ds.pixels != NULL;
  for (int i = 0; same && i < 5; i++)
    for (int k = 0; k < 12; k++) same &= ds.pixels[i * 12 + k] == pixel_value(i, k);
  CHECK(same);
  mh_dataset_free(&ds);
  CHECK(ds.pixels == NULL && ds.n == 0);
  mh_dataset_free(&ds);
  mh_dataset_free(NULL);

  /* Rejections, each naming the buffer. */
  mh_clear_error();
  CHECK_ERR(mh_idx_parse_images(img, len - 1, "short.idx", &ds));
  CHECK(error_mentions("short.idx"));
  CHECK(ds.pixels == NULL);
  CHECK_ERR(mh_idx_parse_images(img, len + 1, "extra", &ds));
  CHECK(error_mentions("extra"));
  CHECK_ERR(mh_idx_parse_images(img, 10, "hdr", &ds));
  CHECK_ERR(mh_idx_parse_images(img, 3, "tiny", &ds));
  CHECK_ERR(mh_idx_parse_images(img, 0, "empty", &ds));
  CHECK_ERR(mh_idx_parse_images(NULL, 0, "null", &ds));
  uint8_t *bad = malloc(len + 1);
  memcpy(bad, img, len);
  put_be32(bad, 0x804);
  CHECK_ERR(mh_idx_parse_images(bad, len, "magic", &ds));
  CHECK(error_mentions("magic"));
  put_be32(bad, 0x801);
  CHECK_ERR(mh_idx_parse_images(bad, len, "labels-as-images", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 4, 0);
  CHECK_ERR(mh_idx_parse_images(bad, 16, "zero-n", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 8, 0);
  CHECK_ERR(mh_idx_parse_images(bad, 16, "zero-rows", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 12, 0);
  CHECK_ERR(mh_idx_parse_images(bad, 16, "zero-cols", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 8, 5000);
  CHECK_ERR(mh_idx_parse_images(bad, len, "huge-rows", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 4, (1u << 24) + 1);
  CHECK_ERR(mh_idx_parse_images(bad, len, "huge-n", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 4, 0xFFFFFFFFu);
  put_be32(bad + 8, 0xFFFFFFFFu);
  put_be32(bad + 12, 0xFFFFFFFFu);
  CHECK_ERR(mh_idx_parse_images(bad, len, "overflow", &ds));
  memcpy(bad, img, len);
  put_be32(bad + 4, 1u << 24);
  put_be32(bad + 8, 4096);
  put_be32(bad + 12, 4096);
  CHECK_ERR(mh_idx_parse_images(bad, len, "claims-2^48", &ds));
  free(bad);
  free(img);

  uint8_t *lab = make_labels(7, &len);
  uint8_t *labels = NULL;
  int n = 0;
  CHECK_OK(mh_idx_parse_labels(lab, len, "lab", &labels, &n));
  CHECK_EQ_INT(n, 7);
  CHECK(labels && labels[6] == 6);
  free(labels);
  CHECK_ERR(mh_idx_parse_labels(lab, len - 1, "short", &labels, &n));
  CHECK(labels == NULL && n == 0);
  CHECK_ERR(mh_idx_parse_labels(lab, len + 1, "extra", &labels, &n));
  CHECK_ERR(mh_idx_parse_labels(lab, 5, "hdr", &labels, &n));
  put_be32(lab, 0x803);
  CHECK_ERR(mh_idx_parse_labels(lab, len, "magic", &labels, &n));
  put_be32(lab, 0x801);
  put_be32(lab + 4, 0);
  CHECK_ERR(mh_idx_parse_labels(lab, 8, "zero", &labels, &n));
  put_be32(lab + 4, (1u << 24) + 1);
  CHECK_ERR(mh_idx_parse_labels(lab, len, "huge", &labels, &n));
  free(lab);
}

/* An IDX image buffer of n zero images of rows x cols whose length matches its header exactly. */
static uint8_t *idx_images_buf(uint32_t n, uint32_t rows, uint32_t cols, size_t *len) {
  *len = 16 + (size_t)n * rows * cols;
  uint8_t *b = calloc(*len, 1);
  put_be32(b, 0x803);
  put_be32(b + 4, n);
  put_be32(b + 8, rows);
  put_be32(b + 12, cols);
  return b;
}

/* IDX dimension bounds: rows and cols each in 1..4096 and at most 2^24 samples (and labels), checked on their own.
 * Every header here has a byte count that matches its dims exactly, so only the bound can reject it; the error
 * must name the buffer and the bound. 4096 per side and 2^24 samples are the largest accepted values. */
static void test_idx_bounds(void) {
  static const struct {
    uint32_t n, rows, cols;
    int ok;
    const char *name, *bound;
  } cases[] = {
      {1, 4097, 1, 0, "rows-4097.idx", "4096"},
      {1, 1, 4097, 0, "cols-4097.idx", "4096"},
      {1, 4097, 4097, 0, "both-4097.idx", "4096"},
      {1, 4096, 1, 1, "rows-4096.idx", ""},
      {1, 1, 4096, 1, "cols-4096.idx", ""},
      {1, 4096, 4096, 1, "side-4096.idx", ""},
      {(1u << 24) + 1, 1, 1, 0, "n-2^24+1.idx", "16777216"},
      {1u << 24, 1, 1, 1, "n-2^24.idx", ""},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    size_t len;
    uint8_t *buf = idx_images_buf(cases[t].n, cases[t].rows, cases[t].cols, &len);
    mh_dataset ds;
    mh_clear_error();
    int st = mh_idx_parse_images(buf, len, cases[t].name, &ds);
    if (cases[t].ok) {
      if (st != 0) TL_FAIL("%s: rejected: %s", cases[t].name, mh_last_error());
      CHECK_EQ_INT(ds.n, cases[t].n);
      CHECK_EQ_INT(ds.h, cases[t].rows);
      CHECK_EQ_INT(ds.w, cases[t].cols);
      mh_dataset_free(&ds);
    } else {
      if (st >= 0) TL_FAIL("%s: accepted but should fail", cases[t].name);
      if (!error_mentions(cases[t].name) || !error_mentions(cases[t].bound))
        TL_FAIL("%s: error does not name the file and the bound %s: %s", cases[t].name, cases[t].bound,
                mh_last_error());
      CHECK(ds.pixels == NULL);
    }
    free(buf);
  }

  /* Labels: the same 2^24 bound on the count. */
  for (int over = 0; over <= 1; over++) {
    uint32_t count = (1u << 24) + (uint32_t)over;
    size_t len = 8 + (size_t)count;
    uint8_t *buf = calloc(len, 1);
    put_be32(buf, 0x801);
    put_be32(buf + 4, count);
    uint8_t *labels = NULL;
    int n = 0;
    const char *name = over ? "labels-2^24+1.idx" : "labels-2^24.idx";
    mh_clear_error();
    int st = mh_idx_parse_labels(buf, len, name, &labels, &n);
    if (over) {
      CHECK(st < 0);
      CHECK(labels == NULL && n == 0);
      if (!error_mentions(name) || !error_mentions("16777216"))
        TL_FAIL("%s: error does not name the file and the bound: %s", name, mh_last_error());
    } else {
      if (st != 0) TL_FAIL("%s: rejected: %s", name, mh_last_error());
      CHECK_EQ_INT(n, 1 << 24);
      free(labels);
    }
    free(buf);
  }
}

static void test_gunzip(void) {
  size_t len, zl, out_len;
  uint8_t *img = make_images(20, 8, 8, &len);
  uint8_t *z = gzip_mem(img, len, &zl);
  uint8_t *out = NULL;
  CHECK(z != NULL);
  CHECK_OK(mh__gunzip(z, zl, len, "mem", &out, &out_len));
  CHECK_EQ_INT(out_len, len);
  CHECK(out && memcmp(out, img, len) == 0);
  free(out);
  /* Exactly at the cap is fine, one byte below is not. */
  CHECK_ERR(mh__gunzip(z, zl, len - 1, "cap", &out, &out_len));
  CHECK(out == NULL && error_mentions("cap"));
  /* Every truncation fails cleanly. */
  int all_fail = 1;
  for (size_t cut = 0; cut < zl; cut++) {
    int st = mh__gunzip(z, cut, len, "cut", &out, &out_len);
    if (st >= 0) {
      all_fail = 0;
      free(out);
    }
  }
  CHECK(all_fail);
  /* Two members concatenated decode to the concatenation; trailing junk is refused. */
  uint8_t *two = malloc(2 * zl + 4);
  memcpy(two, z, zl);
  memcpy(two + zl, z, zl);
  CHECK_OK(mh__gunzip(two, 2 * zl, 2 * len, "two", &out, &out_len));
  CHECK_EQ_INT(out_len, 2 * len);
  CHECK(out && memcmp(out + len, img, len) == 0);
  free(out);
  memcpy(two + zl, "junk", 4);
  CHECK_ERR(mh__gunzip(two, zl + 4, 2 * len, "junk", &out, &out_len));
  /* Corrupt CRC and corrupt method byte. */
  memcpy(two, z, zl);
  two[zl - 6] ^= 0x55;
  CHECK_ERR(mh__gunzip(two, zl, len, "crc", &out, &out_len));
  memcpy(two, z, zl);
  two[2] = 7;
  CHECK_ERR(mh__gunzip(two, zl, len, "method", &out, &out_len));
  free(two);
  /* A bomb: 16 MiB of zeros capped at 1 MiB fails without allocating it all. */
  size_t big = (size_t)16 << 20;
  uint8_t *zeros = calloc(big, 1);
  uint8_t *zb = gzip_mem(zeros, big, &zl);
  free(zeros);
  CHECK_ERR(mh__gunzip(zb, zl, (size_t)1 << 20, "bomb", &out, &out_len));
  CHECK(error_mentions("more than"));
  free(zb);
  free(z);
  free(img);
}

static void test_idx_files(void) {
  size_t il, ll;
  uint8_t *img = make_images(12, 6, 5, &il);
  uint8_t *lab = make_labels(12, &ll);
  mh_dataset ds;
  write_file(tmp_path("img.idx"), img, il);
  write_file(tmp_path("lab.idx"), lab, ll);
  write_gz(tmp_path("img.idx.gz"), img, il);
  write_gz(tmp_path("lab.idx.gz"), lab, ll);

  CHECK_OK(mh_dataset_load_idx(&ds, tmp_path("img.idx"), tmp_path("lab.idx")));
  CHECK_EQ_INT(ds.n, 12);
  CHECK_EQ_INT(ds.n_classes, 10);
  CHECK(ds.labels && ds.labels[11] == 1);
  mh_dataset_free(&ds);
  CHECK_OK(mh_dataset_load_idx(&ds, tmp_path("img.idx.gz"), tmp_path("lab.idx")));
  CHECK_EQ_INT(ds.h, 6);
  CHECK_EQ_INT(ds.w, 5);
  CHECK(ds.pixels && ds.pixels[29] == pixel_value(0, 29) && ds.pixels[30] == pixel_value(1, 0));
  mh_dataset_free(&ds);
  CHECK_OK(mh_dataset_load_idx(&ds, tmp_path("img.idx.gz"), tmp_path("lab.idx.gz")));
  mh_dataset_free(&ds);

  /* read_file_maybe_gz: plain and gz, and its cap. */
  uint8_t *buf = NULL;
  size_t len = 0;
  CHECK_OK(mh_read_file_maybe_gz(tmp_path("img.idx.gz"), il, &buf, &len));
  CHECK_EQ_INT(len, il);
  CHECK(buf && memcmp(buf, img, il) == 0);
  free(buf);
  CHECK_ERR(mh_read_file_maybe_gz(tmp_path("img.idx.gz"), il - 1, &buf, &len));
  CHECK_ERR(mh_read_file_maybe_gz(tmp_path("img.idx"), il - 1, &buf, &len));
  CHECK_OK(mh_read_file_maybe_gz(tmp_path("img.idx"), il, &buf, &len));
  CHECK_EQ_INT(len, il);
  free(buf);
  CHECK_ERR(mh_read_file_maybe_gz(tmp_path("nonexistent"), 100, &buf, &len));
  CHECK(error_mentions("nonexistent"));
  CHECK_ERR(mh_read_file_maybe_gz(g_tmp, 100, &buf, &len)); /* a directory */
  write_file(tmp_path("empty"), NULL, 0);
  CHECK_OK(mh_read_file_maybe_gz(tmp_path("empty"), 100, &buf, &len));
  CHECK_EQ_INT(len, 0);
  free(buf);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("empty"), tmp_path("lab.idx")));
  CHECK(error_mentions("empty"));

  /* Count mismatch. */
  uint8_t *lab11 = make_labels(11, &len);
  write_file(tmp_path("lab11.idx"), lab11, len);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("img.idx"), tmp_path("lab11.idx")));
  CHECK(error_mentions("lab11.idx") && ds.pixels == NULL);
  free(lab11);
  /* Label >= 10. */
  lab[8 + 5] = 10;
  write_file(tmp_path("lab10.idx"), lab, ll);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("img.idx"), tmp_path("lab10.idx")));
  CHECK(error_mentions("lab10.idx") && error_mentions("index 5"));
  lab[8 + 5] = 5;
  /* Truncated and corrupt gzip files. */
  size_t zl;
  uint8_t *z = gzip_mem(img, il, &zl);
  write_file(tmp_path("trunc.gz"), z, zl / 2);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("trunc.gz"), tmp_path("lab.idx")));
  CHECK(error_mentions("trunc.gz") && error_mentions("truncated"));
  write_file(tmp_path("trunc2.gz"), z, zl - 1);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("trunc2.gz"), tmp_path("lab.idx")));
  z[zl - 5] ^= 0xFF; /* CRC32 */
  write_file(tmp_path("crc.gz"), z, zl);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("crc.gz"), tmp_path("lab.idx")));
  CHECK(error_mentions("crc.gz"));
  z[zl - 5] ^= 0xFF;
  for (size_t k = 12; k < 40 && k < zl; k++) z[k] = 0xFF; /* deflate body */
  write_file(tmp_path("corrupt.gz"), z, zl);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("corrupt.gz"), tmp_path("lab.idx")));
  CHECK(error_mentions("corrupt.gz"));
  free(z);
  CHECK_ERR(mh_dataset_load_idx(&ds, tmp_path("lab.idx"), tmp_path("img.idx"))); /* swapped */
  free(img);
  free(lab);
}

/* ---- CIFAR -------------------------------------------------------------------------------- */

static uint8_t *make_cifar(int n, int label_base, size_t *len) {
  *len = (size_t)n * 3073;
  uint8_t *b = malloc(*len);
  for (int i = 0; i < n; i++) {
    b[(size_t)i * 3073] = (uint8_t)((label_base + i) % 10);
    for (int k = 0; k < 3072; k++) b[(size_t)i * 3073 + 1 + k] = pixel_value(label_base + i, k);
  }
  return b;
}

static void test_cifar(void) {
  size_t len;
  uint8_t *b = make_cifar(3, 4, &len);
  mh_dataset ds;
  CHECK_OK(mh_cifar_parse(b, len, "cifar", &ds));
  CHECK_EQ_INT(ds.n, 3);
  CHECK_EQ_INT(ds.c, 3);
  CHECK_EQ_INT(ds.h, 32);
  CHECK_EQ_INT(ds.w, 32);
  CHECK_EQ_INT(ds.n_classes, 10);
  CHECK(ds.labels[0] == 4 && ds.labels[2] == 6);
  CHECK(ds.pixels[3072 * 2 + 1024 + 5] == pixel_value(6, 1029));
  mh_dataset_free(&ds);
  CHECK_ERR(mh_cifar_parse(b, len - 1, "cifar-short", &ds));
  CHECK(error_mentions("cifar-short") && ds.pixels == NULL);
  CHECK_ERR(mh_cifar_parse(b, len + 1, "cifar-long", &ds));
  CHECK_ERR(mh_cifar_parse(b, 0, "cifar-empty", &ds));
  b[3073] = 10;
  CHECK_ERR(mh_cifar_parse(b, len, "cifar-label", &ds));
  CHECK(error_mentions("record 1"));
  free(b);
}

/* ---- data directories --------------------------------------------------------------------- */

static void write_mnist(const char *dir, int gz, int n_train, int n_test, int skip) {
  static const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int f = 0; f < 4; f++) {
    if (f == skip) continue;
    size_t len;
    int n = f < 2 ? n_train : n_test;
    uint8_t *b = (f % 2 == 0) ? make_images((uint32_t)n, 7, 7, &len) : make_labels((uint32_t)n, &len);
    char path[600];
    snprintf(path, sizeof path, "%s/%s%s", dir, names[f], gz ? ".gz" : "");
    if (gz)
      write_gz(path, b, len);
    else
      write_file(path, b, len);
    free(b);
  }
}

static void write_cifar_dir(const char *dir, int skip_batch) {
  for (int i = 1; i <= 6; i++) {
    if (i == skip_batch) continue;
    char path[600];
    if (i <= 5)
      snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, i);
    else
      snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    size_t len;
    uint8_t *b = make_cifar(2, i * 10, &len);
    write_file(path, b, len);
    free(b);
  }
}

static void test_load_dir(void) {
  mh_dataset tr, te;
  char dir[600];

  snprintf(dir, sizeof dir, "%s/emptydir", g_tmp);
  make_dir(dir);
  CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
  CHECK(error_mentions(dir) && error_mentions("train-images-idx3-ubyte") && error_mentions("data_batch_1.bin"));
  CHECK_ERR(mh_dataset_load_dir(tmp_path("no-such-dir"), &tr, &te));
  CHECK(error_mentions("no-such-dir"));
  CHECK_ERR(mh_dataset_load_dir(tmp_path("img.idx"), &tr, &te));

  snprintf(dir, sizeof dir, "%s/mnist_plain", g_tmp);
  make_dir(dir);
  write_mnist(dir, 0, 9, 4, -1);
  CHECK_OK(mh_dataset_load_dir(dir, &tr, &te));
  CHECK_EQ_INT(tr.n, 9);
  CHECK_EQ_INT(te.n, 4);
  CHECK_EQ_INT(tr.h, 7);
  mh_dataset_free(&tr);
  mh_dataset_free(&te);
  CHECK_OK(mh_dataset_load_dir(dir, NULL, &te));
  CHECK_EQ_INT(te.n, 4);
  mh_dataset_free(&te);

  snprintf(dir, sizeof dir, "%s/mnist_gz", g_tmp);
  make_dir(dir);
  write_mnist(dir, 1, 11, 3, -1);
  CHECK_OK(mh_dataset_load_dir(dir, &tr, NULL));
  CHECK_EQ_INT(tr.n, 11);
  mh_dataset_free(&tr);

  snprintf(dir, sizeof dir, "%s/mnist_missing", g_tmp);
  make_dir(dir);
  write_mnist(dir, 1, 5, 5, 1); /* no train labels */
  CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
  CHECK(error_mentions(dir) && error_mentions("train-labels-idx1-ubyte") &&
        !error_mentions("t10k-labels-idx1-ubyte"));
  CHECK(tr.pixels == NULL && te.pixels == NULL);
  CHECK_OK(mh_dataset_load_dir(dir, NULL, &te)); /* the test half is complete */
  mh_dataset_free(&te);

  snprintf(dir, sizeof dir, "%s/mnist_badtest", g_tmp);
  make_dir(dir);
  write_mnist(dir, 0, 5, 5, -1);
  write_file(tmp_path("mnist_badtest/t10k-labels-idx1-ubyte"), (const uint8_t *)"xx", 2);
  CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
  CHECK(tr.pixels == NULL && te.pixels == NULL);

  snprintf(dir, sizeof dir, "%s/cifar", g_tmp);
  make_dir(dir);
  write_cifar_dir(dir, 0);
  CHECK_OK(mh_dataset_load_dir(dir, &tr, &te));
  CHECK_EQ_INT(tr.n, 10);
  CHECK_EQ_INT(te.n, 2);
  CHECK_EQ_INT(tr.c, 3);
  CHECK(tr.labels[0] == 0 && tr.labels[1] == 1 && tr.labels[9] == 1 && te.labels[0] == 0);
  CHECK(tr.pixels[(size_t)9 * 3072 + 100] == pixel_value(51, 100));
  mh_dataset_free(&tr);
  mh_dataset_free(&te);

  snprintf(dir, sizeof dir, "%s/cifar_parent", g_tmp);
  make_dir(dir);
  snprintf(dir, sizeof dir, "%s/cifar_parent/cifar-10-batches-bin", g_tmp);
  make_dir(dir);
  write_cifar_dir(dir, 3);
  snprintf(dir, sizeof dir, "%s/cifar_parent", g_tmp);
  CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
  CHECK(error_mentions("cifar-10-batches-bin") && error_mentions("data_batch_3.bin") &&
        !error_mentions("data_batch_2.bin"));
  CHECK_OK(mh_dataset_load_dir(dir, NULL, &te));
  CHECK_EQ_INT(te.n, 2);
  mh_dataset_free(&te);
  write_cifar_dir(tmp_path("cifar_parent/cifar-10-batches-bin"), 0);
  CHECK_OK(mh_dataset_load_dir(dir, &tr, &te));
  CHECK_EQ_INT(tr.n, 10);
  mh_dataset_free(&tr);
  mh_dataset_free(&te);
  /* A batch file with a bad length is named in the error. */
  write_file(tmp_path("cifar_parent/cifar-10-batches-bin/data_batch_4.bin"), (const uint8_t *)"abc", 3);
  CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
  CHECK(error_mentions("data_batch_4.bin") && tr.pixels == NULL);
}

/* A data directory's training and test images must have the same size, height and width each: a test set of
 * 7x6 or 6x7 images next to 7x7 training images is refused with both sizes and the directory in the error. */
static void test_load_dir_shape_mismatch(void) {
  static const int sizes[2][2] = {{7, 6}, {6, 7}};
  for (int t = 0; t < 2; t++) {
    char dir[600], path[700], want[64];
    snprintf(dir, sizeof dir, "%s/mnist_shape%d", g_tmp, t);
    make_dir(dir);
    size_t len;
    uint8_t *b = make_images(3, 7, 7, &len);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_file(path, b, len);
    free(b);
    b = make_images(2, (uint32_t)sizes[t][0], (uint32_t)sizes[t][1], &len);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    write_file(path, b, len);
    free(b);
    b = make_labels(3, &len);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_file(path, b, len);
    free(b);
    b = make_labels(2, &len);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    write_file(path, b, len);
    free(b);
    mh_dataset tr, te;
    CHECK_ERR(mh_dataset_load_dir(dir, &tr, &te));
    snprintf(want, sizeof want, "%dx%d", sizes[t][0], sizes[t][1]);
    CHECK(error_mentions(dir) && error_mentions("7x7") && error_mentions(want));
    CHECK(tr.pixels == NULL && te.pixels == NULL);
    CHECK_OK(mh_dataset_load_dir(dir, NULL, &te)); /* each half on its own is fine */
    CHECK_EQ_INT(te.h, sizes[t][0]);
    CHECK_EQ_INT(te.w, sizes[t][1]);
    mh_dataset_free(&te);
  }
}

/* ---- stats and batcher -------------------------------------------------------------------- */

/* n samples of c x h x w; sample i starts with byte i (n <= 256), the rest nonzero. */
static mh_dataset make_ds(int n, int c, int h, int w) {
  mh_dataset ds;
  ds.n = n;
  ds.c = c;
  ds.h = h;
  ds.w = w;
  ds.n_classes = 10;
  size_t s = (size_t)c * h * w;
  ds.pixels = malloc((size_t)n * s);
  ds.labels = malloc((size_t)n);
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < s; k++) ds.pixels[i * s + k] = pixel_value(i, (int)k);
    ds.pixels[i * s] = (uint8_t)i;
    ds.labels[i] = (uint8_t)(i % 10);
  }
  return ds;
}

static mh_batcher_config plain_cfg(int batch) {
  mh_batcher_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.batch = batch;
  cfg.seed = 1234;
  for (int c = 0; c < 3; c++) {
    cfg.mean[c] = 0.0f;
    cfg.std[c] = 1.0f;
  }
  return cfg;
}

static void test_batcher_coverage(void) {
  mh_dataset ds = make_ds(103, 1, 4, 5);
  mh_batcher_config cfg = plain_cfg(10);
  cfg.shuffle = 1;
  for (int prefetch = 0; prefetch <= 1; prefetch++) {
    cfg.prefetch = prefetch;
    mh_batcher *b = NULL;
    CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
    CHECK_EQ_INT(mh_batcher_batches_per_epoch(b), 11);
    int first_order[2][103];
    for (int epoch = 0; epoch < 2; epoch++) {
      CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
      int seen[103] = {0}, batches = 0, total = 0, last_n = 0, content_ok = 1;
      const float *x;
      const int32_t *y;
      int n;
      while (mh_batcher_next(b, &x, &y, &n) == 1) {
        for (int i = 0; i < n; i++) {
          const float *s = x + (size_t)i * 20;
          int idx = (int)lrintf(s[0] * 255.0f);
          if (idx < 0 || idx >= 103) {
            content_ok = 0;
            continue;
          }
          seen[idx]++;
          if (total + i < 103) first_order[epoch][total + i] = idx;
          if (y[i] != idx % 10) content_ok = 0;
          for (int k = 1; k < 20; k++)
            if (fabsf(s[k] - pixel_value(idx, k) / 255.0f) > 1e-6f) content_ok = 0;
        }
        total += n;
        last_n = n;
        batches++;
      }
      CHECK(content_ok);
      CHECK_EQ_INT(batches, 11);
      CHECK_EQ_INT(total, 103);
      CHECK_EQ_INT(last_n, 3);
      int once = 1;
      for (int i = 0; i < 103; i++) once &= seen[i] == 1;
      CHECK(once);
      CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 0);
      CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 0);
    }
    CHECK(memcmp(first_order[0], first_order[1], sizeof first_order[0]) != 0);
    int identity = 1;
    for (int i = 0; i < 103; i++) identity &= first_order[0][i] == i;
    CHECK(!identity);
    mh_batcher_free(b);
  }

  /* No shuffle: identity order; drop_last: 10 full batches. */
  cfg = plain_cfg(10);
  cfg.drop_last = 1;
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  CHECK_EQ_INT(mh_batcher_batches_per_epoch(b), 10);
  const float *x;
  const int32_t *y;
  int n, k = 0, ordered = 1, full = 1;
  while (mh_batcher_next(b, &x, &y, &n) == 1) {
    full &= n == 10;
    for (int i = 0; i < n; i++) ordered &= lrintf(x[(size_t)i * 20] * 255.0f) == k * 10 + i;
    k++;
  }
  CHECK_EQ_INT(k, 10);
  CHECK(full && ordered);
  mh_batcher_free(b);

  /* Batch larger than the data set: one batch of everything. */
  cfg = plain_cfg(500);
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  CHECK_EQ_INT(mh_batcher_batches_per_epoch(b), 1);
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
  CHECK_EQ_INT(n, 103);
  mh_batcher_free(b);

  /* Bad configurations. */
  cfg = plain_cfg(0);
  CHECK_ERR(mh_batcher_init(&b, &ds, &cfg));
  CHECK(b == NULL);
  cfg = plain_cfg(500);
  cfg.drop_last = 1;
  CHECK_ERR(mh_batcher_init(&b, &ds, &cfg));
  cfg = plain_cfg(10);
  cfg.std[0] = 0.0f;
  CHECK_ERR(mh_batcher_init(&b, &ds, &cfg));
  cfg = plain_cfg(10);
  cfg.crop_pad = -1;
  CHECK_ERR(mh_batcher_init(&b, &ds, &cfg));
  mh_dataset empty = {0};
  cfg = plain_cfg(10);
  CHECK_ERR(mh_batcher_init(&b, &empty, &cfg));
  CHECK_ERR(mh_batcher_init(&b, NULL, &cfg));
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  CHECK_ERR(mh_batcher_start_epoch(b, -1, 0));
  CHECK_ERR(mh_batcher_start_epoch(b, 0, 12));
  CHECK_OK(mh_batcher_start_epoch(b, 0, 11)); /* at the end: no batches */
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 0);
  mh_batcher_free(b);
  mh_batcher_free(NULL);
  mh_dataset_free(&ds);
}

typedef struct {
  int count;
  int n[16];
  float *x[16];
  int32_t *y[16];
} epoch_rec;

static void record_epoch(mh_batcher *b, int epoch, size_t sample, epoch_rec *r) {
  memset(r, 0, sizeof *r);
  CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
  const float *x;
  const int32_t *y;
  int n;
  while (r->count < 16 && mh_batcher_next(b, &x, &y, &n) == 1) {
    r->n[r->count] = n;
    r->x[r->count] = malloc((size_t)n * sample * sizeof(float));
    r->y[r->count] = malloc((size_t)n * sizeof(int32_t));
    memcpy(r->x[r->count], x, (size_t)n * sample * sizeof(float));
    memcpy(r->y[r->count], y, (size_t)n * sizeof(int32_t));
    r->count++;
  }
}

static void free_rec(epoch_rec *r) {
  for (int i = 0; i < r->count; i++) {
    free(r->x[i]);
    free(r->y[i]);
  }
}

static int same_batch(const epoch_rec *r, int k, const float *x, const int32_t *y, int n, size_t sample) {
  return k < r->count && r->n[k] == n && memcmp(r->x[k], x, (size_t)n * sample * sizeof(float)) == 0 &&
         memcmp(r->y[k], y, (size_t)n * sizeof(int32_t)) == 0;
}

static void test_batcher_determinism(void) {
  mh_dataset ds = make_ds(57, 3, 6, 6);
  size_t sample = 3 * 6 * 6;
  mh_batcher_config cfg = plain_cfg(8);
  cfg.shuffle = 1;
  cfg.crop_pad = 2;
  cfg.hflip = 1;
  cfg.mean[1] = 0.3f;
  cfg.std[2] = 0.7f;
  mh_batcher *a = NULL, *p = NULL, *q = NULL;
  CHECK_OK(mh_batcher_init(&a, &ds, &cfg));
  cfg.prefetch = 1;
  CHECK_OK(mh_batcher_init(&p, &ds, &cfg));
  CHECK_OK(mh_batcher_init(&q, &ds, &cfg));
  for (int epoch = 0; epoch < 3; epoch++) {
    epoch_rec ra, rp, rq;
    record_epoch(a, epoch, sample, &ra);
    record_epoch(p, epoch, sample, &rp);
    record_epoch(q, epoch, sample, &rq);
    CHECK_EQ_INT(ra.count, 8);
    CHECK_EQ_INT(rp.count, 8);
    int same = ra.count == rp.count && ra.count == rq.count;
    for (int k = 0; same && k < ra.count; k++)
      same = same_batch(&ra, k, rp.x[k], rp.y[k], rp.n[k], sample) &&
             same_batch(&ra, k, rq.x[k], rq.y[k], rq.n[k], sample);
    CHECK(same);

    /* Resuming at batch k reproduces batch k, with and without prefetch, in any order. */
    int resume_ok = 1;
    const float *x;
    const int32_t *y;
    int n;
    for (int k = ra.count - 1; k >= 0; k -= 3) {
      CHECK_OK(mh_batcher_start_epoch(p, epoch, k));
      resume_ok &= mh_batcher_next(p, &x, &y, &n) == 1 && same_batch(&ra, k, x, y, n, sample);
      if (k + 1 < ra.count) resume_ok &= mh_batcher_next(p, &x, &y, &n) == 1 && same_batch(&ra, k + 1, x, y, n, sample);
      CHECK_OK(mh_batcher_start_epoch(a, epoch, k));
      resume_ok &= mh_batcher_next(a, &x, &y, &n) == 1 && same_batch(&ra, k, x, y, n, sample);
    }
    CHECK(resume_ok);
    CHECK_OK(mh_batcher_start_epoch(p, epoch, ra.count));
    CHECK_EQ_INT(mh_batcher_next(p, &x, &y, &n), 0);
    free_rec(&ra);
    free_rec(&rp);
    free_rec(&rq);
  }
  /* A different seed gives different batches. */
  cfg.seed = 99;
  mh_batcher *d = NULL;
  CHECK_OK(mh_batcher_init(&d, &ds, &cfg));
  epoch_rec r0, r1;
  record_epoch(a, 0, sample, &r0);
  record_epoch(d, 0, sample, &r1);
  CHECK(!same_batch(&r0, 0, r1.x[0], r1.y[0], r1.n[0], sample));
  free_rec(&r0);
  free_rec(&r1);
  /* Freeing with the prefetch thread mid-epoch does not hang. */
  const float *x;
  const int32_t *y;
  int n;
  CHECK_OK(mh_batcher_start_epoch(d, 5, 0));
  CHECK_EQ_INT(mh_batcher_next(d, &x, &y, &n), 1);
  mh_batcher_free(d);
  mh_batcher_free(a);
  mh_batcher_free(p);
  mh_batcher_free(q);
  mh_dataset_free(&ds);
}

static void test_batcher_normalise(void) {
  mh_dataset ds = make_ds(4, 3, 2, 3);
  mh_batcher_config cfg = plain_cfg(4);
  float mean[3] = {0.5f, 0.25f, 0.1f}, std[3] = {0.25f, 2.0f, 0.5f};
  memcpy(cfg.mean, mean, sizeof mean);
  memcpy(cfg.std, std, sizeof std);
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  const float *x;
  const int32_t *y;
  int n;
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
  CHECK_EQ_INT(n, 4);
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 3; c++)
      for (int k = 0; k < 6; k++) {
        int idx = (i * 3 + c) * 6 + k;
        double want = (ds.pixels[idx] / 255.0 - mean[c]) / std[c];
        CHECK_NEAR(x[idx], want, 1e-5, 1e-5);
      }
  CHECK_NEAR(x[0], -2.0, 1e-6, 0); /* pixel 0, mean 0.5, std 0.25 */
  mh_batcher_free(b);
  mh_dataset_free(&ds);

  /* Channel statistics: channel 0 = {0, 255, 255, 255}, channel 1 = {51, 51, 51, 51}. */
  ds = make_ds(2, 2, 1, 2);
  uint8_t px[8] = {0, 255, 51, 51, 255, 255, 51, 51};
  memcpy(ds.pixels, px, sizeof px);
  float m[2], s[2];
  mh_dataset_channel_stats(&ds, m, s);
  CHECK_NEAR(m[0], 0.75, 1e-6, 0);
  CHECK_NEAR(s[0], sqrt(0.1875), 1e-6, 0);
  CHECK_NEAR(m[1], 0.2, 1e-6, 0);
  CHECK_NEAR(s[1], 0.0, 1e-6, 0);
  mh_dataset_free(&ds);
}

static void test_batcher_augment(void) {
  int C = 2, H = 5, W = 6, N = 40, P = 2;
  size_t sample = (size_t)C * H * W;
  mh_dataset ds = make_ds(N, C, H, W);
  for (int i = 0; i < N; i++) ds.pixels[i * sample] = (uint8_t)(200 + i % 50); /* keep all pixels nonzero */
  mh_batcher_config cfg = plain_cfg(7);
  cfg.crop_pad = P;
  cfg.hflip = 1;
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  int all_found = 1, flips = 0, shifts = 0, total = 0;
  for (int epoch = 0; epoch < 3; epoch++) {
    CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
    const float *x;
    const int32_t *y;
    int n, pos = 0;
    while (mh_batcher_next(b, &x, &y, &n) == 1) {
      for (int i = 0; i < n; i++, pos++) {
        const uint8_t *src = ds.pixels + (size_t)pos * sample; /* no shuffle: sample = position */
        const float *out = x + (size_t)i * sample;
        int found = 0;
        for (int flip = 0; flip <= 1 && !found; flip++)
          for (int dy = -P; dy <= P && !found; dy++)
            for (int dx = -P; dx <= P && !found; dx++) {
              int match = 1;
              for (int c = 0; c < C && match; c++)
                for (int yy = 0; yy < H && match; yy++)
                  for (int xx = 0; xx < W && match; xx++) {
                    int sy = yy + dy, sx = (flip ? W - 1 - xx : xx) + dx;
                    int v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? src[(c * H + sy) * W + sx] : 0;
                    match = out[(c * H + yy) * W + xx] == v / 255.0f;
                  }
              if (match) {
                found = 1;
                flips += flip;
                shifts += dy != 0 || dx != 0;
              }
            }
        all_found &= found;
        total++;
      }
    }
  }
  mh_batcher_free(b);
  CHECK_EQ_INT(total, 3 * N);
  CHECK(all_found);
  CHECK(flips > total / 5 && flips < total * 4 / 5);
  CHECK(shifts > total / 2);

  /* Flip only: each sample is the original or its exact mirror, same shape. */
  cfg.crop_pad = 0;
  cfg.batch = N;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  const float *x;
  const int32_t *y;
  int n, mirrored = 0, plain = 0, other = 0;
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
  CHECK_EQ_INT(n, N);
  for (int i = 0; i < N; i++) {
    const uint8_t *src = ds.pixels + (size_t)i * sample;
    const float *out = x + (size_t)i * sample;
    int is_plain = 1, is_mirror = 1;
    for (int c = 0; c < C; c++)
      for (int yy = 0; yy < H; yy++)
        for (int xx = 0; xx < W; xx++) {
          float o = out[(c * H + yy) * W + xx];
          is_plain &= o == src[(c * H + yy) * W + xx] / 255.0f;
          is_mirror &= o == src[(c * H + yy) * W + (W - 1 - xx)] / 255.0f;
        }
    if (is_mirror) mirrored++;
    else if (is_plain) plain++;
    else other++;
  }
  CHECK_EQ_INT(other, 0);
  CHECK(mirrored > 0 && plain > 0);
  mh_batcher_free(b);
  mh_dataset_free(&ds);
}

/* Channel statistics are the population mean and standard deviation of pixel/255 per channel (divide by the
 * number of pixels, not one less). The values below are worked out by hand.
 * 1x2x2, two samples: bytes {0, 51, 102, 255} and {51, 51, 153, 153} are /255 {0, .2, .4, 1} and {.2, .2, .6, .6}:
 * sum 3.2 over 8 pixels, mean 0.4; squared deviations sum to 0.72, variance 0.09, std 0.3 (0.72/7 would give
 * 0.3207). 3x1x2, two samples (channel-major within a sample): channel 0 is always 255 (mean 1, std 0);
 * channel 1 is {0, 255, 255, 255} (mean 0.75, variance 0.1875); channel 2 is {51, 102, 153, 51}, i.e.
 * {.2, .4, .6, .2} (mean 0.35, squared deviations .0225 + .0025 + .0625 + .0225 = .11, variance .0275). */
static void test_channel_stats(void) {
  mh_dataset ds = make_ds(2, 1, 2, 2);
  static const uint8_t px1[8] = {0, 51, 102, 255, 51, 51, 153, 153};
  memcpy(ds.pixels, px1, sizeof px1);
  float m[3] = {-1, -1, -1}, s[3] = {-1, -1, -1};
  mh_dataset_channel_stats(&ds, m, s);
  CHECK_NEAR(m[0], 0.4, 1e-6, 0);
  CHECK_NEAR(s[0], 0.3, 1e-6, 0);
  mh_dataset_free(&ds);

  ds = make_ds(2, 3, 1, 2);
  static const uint8_t px3[12] = {255, 255, 0, 255, 51, 102, /* sample 0: c0, c1, c2 */
                                  255, 255, 255, 255, 153, 51}; /* sample 1 */
  memcpy(ds.pixels, px3, sizeof px3);
  mh_dataset_channel_stats(&ds, m, s);
  CHECK_NEAR(m[0], 1.0, 1e-6, 0);
  CHECK_NEAR(s[0], 0.0, 1e-6, 0);
  CHECK_NEAR(m[1], 0.75, 1e-6, 0);
  CHECK_NEAR(s[1], sqrt(0.1875), 1e-6, 0);
  CHECK_NEAR(m[2], 0.35, 1e-6, 0);
  CHECK_NEAR(s[2], sqrt(0.0275), 1e-6, 0);
  mh_dataset_free(&ds);
}

/* Normalisation is x = (pixel/255 - mean[c]) / std[c] with each channel's own mean and std. One 3x1x2 sample,
 * channels {0, 255}, {51, 0}, {255, 102}, means {0.5, 0.2, 0.1}, stds {0.25, 0.4, 0.5}, worked by hand:
 * c0 (0 - .5)/.25 = -2, (1 - .5)/.25 = 2; c1 (.2 - .2)/.4 = 0, (0 - .2)/.4 = -0.5;
 * c2 (1 - .1)/.5 = 1.8, (.4 - .1)/.5 = 0.6. Dropping the mean, the std or a channel index changes some value. */
static void test_batcher_normalise_values(void) {
  mh_dataset ds = make_ds(1, 3, 1, 2);
  static const uint8_t px[6] = {0, 255, 51, 0, 255, 102};
  memcpy(ds.pixels, px, sizeof px);
  mh_batcher_config cfg = plain_cfg(1);
  float mean[3] = {0.5f, 0.2f, 0.1f}, std[3] = {0.25f, 0.4f, 0.5f};
  memcpy(cfg.mean, mean, sizeof mean);
  memcpy(cfg.std, std, sizeof std);
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  const float *x = NULL;
  const int32_t *y;
  int n = 0;
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
  CHECK_EQ_INT(n, 1);
  static const double want[6] = {-2.0, 2.0, 0.0, -0.5, 1.8, 0.6};
  for (int k = 0; x && k < 6; k++) CHECK_NEAR(x[k], want[k], 1e-6, 0);
  mh_batcher_free(b);
  mh_dataset_free(&ds);
}

/* The normalised value of byte v in a channel with this mean and std, computed as the batcher documents it. */
static float norm_px(int v, float mean, float std) { return ((float)v / 255.0f - mean) / std; }

/* Counts the (flip, dy, dx), |dy|, |dx| <= pad, for which `out` is the augmentation of `src`: the crop at
 * offset (dy, dx) of the image padded with pixel value 0, then mirrored if flip, each value normalised (padding
 * included). The last match goes to *fdy, *fdx, *fflip. With pixel values distinct and nonzero within each
 * channel and pad < H, W, at most one candidate can match. */
static int find_aug(const uint8_t *src, const float *out, int C, int H, int W, int pad, const float *mean,
                    const float *std, int *fdy, int *fdx, int *fflip) {
  int matches = 0;
  for (int flip = 0; flip <= 1; flip++)
    for (int dy = -pad; dy <= pad; dy++)
      for (int dx = -pad; dx <= pad; dx++) {
        int match = 1;
        for (int c = 0; c < C && match; c++)
          for (int yy = 0; yy < H && match; yy++)
            for (int xx = 0; xx < W && match; xx++) {
              int sy = yy + dy, sx = (flip ? W - 1 - xx : xx) + dx;
              int v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? src[(c * H + sy) * W + sx] : 0;
              match = fabsf(out[(c * H + yy) * W + xx] - norm_px(v, mean[c], std[c])) <= 1e-4f;
            }
        if (match) {
          matches++;
          *fdy = dy;
          *fdx = dx;
          *fflip = flip;
        }
      }
  return matches;
}

/* n samples of c x h x w whose bytes are distinct and nonzero within each channel (c * 37 + k + i * 5 over
 * k < h * w <= 255 consecutive values mod 255, plus 1), so find_aug identifies the augmentation uniquely. */
static mh_dataset make_distinct_ds(int n, int c, int h, int w) {
  mh_dataset ds = make_ds(n, c, h, w);
  size_t plane = (size_t)h * w;
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (size_t k = 0; k < plane; k++)
        ds.pixels[((size_t)i * c + ch) * plane + k] = (uint8_t)(1 + (ch * 37 + (int)k + i * 5) % 255);
  return ds;
}

/* Random crop: each sample is the crop at an offset (dy, dx) drawn uniformly from [-pad, pad]^2 of the image
 * padded with pixel value 0, and the padding is normalised like any pixel (lut[0] = (0 - mean) / std, not 0).
 * 3x5x6 samples, pad 2, flip on, nonzero means and non-unit stds, 16 epochs of 50 samples (no shuffle, so the
 * sample at position p is sample p): 800 draws over 50 (flip, dy, dx) cells, 16 expected per cell.
 * - Every sample matches exactly one (flip, dy, dx) with normalised padding.
 * - Every cell occurs (an offset range of [-pad, pad - 1] in dy or in dx leaves a row or a column of offsets
 *   empty; so does skipping the crop when dy = 0 and there is no flip), and the table is uniform: Pearson's
 *   chi-square over the 50 cells, 49 degrees of freedom, must stay below 140 (P(chi2_49 > 140) = 1.1e-10).
 * - Flips: about half of 800, bound [300, 500] (binomial sd 14.1, so +-7 sd).
 * - Draws depend on the epoch and the position: the same (flip, dy, dx) at one position in two consecutive
 *   epochs has probability 1/50 (15 of 750 expected, bound 150), and one epoch shows at least 15 distinct ones
 *   (about 32 expected).
 * - Literal padding values: for dy < 0 the first row is padding, (0 - mean) / std = -2, -0.125, -0.2. */
static void test_batcher_crop(void) {
  enum { C = 3, H = 5, W = 6, N = 50, P = 2, EPOCHS = 16 };
  size_t sample = (size_t)C * H * W;
  mh_dataset ds = make_distinct_ds(N, C, H, W);
  mh_batcher_config cfg = plain_cfg(7);
  float mean[3] = {0.5f, 0.25f, 0.1f}, std[3] = {0.25f, 2.0f, 0.5f};
  static const double pad_value[3] = {-2.0, -0.125, -0.2};
  memcpy(cfg.mean, mean, sizeof mean);
  memcpy(cfg.std, std, sizeof std);
  cfg.crop_pad = P;
  cfg.hflip = 1;
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  int table[2][2 * P + 1][2 * P + 1] = {{{0}}}, aug[EPOCHS][N];
  int unique = 1, flips = 0, total = 0, pad_rows = 0, pad_ok = 1;
  for (int epoch = 0; epoch < EPOCHS; epoch++) {
    CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
    const float *x;
    const int32_t *y;
    int n, pos = 0;
    while (mh_batcher_next(b, &x, &y, &n) == 1) {
      for (int i = 0; i < n && pos < N; i++, pos++) {
        const float *out = x + (size_t)i * sample;
        int dy = 0, dx = 0, flip = 0;
        int m = find_aug(ds.pixels + (size_t)pos * sample, out, C, H, W, P, mean, std, &dy, &dx, &flip);
        if (m != 1) {
          unique = 0;
          aug[epoch][pos] = -1 - pos;
          continue;
        }
        table[flip][dy + P][dx + P]++;
        flips += flip;
        aug[epoch][pos] = ((dy + P) * (2 * P + 1) + dx + P) * 2 + flip;
        total++;
        if (dy < 0) {
          pad_rows++;
          for (int c = 0; c < C; c++)
            for (int xx = 0; xx < W; xx++) pad_ok &= fabs(out[c * H * W + xx] - pad_value[c]) <= 1e-6;
        }
      }
    }
  }
  mh_batcher_free(b);
  CHECK(unique);
  CHECK_EQ_INT(total, EPOCHS * N);
  CHECK(pad_rows > 0 && pad_ok);
  int all_cells = 1;
  double chi2 = 0.0, expect = (double)total / (2 * (2 * P + 1) * (2 * P + 1));
  for (int f = 0; f <= 1; f++)
    for (int i = 0; i <= 2 * P; i++)
      for (int j = 0; j <= 2 * P; j++) {
        if (table[f][i][j] == 0) {
          all_cells = 0;
          TL_FAIL("crop (flip %d, dy %d, dx %d) never drawn in %d samples", f, i - P, j - P, total);
        }
        chi2 += (table[f][i][j] - expect) * (table[f][i][j] - expect) / expect;
      }
  CHECK(all_cells);
  if (!(chi2 < 140.0)) TL_FAIL("crops not uniform: chi-square %.1f over 50 cells (49 dof)", chi2);
  if (flips < 300 || flips > 500) TL_FAIL("%d of %d crops flipped, expected about half", flips, total);
  int repeats = 0;
  for (int e = 1; e < EPOCHS; e++)
    for (int p = 0; p < N; p++) repeats += aug[e][p] == aug[e - 1][p];
  CHECK(repeats < 150);
  int distinct = 0;
  for (int p = 0; p < N; p++) {
    int seen = 0;
    for (int q = 0; q < p && !seen; q++) seen = aug[0][q] == aug[0][p];
    distinct += !seen;
  }
  CHECK(distinct >= 15);
  mh_dataset_free(&ds);
}

/* Horizontal flip (crop off): every 3-channel sample is either its normalised original or its exact mirror
 * (column x holds source column W - 1 - x in every row and channel), flipped with p = 0.5: 600 samples
 * (200 per epoch, 3 epochs), 300 flips expected, bound [210, 390] (binomial sd 12.2, so about +-7 sd).
 * With hflip = 0 (the 1-channel configuration), crops still happen but a sample is never mirrored, and with
 * crop off as well every sample is exactly its normalised original. */
static void test_batcher_flip(void) {
  enum { C = 3, H = 4, W = 5, N = 200 };
  size_t sample = (size_t)C * H * W;
  mh_dataset ds = make_distinct_ds(N, C, H, W);
  mh_batcher_config cfg = plain_cfg(64);
  float mean[3] = {0.4f, 0.3f, 0.2f}, std[3] = {0.3f, 0.6f, 1.5f};
  memcpy(cfg.mean, mean, sizeof mean);
  memcpy(cfg.std, std, sizeof std);
  cfg.hflip = 1;
  mh_batcher *b = NULL;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  int flips = 0, total = 0, unique = 1;
  for (int epoch = 0; epoch < 3; epoch++) {
    CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
    const float *x;
    const int32_t *y;
    int n, pos = 0;
    while (mh_batcher_next(b, &x, &y, &n) == 1) {
      for (int i = 0; i < n && pos < N; i++, pos++, total++) { /* no shuffle: the sample at pos is sample pos */
        int dy = 0, dx = 0, flip = 0;
        unique &= find_aug(ds.pixels + (size_t)pos * sample, x + (size_t)i * sample, C, H, W, 0, mean, std, &dy,
                           &dx, &flip) == 1;
        flips += flip;
      }
    }
  }
  mh_batcher_free(b);
  CHECK(unique);
  CHECK_EQ_INT(total, 3 * N);
  if (flips < 210 || flips > 390) TL_FAIL("%d of %d samples flipped, expected about half", flips, total);
  mh_dataset_free(&ds);

  /* 1 channel, hflip = 0: crops at pad 1 but never a mirror. */
  enum { N1 = 60, H1 = 4, W1 = 5 };
  ds = make_distinct_ds(N1, 1, H1, W1);
  cfg = plain_cfg(N1);
  cfg.mean[0] = 0.3f;
  cfg.std[0] = 0.6f;
  cfg.crop_pad = 1;
  cfg.hflip = 0;
  int never = 1, shifted = 0;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  for (int epoch = 0; epoch < 4; epoch++) {
    CHECK_OK(mh_batcher_start_epoch(b, epoch, 0));
    const float *x;
    const int32_t *y;
    int n;
    CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
    for (int i = 0; i < n; i++) {
      int dy = 0, dx = 0, flip = 1;
      int m = find_aug(ds.pixels + (size_t)i * H1 * W1, x + (size_t)i * H1 * W1, 1, H1, W1, 1, cfg.mean, cfg.std,
                       &dy, &dx, &flip);
      never &= m == 1 && flip == 0;
      shifted += dy != 0 || dx != 0;
    }
  }
  mh_batcher_free(b);
  CHECK(never);
  CHECK(shifted > 4 * N1 / 2); /* 8/9 of the draws shift */

  /* Neither crop nor flip: the plain normalised sample. */
  cfg.crop_pad = 0;
  CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
  const float *x;
  const int32_t *y;
  int n, same = 1;
  CHECK_EQ_INT(mh_batcher_next(b, &x, &y, &n), 1);
  for (int i = 0; i < n * H1 * W1; i++) same &= x[i] == norm_px(ds.pixels[i], cfg.mean[0], cfg.std[0]);
  CHECK(same);
  mh_batcher_free(b);
  mh_dataset_free(&ds);
}

/* The shuffle is a uniform random permutation (Fisher-Yates). Observed through the batcher: 6 samples, sample i
 * has first byte i and label i, one batch of 6 per epoch, 4 seeds x 1000 epochs = K = 4000 permutations.
 * count[pos][sample] then has mean K/6 in every cell. For uniform permutations the cell deviations live in the
 * (n-1)^2-dimensional space of zero row and column sums with covariance K/(n-1) times the projection onto it,
 * so T = (n-1)/K * sum (count - K/n)^2 (Pearson's statistic scaled by (n-1)/n) is chi-square with
 * (n-1)^2 = 25 degrees of freedom; the bound T < 100 has a false-alarm probability of 6.3e-11.
 * Sattolo's algorithm (cyclic permutations only, never a fixed point) gives T of about K = 4000, a naive swap
 * with any index about 2000.
 * Fixed points: a uniform permutation has one on average (variance 1), and none with probability
 * D6/6! = 265/720, so over K the totals are 4000 +- 400 (6.3 sd) and 1472 +- 180 (5.9 sd).
 * The order does not depend on the batch size: batch 1 yields the same sequence. */
static void test_batcher_shuffle_uniform(void) {
  enum { N = 6, SEEDS = 4, EPOCHS = 1000 };
  mh_dataset ds = make_ds(N, 1, 1, 2);
  long count[N][N] = {{0}};
  int perms = 0, fixed = 0, deranged = 0, valid = 1;
  for (int s = 0; s < SEEDS; s++) {
    mh_batcher_config cfg = plain_cfg(N);
    cfg.shuffle = 1;
    cfg.seed = 1000 + (uint64_t)s * 7919;
    mh_batcher *b = NULL;
    CHECK_OK(mh_batcher_init(&b, &ds, &cfg));
    if (!b) break;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
      const float *x;
      const int32_t *y;
      int n = 0, seen[N] = {0}, fp = 0;
      if (mh_batcher_start_epoch(b, epoch, 0) != 0 || mh_batcher_next(b, &x, &y, &n) != 1 || n != N) {
        valid = 0;
        break;
      }
      for (int i = 0; i < N; i++) {
        int idx = y[i];
        if (idx < 0 || idx >= N || lrintf(x[2 * i] * 255.0f) != idx || seen[idx]++) {
          valid = 0;
          continue;
        }
        count[i][idx]++;
        fp += idx == i;
      }
      fixed += fp;
      deranged += fp == 0;
      perms++;
    }
    mh_batcher_free(b);
  }
  CHECK(valid);
  CHECK_EQ_INT(perms, SEEDS * EPOCHS);
  double k = perms, t = 0.0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) t += (count[i][j] - k / N) * (count[i][j] - k / N);
  t *= (N - 1) / k;
  if (!(t < 100.0)) {
    TL_FAIL("shuffle not uniform: T = %.1f (chi-square, 25 dof, bound 100)", t);
    for (int i = 0; i < N; i++)
      fprintf(stderr, "  position %d: %ld %ld %ld %ld %ld %ld\n", i, count[i][0], count[i][1], count[i][2],
              count[i][3], count[i][4], count[i][5]);
  }
  if (fixed < 3600 || fixed > 4400)
    TL_FAIL("%d fixed points in %d permutations, expected about %d", fixed, perms, perms);
  if (deranged < 1292 || deranged > 1652)
    TL_FAIL("%d of %d permutations without a fixed point, expected about 1472", deranged, perms);

  /* Batch 1 sees the same order as batch 6. */
  mh_batcher_config c1 = plain_cfg(1), c6 = plain_cfg(N);
  c1.shuffle = c6.shuffle = 1;
  c1.seed = c6.seed = 77;
  mh_batcher *b1 = NULL, *b6 = NULL;
  CHECK_OK(mh_batcher_init(&b1, &ds, &c1));
  CHECK_OK(mh_batcher_init(&b6, &ds, &c6));
  int same = b1 && b6;
  for (int epoch = 0; same && epoch < 10; epoch++) {
    const float *x;
    const int32_t *y6, *y1;
    int n;
    same = mh_batcher_start_epoch(b1, epoch, 0) == 0 && mh_batcher_start_epoch(b6, epoch, 0) == 0 &&
           mh_batcher_next(b6, &x, &y6, &n) == 1 && n == N;
    int order[N];
    for (int i = 0; same && i < N; i++) order[i] = y6[i];
    for (int i = 0; same && i < N; i++) same = mh_batcher_next(b1, &x, &y1, &n) == 1 && n == 1 && y1[0] == order[i];
  }
  CHECK(same);
  mh_batcher_free(b1);
  mh_batcher_free(b6);
  mh_dataset_free(&ds);
}

/* ---- Fashion-MNIST, when installed -------------------------------------------------------- */

static void test_fashion_mnist(void) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  struct stat sb;
  if (stat(dir, &sb) != 0) {
    printf("note: %s not installed, skipping the real-data check\n", dir);
    return;
  }
  mh_dataset tr, te;
  CHECK_OK(mh_dataset_load_dir(dir, &tr, &te));
  CHECK_EQ_INT(tr.n, 60000);
  CHECK_EQ_INT(te.n, 10000);
  CHECK_EQ_INT(tr.c, 1);
  CHECK_EQ_INT(tr.h, 28);
  CHECK_EQ_INT(tr.w, 28);
  CHECK_EQ_INT(te.h, 28);
  float mean = 0, std = 0;
  if (tr.n > 0) mh_dataset_channel_stats(&tr, &mean, &std);
  CHECK_NEAR(mean, 0.286, 0.001, 0);
  CHECK_NEAR(std, 0.353, 0.002, 0);
  int hist[10] = {0};
  for (int i = 0; i < tr.n; i++) hist[tr.labels[i]]++;
  for (int c = 0; c < 10; c++) CHECK_EQ_INT(hist[c], 6000);
  /* One shuffled, prefetched epoch covers the training set. */
  mh_batcher_config cfg = plain_cfg(256);
  cfg.shuffle = 1;
  cfg.prefetch = 1;
  cfg.mean[0] = mean;
  cfg.std[0] = std;
  mh_batcher *b = NULL;
  if (tr.n > 0) {
    CHECK_OK(mh_batcher_init(&b, &tr, &cfg));
    const float *x;
    const int32_t *y;
    int n, total = 0;
    while (mh_batcher_next(b, &x, &y, &n) == 1) total += n;
    CHECK_EQ_INT(total, 60000);
    mh_batcher_free(b);
  }
  mh_dataset_free(&tr);
  mh_dataset_free(&te);
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/mh_test_data_XXXXXX");
  if (!mkdtemp(g_tmp)) {
    fprintf(stderr, "cannot create a temporary directory\n");
    return 1;
  }
  test_idx_parse();
  test_idx_bounds();
  test_gunzip();
  test_idx_files();
  test_cifar();
  test_load_dir();
  test_load_dir_shape_mismatch();
  test_batcher_coverage();
  test_batcher_determinism();
  test_batcher_normalise();
  test_batcher_augment();
  test_channel_stats();
  test_batcher_normalise_values();
  test_batcher_crop();
  test_batcher_flip();
  test_batcher_shuffle_uniform();
  test_fashion_mnist();
  rm_tree(g_tmp);
  return tl_exit();
}
