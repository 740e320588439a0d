/* DSP subgraphs (see subgraph.h): the region's memory plan, preparation, weights and runs. */
#include "backend/dsp/subgraph.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static uint64_t al128(uint64_t b) { return (b + 127) / 128 * 128; }

/* Field by field: the structs have padding, which memcmp would read. */
static int same_desc(const mh_dsp_sg_desc *a, const mh_dsp_sg_desc *b) {
  if (a->n_tensors != b->n_tensors || a->n_nodes != b->n_nodes || a->weights != b->weights || a->weights2 != b->weights2 ||
      a->keep_all != b->keep_all || a->dw_t != b->dw_t || a->g_in_dyp != b->g_in_dyp)
    return 0;
  for (int i = 0; i < a->n_tensors; i++)
    if (a->t[i].bytes != b->t[i].bytes || a->t[i].persistent != b->t[i].persistent) return 0;
  return memcmp(a->nodes, b->nodes, sizeof a->nodes[0] * (size_t)a->n_nodes) == 0; /* ints only: no padding */
}

/* Lays out s for desc: persistent tensors (and packed weights) once, above what earlier subgraphs
 * hold; per-run tensors from the region's top down, shared with every other subgraph. */
static int plan(mh_dsp *d, mh_dsp_sg *s, const mh_dsp_sg_desc *desc) {
  uint64_t persist = 0, top = d->region_bytes;
  for (int i = 0; i < desc->n_tensors; i++)
    if (desc->t[i].persistent || desc->keep_all) persist += al128(desc->t[i].bytes);
  for (int i = 0; i < desc->n_nodes; i++)
    if (desc->nodes[i].a_const) persist += al128(mh_wire_apack_bytes((uint32_t)desc->nodes[i].m, (uint32_t)desc->nodes[i].k));
  if (!s->persist_base || s->persist_bytes != persist) s->persist_base = d->persist_top, s->tables_written = 0;
  uint64_t p = s->persist_base;
  for (int i = 0; i < desc->n_tensors; i++) {
    if (desc->t[i].persistent || desc->keep_all) s->off[i] = (uint32_t)p, p += al128(desc->t[i].bytes);
    else top = (top - desc->t[i].bytes) / 128 * 128, s->off[i] = (uint32_t)top;
  }
  for (int i = 0; i < desc->n_nodes; i++) {
    s->apack_off[i] = 0;
    if (desc->nodes[i].a_const)
      s->apack_off[i] = (uint32_t)p, p += al128(mh_wire_apack_bytes((uint32_t)desc->nodes[i].m, (uint32_t)desc->nodes[i].k));
  }
  uint64_t desc_end = (p > d->persist_top ? p : d->persist_top) + al128(sizeof(mh_wire_sg_node) * MH_WIRE_SG_NODES);
  uint32_t low = top < d->transient_low ? (uint32_t)top : d->transient_low;
  if (desc_end > low)
    return mh__error(MH_ERR_UNSUPPORTED, "DSP: subgraph %d needs %llu persistent and %llu per-run bytes; the %zu-byte "
                     "shared region is full", s->key, (unsigned long long)persist,
                     (unsigned long long)(d->region_bytes - top), d->region_bytes);
  if (p > d->persist_top) d->persist_top = (uint32_t)p;
  d->transient_low = low;
  s->persist_bytes = persist;
  return MH_OK;
}

static int prepare(mh_dsp *d, mh_dsp_sg *s, const mh_dsp_sg_desc *desc, mh_dsp_counts *cnt) {
  s->prepared = 0;
  MH_TRY(plan(d, s, desc));
  s->desc = *desc;
  /* the descriptor goes just above the persistent area (read once, by this message) */
  uint32_t desc_off = (uint32_t)al128(d->persist_top);
  mh_wire_sg_node *w = (mh_wire_sg_node *)mh_dsp_at(d, desc_off);
  memset(w, 0, sizeof *w * (size_t)desc->n_nodes);
  for (int i = 0; i < desc->n_nodes; i++) {
    const mh_dsp_sg_node *n = &desc->nodes[i];
    w[i].op = MH_WIRE_GEMM_S8, w[i].a_const = (uint32_t)n->a_const, w[i].may_fuse = (uint32_t)n->may_fuse;
    mh_wire_gemm_s8 g = {(uint32_t)n->m, (uint32_t)n->n, (uint32_t)n->k, s->off[n->a], (uint32_t)n->lda,
                         s->off[n->b] + (uint32_t)n->b_at,
                         (uint32_t)n->ldb, s->off[n->c], (uint32_t)n->ldc, 0, 0, 0, 0,
                         n->bias >= 0 ? s->off[n->bias] : 0u,
                         (n->trans_a ? MH_WIRE_GEMM_TRANS_A : 0u) | (n->trans_b ? MH_WIRE_GEMM_TRANS_B : 0u) |
                             (n->b_rows ? MH_WIRE_GEMM_B_ROWS : 0u) | (n->a_rows ? MH_WIRE_GEMM_A_ROWS : 0u),
                         s->apack_off[i], n->b_rows ? s->off[n->b_rows] : 0u, (uint32_t)n->grid_w, (uint32_t)n->grid_h,
                         (uint32_t)n->grid_q, (uint32_t)n->grid_p, n->a_rows ? s->off[n->a_rows] : 0u, {0, 0}};
    w[i].gemm = g;
  }
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_SG_PREPARE;
  mh_wire_sg_prepare p = {(uint32_t)s->id, desc_off, (uint32_t)desc->n_nodes};
  msg->args.sg_prepare = p;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  s->prepared = 1, s->weights_new = 1;
  if (cnt) {
    cnt->sg_prepares++;
    cnt->sg_nodes_checked += msg->checked_nodes;
    cnt->bytes_to_dsp += sizeof(mh_wire_sg_node) * (double)desc->n_nodes + sizeof(mh_wire_msg);
  }
  return MH_OK;
}

mh_dsp_sg *mh_dsp_sg_get(mh_dsp *d, int key, const mh_dsp_sg_desc *desc, mh_dsp_counts *cnt) {
  if (!d || !d->alive) {
    mh__error(MH_ERR_BACKEND, "DSP: no session");
    return NULL;
  }
  mh_dsp_sg *s = NULL;
  for (int i = 0; i < d->n_sgs && !s; i++)
    if (d->sgs[i].key == key) s = &d->sgs[i];
  if (!s) {
    if (d->n_sgs >= (int)MH_WIRE_SG_SLOTS) {
      mh__error(MH_ERR_UNSUPPORTED, "DSP: all %u subgraph slots are in use", MH_WIRE_SG_SLOTS);
      return NULL;
    }
    if (!d->sgs && !(d->sgs = calloc(MH_WIRE_SG_SLOTS, sizeof *d->sgs))) {
      mh__error(MH_ERR_NOMEM, "DSP: out of memory");
      return NULL;
    }
    s = &d->sgs[d->n_sgs];
    memset(s, 0, sizeof *s);
    s->key = key, s->id = d->n_sgs++;
  }
  if (s->prepared && same_desc(&s->desc, desc)) return s;
  if (!d->reuse) { /* laid out only: every run prepares it */
    if (plan(d, s, desc) != MH_OK) return NULL;
    s->desc = *desc;
    return s;
  }
  return prepare(d, s, desc, cnt) == MH_OK ? s : NULL;
}

void mh_dsp_sg_set_weights(mh_dsp *d, mh_dsp_sg *s, const void *w, size_t bytes, mh_dsp_counts *cnt) {
  mh_dsp_sg_set_const(d, s, s->desc.weights, w, bytes, cnt);
}

void mh_dsp_sg_set_const(mh_dsp *d, mh_dsp_sg *s, int t, const void *w, size_t bytes, mh_dsp_counts *cnt) {
  void *dst = mh_dsp_sg_at(d, s, t);
  if (d->reuse && !s->weights_new && memcmp(dst, w, bytes) == 0) return;
  memcpy(dst, w, bytes);
  s->weights_new = 1;
  if (cnt) cnt->bytes_to_dsp += (double)bytes, cnt->weight_bytes += (double)bytes;
}

int mh_dsp_sg_post(mh_dsp *d, mh_dsp_sg *s, unsigned mask, int epilogue, int shift, mh_round_mode mode,
                   mh_dsp_counts *cnt) {
  if (!d->reuse) MH_TRY(prepare(d, s, &s->desc, cnt)); /* the rebuild a graph without reuse pays per run */
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_SG_RUN;
  mh_wire_sg_run r = {(uint32_t)s->id, mask, (uint32_t)s->weights_new, (uint32_t)(epilogue != 0),
                      (uint32_t)(epilogue ? shift : 0), epilogue && mode == MH_ROUND_PSTO ? 1u : 0u};
  msg->args.sg_run = r;
  s->run_mask = mask, s->run_epilogue = epilogue != 0;
  int rc = mh_dsp_post(d);
  if (rc) s->prepared = 0;
  return rc;
}

int mh_dsp_sg_wait(mh_dsp *d, mh_dsp_sg *s, mh_requant_stats *st, mh_dsp_counts *cnt) {
  int rc = mh_dsp_wait(d, MH_DSP_CALL_TIMEOUT_MS);
  if (rc) {
    s->prepared = 0;
    return rc;
  }
  mh_wire_msg *msg = mh_dsp_msg(d);
  unsigned mask = s->run_mask;
  int epilogue = s->run_epilogue;
  s->weights_new = 0;
  if (st) st->max_abs = msg->max_abs, st->saturated = msg->saturated;
  if (cnt) {
    cnt->sg_runs++;
    cnt->packed_bytes += msg->packed_bytes;
    cnt->vtcm_chunks += msg->chunks;
    cnt->bytes_to_dsp += sizeof(mh_wire_msg);
    unsigned seen = 0; /* per-run operands the caller wrote, each counted once; results it reads */
    for (int i = 0; i < s->desc.n_nodes; i++)
      if (mask & (1u << i)) {
        const mh_dsp_sg_node *n = &s->desc.nodes[i];
        int fused = epilogue && n->may_fuse;
        cnt->gemms++;
        cnt->macs += (double)n->m * n->n * n->k;
        if (fused) cnt->fused_gemms++, cnt->int32_bytes_kept += 4.0 * n->m * n->n;
        if (fused && n->bias >= 0) cnt->bytes_to_dsp += 4.0 * n->m;
        int in[2] = {n->a, n->b};
        for (int j = 0; j < 2; j++)
          if (!s->desc.t[in[j]].persistent && !(seen & (1u << in[j])))
            seen |= 1u << in[j], cnt->bytes_to_dsp += (double)s->desc.t[in[j]].bytes;
        cnt->bytes_from_dsp += (double)n->m * n->n * (fused ? 1 : 4);
      }
  }
  return MH_OK;
}

int mh_dsp_sg_run(mh_dsp *d, mh_dsp_sg *s, unsigned mask, int epilogue, int shift, mh_round_mode mode,
                  mh_requant_stats *st, mh_dsp_counts *cnt) {
  MH_TRY(mh_dsp_sg_post(d, s, mask, epilogue, shift, mode, cnt));
  return mh_dsp_sg_wait(d, s, st, cnt);
}
