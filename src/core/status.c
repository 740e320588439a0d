/* Status names, last-error storage and the log hook.
 * Nothing here writes to stdout/stderr: messages go to the caller's callback only. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_last_error[1024];
static mh_log_fn g_log_fn;
static void *g_log_user;

const char *mh_status_name(int status) {
  switch (status) {
    case MH_OK: return "ok";
    case MH_ERR_INVALID_ARG: return "invalid argument";
    case MH_ERR_NOMEM: return "out of memory";
    case MH_ERR_IO: return "i/o error";
    case MH_ERR_FORMAT: return "malformed input";
    case MH_ERR_SHAPE: return "shape mismatch";
    case MH_ERR_UNSUPPORTED: return "unsupported";
    case MH_ERR_BACKEND: return "backend failure";
    case MH_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
  }
}

const char *mh_last_error(void) { return g_last_error; }

void mh_clear_error(void) { g_last_error[0] = 0; }

int mh__error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  return status;
}

void mh_set_log(mh_log_fn fn, void *user) {
  g_log_fn = fn;
  g_log_user = user;
}

void mh__log(int level, const char *fmt, ...) {
  if (!g_log_fn) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  g_log_fn(g_log_user, level, msg);
}

int mh_version(void) { return MH_VERSION_MAJOR * 10000 + MH_VERSION_MINOR * 100 + MH_VERSION_PATCH; }
