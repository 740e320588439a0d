/* `mandheling plan`: where each task of a training step would run (CPU or DSP) on a device, with
 * modelled costs, hand-offs and the predicted step time and energy of each placement. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_plan(int argc, char **argv) {
  const char *model = NULL, *precision = "int8", *profile = "sd865", *json = NULL, *freeze = NULL, *train_only = NULL;
  int batch = 32, threads = 2;
  const cli_opt opts[] = {{"--model", OPT_STR, &model, "zoo name or model file (required)"},
                          {"--precision", OPT_STR, &precision, "fp32|int8|niti (default int8)"},
                          {"--device", OPT_STR, &profile, "device profile: sd865 (default), host (measured now), or a .profile file"},
                          {"--batch", OPT_INT, &batch, "batch size (default 32)"},
                          {"--threads", OPT_INT, &threads, "threads for the host measurements (default 2)"},
                          {"--freeze", OPT_STR, &freeze, "layers that do not train (names, a..b, last:N)"},
                          {"--train-only", OPT_STR, &train_only, "the layers that train; all others frozen"},
                          {"--json", OPT_STR, &json, "write a JSON summary"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("plan", "--model NAME|FILE [--precision P] [--device NAME|FILE] [--batch B]", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (!model) {
    fprintf(stderr, "mandheling plan: --model NAME|FILE is required\n");
    return 2;
  }
  mh_model *m = NULL;
  char *text = NULL;
  mh_plan_report rep;
  if (mh_model_create(&m, model, 1) || mh_model_plan_partial(m, precision, profile, batch, threads, freeze, train_only, &text, &rep)) {
    mh_model_free(m);
    return cli_fail("plan");
  }
  fputs(text, stdout);
  free(text);
  int rc = 0;
  if (json) {
    json_out j;
    json_begin(&j);
    json_str(&j, "command", "plan");
    json_str(&j, "model", model);
    json_str(&j, "precision", precision);
    json_str(&j, "profile", profile);
    json_int(&j, "batch", batch);
    json_num(&j, "cpu_fp32_ms", rep.cpu_fp32_ms);
    json_num(&j, "cpu_fp32_mj", rep.cpu_fp32_mj);
    json_num(&j, "cpu_ms", rep.cpu_ms);
    json_num(&j, "cpu_mj", rep.cpu_mj);
    json_num(&j, "dsp_ms", rep.dsp_ms);
    json_num(&j, "dsp_mj", rep.dsp_mj);
    json_num(&j, "cosched_ms", rep.cosched_ms);
    json_num(&j, "cosched_mj", rep.cosched_mj);
    json_int(&j, "cosched_handoffs", rep.cosched_handoffs);
    json_num(&j, "cosched_dsp_macs_share", rep.cosched_dsp_macs_share);
    json_str(&j, "note", "modelled, not measured");
    rc = json_write(&j, json);
  }
  mh_model_free(m);
  return rc;
}
