/* The int8 (mixed-precision) algorithm: logits and every gradient equal, bit for bit, those of an
 * independent reimplementation (scripts/int8_reference.py, its rounding modes, exponents and rounding
 * keys pinned by a committed fixture); its forward and gradients stay close to FP32 on the same
 * weights (the only difference is power-of-two int8 quantisation), and a training run is bit-identical
 * with 1 and 2 threads and on the portable and AVX2 kernel tables (integer GEMMs are exact). */
#include <string.h>

#include "train/safetensors.h"

#include "core/rng.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "testlib.h"
#include "tl_fixture.h"
#include "tl_tables.h"
#include "train/model.h"
#include "train/trainer.h"

static const char *k_net =
    "input 3x12x12\n"
    "conv c1 out=8 k=3 pad=1 bias=false\nbatchnorm b1\nrelu r1\n"
    "conv c2 out=8 k=3 pad=1 groups=2\nadd a1 in=c2,r1\nrelu r2\n"
    "conv c3 out=16 k=3 stride=2 pad=1\nrelu r3\nmaxpool p1 k=2\n"
    "conv dw out=16 k=3 pad=1 groups=16 bias=false\nrelu6 r4\n"
    "flatten f\nlinear fc1 out=20\nrelu r5\nlinear fc2 out=10\n";

static mh_model *make_model(void) {
  mh_graph g;
  if (mh_model_parse(&g, k_net, strlen(k_net), "int8-test.mh")) return NULL;
  mh_model *m = NULL;
  mh__model_from_graph(&m, &g, 3);
  return m;
}

static mh_trainer *make_trainer(mh_model *m, const char *prec, int threads, const char *isa) {
  mh_train_config c;
  mh_train_config_default(&c);
  c.precision = prec, c.batch = 8, c.threads = threads, c.schedule = MH_SCHEDULE_CONSTANT, c.lr = 0.02f;
  c.isa = isa;
  mh_trainer *t = NULL;
  mh_trainer_create(&t, m, &c);
  return t;
}


/* First index where two float arrays differ in their bits, or -1. */
static long first_diff(const float *a, const void *b, long n) {
  for (long i = 0; i < n; i++)
    if (memcmp(a + i, (const char *)b + 4 * i, 4) != 0) return i;
  return -1;
}

/* An int8 trainer for the fixture's net (metadata key text_key) with its parameters (prefix
 * "param." or "bn.param."), or NULL (the failure is counted). */
static mh_trainer *fixture_trainer(const mh_st_file *f, const char *text_key, const char *prefix, int threads,
                                   const char *isa, int force_ref, mh_model **mp) {
  const char *text = mh_st_meta_get(f, text_key);
  mh_graph g;
  *mp = NULL;
  CHECK_OK(mh_model_parse(&g, text, strlen(text), text_key));
  mh_model *m = NULL;
  CHECK_OK(mh__model_from_graph(&m, &g, 1));
  if (!m) return NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "int8", cfg.batch = atoi(mh_st_meta_get(f, "batch")), cfg.threads = threads;
  cfg.force_reference = force_ref, cfg.isa = isa;
  mh_trainer *t = NULL;
  CHECK_OK(mh_trainer_create(&t, m, &cfg));
  if (!t) {
    mh_model_free(m);
    return NULL;
  }
  for (int i = 0; i < m->g.n_params; i++) {
    char name[32];
    snprintf(name, sizeof name, "%s%d", prefix, i);
    const mh_st_tensor *p = tl_need(f, name);
    CHECK_EQ_INT((long)p->nbytes, (long)m->g.params[i].numel * 4);
    memcpy(m->params + m->g.params[i].offset, p->data, p->nbytes);
  }
  *mp = m;
  return t;
}

/* The fixture of scripts/int8_reference.py: one forward, then the backward of each (seed, step) case
 * from the fixture's dL/dlogits, with the same weights. Every float is the result of the same IEEE
 * operations on exact integer GEMM results, so all of it must match to the bit. */
static void fixture_case(const mh_st_file *f, int threads, const char *isa, int force_ref) {
  int batch = atoi(mh_st_meta_get(f, "batch"));
  mh_model *m;
  mh_trainer *t = fixture_trainer(f, "model_text", "param.", threads, isa, force_ref, &m);
  if (!t) return;
  const mh_st_tensor *cases = tl_need(f, "cases"), *dz = tl_need(f, "dlogits"), *z = tl_need(f, "logits");
  int classes = m->g.nodes[m->g.n_nodes - 1].c;
  float *x = malloc(tl_need(f, "x")->nbytes);
  memcpy(x, tl_need(f, "x")->data, tl_need(f, "x")->nbytes);
  for (int c = 0; c < (int)cases->shape[0]; c++) {
    int64_t seed, step;
    memcpy(&seed, (const char *)cases->data + 16 * c, 8);
    memcpy(&step, (const char *)cases->data + 16 * c + 8, 8);
    CHECK_OK(mh__trainer_prepare(t, batch));
    mh_exec_set_step(t->ex, (uint64_t)seed, (long)step);
    CHECK_OK(mh_exec_forward(t->ex, x, batch, m->params, m->buffers, 1));
    long d = first_diff(mh_exec_output(t->ex), z->data, (long)batch * classes);
    if (d >= 0)
      TL_FAIL("%s kernels, %d threads: logits differ at %ld: %.9g", t->kt->isa, threads, d, mh_exec_output(t->ex)[d]);
    tl_checks++;
    memcpy(mh_exec_output_grad(t->ex), dz->data, dz->nbytes);
    CHECK_OK(mh_exec_backward(t->ex, m->params, m->grads));
    for (int i = 0; i < m->g.n_params; i++) {
      char name[32];
      snprintf(name, sizeof name, "grad.%d.%d", c, i);
      const mh_param *p = &m->g.params[i];
      const mh_st_tensor *want = tl_need(f, name);
      d = first_diff(m->grads + p->offset, want->data, (long)p->numel);
      if (d >= 0) {
        float w;
        memcpy(&w, (const char *)want->data + 4 * d, 4);
        TL_FAIL("%s kernels, %d threads, seed %lld step %lld: gradient of %s differs at %ld: %.9g vs %.9g", t->kt->isa,
                threads, (long long)seed, (long long)step, p->name, d, m->grads[p->offset + d], w);
      }
      tl_checks++;
    }
  }
  free(x);
  mh_trainer_free(t);
  mh_model_free(m);
}

/* max |got - want| / max |want| over n floats (want read unaligned from the fixture). */
static double rel_err(const float *got, const void *want, long n) {
  double e = 0, m = 0;
  for (long i = 0; i < n; i++) {
    float w;
    memcpy(&w, (const char *)want + 4 * i, 4);
    e = fabs((double)got[i] - w) > e ? fabs((double)got[i] - w) : e;
    m = fabs((double)w) > m ? fabs((double)w) : m;
  }
  return m > 0 ? e / m : e;
}

/* The batch-norm net of the fixture ("bn." tensors), computed there in float64 by the int8 rules:
 * batch norm saves x-hat as int8 with one exponent and backward reads it from there. No int8 value
 * lies near a rounding boundary, so only float32 rounding separates the two (on the machines measured
 * so far, not even that: every value came out equal). Tolerances, relative to the tensor's largest
 * value: logits and the linear layer's gradients 1e-5; batch norm's gamma and beta gradients 1e-4
 * (saving x-hat with one bit less, or rounding it stochastically, moves gamma's by 1e-2); the conv
 * below it 2e-3: its output gradient is rounded stochastically from batch norm's float input
 * gradient, where a float32 difference could flip one rounding (3e-4 each), while scaling the x-hat
 * term of that input gradient by 0.99 moves it by 5e-3. */
static void bn_fixture_case(const mh_st_file *f, int threads, const char *isa, int force_ref) {
  int batch = atoi(mh_st_meta_get(f, "batch"));
  mh_model *m;
  mh_trainer *t = fixture_trainer(f, "bn_model_text", "bn.param.", threads, isa, force_ref, &m);
  if (!t) return;
  const mh_st_tensor *tc = tl_need(f, "bn.case"), *dz = tl_need(f, "bn.dlogits"), *z = tl_need(f, "bn.logits");
  int64_t cs[2];
  memcpy(cs, tc->data, sizeof cs);
  float *x = malloc(tl_need(f, "bn.x")->nbytes);
  memcpy(x, tl_need(f, "bn.x")->data, tl_need(f, "bn.x")->nbytes);
  CHECK_OK(mh__trainer_prepare(t, batch));
  mh_exec_set_step(t->ex, (uint64_t)cs[0], (long)cs[1]);
  CHECK_OK(mh_exec_forward(t->ex, x, batch, m->params, m->buffers, 1));
  double e = rel_err(mh_exec_output(t->ex), z->data, (long)(z->nbytes / 4));
  printf("int8 batch norm [%s, %d threads]: logits %.2e", t->kt->isa, threads, e);
  if (!(e <= 1e-5)) TL_FAIL("int8 batch-norm net: logits differ by %.3g of their maximum (> 1e-5)", e);
  memcpy(mh_exec_output_grad(t->ex), dz->data, dz->nbytes);
  CHECK_OK(mh_exec_backward(t->ex, m->params, m->grads));
  for (int i = 0; i < m->g.n_params; i++) {
    char name[32];
    snprintf(name, sizeof name, "bn.grad.%d", i);
    const mh_param *p = &m->g.params[i];
    double tol = !strncmp(p->name, "fc.", 3) ? 1e-5 : !strncmp(p->name, "b1.", 3) ? 1e-4 : 2e-3;
    e = rel_err(m->grads + p->offset, tl_need(f, name)->data, (long)p->numel);
    printf("  %s %.2e", p->name, e);
    if (!(e <= tol)) TL_FAIL("int8 batch-norm net: gradient of %s differs by %.3g of its maximum (> %g)", p->name, e, tol);
    tl_checks++;
  }
  printf("\n");
  free(x);
  mh_trainer_free(t);
  mh_model_free(m);
}

int main(void) {
  enum { B = 8 };
  mh_st_file *fx = NULL;
  if (mh_st_read(&fx, MH_SOURCE_DIR "/tests/golden/int8.safetensors")) {
    fprintf(stderr, "%s\n", mh_last_error());
    return 1;
  }
  const mh_cpu_kernels *tabs[8];
  int n_tabs = tl_kernel_tables(tabs, 8);
  for (int i = 0; i < n_tabs; i++) {
    fixture_case(fx, 2, tabs[i]->isa, 0);
    bn_fixture_case(fx, 2, tabs[i]->isa, 0);
  }
  fixture_case(fx, 1, NULL, 0);
  fixture_case(fx, 2, NULL, 1); /* the oracle ops */
  bn_fixture_case(fx, 1, NULL, 1);
  mh_st_free(fx);

  float x[B * 3 * 12 * 12];
  int32_t y[B];
  mh_rng r = mh_rng_make(21);
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = mh_rng_uniform(&r) * 2 - 1;
  for (int i = 0; i < B; i++) y[i] = (int32_t)mh_rng_below(&r, 10);

  /* 1. forward and gradients: int8 vs FP32 on identical weights */
  mh_model *mf = make_model(), *mq = make_model();
  CHECK(mf && mq);
  mh_trainer *tf = make_trainer(mf, "fp32", 2, NULL), *tq = make_trainer(mq, "int8", 2, NULL);
  CHECK(tf && tq);
  CHECK_OK(mh__trainer_prepare(tf, B));
  CHECK_OK(mh__trainer_prepare(tq, B));
  CHECK_OK(mh_exec_forward(tf->ex, x, B, mf->params, mf->buffers, 1));
  CHECK_OK(mh_exec_forward(tq->ex, x, B, mq->params, mq->buffers, 1));
  const float *zf = mh_exec_output(tf->ex), *zq = mh_exec_output(tq->ex);
  double num = 0, den = 0;
  for (int i = 0; i < B * 10; i++) num += (zf[i] - zq[i]) * (double)(zf[i] - zq[i]), den += zf[i] * (double)zf[i];
  /* int8 with a per-tensor scale keeps ~7 bits per operand; through 6 layers the logits stay within
   * a few percent (relative L2) of FP32 */
  double rel = sqrt(num / den);
  printf("logits: relative L2 difference int8 vs fp32 = %.4f\n", rel);
  CHECK(rel < 0.05);
  mh_softmax_xent_f32(zf, y, B, 10, mh_exec_output_grad(tf->ex));
  mh_softmax_xent_f32(zq, y, B, 10, mh_exec_output_grad(tq->ex));
  CHECK_OK(mh_exec_backward(tf->ex, mf->params, mf->grads));
  CHECK_OK(mh_exec_backward(tq->ex, mq->params, mq->grads));
  double cos_sum = 0;
  for (int p = 0; p < mf->g.n_params; p++) {
    const mh_param *pp = &mf->g.params[p];
    double dot = 0, nf = 0, nq = 0;
    for (int64_t i = 0; i < pp->numel; i++) {
      double a = mf->grads[pp->offset + i], b = mq->grads[pp->offset + i];
      dot += a * b, nf += a * a, nq += b * b;
    }
    double cosv = nf > 0 && nq > 0 ? dot / sqrt(nf * nq) : 1;
    /* Stochastic rounding of every layer's dL/dy (unbiased, ~0.3 LSB noise) plus int8 activations:
     * on this batch of 8 the noise is large for small tensors deep in the backward pass (an 8-element
     * bias reaches ~0.90), so each tensor must keep cosine >= 0.85 and the mean >= 0.95. A wrong
     * transpose, scale or sign gives ~0 or negative. */
    if (cosv < 0.85) TL_FAIL("gradient of %s: cosine %.4f between int8 and fp32 (< 0.85)", pp->name, cosv);
    cos_sum += cosv;
    tl_checks++;
  }
  printf("gradients: mean cosine int8 vs fp32 = %.4f over %d tensors\n", cos_sum / mf->g.n_params, mf->g.n_params);
  CHECK(cos_sum / mf->g.n_params >= 0.95);
  mh_trainer_free(tf), mh_trainer_free(tq), mh_model_free(mf), mh_model_free(mq);

  /* 2. bit-identical training across thread counts and every kernel table this CPU has */
  const mh_cpu_kernels *tables[8];
  int n_tables = tl_kernel_tables(tables, 8);
  float *first = NULL;
  for (int v = 0; v <= n_tables; v++) {
    const char *isa = v < n_tables ? tables[v]->isa : NULL;
    int threads = v < n_tables ? 2 : 1; /* the last run: the default table on 1 thread */
    mh_model *m = make_model();
    mh_trainer *t = make_trainer(m, "int8", threads, isa);
    CHECK(t != NULL);
    if (!t) {
      mh_model_free(m);
      continue;
    }
    for (int s = 0; s < 4; s++) CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    size_t bytes = (size_t)m->g.n_param_floats * 4;
    if (!first) {
      first = malloc(bytes);
      memcpy(first, m->params, bytes);
    } else if (memcmp(first, m->params, bytes) != 0) {
      TL_FAIL("int8 training: weights after 4 steps differ between %s (2 threads) and %s (%d threads)", tables[0]->isa,
              mh_trainer_isa(t), threads);
    }
    tl_checks++;
    mh_trainer_free(t), mh_model_free(m);
  }
  free(first);
  return tl_exit();
}
