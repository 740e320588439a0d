/* Reference requantise epilogue: the scalar definition from quant/qformat.h applied element by
 * element, with the range and saturation statistics gathered in the same pass. */
#include "backend/cpu/kernels.h"
#include "quant/qformat.h"

void mh__requant_s8_ref(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key, uint32_t index0,
                        mh_requant_stats *st) {
  uint32_t mx = 0;
  long sat = 0;
  for (long i = 0; i < n; i++) {
    uint32_t a = mh_q_abs32(x[i]);
    if (a > mx) mx = a;
    int32_t q = mh_q_round(x[i], shift, (mh_round_mode)mode, key, index0 + (uint32_t)i);
    sat += q > MH_Q8_MAX || q < -MH_Q8_MAX;
    y[i] = (int8_t)mh_q_sat8(q);
  }
  st->max_abs = mx;
  st->saturated = sat;
}
