/* Names of the rounding modes; everything else of the integer semantics is inline in qformat.h
 * so kernels of every backend can use the same definitions. */
#include "quant/qformat.h"

const char *mh_round_mode_name(mh_round_mode m) {
  switch (m) {
    case MH_ROUND_NEAREST: return "nearest";
    case MH_ROUND_PSTO: return "psto";
    case MH_ROUND_STOCH: return "stochastic";
  }
  return "?";
}
