/* Element-type sizes and names (safetensors spelling).
 * No conversion routines live here; see src/quant for integer formats. */
#include "mandheling.h"

size_t mh_dtype_size(mh_dtype dt) {
  switch (dt) {
    case MH_DTYPE_F32: return 4;
    case MH_DTYPE_S8: return 1;
    case MH_DTYPE_S16: return 2;
    case MH_DTYPE_S32: return 4;
    case MH_DTYPE_U8: return 1;
    case MH_DTYPE_S64: return 8;
    case MH_DTYPE_F64: return 8;
  }
  return 0;
}

const char *mh_dtype_name(mh_dtype dt) {
  switch (dt) {
    case MH_DTYPE_F32: return "F32";
    case MH_DTYPE_S8: return "I8";
    case MH_DTYPE_S16: return "I16";
    case MH_DTYPE_S32: return "I32";
    case MH_DTYPE_U8: return "U8";
    case MH_DTYPE_S64: return "I64";
    case MH_DTYPE_F64: return "F64";
  }
  return "?";
}
