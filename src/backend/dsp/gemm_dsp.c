/* The int8 GEMM on the DSP, as a drop-in for mh_gemm_s8: operands are copied into the shared region
 * in the caller's layout (the DSP reads transposed operands itself), messages run the HVX kernel,
 * and C comes back.
 * Batch splitting: when A, B and C do not fit the region together, K (the batch axis of a weight
 * gradient) is split into parts that do, each part accumulating into C in the region; the DSP in
 * turn splits each part into VTCM-sized K chunks. int32 sums are exact, so every split gives the
 * unsplit result bit for bit, and that equals the CPU's. */
#include <string.h>

#include "backend/dsp/dsp.h"
#include "core/status.h"

static uint64_t al128(uint64_t b) { return (b + 127) / 128 * 128; }

/* Region bytes for a part of kc of K. */
static uint64_t need(const mh_dsp *d, const mh_gemm_s8_args *g, int kc) {
  return mh_dsp_free_base(d) + al128((uint64_t)g->m * kc) + al128((uint64_t)kc * g->n) + (uint64_t)g->m * g->n * 4;
}

/* op(A)[:, k0:k0+kp] and op(B)[k0:k0+kp, :] packed densely in the caller's storage order (row
 * strides: kp or m for A, n or kp for B). Returns the wire flags for that order. */
static uint32_t put_operands(const mh_gemm_s8_args *g, int k0, int kp, int8_t *a, int8_t *b) {
  if (!g->trans_a)
    for (int i = 0; i < g->m; i++) memcpy(a + (size_t)i * kp, g->a + (size_t)i * g->lda + k0, (size_t)kp);
  else
    for (int p = 0; p < kp; p++) memcpy(a + (size_t)p * g->m, g->a + (size_t)(k0 + p) * g->lda, (size_t)g->m);
  if (!g->trans_b)
    for (int p = 0; p < kp; p++) memcpy(b + (size_t)p * g->n, g->b + (size_t)(k0 + p) * g->ldb, (size_t)g->n);
  else
    for (int j = 0; j < g->n; j++) memcpy(b + (size_t)j * kp, g->b + (size_t)j * g->ldb + k0, (size_t)kp);
  return (g->trans_a ? MH_WIRE_GEMM_TRANS_A : 0u) | (g->trans_b ? MH_WIRE_GEMM_TRANS_B : 0u);
}

int mh_dsp_gemm_s8(mh_dsp *d, const mh_gemm_s8_args *g, mh_dsp_counts *cnt) {
  if (g->b_rows) return mh__error(MH_ERR_UNSUPPORTED, "DSP: a GEMM whose B is given by row pointers runs on the CPU");
  int kc = g->k;
  while (kc > 1 && need(d, g, kc) > d->region_bytes) kc = (kc + 1) / 2;
  if (need(d, g, kc) > d->region_bytes)
    return mh__error(MH_ERR_UNSUPPORTED, "DSP: a %dx%dx%d GEMM's output alone exceeds the %zu-byte shared region", g->m,
                     g->n, g->k, d->region_bytes);
  uint64_t a_off = mh_dsp_free_base(d), b_off = a_off + al128((uint64_t)g->m * kc), c_off = b_off + al128((uint64_t)kc * g->n);
  int8_t *a = (int8_t *)mh_dsp_at(d, (uint32_t)a_off), *b = (int8_t *)mh_dsp_at(d, (uint32_t)b_off);
  int32_t *c = (int32_t *)mh_dsp_at(d, (uint32_t)c_off);
  double bytes_in = 0;
  if (g->accumulate) {
    for (int i = 0; i < g->m; i++) memcpy(c + (size_t)i * g->n, g->c + (size_t)i * g->ldc, sizeof(int32_t) * g->n);
    bytes_in += (double)g->m * g->n * 4;
  }
  long parts = 0, chunks = 0;
  for (int k0 = 0; k0 < g->k; k0 += kc) {
    int kp = g->k - k0 < kc ? g->k - k0 : kc;
    uint32_t flags = put_operands(g, k0, kp, a, b);
    mh_wire_msg *msg = mh_dsp_msg(d);
    memset(msg, 0, sizeof *msg);
    msg->op = MH_WIRE_GEMM_S8;
    mh_wire_gemm_s8 w = {(uint32_t)g->m, (uint32_t)g->n, (uint32_t)kp, (uint32_t)a_off, (uint32_t)(g->trans_a ? g->m : kp),
                         (uint32_t)b_off, (uint32_t)(g->trans_b ? kp : g->n), (uint32_t)c_off, (uint32_t)g->n,
                         (uint32_t)(g->accumulate || k0 > 0)};
    w.flags = flags;
    msg->args.gemm = w;
    int st = mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS);
    if (st) return st;
    parts++, chunks += msg->chunks;
    bytes_in += (double)g->m * kp + (double)kp * g->n + sizeof(mh_wire_msg);
  }
  for (int i = 0; i < g->m; i++) memcpy(g->c + (size_t)i * g->ldc, c + (size_t)i * g->n, sizeof(int32_t) * g->n);
  if (cnt) {
    cnt->gemms++;
    cnt->macs += (double)g->m * g->n * g->k;
    cnt->bytes_to_dsp += bytes_in;
    cnt->bytes_from_dsp += (double)g->m * g->n * 4;
    cnt->split_parts += parts > 1 ? parts : 0;
    cnt->vtcm_chunks += chunks > parts ? chunks : 0;
  }
  return MH_OK;
}

int mh_dsp_gemm_s8_requant(mh_dsp *d, const mh_gemm_s8_args *g, const int32_t *bias, int shift, mh_round_mode mode,
                           int8_t *y, int ldy, mh_requant_stats *st) {
  if (g->accumulate || shift < 0 || shift > 31 || (mode != MH_ROUND_NEAREST && mode != MH_ROUND_PSTO))
    return mh__error(MH_ERR_INVALID_ARG, "DSP fused GEMM: accumulate %d, shift %d, mode %d unsupported", g->accumulate,
                     shift, (int)mode);
  uint64_t bytes[4] = {(uint64_t)g->m * g->k, (uint64_t)g->k * g->n, (uint64_t)g->m * 4, (uint64_t)g->m * g->n};
  uint32_t off[4];
  MH_TRY(mh_dsp_free_offsets(d, 4, bytes, off, "fused GEMM"));
  uint32_t a_off = off[0], b_off = off[1], bias_off = off[2], y_off = off[3];
  int8_t *a = (int8_t *)mh_dsp_at(d, a_off), *b = (int8_t *)mh_dsp_at(d, b_off);
  uint32_t flags = put_operands(g, 0, g->k, a, b);
  if (bias) memcpy(mh_dsp_at(d, bias_off), bias, (size_t)g->m * 4);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_GEMM_S8;
  mh_wire_gemm_s8 w = {(uint32_t)g->m, (uint32_t)g->n, (uint32_t)g->k, a_off, (uint32_t)(g->trans_a ? g->m : g->k),
                       b_off, (uint32_t)(g->trans_b ? g->k : g->n), y_off, (uint32_t)g->n, 0, 1,
                       (uint32_t)shift, mode == MH_ROUND_PSTO ? 1u : 0u, bias ? bias_off : 0u, flags};
  msg->args.gemm = w;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  for (int i = 0; i < g->m; i++) memcpy(y + (size_t)i * ldy, mh_dsp_at(d, (uint32_t)(y_off + (uint64_t)i * g->n)), (size_t)g->n);
  st->max_abs = msg->max_abs, st->saturated = msg->saturated;
  return MH_OK;
}
