/* `mandheling train` and `mandheling eval`: option handling, progress, checkpoints and the JSON
 * summary around the library's mh_fit / mh_evaluate. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static int parse_schedule(const char *s, mh_schedule *out) {
  if (strcmp(s, "cosine") == 0) *out = MH_SCHEDULE_COSINE;
  else if (strcmp(s, "step") == 0) *out = MH_SCHEDULE_STEP;
  else if (strcmp(s, "constant") == 0) *out = MH_SCHEDULE_CONSTANT;
  else {
    fprintf(stderr, "mandheling train: --schedule: '%s' is not one of step, cosine, constant\n", s);
    return 2;
  }
  return 0;
}

/* One line on what rescaling int32 results to int8 did and what the adaptive rule avoided. */
static void print_rescale(const mh_rescale_report *r, const char *mode, double seconds) {
  printf("rescale %s: %ld int32 tensors shifted to int8, %ld max passes, %ld avoided (%.1f MiB of int32 not re-read), "
         "%ld fallbacks, %ld mispredicted shifts; %.2f s (%.1f%% of the run)\n",
         mode, r->calls, r->max_passes, r->passes_avoided, r->bytes_avoided / 1048576.0, r->fallbacks, r->mispredicted,
         r->seconds, seconds > 0 ? 100 * r->seconds / seconds : 0);
}

/* What train's progress callback does besides drawing: the CSV log and periodic checkpoints. */
typedef struct {
  mh_trainer *t;
  int quiet;
  FILE *log;
  long log_every, save_every;
  const char *save, *precision, *backend;
  int save_failed;
} train_run;

static void log_row(train_run *r, const mh_progress *p) {
  fprintf(r->log, "%d,%ld,%.9g,%d,%.6f,", p->epoch + 1, p->step, p->lr, p->mu, p->loss);
  if (p->epoch_done && p->test_accuracy >= 0) fprintf(r->log, "%.6f,%.6f,", p->test_loss, p->test_accuracy);
  else fputs(",,", r->log);
  mh_rescale_report rr;
  mh_dsp_report dr;
  mh_trainer_rescale_report(r->t, &rr);
  mh_trainer_dsp_report(r->t, &dr);
  fprintf(r->log, "%.3f,%.1f,%s,%s,%d,%ld,%ld,%ld,%ld,%ld,%.0f,%.0f\n", p->seconds, p->samples_per_second, r->precision,
          r->backend, p->epoch_done, rr.calls, rr.max_passes, rr.fallbacks, dr.gemms, dr.cpu_fallbacks, dr.bytes_to_dsp,
          dr.bytes_from_dsp);
  fflush(r->log);
}

static void train_progress(void *user, const mh_progress *p) {
  train_run *r = user;
  if (!r->quiet) cli_progress(NULL, p);
  if (r->log && (p->epoch_done || (r->log_every > 0 && p->step % r->log_every == 0))) log_row(r, p);
  if (r->save && r->save_every > 0 && !p->epoch_done && p->step % r->save_every == 0 &&
      mh_trainer_save(r->t, r->save) != MH_OK && !r->save_failed) {
    fprintf(stderr, "mandheling train: --save-every: %s\n", mh_last_error());
    r->save_failed = 1;
  }
}

/* SIGINT / SIGTERM: the fit stops at the next step boundary, then a checkpoint is written. */
static mh_trainer *volatile g_running;
static volatile sig_atomic_t g_signal;
static void on_signal(int sig) {
  g_signal = sig;
  if (g_running) mh_trainer_request_stop(g_running);
}

int cmd_train(int argc, char **argv) {
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  const char *model = "lenet5", *data = DEFAULT_DATA, *save = NULL, *resume = NULL, *json = NULL, *init = NULL,
             *schedule = "cosine", *precision = "fp32", *log = NULL;
  int quiet = 0, epochs = -1, classes = -1;
  long max_steps = -1, log_every = 0, save_every = 0;
  const cli_opt opts[] = {
      {"--model", OPT_STR, &model, "zoo name or model file (default lenet5)"},
      {"--data", OPT_STR, &data, "data directory (default " DEFAULT_DATA ")"},
      {"--epochs", OPT_INT, &epochs, "epochs (default 5; on --resume, the checkpoint's)"},
      {"--batch", OPT_INT, &cfg.batch, "batch size (default 64)"},
      {"--lr", OPT_FLOAT, &cfg.lr, "learning rate (default 0.05)"},
      {"--momentum", OPT_FLOAT, &cfg.momentum, "SGD momentum (default 0.9)"},
      {"--wd", OPT_FLOAT, &cfg.weight_decay, "weight decay (default 5e-4)"},
      {"--nesterov", OPT_FLAG, &cfg.nesterov, "Nesterov momentum"},
      {"--classes", OPT_INT, &classes, "replace the last (linear) layer by a fresh one with N outputs (after --init)"},
      {"--freeze", OPT_STR, &cfg.freeze, "layers that do not train: names, a..b ranges, last:N (comma-separated)"},
      {"--train-only", OPT_STR, &cfg.train_only, "the layers that train (same forms); all others frozen"},
      {"--frozen-bn-train", OPT_FLAG, &cfg.frozen_bn_train, "frozen batch norms keep batch statistics (default: running ones)"},
      {"--optimizer", OPT_STR, &cfg.optimizer, "fp32/int8: sgd|adam|adamw (default sgd; adam: --wd as L2, adamw: decoupled)"},
      {"--beta1", OPT_DOUBLE, &cfg.beta1, "adam/adamw: first-moment decay (default 0.9)"},
      {"--beta2", OPT_DOUBLE, &cfg.beta2, "adam/adamw: second-moment decay (default 0.999)"},
      {"--eps", OPT_DOUBLE, &cfg.eps, "adam/adamw: added to the root of the second moment (default 1e-8)"},
      {"--schedule", OPT_STR, &schedule, "step|cosine|constant (default cosine)"},
      {"--step-size", OPT_INT, &cfg.step_size, "step schedule: epochs per decay (default epochs/3)"},
      {"--gamma", OPT_FLOAT, &cfg.gamma, "step schedule: decay factor (default 0.1)"},
      {"--precision", OPT_STR, &precision, "fp32|int8|niti (default fp32)"},
      {"--backend", OPT_STR, &cfg.backend, "cpu|dsp|auto: int8/niti GEMMs on the CPU, all on the DSP, or as planned (default cpu)"},
      {"--no-reuse", OPT_FLAG, &cfg.no_reuse, "--backend dsp|auto: rebuild DSP subgraphs before every run"},
      {"--no-segments", OPT_FLAG, &cfg.no_segments, "--backend dsp|auto: one DSP message per layer, no chains of layers"},
      {"--device", OPT_STR, &cfg.profile, "--backend auto: device profile to plan for: sd865|host|FILE (default sd865)"},
      {"--rescale", OPT_STR, &cfg.rescale, "niti: adaptive|exact shift of int32 results (default adaptive)"},
      {"--mu", OPT_STR, &cfg.mu, "niti: gradient bit width per epoch, e.g. 5,4,3 (default 4,4,3,3,2 for 5 epochs)"},
      {"--threads", OPT_INT, &cfg.threads, "worker threads including the caller (default 2)"},
      {"--seed", OPT_U64, &cfg.seed, "seed for initialisation, shuffling, augmentation (default 1)"},
      {"--max-steps", OPT_LONG, &max_steps, "stop after N optimizer steps in total"},
      {"--augment", OPT_FLAG, &cfg.augment, "random crop (+ flip for colour images)"},
      {"--reference", OPT_FLAG, &cfg.force_reference, "portable oracle kernels only (slow)"},
      {"--isa", OPT_STR, &cfg.isa, "CPU kernel table: ref|avx2|avxvnni|avx512|avx512vnni (default: the fastest here)"},
      {"--keep-denormals", OPT_FLAG, &cfg.keep_denormals, "IEEE denormals (default: flush to zero)"},
      {"--save", OPT_STR, &save, "write a checkpoint (safetensors) at the end"},
      {"--resume", OPT_STR, &resume, "continue exactly from a checkpoint"},
      {"--init", OPT_STR, &init, "start from these weights (a checkpoint or a PyTorch state_dict as safetensors); optimizer state starts fresh"},
      {"--json", OPT_STR, &json, "write a JSON summary"},
      {"--log", OPT_STR, &log, "a CSV row per epoch (and every --log-every steps): loss, accuracy, lr, time (scripts/plot_log.py draws it)"},
      {"--log-every", OPT_LONG, &log_every, "--log: also a row every N steps"},
      {"--save-every", OPT_LONG, &save_every, "with --save: also write the checkpoint every N steps"},
      {"--quiet", OPT_FLAG, &quiet, "no progress output"},
      {NULL, 0, NULL, NULL}};
  int r = cli_parse("train", "[--model NAME|FILE] [--data DIR] [options]", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (parse_schedule(schedule, &cfg.schedule)) return 2;
  if (init && resume) {
    fprintf(stderr, "mandheling train: --init and --resume exclude each other (--resume continues a run, --init starts one)\n");
    return 2;
  }
  cfg.precision = precision;
  if (epochs != -1) cfg.epochs = epochs;
  if (max_steps != -1) cfg.max_steps = max_steps;
  int model_given = 0, precision_given = 0;
  for (int i = 0; i < argc; i++) {
    model_given |= strncmp(argv[i], "--model", 7) == 0;
    precision_given |= strncmp(argv[i], "--precision", 11) == 0;
  }
  if (resume) { /* a checkpoint restores these: say which of the given ones it overrides */
    static const char *const restored[] = {"--lr", "--momentum", "--wd", "--nesterov", "--schedule", "--step-size",
                                           "--gamma", "--batch", "--seed", "--augment", "--optimizer", "--beta1",
                                           "--beta2", "--eps", "--freeze", "--train-only", "--frozen-bn-train",
                                           "--rescale", "--mu"};
    char ignored[512] = "";
    for (int i = 0; i < argc; i++)
      for (size_t k = 0; k < sizeof restored / sizeof restored[0]; k++) {
        size_t n = strlen(restored[k]);
        if (!strncmp(argv[i], restored[k], n) && (argv[i][n] == 0 || argv[i][n] == '=') &&
            strlen(ignored) + n + 3 < sizeof ignored)
          snprintf(ignored + strlen(ignored), sizeof ignored - strlen(ignored), "%s%s", *ignored ? ", " : "", restored[k]);
      }
    if (*ignored)
      fprintf(stderr, "mandheling train: warning: --resume continues with the checkpoint's settings; ignored: %s\n",
              ignored);
  }
  char ckpt_precision[16];
  if (resume && !precision_given) { /* resume in the checkpoint's own precision */
    if (mh_checkpoint_precision(resume, ckpt_precision, sizeof ckpt_precision)) return cli_fail("train");
    cfg.precision = precision = ckpt_precision;
  }
  if (!quiet) mh_set_log(cli_log, NULL);

  mh_model *m = NULL;
  mh_trainer *t = NULL;
  int rc = 1;
  /* a checkpoint knows its model: without --model, resume builds the checkpoint's own */
  int st = resume && !model_given ? mh_checkpoint_model(resume, cfg.seed, &m) : mh_model_create(&m, model, cfg.seed);
  if (st) goto out;
  if (init && (st = mh_model_load_weights(m, init))) goto out;
  if (classes != -1 && resume) {
    fprintf(stderr, "mandheling train: --classes changes the model; a resumed run keeps its checkpoint's\n");
    rc = 2;
    goto out;
  }
  if (classes != -1 && (st = mh_model_set_classes(&m, classes, cfg.seed))) goto out;
  if ((st = mh_trainer_create(&t, m, &cfg))) goto out;
  /* resuming restores the checkpoint's hyper-parameters; --epochs/--max-steps still say how far to go */
  if (resume && (st = mh_trainer_load(t, resume))) goto out;
  if (resume && (st = mh_trainer_set_length(t, epochs, max_steps))) goto out;
  if (log_every < 0 || save_every < 0) {
    fprintf(stderr, "mandheling train: --log-every and --save-every take a number of steps >= 1\n");
    rc = 2;
    goto out;
  }
  train_run run = {t, quiet, NULL, log_every, save_every, save, precision, cfg.backend ? cfg.backend : "cpu", 0};
  if (log) {
    if (!(run.log = fopen(log, "w"))) {
      fprintf(stderr, "mandheling train: --log %s: %s\n", log, strerror(errno));
      goto out;
    }
    fputs("epoch,step,lr,mu,train_loss,test_loss,test_accuracy,seconds,samples_per_s,precision,backend,epoch_end,"
          "rescale_calls,rescale_max_passes,rescale_fallbacks,dsp_gemms,dsp_cpu_fallbacks,dsp_bytes_to,dsp_bytes_from\n",
          run.log);
  }
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  g_running = t, g_signal = 0;
  sigaction(SIGINT, &sa, &old_int), sigaction(SIGTERM, &sa, &old_term);
  mh_fit_summary sum;
  st = mh_fit(t, data, train_progress, &run, &sum);
  sigaction(SIGINT, &old_int, NULL), sigaction(SIGTERM, &old_term, NULL);
  g_running = NULL;
  if (run.log && fclose(run.log)) fprintf(stderr, "mandheling train: --log %s: %s\n", log, strerror(errno));
  if (st) goto out;
  if (sum.stopped) { /* interrupted: keep the run, exit 130 as a shell does for SIGINT */
    const char *where = save ? save : "mandheling-interrupted.st";
    if ((st = mh_trainer_save(t, where))) goto out;
    fprintf(stderr, "mandheling train: %s at step %ld; checkpoint written to %s (continue with --resume %s)\n",
            g_signal == SIGTERM ? "terminated" : "interrupted", sum.steps, where, where);
    rc = 130;
    goto out;
  }
  if (save && (st = mh_trainer_save(t, save))) goto out;
  if (!model_given) model = mh_model_name(m); /* on --resume without --model: the checkpoint's model */
  char loss_txt[32], acc_txt[32];
  snprintf(loss_txt, sizeof loss_txt, isnan(sum.train_loss) ? "n/a (no step taken)" : "%.4f", sum.train_loss);
  snprintf(acc_txt, sizeof acc_txt, sum.test_accuracy < 0 ? "n/a (no test split)" : "%.2f%%", 100 * sum.test_accuracy);
  printf("model %s  precision %s  steps %ld  %.1f s  train loss %s  test accuracy %s  peak %.1f MiB\n", model,
         precision, sum.steps, sum.seconds, loss_txt, acc_txt, sum.peak_bytes / 1048576.0);
  if (sum.rescale.calls) print_rescale(&sum.rescale, mh_trainer_rescale_mode(t), sum.seconds);
  if (sum.dsp.gemms || sum.dsp.cpu_fallbacks) cli_print_dsp("dsp:", &sum.dsp);
  if (save) printf("checkpoint written to %s\n", save);
  if (json) {
    json_out j;
    json_begin(&j);
    json_str(&j, "command", "train");
    json_str(&j, "model", model);
    json_str(&j, "precision", precision);
    json_str(&j, "data", data);
    json_int(&j, "steps", sum.steps);
    json_int(&j, "epochs", sum.epochs);
    json_int(&j, "batch", cfg.batch);
    json_int(&j, "threads", cfg.threads);
    json_int(&j, "seed", (long long)cfg.seed);
    json_num(&j, "lr", cfg.lr);
    json_str(&j, "optimizer", mh_trainer_optimizer(t));
    json_num(&j, "seconds", sum.seconds);
    json_num(&j, "train_loss", sum.train_loss);
    json_num(&j, "test_accuracy", sum.test_accuracy);
    json_num(&j, "test_loss", sum.test_loss);
    json_int(&j, "peak_bytes", (long long)sum.peak_bytes);
    json_int(&j, "rss_peak_bytes", (long long)sum.rss_peak_bytes);
    json_str(&j, "isa", mh_trainer_isa(t));
    json_str(&j, "cpu", mh_cpu_name());
    json_str(&j, "backend", cfg.backend ? cfg.backend : "cpu");
    cli_json_dsp(&j, &sum.dsp);
    if (sum.rescale.calls) {
      json_str(&j, "rescale", mh_trainer_rescale_mode(t));
      json_int(&j, "rescale_calls", sum.rescale.calls);
      json_int(&j, "rescale_max_passes", sum.rescale.max_passes);
      json_int(&j, "rescale_passes_avoided", sum.rescale.passes_avoided);
      json_int(&j, "rescale_fallbacks", sum.rescale.fallbacks);
      json_int(&j, "rescale_mispredicted", sum.rescale.mispredicted);
      json_num(&j, "rescale_bytes_avoided", sum.rescale.bytes_avoided);
      json_num(&j, "rescale_seconds", sum.rescale.seconds);
    }
    if (json_write(&j, json)) goto out;
  }
  rc = 0;
out:
  if (st) cli_fail("train");
  mh_trainer_free(t);
  mh_model_free(m);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  const char *model = NULL, *data = DEFAULT_DATA, *load = NULL, *json = NULL, *precision = "fp32", *backend = NULL,
             *isa = NULL, *init = NULL;
  int threads = 2, batch = 256;
  const cli_opt opts[] = {{"--model", OPT_STR, &model, "zoo name or model file (default: the checkpoint's own)"},
                          {"--load", OPT_STR, &load, "checkpoint to evaluate (or --init)"},
                          {"--init", OPT_STR, &init, "evaluate these weights: a checkpoint's or a PyTorch state_dict's (safetensors; with --model)"},
                          {"--data", OPT_STR, &data, "data directory (default " DEFAULT_DATA ")"},
                          {"--precision", OPT_STR, &precision, "fp32|int8|niti (default: the checkpoint's)"},
                          {"--batch", OPT_INT, &batch, "evaluation batch (default 256)"},
                          {"--backend", OPT_STR, &backend, "cpu|dsp|auto: int8/niti GEMMs on the CPU, all on the DSP, or as planned (default cpu)"},
                          {"--threads", OPT_INT, &threads, "threads (default 2)"},
                          {"--isa", OPT_STR, &isa, "CPU kernel table (default: the fastest here)"},
                          {"--json", OPT_STR, &json, "write a JSON summary"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("eval", "--load CKPT | --init WEIGHTS [--model NAME|FILE] [--data DIR]", opts, argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (!load == !init) {
    fprintf(stderr, "mandheling eval: give one of --load CKPT (a checkpoint) and --init WEIGHTS (weights only)\n");
    return 2;
  }
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.threads = threads;
  cfg.batch = batch;
  char ckpt_precision[16];
  int precision_given = 0;
  for (int i = 0; i < argc; i++) precision_given |= strncmp(argv[i], "--precision", 11) == 0;
  if (!precision_given && load) { /* evaluate in the checkpoint's own precision */
    if (mh_checkpoint_precision(load, ckpt_precision, sizeof ckpt_precision)) return cli_fail("eval");
    precision = ckpt_precision;
  }
  cfg.precision = precision;
  cfg.backend = backend;
  cfg.isa = isa;
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  int rc = 1;
  double acc = 0, loss = 0;
  int st = model ? mh_model_create(&m, model, 1) : mh_checkpoint_model(load ? load : init, 1, &m);
  if (!st && init) st = mh_model_load_weights(m, init);
  if (!st) st = mh_trainer_create(&t, m, &cfg);
  if (!st && load) st = mh_trainer_load(t, load);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  if (!st) st = mh_evaluate(t, data, &acc, &loss);
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (st) goto out;
  double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
  printf("test accuracy %.2f%%  loss %.4f  (%s, %.1f s)\n", 100 * acc, loss, data, secs);
  if (json) {
    json_out j;
    json_begin(&j);
    json_str(&j, "command", "eval");
    json_str(&j, "model", mh_model_name(m));
    json_str(&j, "precision", precision);
    json_int(&j, "steps", 0);
    json_int(&j, "epochs", 0);
    json_num(&j, "seconds", secs);
    json_num(&j, "train_loss", 0);
    json_num(&j, "test_accuracy", acc);
    json_num(&j, "test_loss", loss);
    json_int(&j, "peak_bytes", (long long)mh_trainer_peak_bytes(t));
    if (json_write(&j, json)) goto out;
  }
  rc = 0;
out:
  if (st) cli_fail("eval");
  mh_trainer_free(t);
  mh_model_free(m);
  return rc;
}
