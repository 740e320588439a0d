/* `mandheling info` (model description, optional export to the model format) and
 * `mandheling bench` (median training-step time on synthetic data). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
  const char *model = NULL, *export_path = NULL;
  int batch = 32;
  const cli_opt opts[] = {{"--model", OPT_STR, &model, "zoo name or model file (required)"},
                          {"--batch", OPT_INT, &batch, "batch size for the memory estimate (default 32)"},
                          {"--export", OPT_STR, &export_path, "write the model in the text model format"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("info", "--model NAME|FILE [--batch B] [--export FILE]", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (!model) {
    fprintf(stderr, "mandheling info: --model NAME|FILE is required\n");
    return 2;
  }
  if (batch < 1 || batch > 65536) {
    fprintf(stderr, "mandheling info: --batch %d out of range [1, 65536]\n", batch);
    return 2;
  }
  mh_model *m = NULL;
  char *text = NULL;
  if (mh_model_create(&m, model, 1)) return cli_fail("info");
  if (mh_model_describe(m, batch, &text)) {
    mh_model_free(m);
    return cli_fail("info");
  }
  fputs(text, stdout);
  free(text);
  char *cpu = NULL;
  if (mh_cpu_describe(&cpu) == 0) fputs(cpu, stdout);
  free(cpu);
  if (getenv("MH_FORCE_REF")) printf("MH_FORCE_REF=1: every run uses the portable reference kernels\n");
  char dsp[1024];
  int have_dsp = mh_dsp_probe(dsp, sizeof dsp);
  printf("dsp: %s: %s\n", have_dsp ? "available" : "not available", dsp);
  int rc = 0;
  if (export_path) {
    char *spec = NULL;
    FILE *f = NULL;
    if (mh_model_to_text(m, &spec) || !(f = fopen(export_path, "w")) || fputs(spec, f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "mandheling info: --export %s: cannot write\n", export_path);
      rc = 1;
    } else {
      printf("model file written to %s\n", export_path);
    }
    free(spec);
  }
  mh_model_free(m);
  return rc;
}

/* The per-layer packet table: its first columns on stdout, the whole TSV into `path` (when given). */
static int print_layers(const char *tsv, const char *path) {
  printf("%-24s %4s %10s %12s %12s %8s\n", "DSP layer", "pass", "MMAC", "packets", "modelled", "ratio");
  const char *l = strchr(tsv, '\n');
  while (l && l[1]) {
    int node;
    char name[96], pass[8];
    double mmac, counted, modelled, ratio;
    if (sscanf(l + 1, "%d\t%95[^\t]\t%7[^\t]\t%lf\t%lf\t%lf\t%lf", &node, name, pass, &mmac, &counted, &modelled, &ratio) == 7)
      printf("%-24.24s %4s %10.2f %12.0f %12.0f %8.2f\n", name, pass, mmac, counted, modelled, ratio);
    l = strchr(l + 1, '\n');
  }
  if (!path) return 0;
  FILE *f = fopen(path, "w");
  int bad = !f || fputs(tsv, f) < 0;
  if (f && fclose(f)) bad = 1;
  if (bad) fprintf(stderr, "mandheling bench: cannot write %s\n", path);
  return bad;
}

int cmd_bench(int argc, char **argv) {
  const char *model = NULL, *json = NULL, *precision = "fp32", *rescale = NULL, *backend = NULL, *device = NULL, *isa = NULL,
             *layers = NULL, *freeze = NULL, *train_only = NULL;
  int batch = 32, steps = 10, threads = 2, reference = 0, profile = 0, keep_denormals = 0, no_reuse = 0,
      no_segments = 0;
  const cli_opt opts[] = {{"--model", OPT_STR, &model, "zoo name or model file (required)"},
                          {"--batch", OPT_INT, &batch, "batch size (default 32)"},
                          {"--steps", OPT_INT, &steps, "timed steps after 2 warm-up steps (default 10)"},
                          {"--threads", OPT_INT, &threads, "threads (default 2)"},
                          {"--precision", OPT_STR, &precision, "fp32|int8|niti (default fp32)"},
                          {"--rescale", OPT_STR, &rescale, "niti: adaptive|exact (default adaptive)"},
                          {"--backend", OPT_STR, &backend, "cpu|dsp|auto: int8/niti GEMMs on the CPU, all on the DSP, or as planned (default cpu)"},
                          {"--no-reuse", OPT_FLAG, &no_reuse, "--backend dsp|auto: rebuild DSP subgraphs before every run"},
                          {"--no-segments", OPT_FLAG, &no_segments, "--backend dsp|auto: one DSP message per layer"},
                          {"--device", OPT_STR, &device, "--backend auto: device profile to plan for (default sd865)"},
                          {"--reference", OPT_FLAG, &reference, "portable oracle kernels only"},
                          {"--isa", OPT_STR, &isa, "CPU kernel table: ref|avx2|avxvnni|avx512|avx512vnni (default: the fastest here; mandheling info lists them)"},
                          {"--profile", OPT_FLAG, &profile, "print time per op type (mean per step)"},
                          {"--keep-denormals", OPT_FLAG, &keep_denormals, "IEEE denormals (default: flush to zero)"},
                          {"--json", OPT_STR, &json, "write a JSON summary"},
                          {"--freeze", OPT_STR, &freeze, "layers that do not train (names, a..b, last:N)"},
                          {"--train-only", OPT_STR, &train_only, "the layers that train; all others frozen"},
                          {"--dsp-layers", OPT_STR, &layers, "--backend dsp|auto: write packets per layer and pass, counted and modelled, as TSV"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("bench", "--model NAME [--batch B] [--steps N] [--threads T]", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (!model) {
    fprintf(stderr, "mandheling bench: --model NAME|FILE is required\n");
    return 2;
  }
  if (steps < 1 || steps > 100000) {
    fprintf(stderr, "mandheling bench: --steps %d out of range [1, 100000]\n", steps);
    return 2;
  }
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.batch = batch;
  cfg.threads = threads;
  cfg.precision = precision;
  cfg.rescale = rescale;
  cfg.backend = backend;
  cfg.no_reuse = no_reuse;
  cfg.no_segments = no_segments;
  cfg.profile = device;
  cfg.lr = 0.01f; /* as reference/zoo.py's timing loop */
  cfg.schedule = MH_SCHEDULE_CONSTANT;
  cfg.force_reference = reference;
  cfg.keep_denormals = keep_denormals;
  cfg.isa = isa;
  cfg.freeze = freeze, cfg.train_only = train_only;
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_bench_result res;
  int st = mh_model_create(&m, model, 0);
  if (!st) st = mh_trainer_create(&t, m, &cfg);
  if (!st) st = mh_bench(t, batch, steps, profile, &res);
  int rc = 1;
  if (st) {
    cli_fail("bench");
    goto out;
  }
  printf("%s\tparams=%lld\tbatch=%d\tthreads=%d\tprecision=%s\tisa=%s\tmedian_ms=%.1f\tmin_ms=%.1f\tpeak_MiB=%.1f\tcpu=%s\n",
         model, (long long)mh_model_param_count(m), batch, threads, precision, mh_trainer_isa(t), res.step_ms_median,
         res.step_ms_min, res.peak_bytes / 1048576.0, mh_cpu_name());
  mh_dsp_report dr;
  mh_trainer_dsp_report(t, &dr);
  if (dr.gemms) {
    printf("note: %ld int8 GEMMs ran on the emulated DSP (qemu-hexagon): these times are the emulator's, not a DSP's "
           "(see mandheling plan for modelled DSP costs)\n",
           dr.gemms);
    cli_print_dsp("dsp per step:", &res.dsp_per_step);
    const mh_dsp_report *d = &res.dsp_per_step;
    if (d->packets_counted && d->packets > 0) {
      double ms = res.dsp_clock_ghz > 0 ? d->packets / (res.dsp_clock_ghz * 1e6) : 0;
      printf("dsp per step: %.3g executed packets (%.1f%% with HVX; forward %.3g, backward %.3g, other %.3g), "
             "%.1f int8 MACs per packet (bound 256)\n",
             d->packets, 100 * d->hvx_packets / d->packets, d->packets_fwd, d->packets_bwd, d->packets_other,
             d->macs / d->packets);
      if (ms > 0)
        printf("dsp per step: %.1f ms at %s's %.2f GHz on one HVX context, %.1f ms if all %d were used perfectly "
               "(derived from executed packets at one per cycle, not measured on a phone)\n",
               ms, res.dsp_profile, res.dsp_clock_ghz, ms / (res.dsp_contexts > 0 ? res.dsp_contexts : 1),
               res.dsp_contexts);
    }
    if (res.dsp_functions) fputs(res.dsp_functions, stdout);
    free(res.dsp_functions);
    int bad = res.dsp_layers && print_layers(res.dsp_layers, layers);
    free(res.dsp_layers);
    if (bad) goto out;
  }
  if (!strcmp(precision, "niti"))
    printf("rescale %s: %.1f%% of step time\n", mh_trainer_rescale_mode(t), 100 * res.rescale_share);
  if (res.profile) {
    fputs(res.profile, stdout);
    free(res.profile);
  }
  if (json) {
    json_out j;
    json_begin(&j);
    json_str(&j, "command", "bench");
    json_str(&j, "model", model);
    json_str(&j, "precision", precision);
    json_int(&j, "batch", batch);
    json_int(&j, "threads", threads);
    json_int(&j, "steps", steps);
    json_num(&j, "step_ms_median", res.step_ms_median);
    json_num(&j, "step_ms_min", res.step_ms_min);
    json_int(&j, "peak_bytes", (long long)res.peak_bytes);
    json_num(&j, "rescale_share", res.rescale_share);
    json_str(&j, "isa", mh_trainer_isa(t));
    json_str(&j, "cpu", mh_cpu_name());
    if (dr.gemms) cli_json_dsp(&j, &res.dsp_per_step); /* per timed step */
    if (json_write(&j, json)) goto out;
  }
  rc = 0;
out:
  mh_trainer_free(t);
  mh_model_free(m);
  return rc;
}
