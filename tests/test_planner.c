/* The placement planner and device profiles: profile files parse (and bad ones fail naming the
 * file and line), every zoo model gets a plan, the planned placement is never slower than all-CPU or
 * DSP-wherever-possible under the same model, float work never lands on the DSP, and more expensive
 * hand-offs never move work onto the DSP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/planner.h"
#include "ops/ops.h"
#include "testlib.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

int main(void) {
  mh_profile p;
  CHECK_OK(mh_profile_find(&p, "sd865"));
  CHECK(p.dsp_int8_gmacs > 0 && p.cpu_fp32_gmacs > 0 && p.transport_latency_us > 0);
  /* bad profiles */
  char path[256];
  snprintf(path, sizeof path, "%s/bad.profile", MH_BINARY_DIR);
  write_file(path, "name = x\ndsp_clock_ghz = fast\n");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "bad.profile:2") != NULL);
  write_file(path, "name = x\ndsp_clock_ghz = 1\n");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "lacks") != NULL);
  CHECK_ERR(mh_profile_find(&p, "no-such-device"));

  CHECK_OK(mh_profile_find(&p, "sd865"));
  const char *const *names = mh_zoo_names();
  for (int z = 0; names[z]; z++)
    for (int prec = MH_PRECISION_FP32; prec <= MH_PRECISION_INTEGER; prec++) {
      mh_graph g;
      if (mh_zoo_build(&g, names[z])) continue;
      int bn = 0;
      for (int i = 1; i < g.n_nodes; i++) bn |= !mh_op_impl_for(g.nodes[i].op, prec);
      if (bn) { /* niti cannot run batch norm models */
        mh_graph_free(&g);
        continue;
      }
      char *text = NULL;
      mh_plan_summary s;
      CHECK_OK(mh_plan(&g, prec, &p, 32, &text, &s, NULL));
      if (text) {
        CHECK(s.cosched.ms <= s.cpu.ms * (1 + 1e-9) && s.cosched.ms <= s.dsp.ms * (1 + 1e-9));
        if (prec == MH_PRECISION_FP32) CHECK(s.cosched.dsp_macs_share == 0 && s.dsp.dsp_macs_share == 0);
        CHECK(strstr(text, "MODELLED") != NULL);
        /* hand-offs 100x dearer: the plan keeps at most as much work on the DSP */
        mh_profile dear = p;
        dear.transport_latency_us *= 100;
        char *t2 = NULL;
        mh_plan_summary s2;
        CHECK_OK(mh_plan(&g, prec, &dear, 32, &t2, &s2, NULL));
        CHECK(s2.cosched.handoffs <= s.cosched.handoffs);
        free(t2);
      }
      free(text);
      mh_graph_free(&g);
    }
  return tl_exit();
}
