/* NITI's integer softmax-cross-entropy gradient: base-2 exponentials of the int8 logits in an
 * 11-level window (or a second-order Taylor form for tiny logits), a Q11 softmax, the target
 * subtracted, and the result shifted by 4 (pseudo-stochastic rounding) to int8 with exponent 0. */
#include "ops/ops.h"

/* Exponent range the integer arithmetic below stays exact in (int64). */
#define E_HI 40
#define E_LO (-24) /* 2^(1-2e) * 2^11 stays below 2^63 */

void mh_softmax_xent_grad_int(const int8_t *o, int e, const int32_t *labels, int n, int classes, int64_t *work,
                              int8_t *g) {
  if (e > E_HI) e = E_HI;
  if (e < E_LO) e = E_LO;
  for (int r = 0; r < n; r++) {
    const int8_t *z = o + (size_t)r * classes;
    int64_t *p = work, sum = 0;
    if (e > -7) { /* s = o * log2(e) in Q0 (47274 / 2^15 ~ 1.4427), scaled by 2^e */
      int64_t mx = INT64_MIN;
      for (int k = 0; k < classes; k++) {
        int64_t s = (int64_t)z[k] * 47274 / 32768;
        s = e >= 0 ? s * ((int64_t)1 << e) : s / ((int64_t)1 << -e);
        p[k] = s;
        if (s > mx) mx = s;
      }
      for (int k = 0; k < classes; k++) {
        int64_t s = p[k] - (mx - 10);
        p[k] = ((int64_t)1 << (s > 0 ? s : 0)) - 1;
      }
    } else { /* 1 + x + x^2/2 at x = o * 2^e, scaled by 2^(1 - 2e) */
      for (int k = 0; k < classes; k++)
        p[k] = ((int64_t)1 << (1 - 2 * e)) + (int64_t)z[k] * ((int64_t)1 << (1 - e)) + (int64_t)z[k] * z[k];
    }
    for (int k = 0; k < classes; k++) sum += p[k];
    int64_t gs = 0;
    for (int k = 0; k < classes; k++) gs += (p[k] = p[k] * 2048 / sum);
    p[labels[r]] -= gs;
    for (int k = 0; k < classes; k++) g[(size_t)r * classes + k] = (int8_t)mh_q_sat8(mh_q_round_psto((int32_t)p[k], 4));
  }
}
