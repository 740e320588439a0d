/* Option parsing, JSON summaries, the progress display and the log sink of the `mandheling`
 * command. All printing of the project happens here and in the subcommands, never in the library. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *cmd) {
  fprintf(stderr, "mandheling %s: %s\n", cmd, mh_last_error());
  return 1;
}

void cli_print_dsp(const char *label, const mh_dsp_report *r) {
  printf("%s %ld int8 GEMMs (%.3f GMAC) in %ld messages, %.2f MiB to and %.2f MiB from the DSP, %ld on the CPU instead%s\n",
         label, r->gemms, r->macs * 1e-9, r->messages, r->bytes_to_dsp / 1048576.0, r->bytes_from_dsp / 1048576.0,
         r->cpu_fallbacks, r->active ? "" : " (the DSP is gone)");
  printf("%s subgraphs (%s): %ld runs (%ld with CPU work beside them), %ld preparations (%ld nodes checked), %.2f MiB "
         "of weights copied, %.2f MiB packed\n", label, r->reuse ? "reused" : "--no-reuse: rebuilt every run", r->sg_runs,
         r->cosched_runs, r->sg_prepares, r->sg_nodes_checked, r->weight_bytes / 1048576.0, r->packed_bytes / 1048576.0);
  printf("%s batch splitting: %ld region parts, %ld VTCM chunks; rescaling on the DSP: %ld fused GEMMs kept %.2f MiB "
         "of int32 there; %ld ReLU/max-pool/add passes on the DSP\n", label, r->split_parts, r->vtcm_chunks, r->fused_gemms,
         r->int32_bytes_kept / 1048576.0, r->eltwise_ops);
  if (r->seg_runs || r->seg_prepares)
    printf("%s segments (chains of layers, one message per pass): %ld runs, %ld preparations\n", label, r->seg_runs,
           r->seg_prepares);
}

void cli_json_dsp(json_out *j, const mh_dsp_report *r) {
  for (int i = 0; i < r->n_stats; i++) { /* every counter the backend has, by name */
    char key[96];
    snprintf(key, sizeof key, "dsp_%s", r->stats[i].name);
    json_num(j, key, r->stats[i].value);
  }
}

static void print_help(const char *cmd, const char *usage, const cli_opt *opts) {
  printf("usage: mandheling %s %s\n\noptions:\n", cmd, usage);
  for (const cli_opt *o = opts; o->name; o++) {
    const char *arg = o->type == OPT_FLAG                              ? ""
                      : o->type == OPT_STR                             ? " S"
                      : o->type == OPT_FLOAT || o->type == OPT_DOUBLE ? " X"
                                                                       : " N";
    char left[48];
    snprintf(left, sizeof left, "%s%s", o->name, arg);
    printf("  %-22s %s\n", left, o->help);
  }
  printf("  %-22s %s\n", "--help", "show this help");
}

int cli_parse(const char *cmd, const char *usage, const cli_opt *opts, int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_help(cmd, usage, opts);
      return 1;
    }
    const cli_opt *o = opts;
    const char *val = NULL;
    size_t alen = strlen(a);
    const char *eq = strchr(a, '=');
    if (eq) alen = (size_t)(eq - a);
    for (; o->name; o++)
      if (strlen(o->name) == alen && strncmp(o->name, a, alen) == 0) break;
    if (!o->name) {
      fprintf(stderr, "mandheling %s: unknown option '%s' (see mandheling %s --help)\n", cmd, a, cmd);
      return 2;
    }
    if (o->type == OPT_FLAG) {
      if (eq) {
        fprintf(stderr, "mandheling %s: %s takes no value\n", cmd, o->name);
        return 2;
      }
      *(int *)o->dst = 1;
      continue;
    }
    if (eq) val = eq + 1;
    else if (i + 1 < argc) val = argv[++i];
    else {
      fprintf(stderr, "mandheling %s: %s needs a value\n", cmd, o->name);
      return 2;
    }
    char *end = NULL;
    errno = 0;
    switch (o->type) {
      case OPT_INT:
      case OPT_LONG: {
        long v = strtol(val, &end, 10);
        if (!*val || *end || errno || (o->type == OPT_INT && (v < -2147483647L || v > 2147483647L))) {
          fprintf(stderr, "mandheling %s: %s: '%s' is not an integer\n", cmd, o->name, val);
          return 2;
        }
        if (o->type == OPT_INT) *(int *)o->dst = (int)v;
        else *(long *)o->dst = v;
        break;
      }
      case OPT_U64: {
        unsigned long long v = strtoull(val, &end, 10);
        if (!*val || *end || errno || val[0] == '-') {
          fprintf(stderr, "mandheling %s: %s: '%s' is not a non-negative integer\n", cmd, o->name, val);
          return 2;
        }
        *(uint64_t *)o->dst = v;
        break;
      }
      case OPT_FLOAT:
      case OPT_DOUBLE: {
        double v = strtod(val, &end);
        if (!*val || *end || errno || !isfinite(v)) {
          fprintf(stderr, "mandheling %s: %s: '%s' is not a number\n", cmd, o->name, val);
          return 2;
        }
        if (o->type == OPT_DOUBLE) *(double *)o->dst = v;
        else *(float *)o->dst = (float)v;
        break;
      }
      case OPT_STR: *(const char **)o->dst = val; break;
      case OPT_FLAG: break;
    }
  }
  return 0;
}

void json_begin(json_out *j) {
  j->buf = NULL, j->len = 0, j->fields = 0;
  j->f = open_memstream(&j->buf, &j->len);
  if (j->f) fputc('{', j->f);
}

static void json_key(json_out *j, const char *key) {
  if (j->f) fprintf(j->f, "%s\"%s\": ", j->fields++ ? ", " : "", key);
}

void json_str(json_out *j, const char *key, const char *v) {
  json_key(j, key);
  if (!j->f) return;
  fputc('"', j->f);
  for (const char *c = v; *c; c++) {
    if (*c == '"' || *c == '\\') fputc('\\', j->f), fputc(*c, j->f);
    else if ((unsigned char)*c < 0x20) fprintf(j->f, "\\u%04x", *c);
    else fputc(*c, j->f);
  }
  fputc('"', j->f);
}

void json_num(json_out *j, const char *key, double v) {
  json_key(j, key);
  if (!j->f) return;
  if (isfinite(v)) fprintf(j->f, "%.6g", v);
  else fputs("null", j->f);
}

void json_int(json_out *j, const char *key, long long v) {
  json_key(j, key);
  if (j->f) fprintf(j->f, "%lld", v);
}

FILE *cli_atomic_open(const char *path, char **tmp) {
  size_t n = strlen(path) + 32;
  if (!(*tmp = malloc(n))) return NULL;
  snprintf(*tmp, n, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(*tmp, "w");
  if (!f) {
    int e = errno;
    free(*tmp), *tmp = NULL;
    errno = e;
  }
  return f;
}

int cli_atomic_close(FILE *f, char *tmp, const char *path) {
  int ok = !ferror(f);
  ok = fflush(f) == 0 && ok;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    free(tmp);
    errno = e;
    return -1;
  }
  free(tmp);
  return 0;
}

void cli_atomic_abort(FILE *f, char *tmp) {
  if (f) fclose(f);
  if (tmp) remove(tmp);
  free(tmp);
}

int json_write(json_out *j, const char *path) {
  if (!j->f || (fputs("}\n", j->f), fclose(j->f)) != 0) {
    free(j->buf);
    fprintf(stderr, "mandheling: --json %s: out of memory\n", path);
    return 1;
  }
  char *tmp = NULL;
  FILE *f = cli_atomic_open(path, &tmp);
  if (!f) {
    free(j->buf);
    fprintf(stderr, "mandheling: --json %s: cannot write: %s\n", path, strerror(errno));
    return 1;
  }
  fwrite(j->buf, 1, j->len, f);
  free(j->buf);
  if (cli_atomic_close(f, tmp, path)) {
    fprintf(stderr, "mandheling: --json %s: write failed: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

static void fmt_time(char *out, size_t n, double s) {
  if (s < 0 || !isfinite(s)) snprintf(out, n, "--:--");
  else if (s >= 3600) snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
  else snprintf(out, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

void cli_progress(void *user, const mh_progress *p) {
  static int tty = -1;
  static double last_line;
  if (tty < 0) tty = isatty(2);
  double eta = p->step > 0 ? p->seconds / p->step * (p->total_steps - p->step) : -1;
  char e[16], el[16];
  fmt_time(e, sizeof e, eta);
  fmt_time(el, sizeof el, p->seconds);
  if (p->epoch_done) {
    if (tty) fputc('\n', stderr);
    if (p->test_accuracy >= 0)
      fprintf(stderr, "epoch %d/%d  loss %.4f  test accuracy %.2f%%  (%s elapsed, %.0f samples/s)\n", p->epoch + 1,
              p->epochs, p->loss, 100 * p->test_accuracy, el, p->samples_per_second);
    else
      fprintf(stderr, "epoch %d/%d  loss %.4f  (%s elapsed)\n", p->epoch + 1, p->epochs, p->loss, el);
    last_line = p->seconds;
    return;
  }
  char rate[32]; /* the learning rate, or niti's gradient bit width */
  if (p->mu) snprintf(rate, sizeof rate, "mu %d", p->mu);
  else snprintf(rate, sizeof rate, "lr %.4g", p->lr);
  if (tty) {
    /* redraw at most ~10 times a second */
    static double last_draw = -1;
    if (p->seconds - last_draw < 0.1 && p->step_in_epoch != p->steps_per_epoch) return;
    last_draw = p->seconds;
    int width = 28, fill = p->steps_per_epoch ? (int)(width * p->step_in_epoch / p->steps_per_epoch) : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld  loss %.4f  %s  %.0f samples/s  ETA %s ", p->epoch + 1,
            p->epochs, bar, p->step_in_epoch, p->steps_per_epoch, p->loss, rate, p->samples_per_second, e);
    fflush(stderr);
  } else if (p->seconds - last_line >= 10 || p->step == 1) {
    fprintf(stderr, "epoch %d/%d  step %ld/%ld  loss %.4f  %s  %.0f samples/s  ETA %s\n", p->epoch + 1, p->epochs,
            p->step_in_epoch, p->steps_per_epoch, p->loss, rate, p->samples_per_second, e);
    last_line = p->seconds;
  }
  (void)user;
}

void cli_log(void *user, int level, const char *msg) {
  (void)user;
  if (level <= MH_LOG_INFO) fprintf(stderr, "%s%s\n", level == MH_LOG_ERROR ? "error: " : level == MH_LOG_WARN ? "warning: " : "", msg);
}
