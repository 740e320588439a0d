/* What the rest of the library uses of the DSP backend: a session (session.h) and the operations
 * offloaded to it, with counters of the traffic. */
#ifndef MH_BACKEND_DSP_DSP_H
#define MH_BACKEND_DSP_DSP_H

#include "backend/cpu/kernels.h"
#include "backend/dsp/session.h"
#include "quant/qformat.h"

/* An emulated large GEMM can take a while; a DSP that answers nothing for this long is stopped. */
#define MH_DSP_CALL_TIMEOUT_MS 300000

typedef struct mh_dsp_counts {
  long gemms;            /* GEMMs run on the DSP */
  long cpu_fallbacks;    /* DSP work that ran on the CPU instead (too big, or the DSP failed) */
  int dsp_lost;          /* the DSP went away during training (warned once) */
  double macs;           /* int8 MACs done on the DSP */
  double bytes_to_dsp, bytes_from_dsp; /* copied into / out of the shared region */
  long split_parts;      /* messages of GEMMs split along K to fit the shared region */
  long vtcm_chunks;      /* K chunks of GEMMs the DSP split to fit VTCM */
  long fused_gemms;      /* GEMMs with the requantise epilogue fused (adaptive rescaling on the DSP) */
  double int32_bytes_kept; /* int32 results those kept on the DSP instead of sending back */
  /* subgraphs (subgraph.h) */
  long sg_runs;          /* subgraph runs: one message each */
  long sg_prepares;      /* preparations: a descriptor sent and checked, the memory plan made */
  long sg_nodes_checked; /* nodes the DSP validated while preparing */
  double weight_bytes;   /* weights copied into the region (only when they changed, with reuse) */
  double packed_bytes;   /* weight bytes the DSP packed into the kernel's layout */
  long cosched_runs;     /* subgraph runs the CPU worked beside (co-scheduled backward GEMMs) */
  long eltwise_ops;      /* integer ReLU, max-pool and add passes run on the DSP */
  long seg_runs;         /* segment program runs: a chain of layers, one message each */
  long seg_prepares;     /* segment programs sent and checked */
  double pad_bytes;      /* grid bytes the segments' pads (the grid form's im2col) wrote on the DSP */
} mh_dsp_counts;

/* C (=|+=) op(A) op(B) on the DSP, equal to mh_gemm_s8 bit for bit. On an error (region too
 * small, DSP gone) C is untouched and the caller runs the GEMM on the CPU instead. */
int mh_dsp_gemm_s8(mh_dsp *d, const mh_gemm_s8_args *g, mh_dsp_counts *cnt);

/* The GEMM with the requantise epilogue fused on the DSP: y (m x n int8, row stride ldy) =
 * sat8(round((op(A) op(B) + bias[row]) / 2^shift)), the sum saturated to +-INT32_MAX first, with
 * max|sum| and the saturation count; the int32 result never comes back to the host. Equal to
 * mh_gemm_s8 + mh_q_add_sat32 + requant_s8. K must fit one VTCM chunk (about 7000). */
int mh_dsp_gemm_s8_requant(mh_dsp *d, const mh_gemm_s8_args *g, const int32_t *bias, int shift, mh_round_mode mode,
                           int8_t *y, int ldy, mh_requant_stats *st);

/* y = sat8(round(x / 2^shift)) on the DSP (nearest or pseudo-stochastic), with max|x| and the
 * saturation count, equal to the kernel table's requant_s8. */
int mh_dsp_requant_s8(mh_dsp *d, const int32_t *x, long n, int8_t *y, int shift, mh_round_mode mode,
                      mh_requant_stats *st);

/* The integer element-wise ops (eltwise_dsp.c), each one message, equal to src/ops/int_simple.c:
 * ReLU y = max(x, 0) and its backward dx = y > 0 ? dy : 0; the residual add of a * 2^ea and
 * b * 2^eb in int8 (the result's exponent to *ey); 2x2 stride-2 max-pool of `planes` h x w planes
 * (dy NULL: forward, out planes x h/2 x w/2) and its backward (out: dx, planes x h x w, each
 * window's error at its first maximum). */
int mh_dsp_relu_s8(mh_dsp *d, const int8_t *x, int8_t *y, long n, mh_dsp_counts *cnt);
int mh_dsp_relu_bwd_s8(mh_dsp *d, const int8_t *y, const int8_t *dy, int8_t *dx, long n, mh_dsp_counts *cnt);
int mh_dsp_add_s8(mh_dsp *d, const int8_t *a, int ea, const int8_t *b, int eb, int8_t *y, long n, int *ey,
                  mh_dsp_counts *cnt);
int mh_dsp_maxpool2_s8(mh_dsp *d, const int8_t *x, const int8_t *dy, int8_t *out, long planes, int h, int w,
                       mh_dsp_counts *cnt);

#endif
