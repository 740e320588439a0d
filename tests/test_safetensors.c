/* Safetensors writer/reader: round trips, exact on-disk layout, atomic replacement, and rejection
 * of truncated, corrupted and hostile headers. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "testlib.h"
#include "train/safetensors.h"

static char g_dir[256];

static void path_in(char *out, size_t cap, const char *file) { snprintf(out, cap, "%s/%s", g_dir, file); }

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

/* Number of directory entries (excluding . and ..); *tmp_left counts names containing ".tmp.". */
static int list_dir(const char *dir, int *tmp_left) {
  DIR *d = opendir(dir);
  int n = 0;
  *tmp_left = 0;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    n++;
    if (strstr(e->d_name, ".tmp.")) (*tmp_left)++;
  }
  closedir(d);
  return n;
}

static mh_st_tensor mk(const char *name, mh_dtype dt, int ndim, const int64_t *shape, const void *data) {
  mh_st_tensor t;
  memset(&t, 0, sizeof t);
  snprintf(t.name, sizeof t.name, "%s", name);
  t.dtype = dt;
  t.ndim = ndim;
  size_t n = mh_dtype_size(dt);
  for (int i = 0; i < ndim; i++) {
    t.shape[i] = shape[i];
    n *= (size_t)shape[i];
  }
  t.nbytes = n;
  t.data = data;
  return t;
}

/* A safetensors image from a header of `hlen` bytes (strlen when -1) and `dlen` data bytes
 * (pattern i*7+1). */
static uint8_t *image(const char *json, long hlen, size_t dlen, size_t *len) {
  size_t n = hlen < 0 ? strlen(json) : (size_t)hlen;
  *len = 8 + n + dlen;
  uint8_t *buf = malloc(*len + 1);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
  memcpy(buf + 8, json, n);
  for (size_t i = 0; i < dlen; i++) buf[8 + n + i] = (uint8_t)(i * 7 + 1);
  return buf;
}

static int parse_json(const char *json, long hlen, size_t dlen) {
  size_t len;
  uint8_t *buf = image(json, hlen, dlen, &len);
  mh_st_file *f = (mh_st_file *)1;
  int st = mh_st_parse(&f, buf, len, "t.safetensors");
  free(buf);
  if (st == 0)
    mh_st_free(f);
  else if (f != NULL)
    TL_FAIL("failed parse left *out non-NULL");
  return st;
}

/* The JSON must be rejected; when `msg` is given the error message must contain it. */
#define REJECT(json, dlen, msg) reject_(__LINE__, json, -1, dlen, msg)
static void reject_(int line, const char *json, long hlen, size_t dlen, const char *msg) {
  int st = parse_json(json, hlen, dlen);
  tl_checks++;
  if (st >= 0) {
    TL_FAIL("line %d: accepted bad header: %.200s", line, json);
    return;
  }
  if (msg && !strstr(mh_last_error(), msg))
    TL_FAIL("line %d: message '%s' lacks '%s'", line, mh_last_error(), msg);
  if (!strstr(mh_last_error(), "t.safetensors"))
    TL_FAIL("line %d: message '%s' lacks the file name", line, mh_last_error());
}

#define ACCEPT(json, dlen) CHECK_OK(parse_json(json, -1, dlen))

/* ---- round trip ------------------------------------------------------------------------------ */

static const float a_f32[6] = {1.0f, -2.5f, 3e-8f, 1e30f, -0.0f, 42.0f};
static const int8_t b_i8[5] = {-128, -1, 0, 1, 127};
static const int16_t c_i16[4] = {-32768, -2, 300, 32767};
static const int32_t d_i32[3] = {INT32_MIN, 7, INT32_MAX};
static const uint8_t e_u8[7] = {0, 1, 2, 128, 200, 254, 255};
static const int64_t g_i64[2] = {INT64_MIN, INT64_MAX};
static const double s_f64 = 3.141592653589793;

static const mh_st_meta k_meta[] = {
    {"format", "pt"},
    {"quote", "say \"hi\""},
    {"path", "C:\\dir\\file\\"},
    {"uni", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e"},
    {"ctl",
     "a\nb\tc\x01"
     "d\x1f\r\b\f"},
    {"empty", ""},
    {"key \"q\" \\", "v"},
    {"\xe5\x90\x8d", "\xe5\x89\x8d"},
};
#define N_META ((int)(sizeof k_meta / sizeof *k_meta))

static int make_tensors(mh_st_tensor *t) {
  static const int64_t s23[] = {2, 3}, s5[] = {5}, s22[] = {2, 2}, s3[] = {3}, s7[] = {7}, s2[] = {2},
                       s04[] = {0, 4}, s30[] = {3, 0}, s1111[] = {1, 1, 1, 1, 1, 1, 1, 2};
  int n = 0;
  t[n++] = mk("fc.weight", MH_DTYPE_F32, 2, s23, a_f32);
  t[n++] = mk("q8", MH_DTYPE_S8, 1, s5, b_i8);
  t[n++] = mk("q16", MH_DTYPE_S16, 2, s22, c_i16);
  t[n++] = mk("we\"ird\\name", MH_DTYPE_S32, 1, s3, d_i32);
  t[n++] = mk("bytes.odd", MH_DTYPE_U8, 1, s7, e_u8); /* 7 bytes: what follows is unaligned in the file */
  t[n++] = mk("\xc3\xbcn\xc3\xaf.\xe5\x90\x8d", MH_DTYPE_S64, 1, s2, g_i64);
  t[n++] = mk("step", MH_DTYPE_F64, 0, NULL, &s_f64); /* 0-dim scalar: one element */
  t[n++] = mk("empty.f32", MH_DTYPE_F32, 2, s04, NULL);
  t[n++] = mk("empty.u8", MH_DTYPE_U8, 2, s30, NULL);
  t[n++] = mk("deep", MH_DTYPE_S16, 8, s1111, c_i16);
  return n;
}

static void check_same(const mh_st_tensor *got, const mh_st_tensor *want) {
  CHECK(got != NULL);
  if (!got) return;
  CHECK(strcmp(got->name, want->name) == 0);
  CHECK_EQ_INT(got->dtype, want->dtype);
  CHECK_EQ_INT(got->ndim, want->ndim);
  for (int d = 0; d < want->ndim; d++) CHECK_EQ_INT(got->shape[d], want->shape[d]);
  CHECK_EQ_INT(got->nbytes, want->nbytes);
  CHECK(got->data != NULL);
  if (want->nbytes) CHECK(got->data && memcmp(got->data, want->data, want->nbytes) == 0);
  CHECK_EQ_INT((uintptr_t)got->data % 8, 0); /* aligned even when the file offset is not */
}

static void test_round_trip(void) {
  mh_st_tensor t[16];
  int n = make_tensors(t);
  char path[512];
  path_in(path, sizeof path, "rt.safetensors");
  CHECK_OK(mh_st_write(path, t, n, k_meta, N_META));

  mh_st_file *f = NULL;
  CHECK_OK(mh_st_read(&f, path));
  if (!f) return;
  CHECK_EQ_INT(mh_st_count(f), n);
  for (int i = 0; i < n; i++) {
    check_same(mh_st_get(f, i), &t[i]); /* file order is the writer's order */
    CHECK(mh_st_find(f, t[i].name) == mh_st_get(f, i));
  }
  CHECK(mh_st_get(f, -1) == NULL);
  CHECK(mh_st_get(f, n) == NULL);
  CHECK(mh_st_find(f, "absent") == NULL);
  CHECK(mh_st_find(f, "") == NULL);
  CHECK(mh_st_find(f, "fc.weigh") == NULL);
  const mh_st_tensor *s = mh_st_find(f, "step");
  CHECK(s && s->ndim == 0 && s->nbytes == 8 && *(const double *)s->data == s_f64);
  const mh_st_tensor *w = mh_st_find(f, "fc.weight");
  CHECK(w && ((const float *)w->data)[1] == -2.5f);
  for (int i = 0; i < N_META; i++) {
    const char *v = mh_st_meta_get(f, k_meta[i].key);
    CHECK(v && strcmp(v, k_meta[i].value) == 0);
  }
  CHECK(mh_st_meta_get(f, "absent") == NULL);
  CHECK(mh_st_meta_get(f, "__metadata__") == NULL);
  mh_st_free(f);

  /* No metadata at all, and a file with nothing in it. */
  CHECK_OK(mh_st_write(path, t, 2, NULL, 0));
  CHECK_OK(mh_st_read(&f, path));
  CHECK(f && mh_st_count(f) == 2 && mh_st_meta_get(f, "format") == NULL);
  mh_st_free(f);
  CHECK_OK(mh_st_write(path, NULL, 0, NULL, 0));
  size_t len = 0;
  uint8_t *img = read_all(path, &len);
  CHECK_EQ_INT(len, 16);
  CHECK(img && memcmp(img, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
  free(img);
  CHECK_OK(mh_st_read(&f, path));
  CHECK(f && mh_st_count(f) == 0 && mh_st_get(f, 0) == NULL && mh_st_find(f, "x") == NULL);
  mh_st_free(f);
  unlink(path);
}

/* ---- exact layout ---------------------------------------------------------------------------- */

static void test_layout(void) {
  mh_st_tensor t[16];
  int n = make_tensors(t);
  char path[512];
  path_in(path, sizeof path, "layout.safetensors");
  CHECK_OK(mh_st_write(path, t, n, k_meta, N_META));
  size_t len = 0;
  uint8_t *buf = read_all(path, &len);
  CHECK(buf && len > 8);
  if (!buf || len <= 8) return;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
  CHECK_EQ_INT((8 + hlen) % 8, 0);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += t[i].nbytes;
  CHECK_EQ_INT(len, 8 + hlen + total);
  CHECK_EQ_INT(buf[8], '{');
  /* The JSON ends with '}' and the rest of the header is space padding (fewer than 8). */
  size_t last = 8 + (size_t)hlen - 1, pad = 0;
  while (buf[last] == ' ') last--, pad++;
  CHECK_EQ_INT(buf[last], '}');
  CHECK(pad < 8);
  /* Tensors are back to back in the writer's order. */
  size_t at = 8 + (size_t)hlen;
  for (int i = 0; i < n; i++) {
    if (t[i].nbytes) CHECK(memcmp(buf + at, t[i].data, t[i].nbytes) == 0);
    at += t[i].nbytes;
  }
  char *json = malloc((size_t)hlen + 1);
  memcpy(json, buf + 8, (size_t)hlen);
  json[hlen] = 0;
  CHECK(strstr(json, "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"));
  CHECK(strstr(json, "\"q8\":{\"dtype\":\"I8\",\"shape\":[5],\"data_offsets\":[24,29]}"));
  CHECK(strstr(json, "\"dtype\":\"I16\""));
  CHECK(strstr(json, "\"we\\\"ird\\\\name\":{\"dtype\":\"I32\""));
  CHECK(strstr(json, "\"dtype\":\"U8\""));
  CHECK(strstr(json, "\"dtype\":\"I64\""));
  CHECK(strstr(json, "\"step\":{\"dtype\":\"F64\",\"shape\":[],"));
  CHECK(strstr(json, "\"empty.f32\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[80,80]}"));
  CHECK(strstr(json, "\"__metadata__\":{\"format\":\"pt\",\"quote\":\"say \\\"hi\\\"\""));
  CHECK(strstr(json, "\"ctl\":\"a\\nb\\tc\\u0001d\\u001f\\r\\b\\f\""));
  free(json);
  free(buf);
  unlink(path);
}

/* ---- hand-written headers that must be accepted -------------------------------------------- */

static void test_accept(void) {
  /* Whitespace everywhere, fields in any order, entries out of data order, escapes in names. */
  const char *json =
      " \t\r\n{ \"b\\u00e9\\ud834\\udd1e\\/\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 8 , 16 ] ,"
      " \"dtype\" : \"I32\" } ,\n \"__metadata__\" : { } , \"a\":{\"dtype\":\"F64\",\"shape\":[],"
      "\"data_offsets\":[0,8]} , \"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[16,16]} }  \n";
  size_t len;
  uint8_t *buf = image(json + 4, -1, 16, &len); /* json + 4: the header must start with '{' */
  mh_st_file *f = NULL;
  CHECK_OK(mh_st_parse(&f, buf, len, "hand.safetensors"));
  buf[8 + strlen(json + 4)] ^= 0xFF; /* the parsed file holds its own copy */
  free(buf);
  CHECK(f && mh_st_count(f) == 3);
  if (f) {
    const mh_st_tensor *b = mh_st_find(f, "b\xc3\xa9\xf0\x9d\x84\x9e/"), *a = mh_st_find(f, "a");
    CHECK(b && b == mh_st_get(f, 0) && b->dtype == MH_DTYPE_S32 && b->ndim == 1 && b->shape[0] == 2);
    CHECK(a && a == mh_st_get(f, 1) && a->dtype == MH_DTYPE_F64 && a->ndim == 0 && a->nbytes == 8);
    CHECK(a && ((const uint8_t *)a->data)[0] == 1 && ((const uint8_t *)a->data)[1] == 8);
    CHECK(b && ((const uint8_t *)b->data)[0] == (uint8_t)(8 * 7 + 1));
    CHECK(mh_st_find(f, "z") && mh_st_find(f, "z")->nbytes == 0);
  }
  mh_st_free(f);
  ACCEPT("{}", 0);
  ACCEPT("{\"__metadata__\":{\"k\":\"v\",\"k2\":\"\\u0041\"}}", 0);
  /* A name of exactly MH_ST_MAX_NAME - 1 bytes fits. */
  char big[600];
  char name[MH_ST_MAX_NAME];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  snprintf(big, sizeof big, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
  ACCEPT(big, 1);
  /* Two zero-size tensors at the same offset do not overlap. */
  ACCEPT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"b\":{\"dtype\":\"I64\",\"shape\":[0,5],\"data_offsets\":[0,0]}}",
      0);
}

/* ---- rejection ----------------------------------------------------------------------------- */

#define T1(body) "{\"t\":{" body "}}"
#define OK_ENTRY "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static void test_reject_syntax(void) {
  REJECT("", 0, "byte 8");
  REJECT(" {}", 0, NULL);
  REJECT("{", 0, NULL);
  REJECT("}", 0, NULL);
  REJECT("[]", 0, NULL);
  REJECT("\"x\"", 0, NULL);
  REJECT("{} x", 0, "after the closing");
  REJECT("{}{}", 0, NULL);
  reject_(__LINE__, "{}\0\0", 4, 0, NULL); /* NUL padding is not whitespace */
  REJECT("{,}", 0, NULL);
  REJECT("{\"t\"}", 0, NULL);
  REJECT("{\"t\" {" OK_ENTRY "}}", 8, "expected ':'");
  REJECT("{'t':{" OK_ENTRY "}}", 8, NULL);
  REJECT("{t:{" OK_ENTRY "}}", 8, NULL);
  REJECT("{\"t\":{" OK_ENTRY "},}", 8, NULL);
  REJECT("{\"t\":{" OK_ENTRY ",}}", 8, NULL);
  REJECT("{\"t\":{" OK_ENTRY "}", 8, "end of the header");
  REJECT("{\"t\":{" OK_ENTRY "}} \"", 8, NULL);
  REJECT("{\"t\":{" OK_ENTRY "} \"u\":{}}", 8, NULL);
  REJECT("{\"t", 0, "unterminated string");
  REJECT("{\"t\\", 0, NULL);
  REJECT("{\"t\\u12", 0, NULL);
  /* escapes and encodings in names */
  REJECT("{\"a\\x\":{" OK_ENTRY "}}", 8, "invalid escape");
  REJECT("{\"a\\u12g4\":{" OK_ENTRY "}}", 8, "hex");
  REJECT("{\"a\\ud800\":{" OK_ENTRY "}}", 8, "surrogate");
  REJECT("{\"a\\udc00\\ud800\":{" OK_ENTRY "}}", 8, "surrogate");
  REJECT("{\"a\\udc00\":{" OK_ENTRY "}}", 8, "unpaired low surrogate");
  REJECT("{\"a\\ud800\\u0041\":{" OK_ENTRY "}}", 8, "surrogate");
  REJECT("{\"a\\ud800\\n\":{" OK_ENTRY "}}", 8, "surrogate");
  REJECT("{\"a\\u0000b\":{" OK_ENTRY "}}", 8, "NUL");
  REJECT("{\"a\tb\":{" OK_ENTRY "}}", 8, "control character");
  REJECT("{\"a\nb\":{" OK_ENTRY "}}", 8, "control character");
  REJECT("{\"a\xff\":{" OK_ENTRY "}}", 8, "UTF-8");
  REJECT("{\"a\xc0\xaf\":{" OK_ENTRY "}}", 8, "UTF-8");         /* overlong '/' */
  REJECT("{\"a\xed\xa0\x80\":{" OK_ENTRY "}}", 8, "UTF-8");     /* encoded surrogate */
  REJECT("{\"a\xf4\x90\x80\x80\":{" OK_ENTRY "}}", 8, "UTF-8"); /* > U+10FFFF */
  REJECT("{\"a\xe2\x82\":{" OK_ENTRY "}}", 8, "UTF-8");         /* truncated sequence */
  REJECT("{\"a\x80\":{" OK_ENTRY "}}", 8, "UTF-8");             /* lone continuation */
  REJECT("{\"a\xe0\x80\xaf\":{" OK_ENTRY "}}", 8, "UTF-8");     /* overlong 3-byte '/' */
  REJECT("{\"a\xf0\x80\x80\xaf\":{" OK_ENTRY "}}", 8, "UTF-8"); /* overlong 4-byte '/' */
  REJECT("{\"a\xf5\x80\x80\x80\":{" OK_ENTRY "}}", 8, "UTF-8"); /* lead byte past U+10FFFF */
  /* numbers */
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]"), 8, "leading zero");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), 8, "non-negative integer");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[+2],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8, "fraction");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]"), 8, "exponent");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]"), 8, "64 bits");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]"), 8, "2^63");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2 1],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8, NULL);
  /* tensor entry schema */
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8,
         "more than 8 dimensions");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[]"), 8, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}"), 8, NULL);
  REJECT(T1("\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"dtype\":null,\"shape\":[2],\"data_offsets\":[0,8]"), 8, NULL);
  REJECT(T1("\"shape\":[2],\"data_offsets\":[0,8]"), 8, "no 'dtype'");
  REJECT(T1("\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8, "no 'shape'");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2]"), 8, "no 'data_offsets'");
  REJECT(T1(""), 0, "no 'dtype'");
  REJECT(T1(OK_ENTRY ",\"extra\":1"), 8, "unexpected field 'extra'");
  REJECT(T1(OK_ENTRY ",\"dtype\":\"F32\""), 8, "twice");
  REJECT(T1("\"dtype\":\"F32\",\"Shape\":[2],\"data_offsets\":[0,8]"), 8, "unexpected field");
  REJECT("{\"t\":[]}", 0, NULL);
  REJECT("{\"t\":\"x\"}", 0, NULL);
  REJECT("{\"t\":1}", 0, NULL);
  REJECT("{\"t\":null}", 0, NULL);
  REJECT("{\"t\":true}", 0, NULL);
  /* metadata */
  REJECT("{\"__metadata__\":{\"k\":1}}", 0, "must be strings");
  REJECT("{\"__metadata__\":{\"k\":{}}}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\":[\"v\"]}}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\":null}}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\":true}}", 0, NULL);
  REJECT("{\"__metadata__\":[]}", 0, NULL);
  REJECT("{\"__metadata__\":\"x\"}", 0, NULL);
  REJECT("{\"__metadata__\":null}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\"}}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\":\"v\",}}", 0, NULL);
  REJECT("{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}}", 0, "twice");
  REJECT("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "duplicate metadata key 'k'");
  REJECT("{\"__metadata__\":{\"k\":\"v\\u0000\"}}", 0, "NUL");
  REJECT("{\"__metadata__\":{\"k\\u0000\":\"v\"}}", 0, "NUL");
  /* a name one byte over the limit */
  char big[700], name[MH_ST_MAX_NAME + 1];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  snprintf(big, sizeof big, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
  REJECT(big, 1, "limit");
}

static void test_reject_semantics(void) {
  REJECT(T1("\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "unknown dtype 'F17'");
  REJECT(T1("\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "unknown dtype");
  REJECT(T1("\"dtype\":\"F32 \",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "unknown dtype");
  REJECT(T1("\"dtype\":\"\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "unknown dtype");
  CHECK_EQ_INT(parse_json(T1("\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]"), -1, 8),
               MH_ERR_UNSUPPORTED);
  CHECK(strstr(mh_last_error(), "BF16") != NULL);
  CHECK_EQ_INT(parse_json(T1("\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]"), -1, 8),
               MH_ERR_FORMAT);

  /* The exact message format. */
  {
    size_t len;
    uint8_t *buf =
        image("{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", -1, 96, &len);
    mh_st_file *f = NULL;
    CHECK_EQ_INT(mh_st_parse(&f, buf, len, "ckpt.safetensors"), MH_ERR_FORMAT);
    CHECK(strcmp(
              mh_last_error(),
              "ckpt.safetensors: tensor 'fc.weight' data_offsets [0, 100] exceed data section of 96 bytes") ==
          0);
    CHECK(f == NULL);
    free(buf);
  }
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]"), 8, "exceed data section");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8, "end before they begin");
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551615,18446744073709551615]"),
         8, NULL);
  /* size mismatch */
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]"), 24, "needs 24 bytes");
  REJECT(T1("\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]"), 4, "needs 8 bytes");
  REJECT(T1("\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,1]"), 1, NULL);
  REJECT(T1("\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]"), 0, "overflow");
  REJECT(T1("\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]"), 0, "overflow");
  REJECT(T1("\"dtype\":\"I64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]"), 0, "overflow");
  /* overlap, holes, uncovered trailing data */
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
      8, "overlap");
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
      12, "overlap tensor 'a'");
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
      "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
      16, "overlap");
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
      12, "belong to no tensor");
  REJECT(T1("\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]"), 8, "belong to no tensor");
  REJECT(T1("\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]"), 8, "belong to no tensor");
  REJECT("{}", 1, "belong to no tensor");
  /* duplicates */
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
      8, "duplicate tensor name 'a'");
  REJECT(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
      8, "duplicate");
}

/* ---- the header length and the header's end ---------------------------------------------------
 * Images built byte by byte in exactly-sized heap buffers: 8 length bytes holding `hlen`, then
 * `body`, whose first hlen bytes are the header and the rest the data section. Where a check
 * guards the header's end, the bytes after the header are ones that an unguarded read would take
 * for more header, so the message (or the byte offset in it) changes when the check goes, even
 * in a release build where reading a byte too far does not crash. */

#define REJECT_RAW(hlen, body, msg) reject_raw_(__LINE__, hlen, body, sizeof(body) - 1, msg)
static void reject_raw_(int line, uint64_t hlen, const char *body, size_t n, const char *msg) {
  uint8_t *buf = malloc(8 + n);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
  memcpy(buf + 8, body, n);
  mh_st_file *f = (mh_st_file *)1;
  int st = mh_st_parse(&f, buf, 8 + n, "raw.safetensors");
  free(buf);
  tl_checks++;
  if (st != MH_ERR_FORMAT)
    TL_FAIL("line %d: status %d, expected MH_ERR_FORMAT (%s)", line, st, st ? mh_last_error() : "accepted");
  else if (!strstr(mh_last_error(), "raw.safetensors") || !strstr(mh_last_error(), msg))
    TL_FAIL("line %d: message '%s' lacks the file name or '%s'", line, mh_last_error(), msg);
  if (f != NULL) {
    TL_FAIL("line %d: failed parse left *out non-NULL", line);
    if (st == 0) mh_st_free(f);
  }
}

static void test_header_length(void) {
  /* files shorter than the length field */
  for (size_t n = 0; n < 8; n++) {
    uint8_t *buf = malloc(n ? n : 1);
    memset(buf, 0, n ? n : 1);
    mh_st_file *f = (mh_st_file *)1;
    char want[80];
    snprintf(want, sizeof want, "short.safetensors: file is %zu bytes, too short for the 8-byte header length", n);
    CHECK_EQ_INT(mh_st_parse(&f, n ? buf : NULL, n, "short.safetensors"), MH_ERR_FORMAT);
    CHECK(strcmp(mh_last_error(), want) == 0);
    CHECK(f == NULL);
    free(buf);
  }
  /* longer than the file: by one byte, by much, and over the 100 MB limit (checked first) */
  REJECT_RAW(3, "{}", "header length 3 exceeds the 2 bytes after the length field");
  REJECT_RAW(1000, "{\"t\":{" OK_ENTRY "}}", "header length 1000 exceeds the");
  REJECT_RAW(100000001, "{}", "header length 100000001 exceeds the 100000000-byte limit");
  REJECT_RAW(UINT64_MAX, "{}", "header length 18446744073709551615 exceeds the 100000000-byte limit");
  /* over the limit in a file that does hold that many bytes: only the limit stops the parse (the
   * pages after "{}" are zeros, never touched) */
  size_t big = 8 + 100000001;
  uint8_t *huge = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  CHECK(huge != MAP_FAILED);
  if (huge != MAP_FAILED) {
    huge[0] = 0x01, huge[1] = 0xE1, huge[2] = 0xF5, huge[3] = 0x05; /* 100000001 */
    huge[8] = '{', huge[9] = '}';
    mh_st_file *f = (mh_st_file *)1;
    CHECK_EQ_INT(mh_st_parse(&f, huge, big, "huge.safetensors"), MH_ERR_FORMAT);
    CHECK(strcmp(mh_last_error(),
                 "huge.safetensors: header length 100000001 exceeds the 100000000-byte limit") == 0);
    CHECK(f == NULL);
    munmap(huge, big);
  }
  /* a header of 0 or 1 bytes, with the rest of a header in the data section */
  REJECT_RAW(0, "{}", "header at byte 8: expected '{' as the first header byte but found the end of the header");
  REJECT_RAW(1, "{}", "header at byte 9: expected a tensor name but found the end of the header");
  REJECT_RAW(1, "{\"", "header at byte 9: expected a tensor name but found the end of the header");
  /* every other read that stops at the header's end */
  REJECT_RAW(2, "{} ", "the last 1 bytes of the 1-byte data section belong to no tensor"); /* whitespace */
  REJECT_RAW(4, "{\"t\":", "byte 12: expected ':' after the tensor name but found the end of the header");
  REJECT_RAW(3, "{\"ab\"", "header at byte 11: unterminated string");
  REJECT_RAW(4, "{\"a\\n\"", "header at byte 11: unterminated escape in string");
  REJECT_RAW(6, "{\"\\u0041\"", "header at byte 12: truncated \\u escape");
  REJECT_RAW(8, "{\"\\ud834\\udd1e\"", "header at byte 16: unpaired high surrogate in \\u escape");
  REJECT_RAW(4, "{\"\xe2\x82\xac\"", "header at byte 10: invalid UTF-8 in string");
#define SHAPE_AT "{\"t\":{\"dtype\":\"U8\",\"shape\":[" /* 28 bytes: a one-digit header ends at byte 37 */
#define AFTER_DIGIT "header at byte 37 in tensor 't': expected ',' or ']' in the shape but found the end of the header"
  REJECT_RAW(sizeof SHAPE_AT - 1, SHAPE_AT "1]", "expected a non-negative integer but found the end of the header");
  REJECT_RAW(sizeof SHAPE_AT, SHAPE_AT "01]", AFTER_DIGIT);
  REJECT_RAW(sizeof SHAPE_AT, SHAPE_AT "12]", AFTER_DIGIT);
  REJECT_RAW(sizeof SHAPE_AT, SHAPE_AT "2.0]", AFTER_DIGIT);
#undef SHAPE_AT
#undef AFTER_DIGIT
}

static void test_deep_nesting(void) {
  size_t n = 1000000;
  char *s = malloc(n + 64);
  const char *prefixes[] = {"",
                            "{\"a\":",
                            "{\"__metadata__\":{\"k\":",
                            "{\"a\":{\"shape\":",
                            "{\"a\":{\"dtype\":",
                            "{\"a\":{\"data_offsets\":",
                            "{\"__metadata__\":"};
  for (size_t k = 0; k < sizeof prefixes / sizeof *prefixes; k++) {
    for (int br = 0; br < 2; br++) {
      size_t p = strlen(prefixes[k]);
      memcpy(s, prefixes[k], p);
      memset(s + p, br ? '{' : '[', n);
      s[p + n] = 0;
      reject_(__LINE__, s, -1, 0, NULL);
    }
  }
  free(s);
}

static void test_truncation_and_header_length(void) {
  mh_st_tensor t[16];
  int n = make_tensors(t);
  char path[512];
  path_in(path, sizeof path, "trunc.safetensors");
  CHECK_OK(mh_st_write(path, t, n, k_meta, N_META));
  size_t len = 0;
  uint8_t *buf = read_all(path, &len);
  unlink(path);
  if (!buf) return;
  mh_st_file *f = NULL;
  CHECK_OK(mh_st_parse(&f, buf, len, "full"));
  mh_st_free(f);

  int accepted = 0;
  for (size_t l = 0; l < len; l++) {
    /* An exactly-sized heap copy so ASan sees any read past the end. */
    uint8_t *cut = malloc(l ? l : 1);
    memcpy(cut, buf, l);
    f = (mh_st_file *)1;
    int st = mh_st_parse(&f, cut, l, "trunc");
    if (st >= 0 || f != NULL) {
      accepted++;
      if (st == 0) mh_st_free(f);
    }
    free(cut);
  }
  CHECK_EQ_INT(accepted, 0);
  /* One byte too many is also wrong: the data section must be exactly covered. */
  uint8_t *longer = malloc(len + 1);
  memcpy(longer, buf, len);
  longer[len] = 0;
  CHECK_ERR(mh_st_parse(&f, longer, len + 1, "longer"));
  free(longer);
  CHECK_ERR(mh_st_parse(&f, NULL, 0, "empty"));

  /* Corrupted header length field. */
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
  const uint64_t bad[] = {0,
                          1,
                          hlen - 1,
                          hlen + 1,
                          hlen + 8,
                          len - 8,
                          len - 7,
                          len,
                          100000001ull,
                          UINT64_MAX,
                          1ull << 63,
                          (1ull << 32) + hlen,
                          0x00FFFFFFFFFFFFFFull};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    uint8_t *c = malloc(len);
    memcpy(c, buf, len);
    for (int i = 0; i < 8; i++) c[i] = (uint8_t)(bad[k] >> (8 * i));
    f = NULL;
    CHECK_EQ_INT(mh_st_parse(&f, c, len, "hdrlen"), MH_ERR_FORMAT);
    CHECK(f == NULL);
    /* beyond the limit or the file: the length check says so; otherwise the JSON does not parse */
    const char *why = bad[k] > 100000000u ? "exceeds the 100000000-byte limit"
                      : bad[k] > len - 8  ? "bytes after the length field"
                                          : "hdrlen: ";
    if (!strstr(mh_last_error(), "hdrlen: ") || !strstr(mh_last_error(), why))
      TL_FAIL("header length %" PRIu64 ": message '%s' lacks '%s'", bad[k], mh_last_error(), why);
    free(c);
  }
  /* Flipping any single header byte to a control character never crashes; most are rejected. */
  for (size_t i = 8; i < 8 + hlen; i++) {
    uint8_t *c = malloc(len);
    memcpy(c, buf, len);
    c[i] = 0x01;
    f = NULL;
    CHECK_ERR(mh_st_parse(&f, c, len, "flip"));
    free(c);
  }
  free(buf);
}

/* ---- writer arguments and atomicity ----------------------------------------------------------- */

static void test_write_args(void) {
  static const float v[4] = {1, 2, 3, 4};
  static const int64_t s4[] = {4}, s22[] = {2, 2}, sneg[] = {-4};
  char path[512];
  path_in(path, sizeof path, "args.safetensors");
  mh_st_tensor ok = mk("w", MH_DTYPE_F32, 1, s4, v), t[2];
  int tmp_left;

  t[0] = ok, t[1] = mk("w", MH_DTYPE_F32, 2, s22, v);
  CHECK_EQ_INT(mh_st_write(path, t, 2, NULL, 0), MH_ERR_INVALID_ARG); /* duplicate name */
  t[0] = ok, t[0].nbytes = 12;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG); /* nbytes mismatch */
  t[0] = ok, t[0].dtype = (mh_dtype)99;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, t[0].dtype = (mh_dtype)-1;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, t[0].ndim = MH_ST_MAX_DIMS + 1;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, t[0].ndim = -1;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = mk("neg", MH_DTYPE_F32, 1, sneg, v), t[0].nbytes = 0;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, strcpy(t[0].name, "__metadata__");
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, t[0].data = NULL;
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, strcpy(t[0].name, "bad\xff");
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  t[0] = ok, memset(t[0].name, 'x', sizeof t[0].name);
  CHECK_EQ_INT(mh_st_write(path, t, 1, NULL, 0), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write(path, NULL, 1, NULL, 0), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write(path, &ok, -1, NULL, 0), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write(NULL, &ok, 1, NULL, 0), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write("", &ok, 1, NULL, 0), MH_ERR_INVALID_ARG);
  const mh_st_meta dup[] = {{"k", "1"}, {"j", "2"}, {"k", "3"}}, nul[] = {{"k", NULL}},
                   bad8[] = {{"k", "\xc3"}};
  CHECK_EQ_INT(mh_st_write(path, &ok, 1, dup, 3), MH_ERR_INVALID_ARG);
  CHECK(strstr(mh_last_error(), "'k'") != NULL);
  CHECK_EQ_INT(mh_st_write(path, &ok, 1, nul, 1), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write(path, &ok, 1, bad8, 1), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_write(path, &ok, 1, NULL, 2), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(list_dir(g_dir, &tmp_left), 0); /* nothing was created */
  CHECK_EQ_INT(tmp_left, 0);
}

static void test_atomic(void) {
  static const float v1[2] = {1, 1}, v2[3] = {2, 2, 2};
  static const int64_t s2[] = {2}, s3[] = {3};
  mh_st_tensor t1 = mk("w", MH_DTYPE_F32, 1, s2, v1), t2 = mk("w", MH_DTYPE_F32, 1, s3, v2);
  char path[512], dir[300], sub[512];
  int tmp_left;

  /* Into a directory that does not exist: fails, nothing appears anywhere. */
  path_in(dir, sizeof dir, "missing");
  snprintf(path, sizeof path, "%s/x.safetensors", dir);
  CHECK_EQ_INT(mh_st_write(path, &t1, 1, NULL, 0), MH_ERR_IO);
  CHECK(strstr(mh_last_error(), path) != NULL);
  CHECK(access(dir, F_OK) != 0);
  CHECK_EQ_INT(list_dir(g_dir, &tmp_left), 0);

  /* Overwrite replaces the file; no temporaries are left. */
  path_in(path, sizeof path, "ckpt.safetensors");
  CHECK_OK(mh_st_write(path, &t1, 1, NULL, 0));
  CHECK_OK(mh_st_write(path, &t2, 1, NULL, 0));
  mh_st_file *f = NULL;
  CHECK_OK(mh_st_read(&f, path));
  const mh_st_tensor *w = mh_st_find(f, "w");
  CHECK(w && w->shape[0] == 3 && ((const float *)w->data)[2] == 2.0f);
  mh_st_free(f);
  CHECK_EQ_INT(list_dir(g_dir, &tmp_left), 1);
  CHECK_EQ_INT(tmp_left, 0);

  /* A rejected write leaves the existing file byte for byte as it was. */
  size_t len0 = 0, len1 = 0;
  uint8_t *before = read_all(path, &len0);
  mh_st_tensor bad = t1;
  bad.nbytes = 3;
  CHECK_ERR(mh_st_write(path, &bad, 1, NULL, 0));
  uint8_t *after = read_all(path, &len1);
  CHECK(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
  free(before);
  free(after);

  /* The rename fails when the target is a directory: the temporary is removed. */
  path_in(sub, sizeof sub, "isdir");
  CHECK_EQ_INT(mkdir(sub, 0755), 0);
  CHECK_EQ_INT(mh_st_write(sub, &t1, 1, NULL, 0), MH_ERR_IO);
  CHECK(strstr(mh_last_error(), "rename") != NULL);
  CHECK_EQ_INT(list_dir(g_dir, &tmp_left), 2);
  CHECK_EQ_INT(tmp_left, 0);
  CHECK_ERR(mh_st_read(&f, sub)); /* reading a directory fails cleanly too */
  CHECK(f == NULL);
  rmdir(sub);

  /* Reading: missing file is an I/O error naming the path. */
  path_in(path, sizeof path, "nope.safetensors");
  f = (mh_st_file *)1;
  CHECK_EQ_INT(mh_st_read(&f, path), MH_ERR_IO);
  CHECK(f == NULL);
  CHECK(strstr(mh_last_error(), "nope.safetensors") != NULL);
  path_in(path, sizeof path, "ckpt.safetensors");
  unlink(path);
}

static void test_null_safety(void) {
  mh_st_free(NULL);
  CHECK_EQ_INT(mh_st_count(NULL), 0);
  CHECK(mh_st_get(NULL, 0) == NULL);
  CHECK(mh_st_find(NULL, "a") == NULL);
  CHECK(mh_st_meta_get(NULL, "a") == NULL);
  uint8_t b[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  CHECK_EQ_INT(mh_st_parse(NULL, b, sizeof b, "x"), MH_ERR_INVALID_ARG);
  mh_st_file *f = NULL;
  CHECK_OK(mh_st_parse(&f, b, sizeof b, NULL));
  CHECK(f && mh_st_find(f, NULL) == NULL && mh_st_meta_get(f, NULL) == NULL);
  mh_st_free(f);
  CHECK_EQ_INT(mh_st_parse(&f, NULL, 16, "x"), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_read(NULL, "x"), MH_ERR_INVALID_ARG);
  CHECK_EQ_INT(mh_st_read(&f, NULL), MH_ERR_INVALID_ARG);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/mh_test_st_XXXXXX");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  test_round_trip();
  test_layout();
  test_accept();
  test_reject_syntax();
  test_reject_semantics();
  test_deep_nesting();
  test_truncation_and_header_length();
  test_header_length();
  test_write_args();
  test_atomic();
  test_null_safety();
  int tmp_left;
  if (list_dir(g_dir, &tmp_left) != 0) TL_FAIL("files left behind in %s", g_dir);
  rmdir(g_dir);
  return tl_exit();
}
