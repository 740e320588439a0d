/* The niti algorithm: one fixture from an independent Python reimplementation of NITI
 * (scripts/niti_reference.py) matched bit for bit over 3 steps (logits, loss gradient, parameters),
 * on the fast and the portable kernels; results independent of threads and kernel tables; the
 * rescaler's exact and adaptive rules; exponent-aligned int8 addition; models niti cannot train. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/rescale.h"
#include "train/safetensors.h"
#include "train/trainer.h"
#include "testlib.h"
#include "tl_fixture.h"
#include "tl_tables.h"

static int32_t i32_at(const mh_st_tensor *t, int i) {
  int32_t v;
  memcpy(&v, (const char *)t->data + 4 * i, 4);
  return v;
}

/* First index where two int8 arrays differ, or -1. */
static long first_diff(const int8_t *a, const void *b, long n) {
  const int8_t *c = b;
  for (long i = 0; i < n; i++)
    if (a[i] != c[i]) return i;
  return -1;
}

static void fixture_case(const mh_st_file *f, const char *isa, int force_ref) {
  const char *text = mh_st_meta_get(f, "model_text");
  int steps = atoi(mh_st_meta_get(f, "steps")), batch = atoi(mh_st_meta_get(f, "batch"));
  mh_graph g;
  CHECK_OK(mh_model_parse(&g, text, strlen(text), "niti fixture"));
  mh_model *m = NULL;
  CHECK_OK(mh__model_from_graph(&m, &g, 1));
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.rescale = "exact", cfg.mu = mh_st_meta_get(f, "mu");
  cfg.batch = batch, cfg.force_reference = force_ref, cfg.isa = isa;
  mh_trainer *t = NULL;
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) return;
  const mh_st_tensor *ex = tl_need(f, "exp");
  CHECK_EQ_INT(ex->shape[0], m->g.n_params);
  for (int i = 0; i < m->g.n_params; i++) {
    char name[32];
    snprintf(name, sizeof name, "param.%d", i);
    const mh_st_tensor *p = tl_need(f, name);
    CHECK_EQ_INT((long)p->nbytes, (long)m->g.params[i].numel);
    memcpy(m->qparams + m->g.params[i].offset, p->data, p->nbytes);
    m->qexp[i] = i32_at(ex, i);
  }
  const float *x = tl_need(f, "x")->data; /* F32 first in the file: 4-byte aligned */
  int32_t labels[64];
  memcpy(labels, tl_need(f, "labels")->data, sizeof(int32_t) * batch);
  const mh_st_tensor *lexp = tl_need(f, "logits_exp");
  int classes = m->g.nodes[m->g.n_nodes - 1].c;
  for (int s = 0; s < steps; s++) { /* mh_trainer_step, opened up to look at each stage */
    char name[32];
    CHECK_OK(mh__trainer_prepare(t, batch));
    mh_exec_set_step(t->ex, cfg.seed, t->step);
    CHECK_OK(mh_exec_forward(t->ex, x, batch, m->qparams, m->buffers, 1));
    int e;
    const int8_t *o = mh_exec_output_q(t->ex, &e);
    snprintf(name, sizeof name, "logits.%d", s);
    long d = first_diff(o, tl_need(f, name)->data, (long)batch * classes);
    if (d >= 0) TL_FAIL("%s kernels, step %d: logits differ at %ld: %d vs %d", t->kt->isa, s, d, o[d], ((const int8_t *)tl_need(f, name)->data)[d]);
    CHECK_EQ_INT(e, i32_at(lexp, s));
    t->algo->loss_grad(t, labels, batch);
    snprintf(name, sizeof name, "lossgrad.%d", s);
    d = first_diff(mh_exec_output_grad_q(t->ex, 0), tl_need(f, name)->data, (long)batch * classes);
    if (d >= 0) TL_FAIL("%s kernels, step %d: loss gradient differs at %ld", t->kt->isa, s, d);
    CHECK_OK(mh_exec_backward(t->ex, m->qparams, m->qgrads));
    t->algo->update(t);
    t->step++;
  }
  for (int i = 0; i < m->g.n_params; i++) {
    char name[32];
    snprintf(name, sizeof name, "final.%d", i);
    long d = first_diff(m->qparams + m->g.params[i].offset, tl_need(f, name)->data, (long)m->g.params[i].numel);
    if (d >= 0) TL_FAIL("%s kernels: %s after %d steps differs at %ld", t->kt->isa, m->g.params[i].name, steps, d);
    tl_checks++;
  }
  mh_trainer_free(t);
  mh_model_free(m);
}

/* lenet5 on synthetic data: parameters after some steps, for a thread count / kernel table / rule. */
static int8_t *run_lenet5(int threads, const char *isa, const char *rescale, int steps, mh_rescale_report *rep) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.rescale = rescale, cfg.threads = threads, cfg.isa = isa;
  cfg.batch = 16;
  int8_t *out = NULL;
  if (mh_model_create(&m, "lenet5", 3) || mh_trainer_create(&t, m, &cfg)) {
    TL_FAIL("lenet5 niti: %s", mh_last_error());
    goto done;
  }
  float *x = malloc(sizeof(float) * 16 * 784);
  int32_t y[16];
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < 16 * 784; i++) x[i] = (float)((i * 2654435761u + s * 40503u) % 1000) / 500.f - 1.f;
    for (int i = 0; i < 16; i++) y[i] = (i * 7 + s) % 10;
    CHECK_OK(mh_trainer_step(t, x, y, 16, NULL));
  }
  free(x);
  mh__trainer_rescale_report(t, rep);
  out = malloc((size_t)m->g.n_param_floats);
  memcpy(out, m->qparams, (size_t)m->g.n_param_floats);
done:
  mh_trainer_free(t);
  mh_model_free(m);
  return out;
}

static void determinism(void) {
  mh_rescale_report r[3];
  int8_t *a = run_lenet5(2, NULL, "adaptive", 40, &r[0]), *b = run_lenet5(1, NULL, "adaptive", 40, &r[1]);
  int8_t *d = run_lenet5(2, NULL, "exact", 40, &r[2]);
  if (a && b && d) {
    CHECK(memcmp(a, b, 61706) == 0); /* thread count */
    CHECK(memcmp(a, d, 61706) != 0); /* the rules do differ (mispredicted shifts change results) */
    CHECK(r[0].passes_avoided > 0 && r[2].passes_avoided == 0 && r[2].max_passes == r[2].calls);
    CHECK_EQ_INT(r[0].calls, r[2].calls);
  }
  /* every kernel table this CPU has: the same integers */
  const mh_cpu_kernels *tabs[8];
  int n_tabs = tl_kernel_tables(tabs, 8);
  for (int i = 0; a && i < n_tabs; i++) {
    mh_rescale_report rt;
    int8_t *c = run_lenet5(2, tabs[i]->isa, "adaptive", 40, &rt);
    if (c && memcmp(a, c, 61706) != 0) TL_FAIL("niti lenet5: 40 steps on %s differ from the default table", tabs[i]->isa);
    tl_checks++;
    free(c);
  }
  free(a), free(b), free(d);
}

/* Exact: the shift from the max; adaptive: first call exact, then the prediction, fallback on
 * saturation, an exact call every MH_RESCALE_PERIOD calls. */
static void rescaler(void) {
  enum { N = 5000 };
  int32_t *acc = malloc(sizeof(int32_t) * N);
  int8_t *y = malloc(N), *want = malloc(N);
  const mh_cpu_kernels *kt = mh_cpu_kernels_get(0);
  mh_rescale_state st = {0, 0, 0};
  mh_rescale_counts c = {0};
  for (int i = 0; i < N; i++) acc[i] = (int32_t)((i * 2654435761u) % 20001) - 10000; /* max 10000: bitlen 14 */
  int s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_EXACT, &st, &c);
  CHECK_EQ_INT(s, 7);
  for (int i = 0; i < N; i++) want[i] = mh_q_requant8(acc[i], 7, MH_ROUND_PSTO, 0, 0);
  CHECK(memcmp(y, want, N) == 0);
  CHECK_EQ_INT(c.max_passes, 1);
  /* shift 1 becomes 2 */
  CHECK_EQ_INT(mh_q_niti_shift_for(128), 2);
  CHECK_EQ_INT(mh_q_niti_shift_for(255), 2);
  CHECK_EQ_INT(mh_q_niti_shift_for(256), 2);
  CHECK_EQ_INT(mh_q_niti_shift_for(512), 3);
  CHECK_EQ_INT(mh_q_niti_shift_for(127), 0);
  /* adaptive */
  memset(&st, 0, sizeof st), memset(&c, 0, sizeof c);
  s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(s, 7);
  CHECK_EQ_INT(c.periodic, 1); /* no history: exact */
  s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(s, 7);
  CHECK(memcmp(y, want, N) == 0);
  CHECK_EQ_INT(c.passes_avoided, 1);
  for (int i = 0; i < N; i++) acc[i] *= 8; /* the range grows 8x: predicted 7, saturation everywhere */
  s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(s, 10);
  CHECK_EQ_INT(c.fallbacks, 1);
  for (int i = 0; i < N; i++) want[i] = mh_q_requant8(acc[i], 10, MH_ROUND_PSTO, 0, 0);
  CHECK(memcmp(y, want, N) == 0);
  for (int i = 0; i < N; i++) acc[i] /= 2; /* shrinks: predicted 10 is one too many, no saturation */
  s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(s, 10);
  CHECK_EQ_INT(c.mispredicted, 2);
  CHECK_EQ_INT(st.shift, 9); /* corrected for the next call */
  long before = c.periodic;
  for (int k = 0; k < MH_RESCALE_PERIOD; k++)
    mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(c.periodic, before + 1); /* one exact call per period */
  free(acc), free(y), free(want);
}

/* The adaptive rule at its edges, with the numbers of docs/ARCHITECTURE.md written out (not the
 * macros): after an exact call, 31 calls use the prediction and the 32nd is exact again; a call falls
 * back when more than 1/1024 of its outputs saturate: 4 of 4096 is within, 5 of 4096 is over. */
static void rescale_edges(void) {
  enum { N = 4096 };
  int32_t *acc = malloc(sizeof(int32_t) * N);
  int8_t *y = malloc(N);
  const mh_cpu_kernels *kt = mh_cpu_kernels_get(0);
  mh_rescale_state st = {0, 0, 0};
  mh_rescale_counts c = {0};
  for (int i = 0; i < N; i++) acc[i] = i % 200 - 100; /* max 100: shift 0 */
  CHECK_EQ_INT(mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c), 0);
  CHECK_EQ_INT(c.periodic, 1); /* the first call is exact */
  for (int k = 1; k <= 31; k++) {
    mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
    if (c.periodic != 1 || c.passes_avoided != k) {
      TL_FAIL("call %d after an exact one: %ld exact, %ld predicted (want 1 and %d)", k, c.periodic, c.passes_avoided, k);
      break;
    }
  }
  mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(c.periodic, 2); /* the 32nd call after the exact one */
  CHECK_EQ_INT(c.passes_avoided, 31);
  /* saturation: the prediction is shift 0; values of 200 saturate at 127 */
  for (int i = 0; i < 4; i++) acc[i * 1000] = 200;
  CHECK_EQ_INT(mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c), 0);
  CHECK_EQ_INT(c.fallbacks, 0); /* 4 saturated of 4096: 4 * 1024 is not > 4096 */
  CHECK_EQ_INT(y[0], 127);
  CHECK_EQ_INT(st.shift, 2); /* the next prediction is this call's exact shift: bitlen(200) - 7 = 1, made 2 */
  st.shift = 0;
  acc[4000] = 200;
  int s = mh_rescale_s32_s8(kt, NULL, acc, N, y, MH_ROUND_PSTO, MH_RESCALE_ADAPTIVE, &st, &c);
  CHECK_EQ_INT(c.fallbacks, 1); /* 5 of 4096: over the threshold, redone with the exact shift */
  CHECK_EQ_INT(s, 2);
  CHECK_EQ_INT(y[0], mh_q_requant8(200, 2, MH_ROUND_PSTO, 0, 0));
  free(acc), free(y);
}

static void int_add(void) {
  int8_t a[256], b[256], y[256];
  for (int i = 0; i < 256; i++) a[i] = (int8_t)(i % 255 - 127), b[i] = (int8_t)((i * 37) % 255 - 127);
  for (int ea = -3; ea <= 3; ea++)
    for (int eb = -3; eb <= 3; eb++) {
      int e = mh__int_add(NULL, a, ea, b, eb, y, 256), m = ea > eb ? ea : eb, over = 0;
      for (int i = 0; i < 256; i++) {
        int v = mh_q_round_nearest(a[i], m - ea) + mh_q_round_nearest(b[i], m - eb);
        over |= v > 127 || v < -127;
      }
      CHECK_EQ_INT(e, over ? m + 1 : m);
      for (int i = 0; i < 256; i++) {
        int v = mh_q_round_nearest(a[i], m - ea) + mh_q_round_nearest(b[i], m - eb);
        if (over) v = mh_q_round_nearest(v, 1);
        if (y[i] != v) {
          TL_FAIL("int add ea %d eb %d at %d: %d vs %d", ea, eb, i, y[i], v);
          return;
        }
      }
    }
}

/* A fresh model's integer parameters, recomputed here from its float initialisation: per tensor the
 * smallest e with max|w| <= 127 * 2^e, q = w * 2^-e rounded half away from zero, then one bit of
 * headroom: q rounded to nearest by one more bit and e + 1 (docs/ARCHITECTURE.md). */
static void init_quantisation(void) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti";
  CHECK_OK(mh_model_create(&m, "lenet5", 9));
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) {
    mh_model_free(m);
    return;
  }
  for (int i = 0; i < m->g.n_params; i++) {
    const mh_param *p = &m->g.params[i];
    double mx = 0;
    for (int64_t k = 0; k < p->numel; k++) mx = fabs(m->params[p->offset + k]) > mx ? fabs(m->params[p->offset + k]) : mx;
    int e = -40;
    while (mx > 127 * ldexp(1, e)) e++;
    CHECK_EQ_INT(m->qexp[i], e + 1);
    for (int64_t k = 0; k < p->numel; k++) {
      double v = m->params[p->offset + k] * ldexp(1, -e);
      long q = (long)(fabs(v) + 0.5) * (v < 0 ? -1 : 1); /* half away from zero */
      long h = (labs(q) + 1) / 2 * (q < 0 ? -1 : 1);     /* then by one bit, half away from zero */
      if (m->qparams[p->offset + k] != h) {
        TL_FAIL("%s[%lld]: int8 %d, recomputed %ld (w %.9g, e %d)", p->name, (long long)k, m->qparams[p->offset + k], h,
                m->params[p->offset + k], e);
        break;
      }
    }
    tl_checks++;
  }
  mh_trainer_free(t);
  mh_model_free(m);
}

/* Resuming from a checkpoint whose exponents differ from a fresh model's: the loaded trainer must
 * take the checkpoint's exponents (and histories) and continue exactly as the saved run does. */
static void resume_exponents(void) {
  enum { B = 16, STEPS = 3 };
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.batch = B, cfg.seed = 4;
  float *x = malloc(sizeof(float) * B * 784);
  int32_t y[B];
  for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.f - 1.f;
  for (int i = 0; i < B; i++) y[i] = (i * 3) % 10;
  mh_model *ma = NULL, *mb = NULL;
  mh_trainer *ta = NULL, *tb = NULL;
  char path[512];
  snprintf(path, sizeof path, "%s/niti-exponents.st", MH_BINARY_DIR);
  CHECK_OK(mh_model_create(&ma, "lenet5", 4));
  CHECK_OK(mh_model_create(&mb, "lenet5", 1));
  CHECK_OK(mh_trainer_create(&ta, ma, &cfg));
  CHECK_OK(mh_trainer_create(&tb, mb, &cfg));
  if (!ta || !tb) goto done;
  for (int s = 0; s < STEPS; s++) CHECK_OK(mh_trainer_step(ta, x, y, B, NULL));
  for (int i = 0; i < ma->g.n_params; i++) ma->qexp[i] += 2 + i % 3; /* the same integers, other scales */
  CHECK_OK(mh_trainer_save(ta, path));
  CHECK_OK(mh_trainer_load(tb, path));
  int differ = 0;
  for (int i = 0; i < ma->g.n_params; i++) differ |= ma->qexp[i] != mb->qexp[i];
  CHECK(!differ);
  for (int s = 0; s < STEPS; s++) {
    CHECK_OK(mh_trainer_step(ta, x, y, B, NULL));
    CHECK_OK(mh_trainer_step(tb, x, y, B, NULL));
  }
  CHECK(memcmp(ma->qparams, mb->qparams, (size_t)ma->g.n_param_floats) == 0);
  remove(path);
done:
  free(x);
  mh_trainer_free(ta), mh_trainer_free(tb);
  mh_model_free(ma), mh_model_free(mb);
}

static void unsupported(void) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti";
  CHECK_OK(mh_model_create(&m, "cnn6", 1));
  CHECK_ERR(mh_trainer_create(&t, m, &cfg));
  CHECK(strstr(mh_last_error(), "batchnorm") != NULL);
  mh_model_free(m);
  cfg.mu = "5,9";
  CHECK_OK(mh_model_create(&m, "lenet5", 1));
  CHECK_ERR(mh_trainer_create(&t, m, &cfg));
  CHECK(strstr(mh_last_error(), "--mu") != NULL);
  mh_model_free(m);
}

/* The gradient bit-width schedule: the default (4, then 3 from 40% of the epochs, 2 from 80%) and an
 * explicit list (its last entry repeats), against literal tables. */
static void mu_schedule(void) {
  static const int five[5] = {4, 4, 3, 3, 2}, ten[10] = {4, 4, 4, 4, 3, 3, 3, 3, 2, 2};
  for (int e = 0; e < 5; e++) CHECK_EQ_INT(mh_niti_mu(NULL, e, 5), five[e]);
  for (int e = 0; e < 10; e++) CHECK_EQ_INT(mh_niti_mu("", e, 10), ten[e]);
  static const int list[4] = {5, 3, 3, 3};
  for (int e = 0; e < 4; e++) CHECK_EQ_INT(mh_niti_mu("5,3", e, 4), list[e]);
  CHECK_OK(mh_niti_mu_check("5,3"));
  CHECK(mh_niti_mu_check("5,8") != MH_OK);
  CHECK(mh_niti_mu_check("0") != MH_OK);
}

int main(void) {
  mh_st_file *f = NULL;
  if (mh_st_read(&f, MH_SOURCE_DIR "/tests/golden/niti.safetensors")) {
    fprintf(stderr, "%s\n", mh_last_error());
    return 1;
  }
  const mh_cpu_kernels *tabs[8];
  int n_tabs = tl_kernel_tables(tabs, 8);
  for (int i = 0; i < n_tabs; i++) fixture_case(f, tabs[i]->isa, 0);
  fixture_case(f, NULL, 1);
  mh_st_free(f);
  rescaler();
  rescale_edges();
  int_add();
  determinism();
  init_quantisation();
  resume_exponents();
  unsupported();
  mu_schedule();
  return tl_exit();
}
