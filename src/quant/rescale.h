/* Rescaling int32 accumulators back to int8 after a GEMM: exact (a max pass, then the shift) or
 * self-adaptive (the shift predicted from the tensor's history, applied in one fused pass). */
#ifndef MH_QUANT_RESCALE_H
#define MH_QUANT_RESCALE_H

#include <stdint.h>

#include "backend/cpu/kernels.h"
#include "core/pool.h"
#include "quant/qformat.h"
#include "quant/rescale_rule.h"

typedef enum mh_rescale_mode { MH_RESCALE_EXACT = 0, MH_RESCALE_ADAPTIVE = 1 } mh_rescale_mode;

/* What rescaling did and what the adaptive rule avoided. */
typedef struct mh_rescale_counts {
  long calls;          /* requantisations of an int32 tensor */
  long max_passes;     /* full max passes over int32 (exact mode: one per call) */
  long passes_avoided; /* adaptive calls that needed no max pass */
  long fallbacks;      /* adaptive calls that saturated past the threshold and re-shifted */
  long periodic;       /* adaptive calls that were exact because of the period (or first use) */
  long mispredicted;   /* adaptive calls whose predicted shift differed from the exact one */
  double int32_bytes_read;    /* int32 bytes read by rescaling (all passes) */
  double int32_bytes_avoided; /* int32 bytes an exact pass would have re-read but did not */
  double seconds;      /* wall time inside rescaling */
} mh_rescale_counts;

/* Largest |x| of an int32 tensor (2^31 for INT32_MIN), on the pool. */
uint32_t mh_rescale_max_abs(mh_pool *pool, const int32_t *x, long n);

/* Requantises acc (n int32) into out (n int8) with rounding `round`, choosing the shift by `mode`
 * and `st` as above; returns the shift applied (the output exponent is the input's + shift).
 * Results depend only on the inputs and the state, never on the pool size. */
int mh_rescale_s32_s8(const mh_cpu_kernels *kt, mh_pool *pool, const int32_t *acc, long n, int8_t *out,
                      mh_round_mode round, mh_rescale_mode mode, mh_rescale_state *st, mh_rescale_counts *cnt);

void mh_rescale_counts_add(mh_rescale_counts *into, const mh_rescale_counts *c);

/* Counts one call of n outputs that another side (the DSP) ran by the rule: `events` as
 * mh_rule_after_predicted sets them, or MH_RULE_EXACT for an exact call. */
void mh_rescale_count_event(mh_rescale_counts *cnt, int events, long n, mh_rescale_mode mode);

/* The rule in parts, for callers whose requantise pass runs elsewhere (the DSP's fused GEMM
 * epilogue) and must keep the same histories and counts as mh_rescale_s32_s8:
 *  - mh_rescale_needs_exact: 1 when this call must find its shift from a max pass;
 *  - mh_rescale_after_exact: record an exact call that used `shift`;
 *  - mh_rescale_after_predicted: record a pass made with the prediction st->shift that measured s;
 *    returns the shift the call ends with and sets *redo when the pass must be repeated with it. */
int mh_rescale_needs_exact(const mh_rescale_state *st, mh_rescale_mode mode);
void mh_rescale_after_exact(mh_rescale_state *st, mh_rescale_counts *cnt, int shift, long n, mh_rescale_mode mode);
int mh_rescale_after_predicted(mh_rescale_state *st, mh_rescale_counts *cnt, const mh_requant_stats *s, long n,
                               int *redo);

#endif
