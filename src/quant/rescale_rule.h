/* The self-adaptive rescale rule in one freestanding place (stdint only): compiled by the host
 * (src/quant/rescale.c) and by the DSP program (dsp/segment.c), so both keep identical histories. */
#ifndef MH_QUANT_RESCALE_RULE_H
#define MH_QUANT_RESCALE_RULE_H

#include <stdint.h>

#include "quant/qformat.h"

/* The rule (docs/ARCHITECTURE.md, "Self-adaptive rescaling"):
 *  - a tensor's first call, and every MH_RESCALE_PERIOD-th call after an exact one, is exact;
 *  - otherwise the predicted shift is applied in the requantise pass, which also measures the
 *    int32 max and counts saturated outputs;
 *  - when more than n / MH_RESCALE_SAT_DIV outputs saturated, the call falls back: it re-shifts
 *    with the exact shift of this call (known from the measured max), one more pass;
 *  - the next prediction is this call's exact shift (the measured max gives it for free). */
#define MH_RESCALE_PERIOD 32
#define MH_RESCALE_SAT_DIV 1024

/* Per-tensor history (saved in checkpoints so resume is bit-exact; 12 bytes on both sides). */
typedef struct mh_rescale_state {
  int32_t shift;       /* the prediction for the next call */
  int32_t have;        /* 1 once a call has measured the tensor */
  int32_t since_exact; /* calls since the last exact one */
} mh_rescale_state;

/* What one call did, for the counters (mh_rescale_count_event). */
enum { MH_RULE_EXACT = 1, MH_RULE_REDO = 2, MH_RULE_MISPREDICTED = 4 };

/* The shift NITI's integer layers use for a tensor whose max |x| is maxabs: bit length - 7, and a
 * shift of 1 becomes 2 (pseudo-stochastic rounding by one bit would round every odd value away
 * from zero; the 2020 NITI code does the same). */
static inline int mh_q_niti_shift_for(uint32_t maxabs) {
  int s = mh_q_shift_for(maxabs);
  return s == 1 ? 2 : s;
}

/* 1 when this call must find its shift from a max pass (adaptive 0: exact rescaling always). */
static inline int mh_rule_needs_exact(const mh_rescale_state *st, int adaptive) {
  return !adaptive || !st->have || st->since_exact + 1 >= MH_RESCALE_PERIOD;
}

/* Records an exact call that used `shift`. */
static inline void mh_rule_after_exact(mh_rescale_state *st, int shift) {
  st->since_exact = 0, st->shift = shift, st->have = 1;
}

/* Records a pass of n outputs made with the prediction st->shift that measured max_abs and
 * `saturated`; returns the shift the call ends with. *events: MH_RULE_REDO when the pass must be
 * repeated with that shift, MH_RULE_MISPREDICTED when the prediction was not the exact shift. */
static inline int mh_rule_after_predicted(mh_rescale_state *st, uint32_t max_abs, uint32_t saturated, uint64_t n,
                                          int *events) {
  int shift = st->shift, want = mh_q_niti_shift_for(max_abs);
  *events = want != shift ? MH_RULE_MISPREDICTED : 0;
  if ((uint64_t)saturated * MH_RESCALE_SAT_DIV > n) { /* too many clipped: redo this call exactly */
    shift = want;
    *events |= MH_RULE_REDO;
  }
  st->since_exact++;
  st->shift = want, st->have = 1;
  return shift;
}

#endif
