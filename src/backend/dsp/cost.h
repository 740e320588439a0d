/* The DSP's work for a node's passes in the terms its kernels spend packets on (micro-kernel steps,
 * panels packed, vectors stored, elements), and the packets that work executes, calibrated from
 * counts of the program's executed packets (scripts/dsp_calibrate.py). */
#ifndef MH_BACKEND_DSP_COST_H
#define MH_BACKEND_DSP_COST_H

#include "graph/graph.h"

enum {
  MH_DSPW_TILES,    /* GEMM micro-kernel steps: 4 rows x 128 columns x 4 k */
  MH_DSPW_B_ROWS,   /* 128-column x 4-k panels of B packed from a row table (padded images) */
  MH_DSPW_B_COLS,   /* ... from B stored k x n (columns contiguous) */
  MH_DSPW_B_TRANS,  /* 32-column x 32-quad blocks of B stored n x k (read transposed), transposed as words */
  MH_DSPW_OUT_VECS, /* 32-column output vectors of C stored as int32 */
  MH_DSPW_FUSED_VECS, /* ... requantised by the fused epilogue (int8) */
  MH_DSPW_A_BYTES,  /* bytes of A stored row by row (read as words, in place or copied by vector) */
  MH_DSPW_A_TRANS,  /* bytes of A stored transposed (gathered byte by byte) */
  MH_DSPW_A_ROWS,   /* rows of A (row sums, per-row setup) */
  MH_DSPW_GRID,     /* panels whose fused epilogue masks a padded grid's columns */
  MH_DSPW_GEMMS,    /* GEMMs run */
  MH_DSPW_RELU,     /* int8 elements through ReLU forward or backward */
  MH_DSPW_POOL_FWD, /* vectors of the 2x2 max-pool forward (window rows of even planes up to 32 wide
                       packed into one, or a wide row's 64 windows) */
  MH_DSPW_POOL_BWD, /* ... of its backward */
  MH_DSPW_ADD,      /* elements of the residual add */
  MH_DSPW_MESSAGES, /* subgraph runs */
  MH_DSPW_ELTWISE,  /* element-wise calls (one message each) */
  MH_DSPW_PAD_VECS, /* segments: vectors spread into a padded grid (the grid form's im2col: as many
                       grid rows as fit one vector each) */
  MH_DSPW_ZERO_VECS, /* ... 128-byte vectors of the grid's size (its zeros) */
  MH_DSPW_NCHW_VECS, /* ... vectors of a grid result squeezed back to NCHW (as many rows as fit) */
  MH_DSPW_REQUANT,  /* ... int32 elements requantised on their own pass (input gradients) */
  MH_DSPW_SUMS,     /* ... int8 elements summed per channel (bias gradients) */
  MH_DSPW_SEGMENTS, /* ... segment runs */
  MH_DSPW_COUNT
};

extern const char *const mh_dsp_work_names[MH_DSPW_COUNT];

/* Adds to w the DSP's work for `passes` (MH_PASS_* bits) of node `node` at this batch, as the DSP
 * backend runs them (the same subgraph descriptors). Passes the DSP does not run add nothing. */
void mh_dsp_node_work(const mh_graph *g, int node, unsigned passes, int precision, int batch, double *w);

/* Adds to w the DSP's work for one pass of a segment (segment.c): nodes first..last, their forward
 * (bwd 0) or their backward (every pass: the weight gradients, the input gradients but the data's). */
void mh_dsp_segment_work(const mh_graph *g, int first, int last, int bwd, int batch, double *w);

/* The packets that work executes on the DSP program (one HVX context), by the calibrated model. */
double mh_dsp_work_packets(const double *w);

#endif
