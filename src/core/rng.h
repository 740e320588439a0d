/* Counter-based random numbers: every draw is a pure function of (key, counter),
 * so any backend, thread split or resumed run reproduces it. Not cryptographic. */
#ifndef MH_CORE_RNG_H
#define MH_CORE_RNG_H

#include <stdint.h>

/* splitmix64 finaliser: a bijective 64-bit mix with good avalanche. */
static inline uint64_t mh_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* A key from up to four words, e.g. (seed, stream, epoch, index). Streams keep
 * uses apart: MH_STREAM_* below. */
static inline uint64_t mh_rng_key(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  uint64_t k = mh_mix64(seed ^ 0x6A09E667F3BCC909ull);
  k = mh_mix64(k ^ stream);
  k = mh_mix64(k ^ a);
  return mh_mix64(k ^ b);
}

enum {
  MH_STREAM_INIT = 1,    /* parameter initialisation, a = parameter index */
  MH_STREAM_SHUFFLE = 2, /* epoch permutation, a = epoch */
  MH_STREAM_AUGMENT = 3, /* augmentation, a = epoch, b = position in the epoch's order */
  MH_STREAM_ROUND = 4,   /* stochastic rounding, keyed by (step, tensor, element) */
  MH_STREAM_SYNTH = 5    /* synthetic benchmark data */
};

/* A sequential stream over one key: draw i is mh_mix64(key + i). Its whole state is
 * (key, counter), which a checkpoint stores. */
typedef struct mh_rng {
  uint64_t key;
  uint64_t counter;
} mh_rng;

static inline mh_rng mh_rng_make(uint64_t key) {
  mh_rng r = {key, 0};
  return r;
}
static inline uint64_t mh_rng_next(mh_rng *r) { return mh_mix64(r->key + 0xD1B54A32D192ED03ull * (r->counter++)); }
/* Uniform in [0, 1) with 24 bits (exactly representable as float). */
static inline float mh_rng_uniform(mh_rng *r) { return (float)(mh_rng_next(r) >> 40) * (1.0f / 16777216.0f); }
/* Uniform integer in [0, n) by multiply-shift (bias < 2^-32 for n < 2^32). */
static inline uint32_t mh_rng_below(mh_rng *r, uint32_t n) {
  return (uint32_t)(((mh_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

#endif
