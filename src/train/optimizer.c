/* SGD with momentum / weight decay / Nesterov over the flat parameter array, split across the pool
 * (element-wise, so the split never changes results), and the learning-rate schedules. */
#include <math.h>

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
