/* mh_model_plan: the public face of the placement planner (src/backend/planner.c) for a model, an
 * algorithm and a device profile (a file, or `host` measured now on top of sd865's DSP figures). */
#include <string.h>

#include "backend/planner.h"
#include "core/status.h"
#include "train/algo.h"
#include "train/model.h"

int mh_model_plan(const mh_model *m, const char *precision, const char *profile, int batch, int threads, char **text,
                  mh_plan_report *r) {
  *text = NULL;
  const mh_algo *a = mh_algo_find(precision);
  if (!a) return mh__error(MH_ERR_INVALID_ARG, "--precision %s: known precisions are %s", precision, mh_algo_names());
  MH_TRY(a->check(&m->g));
  if (batch < 1 || batch > 65536) return mh__error(MH_ERR_INVALID_ARG, "--batch %d out of range [1, 65536]", batch);
  mh_profile p;
  MH_TRY(mh_profile_resolve(&p, profile, threads));
  mh_plan_summary s;
  MH_TRY(mh_plan(&m->g, a->precision, &p, batch, text, &s, NULL));
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
