/* The wire format between the host and the DSP (DESIGN.md contract 5): one shared memory region
 * whose first page holds a header and the message slot, tensors after it. Fixed-width, padded
 * structs with static size checks; included by dsp/ and src/backend/dsp/ and by nothing else. */
#ifndef MH_DSP_WIRE_H
#define MH_DSP_WIRE_H

#include <stdint.h>

#define MH_WIRE_MAGIC 0x5053446du   /* "mDSP" little-endian */
#define MH_WIRE_VERSION 1u
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
  MH_WIRE_ADD_S8 = 9           /* residual add of int8 tensors with exponent alignment */
} mh_wire_op;

typedef enum mh_wire_status {
  MH_WIRE_OK = 0,
  MH_WIRE_E_OP = 1,      /* unknown operation */
  MH_WIRE_E_BOUNDS = 2,  /* an offset or size outside the shared region */
  MH_WIRE_E_ARG = 3,     /* a bad dimension, stride or flag */
  MH_WIRE_E_VTCM = 4,    /* the working set exceeds the VTCM budget */
  MH_WIRE_E_VERSION = 5  /* header magic or version mismatch */
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
  uint32_t reserved[2];
} mh_wire_gemm_s8;

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
  int32_t ea, eb;   /* MH_WIRE_ADD_S8: the inputs' exponents (|e| < 2^20); the reply's exponent goes to ey */
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
  uint32_t reserved[8];
  union {
    mh_wire_gemm_s8 gemm;
    mh_wire_requant_s8 requant;
    mh_wire_eltwise_s8 eltwise;
    mh_wire_pool_s8 pool;
    uint32_t raw[48];
  } args;
} mh_wire_msg;

/* Static size checks: both compilers must lay these out identically. */
typedef char mh_wire_check_header[sizeof(mh_wire_header) == 64 ? 1 : -1];
typedef char mh_wire_check_gemm[sizeof(mh_wire_gemm_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_requant[sizeof(mh_wire_requant_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_eltwise[sizeof(mh_wire_eltwise_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_pool[sizeof(mh_wire_pool_s8) == 64 ? 1 : -1];
typedef char mh_wire_check_msg[sizeof(mh_wire_msg) == 256 ? 1 : -1];
typedef char mh_wire_check_fits[MH_WIRE_MSG_OFFSET + sizeof(mh_wire_msg) <= MH_WIRE_PAGE ? 1 : -1];

#endif
