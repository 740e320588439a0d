/* The GEMM message checked against the region and run on the HVX kernel (see gemm_msg.h). */
#include "gemm_msg.h"

#include "hvx_gemm.h"
#include "region.h"

#define MAX_DIM (1u << 24)
#define MAX_K 131072u /* the host's MH_GEMM_S8_MAX_K: int32 sums cannot overflow */

uint32_t mh_gemm_msg_check(const mh_wire_gemm_s8 *g) {
  int fused = g->epilogue == 1, ta = (g->flags & MH_WIRE_GEMM_TRANS_A) != 0, tb = (g->flags & MH_WIRE_GEMM_TRANS_B) != 0;
  int rows = (g->flags & MH_WIRE_GEMM_B_ROWS) != 0, arows = (g->flags & MH_WIRE_GEMM_A_ROWS) != 0;
  if (!g->m || !g->n || !g->k || g->m > MAX_DIM || g->n > MAX_DIM || g->k > MAX_K) return MH_WIRE_E_ARG;
  if ((!arows && g->lda < (ta ? g->m : g->k)) || (!rows && g->ldb < (tb ? g->k : g->n)) || g->ldc < g->n ||
      g->accumulate > 1 || g->epilogue > 1 || (g->flags & ~15u) || (g->apack_off & 127u) || (rows && (g->b_rows_off & 3u)) ||
      (arows && (ta || g->apack_off || (g->a_rows_off & 3u))))
    return MH_WIRE_E_ARG;
  if ((!fused && (g->c_off & 3u)) || (fused && (g->accumulate || g->shift > 31 || g->mode > 1)) || (g->bias_off & 3u))
    return MH_WIRE_E_ARG;
  if (g->grid_w && (g->grid_w > 65536 || g->grid_h > 65536 || !g->grid_q || g->grid_q > g->grid_w || !g->grid_p ||
                    g->grid_p > g->grid_h))
    return MH_WIRE_E_ARG;
  /* B by rows: the table here; each entry is checked when the GEMM runs (the host may rewrite it) */
  int b_ok = rows ? mh_in_region(g->b_rows_off, 4ull * (tb ? g->n : g->k)) && mh_in_region(g->b_off, 1)
                  : mh_in_region(g->b_off, tb ? mh_span(g->n, g->k, g->ldb, 1) : mh_span(g->k, g->n, g->ldb, 1));
  int a_ok = arows ? mh_in_region(g->a_rows_off, 4ull * g->m) && mh_in_region(g->a_off, 1)
                   : mh_in_region(g->a_off, ta ? mh_span(g->k, g->m, g->lda, 1) : mh_span(g->m, g->k, g->lda, 1));
  if (!a_ok || !b_ok ||
      !mh_in_region(g->c_off, mh_span(g->m, g->n, g->ldc, fused ? 1 : 4)) ||
      (g->bias_off && !mh_in_region(g->bias_off, (uint64_t)g->m * 4)) ||
      (g->apack_off && !mh_in_region(g->apack_off, mh_wire_apack_bytes(g->m, g->k))))
    return MH_WIRE_E_BOUNDS;
  return MH_WIRE_OK;
}

uint32_t mh_gemm_msg_run(mh_vtcm *v, const mh_wire_gemm_s8 *g, const uint8_t *apack, uint32_t *chunks,
                         uint32_t *max_abs, uint32_t *saturated) {
  int fused = g->epilogue == 1;
  mh_gemm_epilogue ep = {fused && g->bias_off ? (const int32_t *)(mh_region + g->bias_off) : 0,
                         (int8_t *)(mh_region + g->c_off), (int)g->ldc, (int)g->shift, (int)g->mode, 0, 0};
  mh_gemm_job j = {(int)g->m, (int)g->n, (int)g->k, (const int8_t *)(mh_region + g->a_off), (int)g->lda,
                   (const int8_t *)(mh_region + g->b_off), (int)g->ldb, (int32_t *)(mh_region + g->c_off), (int)g->ldc,
                   (int)g->accumulate, (g->flags & MH_WIRE_GEMM_TRANS_A) != 0, (g->flags & MH_WIRE_GEMM_TRANS_B) != 0,
                   apack, 0, 0, 0, 0, 0, 0};
  if (g->flags & MH_WIRE_GEMM_A_ROWS) { /* every row of A inside the region */
    const uint32_t *rows = (const uint32_t *)(mh_region + g->a_rows_off);
    for (uint32_t i = 0; i < g->m; i++)
      if (rows[i] > mh_region_bytes - g->a_off || !mh_in_region(g->a_off + rows[i], g->k)) return MH_WIRE_E_BOUNDS;
    j.a_rows = rows;
  }
  if (g->flags & MH_WIRE_GEMM_B_ROWS) { /* every stored row of B inside the region */
    const uint32_t *rows = (const uint32_t *)(mh_region + g->b_rows_off);
    uint32_t count = j.trans_b ? g->n : g->k, len = j.trans_b ? g->k : g->n;
    for (uint32_t i = 0; i < count; i++)
      if (rows[i] > mh_region_bytes - g->b_off || !mh_in_region(g->b_off + rows[i], len)) return MH_WIRE_E_BOUNDS;
    j.b_rows = rows;
  }
  j.grid_w = (int)g->grid_w, j.grid_h = (int)g->grid_h, j.grid_q = (int)g->grid_q, j.grid_p = (int)g->grid_p;
  uint32_t st = (uint32_t)mh_hvx_gemm_s8(v, &j, chunks, fused ? &ep : 0);
  *max_abs = ep.max_abs, *saturated = ep.saturated;
  return st;
}
