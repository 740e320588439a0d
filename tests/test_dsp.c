/* The DSP backend under qemu-hexagon: the session handshake, the HVX int8 GEMM against the host
 * oracle with == on random and odd shapes, +-127 edges, accumulation and K large enough to be split
 * into VTCM-sized chunks; malformed messages (every check of every op, a wrong sequence number, a
 * bad region header) rejected with the status of that check, and the DSP still serving;
 * a killed DSP process reported as an error. Skips (77) where the DSP program or emulator is absent. */
#define _GNU_SOURCE /* memfd_create, pipe2 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/cost.h"
#include "backend/dsp/dsp.h"
#include "backend/dsp/packets.h"
#include "mandheling.h"
#include "ops/ops.h"
#include "core/rng.h"
#include "testlib.h"
#include "train/trainer.h"

/* Kills the DSP while it runs a backward pass: the backend's wait, wrapped, kills the process
 * between post and wait of the kill_wait-th backward pass (after post has sent its messages). */
static int kill_wait = -1, bwd_waits;
static int (*real_wait)(void *, struct mh_op_ctx *, unsigned);
static mh_dsp *victim;
static int wait_killing(void *self, struct mh_op_ctx *ctx, unsigned passes) {
  if ((passes & (MH_PASS_BWD_W | MH_PASS_BWD_D)) && bwd_waits++ == kill_wait && victim->pid > 0)
    kill(victim->pid, SIGKILL);
  return real_wait(self, ctx, passes);
}

/* lenet5 niti on synthetic data: `steps` steps; the DSP process is killed after `kill_at` steps
 * (-1: never), or during the `kill_wait`-th backward pass the DSP runs (file-level, -1: never).
 * Returns the int8 parameters. */
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
  if (kill_wait >= 0 && t->dsp_backend) {
    real_wait = t->dsp_backend->be.wait, victim = t->dsp, bwd_waits = 0;
    t->dsp_backend->be.wait = wait_killing;
  }
  static float x[8 * 784];
  int32_t y[8];
  for (int s = 0; s < steps; s++) {
    if (s == kill_at && t->dsp && t->dsp->pid > 0) kill(t->dsp->pid, SIGKILL); /* pid 0: the process group */
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

/* The host's 2x2 max-pool: y from x, and dx (zeroed by the caller) from dy; each window's error
 * goes to its first maximum in scan order. */
static void pool_ref(const int8_t *x, const int8_t *dy, uint32_t pl, uint32_t h, uint32_t w, int8_t *y, int8_t *dx) {
  uint32_t P = h / 2, Q = w / 2;
  for (uint32_t t = 0; t < pl; t++)
    for (uint32_t p = 0; p < P; p++)
      for (uint32_t q = 0; q < Q; q++) {
        const int8_t *b = x + ((size_t)t * h + 2 * p) * w + 2 * q;
        size_t best = 0, off[4] = {0, 1, w, w + 1};
        for (int k = 1; k < 4; k++)
          if (b[off[k]] > b[best]) best = off[k];
        y[((size_t)t * P + p) * Q + q] = b[best];
        dx[((size_t)t * h + 2 * p) * w + 2 * q + best] = dy[((size_t)t * P + p) * Q + q];
      }
}

/* HVX 2x2 max-pool forward and backward on int8 planes against the host's rule (first maximum in
 * scan order; floor mode), with ties forced by a small value range, odd sizes and wide rows, and
 * small even planes (several window rows per vector, the last step partial). */
static void maxpool(mh_dsp *d) {
  static const uint32_t shapes[][3] = {{3, 28, 28}, {2, 14, 14}, {4, 7, 9},  {1, 2, 300}, {2, 5, 131},
                                       {1, 260, 2}, {3, 10, 10}, {5, 6, 6},  {2, 4, 64}};
  mh_rng r = mh_rng_make(41);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int range = 0; range < 3; range++) { /* 2: no ties, the input ending at the region's end */
      uint32_t pl = shapes[s][0], h = shapes[s][1], w = shapes[s][2], P = h / 2, Q = w / 2;
      uint32_t n = pl * h * w, m = pl * P * Q;
      uint32_t x_off = MH_WIRE_PAGE, y_off = x_off + (n + 127) / 128 * 128, dx_off = y_off + (m + 127) / 128 * 128;
      if (range == 2)
        x_off = ((uint32_t)d->region_bytes - n) / 128 * 128, y_off = MH_WIRE_PAGE, dx_off = y_off + (m + 127) / 128 * 128;
      int8_t *x = (int8_t *)mh_dsp_at(d, x_off), *y = (int8_t *)mh_dsp_at(d, y_off);
      int8_t *wy = malloc(m), *wdx = calloc(n, 1), *dy = malloc(m);
      for (uint32_t i = 0; i < n; i++) x[i] = (int8_t)(range == 1 ? (int)mh_rng_below(&r, 3) - 1 : (int)mh_rng_below(&r, 255) - 127);
      for (uint32_t i = 0; i < m; i++) dy[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
      pool_ref(x, dy, pl, h, w, wy, wdx);
      mh_wire_msg *msg = mh_dsp_msg(d);
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_MAXPOOL2_S8;
      mh_wire_pool_s8 a = {x_off, y_off, dx_off, pl, h, w};
      msg->args.pool = a;
      CHECK_OK(mh_dsp_call(d, 20000));
      if (memcmp(y, wy, m)) TL_FAIL("DSP max-pool %ux%ux%u%s: forward differs", pl, h, w, range == 1 ? " (ties)" : range ? " (at the end)" : "");
      memcpy(y, dy, m); /* backward reads dy where y was */
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_MAXPOOL2_BWD_S8;
      msg->args.pool = a;
      CHECK_OK(mh_dsp_call(d, 20000));
      if (memcmp(mh_dsp_at(d, dx_off), wdx, n)) TL_FAIL("DSP max-pool %ux%ux%u%s: backward differs", pl, h, w, range == 1 ? " (ties)" : range ? " (at the end)" : "");
      tl_checks += 2;
      if (range == 2) memset(x, 0, n); /* the region's end as later tests expect it: zeros */
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

/* The DSP cost model (cost.c) against the packets a niti model executes (2 steps after 2 warm-up
 * steps): the step within 1.5x, each segment's, GEMM and max-pool layer's pass within 3x (a
 * segment's packets count at its first layer; both zoo models run one). A forward whose
 * predicted shift falls back runs twice, which the model cannot know: lenet5's fc2 forward counts
 * 2.1-2.6x its modelled packets for that reason. */
static void cost_model(const char *model, int B, int n_layers, int n_segments) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.backend = "dsp", cfg.batch = B;
  if (mh_model_create(&m, model, 4) || mh_trainer_create(&t, m, &cfg)) {
    TL_FAIL("%s niti on the DSP: %s", model, mh_last_error());
    mh_model_free(m);
    return;
  }
  enum { MAXB = 16 };
  static float x[MAXB * 784];
  int32_t y[MAXB];
  const mh_graph *g = &m->g;
  double *before = calloc((size_t)g->n_nodes * 2, sizeof(double));
  for (int s = 0; s < 4 && t->dsp_backend && t->dsp_backend->node_packets; s++) {
    if (s == 2) memcpy(before, t->dsp_backend->node_packets, sizeof(double) * 2 * g->n_nodes);
    for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 2654435761u + s * 97u) % 997) / 498.f - 1.f;
    for (int i = 0; i < B; i++) y[i] = (i + 3 * s) % 10;
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
  }
  if (t->dsp_backend && t->dsp_backend->node_packets) {
    double counted = 0, modelled = 0;
    int layers = 0, segments = 0;
    const int *seg = mh_exec_segment_first(t->ex);
    for (int i = 1; i < g->n_nodes; i++) {
      int last = mh_exec_segment_last(seg, g->n_nodes, i); /* a segment's packets count at its first node */
      for (int b = 0; b < 2; b++) {
        double c = (t->dsp_backend->node_packets[2 * i + b] - before[2 * i + b]) / 2, w[MH_DSPW_COUNT] = {0};
        if (last > i) mh_dsp_segment_work(g, i, last, b, B, w);
        else mh_dsp_node_work(g, i, b ? MH_PASS_BWD_W | MH_PASS_BWD_D : MH_PASS_FWD, MH_PRECISION_INTEGER, B, w);
        double mo = mh_dsp_work_packets(w);
        counted += c, modelled += mo;
        if (c <= 0 || (last == i && g->nodes[i].op == MH_OP_RELU)) continue;
        layers++;
        if (!(c < 3 * mo && mo < 3 * c)) TL_FAIL("%s %s: %.0f packets counted, %.0f modelled", g->nodes[i].name, b ? "bwd" : "fwd", c, mo);
      }
      segments += last > i;
      i = last;
    }
    CHECK_EQ_INT(layers, n_layers); /* every segment, GEMM and max-pool layer, forward and backward */
    CHECK_EQ_INT(segments, n_segments);
    CHECK(counted < 1.5 * modelled && modelled < 1.5 * counted);
  } else
    printf("# cost model: packets are not counted here, skipped\n");
  free(before);
  mh_trainer_free(t);
  mh_model_free(m);
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
  free(killed);
  /* killed in the middle of a backward pass (the 13th: step 3, some layers' gradients already
   * written by the DSP in that step): the CPU redoes that pass from its inputs */
  kill_wait = 13;
  killed = train_lenet5("dsp", 12, -1, &rk);
  kill_wait = -1;
  if (cpu && killed) {
    CHECK(bwd_waits > 13);
    CHECK(memcmp(cpu, killed, 61706) == 0);
    CHECK(!rk.active && rk.cpu_fallbacks > 0);
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

/* ---- malformed messages ----------------------------------------------------------------------
 * One case per check the DSP makes on a message: the valid message of an operation with only the
 * field (or the few fields) a check looks at changed, so that check alone rejects it and without
 * it the status would be another. After every case the DSP serves the valid message again, with
 * the right output. */

#define PG MH_WIRE_PAGE
#define WIRE_WORD(type, field) ((int)(offsetof(type, field) / 4) + 1) /* 1 + a word of msg->args.raw */
#define GM(f) WIRE_WORD(mh_wire_gemm_s8, f)
#define RQ(f) WIRE_WORD(mh_wire_requant_s8, f)
#define EW(f) WIRE_WORD(mh_wire_eltwise_s8, f)
#define PL(f) WIRE_WORD(mh_wire_pool_s8, f)

/* The valid messages: GEMM 5 x 6 x 7 (A 35 bytes at PG, B 42 at PG + 128, int32 C 120 at PG + 256);
 * requantise 200 int32 (x 800 bytes at PG, y at PG + 1024); element-wise ops on 200 int8 (a at PG,
 * b at PG + 256, out at PG + 512); max-pool of 2 planes of 6 x 10 (x 120 bytes at PG, y or dy 30 at
 * PG + 256, dx 120 at PG + 512). */
enum { GM_M = 5, GM_N = 6, GM_K = 7, RQ_N = 200, EW_N = 200, PL_PLANES = 2, PL_H = 6, PL_W = 10 };
enum { ELTWISE_ALL = 100, ELTWISE_BWD, POOL_BOTH }; /* cases sent as each of several operations */

typedef struct wire_case {
  uint32_t op; /* a wire op, or one of the groups above */
  struct {
    int word; /* WIRE_WORD of the field; 0: none */
    uint32_t value;
  } set[4];
  uint32_t want;
  const char *what; /* what the case pins */
} wire_case;

static const char *wire_op_name(uint32_t op) {
  switch (op) {
    case MH_WIRE_GEMM_S8: return "GEMM_S8";
    case MH_WIRE_REQUANT_S8: return "REQUANT_S8";
    case MH_WIRE_RELU_S8: return "RELU_S8";
    case MH_WIRE_RELU_BWD_S8: return "RELU_BWD_S8";
    case MH_WIRE_ADD_S8: return "ADD_S8";
    case MH_WIRE_MAXPOOL2_S8: return "MAXPOOL2_S8";
    case MH_WIRE_MAXPOOL2_BWD_S8: return "MAXPOOL2_BWD_S8";
    default: return "an unknown op";
  }
}

static void wire_valid(uint32_t op, mh_wire_msg *msg) {
  memset(msg, 0, sizeof *msg);
  msg->op = op;
  if (op == MH_WIRE_GEMM_S8) {
    mh_wire_gemm_s8 g = {GM_M, GM_N, GM_K, PG, GM_K, PG + 128, GM_N, PG + 256, GM_N};
    msg->args.gemm = g;
  } else if (op == MH_WIRE_REQUANT_S8) {
    mh_wire_requant_s8 q = {PG, PG + 1024, RQ_N, 5, 1};
    msg->args.requant = q;
  } else if (op == MH_WIRE_RELU_S8 || op == MH_WIRE_RELU_BWD_S8 || op == MH_WIRE_ADD_S8) {
    mh_wire_eltwise_s8 e = {PG, PG + 256, PG + 512, EW_N, -2, 1};
    msg->args.eltwise = e;
  } else if (op == MH_WIRE_MAXPOOL2_S8 || op == MH_WIRE_MAXPOOL2_BWD_S8) {
    mh_wire_pool_s8 p = {PG, PG + 256, PG + 512, PL_PLANES, PL_H, PL_W};
    msg->args.pool = p;
  }
}

/* Sends the valid message of `op` (an unknown op: the GEMM's) on fresh inputs and compares its
 * output with the host's; `after` names the case before it. */
static void wire_serve(mh_dsp *d, uint32_t op, const char *after) {
  static uint32_t serial;
  mh_rng r = mh_rng_make(1000 + serial++);
  if (strcmp(wire_op_name(op), "an unknown op") == 0) op = MH_WIRE_GEMM_S8;
  mh_wire_msg *msg = mh_dsp_msg(d);
  wire_valid(op, msg);
  int8_t *x = (int8_t *)mh_dsp_at(d, PG), *b = (int8_t *)mh_dsp_at(d, PG + 256), want[1024];
  int32_t c[GM_M * GM_N], *x32 = (int32_t *)mh_dsp_at(d, PG);
  uint32_t out = PG + 512, n = EW_N;
  int ey = 0;
  mh_requant_stats rs = {0, 0};
  for (int i = 0; i < 800; i++) x[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
  for (int i = 0; i < 256; i++) b[i] = (int8_t)((int)mh_rng_below(&r, 255) - 127);
  if (op == MH_WIRE_GEMM_S8) {
    mh_gemm_s8_args g = {GM_M, GM_N, GM_K, x, GM_K, 0, (const int8_t *)mh_dsp_at(d, PG + 128), GM_N, 0, c, GM_N, 0};
    mh_gemm_s8_ref(&g);
    memcpy(want, c, sizeof c);
    out = PG + 256, n = sizeof c;
  } else if (op == MH_WIRE_REQUANT_S8) {
    for (int i = 0; i < RQ_N; i++) x32[i] = (int32_t)(mh_rng_next(&r) >> 32) >> (i % 20);
    mh_cpu_kernels_get(1)->requant_s8(x32, want, RQ_N, 5, MH_ROUND_PSTO, 0, 0, &rs);
    out = PG + 1024, n = RQ_N;
  } else if (op == MH_WIRE_ADD_S8) {
    ey = mh__int_add(NULL, x, -2, b, 1, want, EW_N);
  } else if (op == MH_WIRE_RELU_S8 || op == MH_WIRE_RELU_BWD_S8) {
    for (int i = 0; i < EW_N; i++) want[i] = x[i] > 0 ? (op == MH_WIRE_RELU_S8 ? x[i] : b[i]) : 0;
  } else {
    int8_t y[PL_PLANES * (PL_H / 2) * (PL_W / 2)];
    memset(want, 0, PL_PLANES * PL_H * PL_W);
    pool_ref(x, b, PL_PLANES, PL_H, PL_W, y, want);
    if (op == MH_WIRE_MAXPOOL2_S8) memcpy(want, y, sizeof y), out = PG + 256, n = sizeof y;
    else n = PL_PLANES * PL_H * PL_W;
  }
  memset(mh_dsp_at(d, out), 0x55, n);
  int st = mh_dsp_call(d, 20000);
  tl_checks++;
  if (st != MH_OK || memcmp(mh_dsp_at(d, out), want, n))
    TL_FAIL("the valid %s after %s: %s", wire_op_name(op), after, st != MH_OK ? mh_last_error() : "wrong output");
  else if (op == MH_WIRE_ADD_S8 && msg->args.eltwise.ey != ey)
    TL_FAIL("the valid ADD_S8 after %s: exponent %d, host %d", after, msg->args.eltwise.ey, ey);
  else if (op == MH_WIRE_REQUANT_S8 && (msg->max_abs != rs.max_abs || msg->saturated != (uint32_t)rs.saturated))
    TL_FAIL("the valid REQUANT_S8 after %s: max %u saturated %u, host %u %ld", after, msg->max_abs, msg->saturated,
            rs.max_abs, rs.saturated);
}

static void malformed(mh_dsp *d) {
  const uint32_t R = (uint32_t)d->region_bytes, TA = MH_WIRE_GEMM_TRANS_A, TB = MH_WIRE_GEMM_TRANS_B;
  const uint32_t kf = 4 * mh_wire_gemm_steps(MH_WIRE_VTCM_BYTES, GM_M) + 4; /* one K step past a chunk */
  const uint32_t e_big = (1u << 20) + 1, e_small = (uint32_t)(-(1 << 20) - 1);
  const uint32_t G = MH_WIRE_GEMM_S8, Q = MH_WIRE_REQUANT_S8, ARG = MH_WIRE_E_ARG, OUT = MH_WIRE_E_BOUNDS;
  const wire_case cases[] = {
      /* GEMM_S8: dsp/gemm_msg.c, and dsp/runtime.c's rule that packed operands belong to subgraphs */
      {G, {{GM(m), 0}}, ARG, "m = 0"},
      {G, {{GM(n), 0}}, ARG, "n = 0"},
      {G, {{GM(k), 0}}, ARG, "k = 0"},
      {G, {{GM(m), (1u << 24) + 1}}, ARG, "m above 2^24 (A then exceeds the region)"},
      {G, {{GM(n), (1u << 24) + 1}, {GM(ldb), (1u << 24) + 1}, {GM(ldc), (1u << 24) + 1}}, ARG,
       "n above 2^24 with strides to match (B then exceeds the region)"},
      {G, {{GM(k), 131073}, {GM(lda), 131073}}, ARG, "k above 131072, where int32 sums may overflow (all fits)"},
      {G, {{GM(lda), GM_K - 1}}, ARG, "lda < k (6: enough for m)"},
      {G, {{GM(flags), TA}, {GM(lda), GM_M - 1}}, ARG, "transposed A with lda < m"},
      {G, {{GM(flags), TA}, {GM(lda), GM_M}}, MH_WIRE_OK, "transposed A with lda = m (less than k)"},
      {G, {{GM(ldb), GM_N - 1}}, ARG, "ldb < n"},
      {G, {{GM(flags), TB}, {GM(ldb), GM_K - 1}}, ARG, "transposed B with ldb < k (6: enough for n)"},
      {G, {{GM(ldc), GM_N - 1}}, ARG, "ldc < n"},
      {G, {{GM(accumulate), 2}}, ARG, "accumulate = 2"},
      {G, {{GM(epilogue), 2}}, ARG, "epilogue = 2"},
      {G, {{GM(flags), 16}}, ARG, "an unknown flag"},
      {G, {{GM(flags), MH_WIRE_GEMM_A_ROWS}, {GM(a_rows_off), PG + 2}}, ARG, "an A row table not 4-byte aligned"},
      {G, {{GM(flags), MH_WIRE_GEMM_A_ROWS | TA}, {GM(a_rows_off), PG}}, ARG, "A by rows and transposed"},
      {G, {{GM(flags), MH_WIRE_GEMM_A_ROWS}, {GM(a_rows_off), R - 4 * GM_M + 4}}, OUT,
       "an A row table (m entries) 4 bytes past the end"},
      {G, {{GM(flags), MH_WIRE_GEMM_A_ROWS}, {GM(a_rows_off), R - 4 * GM_M}, {GM(lda), 0}}, MH_WIRE_OK,
       "an A row table ending at the region's end (zero entries: every row at a_off; lda unused)"},
      {G, {{GM(flags), MH_WIRE_GEMM_B_ROWS}, {GM(b_rows_off), PG + 2}}, ARG, "a B row table not 4-byte aligned"},
      {G, {{GM(flags), MH_WIRE_GEMM_B_ROWS}, {GM(b_rows_off), R - 4 * GM_K + 4}}, OUT,
       "a B row table (k entries) 4 bytes past the end"},
      {G, {{GM(flags), MH_WIRE_GEMM_B_ROWS}, {GM(b_rows_off), R - 4 * GM_K}}, MH_WIRE_OK,
       "a B row table ending at the region's end (zero entries: every row at b_off)"},
      {G, {{GM(grid_w), 4}, {GM(grid_h), 4}, {GM(grid_q), 5}, {GM(grid_p), 1}}, ARG, "a grid with q past its width"},
      {G, {{GM(grid_w), 4}, {GM(grid_h), 2}, {GM(grid_q), 4}, {GM(grid_p), 3}}, ARG, "a grid with p past its height"},
      {G, {{GM(grid_w), 65537}, {GM(grid_h), 1}, {GM(grid_q), 1}, {GM(grid_p), 1}}, ARG, "a grid wider than 65536"},
      {G, {{GM(grid_w), 4}, {GM(grid_h), 2}, {GM(grid_q), 4}, {GM(grid_p), 2}}, MH_WIRE_OK, "a valid grid"},
      {G, {{GM(apack_off), PG + 4096}}, ARG, "a packed A in a single GEMM"},
      {G, {{GM(c_off), PG + 258}}, ARG, "int32 C not 4-byte aligned"},
      {G, {{GM(epilogue), 1}, {GM(c_off), PG + 257}}, MH_WIRE_OK, "fused: int8 y at an odd offset"},
      {G, {{GM(epilogue), 1}, {GM(accumulate), 1}}, ARG, "fused and accumulating"},
      {G, {{GM(epilogue), 1}, {GM(shift), 32}}, ARG, "fused with shift 32"},
      {G, {{GM(epilogue), 1}, {GM(mode), 2}}, ARG, "fused with mode 2"},
      {G, {{GM(shift), 32}, {GM(mode), 2}}, MH_WIRE_OK, "shift 32 and mode 2 without the epilogue (unused)"},
      {G, {{GM(bias_off), PG + 1026}}, ARG, "bias not 4-byte aligned"},
      {G, {{GM(a_off), 0}}, OUT, "A in the header page"},
      {G, {{GM(a_off), R - 34}}, OUT, "A (35 bytes) one byte past the region's end"},
      {G, {{GM(a_off), R - 35}}, MH_WIRE_OK, "A ending at the region's end"},
      {G, {{GM(flags), TA}, {GM(lda), 9}, {GM(a_off), R - 58}}, OUT,
       "transposed A (59 bytes) one byte past the end (untransposed, 43, would fit)"},
      {G, {{GM(b_off), R - 41}}, OUT, "B (42 bytes) one byte past the end"},
      {G, {{GM(flags), TB}, {GM(ldb), GM_K}, {GM(b_off), R - 41}}, OUT, "transposed B (42 bytes) one byte past"},
      {G, {{GM(b_off), 0xfffffff0u}}, OUT, "B at an offset beyond the region"},
      {G, {{GM(c_off), R - 116}}, OUT, "int32 C (120 bytes) 4 bytes past the end"},
      {G, {{GM(epilogue), 1}, {GM(c_off), R - 29}}, OUT, "fused y (30 bytes) one byte past the end"},
      {G, {{GM(epilogue), 1}, {GM(c_off), R - 30}}, MH_WIRE_OK, "fused y (int8) ending at the region's end"},
      {G, {{GM(bias_off), R - 16}}, OUT, "bias (20 bytes) 4 bytes past the end"},
      {G, {{GM(epilogue), 1}, {GM(k), kf}, {GM(lda), kf}}, MH_WIRE_OK, "fused with K over two VTCM chunks"},
      {G, {{GM(epilogue), 1}, {GM(m), MH_WIRE_FUSED_MAX_M + 1}, {GM(k), kf}, {GM(lda), kf}}, MH_WIRE_E_VTCM,
       "fused with K over two VTCM chunks and more rows than the DSP keeps sums for"},
      /* REQUANT_S8 */
      {Q, {{RQ(n), 0}}, ARG, "n = 0"},
      {Q, {{RQ(n), (1u << 28) + 1}}, ARG, "n above 2^28 (x then exceeds the region)"},
      {Q, {{RQ(shift), 32}}, ARG, "shift 32"},
      {Q, {{RQ(mode), 2}}, ARG, "mode 2"},
      {Q, {{RQ(x_off), PG + 4}}, ARG, "x not 128-byte aligned"},
      {Q, {{RQ(y_off), PG + 1024 + 64}}, ARG, "y not 128-byte aligned"},
      {Q, {{RQ(x_off), 0}}, OUT, "x in the header page"},
      {Q, {{RQ(x_off), R - 768}}, OUT, "x (800 bytes) past the end"},
      {Q, {{RQ(y_off), R - 128}}, OUT, "y (200 bytes) past the end"},
      {Q, {{RQ(x_off), 0xffffff80u}}, OUT, "x at an offset beyond the region"},
      /* RELU_S8, RELU_BWD_S8, ADD_S8 */
      {ELTWISE_ALL, {{EW(n), 0}}, ARG, "n = 0"},
      {ELTWISE_ALL, {{EW(n), (1u << 28) + 1}}, ARG, "n above 2^28 (then out of the region)"},
      {ELTWISE_ALL, {{EW(a_off), PG + 1}}, ARG, "a not 128-byte aligned"},
      {ELTWISE_ALL, {{EW(out_off), PG + 512 + 64}}, ARG, "out not 128-byte aligned"},
      {ELTWISE_ALL, {{EW(a_off), 0}}, OUT, "a in the header page"},
      {ELTWISE_ALL, {{EW(a_off), R - 128}}, OUT, "a (200 bytes) past the end"},
      {ELTWISE_ALL, {{EW(out_off), R - 128}}, OUT, "out (200 bytes) past the end"},
      {ELTWISE_ALL, {{EW(a_off), 0xffffff80u}}, OUT, "a at an offset beyond the region"},
      {ELTWISE_BWD, {{EW(b_off), PG + 256 + 1}}, ARG, "b not 128-byte aligned"},
      {ELTWISE_BWD, {{EW(b_off), R - 128}}, OUT, "b (200 bytes) past the end"},
      {MH_WIRE_RELU_S8, {{EW(b_off), PG + 256 + 1}}, MH_WIRE_OK, "a misaligned b, which the forward ReLU ignores"},
      {MH_WIRE_RELU_S8, {{EW(b_off), R - 128}}, MH_WIRE_OK, "b past the end, which the forward ReLU ignores"},
      {MH_WIRE_ADD_S8, {{EW(ea), e_big}}, ARG, "ea = 2^20 + 1"},
      {MH_WIRE_ADD_S8, {{EW(ea), e_small}}, ARG, "ea = -2^20 - 1"},
      {MH_WIRE_ADD_S8, {{EW(eb), e_big}}, ARG, "eb = 2^20 + 1"},
      {MH_WIRE_ADD_S8, {{EW(eb), e_small}}, ARG, "eb = -2^20 - 1"},
      /* MAXPOOL2_S8, MAXPOOL2_BWD_S8 */
      {POOL_BOTH, {{PL(planes), 0}}, ARG, "0 planes"},
      {POOL_BOTH, {{PL(h), 1}}, ARG, "h = 1"},
      {POOL_BOTH, {{PL(w), 1}}, ARG, "w = 1"},
      {POOL_BOTH, {{PL(h), 65537}, {PL(w), 2}, {PL(planes), 1}}, ARG, "h above 65536 (all fits the region)"},
      {POOL_BOTH, {{PL(w), 65537}, {PL(h), 2}, {PL(planes), 1}}, ARG, "w above 65536 (all fits the region)"},
      {POOL_BOTH, {{PL(planes), (1u << 24) + 1}}, ARG, "planes above 2^24 (then out of the region)"},
      {POOL_BOTH, {{PL(x_off), 0}}, OUT, "x in the header page"},
      {POOL_BOTH, {{PL(x_off), R - 119}}, OUT, "x (120 bytes) one byte past the end"},
      {POOL_BOTH, {{PL(y_off), R - 29}}, OUT, "y or dy (30 bytes) one byte past the end"},
      {MH_WIRE_MAXPOOL2_BWD_S8, {{PL(dx_off), R - 119}}, OUT, "dx (120 bytes) one byte past the end"},
      {MH_WIRE_MAXPOOL2_S8, {{PL(dx_off), R - 119}}, MH_WIRE_OK, "dx past the end, which the forward ignores"},
      /* dsp/runtime.c's dispatch */
      {99, {{0}}, MH_WIRE_E_OP, "op 99"},
      {0, {{0}}, MH_WIRE_E_OP, "op 0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const wire_case *c = &cases[i];
    uint32_t ops[3] = {c->op}, n_ops = 1;
    if (c->op == ELTWISE_ALL)
      ops[0] = MH_WIRE_RELU_S8, ops[1] = MH_WIRE_RELU_BWD_S8, ops[2] = MH_WIRE_ADD_S8, n_ops = 3;
    if (c->op == ELTWISE_BWD) ops[0] = MH_WIRE_RELU_BWD_S8, ops[1] = MH_WIRE_ADD_S8, n_ops = 2;
    if (c->op == POOL_BOTH) ops[0] = MH_WIRE_MAXPOOL2_S8, ops[1] = MH_WIRE_MAXPOOL2_BWD_S8, n_ops = 2;
    for (uint32_t k = 0; k < n_ops; k++) {
      mh_wire_msg *msg = mh_dsp_msg(d);
      wire_valid(ops[k], msg);
      for (int s = 0; s < 4 && c->set[s].word; s++) msg->args.raw[c->set[s].word - 1] = c->set[s].value;
      mh_dsp_call(d, 20000);
      tl_checks++;
      if (msg->status != c->want)
        TL_FAIL("%s with %s: status %u (%s), expected %u (%s)", wire_op_name(ops[k]), c->what, msg->status,
                mh_wire_status_name(msg->status), c->want, mh_wire_status_name(c->want));
      if (!d->alive) {
        TL_FAIL("%s with %s: the DSP died", wire_op_name(ops[k]), c->what);
        return;
      }
      wire_serve(d, ops[k], c->what);
    }
  }
}

/* A slot whose sequence number is not the doorbell's: rejected unread. */
static void wrong_seq(mh_dsp *d) {
  mh_wire_msg *msg = mh_dsp_msg(d);
  wire_valid(MH_WIRE_RELU_S8, msg);
  memset(mh_dsp_at(d, PG), 1, EW_N);
  memset(mh_dsp_at(d, PG + 512), 0x55, EW_N);
  uint32_t seq = ++d->seq;
  msg->seq = seq + 1, msg->status = 0xffffffffu;
  d->messages++;
  int st = d->tr->post(d, seq);
  if (st == MH_OK) st = d->tr->wait(d, seq, 20000);
  CHECK_OK(st);
  CHECK_EQ_INT(msg->status, MH_WIRE_E_ARG);
  CHECK(memcmp(mh_dsp_at(d, PG + 512), mh_dsp_at(d, PG + 512 + 1), EW_N - 1) == 0); /* out untouched */
  CHECK_EQ_INT(*mh_dsp_at(d, PG + 512), 0x55);
  wire_serve(d, MH_WIRE_RELU_S8, "a wrong sequence number");
}

/* The emulator transport's start, with a region header of the test's choosing. */
static mh_wire_header header_to_write;

static int header_start(mh_dsp *d) {
  char why[640];
  if (!mh_dsp_locate(d->program, sizeof d->program, d->emulator, sizeof d->emulator, why, sizeof why)) return -1;
  d->memfd = memfd_create("mh-test-dsp", MFD_CLOEXEC);
  if (d->memfd < 0 || ftruncate(d->memfd, (off_t)d->region_bytes) != 0) return -1;
  d->region = mmap(NULL, d->region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
  if (d->region == MAP_FAILED) {
    d->region = NULL;
    return -1;
  }
  memcpy(d->region, &header_to_write, sizeof header_to_write);
  int req[2], rep[2];
  if (pipe2(req, O_CLOEXEC) != 0) return -1;
  if (pipe2(rep, O_CLOEXEC) != 0) {
    close(req[0]), close(req[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (dup2(req[0], 0) < 0 || dup2(rep[1], 1) < 0) _exit(126);
    if (d->memfd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(d->memfd, 3) < 0) _exit(126);
    char *argv[] = {d->emulator, d->program, NULL};
    execv(d->emulator, argv);
    _exit(127);
  }
  close(req[0]), close(rep[1]);
  if (pid < 0) {
    close(req[1]), close(rep[0]);
    return -1;
  }
  d->req_fd = req[1], d->rep_fd = rep[0], d->pid = pid, d->alive = 1;
  return MH_OK;
}

/* A region header the DSP cannot accept: HELLO answers E_VERSION (with the DSP's version) and so
 * does every later message, EXIT included. The same start with a good header works. */
static void bad_headers(void) {
  const uint32_t bytes = 16 * PG;
  const struct {
    uint32_t magic, version, bytes, want;
    const char *what;
  } cases[] = {
      {MH_WIRE_MAGIC, MH_WIRE_VERSION, bytes, MH_WIRE_OK, "a good header (the control)"},
      {MH_WIRE_MAGIC ^ 1u, MH_WIRE_VERSION, bytes, MH_WIRE_E_VERSION, "a wrong magic"},
      {MH_WIRE_MAGIC, MH_WIRE_VERSION + 1, bytes, MH_WIRE_E_VERSION, "a wrong version"},
      {MH_WIRE_MAGIC, MH_WIRE_VERSION, 0, MH_WIRE_E_VERSION, "a region of 0 bytes"},
      {MH_WIRE_MAGIC, MH_WIRE_VERSION, bytes + 100, MH_WIRE_E_VERSION, "a region size that is not whole pages"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mh_dsp_transport t = {"emu-test-header", header_start, mh_dsp_transport_emu.post, mh_dsp_transport_emu.wait,
                          mh_dsp_transport_emu.stop};
    mh_dsp *d = calloc(1, sizeof *d);
    d->tr = &t, d->memfd = d->req_fd = d->rep_fd = -1, d->region_bytes = bytes;
    memset(&header_to_write, 0, sizeof header_to_write);
    header_to_write.magic = cases[i].magic, header_to_write.version = cases[i].version;
    header_to_write.region_bytes = cases[i].bytes;
    int st = t.start(d);
    CHECK_OK(st);
    if (st == MH_OK) {
      mh_wire_msg *msg = mh_dsp_msg(d);
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_HELLO;
      mh_dsp_call(d, 20000);
      tl_checks++;
      if (msg->status != cases[i].want || msg->version != MH_WIRE_VERSION)
        TL_FAIL("HELLO with %s: status %u, version %u", cases[i].what, msg->status, msg->version);
      if (cases[i].want == MH_WIRE_OK) {
        wire_serve(d, MH_WIRE_RELU_S8, cases[i].what);
      } else {
        memset(msg, 0, sizeof *msg);
        msg->op = MH_WIRE_EXIT;
        mh_dsp_call(d, 20000);
        tl_checks++;
        if (msg->status != MH_WIRE_E_VERSION)
          TL_FAIL("EXIT after a HELLO with %s: status %u", cases[i].what, msg->status);
      }
    }
    mh_dsp_close(d);
  }
}

/* GEMM_S8 with g, whose row table points past the region: refused as out of bounds. */
static void gemm_refused(mh_dsp *d, const mh_wire_gemm_s8 *g) {
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_GEMM_S8;
  msg->args.gemm = *g;
  CHECK_ERR(mh_dsp_call(d, 60000));
  CHECK_EQ_INT((long)msg->status, MH_WIRE_E_BOUNDS);
}

/* Random int8 A (m x k) and B (k x n, or n x k with tb) and their product by the host's reference. */
static void random_product(mh_rng *r, int m, int n, int k, int tb, int8_t **a, int8_t **b, int32_t **want) {
  *a = malloc((size_t)m * k), *b = malloc((size_t)k * n), *want = malloc((size_t)m * n * 4);
  for (long i = 0; i < (long)m * k; i++) (*a)[i] = (int8_t)((int)mh_rng_below(r, 255) - 127);
  for (long i = 0; i < (long)k * n; i++) (*b)[i] = (int8_t)((int)mh_rng_below(r, 255) - 127);
  mh_gemm_s8_args o = {m, n, k, *a, k, 0, *b, tb ? k : n, tb, *want, n, 0};
  mh_gemm_s8_ref(&o);
}

/* B read through a row table (rows placed in the region out of order, both storage orders) against
 * the dense product; the fused epilogue measuring only a padded grid's valid columns against the
 * host's requantisation of those columns; a table entry pointing past the region is refused. */
static void rows_and_grid(mh_dsp *d) {
  mh_rng r = mh_rng_make(61);
  static const int shapes[][4] = {{7, 200, 37, 0}, {9, 70, 300, 1}, {4, 129, 8, 0}, {33, 40, 130, 1}};
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
    int m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], tb = shapes[t][3], rows = tb ? n : k, len = tb ? k : n;
    int8_t *a, *b;
    int32_t *want;
    random_product(&r, m, n, k, tb, &a, &b, &want);
    /* A, then the row table, then the rows in reverse order with gaps, then C */
    uint32_t a_off = PG, t_off = a_off + (uint32_t)(m * k + 127) / 128 * 128;
    uint32_t b_off = t_off + (uint32_t)(4 * rows + 127) / 128 * 128, stride = (uint32_t)len + 5;
    uint32_t c_off = b_off + (stride * (uint32_t)rows + 127) / 128 * 128, *table = (uint32_t *)mh_dsp_at(d, t_off);
    memcpy(mh_dsp_at(d, a_off), a, (size_t)m * k);
    for (int i = 0; i < rows; i++) {
      table[i] = (uint32_t)(rows - 1 - i) * stride;
      memcpy(mh_dsp_at(d, b_off + table[i]), b + (size_t)i * len, (size_t)len);
    }
    mh_wire_msg *msg = mh_dsp_msg(d);
    memset(msg, 0, sizeof *msg);
    msg->op = MH_WIRE_GEMM_S8;
    mh_wire_gemm_s8 g = {(uint32_t)m, (uint32_t)n, (uint32_t)k, a_off, (uint32_t)k, b_off, 0, c_off, (uint32_t)n};
    g.flags = MH_WIRE_GEMM_B_ROWS | (tb ? MH_WIRE_GEMM_TRANS_B : 0u), g.b_rows_off = t_off;
    msg->args.gemm = g;
    CHECK_OK(mh_dsp_call(d, 60000));
    CHECK(memcmp(mh_dsp_at(d, c_off), want, (size_t)m * n * 4) == 0);
    /* the fused form over a grid of rows of 13 (10 valid) and 4 of them (3 valid) per sample */
    int32_t *bias = (int32_t *)mh_dsp_at(d, c_off + (uint32_t)(m * n * 4 + 127) / 128 * 128);
    for (int i = 0; i < m; i++) bias[i] = (int32_t)mh_rng_below(&r, 4001) - 2000;
    int32_t *masked = malloc((size_t)m * n * 4);
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        int valid = j % 13 < 10 && j / 13 % 4 < 3;
        masked[i * n + j] = valid ? mh_q_add_sat32(want[i * n + j], bias[i]) : 0;
      }
    for (int mode = 0; mode < 2; mode++) {
      int8_t *yw = malloc((size_t)m * n);
      mh_requant_stats hs = {0, 0};
      mh_cpu_kernels_get(1)->requant_s8(masked, yw, (long)m * n, 6, mode ? MH_ROUND_PSTO : MH_ROUND_NEAREST, 0, 0, &hs);
      memset(msg, 0, sizeof *msg);
      msg->op = MH_WIRE_GEMM_S8;
      mh_wire_gemm_s8 f = g;
      f.epilogue = 1, f.shift = 6, f.mode = (uint32_t)mode, f.bias_off = (uint32_t)((uint8_t *)bias - d->region);
      f.grid_w = 13, f.grid_h = 4, f.grid_q = 10, f.grid_p = 3;
      msg->args.gemm = f;
      CHECK_OK(mh_dsp_call(d, 60000));
      CHECK_EQ_INT((long)msg->max_abs, (long)hs.max_abs);
      CHECK_EQ_INT((long)msg->saturated, hs.saturated);
      const int8_t *y = (const int8_t *)mh_dsp_at(d, c_off);
      long bad = -1;
      for (int i = 0; i < m && bad < 0; i++)
        for (int j = 0; j < n; j++)
          if (j % 13 < 10 && j / 13 % 4 < 3 && y[i * n + j] != yw[i * n + j]) bad = (long)i * n + j;
      CHECK(bad < 0);
      free(yw);
    }
    free(masked);
    /* an entry past the region: refused, and the DSP keeps serving */
    table[rows / 2] = (uint32_t)d->region_bytes;
    gemm_refused(d, &g);
    free(a), free(b), free(want);
  }
}

/* A given by a row table (rows in reverse order with gaps of odd length, so they start unaligned)
 * against the dense product, over one and several K chunks (the row sums gathered chunk by chunk),
 * with B dense and transposed; a table entry pointing past the region is refused. */
static void a_rows(mh_dsp *d) {
  mh_rng r = mh_rng_make(62);
  static const int shapes[][4] = {{7, 200, 37, 0}, {9, 70, 2100, 1}, {6, 32, 4001, 1}, {13, 129, 300, 0}};
  for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
    int m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], tb = shapes[t][3];
    int8_t *a, *b;
    int32_t *want;
    random_product(&r, m, n, k, tb, &a, &b, &want);
    uint32_t stride = (uint32_t)k + 5, t_off = PG, a_off = PG + (uint32_t)(4 * m + 127) / 128 * 128;
    uint32_t b_off = a_off + (stride * (uint32_t)m + 127) / 128 * 128;
    uint32_t c_off = b_off + (uint32_t)((long)k * n + 127) / 128 * 128, *table = (uint32_t *)mh_dsp_at(d, t_off);
    for (int i = 0; i < m; i++) {
      table[i] = (uint32_t)(m - 1 - i) * stride + 3;
      memcpy(mh_dsp_at(d, a_off + table[i]), a + (size_t)i * k, (size_t)k);
    }
    memcpy(mh_dsp_at(d, b_off), b, (size_t)k * n);
    mh_wire_msg *msg = mh_dsp_msg(d);
    memset(msg, 0, sizeof *msg);
    msg->op = MH_WIRE_GEMM_S8;
    mh_wire_gemm_s8 g = {(uint32_t)m, (uint32_t)n, (uint32_t)k, a_off, 0, b_off, (uint32_t)(tb ? k : n), c_off, (uint32_t)n};
    g.flags = MH_WIRE_GEMM_A_ROWS | (tb ? MH_WIRE_GEMM_TRANS_B : 0u), g.a_rows_off = t_off;
    msg->args.gemm = g;
    CHECK_OK(mh_dsp_call(d, 60000));
    tl_checks++;
    if (memcmp(mh_dsp_at(d, c_off), want, (size_t)m * n * 4))
      TL_FAIL("A by rows, %d x %d x %d%s: C differs from the dense product", m, n, k, tb ? " (B transposed)" : "");
    if (k > 1920) CHECK(msg->chunks >= 2);
    table[m / 2] = (uint32_t)d->region_bytes; /* an entry past the region: refused, and the DSP keeps serving */
    gemm_refused(d, &g);
    free(a), free(b), free(want);
  }
}

/* Executed-packet counting: the HVX classifier on instruction words of known disassembly, and the
 * counts of a ReLU (nearly all HVX) and a GEMM (MACs per packet within the v66 bound) landing in
 * their functions' buckets. Skipped when the build has no plugin. */
static uint64_t func_packets(const mh_pkt_func *f, int n, const char *name, uint64_t *hvx) {
  for (int i = 0; i < n; i++)
    if (!strcmp(f[i].name, name)) {
      if (hvx) *hvx = f[i].hvx_packets;
      return f[i].packets;
    }
  return 0;
}

static void packets(mh_dsp *d, mh_rng *r) {
  CHECK(mh_pkt_word_is_hvx(0x1c20c0e0u));  /* v0 = vxor(v0,v0) */
  CHECK(mh_pkt_word_is_hvx(0x280de401u));  /* v1 = vmem(r13+#-4) */
  CHECK(mh_pkt_word_is_hvx(0x1a20c423u));  /* if (!p1) v3 = v4 */
  CHECK(!mh_pkt_word_is_hvx(0x1002c04cu)); /* p0 = cmp.eq(r2,#0); if (p0.new) jump:nt */
  CHECK(!mh_pkt_word_is_hvx(0x28043323u)); /* duplex: r4 = #0; r3 = add(r2,#-1) */
  CHECK(!mh_pkt_word_is_hvx(0x5cdffa6au)); /* if (p2.new) jump:t */
  char plugin[512];
  mh_dsp_packets_locate(plugin, sizeof plugin);
  if (!plugin[0]) {
    printf("packet counting: no plugin in this build, skipped\n");
    return;
  }
  CHECK(mh_dsp_packets_active(d));
  int n0 = 0, n1 = 0, n2 = 0;
  mh_pkt_func *a = mh_dsp_packets_copy(d, &n0);
  uint32_t n = 128 * 1000, x_off = MH_WIRE_PAGE, y_off = x_off + n;
  memset(mh_dsp_at(d, x_off), 3, n);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_RELU_S8;
  mh_wire_eltwise_s8 e = {x_off, 0, y_off, n};
  msg->args.eltwise = e;
  CHECK_OK(mh_dsp_call(d, 20000));
  mh_pkt_func *b = mh_dsp_packets_copy(d, &n1);
  gemm_case(d, r, 64, 128, 1024, 0, 0);
  mh_pkt_func *c = mh_dsp_packets_copy(d, &n2);
  CHECK(a && b && c && n0 == n1 && n1 == n2);
  if (a && b && c && n0 == n1 && n1 == n2) {
    uint64_t h0 = 0, h1 = 0;
    uint64_t relu = func_packets(b, n1, "mh_hvx_relu_s8", &h1) - func_packets(a, n0, "mh_hvx_relu_s8", &h0);
    CHECK(relu >= n / 128 / 2);            /* at least one packet per two vectors */
    CHECK(h1 - h0 > relu * 9 / 10);        /* and nearly all of them HVX */
    uint64_t gemm = 0; /* the GEMM message's packets, in whichever functions they ran */
    for (int i = 0; i < n2; i++) gemm += c[i].packets - b[i].packets;
    double macs = 64.0 * 128 * 1024;
    CHECK(func_packets(c, n2, "mh_hvx_gemm_s8", NULL) > func_packets(b, n1, "mh_hvx_gemm_s8", NULL));
    CHECK(gemm > 0 && macs / (double)gemm <= 256.0); /* no more than 2 vrmpy per packet can have run */
  }
  free(a), free(b), free(c);
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
  rows_and_grid(d);
  a_rows(d);
  packets(d, &r);

  /* malformed messages: a status back, and the DSP keeps serving */
  malformed(d);
  wrong_seq(d);
  gemm_case(d, &r, 33, 5, 7, 0, 0);

  /* a DSP that dies mid-session is an error, not a hang or a crash */
  if (d->pid > 0) kill(d->pid, SIGKILL); /* pid 0 (a DSP already gone) would be the process group */
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
  bad_headers();
  splitting();
  recovery();
  cost_model("lenet5", 16, 8, 1);    /* the segment conv1..pool2, fc1-3 */
  cost_model("cnn6-nobn", 8, 6, 1); /* the segment conv1..pool2, fc1-2 */
  return tl_exit();
}
