/* The subgraph cache (see subgraph.h): prepare checks every node once, run trusts what was checked
 * and takes only the per-run values (which nodes, whether the weights changed, the epilogue). */
#include "subgraph.h"

#include "gemm_msg.h"
#include "hvx_gemm.h"
#include "region.h"

typedef struct sg_slot {
  uint32_t valid, n_nodes;
  uint32_t packed;      /* bit i: node i's constant A is packed for the current weights */
  mh_wire_sg_node nodes[MH_WIRE_SG_NODES];
} sg_slot;

static sg_slot cache[MH_WIRE_SG_SLOTS];

uint32_t mh_sg_prepare(const mh_wire_sg_prepare *p, uint32_t *checked) {
  *checked = 0;
  if (p->id >= MH_WIRE_SG_SLOTS || !p->n_nodes || p->n_nodes > MH_WIRE_SG_NODES || (p->desc_off & 3u))
    return MH_WIRE_E_ARG;
  if (!mh_in_region(p->desc_off, (uint64_t)p->n_nodes * sizeof(mh_wire_sg_node))) return MH_WIRE_E_BOUNDS;
  sg_slot *s = &cache[p->id];
  s->valid = 0, s->packed = 0;
  const mh_wire_sg_node *src = (const mh_wire_sg_node *)(mh_region + p->desc_off);
  for (uint32_t i = 0; i < p->n_nodes; i++) {
    mh_wire_sg_node nd = src[i]; /* copied: later changes in the region do not reach the cache */
    if (nd.op != MH_WIRE_GEMM_S8 || nd.a_const > 1 || nd.may_fuse > 1 || nd.gemm.epilogue != 0) return MH_WIRE_E_ARG;
    if (nd.a_const != (nd.gemm.apack_off != 0)) return MH_WIRE_E_ARG;
    uint32_t st = mh_gemm_msg_check(&nd.gemm);
    if (st == MH_WIRE_OK && nd.may_fuse) { /* the fused form must be valid too */
      mh_wire_gemm_s8 f = nd.gemm;
      f.epilogue = 1;
      st = mh_gemm_msg_check(&f);
    }
    if (st != MH_WIRE_OK) return st;
    s->nodes[i] = nd;
    ++*checked;
  }
  s->n_nodes = p->n_nodes, s->valid = 1;
  return MH_WIRE_OK;
}

const mh_wire_gemm_s8 *mh_sg_node(uint32_t id, uint32_t i) {
  return id < MH_WIRE_SG_SLOTS && cache[id].valid && i < cache[id].n_nodes ? &cache[id].nodes[i].gemm : 0;
}

void mh_sg_weights_changed(uint32_t id) {
  if (id < MH_WIRE_SG_SLOTS) cache[id].packed = 0;
}

uint32_t mh_sg_run_node(mh_vtcm *v, uint32_t id, uint32_t i, int epilogue, int shift, int mode, uint32_t *chunks,
                        uint32_t *max_abs, uint32_t *saturated, uint32_t *packed_bytes) {
  if (!mh_sg_node(id, i)) return MH_WIRE_E_SUBGRAPH;
  sg_slot *s = &cache[id];
  mh_wire_gemm_s8 g = s->nodes[i].gemm;
  if (epilogue && s->nodes[i].may_fuse) g.epilogue = 1, g.shift = (uint32_t)shift, g.mode = (uint32_t)mode;
  const uint8_t *apack = 0;
  if (s->nodes[i].a_const) {
    uint8_t *dst = mh_region + g.apack_off;
    if (!(s->packed & (1u << i))) {
      mh_hvx_pack_a((int)g.m, (int)g.k, (const int8_t *)(mh_region + g.a_off), (int)g.lda,
                    (g.flags & MH_WIRE_GEMM_TRANS_A) != 0, dst);
      s->packed |= 1u << i;
      *packed_bytes += g.m * g.k;
    }
    apack = dst;
  }
  mh_vtcm_reset(v);
  return mh_gemm_msg_run(v, &g, apack, chunks, max_abs, saturated);
}

uint32_t mh_sg_run(mh_vtcm *v, const mh_wire_sg_run *r, uint32_t *chunks, uint32_t *max_abs, uint32_t *saturated,
                   uint32_t *packed_bytes) {
  *chunks = 0, *max_abs = 0, *saturated = 0, *packed_bytes = 0;
  if (r->id >= MH_WIRE_SG_SLOTS || !cache[r->id].valid) return MH_WIRE_E_SUBGRAPH;
  sg_slot *s = &cache[r->id];
  if (!r->node_mask || (r->node_mask >> s->n_nodes) || r->weights_changed > 1 || r->epilogue > 1 ||
      (r->epilogue && (r->shift > 31 || r->mode > 1)))
    return MH_WIRE_E_ARG;
  if (r->weights_changed) s->packed = 0;
  for (uint32_t i = 0; i < s->n_nodes; i++) {
    if (!(r->node_mask & (1u << i))) continue;
    uint32_t ch = 0, mx = 0, sat = 0;
    uint32_t st = mh_sg_run_node(v, r->id, i, (int)r->epilogue, (int)r->shift, (int)r->mode, &ch, &mx, &sat, packed_bytes);
    if (st != MH_WIRE_OK) return st;
    *chunks += ch > 1 ? ch : 0, *saturated += sat; /* chunks of nodes that had to split */
    *max_abs = mx > *max_abs ? mx : *max_abs;
  }
  return MH_WIRE_OK;
}

uint32_t mh_sg_release(uint32_t id) {
  if (id == MH_WIRE_SG_ALL) {
    for (uint32_t i = 0; i < MH_WIRE_SG_SLOTS; i++) cache[i].valid = 0;
    return MH_WIRE_OK;
  }
  if (id >= MH_WIRE_SG_SLOTS) return MH_WIRE_E_ARG;
  cache[id].valid = 0;
  return MH_WIRE_OK;
}
