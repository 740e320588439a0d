/* The integer element-wise ops on the DSP, each one message: ReLU and its backward, 2x2 stride-2
 * max-pool and its backward, and the exponent-aligned int8 residual add. Inputs are copied into the
 * region's free area, results copied back; equal to src/ops/int_simple.c bit for bit. */
#include <string.h>

#include "backend/dsp/dsp.h"
#include "core/status.h"

static void count(mh_dsp_counts *cnt, double in, double out) {
  if (!cnt) return;
  cnt->eltwise_ops++;
  cnt->bytes_to_dsp += in + sizeof(mh_wire_msg), cnt->bytes_from_dsp += out;
}

/* a (and b) in, out back: ReLU (b NULL), ReLU backward, or the add (exponents ea, eb -> *ey). */
static int eltwise(mh_dsp *d, uint32_t op, const int8_t *a, const int8_t *b, int8_t *out, long n, int ea, int eb, int *ey,
                   mh_dsp_counts *cnt) {
  uint64_t bytes[3] = {(uint64_t)n, b ? (uint64_t)n : 0, (uint64_t)n};
  uint32_t off[3];
  if (n < 1 || n > (1L << 28)) return mh__error(MH_ERR_INVALID_ARG, "DSP element-wise op: %ld elements", n);
  MH_TRY(mh_dsp_free_offsets(d, 3, bytes, off, "element-wise op"));
  memcpy(mh_dsp_at(d, off[0]), a, (size_t)n);
  if (b) memcpy(mh_dsp_at(d, off[1]), b, (size_t)n);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = op;
  mh_wire_eltwise_s8 e = {off[0], b ? off[1] : 0, off[2], (uint32_t)n, ea, eb};
  msg->args.eltwise = e;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  memcpy(out, mh_dsp_at(d, off[2]), (size_t)n);
  if (ey) *ey = msg->args.eltwise.ey;
  count(cnt, (b ? 2.0 : 1.0) * n, (double)n);
  return MH_OK;
}

int mh_dsp_relu_s8(mh_dsp *d, const int8_t *x, int8_t *y, long n, mh_dsp_counts *cnt) {
  return eltwise(d, MH_WIRE_RELU_S8, x, NULL, y, n, 0, 0, NULL, cnt);
}

int mh_dsp_relu_bwd_s8(mh_dsp *d, const int8_t *y, const int8_t *dy, int8_t *dx, long n, mh_dsp_counts *cnt) {
  return eltwise(d, MH_WIRE_RELU_BWD_S8, y, dy, dx, n, 0, 0, NULL, cnt);
}

int mh_dsp_add_s8(mh_dsp *d, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, long n, int *ey,
                  mh_dsp_counts *cnt) {
  return eltwise(d, MH_WIRE_ADD_S8, a, b, y, n, ea, eb, ey, cnt);
}

int mh_dsp_maxpool2_s8(mh_dsp *d, const int8_t *x, const int8_t *dy, int8_t *out, long planes, int h, int w,
                       mh_dsp_counts *cnt) {
  uint64_t in = (uint64_t)planes * h * w, small = (uint64_t)planes * (h / 2) * (w / 2);
  uint64_t bytes[3] = {in, small, dy ? in : 0};
  uint32_t off[3];
  if (planes < 1 || planes > (1L << 24) || h < 2 || w < 2 || h > 65536 || w > 65536)
    return mh__error(MH_ERR_INVALID_ARG, "DSP max-pool: %ld planes of %dx%d", planes, h, w);
  MH_TRY(mh_dsp_free_offsets(d, 3, bytes, off, "max-pool"));
  memcpy(mh_dsp_at(d, off[0]), x, in);
  if (dy) memcpy(mh_dsp_at(d, off[1]), dy, small);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = dy ? MH_WIRE_MAXPOOL2_BWD_S8 : MH_WIRE_MAXPOOL2_S8;
  mh_wire_pool_s8 p = {off[0], off[1], dy ? off[2] : 0, (uint32_t)planes, (uint32_t)h, (uint32_t)w};
  msg->args.pool = p;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  memcpy(out, mh_dsp_at(d, dy ? off[2] : off[1]), dy ? in : small);
  count(cnt, dy ? (double)(in + small) : (double)in, dy ? (double)in : (double)small);
  return MH_OK;
}
