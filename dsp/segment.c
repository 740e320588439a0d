/* Segment programs (segment.h): preparation checks every tensor and node against the region and the
 * subgraphs they use; a run carries exponents and rescale histories through the chain in the run
 * table and applies the shared rescale rule (src/quant/rescale_rule.h) exactly as the host would. */
#include "segment.h"

#include "hvx_eltwise.h"
#include "hvx_layout.h"
#include "hvx_pool.h"
#include "hvx_requant.h"
#include "quant/rescale_rule.h"
#include "region.h"
#include "subgraph.h"

typedef struct seg_slot {
  uint32_t valid, n_tensors, n_nodes;
  mh_wire_seg_tensor t[MH_WIRE_SEG_TENSORS];
  mh_wire_seg_node nd[MH_WIRE_SEG_NODES];
} seg_slot;

static seg_slot segs[MH_WIRE_SEG_SLOTS];

#define NONE MH_WIRE_SEG_NONE

/* Tensor i of s exists (i may be NONE only when `optional`) and holds at least `bytes`. */
static int has(const seg_slot *s, uint32_t i, uint64_t bytes, int optional) {
  if (i == NONE) return optional;
  return i < s->n_tensors && s->t[i].bytes >= bytes;
}

static uint32_t check_node(const seg_slot *s, const mh_wire_seg_node *nd) {
  uint64_t n = nd->n, c = nd->c, h = nd->h, w = nd->w, all = n * c * h * w;
  if (!n || !c || !h || !w || n > 65536 || c > 65536 || h > 65536 || w > 65536 || all > (1u << 28)) return MH_WIRE_E_ARG;
  switch (nd->op) {
    case MH_SEG_PAD:
      if (nd->top + w > nd->q || nd->top + h > nd->p || !nd->ld) return MH_WIRE_E_ARG;
      if ((n - 1) * nd->p * nd->q + (h - 1 + nd->top) * (uint64_t)nd->q + nd->top + w > nd->ld) return MH_WIRE_E_ARG;
      return has(s, nd->in, all, 0) && has(s, nd->out, c * nd->ld, 0) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
    case MH_SEG_CONV_FWD:
    case MH_SEG_CONV_BWD_D: {
      const mh_wire_gemm_s8 *g = mh_sg_node(nd->sg, nd->op == MH_SEG_CONV_FWD ? 0 : 2);
      if (!g || g->m != c || g->epilogue || nd->w > nd->q || nd->h > nd->p ||
          (n - 1) * nd->p * nd->q + (h - 1) * (uint64_t)nd->q + w > g->n)
        return MH_WIRE_E_ARG;
      if (nd->op == MH_SEG_CONV_FWD && (!g->grid_w || g->grid_w != nd->q || g->grid_h != nd->p || g->grid_q != w ||
                                        g->grid_p != h || (nd->bias != NONE && !g->bias_off)))
        return MH_WIRE_E_ARG;
      return has(s, nd->in, 0, 0) && has(s, nd->in2, 4 * all, 0) && has(s, nd->out, all, 0) && has(s, nd->bias, 4 * c, 1)
                 ? MH_WIRE_OK
                 : MH_WIRE_E_BOUNDS;
    }
    case MH_SEG_CONV_BWD_W:
      if (!mh_sg_node(nd->sg, 1)) return MH_WIRE_E_ARG;
      return nd->bias == NONE || (has(s, nd->in, all, 0) && has(s, nd->bias, 4 * c, 0)) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
    case MH_SEG_RELU:
      return has(s, nd->in, all, 0) && has(s, nd->out, all, 0) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
    case MH_SEG_RELU_BWD:
      return has(s, nd->in, all, 0) && has(s, nd->in2, all, 0) && has(s, nd->out, all, 0) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
    case MH_SEG_POOL2:
    case MH_SEG_POOL2_BWD: {
      if (h < 2 || w < 2) return MH_WIRE_E_ARG;
      uint64_t half = n * c * (h / 2) * (w / 2);
      if (nd->op == MH_SEG_POOL2) return has(s, nd->in, all, 0) && has(s, nd->out, half, 0) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
      return has(s, nd->in, all, 0) && has(s, nd->in2, half, 0) && has(s, nd->out, all, 0) ? MH_WIRE_OK : MH_WIRE_E_BOUNDS;
    }
    default: return MH_WIRE_E_OP;
  }
}

uint32_t mh_seg_prepare(const mh_wire_seg_prepare *p, uint32_t *checked) {
  *checked = 0;
  if (p->id >= MH_WIRE_SEG_SLOTS || !p->n_nodes || p->n_nodes > MH_WIRE_SEG_NODES || !p->n_tensors ||
      p->n_tensors > MH_WIRE_SEG_TENSORS || (p->desc_off & 3u))
    return MH_WIRE_E_ARG;
  uint64_t bytes = (uint64_t)p->n_tensors * sizeof(mh_wire_seg_tensor) + (uint64_t)p->n_nodes * sizeof(mh_wire_seg_node);
  if (!mh_in_region(p->desc_off, bytes)) return MH_WIRE_E_BOUNDS;
  seg_slot *s = &segs[p->id];
  s->valid = 0;
  const mh_wire_seg_tensor *t = (const mh_wire_seg_tensor *)(mh_region + p->desc_off);
  for (uint32_t i = 0; i < p->n_tensors; i++) { /* copied: later changes in the region do not reach the cache */
    s->t[i] = t[i];
    if ((t[i].off & 127u) || !t[i].bytes) return MH_WIRE_E_ARG;
    if (!mh_in_region(t[i].off, t[i].bytes)) return MH_WIRE_E_BOUNDS;
  }
  s->n_tensors = p->n_tensors;
  const mh_wire_seg_node *nd = (const mh_wire_seg_node *)(t + p->n_tensors);
  for (uint32_t i = 0; i < p->n_nodes; i++) {
    s->nd[i] = nd[i];
    uint32_t st = check_node(s, &s->nd[i]);
    if (st != MH_WIRE_OK) return st;
    ++*checked;
  }
  s->n_nodes = p->n_nodes, s->valid = 1;
  return MH_WIRE_OK;
}

static void *at(const seg_slot *s, uint32_t i) { return mh_region + s->t[i].off; }
static const int8_t *region_end(void) { return (const int8_t *)(mh_region + mh_region_bytes); }

/* A GEMM node's rescale history as the run table holds it (shift, have, since_exact). */
static mh_rescale_state rs_of(const int32_t *rs) {
  mh_rescale_state st = {rs[0], rs[1], rs[2]};
  return st;
}
static void rs_put(int32_t *rs, const mh_rescale_state *st) { rs[0] = st->shift, rs[1] = st->have, rs[2] = st->since_exact; }

/* y = x rescaled by the rule with history rs: the shift applied to *shift, what the rule did to *events. */
static uint32_t rule_requant(mh_vtcm *v, const int32_t *x, uint32_t n, int8_t *y, int32_t *rs, int adaptive,
                             int *shift, int *events) {
  mh_rescale_state st = rs_of(rs);
  uint32_t mx = 0, sat = 0, r;
  if (mh_rule_needs_exact(&st, adaptive)) {
    mx = mh_hvx_max_abs_s32(x, n); /* the max pass */
    *shift = mh_q_niti_shift_for(mx), *events = MH_RULE_EXACT;
    mh_rule_after_exact(&st, *shift);
  } else {
    mh_vtcm_reset(v);
    if ((r = (uint32_t)mh_hvx_requant_s8(v, x, y, n, st.shift, 1, &mx, &sat))) return r;
    *shift = mh_rule_after_predicted(&st, mx, sat, n, events);
    if (!(*events & MH_RULE_REDO)) goto done;
  }
  mh_vtcm_reset(v);
  if ((r = (uint32_t)mh_hvx_requant_s8(v, x, y, n, *shift, 1, &mx, &sat))) return r;
done:
  rs_put(rs, &st);
  return MH_WIRE_OK;
}

/* Node `gemm` of the convolution's subgraph with an int32 result: the bias (when given) added on
 * the grid, the valid positions gathered to NCHW in the node's scratch (in2), then the rule over
 * them into its output. */
static uint32_t conv_int32_rule(mh_vtcm *v, const seg_slot *s, const mh_wire_seg_node *nd, uint32_t gemm,
                                const int32_t *bias, int32_t *rs, int adaptive, int *shift, int *events, uint32_t *ch,
                                uint32_t *packed) {
  const mh_wire_gemm_s8 *g = mh_sg_node(nd->sg, gemm);
  uint32_t mx = 0, sat = 0, r;
  if ((r = mh_sg_run_node(v, nd->sg, gemm, 0, 0, 0, ch, &mx, &sat, packed))) return r;
  int32_t *y = (int32_t *)(mh_region + g->c_off), *big = at(s, nd->in2);
  if (bias) mh_hvx_add_rows_s32(y, g->m, g->n, g->ldc, bias);
  mh_hvx_grid_to_nchw(y, g->ldc, nd->p, nd->q, nd->n, nd->c, nd->h, nd->w, 4, big, region_end());
  return rule_requant(v, big, nd->n * nd->c * nd->h * nd->w, at(s, nd->out), rs, adaptive, shift, events);
}

/* What GEMM node k did, for the host's counters; its K chunks when it had to split. */
static void record(mh_wire_seg_table *tb, uint32_t k, int shift, int events, uint32_t n_out, uint32_t ch,
                   uint32_t *chunks) {
  tb->res[k][0] = (uint32_t)shift, tb->res[k][1] = (uint32_t)events, tb->res[k][2] = n_out, tb->res[k][3] = ch;
  *chunks += ch > 1 ? ch : 0;
}

static uint32_t conv_fwd(mh_vtcm *v, const seg_slot *s, const mh_wire_seg_node *nd, uint32_t k, mh_wire_seg_table *tb,
                         int adaptive, uint32_t *chunks, uint32_t *packed) {
  const mh_wire_gemm_s8 *g = mh_sg_node(nd->sg, 0);
  int e_acc = tb->e[nd->in] + tb->ew[k][0], shift = 0, events = 0;
  uint32_t n_out = nd->n * nd->c * nd->h * nd->w, mx = 0, sat = 0, ch = 0, r;
  int32_t *bias = g->bias_off ? (int32_t *)(mh_region + g->bias_off) : 0;
  if (bias) { /* the channel biases at the accumulator's exponent */
    const int32_t *raw = nd->bias != NONE ? at(s, nd->bias) : 0;
    for (uint32_t o = 0; o < nd->c; o++) bias[o] = raw ? mh_q_align32(raw[o], tb->ew[k][1] - e_acc) : 0;
  }
  mh_rescale_state st = rs_of(tb->rs[k]);
  if (mh_rule_needs_exact(&st, adaptive) || !mh_wire_fused_fits(g->m, g->k)) {
    if ((r = conv_int32_rule(v, s, nd, 0, bias, tb->rs[k], adaptive, &shift, &events, &ch, packed))) return r;
  } else {
    /* the requantise epilogue fused at the predicted shift; the int32 sums never leave VTCM */
    if ((r = mh_sg_run_node(v, nd->sg, 0, 1, st.shift, 1, &ch, &mx, &sat, packed))) return r;
    shift = mh_rule_after_predicted(&st, mx, sat, n_out, &events);
    if ((events & MH_RULE_REDO) && (r = mh_sg_run_node(v, nd->sg, 0, 1, shift, 1, &ch, &mx, &sat, packed))) return r;
    rs_put(tb->rs[k], &st);
    mh_hvx_grid_to_nchw(mh_region + g->c_off, g->ldc, nd->p, nd->q, nd->n, nd->c, nd->h, nd->w, 1, at(s, nd->out),
                        region_end());
  }
  tb->e[nd->out] = e_acc + shift;
  record(tb, k, shift, events, n_out, ch, chunks);
  return MH_WIRE_OK;
}

static uint32_t conv_bwd_d(mh_vtcm *v, const seg_slot *s, const mh_wire_seg_node *nd, uint32_t k,
                           mh_wire_seg_table *tb, int adaptive, uint32_t *chunks, uint32_t *packed) {
  int shift = 0, events = 0;
  uint32_t ch = 0, r;
  if ((r = conv_int32_rule(v, s, nd, 2, 0, tb->rs[k], adaptive, &shift, &events, &ch, packed))) return r;
  tb->e[nd->out] = tb->e[nd->in] + tb->ew[k][0] + shift;
  record(tb, k, shift, events, nd->n * nd->c * nd->h * nd->w, ch, chunks);
  return MH_WIRE_OK;
}

uint32_t mh_seg_run(mh_vtcm *v, const mh_wire_seg_run *r, uint32_t *chunks, uint32_t *packed_bytes) {
  *chunks = 0, *packed_bytes = 0;
  if (r->id >= MH_WIRE_SEG_SLOTS || !segs[r->id].valid) return MH_WIRE_E_SUBGRAPH;
  if (r->adaptive > 1 || (r->table_off & 3u)) return MH_WIRE_E_ARG;
  if (!mh_in_region(r->table_off, sizeof(mh_wire_seg_table))) return MH_WIRE_E_BOUNDS;
  const seg_slot *s = &segs[r->id];
  mh_wire_seg_table *tb = (mh_wire_seg_table *)(mh_region + r->table_off);
  for (uint32_t i = 0; i < 64; i++)
    if (r->sg_changed[i >> 5] & (1u << (i & 31))) mh_sg_weights_changed(i);
  const int8_t *end = region_end();
  int adaptive = (int)r->adaptive;
  for (uint32_t k = 0; k < s->n_nodes; k++) {
    const mh_wire_seg_node *nd = &s->nd[k];
    uint32_t st = MH_WIRE_OK, all = nd->n * nd->c * nd->h * nd->w, planes = nd->n * nd->c, ch = 0, mx, sat;
    mh_vtcm_reset(v);
    switch (nd->op) {
      case MH_SEG_PAD:
        mh_hvx_pad_s8(at(s, nd->in), nd->n, nd->c, nd->h, nd->w, at(s, nd->out), nd->p, nd->q, nd->top, nd->ld, end);
        break;
      case MH_SEG_CONV_FWD: st = conv_fwd(v, s, nd, k, tb, adaptive, chunks, packed_bytes); break;
      case MH_SEG_CONV_BWD_D: st = conv_bwd_d(v, s, nd, k, tb, adaptive, chunks, packed_bytes); break;
      case MH_SEG_CONV_BWD_W:
        st = mh_sg_run_node(v, nd->sg, 1, 0, 0, 0, &ch, &mx, &sat, packed_bytes);
        *chunks += ch > 1 ? ch : 0;
        if (st == MH_WIRE_OK && nd->bias != NONE)
          mh_hvx_channel_sums_s8(at(s, nd->in), nd->n, nd->c, nd->h * nd->w, at(s, nd->bias), end);
        break;
      case MH_SEG_RELU: st = (uint32_t)mh_hvx_relu_s8(v, at(s, nd->in), at(s, nd->out), all); break;
      case MH_SEG_RELU_BWD: st = (uint32_t)mh_hvx_relu_bwd_s8(v, at(s, nd->in), at(s, nd->in2), at(s, nd->out), all); break;
      case MH_SEG_POOL2: st = (uint32_t)mh_hvx_maxpool2_s8(v, at(s, nd->in), at(s, nd->out), planes, nd->h, nd->w, end); break;
      case MH_SEG_POOL2_BWD:
        st = (uint32_t)mh_hvx_maxpool2_bwd_s8(v, at(s, nd->in), at(s, nd->in2), at(s, nd->out), planes, nd->h, nd->w, end);
        break;
      default: st = MH_WIRE_E_OP;
    }
    if (st != MH_WIRE_OK) return st;
    /* element-wise and layout nodes pass their input's exponent on (the 2x2 pool's error needs no shift) */
    if (nd->op != MH_SEG_CONV_FWD && nd->op != MH_SEG_CONV_BWD_D && nd->op != MH_SEG_CONV_BWD_W)
      tb->e[nd->out] = tb->e[nd->op == MH_SEG_RELU_BWD || nd->op == MH_SEG_POOL2_BWD ? nd->in2 : nd->in];
  }
  return MH_WIRE_OK;
}
