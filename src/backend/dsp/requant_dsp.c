/* The requantise epilogue on the DSP: an int32 tensor shifted to int8 by the HVX kernel, with the
 * max and saturation count the self-adaptive rescaling rule needs; equal to the CPU kernels'. */
#include <string.h>

#include "backend/dsp/dsp.h"
#include "core/status.h"

int mh_dsp_requant_s8(mh_dsp *d, const int32_t *x, long n, int8_t *y, int shift, mh_round_mode mode,
                      mh_requant_stats *st) {
  if (n < 1 || shift < 0 || shift > 31 || (mode != MH_ROUND_NEAREST && mode != MH_ROUND_PSTO))
    return mh__error(MH_ERR_INVALID_ARG, "DSP requantise: n %ld, shift %d, mode %d unsupported", n, shift, (int)mode);
  uint64_t bytes[2] = {(uint64_t)n * 4, (uint64_t)n};
  uint32_t off[2];
  MH_TRY(mh_dsp_free_offsets(d, 2, bytes, off, "requantise"));
  uint32_t x_off = off[0], y_off = off[1];
  memcpy(mh_dsp_at(d, x_off), x, (size_t)n * 4);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_REQUANT_S8;
  mh_wire_requant_s8 r = {x_off, y_off, (uint32_t)n, (uint32_t)shift, mode == MH_ROUND_PSTO ? 1u : 0u};
  msg->args.requant = r;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  memcpy(y, mh_dsp_at(d, y_off), (size_t)n);
  st->max_abs = msg->max_abs, st->saturated = msg->saturated;
  return MH_OK;
}
