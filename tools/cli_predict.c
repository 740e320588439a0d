/* `mandheling predict`: class predictions of a checkpoint (or of weights with --init) for a data
 * directory's test split or an IDX images file, as CSV with the top K classes and their probabilities. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Softmax probabilities of one row of logits, in double. */
static void softmax(const float *z, int classes, double *p) {
  double mx = z[0], s = 0;
  for (int k = 1; k < classes; k++) mx = z[k] > mx ? z[k] : mx;
  for (int k = 0; k < classes; k++) s += p[k] = exp((double)z[k] - mx);
  for (int k = 0; k < classes; k++) p[k] /= s;
}

/* Writes the CSV: index, label (when known), then top-K class and probability pairs, or (raw) every
 * logit. */
static int write_csv(FILE *f, const float *z, const int32_t *y, int n, int classes, int top, int raw) {
  double *p = malloc(sizeof(double) * (size_t)classes);
  int *used = malloc(sizeof(int) * (size_t)classes);
  if (!p || !used) {
    free(p), free(used);
    return -1;
  }
  fprintf(f, "index%s", y ? ",label" : "");
  for (int k = 1; k <= (raw ? 0 : top); k++) fprintf(f, ",class%d,prob%d", k, k);
  for (int k = 0; k < (raw ? classes : 0); k++) fprintf(f, ",logit%d", k);
  fputc('\n', f);
  for (int i = 0; i < n && raw; i++) {
    fprintf(f, "%d", i);
    if (y) fprintf(f, ",%d", y[i]);
    for (int k = 0; k < classes; k++) fprintf(f, ",%.9g", z[(size_t)i * classes + k]);
    fputc('\n', f);
  }
  for (int i = 0; i < n && !raw; i++) {
    softmax(z + (size_t)i * classes, classes, p);
    fprintf(f, "%d", i);
    if (y) fprintf(f, ",%d", y[i]);
    memset(used, 0, sizeof(int) * (size_t)classes);
    for (int r = 0; r < top; r++) { /* the r-th largest; ties: the lower class first, as argmax */
      int best = -1;
      for (int k = 0; k < classes; k++)
        if (!used[k] && (best < 0 || z[(size_t)i * classes + k] > z[(size_t)i * classes + best])) best = k;
      used[best] = 1;
      fprintf(f, ",%d,%.6f", best, p[best]);
    }
    fputc('\n', f);
  }
  free(p), free(used);
  return ferror(f) ? -1 : 0;
}

int cmd_predict(int argc, char **argv) {
  const char *model = NULL, *data = NULL, *load = NULL, *init = NULL, *out = NULL, *precision = NULL, *backend = NULL,
             *isa = NULL;
  int threads = 2, batch = 256, top = 1, raw = 0;
  const cli_opt opts[] = {{"--load", OPT_STR, &load, "checkpoint whose model and weights predict (or --init)"},
                          {"--init", OPT_STR, &init, "weights only (a checkpoint's or a PyTorch state_dict's), with --model"},
                          {"--model", OPT_STR, &model, "zoo name or model file (default: the checkpoint's own)"},
                          {"--data", OPT_STR, &data, "a data directory (its test split) or an IDX images file (required)"},
                          {"--top", OPT_INT, &top, "classes per sample, most probable first (default 1)"},
                          {"--out", OPT_STR, &out, "write the CSV here (default: standard output)"},
                          {"--logits", OPT_FLAG, &raw, "every class's logit instead of the top classes' probabilities"},
                          {"--precision", OPT_STR, &precision, "fp32|int8|niti (default: the checkpoint's)"},
                          {"--batch", OPT_INT, &batch, "samples per forward (default 256)"},
                          {"--backend", OPT_STR, &backend, "cpu|dsp|auto (default cpu)"},
                          {"--threads", OPT_INT, &threads, "threads (default 2)"},
                          {"--isa", OPT_STR, &isa, "CPU kernel table (default: the fastest here)"},
                          {NULL, 0, NULL, NULL}};
  int r = cli_parse("predict", "--load CKPT | --init WEIGHTS --model M, --data DIR|FILE [--top K] [--out FILE.csv]", opts,
                    argc, argv);
  if (r) return r == 1 ? 0 : r;
  if (!load == !init || !data) {
    fprintf(stderr, "mandheling predict: give --data and one of --load CKPT and --init WEIGHTS\n");
    return 2;
  }
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.threads = threads, cfg.batch = batch, cfg.backend = backend, cfg.isa = isa;
  char ckpt_precision[16];
  if (!precision && load) {
    if (mh_checkpoint_precision(load, ckpt_precision, sizeof ckpt_precision)) return cli_fail("predict");
    precision = ckpt_precision;
  }
  cfg.precision = precision ? precision : "fp32";
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  float *z = NULL;
  int32_t *y = NULL;
  int n = 0, rc = 1;
  int st = model ? mh_model_create(&m, model, 1) : mh_checkpoint_model(load ? load : init, 1, &m);
  if (!st && init) st = mh_model_load_weights(m, init);
  if (!st) st = mh_trainer_create(&t, m, &cfg);
  if (!st && load) st = mh_trainer_load(t, load);
  if (!st) {
    int classes = 0;
    if (top < 1 || top > (classes = mh_model_classes(m))) {
      fprintf(stderr, "mandheling predict: --top %d out of range [1, %d] (the model's classes)\n", top, classes);
      rc = 2;
      goto done;
    }
    st = mh_predict_data(t, data, &z, &y, &n);
  }
  if (st) {
    cli_fail("predict");
    goto done;
  }
  int classes = mh_model_classes(m);
  char *tmp = NULL;
  FILE *f = out ? cli_atomic_open(out, &tmp) : stdout;
  int bad = !f || write_csv(f, z, y, n, classes, top, raw);
  if (out && f && (bad ? (cli_atomic_abort(f, tmp), 1) : cli_atomic_close(f, tmp, out) != 0)) bad = 1;
  if (bad) {
    fprintf(stderr, "mandheling predict: cannot write %s: %s\n", out ? out : "standard output", strerror(errno));
    goto done;
  }
  long correct = 0;
  for (int i = 0; y && i < n; i++) {
    int best = 0;
    for (int k = 1; k < classes; k++)
      if (z[(size_t)i * classes + k] > z[(size_t)i * classes + best]) best = k;
    correct += best == y[i];
  }
  FILE *note = out ? stdout : stderr;
  fprintf(note, "%d predictions of %s%s%s", n, data, out ? " written to " : "", out ? out : "");
  if (y) fprintf(note, "; top-1 accuracy %.2f%% against the labels", 100.0 * correct / (n ? n : 1));
  fputc('\n', note);
  rc = 0;
done:
  free(z), free(y);
  mh_trainer_free(t);
  mh_model_free(m);
  return rc;
}
