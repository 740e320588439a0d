/* DSP subgraphs on the host side: a few GEMM nodes over a small tensor table, laid out in the
 * shared region once (the memory plan), prepared on the DSP once (checked, cached, weights packed
 * once per weights version) and then run with one short message. With reuse off, every run
 * rebuilds: the descriptor is sent and checked again, the weights copied and packed again. */
#ifndef MH_BACKEND_DSP_SUBGRAPH_H
#define MH_BACKEND_DSP_SUBGRAPH_H

#include "backend/dsp/dsp.h"

#define MH_DSP_SG_TENSORS 12

/* A tensor of the subgraph: its bytes, and whether it keeps its contents between runs (the
 * weights, their packed forms) or is per-run (inputs, outputs: these share space across subgraphs). */
typedef struct mh_dsp_sg_tensor {
  size_t bytes;
  int persistent;
} mh_dsp_sg_tensor;

/* One node: C (m x n) (=|+=) op(A) op(B), operands named by tensor index. a_const: A is a constant
 * tensor (packed once per version on the DSP); may_fuse: the requantise epilogue may be switched
 * on per run (C then receives int8 with row stride ldc; bias: a tensor of m int32 or -1).
 * b_rows: the tensor holding B's row table (uint32 offsets from B's start, one per stored row;
 * ldb unused), or 0 for a dense B (tensor 0, the weights, is never a table). grid_*: the fused
 * epilogue measures only the valid columns of a padded grid (grid_w 0: all columns). a_rows: the
 * same for A (not transposed): the tensor holding its row table, or 0. */
typedef struct mh_dsp_sg_node {
  int m, n, k;
  int a, lda, trans_a;
  int b, ldb, trans_b;
  int c, ldc;
  int bias;
  int a_const, may_fuse;
  int b_rows;
  int grid_w, grid_h, grid_q, grid_p;
  int a_rows;
  int b_at; /* B starts this many bytes into its tensor */
} mh_dsp_sg_node;

typedef struct mh_dsp_sg_desc {
  int n_tensors, n_nodes;
  mh_dsp_sg_tensor t[MH_DSP_SG_TENSORS];
  mh_dsp_sg_node nodes[MH_WIRE_SG_NODES];
  int weights;  /* the constant tensor the layer's weights go to */
  int weights2; /* a second constant tensor derived from them (flipped weights), or 0 */
  int keep_all; /* every tensor persistent: a segment's, whose activations stay between runs */
  int dw_t;     /* a convolution's weight gradient comes out transposed (kk x O: the grid form's) */
  int g_in_dyp; /* the grid form with K-1-D = D: the weight gradient reads the error on its grid inside
                   the padded error (DYP), so only that is written */
} mh_dsp_sg_desc;

typedef struct mh_dsp_sg {
  int key;          /* the caller's name for it (a graph node), unique per session */
  int id;           /* the DSP cache slot */
  int prepared;     /* prepared on the DSP for `desc` */
  int weights_new;  /* the weight tensor changed since the DSP last saw it */
  unsigned run_mask; /* the run in flight */
  int run_epilogue;
  mh_dsp_sg_desc desc;
  uint32_t off[MH_DSP_SG_TENSORS];
  uint32_t apack_off[MH_WIRE_SG_NODES];
  uint32_t persist_base; /* where its persistent tensors start (0: not laid out yet) */
  size_t persist_bytes;  /* ... and how many bytes they take */
  int tables_written;    /* the caller wrote its persistent tables since the last layout */
} mh_dsp_sg;

/* The subgraph named key for desc: found, or laid out and prepared (again, when desc changed or
 * reuse is off). NULL with an error when the region or the DSP's cache has no room, or the DSP
 * failed; the caller then runs the work elsewhere. */
mh_dsp_sg *mh_dsp_sg_get(mh_dsp *d, int key, const mh_dsp_sg_desc *desc, mh_dsp_counts *cnt);

/* Where tensor t of the subgraph lives in the region (write inputs there, read outputs). */
static inline void *mh_dsp_sg_at(mh_dsp *d, const mh_dsp_sg *s, int t) { return mh_dsp_at(d, s->off[t]); }

/* Puts the weights into the weight tensor: copied (and marked for repacking) only when they differ
 * from what the region holds, or always without reuse. */
void mh_dsp_sg_set_weights(mh_dsp *d, mh_dsp_sg *s, const void *w, size_t bytes, mh_dsp_counts *cnt);
/* The same for any constant tensor t (the second weights tensor). */
void mh_dsp_sg_set_const(mh_dsp *d, mh_dsp_sg *s, int t, const void *w, size_t bytes, mh_dsp_counts *cnt);

/* Runs the masked nodes in one message; epilogue: fuse requantisation at shift/mode into the
 * may_fuse nodes (their max|acc| and saturations come back in st, which may be NULL). */
int mh_dsp_sg_run(mh_dsp *d, mh_dsp_sg *s, unsigned mask, int epilogue, int shift, mh_round_mode mode,
                  mh_requant_stats *st, mh_dsp_counts *cnt);
/* The run in two halves, so the CPU can do independent work while the DSP runs: between them the
 * caller touches neither the session nor this subgraph's tensors. */
int mh_dsp_sg_post(mh_dsp *d, mh_dsp_sg *s, unsigned mask, int epilogue, int shift, mh_round_mode mode,
                   mh_dsp_counts *cnt);
int mh_dsp_sg_wait(mh_dsp *d, mh_dsp_sg *s, mh_requant_stats *st, mh_dsp_counts *cnt);

#endif
