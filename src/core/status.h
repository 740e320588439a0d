/* Status codes, the thread-local last-error message and the log callback.
 * Internal header: the library reports through these and never prints or exits itself. */
#ifndef MH_CORE_STATUS_H
#define MH_CORE_STATUS_H

#include "mandheling.h"

/* Records a formatted message as the calling thread's last error and returns `status`,
 * so error paths read `return mh__error(MH_ERR_FORMAT, "%s: bad magic %x", path, m);`. */
int mh__error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Sends a message to the installed log callback (dropped when none is installed). */
void mh__log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Evaluates `expr`; returns its status from the enclosing function when negative. */
#define MH_TRY(expr)            \
  do {                          \
    int mh__st_ = (expr);       \
    if (mh__st_ < 0) return mh__st_; \
  } while (0)

#endif
