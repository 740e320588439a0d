/* The step benchmark: full training steps (forward, backward, SGD) on synthetic data, two warm-up
 * steps, then the median and minimum of timed steps. Measures; never judges. */
#include <stdlib.h>
#include <time.h>

#include "core/rng.h"
#include "core/status.h"
#include "train/trainer.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int mh_bench(mh_trainer *t, int batch, int steps, mh_bench_result *res) {
  if (batch < 1 || steps < 1) return mh__error(MH_ERR_INVALID_ARG, "bench: batch %d and steps %d must be >= 1", batch, steps);
  const mh_node *in = &t->m->g.nodes[0];
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
  size_t nx = (size_t)batch * in->c * in->h * in->w;
  float *x = malloc(nx * sizeof(float));
  int32_t *y = malloc((size_t)batch * sizeof(int32_t));
  double *ms = malloc((size_t)steps * sizeof(double));
  if (!x || !y || !ms) {
    free(x), free(y), free(ms);
    return mh__error(MH_ERR_NOMEM, "bench: out of memory");
  }
  /* standard-normal-ish inputs (sum of uniforms), random labels: like zoo.py's randn/randint */
  mh_rng r = mh_rng_make(mh_rng_key(t->cfg.seed, MH_STREAM_SYNTH, 0, 0));
  for (size_t i = 0; i < nx; i++) {
    float s = 0;
    for (int k = 0; k < 12; k++) s += mh_rng_uniform(&r);
    x[i] = s - 6.f;
  }
  for (int i = 0; i < batch; i++) y[i] = (int32_t)mh_rng_below(&r, (uint32_t)classes);
  int st = MH_OK;
  for (int i = 0; i < 2 + steps && st == MH_OK; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    st = mh_trainer_step(t, x, y, batch, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (i >= 2) ms[i - 2] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6;
  }
  if (st == MH_OK) {
    qsort(ms, (size_t)steps, sizeof(double), cmp_double);
    res->step_ms_median = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    res->step_ms_min = ms[0];
    res->peak_bytes = mh_trainer_peak_bytes(t);
  }
  free(x), free(y), free(ms);
  return st;
}
