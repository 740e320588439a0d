/* Float <-> int8 with a per-tensor power-of-two exponent (value = q * 2^exp), for the mixed-precision
 * algorithm: the exponent is the smallest that fits max|x| in [-127, 127]. */
#ifndef MH_QUANT_QUANTIZE_H
#define MH_QUANT_QUANTIZE_H

#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "quant/qformat.h"

/* The smallest e with maxabs <= 127 * 2^e (0 for an all-zero tensor). */
int mh_q_exp_for_max(float maxabs);

/* q[i] = sat8(round(x[i] * 2^-e)), e from max|x|; returns e. Nearest rounds ties away from zero;
 * stochastic adds a uniform [0, 1) from mh_q_stoch_rand(key, i) and floors. Runs on the pool. */
int mh_quantize_f32_s8(const mh_cpu_kernels *kt, mh_pool *pool, const float *x, long n, int8_t *q, mh_round_mode mode,
                       uint32_t key);

/* The same with max|x| known (>= 0; NaN ignored, as the max pass does): no max pass. */
int mh_quantize_f32_s8_max(const mh_cpu_kernels *kt, mh_pool *pool, const float *x, long n, int8_t *q,
                           mh_round_mode mode, uint32_t key, float maxabs);

/* y[i] = x[i] * 2^e (+ accumulate into y when accumulate). */
void mh_dequantize_s32_f32(mh_pool *pool, const int32_t *x, long n, int e, float *y, int accumulate);

#endif
