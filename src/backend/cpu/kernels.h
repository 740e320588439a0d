/* The CPU kernel tables: one function pointer per hot kernel and one table per ISA (portable, AVX2,
 * AVX-512, AVX-VNNI, AVX512-VNNI), chosen at run time by what the CPU and OS support. */
#ifndef MH_BACKEND_CPU_KERNELS_H
#define MH_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"

/* C (m x n, row stride ldc) = op(A) (m x k) * op(B) (k x n), or C += ... when accumulate.
 * op(A) = A (lda is A's row stride) or A^T when trans_a (A stored k x m); same for B. */
typedef struct mh_gemm_f32_args {
  int m, n, k;
  const float *a;
  int lda, trans_a;
  const float *b;
  int ldb, trans_b;
  float *c;
  int ldc;
  int accumulate;
  /* Optional: packs op(B)[p0..p0+kc) x [j0..j0+nc) into panels of nr columns (panel-major, kc rows of
   * nr each, zero-padded), instead of reading b. Lets a convolution feed its input image straight
   * into the GEMM (implicit im2col) without materialising the column matrix. */
  void (*pack_b)(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst);
  const void *pack_b_ctx;
  /* Optional: op(A) already packed by mh_gemm_f32_pack_a (reused across calls, e.g. a conv's weights
   * over all its sample chunks); a/lda/trans_a are then ignored. */
  const float *a_packed;
} mh_gemm_f32_args;

/* Register-tile micro-kernel: c[0..MR)[0..NR) (=|+=) sum_p a[p*MR + i] * b[p*NR + j]. */
typedef void (*mh_ukernel_f32_fn)(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);

/* C (m x n, int32, row stride ldc) (=|+=) op(A) (m x k, int8) * op(B) (k x n, int8): exact
 * integer arithmetic (|A|,|B| <= 127 and k <= MH_GEMM_S8_MAX_K keep int32 from overflowing). */
#define MH_GEMM_S8_MAX_K 131072
typedef struct mh_gemm_s8_args {
  int m, n, k;
  const int8_t *a;
  int lda, trans_a;
  const int8_t *b;
  int ldb, trans_b;
  int32_t *c;
  int ldc;
  int accumulate;
  /* Optional: stored row i of B (row k of B, or row j of B^T when trans_b) starts at b_rows[i] (b and
   * ldb unused). Lets a convolution read its rows straight out of a padded image (no im2col). */
  const int8_t *const *b_rows;
} mh_gemm_s8_args;

/* Where stored row i of B starts. */
static inline const int8_t *mh_gemm_s8_b_row(const mh_gemm_s8_args *g, int i) {
  return g->b_rows ? g->b_rows[i] : g->b + (size_t)i * g->ldb;
}

/* int8 micro-kernel on panels widened to int16 k-pairs: a holds MR rows x (kc2 pairs) as
 * [pair][row][2], b holds NR columns as [pair][col][2]; c[i][j] (=|+=) sum over pairs. */
typedef void (*mh_ukernel_s8_fn)(int kc2, const int16_t *a, const int16_t *b, int32_t *c, int ldc, int accumulate);

/* int8 micro-kernel on k-quad panels for u8 x s8 dot-product instructions (vpdpbusd): a holds MR
 * rows as [quad][row][4] (s8), b holds NR columns as [quad][col][4] (u8: the value + 128); corr[r] is
 * 128 x the sum of row r of the block's A, taken off so c[i][j] (=|+=) the exact s8 x s8 sum. */
typedef void (*mh_ukernel_s8q_fn)(int kq, const int8_t *a, const uint8_t *b, const int32_t *corr, int32_t *c, int ldc,
                                  int accumulate);

/* The requantise epilogue: y[i] = sat8(round(x[i] / 2^shift)) by mode, and in the same pass the
 * largest |x[i]| (the int32 range, for the next shift) and how many outputs saturated. Stochastic
 * rounding draws element i's bits from (key, index0 + i). */
typedef struct mh_requant_stats {
  uint32_t max_abs;  /* max |x| over the input (2^31 for INT32_MIN) */
  long saturated;    /* outputs whose rounded magnitude exceeded 127 */
} mh_requant_stats;
typedef void (*mh_requant_s8_fn)(const int32_t *x, int8_t *y, long n, int shift, int mode, uint32_t key,
                                 uint32_t index0, mh_requant_stats *st);

/* Float -> int8 with a power-of-two scale: q[i] = sat8(round(x[i] * scale)), nearest (ties away
 * from zero) or stochastic (floor(v + u), u from mh_q_stoch_rand(key, index0 + i)). */
typedef void (*mh_quant_f32_s8_fn)(const float *x, int8_t *q, long n, float scale, int mode, uint32_t key,
                                   uint32_t index0);

/* acc[i] += x[i] * w (w an int8 value), exactly in int32: a depthwise convolution's row. */
typedef void (*mh_mac_row_s8_fn)(int32_t *acc, const int8_t *x, long n, int32_t w);
/* sum of a[i] * b[i] over n int8 pairs, exactly in int32 (n * 127 * 127 must fit). */
typedef int32_t (*mh_dot_s8_fn)(const int8_t *a, const int8_t *b, long n);

/* 32 columns of 4 rows of B (rows[t] + col) into 32 k-quads of u8 (value + 128), 128 bytes. */
typedef void (*mh_pack_quad32_fn)(const uint8_t *const *rows, int col, uint8_t *out);

/* max |x[i]| over n floats; NaN is ignored (it never compares greater), so every table agrees. */
typedef float (*mh_absmax_f32_fn)(const float *x, long n);

/* Transposing pack: dst[p*stride + c] = src[c*lds + p] for c < cols, p < kc, and zeros for
 * c in [cols, stride). Packs A panels from a row-major A and B panels from a stored B^T. */
typedef void (*mh_pack_transpose_fn)(const float *src, long lds, int cols, int kc, int stride, float *dst);

typedef struct mh_cpu_kernels {
  const char *isa;       /* "ref", "avx2", "avx512", "avxvnni", "avx512vnni" */
  unsigned needs;        /* the MH_CPU_* bits (cpu_features.h) the table's kernels use */
  int mr, nr;            /* micro-tile of ukernel_f32 */
  mh_ukernel_f32_fn ukernel_f32;
  mh_pack_transpose_fn pack_transpose_f32;
  int mr_s8, nr_s8;      /* micro-tile of the int8 kernel */
  mh_ukernel_s8_fn ukernel_s8;   /* int16 k-pair panels, or NULL when ukernel_s8q is the int8 kernel */
  mh_ukernel_s8q_fn ukernel_s8q; /* k-quad panels (u8 x s8 dot products) */
  mh_pack_quad32_fn pack_quad32;  /* optional: B rows into k-quads 32 columns at a time */
  mh_requant_s8_fn requant_s8;
  mh_quant_f32_s8_fn quant_f32_s8;
  mh_absmax_f32_fn absmax_f32;
  mh_mac_row_s8_fn mac_row_s8;
  mh_dot_s8_fn dot_s8;
  const char *f32_desc, *s8_desc, *elt_desc; /* what runs, for `mandheling info` */
} mh_cpu_kernels;

/* The fastest table this CPU supports, or the portable one when force_ref (or env MH_FORCE_REF=1). */
const mh_cpu_kernels *mh_cpu_kernels_get(int force_ref);
/* The table called `name`, or (name NULL or "") env MH_ISA's, else the fastest; force_ref picks the
 * portable one. An unknown name or one this CPU lacks is an error naming it and what is available. */
int mh_cpu_kernels_select(const char *name, int force_ref, const mh_cpu_kernels **out);
/* Every table this build has, in order of preference (fastest last); NULL past the end. */
const mh_cpu_kernels *mh_cpu_kernels_at(int i);
/* 1 when this CPU and OS support every kernel of the table. */
int mh_cpu_kernels_available(const mh_cpu_kernels *kt);

/* Blocked, packed, multi-threaded GEMM on the table's micro-kernel. Deterministic: each element of C
 * is computed by one task over K in a fixed order, so results do not depend on the thread count. */
void mh_gemm_f32(const mh_cpu_kernels *kt, mh_pool *pool, const mh_gemm_f32_args *g);

/* Blocked, packed, multi-threaded int8 GEMM; bit-identical to the oracle on every table. */
void mh_gemm_s8(const mh_cpu_kernels *kt, mh_pool *pool, const mh_gemm_s8_args *g);
void mh_gemm_s8_ref(const mh_gemm_s8_args *g);

/* Packs op(A) of g (m x k) once into the driver's panel layout; dst needs mh_gemm_f32_packed_a_floats. */
size_t mh_gemm_f32_packed_a_floats(const mh_cpu_kernels *kt, int m, int k);
void mh_gemm_f32_pack_a(const mh_cpu_kernels *kt, const mh_gemm_f32_args *g, float *dst);

/* The oracle: a plain triple loop in double accumulation order-independent of blocking. */
void mh_gemm_f32_ref(const mh_gemm_f32_args *g);

#endif
