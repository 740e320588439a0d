/* Shared pieces of the `mandheling` command: option tables, the JSON summary writer, progress
 * display and the log sink. The subcommands live in one file each. */
#ifndef MH_TOOLS_CLI_H
#define MH_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "mandheling.h"

typedef enum { OPT_INT, OPT_LONG, OPT_FLOAT, OPT_DOUBLE, OPT_U64, OPT_STR, OPT_FLAG } opt_type;

typedef struct cli_opt {
  const char *name; /* "--epochs" */
  opt_type type;
  void *dst;
  const char *help;
} cli_opt;

/* Parses argv against opts; prints a clear message naming the flag on error and returns 2.
 * Returns 1 when --help was printed, 0 on success. */
int cli_parse(const char *cmd, const char *usage, const cli_opt *opts, int argc, char **argv);

/* A flat JSON object of any length (a memory stream), written atomically (temp + rename). */
typedef struct json_out {
  FILE *f;
  char *buf;
  size_t len;
  int fields;
} json_out;
void json_begin(json_out *j);
void json_str(json_out *j, const char *key, const char *v);
void json_num(json_out *j, const char *key, double v);
void json_int(json_out *j, const char *key, long long v);
int json_write(json_out *j, const char *path); /* 0 ok; prints the error and returns 1; frees j */

/* A file written atomically: opened as a temporary next to `path` (its malloc'ed name into *tmp),
 * renamed over path by cli_atomic_close when everything was written; on failure, or by
 * cli_atomic_abort, the temporary is removed and path is untouched. Both free *tmp.
 * cli_atomic_open returns NULL (errno set, *tmp NULL) when it cannot create the file. */
FILE *cli_atomic_open(const char *path, char **tmp);
int cli_atomic_close(FILE *f, char *tmp, const char *path); /* 0 ok, -1 failed (errno) */
void cli_atomic_abort(FILE *f, char *tmp);

/* Progress: a bar with rate and ETA on a terminal, plain lines otherwise. */
void cli_progress(void *user, const mh_progress *p);
/* Log sink that prints library messages to stderr ("mandheling: ..."). */
void cli_log(void *user, int level, const char *msg);
/* Prints "mandheling CMD: <last error>" and returns 1. */
int cli_fail(const char *cmd);
/* The DSP's share as lines starting with `label` (traffic, batch splitting, rescaling, subgraphs),
 * and the same as JSON fields prefixed "dsp_". */
void cli_print_dsp(const char *label, const mh_dsp_report *r);
void cli_json_dsp(json_out *j, const mh_dsp_report *r);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
