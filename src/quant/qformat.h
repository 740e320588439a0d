/* The one integer semantics (DESIGN.md contract 1): int8 in [-127, 127], int32 accumulation,
 * per-tensor power-of-two exponents, range as bit length, and every rounding mode by name.
 * Portable C and the reference every backend (AVX2, NEON, HVX) must match bit for bit. */
#ifndef MH_QUANT_QFORMAT_H
#define MH_QUANT_QFORMAT_H

#include <stdint.h>

#include "core/rng.h"

/* A quantised tensor's value is q * 2^exp, q an int8 in [-MH_Q8_MAX, MH_Q8_MAX]: symmetric, so
 * negation never overflows and -128 never appears. */
#define MH_Q8_MAX 127
/* Results are shifted until max|q| < 2^MH_Q8_BITS, i.e. fits in 7 magnitude bits. */
#define MH_Q8_BITS 7
/* The largest shift any kernel applies to an int32 accumulator (|acc| < 2^31). */
#define MH_Q_MAX_SHIFT 31

typedef enum mh_round_mode {
  MH_ROUND_NEAREST = 0, /* to nearest, ties away from zero */
  MH_ROUND_PSTO = 1,    /* NITI's pseudo-stochastic rounding (the discarded bits split in two) */
  MH_ROUND_STOCH = 2    /* stochastic, random bits from a counter-based hash of (seed, step, tensor, element) */
} mh_round_mode;

const char *mh_round_mode_name(mh_round_mode m); /* "nearest", "psto", "stochastic" */

/* |x| as uint32: exact for INT32_MIN (2^31). */
static inline uint32_t mh_q_abs32(int32_t x) { return x < 0 ? 0u - (uint32_t)x : (uint32_t)x; }

/* Range: the bit length of v (0 for 0), i.e. 32 - clz(v). Not ceil(log2(v)), which is one short at
 * exact powers of two: 128 has bit length 8 and needs a shift of 1 to fit in int8. */
static inline int mh_q_bitlen(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

/* The shift that brings a tensor whose max |x| is maxabs into int8: max(0, bitlen - 7). */
static inline int mh_q_shift_for(uint32_t maxabs) {
  int b = mh_q_bitlen(maxabs);
  return b > MH_Q8_BITS ? b - MH_Q8_BITS : 0;
}

/* Saturate to [-127, 127]. */
static inline int32_t mh_q_sat8(int32_t v) { return v > MH_Q8_MAX ? MH_Q8_MAX : v < -MH_Q8_MAX ? -MH_Q8_MAX : v; }

/* x / 2^s truncated toward zero (C division), for s in [0, 31]; the magnitude part of every mode. */
static inline int32_t mh_q_trunc_shift(int32_t x, int s) {
  uint32_t a = mh_q_abs32(x) >> s;
  return (int32_t)(x < 0 ? 0u - a : a); /* negate in unsigned: s = 0 keeps INT32_MIN without overflow */
}

/* Nearest, ties away from zero: q = trunc(x / 2^s); q += sign(x) when the discarded part >= 2^(s-1). */
static inline int32_t mh_q_round_nearest(int32_t x, int s) {
  if (s <= 0) return x;
  uint32_t a = mh_q_abs32(x);
  uint32_t q = (a >> s) + ((a >> (s - 1)) & 1u);
  return x < 0 ? -(int32_t)q : (int32_t)q;
}

/* NITI PstoShift: q = trunc(x / 2^s); r = the s discarded bits; hi = r >> floor(s/2) (the upper
 * ceil(s/2) bits, the "probability"); lo = r & (2^floor(s/2) - 1) (the lower bits, the "random
 * number"), doubled when s is odd so both have ceil(s/2) bits; round away from zero when hi > lo. */
static inline int32_t mh_q_round_psto(int32_t x, int s) {
  if (s <= 0) return x;
  uint32_t a = mh_q_abs32(x), r = a & ((1u << s) - 1u) /* s <= 31 */;
  int h = s >> 1;
  uint32_t hi = r >> h, lo = r & ((1u << h) - 1u);
  if (s & 1) lo <<= 1;
  uint32_t q = (a >> s) + (hi > lo);
  return x < 0 ? -(int32_t)q : (int32_t)q;
}

/* v * 2^d as an int32 addend: shifted up exactly (saturating at the int32 range) for d >= 0, or
 * rounded to nearest for d < 0. Aligns a value with exponent e_v to an accumulator with exponent
 * e_v - d (integer bias addition). */
static inline int32_t mh_q_align32(int32_t v, int d) {
  if (d < 0) return mh_q_round_nearest(v, -d > MH_Q_MAX_SHIFT ? MH_Q_MAX_SHIFT : -d);
  int64_t w = (int64_t)v * ((int64_t)1 << (d > 32 ? 32 : d));
  return w > INT32_MAX ? INT32_MAX : w < -INT32_MAX ? -INT32_MAX : (int32_t)w;
}
/* a + b saturated to [-INT32_MAX, INT32_MAX]. In 32-bit lanes, so loops over it vectorise: the
 * wrapped sum; where it overflowed (a and b of one sign, the sum of the other) the bound on b's side;
 * and INT32_MIN, which only an exact sum can reach, raised to -INT32_MAX. */
static inline int32_t mh_q_add_sat32(int32_t a, int32_t b) {
  int32_t s = (int32_t)((uint32_t)a + (uint32_t)b);
  s = ((a ^ s) & (b ^ s)) < 0 ? (b > 0 ? INT32_MAX : -INT32_MAX) : s;
  return s == INT32_MIN ? -INT32_MAX : s;
}
/* The 32-bit hash behind stochastic rounding (Wellons' lowbias32): cheap in 32-bit SIMD lanes, so
 * AVX2/NEON/HVX reproduce it exactly. */
static inline uint32_t mh_q_hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/* Per-tensor key: everything but the element index, mixed once per tensor per step. */
static inline uint32_t mh_q_stoch_key(uint64_t seed, uint64_t step, uint32_t tensor) {
  return (uint32_t)(mh_rng_key(seed, MH_STREAM_ROUND, step, tensor) >> 32);
}

/* The random number of element i: uniform 32 bits from (key, i) for i < 2^32. */
static inline uint32_t mh_q_stoch_rand(uint32_t key, uint32_t i) { return mh_q_hash32(key ^ mh_q_hash32(i)); }

/* Stochastic (NITI StoShift with a reproducible generator): round away from zero when the s
 * discarded bits exceed the low s bits of the element's random number. */
static inline int32_t mh_q_round_stoch(int32_t x, int s, uint32_t key, uint32_t i) {
  if (s <= 0) return x;
  uint32_t a = mh_q_abs32(x), mask = (1u << s) - 1u;
  uint32_t q = (a >> s) + ((a & mask) > (mh_q_stoch_rand(key, i) & mask));
  return x < 0 ? -(int32_t)q : (int32_t)q;
}

/* Round by mode (key/i only used by MH_ROUND_STOCH). */
static inline int32_t mh_q_round(int32_t x, int s, mh_round_mode m, uint32_t key, uint32_t i) {
  return m == MH_ROUND_NEAREST ? mh_q_round_nearest(x, s)
         : m == MH_ROUND_PSTO  ? mh_q_round_psto(x, s)
                               : mh_q_round_stoch(x, s, key, i);
}

/* Shift an int32 accumulator to int8: round by mode, then saturate to [-127, 127]. */
static inline int8_t mh_q_requant8(int32_t x, int s, mh_round_mode m, uint32_t key, uint32_t i) {
  return (int8_t)mh_q_sat8(mh_q_round(x, s, m, key, i));
}

#endif
