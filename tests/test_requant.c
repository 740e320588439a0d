/* The requantise epilogue on every kernel table against the scalar definition, with ==: every
 * shift 0..31, every rounding mode, random and edge inputs (0, +-1, powers of two, INT32_MIN/MAX),
 * lengths that are not multiples of the vector width, and the max/saturation statistics. Also the
 * float -> int8 quantiser: AVX2 == portable on ties, the +-127.5 edges, -0.0 and random values, and
 * mh_quantize_f32_s8's exponent is the smallest that fits. */
#include <limits.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/rng.h"
#include "quant/qformat.h"
#include "quant/quantize.h"
#include "testlib.h"
#include "tl_tables.h"

int main(void) {
  const mh_cpu_kernels *tables[8];
  int n_tables = tl_kernel_tables(tables, 8);
  mh_rng r = mh_rng_make(9);
  enum { N = 1000 };
  int32_t x[N];
  int8_t want[N], got[N];
  for (int trial = 0; trial < 40; trial++) {
    for (int i = 0; i < N; i++) {
      int kind = (int)mh_rng_below(&r, 6);
      int32_t v = (int32_t)(uint32_t)mh_rng_next(&r);
      if (kind == 1) v >>= mh_rng_below(&r, 31);
      if (kind == 2) v = (mh_rng_below(&r, 2) ? 1 : -1) * (int32_t)(1u << mh_rng_below(&r, 31));
      if (kind == 3) v = (int32_t)mh_rng_below(&r, 3) - 1;
      if (kind == 4) v = mh_rng_below(&r, 2) ? INT32_MIN : INT32_MAX;
      x[i] = v;
    }
    for (int s = 0; s <= MH_Q_MAX_SHIFT; s++)
      for (int mode = 0; mode < 3; mode++) {
        long n = N - (long)mh_rng_below(&r, 40);
        uint32_t key = (uint32_t)mh_rng_next(&r), index0 = (uint32_t)mh_rng_below(&r, 1u << 30);
        uint32_t mx = 0;
        long sat = 0;
        for (long i = 0; i < n; i++) { /* the definition, element by element */
          uint32_t a = mh_q_abs32(x[i]);
          mx = a > mx ? a : mx;
          int32_t q = mh_q_round(x[i], s, (mh_round_mode)mode, key, index0 + (uint32_t)i);
          sat += q > 127 || q < -127;
          want[i] = (int8_t)mh_q_sat8(q);
        }
        for (int t = 0; t < n_tables; t++) {
          mh_requant_stats st = {0, 0};
          memset(got, 0x55, sizeof got);
          tables[t]->requant_s8(x, got, n, s, mode, key, index0, &st);
          int ok = memcmp(got, want, (size_t)n) == 0 && st.max_abs == mx && st.saturated == sat;
          if (!ok)
            TL_FAIL("%s shift %d mode %s n %ld: outputs %s, max %u vs %u, saturated %ld vs %ld", tables[t]->isa, s,
                    mh_round_mode_name((mh_round_mode)mode), n, memcmp(got, want, (size_t)n) ? "differ" : "equal",
                    st.max_abs, mx, st.saturated, sat);
          tl_checks++;
        }
      }
  }
  /* float -> int8 */
  {
    enum { M = 1003 };
    float fx[M];
    int8_t q0[M], q1[M];
    for (int trial = 0; trial < 50; trial++) {
      for (int i = 0; i < M; i++) {
        int kind = (int)mh_rng_below(&r, 5);
        float v = (mh_rng_uniform(&r) * 2 - 1) * 127.f;
        if (kind == 1) v = (float)((int)mh_rng_below(&r, 255) - 127) + 0.5f; /* exact ties */
        if (kind == 2) v = mh_rng_below(&r, 2) ? 127.5f : -127.5f;
        if (kind == 3) v = mh_rng_below(&r, 2) ? -0.0f : 0.0f;
        fx[i] = v;
      }
      for (int mode = 0; mode <= MH_ROUND_STOCH; mode += MH_ROUND_STOCH) {
        uint32_t key = (uint32_t)mh_rng_next(&r);
        tables[0]->quant_f32_s8(fx, q0, M, 1.0f, mode, key, 7);
        for (int t = 1; t < n_tables; t++) {
          tables[t]->quant_f32_s8(fx, q1, M, 1.0f, mode, key, 7);
          if (memcmp(q0, q1, M))
            TL_FAIL("quant_f32_s8 %s: %s differs from portable", mode ? "stochastic" : "nearest", tables[t]->isa);
          tl_checks++;
        }
      }
    }
    float t[6] = {0.5f, -0.5f, 1.5f, -1.5f, 126.5f, -127.4f};
    int8_t tq[6];
    tables[n_tables - 1]->quant_f32_s8(t, tq, 6, 1.0f, MH_ROUND_NEAREST, 0, 0);
    CHECK(tq[0] == 1 && tq[1] == -1 && tq[2] == 2 && tq[3] == -2 && tq[4] == 127 && tq[5] == -127);
    /* the exponent: smallest e with max <= 127 * 2^e */
    CHECK_EQ_INT(mh_q_exp_for_max(127.f), 0);
    CHECK_EQ_INT(mh_q_exp_for_max(127.5f), 1);
    CHECK_EQ_INT(mh_q_exp_for_max(63.5f), -1);
    CHECK_EQ_INT(mh_q_exp_for_max(63.6f), 0);
    CHECK_EQ_INT(mh_q_exp_for_max(0.f), 0);
    float big[3] = {-3.0f, 1.0f, 2.0f};
    int8_t bq[3];
    int e = mh_quantize_f32_s8(tables[n_tables - 1], NULL, big, 3, bq, MH_ROUND_NEAREST, 0);
    CHECK_EQ_INT(e, -5); /* 3 <= 127 * 2^-5 = 3.97, not <= 1.98 */
    CHECK(bq[0] == -96 && bq[1] == 32 && bq[2] == 64);
  }
  return tl_exit();
}
