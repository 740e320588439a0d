/* The int8 (mixed-precision) algorithm: its forward and gradients stay close to FP32 on the same
 * weights (the only difference is power-of-two int8 quantisation), and a training run is bit-identical
 * with 1 and 2 threads and on the portable and AVX2 kernel tables (integer GEMMs are exact). */
#include <string.h>

#include "core/rng.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "testlib.h"
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

static mh_trainer *make_trainer(mh_model *m, const char *prec, int threads, int ref) {
  mh_train_config c;
  mh_train_config_default(&c);
  c.precision = prec, c.batch = 8, c.threads = threads, c.schedule = MH_SCHEDULE_CONSTANT, c.lr = 0.02f;
  c.force_reference = 0;
  mh_trainer *t = NULL;
  mh_trainer_create(&t, m, &c);
  if (t && ref) t->kt = mh_cpu_kernels_get(1), mh_exec_free(t->ex), mh_exec_init(&t->ex, &m->g, t->pool, t->kt),
                       mh_exec_set_precision(t->ex, MH_PRECISION_INT8);
  return t;
}

int main(void) {
  enum { B = 8 };
  float x[B * 3 * 12 * 12];
  int32_t y[B];
  mh_rng r = mh_rng_make(21);
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = mh_rng_uniform(&r) * 2 - 1;
  for (int i = 0; i < B; i++) y[i] = (int32_t)mh_rng_below(&r, 10);

  /* 1. forward and gradients: int8 vs FP32 on identical weights */
  mh_model *mf = make_model(), *mq = make_model();
  CHECK(mf && mq);
  mh_trainer *tf = make_trainer(mf, "fp32", 2, 0), *tq = make_trainer(mq, "int8", 2, 0);
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

  /* 2. bit-identical training across thread counts and kernel tables */
  float *final[3];
  const int threads[3] = {1, 2, 2}, ref[3] = {0, 0, 1};
  for (int v = 0; v < 3; v++) {
    mh_model *m = make_model();
    mh_trainer *t = make_trainer(m, "int8", threads[v], ref[v]);
    for (int s = 0; s < 4; s++) CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    final[v] = malloc((size_t)m->g.n_param_floats * 4);
    memcpy(final[v], m->params, (size_t)m->g.n_param_floats * 4);
    if (v > 0 && memcmp(final[v], final[0], (size_t)m->g.n_param_floats * 4) != 0)
      TL_FAIL("int8 training: weights after 4 steps differ between 1 thread/avx2 and %d threads/%s", threads[v],
              ref[v] ? "portable kernels" : "avx2");
    tl_checks++;
    mh_trainer_free(t), mh_model_free(m);
  }
  for (int v = 0; v < 3; v++) free(final[v]);
  return tl_exit();
}
