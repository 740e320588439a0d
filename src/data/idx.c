/* IDX (MNIST / Fashion-MNIST) parsing, whole-file reading with transparent gunzip, and the
 * dataset helpers (free, per-channel statistics). Deliberately not a general IDX reader: only
 * u8 images (0x803, 3 dims) and u8 labels (0x801, 1 dim); no streaming, no memory mapping. */
#define _POSIX_C_SOURCE 200809L
#define ZLIB_CONST

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/status.h"
#include "data/dataset.h"
#include "data/gz.h"

#define MH_IDX_MAGIC_IMAGES 0x00000803u
#define MH_IDX_MAGIC_LABELS 0x00000801u
#define MH_IDX_MAX_SAMPLES (1u << 24)
#define MH_IDX_MAX_SIDE 4096u
/* Whole-file caps for mh_dataset_load_idx: 1 GiB of pixels, 2^24 labels. */
#define MH_IDX_MAX_IMAGE_FILE ((size_t)16 + ((size_t)1 << 30))
#define MH_IDX_MAX_LABEL_FILE ((size_t)8 + MH_IDX_MAX_SAMPLES)

static const char *nm(const char *name) { return name ? name : "<buffer>"; }

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Adds with saturation at SIZE_MAX. */
static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

void mh_dataset_free(mh_dataset *ds) {
  if (!ds) return;
  free(ds->pixels);
  free(ds->labels);
  memset(ds, 0, sizeof *ds);
}

int mh_idx_parse_images(const uint8_t *buf, size_t len, const char *name, mh_dataset *out) {
  if (!out) return mh__error(MH_ERR_INVALID_ARG, "%s: mh_idx_parse_images: NULL output", nm(name));
  memset(out, 0, sizeof *out);
  if (!buf && len) return mh__error(MH_ERR_INVALID_ARG, "%s: NULL buffer", nm(name));
  if (len < 4) return mh__error(MH_ERR_FORMAT, "%s: %zu bytes is too short for an IDX header", nm(name), len);
  uint32_t magic = be32(buf);
  if (magic != MH_IDX_MAGIC_IMAGES)
    return mh__error(MH_ERR_FORMAT, "%s: bad magic 0x%08x (expected 0x%08x, IDX u8 images with 3 dims)",
                     nm(name), (unsigned)magic, MH_IDX_MAGIC_IMAGES);
  if (len < 16)
    return mh__error(MH_ERR_FORMAT, "%s: truncated header (%zu bytes, need 16)", nm(name), len);
  uint32_t n = be32(buf + 4), rows = be32(buf + 8), cols = be32(buf + 12);
  if (n == 0 || n > MH_IDX_MAX_SAMPLES)
    return mh__error(MH_ERR_FORMAT, "%s: image count %u out of range (1..%u)", nm(name), (unsigned)n,
                     MH_IDX_MAX_SAMPLES);
  if (rows == 0 || rows > MH_IDX_MAX_SIDE || cols == 0 || cols > MH_IDX_MAX_SIDE)
    return mh__error(MH_ERR_FORMAT, "%s: image size %ux%u out of range (1..%u per side)", nm(name),
                     (unsigned)rows, (unsigned)cols, MH_IDX_MAX_SIDE);
  /* n * rows * cols <= 2^24 * 2^12 * 2^12 = 2^48: exact in uint64_t. */
  uint64_t body = (uint64_t)n * rows * cols;
  uint64_t have = (uint64_t)(len - 16);
  if (have < body)
    return mh__error(MH_ERR_FORMAT, "%s: truncated: %u images of %ux%u need %llu data bytes, file has %llu",
                     nm(name), (unsigned)n, (unsigned)rows, (unsigned)cols, (unsigned long long)body,
                     (unsigned long long)have);
  if (have > body)
    return mh__error(MH_ERR_FORMAT, "%s: %llu extra bytes after %u images of %ux%u", nm(name),
                     (unsigned long long)(have - body), (unsigned)n, (unsigned)rows, (unsigned)cols);
  /* body == len - 16 here, so it fits size_t. */
  uint8_t *px = malloc(body ? (size_t)body : 1);
  if (!px) return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %llu bytes of pixels", nm(name),
                            (unsigned long long)body);
  memcpy(px, buf + 16, (size_t)body);
  out->n = (int)n;
  out->c = 1;
  out->h = (int)rows;
  out->w = (int)cols;
  out->n_classes = 10;
  out->pixels = px;
  out->labels = NULL;
  return MH_OK;
}

int mh_idx_parse_labels(const uint8_t *buf, size_t len, const char *name, uint8_t **labels, int *n) {
  if (!labels || !n) return mh__error(MH_ERR_INVALID_ARG, "%s: mh_idx_parse_labels: NULL output", nm(name));
  *labels = NULL;
  *n = 0;
  if (!buf && len) return mh__error(MH_ERR_INVALID_ARG, "%s: NULL buffer", nm(name));
  if (len < 4) return mh__error(MH_ERR_FORMAT, "%s: %zu bytes is too short for an IDX header", nm(name), len);
  uint32_t magic = be32(buf);
  if (magic != MH_IDX_MAGIC_LABELS)
    return mh__error(MH_ERR_FORMAT, "%s: bad magic 0x%08x (expected 0x%08x, IDX u8 labels with 1 dim)",
                     nm(name), (unsigned)magic, MH_IDX_MAGIC_LABELS);
  if (len < 8) return mh__error(MH_ERR_FORMAT, "%s: truncated header (%zu bytes, need 8)", nm(name), len);
  uint32_t count = be32(buf + 4);
  if (count == 0 || count > MH_IDX_MAX_SAMPLES)
    return mh__error(MH_ERR_FORMAT, "%s: label count %u out of range (1..%u)", nm(name), (unsigned)count,
                     MH_IDX_MAX_SAMPLES);
  size_t have = len - 8;
  if (have < count)
    return mh__error(MH_ERR_FORMAT, "%s: truncated: %u labels need %u data bytes, file has %zu", nm(name),
                     (unsigned)count, (unsigned)count, have);
  if (have > count)
    return mh__error(MH_ERR_FORMAT, "%s: %zu extra bytes after %u labels", nm(name), have - count,
                     (unsigned)count);
  uint8_t *lb = malloc(count);
  if (!lb) return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %u labels", nm(name), (unsigned)count);
  memcpy(lb, buf + 8, count);
  *labels = lb;
  *n = (int)count;
  return MH_OK;
}

/* ---- gunzip ------------------------------------------------------------------------------ */

int mh__gunzip(const uint8_t *in, size_t in_len, size_t max_out, const char *name, uint8_t **out,
               size_t *out_len) {
  if (!out || !out_len) return mh__error(MH_ERR_INVALID_ARG, "%s: gunzip: NULL output", nm(name));
  *out = NULL;
  *out_len = 0;
  if (!in && in_len) return mh__error(MH_ERR_INVALID_ARG, "%s: gunzip: NULL input", nm(name));
  if (!mh__is_gzip(in, in_len)) return mh__error(MH_ERR_FORMAT, "%s: not gzip data (no 1f 8b magic)", nm(name));

  /* One byte of room past the cap tells "exactly max_out" apart from "more than max_out". */
  size_t limit = sat_add(max_out, 1);
  size_t cap = in_len <= limit / 4 ? in_len * 4 : limit;
  if (cap < 4096) cap = limit < 4096 ? limit : 4096;
  uint8_t *buf = malloc(cap);
  if (!buf) return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu bytes for gunzip", nm(name), cap);

  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {
    free(buf);
    return mh__error(MH_ERR_NOMEM, "%s: cannot initialise zlib", nm(name));
  }
  size_t in_pos = 0, out_pos = 0;
  int st = MH_OK;
  for (;;) {
    if (out_pos == cap) {
      if (cap >= limit) {
        st = mh__error(MH_ERR_FORMAT, "%s: decompresses to more than %zu bytes", nm(name), max_out);
        break;
      }
      size_t ncap = cap <= limit / 2 ? cap * 2 : limit;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) {
        st = mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu bytes for gunzip", nm(name), ncap);
        break;
      }
      buf = nb;
      cap = ncap;
    }
    size_t in_chunk = in_len - in_pos, out_chunk = cap - out_pos;
    if (in_chunk > UINT_MAX) in_chunk = UINT_MAX;
    if (out_chunk > UINT_MAX) out_chunk = UINT_MAX;
    zs.next_in = in + in_pos;
    zs.avail_in = (uInt)in_chunk;
    zs.next_out = buf + out_pos;
    zs.avail_out = (uInt)out_chunk;
    int r = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;
    if (out_pos > max_out) {
      st = mh__error(MH_ERR_FORMAT, "%s: decompresses to more than %zu bytes", nm(name), max_out);
      break;
    }
    if (r == Z_STREAM_END) {
      if (in_pos == in_len) break;
      if (mh__is_gzip(in + in_pos, in_len - in_pos)) { /* another gzip member follows */
        if (inflateReset(&zs) != Z_OK) {
          st = mh__error(MH_ERR_INTERNAL, "%s: zlib reset failed", nm(name));
          break;
        }
        continue;
      }
      st = mh__error(MH_ERR_FORMAT, "%s: %zu trailing bytes after the gzip data", nm(name), in_len - in_pos);
      break;
    }
    if (r == Z_OK) continue; /* progress was made */
    if (r == Z_BUF_ERROR) {
      if (out_pos == cap) continue; /* needs more room: grow */
      if (in_pos == in_len) {
        st = mh__error(MH_ERR_FORMAT, "%s: truncated gzip data (ends after %zu compressed bytes)", nm(name),
                       in_len);
        break;
      }
      st = mh__error(MH_ERR_INTERNAL, "%s: zlib made no progress", nm(name));
      break;
    }
    if (r == Z_MEM_ERROR) {
      st = mh__error(MH_ERR_NOMEM, "%s: zlib out of memory", nm(name));
      break;
    }
    st = mh__error(MH_ERR_FORMAT, "%s: corrupt gzip data at compressed byte %zu: %s", nm(name), in_pos,
                   zs.msg ? zs.msg : "invalid stream");
    break;
  }
  inflateEnd(&zs);
  if (st < 0) {
    free(buf);
    return st;
  }
  if (out_pos < cap) { /* give back the slack; keep the old block if shrinking fails */
    uint8_t *nb = realloc(buf, out_pos ? out_pos : 1);
    if (nb) buf = nb;
  }
  *out = buf;
  *out_len = out_pos;
  return MH_OK;
}

/* ---- files ------------------------------------------------------------------------------- */

int mh_read_file_maybe_gz(const char *path, size_t max_bytes, uint8_t **buf, size_t *len) {
  if (!buf || !len) return mh__error(MH_ERR_INVALID_ARG, "%s: mh_read_file_maybe_gz: NULL output", nm(path));
  *buf = NULL;
  *len = 0;
  if (!path) return mh__error(MH_ERR_INVALID_ARG, "mh_read_file_maybe_gz: NULL path");
  /* A gzip file of incompressible data is slightly larger than its content. */
  size_t raw_max = sat_add(sat_add(max_bytes, max_bytes / 8), 65536);
  if (raw_max > SIZE_MAX / 2) raw_max = SIZE_MAX / 2;

  FILE *f = fopen(path, "rb");
  if (!f) return mh__error(MH_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 65536;
  if (fseek(f, 0, SEEK_END) == 0) {
    long end = ftell(f);
    if (end > 0 && (unsigned long)end < raw_max) cap = (size_t)end + 1;
    else if (end > 0) cap = raw_max + 1;
  }
  if (fseek(f, 0, SEEK_SET) != 0) clearerr(f);
  uint8_t *raw = malloc(cap);
  if (!raw) {
    fclose(f);
    return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
  }
  size_t n = 0;
  int st = MH_OK;
  for (;;) {
    if (n > raw_max) {
      st = mh__error(MH_ERR_FORMAT, "%s: file is larger than %zu bytes", path, raw_max);
      break;
    }
    if (n == cap) {
      size_t ncap = cap <= (raw_max + 1) / 2 ? cap * 2 : raw_max + 1;
      uint8_t *nr = realloc(raw, ncap);
      if (!nr) {
        st = mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
        break;
      }
      raw = nr;
      cap = ncap;
    }
    size_t got = fread(raw + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) st = mh__error(MH_ERR_IO, "%s: read failed: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st < 0) {
    free(raw);
    return st;
  }
  if (mh__is_gzip(raw, n)) {
    st = mh__gunzip(raw, n, max_bytes, path, buf, len);
    free(raw);
    return st;
  }
  if (n > max_bytes) {
    free(raw);
    return mh__error(MH_ERR_FORMAT, "%s: file is larger than %zu bytes", path, max_bytes);
  }
  *buf = raw;
  *len = n;
  return MH_OK;
}

int mh_dataset_load_idx(mh_dataset *ds, const char *images_path, const char *labels_path) {
  if (!ds) return mh__error(MH_ERR_INVALID_ARG, "mh_dataset_load_idx: NULL dataset");
  memset(ds, 0, sizeof *ds);
  if (!images_path || !labels_path) return mh__error(MH_ERR_INVALID_ARG, "mh_dataset_load_idx: NULL path");
  uint8_t *buf = NULL;
  size_t len = 0;
  mh_dataset tmp;
  MH_TRY(mh_read_file_maybe_gz(images_path, MH_IDX_MAX_IMAGE_FILE, &buf, &len));
  int st = mh_idx_parse_images(buf, len, images_path, &tmp);
  free(buf);
  if (st < 0) return st;

  uint8_t *labels = NULL;
  int n_labels = 0;
  st = mh_read_file_maybe_gz(labels_path, MH_IDX_MAX_LABEL_FILE, &buf, &len);
  if (st == MH_OK) {
    st = mh_idx_parse_labels(buf, len, labels_path, &labels, &n_labels);
    free(buf);
  }
  if (st == MH_OK && n_labels != tmp.n)
    st = mh__error(MH_ERR_FORMAT, "%s has %d labels but %s has %d images", labels_path, n_labels,
                   images_path, tmp.n);
  for (int i = 0; st == MH_OK && i < n_labels; i++)
    if (labels[i] >= tmp.n_classes)
      st = mh__error(MH_ERR_FORMAT, "%s: label %u at index %d is out of range (0..%d)", labels_path,
                     (unsigned)labels[i], i, tmp.n_classes - 1);
  if (st < 0) {
    free(labels);
    mh_dataset_free(&tmp);
    return st;
  }
  tmp.labels = labels;
  tmp.n_classes = 1; /* the classes the labels use (a subset's relabelled classes may be fewer than 10) */
  for (int i = 0; i < n_labels; i++)
    if (labels[i] + 1 > tmp.n_classes) tmp.n_classes = labels[i] + 1;
  *ds = tmp;
  return MH_OK;
}

void mh_dataset_channel_stats(const mh_dataset *ds, float *mean, float *std) {
  if (!ds || !mean || !std || ds->c <= 0) return;
  int c = ds->c;
  size_t plane = (size_t)ds->h * (size_t)ds->w;
  for (int ch = 0; ch < c; ch++) {
    mean[ch] = 0.0f;
    std[ch] = 0.0f;
  }
  if (!ds->pixels || ds->n <= 0 || ds->h <= 0 || ds->w <= 0) return;
  /* A histogram per channel makes the sums exact and the variance a stable two-pass one. */
  for (int ch = 0; ch < c; ch++) {
    uint64_t hist[256] = {0};
    for (int i = 0; i < ds->n; i++) {
      const uint8_t *p = ds->pixels + ((size_t)i * (size_t)c + (size_t)ch) * plane;
      for (size_t k = 0; k < plane; k++) hist[p[k]]++;
    }
    double count = (double)ds->n * (double)plane, sum = 0.0;
    for (int v = 0; v < 256; v++) sum += (double)hist[v] * (v / 255.0);
    double m = sum / count, var = 0.0;
    for (int v = 0; v < 256; v++) {
      double d = v / 255.0 - m;
      var += (double)hist[v] * d * d;
    }
    mean[ch] = (float)m;
    std[ch] = (float)sqrt(var / count);
  }
}
