/* The integer semantics against an independent, literal transcription of ALGORITHMS.md in 64-bit
 * arithmetic: every shift 0..31, every int32 input class (0, +-1, powers of two and their
 * neighbours, the int8 edges, INT32_MIN/MAX, random), saturation edges, and stochastic rounding's
 * reproducibility and unbiasedness. */
#include <limits.h>

#include "core/rng.h"
#include "quant/qformat.h"
#include "testlib.h"

/* ---- the specification, written as the text says (C '/' truncates toward zero) ---- */
static int64_t spec_sign(int64_t x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }

static int64_t spec_nearest(int64_t x, int s) {
  if (s == 0) return x;
  int64_t p = (int64_t)1 << s, q = x / p, r = x - q * p;
  if (r < 0) r = -r;
  if (r >= p / 2) q += spec_sign(x);
  return q;
}

static int64_t spec_psto(int64_t x, int s) {
  if (s == 0) return x;
  int64_t p = (int64_t)1 << s, q = x / p, r = x - q * p;
  if (r < 0) r = -r;
  int64_t half = (int64_t)1 << (s / 2);
  int64_t hi = r / half, lo = r - hi * half;
  if (s % 2 == 1) lo *= 2;
  if (hi > lo) q += spec_sign(x);
  return q;
}

static int64_t spec_stoch(int64_t x, int s, uint32_t rnd) {
  if (s == 0) return x;
  int64_t p = (int64_t)1 << s, q = x / p, r = x - q * p;
  if (r < 0) r = -r;
  if (r > (int64_t)(rnd % (uint64_t)p)) q += spec_sign(x);
  return q;
}

static int spec_bitlen(uint64_t v) {
  int b = 0;
  while (v) b++, v >>= 1;
  return b;
}

static int n_inputs;
static int32_t inputs[4096];

static void add_input(int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX && n_inputs < 4096) inputs[n_inputs++] = (int32_t)v;
}

int main(void) {
  /* every input class */
  for (int64_t v = -300; v <= 300; v++) add_input(v);
  for (int b = 0; b <= 31; b++)
    for (int d = -1; d <= 1; d++) {
      int64_t p = ((int64_t)1 << b) + d;
      add_input(p), add_input(-p);
      add_input(p + ((int64_t)1 << (b > 1 ? b - 1 : 0))), add_input(-p - ((int64_t)1 << (b > 1 ? b - 1 : 0)));
    }
  add_input(INT32_MAX), add_input(INT32_MIN), add_input(INT32_MIN + 1), add_input(-INT32_MAX);
  mh_rng r = mh_rng_make(11);
  while (n_inputs < 4096) add_input((int32_t)(uint32_t)mh_rng_next(&r) >> mh_rng_below(&r, 31));

  int bad = 0;
  for (int s = 0; s <= MH_Q_MAX_SHIFT; s++)
    for (int i = 0; i < n_inputs; i++) {
      int32_t x = inputs[i];
      uint32_t key = 0x1234567u + (uint32_t)s;
      int64_t e_near = spec_nearest(x, s), e_psto = spec_psto(x, s);
      int64_t e_sto = spec_stoch(x, s, mh_q_stoch_rand(key, (uint32_t)i));
      int64_t g_near = mh_q_round_nearest(x, s), g_psto = mh_q_round_psto(x, s),
              g_sto = mh_q_round_stoch(x, s, key, (uint32_t)i);
      if ((g_near != e_near || g_psto != e_psto || g_sto != e_sto) && bad++ < 10)
        TL_FAIL("x=%d s=%d: nearest %lld/%lld psto %lld/%lld stoch %lld/%lld (got/spec)", x, s, (long long)g_near,
                (long long)e_near, (long long)g_psto, (long long)e_psto, (long long)g_sto, (long long)e_sto);
      /* requantise = round then saturate */
      int64_t sat = e_psto > 127 ? 127 : e_psto < -127 ? -127 : e_psto;
      if (mh_q_requant8(x, s, MH_ROUND_PSTO, 0, 0) != sat && bad++ < 10) TL_FAIL("requant8 x=%d s=%d", x, s);
      if (mh_q_trunc_shift(x, s) != (int64_t)x / ((int64_t)1 << s) && bad++ < 10) TL_FAIL("trunc x=%d s=%d", x, s);
      tl_checks += 5;
    }
  /* range = bit length, never ceil(log2) */
  for (int i = 0; i < n_inputs; i++) {
    uint32_t a = mh_q_abs32(inputs[i]);
    CHECK_EQ_INT(mh_q_bitlen(a), spec_bitlen(a));
  }
  CHECK_EQ_INT(mh_q_abs32(INT32_MIN), 2147483648u);
  CHECK_EQ_INT(mh_q_bitlen(0), 0);
  CHECK_EQ_INT(mh_q_bitlen(1), 1);
  CHECK_EQ_INT(mh_q_bitlen(127), 7);
  CHECK_EQ_INT(mh_q_bitlen(128), 8); /* ceil(log2(128)) = 7 would give shift 0 and overflow int8 */
  CHECK_EQ_INT(mh_q_shift_for(127), 0);
  CHECK_EQ_INT(mh_q_shift_for(128), 1);
  CHECK_EQ_INT(mh_q_shift_for(255), 1);
  CHECK_EQ_INT(mh_q_shift_for(256), 2);
  CHECK_EQ_INT(mh_q_shift_for(0x80000000u), 25);
  /* after shift_for, every value of that range fits in int8 under every mode (no saturation needed
   * except nearest/stochastic rounding up from 127.5.. which saturates to 127) */
  for (int i = 0; i < n_inputs; i++) {
    int32_t x = inputs[i];
    int s = mh_q_shift_for(mh_q_abs32(x));
    int32_t t = mh_q_trunc_shift(x, s);
    CHECK(t >= -127 && t <= 127);
  }
  /* saturation edges */
  CHECK_EQ_INT(mh_q_sat8(127), 127);
  CHECK_EQ_INT(mh_q_sat8(128), 127);
  CHECK_EQ_INT(mh_q_sat8(-127), -127);
  CHECK_EQ_INT(mh_q_sat8(-128), -127);
  CHECK_EQ_INT(mh_q_sat8(INT32_MIN), -127);
  CHECK_EQ_INT(mh_q_sat8(INT32_MAX), 127);
  /* the documented NITI quirk: at s = 1 psto rounds every odd value away from zero */
  CHECK_EQ_INT(mh_q_round_psto(3, 1), 2);
  CHECK_EQ_INT(mh_q_round_psto(-3, 1), -2);
  CHECK_EQ_INT(mh_q_round_psto(5, 1), 3);
  /* nearest: ties away from zero */
  CHECK_EQ_INT(mh_q_round_nearest(2, 2), 1);
  CHECK_EQ_INT(mh_q_round_nearest(-2, 2), -1);
  CHECK_EQ_INT(mh_q_round_nearest(1, 2), 0);
  CHECK_EQ_INT(mh_q_round_nearest(6, 2), 2);

  /* stochastic: reproducible per (seed, step, tensor, element), different across them, unbiased */
  uint32_t k1 = mh_q_stoch_key(1, 5, 3), k2 = mh_q_stoch_key(1, 5, 3), k3 = mh_q_stoch_key(1, 6, 3),
           k4 = mh_q_stoch_key(1, 5, 4), k5 = mh_q_stoch_key(2, 5, 3);
  CHECK(k1 == k2 && k1 != k3 && k1 != k4 && k1 != k5);
  for (int s = 1; s <= 12; s++) {
    /* x = 1 at shift s rounds up with probability 2^-s ... use x = 2^(s-2)+1 etc.: E[q] = x / 2^s */
    int32_t x = (int32_t)((1u << s) * 3 / 8 + 1);
    double sum = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) sum += mh_q_round_stoch(x, s, k1, (uint32_t)i);
    double mean = sum / n, want = (double)x / (1 << s), sd = 0.5 / sqrt((double)n);
    if (fabs(mean - want) > 5 * sd) TL_FAIL("stochastic rounding biased at s=%d: mean %.5f vs %.5f", s, mean, want);
    tl_checks++;
  }
  /* saturating int32 addition (the bias of niti's GEMMs) against its definition in 64 bits, over every
   * pair of input classes (the edges of the range, their neighbours, small and random values) */
  int bad_add = 0;
  for (int i = 0; i < n_inputs; i += 7)
    for (int j = 0; j < n_inputs; j += 5) {
      int64_t w = (int64_t)inputs[i] + inputs[j];
      int64_t want = w > INT32_MAX ? INT32_MAX : w < -INT32_MAX ? -INT32_MAX : w;
      if (mh_q_add_sat32(inputs[i], inputs[j]) != want && bad_add++ < 5)
        TL_FAIL("add_sat32(%d, %d) = %d, want %lld", inputs[i], inputs[j], mh_q_add_sat32(inputs[i], inputs[j]),
                (long long)want);
      tl_checks++;
    }
  CHECK_EQ_INT(mh_q_add_sat32(INT32_MAX, 1), INT32_MAX);
  CHECK_EQ_INT(mh_q_add_sat32(-INT32_MAX, -1), -INT32_MAX);
  CHECK_EQ_INT(mh_q_add_sat32(INT32_MIN, 0), -INT32_MAX);
  CHECK_EQ_INT(mh_q_add_sat32(-1, INT32_MIN + 1), -INT32_MAX);
  CHECK_EQ_INT(mh_q_add_sat32(INT32_MIN, INT32_MIN), -INT32_MAX);
  return tl_exit();
}
