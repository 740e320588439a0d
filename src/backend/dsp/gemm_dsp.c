/* The int8 GEMM on the DSP, as a drop-in for mh_gemm_s8: operands are copied into the shared region
 * (transposed where the caller's layout says so), one message runs the HVX kernel, and C comes back.
 * Integer GEMMs are exact, so the result equals the CPU's bit for bit. */
#include <string.h>

#include "backend/dsp/dsp.h"
#include "core/status.h"

static uint32_t al128(uint64_t b) { return (uint32_t)((b + 127) / 128 * 128); }

int mh_dsp_gemm_s8(mh_dsp *d, const mh_gemm_s8_args *g, mh_dsp_counts *cnt) {
  uint64_t na = (uint64_t)g->m * g->k, nb = (uint64_t)g->k * g->n, nc = (uint64_t)g->m * g->n * 4;
  uint64_t a_off = MH_WIRE_PAGE, b_off = a_off + al128(na), c_off = b_off + al128(nb);
  if (c_off + nc > d->region_bytes)
    return mh__error(MH_ERR_UNSUPPORTED, "DSP: a %dx%dx%d GEMM needs %llu bytes, the shared region has %zu", g->m, g->n, g->k,
                     (unsigned long long)(c_off + nc), d->region_bytes);
  int8_t *a = (int8_t *)mh_dsp_at(d, (uint32_t)a_off), *b = (int8_t *)mh_dsp_at(d, (uint32_t)b_off);
  int32_t *c = (int32_t *)mh_dsp_at(d, (uint32_t)c_off);
  for (int i = 0; i < g->m; i++) /* A as m rows of k */
    if (!g->trans_a) memcpy(a + (size_t)i * g->k, g->a + (size_t)i * g->lda, (size_t)g->k);
    else
      for (int p = 0; p < g->k; p++) a[(size_t)i * g->k + p] = g->a[(size_t)p * g->lda + i];
  for (int p = 0; p < g->k; p++) /* B as k rows of n */
    if (!g->trans_b) memcpy(b + (size_t)p * g->n, g->b + (size_t)p * g->ldb, (size_t)g->n);
    else
      for (int j = 0; j < g->n; j++) b[(size_t)p * g->n + j] = g->b[(size_t)j * g->ldb + p];
  if (g->accumulate)
    for (int i = 0; i < g->m; i++) memcpy(c + (size_t)i * g->n, g->c + (size_t)i * g->ldc, sizeof(int32_t) * g->n);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_GEMM_S8;
  mh_wire_gemm_s8 w = {(uint32_t)g->m, (uint32_t)g->n, (uint32_t)g->k, (uint32_t)a_off, (uint32_t)g->k, (uint32_t)b_off,
                       (uint32_t)g->n, (uint32_t)c_off, (uint32_t)g->n, (uint32_t)(g->accumulate != 0)};
  msg->args.gemm = w;
  int st = mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS);
  if (st) return st;
  for (int i = 0; i < g->m; i++) memcpy(g->c + (size_t)i * g->ldc, c + (size_t)i * g->n, sizeof(int32_t) * g->n);
  if (cnt) {
    cnt->gemms++;
    cnt->macs += (double)g->m * g->n * g->k;
    cnt->bytes_to_dsp += (double)(na + nb + (g->accumulate ? nc : 0)) + sizeof(mh_wire_msg);
    cnt->bytes_from_dsp += (double)nc;
  }
  return MH_OK;
}
