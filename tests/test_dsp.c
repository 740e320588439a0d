/* The DSP backend under qemu-hexagon: the session handshake, the HVX int8 GEMM against the host
 * oracle with == on random and odd shapes, +-127 edges, accumulation and K large enough to be split
 * into VTCM-sized chunks; malformed messages rejected with a status (and the DSP still serving);
 * a killed DSP process reported as an error. Skips (77) where the DSP program or emulator is absent. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/dsp/dsp.h"
#include "mandheling.h"
#include "ops/ops.h"
#include "core/rng.h"
#include "testlib.h"
#include "train/trainer.h"

/* lenet5 niti on synthetic data: `steps` steps; the DSP process is killed after `kill_at` steps
 * (-1: never). Returns the int8 parameters. */
static int8_t *train_lenet5(const char *backend, int steps, int kill_at, mh_dsp_report *rep) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.backend = backend, cfg.batch = 8;
  if (mh_model_create(&m, "lenet5", 4) || mh_trainer_create(&t, m, &cfg)) {
    TL_FAIL("lenet5 niti on %s: %s", backend, mh_last_error());
    mh_model_free(m);
    return NULL;
  }
  static float x[8 * 784];
  int32_t y[8];
  for (int s = 0; s < steps; s++) {
    if (s == kill_at && t->dsp) kill(t->dsp->pid, SIGKILL);
    for (int i = 0; i < 8 * 784; i++) x[i] = (float)((i * 2654435761u + s * 97u) % 997) / 498.f - 1.f;
    for (int i = 0; i < 8; i++) y[i] = (i + 3 * s) % 10;
    CHECK_OK(mh_trainer_step(t, x, y, 8, NULL));
  }
  mh_trainer_dsp_report(t, rep);
  int8_t *out = malloc((size_t)m->g.n_param_floats);
  memcpy(out, m->qparams, (size_t)m->g.n_param_floats);
  mh_trainer_free(t);
  mh_model_free(m);
  return out;
}

/* The HVX requantise epilogue against the portable kernel: every shift, both modes, odd lengths,
 * INT32_MIN/MAX and values at every rounding boundary. */
static void requant(mh_dsp *d) {
  const mh_cpu_kernels *ref = mh_cpu_kernels_get(1);
  mh_rng r = mh_rng_make(17);
  static const long lens[] = {1, 5, 127, 128, 129, 1000, 4097};
  enum { MAXN = 4097 };
  static int32_t x[MAXN];
  static int8_t y[MAXN], want[MAXN];
  for (int mode = 0; mode < 2; mode++)
    for (int s = 0; s <= 31; s++)
      for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        long n = lens[li];
        for (long i = 0; i < n; i++) {
          uint32_t u = (uint32_t)(mh_rng_next(&r) >> 32);
          int kind = (int)(i % 7);
          x[i] = kind == 0 ? (int32_t)u                                      /* anything */
                 : kind == 1 ? (int32_t)(u >> (u % 31))                      /* every magnitude */
                 : kind == 2 ? ((int32_t)(u % 256) - 128) * (int32_t)(1u << (s < 24 ? s : 24)) /* around 127 */
                 : kind == 3 ? (i & 8 ? INT32_MIN : INT32_MAX)
                 : kind == 4 ? (int32_t)((u & 1 ? -1 : 1) * (int32_t)((1u << (s ? s - 1 : 0)) + (u % 3) - 1)) /* ties */
                 : kind == 5 ? 0
                             : -(int32_t)(u % 100000);
        }
        mh_round_mode m = mode ? MH_ROUND_PSTO : MH_ROUND_NEAREST;
        mh_requant_stats a = {0, 0}, b = {0, 0};
        ref->requant_s8(x, want, n, s, m, 0, 0, &a);
        if (mh_dsp_requant_s8(d, x, n, y, s, m, &b)) {
          TL_FAIL("DSP requantise n %ld shift %d: %s", n, s, mh_last_error());
          return;
        }
        tl_checks++;
        long bad = -1;
        for (long i = 0; i < n && bad < 0; i++)
          if (y[i] != want[i]) bad = i;
        if (bad >= 0 || a.max_abs != b.max_abs || a.saturated != b.saturated) {
          TL_FAIL("DSP requantise %s n %ld shift %d: first diff at %ld (x %d: %d vs %d), max %u vs %u, saturated %ld vs %ld",
                  mode ? "psto" : "nearest", n, s, bad, bad >= 0 ? x[bad] : 0, bad >= 0 ? y[bad] : 0,
                  bad >= 0 ? want[bad] : 0, b.max_abs, a.max_abs, b.saturated, a.saturated);
          return;
        }
      }
}

/* The GEMM with the fused requantise epilogue against GEMM + bias + requantise on the host. */
static void fused(mh_dsp *d) {
  const mh_cpu_kernels *ref = mh_cpu_kernels_get(1);
  mh_rng r = mh_rng_make(23);
  static const int shapes[][4] = {{32, 4, 9, 0}, {33, 7, 100, 1}, {5, 50, 300, 0}, {70, 3, 2000, 1}, {1, 1, 1, 0}};
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
    for (int mode = 0; mode < 2; mode++)
      for (int s = 0; s < 24; s += 3) {
        int m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], with_bias = shapes[t][3];
        int8_t *a = malloc((size_t)m * k), *b = malloc((size_t)k * n), *y = malloc((size_t)m * n), *want = malloc((size_t)m * n);
        int32_t *c = malloc((size_t)m * n * 4), bias[128];
        for (long i = 0; i < (long)m * k; i++) a[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
        for (long i = 0; i < (long)k * n; i++) b[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
        for (int i = 0; i < m; i++) bias[i] = i == 0 ? INT32_MAX : i == 1 ? -INT32_MAX + 5 : (int32_t)mh_rng_below(&r, 1u << 20) - (1 << 19);
        mh_gemm_s8_args g = {m, n, k, a, k, 0, b, n, 0, c, n, 0};
        mh_gemm_s8_ref(&g);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < n; j++) c[i * n + j] = with_bias ? mh_q_add_sat32(c[i * n + j], bias[i]) : c[i * n + j];
        mh_round_mode rm = mode ? MH_ROUND_PSTO : MH_ROUND_NEAREST;
        mh_requant_stats hs = {0, 0}, ds = {0, 0};
        ref->requant_s8(c, want, (long)m * n, s, rm, 0, 0, &hs);
        int st = mh_dsp_gemm_s8_requant(d, &g, with_bias ? bias : NULL, s, rm, y, n, &ds);
        tl_checks++;
        if (st) TL_FAIL("fused GEMM %dx%dx%d: %s", m, n, k, mh_last_error());
        else if (memcmp(y, want, (size_t)m * n) || hs.max_abs != ds.max_abs || hs.saturated != ds.saturated)
          TL_FAIL("fused GEMM %dx%dx%d shift %d %s: outputs %s, max %u vs %u, saturated %ld vs %ld", m, n, k, s,
                  mode ? "psto" : "nearest", memcmp(y, want, (size_t)m * n) ? "differ" : "equal", ds.max_abs,
                  hs.max_abs, ds.saturated, hs.saturated);
        free(a), free(b), free(y), free(want), free(c);
      }
}

/* HVX ReLU forward and backward on int8 against the host's definition (src/ops/int_simple.c). */
static void relu(mh_dsp *d) {
  static const uint32_t lens[] = {1, 100, 128, 129, 1000, 5000};
  mh_rng r = mh_rng_make(31);
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (int bwd = 0; bwd < 2; bwd++) {
      uint32_t n = lens[li], a_off = MH_WIRE_PAGE, b_off = a_off + (n + 127) / 128 * 128, o_off = b_off + (n + 127) / 128 * 128;
      int8_t *a = (int8_t *)mh_dsp_at(d, a_off), *b = (int8_t *)mh_dsp_at(d, b_off), want[5000];
      for (uint32_t i = 0; i < n; i++) {
        a[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127), b[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
        if (i % 11 == 0) a[i] = 0;
        want[i] = bwd ? (a[i] > 0 ? b[i] : 0) : (a[i] > 0 ? a[i] : 0);
      }
      mh_wire_msg *msg = mh_dsp_msg(d);
      memset(msg, 0, sizeof *msg);
      msg->op = bwd ? MH_WIRE_RELU_BWD_S8 : MH_WIRE_RELU_S8;
      mh_wire_eltwise_s8 e = {a_off, b_off, o_off, n};
      msg->args.eltwise = e;
      CHECK_OK(mh_dsp_call(d, 20000));
      CHECK(memcmp(mh_dsp_at(d, o_off), want, n) == 0);
    }
}

/* HVX residual add against mh__int_add for exponent pairs that align both ways and overflow. */
static void add(mh_dsp *d) {
  static const uint32_t lens[] = {1, 127, 128, 300, 4096};
  mh_rng r = mh_rng_make(43);
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (int ea = -3; ea <= 3; ea += 3)
      for (int eb = -12; eb <= 3; eb += 5) {
        uint32_t n = lens[li], a_off = MH_WIRE_PAGE, b_off = a_off + (n + 127) / 128 * 128, o_off = b_off + (n + 127) / 128 * 128;
        int8_t *a = (int8_t *)mh_dsp_at(d, a_off), *b = (int8_t *)mh_dsp_at(d, b_off), *want = malloc(n);
        int small = (int)(li & 1); /* small values: no overflow, the exponent stays */
        for (uint32_t i = 0; i < n; i++) {
          a[i] = (int8_t)(small ? (int)mh_rng_below(&r, 61) - 30 : (int)mh_rng_below(&r, 255) - 127);
          b[i] = (int8_t)(small ? (int)mh_rng_below(&r, 61) - 30 : (int)mh_rng_below(&r, 255) - 127);
        }
        int ew = mh__int_add(NULL, a, ea, b, eb, want, n);
        mh_wire_msg *msg = mh_dsp_msg(d);
        memset(msg, 0, sizeof *msg);
        msg->op = MH_WIRE_ADD_S8;
        mh_wire_eltwise_s8 e = {a_off, b_off, o_off, n, ea, eb};
        msg->args.eltwise = e;
        CHECK_OK(mh_dsp_call(d, 20000));
        tl_checks++;
        if (memcmp(mh_dsp_at(d, o_off), want, n) || msg->args.eltwise.ey != ew)
          TL_FAIL("DSP add n %u ea %d eb %d: %s, exponent %d vs %d", n, ea, eb,
                  memcmp(mh_dsp_at(d, o_off), want, n) ? "values differ" : "values equal", msg->args.eltwise.ey, ew);
        free(want);
      }
}

/* HVX 2x2 max-pool forward and backward on int8 planes against the host's rule (first maximum in
 * scan order; floor mode), with ties forced by a small value range, odd sizes and wide rows. */
static void maxpool(mh_dsp *d) {
  static const uint32_t shapes[][3] = {{3, 28, 28}, {2, 14, 14}, {4, 7, 9}, {1, 2, 300}, {2, 5, 131}, {1, 260, 2}};
  mh_rng r = mh_rng_make(41);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int range = 0; range < 2; range++) {
      uint32_t pl = shapes[s][0], h = shapes[s][1], w = shapes[s][2], P = h / 2, Q = w / 2;
      uint32_t n = pl * h * w, m = pl * P * Q;
      uint32_t x_off = MH_WIRE_PAGE, y_off = x_off + (n + 127) / 128 * 128, dx_off = y_off + (m + 127) / 128 * 128;
      int8_t *x = (int8_t *)mh_dsp_at(d, x_off), *y = (int8_t *)mh_dsp_at(d, y_off);
      int8_t *wy = malloc(m), *wdx = calloc(n, 1), *dy = malloc(m);
      for (uint32_t i = 0; i < n; i++) x[i] = (int8_t)(range ? (int)mh_rng_below(&r, 3) - 1 : (int)mh_rng_below(&r, 255) - 127);
      for (uint32_t i = 0; i < m; i++) dy[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
      for (uint32_t t = 0; t < pl; t++)
        for (uint32_t p = 0; p < P; p++)
          for (uint32_t q = 0; q < Q; q++) {
            const int8_t *b = x + ((size_t)t * h + 2 * p) * w + 2 * q;
            size_t best = 0, off[4] = {0, 1, w, w + 1};
            for (int k = 1; k < 4; k++)
              if (b[off[k]] > b[best]) best = off[k];
            wy[((size_t)t * P + p) * Q + q] = b[best];
            wdx[((size_t)t * h + 2 * p) * w + 2 * q + best] = dy[((size_t)t * P + p) * Q + q];
          }
      mh_wire_msg *msg = mh_dsp_msg(d);
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_MAXPOOL2_S8;
      mh_wire_pool_s8 a = {x_off, y_off, dx_off, pl, h, w};
      msg->args.pool = a;
      CHECK_OK(mh_dsp_call(d, 20000));
      if (memcmp(y, wy, m)) TL_FAIL("DSP max-pool %ux%ux%u%s: forward differs", pl, h, w, range ? " (ties)" : "");
      memcpy(y, dy, m); /* backward reads dy where y was */
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_MAXPOOL2_BWD_S8;
      msg->args.pool = a;
      CHECK_OK(mh_dsp_call(d, 20000));
      if (memcmp(mh_dsp_at(d, dx_off), wdx, n)) TL_FAIL("DSP max-pool %ux%ux%u%s: backward differs", pl, h, w, range ? " (ties)" : "");
      tl_checks += 2;
      free(wy), free(wdx), free(dy);
    }
}

/* Batch splitting: a weight-gradient-shaped GEMM (K = samples x positions) too big for the shared
 * region runs as several K parts accumulating on the DSP, and one too big for VTCM in K chunks on
 * the DSP; both equal the unsplit oracle bit for bit. */
static void splitting(void) {
  mh_dsp *d = NULL;
  CHECK_OK(mh_dsp_open(&d, 64u << 10)); /* a 64 KiB tensor area */
  if (!d) return;
  mh_rng r = mh_rng_make(5);
  const int cases[][4] = {{16, 24, 6000, 0}, {9, 40, 20000, 1}, {32, 32, 3000, 0}}; /* m, n, k, trans_a */
  for (int t = 0; t < 3; t++) {
    int m = cases[t][0], n = cases[t][1], k = cases[t][2], ta = cases[t][3];
    int8_t *a = malloc((size_t)m * k), *b = malloc((size_t)k * n);
    int32_t *c = malloc((size_t)m * n * 4), *want = malloc((size_t)m * n * 4);
    for (long i = 0; i < (long)m * k; i++) a[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
    for (long i = 0; i < (long)k * n; i++) b[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
    for (long i = 0; i < (long)m * n; i++) c[i] = want[i] = (int32_t)i;
    mh_gemm_s8_args g = {m, n, k, a, ta ? m : k, ta, b, n, 0, want, n, 1};
    mh_gemm_s8_ref(&g);
    g.c = c;
    mh_dsp_counts cnt = {0};
    CHECK_OK(mh_dsp_gemm_s8(d, &g, &cnt));
    CHECK(memcmp(c, want, (size_t)m * n * 4) == 0);
    CHECK(cnt.split_parts > 1); /* A and B never fit 64 KiB at once here */
    /* the same GEMM with room in the region: one message, split on the DSP into VTCM chunks */
    mh_dsp *big = NULL;
    CHECK_OK(mh_dsp_open(&big, 8u << 20));
    if (big) {
      mh_dsp_counts c2 = {0};
      for (long i = 0; i < (long)m * n; i++) c[i] = (int32_t)i;
      CHECK_OK(mh_dsp_gemm_s8(big, &g, &c2));
      CHECK(memcmp(c, want, (size_t)m * n * 4) == 0);
      CHECK(c2.split_parts == 0);
      if (k > 4 * (int)mh_wire_gemm_steps(MH_WIRE_VTCM_BYTES, (uint32_t)m)) CHECK(c2.vtcm_chunks >= 2);
      mh_dsp_close(big);
    }
    free(a), free(b), free(c), free(want);
  }
  mh_dsp_close(d);
}

/* Killing the DSP mid-training: the failing GEMM and every later one run on the CPU, nothing is
 * lost, and the weights equal a CPU-only run's. */
static void recovery(void) {
  mh_dsp_report rc, rd, rk;
  int8_t *cpu = train_lenet5("cpu", 12, -1, &rc), *dsp = train_lenet5("dsp", 12, -1, &rd),
         *killed = train_lenet5("dsp", 12, 5, &rk);
  if (cpu && dsp && killed) {
    CHECK(memcmp(cpu, dsp, 61706) == 0);
    CHECK(memcmp(cpu, killed, 61706) == 0);
    CHECK(rd.active && rd.gemms > 0 && rd.cpu_fallbacks == 0);
    CHECK(!rk.active && rk.gemms > 0 && rk.cpu_fallbacks > 0);
  }
  free(cpu), free(dsp), free(killed);
}

/* Places A (m x k), B (k x n) and C (m x n int32) in the region and runs one GEMM. */
static int dsp_gemm(mh_dsp *d, int m, int n, int k, const int8_t *a, const int8_t *b, int32_t *c, int accumulate) {
  uint32_t a_off = MH_WIRE_PAGE, b_off = a_off + (uint32_t)(m * k + 127) / 128 * 128;
  uint32_t c_off = b_off + (uint32_t)(k * n + 127) / 128 * 128;
  if ((size_t)c_off + (size_t)m * n * 4 > d->region_bytes) return -100;
  memcpy(mh_dsp_at(d, a_off), a, (size_t)m * k);
  memcpy(mh_dsp_at(d, b_off), b, (size_t)k * n);
  memcpy(mh_dsp_at(d, c_off), c, (size_t)m * n * 4);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_GEMM_S8;
  mh_wire_gemm_s8 g = {(uint32_t)m, (uint32_t)n, (uint32_t)k, a_off, (uint32_t)k, b_off, (uint32_t)n, c_off, (uint32_t)n,
                       (uint32_t)accumulate};
  msg->args.gemm = g;
  int st = mh_dsp_call(d, 60000);
  if (st == 0) memcpy(c, mh_dsp_at(d, c_off), (size_t)m * n * 4);
  return st;
}

static void gemm_case(mh_dsp *d, mh_rng *r, int m, int n, int k, int edge, int accumulate) {
  int8_t *a = malloc((size_t)m * k), *b = malloc((size_t)k * n);
  int32_t *c = malloc((size_t)m * n * 4), *want = malloc((size_t)m * n * 4);
  for (long i = 0; i < (long)m * k; i++) a[i] = edge ? (i % 3 ? 127 : -127) : (int8_t)((int)mh_rng_below(r, 255) - 127);
  for (long i = 0; i < (long)k * n; i++) b[i] = edge ? (i % 5 ? -127 : 127) : (int8_t)((int)mh_rng_below(r, 255) - 127);
  for (long i = 0; i < (long)m * n; i++) c[i] = want[i] = (int32_t)mh_rng_below(r, 2001) - 1000;
  mh_gemm_s8_args o = {m, n, k, a, k, 0, b, n, 0, want, n, accumulate};
  mh_gemm_s8_ref(&o);
  int st = dsp_gemm(d, m, n, k, a, b, c, accumulate);
  if (st) TL_FAIL("DSP gemm %dx%dx%d: %s", m, n, k, mh_last_error());
  else {
    long bad = -1;
    for (long i = 0; i < (long)m * n && bad < 0; i++)
      if (c[i] != want[i]) bad = i;
    tl_checks++;
    if (bad >= 0) TL_FAIL("DSP gemm %dx%dx%d%s%s: C[%ld] = %d, host %d", m, n, k, edge ? " (edges)" : "", accumulate ? " (+=)" : "", bad, c[bad], want[bad]);
  }
  free(a), free(b), free(c), free(want);
}

static uint32_t bad_message(mh_dsp *d, uint32_t op, const mh_wire_gemm_s8 *g) {
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = op;
  if (g) msg->args.gemm = *g;
  mh_dsp_call(d, 20000);
  return msg->status;
}

int main(void) {
  char prog[512], emu[512], why[640];
  if (!mh_dsp_locate(prog, sizeof prog, emu, sizeof emu, why, sizeof why)) {
    printf("SKIP: %s\n", why);
    return 77;
  }
  mh_dsp *d = NULL;
  CHECK_OK(mh_dsp_open(&d, 8u << 20));
  if (!d) return tl_exit();
  mh_rng r = mh_rng_make(99);
  static const int shapes[][3] = {{1, 1, 1}, {32, 4, 4}, {33, 5, 7}, {31, 3, 9}, {64, 17, 100}, {7, 64, 33},
                                  {96, 40, 288}, {6, 1, 25}, {10, 3, 9000}, {40, 9, 20000},
                                  {33, 300, 77}, {5, 257, 1000}}; /* whole 128-column panels of B and a tail */
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    gemm_case(d, &r, shapes[i][0], shapes[i][1], shapes[i][2], 0, 0);
    gemm_case(d, &r, shapes[i][0], shapes[i][1], shapes[i][2], 0, 1);
  }
  gemm_case(d, &r, 35, 6, 131, 1, 0);  /* +-127 everywhere */
  gemm_case(d, &r, 3, 2, 65536, 1, 0); /* sums near 2^30, through several K chunks */
  requant(d);
  fused(d);
  relu(d);
  maxpool(d);
  add(d);

  /* malformed messages: a status back, and the DSP keeps serving */
  mh_wire_gemm_s8 g = {8, 8, 8, MH_WIRE_PAGE, 8, MH_WIRE_PAGE + 64, 8, MH_WIRE_PAGE + 128, 8, 0};
  CHECK_EQ_INT(bad_message(d, 99, NULL), MH_WIRE_E_OP);
  mh_wire_gemm_s8 oob = g;
  oob.c_off = (uint32_t)d->region_bytes - 16;
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_BOUNDS);
  oob = g, oob.a_off = 0; /* the header page is not a tensor */
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_BOUNDS);
  oob = g, oob.b_off = 0xfffffff0u;
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_BOUNDS);
  oob = g, oob.lda = 4; /* row stride shorter than a row */
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_ARG);
  oob = g, oob.k = 0;
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_ARG);
  oob = g, oob.c_off += 2; /* misaligned int32 output */
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_ARG);
  oob = g, oob.m = 0x7fffffff;
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &oob), MH_WIRE_E_ARG);
  CHECK_EQ_INT(bad_message(d, MH_WIRE_GEMM_S8, &g), MH_WIRE_OK);
  gemm_case(d, &r, 33, 5, 7, 0, 0);

  /* a DSP that dies mid-session is an error, not a hang or a crash */
  kill(d->pid, SIGKILL);
  int8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 1, 1};
  int32_t c[1] = {0};
  CHECK_ERR(dsp_gemm(d, 1, 1, 4, a, b, c, 0));
  CHECK(strstr(mh_last_error(), "DSP") != NULL);
  CHECK_ERR(dsp_gemm(d, 1, 1, 4, a, b, c, 0)); /* and stays an error */
  mh_dsp_close(d);
  /* a fresh session works again */
  CHECK_OK(mh_dsp_open(&d, 1u << 20));
  if (d) {
    gemm_case(d, &r, 9, 9, 9, 0, 0);
    mh_dsp_close(d);
  }
  splitting();
  recovery();
  return tl_exit();
}
