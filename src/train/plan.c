/* mh_model_plan: the public face of the placement planner (src/backend/planner.c) for a model, an
 * algorithm and a device profile (a file, or `host` measured now on top of sd865's DSP figures). */
#include <stdlib.h>
#include <string.h>

#include "backend/planner.h"
#include "core/status.h"
#include "train/algo.h"
#include "train/model.h"
#include "train/trainer.h"

int mh_model_plan(const mh_model *m, const char *precision, const char *profile, int batch, int threads, char **text,
                  mh_plan_report *r) {
  return mh_model_plan_partial(m, precision, profile, batch, threads, NULL, NULL, text, r);
}

/* The per-node trainable mask of freeze / train_only lists (NULL when both are empty). */
static int trainable_mask(const mh_graph *g, const char *freeze, const char *train_only, unsigned char **out) {
  *out = NULL;
  int fr = freeze && *freeze, to = train_only && *train_only;
  if (!fr && !to) return MH_OK;
  if (fr && to) return mh__error(MH_ERR_INVALID_ARG, "--freeze and --train-only exclude each other");
  unsigned char *mask = malloc((size_t)g->n_nodes);
  if (!mask) return mh__error(MH_ERR_NOMEM, "plan: out of memory");
  int st = mh__layers_resolve(g, fr ? freeze : train_only, fr ? "--freeze" : "--train-only", mask);
  for (int i = 0; fr && i < g->n_nodes; i++) mask[i] = !mask[i];
  if (st) free(mask);
  else *out = mask;
  return st;
}

int mh_model_plan_partial(const mh_model *m, const char *precision, const char *profile, int batch, int threads,
                          const char *freeze, const char *train_only, char **text, mh_plan_report *r) {
  *text = NULL;
  const mh_algo *a = mh_algo_find(precision);
  if (!a) return mh__error(MH_ERR_INVALID_ARG, "--precision %s: known precisions are %s", precision, mh_algo_names());
  MH_TRY(a->check(&m->g));
  if (batch < 1 || batch > 65536) return mh__error(MH_ERR_INVALID_ARG, "--batch %d out of range [1, 65536]", batch);
  mh_profile p;
  MH_TRY(mh_profile_resolve(&p, profile, threads));
  mh_plan_summary s;
  unsigned char *mask = NULL;
  MH_TRY(trainable_mask(&m->g, freeze, train_only, &mask));
  int st = mh_plan_partial(&m->g, a->precision, &p, batch, mask, text, &s, NULL);
  free(mask);
  if (st) return st;
  if (r) {
    const mh_plan_totals *src[4] = {&s.cpu_fp32, &s.cpu, &s.dsp, &s.cosched};
    double *dst[4][2] = {{&r->cpu_fp32_ms, &r->cpu_fp32_mj}, {&r->cpu_ms, &r->cpu_mj}, {&r->dsp_ms, &r->dsp_mj},
                         {&r->cosched_ms, &r->cosched_mj}};
    for (int k = 0; k < 4; k++) *dst[k][0] = src[k]->ms, *dst[k][1] = src[k]->mj;
    r->cosched_handoffs = s.cosched.handoffs;
    r->cosched_dsp_macs_share = s.cosched.dsp_macs_share;
  }
  return MH_OK;
}
