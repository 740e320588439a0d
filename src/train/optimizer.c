/* SGD with momentum / weight decay / Nesterov and Adam / AdamW over the flat parameter array, split
 * across the pool (element-wise, so the split never changes results), and the learning-rate schedules. */
#include <math.h>
#include <string.h>

#include "train/trainer.h"

typedef struct {
  float *w, *buf;
  const float *g;
  float lr, momentum, wd;
  int nesterov, first;
} sgd_job;

static void sgd_range(void *p, long lo, long hi) {
  const sgd_job *j = p;
  for (long i = lo; i < hi; i++) {
    float d = j->g[i] + j->wd * j->w[i];
    if (j->momentum != 0.f) {
      float b = j->first ? d : j->momentum * j->buf[i] + d;
      j->buf[i] = b;
      d = j->nesterov ? d + j->momentum * b : b;
    }
    j->w[i] -= j->lr * d;
  }
}

void mh__sgd_step(mh_pool *pool, float *w, const float *g, float *buf, long n, float lr, float momentum, float wd,
                  int nesterov, int first) {
  sgd_job j = {w, buf, g, lr, momentum, wd, nesterov, first};
  mh_parallel_for(pool, n, sgd_range, &j);
}

typedef struct {
  float *w, *m, *v;
  const float *g;
  float b1, c1, b2, c2, eps, step_size, bc2_sqrt, l2, decay; /* c1 = 1 - b1, c2 = 1 - b2 (rounded from double) */
} adam_job;

static void adam_range(void *p, long lo, long hi) {
  const adam_job *j = p;
  for (long i = lo; i < hi; i++) {
    float w = j->w[i] * j->decay, g = j->g[i] + j->l2 * w;
    float m = j->m[i] * j->b1 + j->c1 * g, v = j->v[i] * j->b2 + j->c2 * (g * g);
    j->m[i] = m, j->v[i] = v;
    j->w[i] = w - j->step_size * (m / (sqrtf(v) / j->bc2_sqrt + j->eps));
  }
}

void mh__adam_step(mh_pool *pool, float *w, const float *g, float *m, float *v, long n, double lr, double b1, double b2,
                   double eps, double wd, int decoupled, long step) {
  /* the scalars as PyTorch forms them: in double, each rounded once to float where it meets a tensor */
  double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step);
  adam_job j = {w,         m,           v,           g,         (float)b1,
                (float)(1 - b1), (float)b2, (float)(1 - b2), (float)eps, (float)(lr / bc1),
                (float)sqrt(bc2), decoupled ? 0.f : (float)wd, decoupled ? (float)(1 - lr * wd) : 1.f};
  mh_parallel_for(pool, n, adam_range, &j);
}

double mh__trainer_lr(const mh_trainer *t) {
  const mh_train_config *c = &t->cfg;
  switch (c->schedule) {
    case MH_SCHEDULE_STEP: {
      int size = c->step_size > 0 ? c->step_size : (c->epochs / 3 > 0 ? c->epochs / 3 : 1);
      return c->lr * pow(c->gamma, t->epoch / size);
    }
    case MH_SCHEDULE_COSINE: {
      /* per step, from lr at step 0 towards 0 at the last planned step */
      long total = t->steps_per_epoch * c->epochs;
      if (total <= 0) return c->lr;
      double f = (double)(t->step < total ? t->step : total) / (double)total;
      return 0.5 * c->lr * (1.0 + cos(M_PI * f));
    }
    default: return c->lr;
  }
}
