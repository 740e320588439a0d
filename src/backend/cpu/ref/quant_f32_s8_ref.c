/* Reference float -> int8 quantiser with a power-of-two scale. |x * scale| <= 128 by construction
 * of the exponent, so float -> int truncation is exact and needs no libm. */
#include "backend/cpu/kernels.h"
#include "quant/qformat.h"

void mh__quant_f32_s8_ref(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key, uint32_t index0) {
  if (mode == MH_ROUND_STOCH) {
    for (long i = 0; i < n; i++) {
      float v = x[i] * scale;
      float u = (float)(mh_q_stoch_rand(key, index0 + (uint32_t)i) >> 8) * (1.0f / 16777216.0f);
      float a = v + u;
      int t = (int)a;    /* toward zero */
      t -= (float)t > a; /* floor(v + u) */
      q[i] = (int8_t)(t > MH_Q8_MAX ? MH_Q8_MAX : t < -MH_Q8_MAX ? -MH_Q8_MAX : t);
    }
    return;
  }
  for (long i = 0; i < n; i++) {
    float v = x[i] * scale;
    int t = (int)(v + (v >= 0.f ? 0.5f : -0.5f)); /* nearest, ties away from zero */
    q[i] = (int8_t)(t > MH_Q8_MAX ? MH_Q8_MAX : t < -MH_Q8_MAX ? -MH_Q8_MAX : t);
  }
}

/* max |x[i]|, NaN ignored (a NaN never compares greater). */
float mh__absmax_f32_ref(const float *x, long n) {
  float m = 0.f;
  for (long i = 0; i < n; i++) {
    float a = x[i] < 0.f ? -x[i] : x[i];
    m = a > m ? a : m;
  }
  return m;
}
