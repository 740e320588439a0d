/* Safetensors writer (atomic temp-file + fsync + rename) and a strict reader that treats every file
 * as hostile, with its own schema-directed JSON parser (bounded nesting, no recursion).
 * Deliberately not: a general JSON library, mmap/lazy loading, or F16/BF16/BOOL/U16+ dtypes. */
#define _POSIX_C_SOURCE 200809L

#include "train/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

#define ST_MAX_HEADER 100000000u /* the reference implementation's 100 MB header limit */
#define ST_ALIGN 64              /* reader: every tensor's data pointer is aligned to this */

struct mh_st_file {
  mh_st_tensor *tensors; /* in header order */
  int n_tensors;
  const mh_st_tensor **by_name; /* sorted by name, for mh_st_find */
  mh_st_meta *meta;             /* sorted by key, for mh_st_meta_get */
  int n_meta;
  void *data; /* one aligned block holding every tensor's bytes */
};

/* ---- shared helpers ----------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or > U+10FFFF),
 * or 0 when the bytes there are not one. */
static size_t st_utf8_seq(const uint8_t *p, const uint8_t *end) {
  uint8_t c = p[0], lo = 0x80, hi = 0xBF;
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

static int st_utf8_valid(const char *s) {
  const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
  while (p < end) {
    size_t n = st_utf8_seq(p, end);
    if (!n) return 0;
    p += n;
  }
  return 1;
}

/* Copies a (valid UTF-8) name for an error message: control characters become '?', and long
 * names are cut at a character boundary with "...". */
static const char *st_printable(char *out, size_t cap, const char *s) {
  size_t n = strlen(s), limit = cap - 4, i;
  int cut = 0;
  if (n > limit) {
    n = limit;
    while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80) n--;
    cut = 1;
  }
  for (i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    out[i] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
  }
  if (cut) memcpy(out + i, "...", 3), i += 3;
  out[i] = 0;
  return out;
}

static void st_fmt_shape(char *out, size_t cap, const int64_t *shape, int ndim) {
  size_t used = 0;
  out[0] = 0;
  used += (size_t)snprintf(out, cap, "[");
  for (int i = 0; i < ndim && used < cap; i++)
    used += (size_t)snprintf(out + used, cap - used, "%s%" PRId64, i ? ", " : "", shape[i]);
  if (used < cap) snprintf(out + used, cap - used, "]");
}

/* product(shape) * size, or 0 with *ok = 0 on overflow of 64 bits. */
static uint64_t st_nbytes(const int64_t *shape, int ndim, size_t size, int *ok) {
  uint64_t n = 1;
  *ok = 1;
  for (int i = 0; i < ndim; i++) {
    uint64_t d = (uint64_t)shape[i];
    if (d != 0 && n > UINT64_MAX / d) {
      *ok = 0;
      return 0;
    }
    n *= d;
  }
  if (n > UINT64_MAX / size) {
    *ok = 0;
    return 0;
  }
  return n * size;
}

static int st_cmp_tensor_name(const void *a, const void *b) {
  const mh_st_tensor *x = *(const mh_st_tensor *const *)a, *y = *(const mh_st_tensor *const *)b;
  return strcmp(x->name, y->name);
}

static int st_cmp_meta_key(const void *a, const void *b) {
  return strcmp(((const mh_st_meta *)a)->key, ((const mh_st_meta *)b)->key);
}

static int st_cmp_meta_ptr_key(const void *a, const void *b) {
  return strcmp((*(const mh_st_meta *const *)a)->key, (*(const mh_st_meta *const *)b)->key);
}

/* ---- writer --------------------------------------------------------------------------------- */

typedef struct st_buf {
  char *p;
  size_t n, cap;
  int oom;
} st_buf;

static void sb_put(st_buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (n > b->cap - b->n) {
    size_t cap = b->cap ? b->cap : 256;
    while (n > cap - b->n) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return;
      }
      cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_puts(st_buf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(st_buf *b, uint64_t v) {
  char tmp[24];
  sb_put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%" PRIu64, v));
}

/* A JSON string literal: quotes, backslashes and control characters escaped; the rest (already
 * validated UTF-8) copied as is. */
static void sb_json_str(st_buf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const char *run = s;; s++) {
    uint8_t c = (uint8_t)*s;
    if (c != 0 && c >= 0x20 && c != '"' && c != '\\') continue;
    sb_put(b, run, (size_t)(s - run));
    run = s + 1;
    if (c == 0) break;
    char esc[8];
    switch (c) {
      case '"': sb_put(b, "\\\"", 2); break;
      case '\\': sb_put(b, "\\\\", 2); break;
      case '\b': sb_put(b, "\\b", 2); break;
      case '\f': sb_put(b, "\\f", 2); break;
      case '\n': sb_put(b, "\\n", 2); break;
      case '\r': sb_put(b, "\\r", 2); break;
      case '\t': sb_put(b, "\\t", 2); break;
      default: sb_put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c)); break;
    }
  }
  sb_put(b, "\"", 1);
}

static int st_check_write_tensor(const char *path, const mh_st_tensor *t, int i) {
  char pn[80], sh[200];
  if (!memchr(t->name, 0, MH_ST_MAX_NAME))
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor %d: name is not NUL-terminated within %d bytes", path, i,
                     MH_ST_MAX_NAME);
  if (!st_utf8_valid(t->name))
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor %d: name is not valid UTF-8", path, i);
  st_printable(pn, sizeof pn, t->name);
  if (strcmp(t->name, "__metadata__") == 0)
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor %d: the name '__metadata__' is reserved", path, i);
  int dt = (int)t->dtype;
  if (dt < (int)MH_DTYPE_F32 || dt > (int)MH_DTYPE_F64)
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor '%s': unknown dtype %d", path, pn, dt);
  if (t->ndim < 0 || t->ndim > MH_ST_MAX_DIMS)
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor '%s': ndim %d is outside [0, %d]", path, pn, t->ndim,
                     MH_ST_MAX_DIMS);
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] < 0)
      return mh__error(MH_ERR_INVALID_ARG, "%s: tensor '%s': dimension %d is negative (%" PRId64 ")", path,
                       pn, d, t->shape[d]);
  int ok;
  uint64_t want = st_nbytes(t->shape, t->ndim, mh_dtype_size(t->dtype), &ok);
  st_fmt_shape(sh, sizeof sh, t->shape, t->ndim);
  if (!ok || want != (uint64_t)t->nbytes)
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor '%s': nbytes %zu does not match shape %s of %s", path,
                     pn, t->nbytes, sh, mh_dtype_name(t->dtype));
  if (t->nbytes > 0 && !t->data)
    return mh__error(MH_ERR_INVALID_ARG, "%s: tensor '%s': data is NULL", path, pn);
  return 0;
}

static int st_check_write_args(const char *path, const mh_st_tensor *tensors, int n_tensors,
                               const mh_st_meta *meta, int n_meta) {
  char pn[80];
  if (n_tensors < 0 || (n_tensors > 0 && !tensors))
    return mh__error(MH_ERR_INVALID_ARG, "%s: invalid tensor list (%d tensors)", path, n_tensors);
  if (n_meta < 0 || (n_meta > 0 && !meta))
    return mh__error(MH_ERR_INVALID_ARG, "%s: invalid metadata list (%d entries)", path, n_meta);
  for (int i = 0; i < n_tensors; i++) MH_TRY(st_check_write_tensor(path, &tensors[i], i));
  for (int i = 0; i < n_meta; i++) {
    if (!meta[i].key || !meta[i].value)
      return mh__error(MH_ERR_INVALID_ARG, "%s: metadata entry %d has a NULL key or value", path, i);
    if (!st_utf8_valid(meta[i].key) || !st_utf8_valid(meta[i].value))
      return mh__error(MH_ERR_INVALID_ARG, "%s: metadata entry %d is not valid UTF-8", path, i);
  }

  /* Duplicates: sort pointers, compare neighbours. */
  int n_max = n_tensors > n_meta ? n_tensors : n_meta;
  if (n_max < 2) return 0;
  const void **ptrs = malloc((size_t)n_max * sizeof *ptrs);
  if (!ptrs) return mh__error(MH_ERR_NOMEM, "%s: out of memory checking names", path);
  int st = 0;
  for (int i = 0; i < n_tensors; i++) ptrs[i] = &tensors[i];
  qsort(ptrs, (size_t)n_tensors, sizeof *ptrs, st_cmp_tensor_name);
  for (int i = 1; i < n_tensors && !st; i++) {
    const mh_st_tensor *a = ptrs[i - 1], *b = ptrs[i];
    if (strcmp(a->name, b->name) == 0)
      st = mh__error(MH_ERR_INVALID_ARG, "%s: tensor name '%s' is used twice", path,
                     st_printable(pn, sizeof pn, a->name));
  }
  for (int i = 0; i < n_meta && !st; i++) ptrs[i] = &meta[i];
  if (!st) qsort(ptrs, (size_t)n_meta, sizeof *ptrs, st_cmp_meta_ptr_key);
  for (int i = 1; i < n_meta && !st; i++) {
    const mh_st_meta *a = ptrs[i - 1], *b = ptrs[i];
    if (strcmp(a->key, b->key) == 0)
      st = mh__error(MH_ERR_INVALID_ARG, "%s: metadata key '%s' is used twice", path,
                     st_printable(pn, sizeof pn, a->key));
  }
  free(ptrs);
  return st;
}

/* Best effort: makes the rename itself durable. A failure here cannot undo the rename, so it is
 * not reported. */
static void st_sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  if (slash && n == 0) n = 1; /* "/file" lives in "/" */
  char *dir = malloc(n + 1);
  if (!dir) return;
  memcpy(dir, slash ? path : ".", n);
  dir[n] = 0;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Writes length, header and data to the open temporary and makes them durable; returns the
 * name of the step that failed (errno set), or NULL. */
static const char *st_write_image(FILE *f, const st_buf *h, const mh_st_tensor *tensors, int n) {
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h->n >> (8 * i));
  if (fwrite(len8, 1, 8, f) != 8 || fwrite(h->p, 1, h->n, f) != h->n) return "write";
  for (int i = 0; i < n; i++)
    if (tensors[i].nbytes && fwrite(tensors[i].data, 1, tensors[i].nbytes, f) != tensors[i].nbytes)
      return "write";
  if (fflush(f) != 0) return "flush";
  if (fsync(fileno(f)) != 0) return "fsync";
  return NULL;
}

int mh_st_write(const char *path, const mh_st_tensor *tensors, int n_tensors, const mh_st_meta *meta,
                int n_meta) {
  if (!path || !*path) return mh__error(MH_ERR_INVALID_ARG, "mh_st_write: no path given");
  MH_TRY(st_check_write_args(path, tensors, n_tensors, meta, n_meta));

  /* Header JSON: metadata first, then the tensors in the caller's order, data back to back. */
  st_buf h = {0};
  uint64_t off = 0;
  sb_puts(&h, "{");
  if (n_meta > 0) {
    sb_puts(&h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) sb_puts(&h, ",");
      sb_json_str(&h, meta[i].key);
      sb_puts(&h, ":");
      sb_json_str(&h, meta[i].value);
    }
    sb_puts(&h, "}");
  }
  for (int i = 0; i < n_tensors; i++) {
    const mh_st_tensor *t = &tensors[i];
    if (i || n_meta > 0) sb_puts(&h, ",");
    sb_json_str(&h, t->name);
    sb_puts(&h, ":{\"dtype\":\"");
    sb_puts(&h, mh_dtype_name(t->dtype));
    sb_puts(&h, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) sb_puts(&h, ",");
      sb_u64(&h, (uint64_t)t->shape[d]);
    }
    sb_puts(&h, "],\"data_offsets\":[");
    sb_u64(&h, off);
    sb_puts(&h, ",");
    if ((uint64_t)t->nbytes > UINT64_MAX - off) {
      free(h.p);
      return mh__error(MH_ERR_INVALID_ARG, "%s: total tensor data exceeds 2^64 bytes", path);
    }
    off += t->nbytes;
    sb_u64(&h, off);
    sb_puts(&h, "]}");
  }
  sb_puts(&h, "}");
  while (!h.oom && (8 + h.n) % 8 != 0) sb_puts(&h, " "); /* data section starts 8-aligned */
  if (h.oom) {
    free(h.p);
    return mh__error(MH_ERR_NOMEM, "%s: out of memory building the header", path);
  }
  if (h.n > ST_MAX_HEADER) {
    size_t n = h.n;
    free(h.p);
    return mh__error(MH_ERR_INVALID_ARG, "%s: header of %zu bytes exceeds the %u-byte limit", path, n,
                     ST_MAX_HEADER);
  }

  size_t tmp_cap = strlen(path) + 32;
  char *tmp = malloc(tmp_cap);
  if (!tmp) {
    free(h.p);
    return mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
  }
  snprintf(tmp, tmp_cap, "%s.tmp.%ld", path, (long)getpid());

  FILE *f = fopen(tmp, "wb");
  const char *step = f ? st_write_image(f, &h, tensors, n_tensors) : "create";
  int e = errno, st = 0;
  if (f && fclose(f) != 0 && !step) step = "close", e = errno;
  if (!step && rename(tmp, path) != 0) step = "rename", e = errno;
  if (step) {
    if (f) unlink(tmp);
    st = mh__error(MH_ERR_IO, "%s: %s of temporary file '%s' failed: %s", path, step, tmp, strerror(e));
  } else {
    st_sync_dir(path);
  }
  free(tmp);
  free(h.p);
  return st;
}

/* ---- reader: a JSON parser for exactly the safetensors header schema ------------------------
 * Top level object -> tensor object -> shape/data_offsets array is the deepest nesting the schema
 * allows, so the parser is a fixed set of non-recursive functions and any deeper nesting is a
 * type error at the first extra bracket. */

typedef struct st_parser {
  const char *file;       /* name used in messages */
  const uint8_t *base;    /* start of the image, for byte offsets in messages */
  const uint8_t *p, *end; /* cursor and end of the JSON header */
  char ctx[128];          /* " in tensor 'x'" etc., for syntax messages */
  char *str;              /* the last decoded string, NUL-terminated */
  size_t str_len, str_cap;
  int str_has_nul;
  mh_st_file *f;
  uint64_t (*offs)[2]; /* data_offsets of f->tensors[i] */
  int cap_tensors, cap_meta, seen_meta;
} st_parser;

static int st_syntax(st_parser *ps, const char *what) {
  return mh__error(MH_ERR_FORMAT, "%s: malformed JSON header at byte %zu%s: %s", ps->file,
                   (size_t)(ps->p - ps->base), ps->ctx, what);
}

static int st_unexpected(st_parser *ps, const char *expected) {
  char found[32];
  if (ps->p >= ps->end)
    snprintf(found, sizeof found, "the end of the header");
  else if (*ps->p >= 0x20 && *ps->p < 0x7F)
    snprintf(found, sizeof found, "'%c'", *ps->p);
  else
    snprintf(found, sizeof found, "byte 0x%02x", *ps->p);
  return mh__error(MH_ERR_FORMAT, "%s: malformed JSON header at byte %zu%s: expected %s but found %s",
                   ps->file, (size_t)(ps->p - ps->base), ps->ctx, expected, found);
}

static void st_ws(st_parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

/* Skips whitespace; consumes `c` or fails. */
static int st_expect(st_parser *ps, char c, const char *what) {
  st_ws(ps);
  if (ps->p < ps->end && *ps->p == (uint8_t)c) {
    ps->p++;
    return 0;
  }
  return st_unexpected(ps, what);
}

/* Skips whitespace; consumes `c` and returns 1 if it is next, else 0. */
static int st_accept(st_parser *ps, char c) {
  st_ws(ps);
  if (ps->p < ps->end && *ps->p == (uint8_t)c) {
    ps->p++;
    return 1;
  }
  return 0;
}

static int st_str_put(st_parser *ps, const uint8_t *s, size_t n) {
  if (ps->str_cap - ps->str_len < n + 1) {
    size_t cap = ps->str_cap ? ps->str_cap * 2 : 64;
    while (cap - ps->str_len < n + 1) cap *= 2; /* bounded by the header size: no overflow */
    char *p = realloc(ps->str, cap);
    if (!p) return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing the header", ps->file);
    ps->str = p;
    ps->str_cap = cap;
  }
  memcpy(ps->str + ps->str_len, s, n);
  ps->str_len += n;
  ps->str[ps->str_len] = 0;
  return 0;
}

static int st_hex4(st_parser *ps, uint32_t *out) {
  uint32_t v = 0;
  if (ps->end - ps->p < 4) return st_syntax(ps, "truncated \\u escape");
  for (int i = 0; i < 4; i++) {
    uint8_t c = ps->p[i];
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return st_syntax(ps, "\\u escape needs four hex digits");
    v = v * 16 + d;
  }
  ps->p += 4;
  *out = v;
  return 0;
}

/* Parses a string literal into ps->str (UTF-8, NUL-terminated; ps->str_has_nul if it holds U+0000). */
static int st_string(st_parser *ps, const char *what) {
  st_ws(ps);
  if (ps->p >= ps->end || *ps->p != '"') return st_unexpected(ps, what);
  ps->p++;
  ps->str_len = 0;
  ps->str_has_nul = 0;
  MH_TRY(st_str_put(ps, (const uint8_t *)"", 0));
  for (;;) {
    const uint8_t *run = ps->p;
    while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 && *ps->p != '"' && *ps->p != '\\') ps->p++;
    MH_TRY(st_str_put(ps, run, (size_t)(ps->p - run)));
    if (ps->p >= ps->end) return st_syntax(ps, "unterminated string");
    uint8_t c = *ps->p;
    if (c == '"') {
      ps->p++;
      return 0;
    }
    if (c < 0x20) return st_syntax(ps, "unescaped control character in string");
    if (c >= 0x80) {
      size_t n = st_utf8_seq(ps->p, ps->end);
      if (!n) return st_syntax(ps, "invalid UTF-8 in string");
      MH_TRY(st_str_put(ps, ps->p, n));
      ps->p += n;
      continue;
    }
    /* backslash escape */
    if (ps->end - ps->p < 2) return st_syntax(ps, "unterminated escape in string");
    uint8_t e = ps->p[1];
    uint32_t cp;
    switch (e) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        ps->p += 2;
        MH_TRY(st_hex4(ps, &cp));
        if (cp >= 0xDC00 && cp <= 0xDFFF) return st_syntax(ps, "unpaired low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return st_syntax(ps, "unpaired high surrogate in \\u escape");
          ps->p += 2;
          MH_TRY(st_hex4(ps, &lo));
          if (lo < 0xDC00 || lo > 0xDFFF) return st_syntax(ps, "high surrogate not followed by a low one");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        break;
      }
      default: return st_syntax(ps, "invalid escape in string");
    }
    if (e != 'u') ps->p += 2;
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
      u[0] = (uint8_t)cp, n = 1;
    } else if (cp < 0x800) {
      u[0] = (uint8_t)(0xC0 | (cp >> 6)), u[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
      u[0] = (uint8_t)(0xE0 | (cp >> 12)), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
      u[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
    } else {
      u[0] = (uint8_t)(0xF0 | (cp >> 18)), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
      u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
    }
    if (cp == 0) ps->str_has_nul = 1;
    MH_TRY(st_str_put(ps, u, n));
  }
}

/* A non-negative integer: digits only, no leading zeros, no sign/fraction/exponent, fits u64. */
static int st_uint(st_parser *ps, uint64_t *out) {
  st_ws(ps);
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return st_unexpected(ps, "a non-negative integer");
  uint64_t v = 0;
  if (*ps->p == '0') {
    ps->p++;
    if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
      return st_syntax(ps, "integer with a leading zero");
  } else {
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
      uint64_t d = (uint64_t)(*ps->p - '0');
      if (v > (UINT64_MAX - d) / 10) return st_syntax(ps, "integer does not fit in 64 bits");
      v = v * 10 + d;
      ps->p++;
    }
  }
  if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
    return st_syntax(ps, "expected an integer, found a fraction or exponent");
  *out = v;
  return 0;
}

static int st_is(const st_parser *ps, const char *lit) {
  size_t n = strlen(lit);
  return ps->str_len == n && memcmp(ps->str, lit, n) == 0;
}

static const char *const st_foreign_dtypes[] = {"BOOL",    "F16",     "BF16",    "U16",     "U32",
                                                "U64",     "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
                                                "F6_E2M3", "F6_E3M2", "C64"};

/* Parses one tensor entry object `{"dtype":..., "shape":[...], "data_offsets":[b, e]}`. */
static int st_tensor_entry(st_parser *ps, mh_st_tensor *t, uint64_t off[2], const char *pn) {
  enum { F_DTYPE = 1, F_SHAPE = 2, F_OFFSETS = 4 };
  int seen = 0;
  MH_TRY(st_expect(ps, '{', "'{' opening the tensor entry"));
  if (!st_accept(ps, '}')) {
    for (;;) {
      MH_TRY(st_string(ps, "a field name"));
      int field = st_is(ps, "dtype")          ? F_DTYPE
                  : st_is(ps, "shape")        ? F_SHAPE
                  : st_is(ps, "data_offsets") ? F_OFFSETS
                                              : 0;
      if (!field) {
        char fn[80];
        return mh__error(MH_ERR_FORMAT,
                         "%s: tensor '%s' has unexpected field '%s' (allowed: dtype, shape, data_offsets)",
                         ps->file, pn, st_printable(fn, sizeof fn, ps->str));
      }
      if (seen & field)
        return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' has field '%s' twice", ps->file, pn, ps->str);
      seen |= field;
      MH_TRY(st_expect(ps, ':', "':' after the field name"));
      if (field == F_DTYPE) {
        MH_TRY(st_string(ps, "a dtype string"));
        int found = 0;
        for (int d = MH_DTYPE_F32; d <= MH_DTYPE_F64 && !found; d++)
          if (st_is(ps, mh_dtype_name((mh_dtype)d))) t->dtype = (mh_dtype)d, found = 1;
        if (!found) {
          char dn[40];
          st_printable(dn, sizeof dn, ps->str);
          for (size_t k = 0; k < sizeof st_foreign_dtypes / sizeof *st_foreign_dtypes; k++)
            if (st_is(ps, st_foreign_dtypes[k]))
              return mh__error(MH_ERR_UNSUPPORTED,
                               "%s: tensor '%s' has dtype %s, which is not supported "
                               "(supported: F32, F64, I64, I32, I16, I8, U8)",
                               ps->file, pn, dn);
          return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", ps->file, pn, dn);
        }
      } else if (field == F_SHAPE) {
        MH_TRY(st_expect(ps, '[', "'[' opening the shape"));
        t->ndim = 0;
        if (!st_accept(ps, ']')) {
          for (;;) {
            uint64_t v;
            if (t->ndim == MH_ST_MAX_DIMS)
              return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' has more than %d dimensions", ps->file, pn,
                               MH_ST_MAX_DIMS);
            MH_TRY(st_uint(ps, &v));
            if (v > (uint64_t)INT64_MAX)
              return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' has dimension %" PRIu64 " beyond 2^63-1",
                               ps->file, pn, v);
            t->shape[t->ndim++] = (int64_t)v;
            if (st_accept(ps, ']')) break;
            MH_TRY(st_expect(ps, ',', "',' or ']' in the shape"));
          }
        }
      } else {
        MH_TRY(st_expect(ps, '[', "'[' opening data_offsets"));
        MH_TRY(st_uint(ps, &off[0]));
        MH_TRY(st_expect(ps, ',', "',' between the two data_offsets"));
        MH_TRY(st_uint(ps, &off[1]));
        MH_TRY(st_expect(ps, ']', "']' after the two data_offsets"));
      }
      if (st_accept(ps, '}')) break;
      MH_TRY(st_expect(ps, ',', "',' or '}' in the tensor entry"));
    }
  }
  static const char *const names[] = {"dtype", "shape", "data_offsets"};
  for (int k = 0; k < 3; k++)
    if (!(seen & (1 << k)))
      return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' has no '%s' field", ps->file, pn, names[k]);
  return 0;
}

static char *st_strdup_str(st_parser *ps) {
  char *s = malloc(ps->str_len + 1);
  if (s) memcpy(s, ps->str, ps->str_len + 1);
  return s;
}

/* Parses the "__metadata__" object: string keys to string values. */
static int st_metadata(st_parser *ps) {
  mh_st_file *f = ps->f;
  if (ps->seen_meta) return mh__error(MH_ERR_FORMAT, "%s: \"__metadata__\" appears twice", ps->file);
  ps->seen_meta = 1;
  snprintf(ps->ctx, sizeof ps->ctx, " in __metadata__");
  MH_TRY(st_expect(ps, '{', "'{' opening __metadata__ (an object of strings)"));
  if (st_accept(ps, '}')) return 0;
  for (;;) {
    MH_TRY(st_string(ps, "a metadata key"));
    if (ps->str_has_nul)
      return mh__error(MH_ERR_FORMAT, "%s: a metadata key contains a NUL character", ps->file);
    if (f->n_meta == ps->cap_meta) {
      if (ps->cap_meta > INT_MAX / 2)
        return mh__error(MH_ERR_FORMAT, "%s: too many metadata entries", ps->file);
      int cap = ps->cap_meta ? ps->cap_meta * 2 : 8;
      mh_st_meta *m = realloc(f->meta, (size_t)cap * sizeof *m);
      if (!m) return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing metadata", ps->file);
      f->meta = m;
      ps->cap_meta = cap;
    }
    mh_st_meta *m = &f->meta[f->n_meta];
    m->value = NULL;
    if (!(m->key = st_strdup_str(ps)))
      return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing metadata", ps->file);
    f->n_meta++;
    MH_TRY(st_expect(ps, ':', "':' after the metadata key"));
    MH_TRY(st_string(ps, "a string value (metadata values must be strings)"));
    if (ps->str_has_nul) {
      char kn[80];
      return mh__error(MH_ERR_FORMAT, "%s: metadata value of '%s' contains a NUL character", ps->file,
                       st_printable(kn, sizeof kn, m->key));
    }
    if (!(m->value = st_strdup_str(ps)))
      return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing metadata", ps->file);
    if (st_accept(ps, '}')) return 0;
    MH_TRY(st_expect(ps, ',', "',' or '}' in __metadata__"));
  }
}

/* Parses one tensor (its name is in ps->str) and checks its entry against the data section. */
static int st_tensor(st_parser *ps, size_t data_len) {
  mh_st_file *f = ps->f;
  char pn[80], sh[200];
  if (ps->str_has_nul)
    return mh__error(MH_ERR_FORMAT, "%s: a tensor name contains a NUL character", ps->file);
  if (ps->str_len >= MH_ST_MAX_NAME)
    return mh__error(MH_ERR_FORMAT, "%s: tensor name '%s' is %zu bytes, the limit is %d", ps->file,
                     st_printable(pn, sizeof pn, ps->str), ps->str_len, MH_ST_MAX_NAME - 1);
  if (f->n_tensors == ps->cap_tensors) {
    if (ps->cap_tensors > INT_MAX / 2) return mh__error(MH_ERR_FORMAT, "%s: too many tensors", ps->file);
    int cap = ps->cap_tensors ? ps->cap_tensors * 2 : 16;
    mh_st_tensor *t = realloc(f->tensors, (size_t)cap * sizeof *t);
    if (!t) return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing the header", ps->file);
    f->tensors = t;
    uint64_t(*o)[2] = realloc(ps->offs, (size_t)cap * sizeof *o);
    if (!o) return mh__error(MH_ERR_NOMEM, "%s: out of memory parsing the header", ps->file);
    ps->offs = o;
    ps->cap_tensors = cap;
  }
  mh_st_tensor *t = &f->tensors[f->n_tensors];
  uint64_t *off = ps->offs[f->n_tensors];
  memset(t, 0, sizeof *t);
  memcpy(t->name, ps->str, ps->str_len + 1);
  st_printable(pn, sizeof pn, t->name);
  snprintf(ps->ctx, sizeof ps->ctx, " in tensor '%s'", pn);
  MH_TRY(st_tensor_entry(ps, t, off, pn));

  int ok;
  uint64_t want = st_nbytes(t->shape, t->ndim, mh_dtype_size(t->dtype), &ok);
  st_fmt_shape(sh, sizeof sh, t->shape, t->ndim);
  if (!ok)
    return mh__error(MH_ERR_FORMAT, "%s: tensor '%s' shape %s of %s overflows 64 bits of bytes", ps->file, pn,
                     sh, mh_dtype_name(t->dtype));
  if (off[0] > off[1])
    return mh__error(MH_ERR_FORMAT,
                     "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                     ps->file, pn, off[0], off[1]);
  if (off[1] > (uint64_t)data_len)
    return mh__error(MH_ERR_FORMAT,
                     "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                     "] exceed data section of %zu bytes",
                     ps->file, pn, off[0], off[1], data_len);
  if (off[1] - off[0] != want)
    return mh__error(MH_ERR_FORMAT,
                     "%s: tensor '%s' shape %s of %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64
                     ", %" PRIu64 "] span %" PRIu64,
                     ps->file, pn, sh, mh_dtype_name(t->dtype), want, off[0], off[1], off[1] - off[0]);
  t->nbytes = (size_t)want; /* <= data_len, so it fits */
  f->n_tensors++;
  return 0;
}

/* Parses the whole header object; the header must start with '{' and hold nothing after '}'
 * but whitespace (the writer's padding). */
static int st_header(st_parser *ps, size_t data_len) {
  if (ps->p >= ps->end || *ps->p != '{') return st_unexpected(ps, "'{' as the first header byte");
  ps->p++;
  if (!st_accept(ps, '}')) {
    for (;;) {
      ps->ctx[0] = 0;
      MH_TRY(st_string(ps, "a tensor name"));
      int is_meta = st_is(ps, "__metadata__");
      if (!is_meta) {
        MH_TRY(st_expect(ps, ':', "':' after the tensor name"));
        MH_TRY(st_tensor(ps, data_len));
      } else {
        MH_TRY(st_expect(ps, ':', "':' after \"__metadata__\""));
        MH_TRY(st_metadata(ps));
      }
      ps->ctx[0] = 0;
      if (st_accept(ps, '}')) break;
      MH_TRY(st_expect(ps, ',', "',' or '}' after an entry"));
    }
  }
  st_ws(ps);
  if (ps->p != ps->end) return st_syntax(ps, "unexpected bytes after the closing '}' of the header");
  return 0;
}

typedef struct st_span {
  uint64_t begin, end;
  int index;
} st_span;

static int st_cmp_span(const void *a, const void *b) {
  const st_span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

/* Whole-file checks (unique names and keys, tensors tiling the data section exactly as the
 * safetensors spec requires: no overlaps, no holes), then copies the data into aligned storage. */
static int st_finish(st_parser *ps, const uint8_t *data, size_t data_len) {
  mh_st_file *f = ps->f;
  int n = f->n_tensors;
  char pa[80], pb[80];

  if (n > 0) {
    f->by_name = malloc((size_t)n * sizeof *f->by_name);
    if (!f->by_name) return mh__error(MH_ERR_NOMEM, "%s: out of memory", ps->file);
    for (int i = 0; i < n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, st_cmp_tensor_name);
    for (int i = 1; i < n; i++)
      if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
        return mh__error(MH_ERR_FORMAT, "%s: duplicate tensor name '%s'", ps->file,
                         st_printable(pa, sizeof pa, f->by_name[i]->name));
  }
  if (f->n_meta > 1) {
    qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, st_cmp_meta_key);
    for (int i = 1; i < f->n_meta; i++)
      if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
        return mh__error(MH_ERR_FORMAT, "%s: duplicate metadata key '%s'", ps->file,
                         st_printable(pa, sizeof pa, f->meta[i].key));
  }

  st_span *spans = malloc((size_t)(n ? n : 1) * sizeof *spans);
  if (!spans) return mh__error(MH_ERR_NOMEM, "%s: out of memory", ps->file);
  for (int i = 0; i < n; i++) spans[i] = (st_span){ps->offs[i][0], ps->offs[i][1], i};
  qsort(spans, (size_t)n, sizeof *spans, st_cmp_span);
  uint64_t covered = 0;
  int prev = -1, st = 0;
  for (int i = 0; i < n && !st; i++) {
    const st_span *s = &spans[i];
    if (s->begin < covered)
      st =
          mh__error(MH_ERR_FORMAT,
                    "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s' [%" PRIu64
                    ", %" PRIu64 "]",
                    ps->file, st_printable(pa, sizeof pa, f->tensors[s->index].name), s->begin, s->end,
                    st_printable(pb, sizeof pb, f->tensors[prev].name), spans[i - 1].begin, spans[i - 1].end);
    else if (s->begin > covered)
      st = mh__error(MH_ERR_FORMAT, "%s: data bytes [%" PRIu64 ", %" PRIu64 ") belong to no tensor", ps->file,
                     covered, s->begin);
    covered = s->end;
    prev = s->index;
  }
  free(spans);
  if (st) return st;
  if (covered != (uint64_t)data_len)
    return mh__error(MH_ERR_FORMAT,
                     "%s: the last %" PRIu64 " bytes of the %zu-byte data section belong to no tensor",
                     ps->file, (uint64_t)data_len - covered, data_len);

  /* Aligned private copy: pointers stay valid until mh_st_free whatever the caller does with buf. */
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    size_t sz = f->tensors[i].nbytes;
    if (sz > SIZE_MAX - (ST_ALIGN - 1)) return mh__error(MH_ERR_NOMEM, "%s: tensor data too large", ps->file);
    size_t padded = (sz + (ST_ALIGN - 1)) & ~(size_t)(ST_ALIGN - 1);
    if (total > SIZE_MAX - padded) return mh__error(MH_ERR_NOMEM, "%s: tensor data too large", ps->file);
    total += padded;
  }
  if (posix_memalign(&f->data, ST_ALIGN, total ? total : ST_ALIGN) != 0) {
    f->data = NULL;
    return mh__error(MH_ERR_NOMEM, "%s: out of memory for %zu bytes of tensor data", ps->file, total);
  }
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    mh_st_tensor *t = &f->tensors[i];
    t->data = (uint8_t *)f->data + at;
    if (t->nbytes) memcpy((uint8_t *)f->data + at, data + ps->offs[i][0], t->nbytes);
    at += (t->nbytes + (ST_ALIGN - 1)) & ~(size_t)(ST_ALIGN - 1);
  }
  return 0;
}

int mh_st_parse(mh_st_file **out, const uint8_t *buf, size_t len, const char *name) {
  if (!out) return mh__error(MH_ERR_INVALID_ARG, "mh_st_parse: out is NULL");
  *out = NULL;
  if (!name) name = "<memory>";
  if (!buf && len) return mh__error(MH_ERR_INVALID_ARG, "%s: buffer is NULL", name);
  if (len < 8)
    return mh__error(MH_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length", name,
                     len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
  if (hlen > ST_MAX_HEADER)
    return mh__error(MH_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %u-byte limit", name, hlen,
                     ST_MAX_HEADER);
  if (hlen > (uint64_t)(len - 8))
    return mh__error(MH_ERR_FORMAT,
                     "%s: header length %" PRIu64 " exceeds the %zu bytes after the length field", name, hlen,
                     len - 8);

  st_parser ps;
  memset(&ps, 0, sizeof ps);
  ps.file = name;
  ps.base = buf;
  ps.p = buf + 8;
  ps.end = buf + 8 + hlen;
  ps.f = calloc(1, sizeof *ps.f);
  if (!ps.f) return mh__error(MH_ERR_NOMEM, "%s: out of memory", name);
  size_t data_len = len - 8 - (size_t)hlen;
  int st = st_header(&ps, data_len);
  if (st == 0) st = st_finish(&ps, ps.end, data_len);
  free(ps.str);
  free(ps.offs);
  if (st != 0) {
    mh_st_free(ps.f);
    return st;
  }
  *out = ps.f;
  return 0;
}

int mh_st_read(mh_st_file **out, const char *path) {
  if (!out) return mh__error(MH_ERR_INVALID_ARG, "mh_st_read: out is NULL");
  *out = NULL;
  if (!path) return mh__error(MH_ERR_INVALID_ARG, "mh_st_read: path is NULL");
  FILE *fp = fopen(path, "rb");
  if (!fp) return mh__error(MH_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  size_t cap = 1 << 16, len = 0;
  if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size < (uint64_t)SIZE_MAX)
    cap = (size_t)sb.st_size + 1; /* +1: the final fread sees EOF without growing */
  uint8_t *buf = malloc(cap);
  if (!buf) {
    fclose(fp);
    return mh__error(MH_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
  }
  for (;;) {
    if (len == cap) {
      uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (!nb) {
        free(buf);
        fclose(fp);
        return mh__error(MH_ERR_NOMEM, "%s: out of memory reading the file", path);
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len, fp);
    len += got;
    if (got == 0) {
      if (ferror(fp)) {
        int e = errno;
        free(buf);
        fclose(fp);
        return mh__error(MH_ERR_IO, "%s: read failed: %s", path, strerror(e));
      }
      break;
    }
  }
  fclose(fp);
  int st = mh_st_parse(out, buf, len, path);
  free(buf);
  return st;
}

void mh_st_free(mh_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n_meta; i++) {
    free((char *)f->meta[i].key);
    free((char *)f->meta[i].value);
  }
  free(f->meta);
  free(f->tensors);
  free(f->by_name);
  free(f->data);
  free(f);
}

int mh_st_count(const mh_st_file *f) { return f ? f->n_tensors : 0; }

const mh_st_tensor *mh_st_get(const mh_st_file *f, int i) {
  if (!f || i < 0 || i >= f->n_tensors) return NULL;
  return &f->tensors[i];
}

const mh_st_tensor *mh_st_find(const mh_st_file *f, const char *name) {
  if (!f || !name || !f->by_name) return NULL;
  int lo = 0, hi = f->n_tensors - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(name, f->by_name[mid]->name);
    if (c == 0) return f->by_name[mid];
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *mh_st_meta_get(const mh_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  int lo = 0, hi = f->n_meta - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(key, f->meta[mid].key);
    if (c == 0) return f->meta[mid].value;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}
