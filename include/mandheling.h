/* Mandheling public C API: statuses, logging, models, training, evaluation, checkpoints.
 * Every call returns a status (0 ok, negative error); the library never prints or exits. */
#ifndef MANDHELING_H
#define MANDHELING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MH_VERSION_STRING "0.1.0"

/* ---- status and errors ---------------------------------------------------------------- */
typedef enum mh_status {
  MH_OK = 0,
  MH_ERR_INVALID_ARG = -1, /* a caller's argument or option is out of range */
  MH_ERR_NOMEM = -2,       /* an allocation failed */
  MH_ERR_IO = -3,          /* open/read/write/rename failed */
  MH_ERR_FORMAT = -4,      /* a file's content is malformed (magic, sizes, syntax) */
  MH_ERR_SHAPE = -5,       /* tensor shapes do not fit together */
  MH_ERR_UNSUPPORTED = -6, /* valid request this build or algorithm cannot do */
  MH_ERR_BACKEND = -7,     /* a compute backend failed (e.g. the DSP went away) */
  MH_ERR_INTERNAL = -8     /* a bug: an invariant did not hold */
} mh_status;

const char *mh_status_name(int status);
/* The message of the calling thread's most recent error, naming the file/flag and the problem. */
const char *mh_last_error(void);
void mh_clear_error(void);

/* ---- logging and progress -------------------------------------------------------------- */
typedef enum mh_log_level { MH_LOG_ERROR = 0, MH_LOG_WARN = 1, MH_LOG_INFO = 2, MH_LOG_DEBUG = 3 } mh_log_level;
typedef void (*mh_log_fn)(void *user, int level, const char *msg);
/* Installs the process-wide log sink; NULL silences the library (the default). */
void mh_set_log(mh_log_fn fn, void *user);

/* ---- element types --------------------------------------------------------------------- */
typedef enum mh_dtype {
  MH_DTYPE_F32 = 0,
  MH_DTYPE_S8 = 1,
  MH_DTYPE_S16 = 2,
  MH_DTYPE_S32 = 3,
  MH_DTYPE_U8 = 4,
  MH_DTYPE_S64 = 5,
  MH_DTYPE_F64 = 6
} mh_dtype;
size_t mh_dtype_size(mh_dtype dt);
const char *mh_dtype_name(mh_dtype dt); /* safetensors spelling: F32, I8, I16, I32, U8, I64, F64 */

#ifdef __cplusplus
}
#endif
#endif
