/* The wire format between the host and the DSP (DESIGN.md contract 5): one shared memory region
 * whose first page holds a header and the message slot, tensors after it. Fixed-width, padded
 * structs with static size checks; included by dsp/ and src/backend/dsp/ and by nothing else. */
#ifndef MH_DSP_WIRE_H
#define MH_DSP_WIRE_H

#include <stdint.h>

#define MH_WIRE_MAGIC 0x5053446du   /* "mDSP" little-endian */
#define MH_WIRE_VERSION 5u
#define MH_WIRE_PAGE 4096u          /* header + message slot; tensors start at this offset */
#define MH_WIRE_MSG_OFFSET 64u
#define MH_WIRE_VTCM_BYTES 262144u  /* Hexagon v66 VTCM budget the DSP side enforces */

/* Offset 0: written by the host before the DSP starts. */
typedef struct mh_wire_header {
  uint32_t magic, version;
  uint32_t region_bytes; /* the whole shared region, a multiple of MH_WIRE_PAGE */
  uint32_t reserved[13];
} mh_wire_header;

typedef enum mh_wire_op {
  MH_WIRE_HELLO = 1,   /* handshake: the DSP checks magic/version and maps the region */
  MH_WIRE_GEMM_S8 = 2, /* C (int32) (=|+=) A (int8, m x k) * B (int8, k x n), row-major */
  MH_WIRE_EXIT = 3,    /* the DSP replies and exits */
  MH_WIRE_REQUANT_S8 = 4, /* y (int8) = sat8(round(x (int32) / 2^shift)), with max|x| and the saturation count */
  MH_WIRE_RELU_S8 = 5,    /* y = max(x, 0) on int8 */
  MH_WIRE_RELU_BWD_S8 = 6, /* dx = y > 0 ? dy : 0 on int8 */
  MH_WIRE_MAXPOOL2_S8 = 7,     /* 2x2 stride-2 max-pool of int8 planes */
  MH_WIRE_MAXPOOL2_BWD_S8 = 8, /* its backward: each window's error to its first maximum */
  MH_WIRE_ADD_S8 = 9,          /* residual add of int8 tensors with exponent alignment */
  MH_WIRE_SG_PREPARE = 10,     /* validate and cache a subgraph (a list of GEMM nodes over fixed tensors) */
  MH_WIRE_SG_RUN = 11,         /* run some nodes of a cached subgraph: one short message */
  MH_WIRE_SG_RELEASE = 12,     /* forget a cached subgraph (id MH_WIRE_SG_ALL: every one) */
  MH_WIRE_SEG_PREPARE = 13,    /* validate and cache a segment program (a node list over a tensor table) */
  MH_WIRE_SEG_RUN = 14         /* run a cached segment program: one message for a chain of layers */
} mh_wire_op;

typedef enum mh_wire_status {
  MH_WIRE_OK = 0,
  MH_WIRE_E_OP = 1,      /* unknown operation */
  MH_WIRE_E_BOUNDS = 2,  /* an offset or size outside the shared region */
  MH_WIRE_E_ARG = 3,     /* a bad dimension, stride or flag */
  MH_WIRE_E_VTCM = 4,    /* the working set exceeds the VTCM budget */
  MH_WIRE_E_VERSION = 5, /* header magic or version mismatch */
  MH_WIRE_E_SUBGRAPH = 6 /* a subgraph id that is not prepared, or no free cache slot */
} mh_wire_status;

/* MH_WIRE_GEMM_S8: offsets are bytes into the shared region; strides in elements. */
typedef struct mh_wire_gemm_s8 {
  uint32_t m, n, k;
  uint32_t a_off, lda; /* A: m rows of k int8, row stride lda */
  uint32_t b_off, ldb; /* B: k rows of n int8, row stride ldb */
  uint32_t c_off, ldc; /* C: m rows of n int32, row stride ldc (4-byte aligned) */
  uint32_t accumulate; /* 0: C = A*B, 1: C += A*B */
  /* the fused epilogue (requantise): when set, C is not written; y (int8, row stride ldc) at c_off
   * receives sat8(round((A*B + bias) / 2^shift)); the reply carries max_abs and saturated */
  uint32_t epilogue;   /* 0: int32 C; 1: requantise */
  uint32_t shift, mode; /* 0..31; 0 nearest, 1 pseudo-stochastic */
  uint32_t bias_off;   /* m int32 per-row biases (4-byte aligned), or 0 for none */
  uint32_t flags;      /* MH_WIRE_GEMM_TRANS_A / _TRANS_B: the operand is stored transposed */
  uint32_t apack_off;  /* subgraph nodes with a constant A: where its packed panels live (0: none) */
  /* B by rows (with MH_WIRE_GEMM_B_ROWS): stored row i of B (row i of op(B), or column i when
   * transposed) starts at b_off + rows[i], rows being uint32 at b_rows_off (k of them, or n when
   * transposed; ldb unused). A convolution's column matrix is then runs of a padded image. */
  uint32_t b_rows_off;
  /* the fused epilogue's statistics over a padded grid (grid_w > 0): column j counts only when
   * j mod grid_w < grid_q and (j / grid_w) mod grid_h < grid_p (the other columns are discarded) */
  uint32_t grid_w, grid_h, grid_q, grid_p;
  /* A by rows (with MH_WIRE_GEMM_A_ROWS, A not transposed): row i of A starts at a_off + rows[i],
   * rows being m uint32 at a_rows_off (lda unused): a weight gradient's padded-image runs */
  uint32_t a_rows_off;
  uint32_t reserved[2];
} mh_wire_gemm_s8;

/* The GEMM kernel's K chunk, in 4-byte k steps (quads), for `avail` bytes of VTCM: a 128-column
 * panel of B holds 512 bytes per quad, after 4 KiB of fixed buffers; at most 480; 0 when 2 steps do
 * not fit. (m is kept for the callers: the chunk no longer depends on it.) Shared by both sides so
 * the host knows what the DSP will do. Division-free (the DSP has no libgcc). */
static inline uint32_t mh_wire_gemm_steps(uint32_t avail, uint32_t m) {
  if (m == 0 || m > (1u << 24) || avail < 4096u + 2u * 512u) return 0;
  uint32_t q = (avail - 4096u) >> 9;
  return q > 480u ? 480u : q;
}

/* The fused epilogue keeps each 128-column panel's int32 sums on the DSP until the last K chunk:
 * up to this many rows. */
#define MH_WIRE_FUSED_MAX_M 1024u
static inline int mh_wire_fused_fits(uint32_t m, uint32_t k) { return m <= MH_WIRE_FUSED_MAX_M && k >= 1u; }

#define MH_WIRE_GEMM_TRANS_A 1u /* A stored as k rows of m (row stride lda) */
#define MH_WIRE_GEMM_TRANS_B 2u /* B stored as n rows of k (row stride ldb) */
#define MH_WIRE_GEMM_B_ROWS 4u  /* B's stored rows at the offsets of a row table (b_rows_off) */
#define MH_WIRE_GEMM_A_ROWS 8u  /* A's rows at the offsets of a row table (a_rows_off) */

/* Bytes of A packed for the HVX kernel: m rows of ceil(k/4) words (4 consecutive k each, s8, zero
 * past k), 128-byte aligned, then the m row sums (int32) the kernel's +128 correction needs. */
static inline uint64_t mh_wire_apack_rows_bytes(uint32_t m, uint32_t k) {
  return ((uint64_t)m * ((k + 3u) / 4u) * 4u + 127u) & ~(uint64_t)127u;
}
static inline uint64_t mh_wire_apack_bytes(uint32_t m, uint32_t k) {
  return mh_wire_apack_rows_bytes(m, k) + (((uint64_t)m * 4u + 127u) & ~(uint64_t)127u);
}

/* A subgraph node (MH_WIRE_SG_PREPARE reads n_nodes of these at desc_off). */
typedef struct mh_wire_sg_node {
  uint32_t op;        /* MH_WIRE_GEMM_S8 */
  uint32_t a_const;   /* 1: A is the subgraph's weight tensor, packed into gemm.apack_off once per
                         weights version (SG_RUN's weights_changed), not on every run */
  uint32_t may_fuse;  /* 1: SG_RUN may switch on the requantise epilogue for this node */
  uint32_t reserved;
  mh_wire_gemm_s8 gemm;
} mh_wire_sg_node;

#define MH_WIRE_SG_SLOTS 64u   /* subgraphs the DSP caches at once */
#define MH_WIRE_SG_NODES 4u    /* nodes per subgraph */
#define MH_WIRE_SG_ALL 0xffffffffu

typedef struct mh_wire_sg_prepare {
  uint32_t id;        /* 0 .. MH_WIRE_SG_SLOTS-1; an id in use is replaced */
  uint32_t desc_off;  /* n_nodes mh_wire_sg_node, 4-byte aligned */
  uint32_t n_nodes;
  uint32_t reserved[13];
} mh_wire_sg_prepare;

/* MH_WIRE_SG_RUN: the per-run values; everything else was checked at preparation. */
typedef struct mh_wire_sg_run {
  uint32_t id;
  uint32_t node_mask;       /* bit i: run node i (in order) */
  uint32_t weights_changed; /* 1: the weight tensor was rewritten since the last run: repack */
  uint32_t epilogue;        /* 1: fuse the requantise epilogue into the may_fuse nodes */
  uint32_t shift, mode;     /* its shift (0..31) and rounding (0 nearest, 1 pseudo-stochastic) */
  uint32_t reserved[10];
} mh_wire_sg_run;

/* Segment programs: a chain of layers run by one message, activations kept in the region between
 * them. A program names its tensors by index into a table of (offset, bytes) fixed at preparation;
 * its GEMMs are nodes of prepared subgraphs (the layer's weights, packed forms, row tables). Integer
 * (niti) semantics throughout: int8 NCHW activations and errors with per-tensor exponents, which
 * the DSP carries through the chain, and int32 accumulators rescaled by the shared rule
 * (src/quant/rescale_rule.h) with the histories kept in the run table. */
typedef enum mh_wire_seg_op {
  MH_SEG_PAD = 1,       /* in (int8, n x c x h x w) -> out: c rows of ld bytes, zero, with sample s's plane at
                           s*p*q and its row y at (y+top)*q + top (a p x q grid); e[out] = e[in] */
  MH_SEG_CONV_FWD = 2,  /* the grid convolution of subgraph sg (its X written by a PAD): out (int8 n x c x p x q)
                           rescaled by slot `node`; bias: tensor of c int32 raw biases (exponent ew1) or none */
  MH_SEG_CONV_BWD_W = 3, /* the weight gradient into the subgraph's DW (int32); with bias: out = per-channel
                            sums of in (int8 n x c x p x q), int32 */
  MH_SEG_CONV_BWD_D = 4, /* the input gradient from the padded error (a PAD into the subgraph's second B):
                            out (int8 n x c x p x q) rescaled by slot `node`, in2 an int32 scratch of that size */
  MH_SEG_RELU = 5,      /* out = max(in, 0), n*c*h*w int8 */
  MH_SEG_RELU_BWD = 6,  /* out = in (y) > 0 ? in2 (dy) : 0 */
  MH_SEG_POOL2 = 7,     /* 2x2 stride-2 max-pool of n*c planes h x w */
  MH_SEG_POOL2_BWD = 8  /* in: the forward input, in2: dy (h/2 x w/2 planes) -> out (h x w planes) */
} mh_wire_seg_op;

#define MH_WIRE_SEG_SLOTS 32u
#define MH_WIRE_SEG_NODES 48u
#define MH_WIRE_SEG_TENSORS 64u
#define MH_WIRE_SEG_NONE 0xffffffffu

typedef struct mh_wire_seg_tensor {
  uint32_t off, bytes; /* 128-byte aligned offset into the region */
} mh_wire_seg_tensor;

typedef struct mh_wire_seg_node {
  uint32_t op;
  uint32_t in, in2, out, bias; /* tensor indices (MH_WIRE_SEG_NONE: unused) */
  uint32_t sg;                 /* conv ops: the subgraph id */
  uint32_t n, c, h, w;         /* shapes: PAD's source; conv ops' result (n x c x h x w) */
  uint32_t p, q;               /* PAD: the grid plane; conv ops: the grid plane of the GEMM's result */
  uint32_t top, ld;            /* PAD: the data's offset in the grid, the row stride per channel */
  uint32_t reserved[2];
} mh_wire_seg_node;

/* The per-run table at MH_WIRE_SEG_RUN's table_off: the host writes the input tensors' exponents,
 * the weight exponents and the histories; the DSP writes the rest and what each node did. */
typedef struct mh_wire_seg_table {
  int32_t e[MH_WIRE_SEG_TENSORS];      /* exponent per tensor */
  int32_t ew[MH_WIRE_SEG_NODES][2];    /* conv nodes: the weights' and the bias's exponents */
  int32_t rs[MH_WIRE_SEG_NODES][3];    /* rescale history per node (shift, have, since_exact) */
  uint32_t res[MH_WIRE_SEG_NODES][4];  /* per node: shift applied, rule events, outputs rescaled, K chunks */
} mh_wire_seg_table;

typedef struct mh_wire_seg_prepare {
  uint32_t id;       /* 0 .. MH_WIRE_SEG_SLOTS-1 */
  uint32_t desc_off; /* n_tensors mh_wire_seg_tensor, then n_nodes mh_wire_seg_node */
  uint32_t n_tensors, n_nodes;
  uint32_t reserved[12];
} mh_wire_seg_prepare;

typedef struct mh_wire_seg_run {
  uint32_t id;
  uint32_t table_off;        /* an mh_wire_seg_table, 4-byte aligned */
  uint32_t adaptive;         /* 1: the adaptive rescale rule; 0: exact rescaling */
  uint32_t sg_changed[2];    /* bit i: subgraph i's weights were rewritten since its last run */
  uint32_t backward;         /* 1: a backward program (for the host's accounting; the DSP ignores it) */
  uint32_t reserved[10];
} mh_wire_seg_run;

/* MH_WIRE_REQUANT_S8: the requantise epilogue (qformat.h semantics). Offsets 128-byte aligned. */
typedef struct mh_wire_requant_s8 {
  uint32_t x_off, y_off, n;
  uint32_t shift; /* 0..31 */
  uint32_t mode;  /* 0 nearest (ties away from zero), 1 NITI pseudo-stochastic */
  uint32_t reserved[11];
} mh_wire_requant_s8;

/* MH_WIRE_RELU_S8 (a = x, out = y) and MH_WIRE_RELU_BWD_S8 (a = y, b = dy, out = dx): int8 tensors
 * of n elements, offsets 128-byte aligned. */
typedef struct mh_wire_eltwise_s8 {
  uint32_t a_off, b_off, out_off, n;
  int32_t ea, eb;   /* MH_WIRE_ADD_S8: the inputs' exponents (|e| <= 2^20); the reply's exponent goes to ey */
  int32_t ey;
  uint32_t reserved[9];
} mh_wire_eltwise_s8;

/* MH_WIRE_MAXPOOL2_S8: x (planes x h x w) -> y (planes x h/2 x w/2).
 * MH_WIRE_MAXPOOL2_BWD_S8: x (the forward input), dy (at y_off) -> dx (at dx_off, planes x h x w). */
typedef struct mh_wire_pool_s8 {
  uint32_t x_off, y_off, dx_off;
  uint32_t planes, h, w;
  uint32_t reserved[10];
} mh_wire_pool_s8;

/* The message slot at MH_WIRE_MSG_OFFSET. The host fills op/seq/args and writes seq (4 bytes)
 * to the request pipe; the DSP handles it, sets status (and reply fields) and writes seq back. */
typedef struct mh_wire_msg {
  uint32_t op, seq, status;
  uint32_t version;   /* HELLO reply: the DSP's MH_WIRE_VERSION */
  uint32_t vtcm_bytes; /* HELLO reply: the VTCM budget the DSP enforces */
  uint32_t chunks;     /* GEMM reply: K chunks the work was split into to fit VTCM (>= 1) */
  uint32_t max_abs;    /* REQUANT reply: max |x| (2^31 for INT32_MIN) */
  uint32_t saturated;  /* REQUANT reply: outputs whose rounded magnitude exceeded 127 */
  uint32_t packed_bytes; /* SG reply: bytes of weights packed by this message */
  uint32_t checked_nodes; /* SG_PREPARE reply: nodes validated */
  uint32_t reserved[6];
  union {
    mh_wire_gemm_s8 gemm;
    mh_wire_requant_s8 requant;
    mh_wire_eltwise_s8 eltwise;
    mh_wire_pool_s8 pool;
    mh_wire_sg_prepare sg_prepare;
    mh_wire_sg_run sg_run;
    mh_wire_seg_prepare seg_prepare;
    mh_wire_seg_run seg_run;
    uint32_t raw[48];
  } args;
} mh_wire_msg;

/* Static size checks: both compilers must lay these out identically. */
typedef char mh_wire_check_header[sizeof(mh_wire_header) == 64 ? 1 : -1];
typedef char mh_wire_check_gemm[sizeof(mh_wire_gemm_s8) == 96 ? 1 : -1];
typedef char mh_wire_check_requant[sizeof(mh_wire_requant_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_eltwise[sizeof(mh_wire_eltwise_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_pool[sizeof(mh_wire_pool_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_sg_node[sizeof(mh_wire_sg_node) == 112 ? 1 : -1];
typedef char mh_wire_check_sg_prepare[sizeof(mh_wire_sg_prepare) == 64 ? 1 : -1];
typedef char mh_wire_check_sg_run[sizeof(mh_wire_sg_run) == 64 ? 1 : -1];
typedef char mh_wire_check_seg_node[sizeof(mh_wire_seg_node) == 64 ? 1 : -1];
typedef char mh_wire_check_seg_prepare[sizeof(mh_wire_seg_prepare) == 64 ? 1 : -1];
typedef char mh_wire_check_seg_run[sizeof(mh_wire_seg_run) == 64 ? 1 : -1];
typedef char mh_wire_check_seg_table[sizeof(mh_wire_seg_table) == 4 * (64 + 48 * 9) ? 1 : -1];
typedef char mh_wire_check_msg[sizeof(mh_wire_msg) == 256 ? 1 : -1];
typedef char mh_wire_check_fits[MH_WIRE_MSG_OFFSET + sizeof(mh_wire_msg) <= MH_WIRE_PAGE ? 1 : -1];

#endif
