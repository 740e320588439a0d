/* Shared by the FP32 (conv2d.c) and int8 (conv2d_s8.c) convolution paths: the dimension letters
 * and the helpers both use. Internal to src/ops. */
#ifndef MH_OPS_CONV2D_COMMON_H
#define MH_OPS_CONV2D_COMMON_H

#include "ops/ops.h"

/* N batch, C/H/W input, O/P/Q output channels/height/width, G groups, Cg = C/G, Og = O/G,
 * K kernel side, S stride, D padding. Weight is (O, Cg, K, K). */
typedef struct {
  int N, C, H, W, O, P, Q, G, Cg, Og, K, S, D;
} conv_dims;

conv_dims mh__conv_dims(const mh_op_ctx *ctx);
conv_dims mh__conv_dims_of(const mh_graph *g, const mh_node *nd, int n);
/* Samples per GEMM chunk (enough columns and work per call). */
int mh__conv_chunk_samples(const conv_dims *d);

/* col (Cg*K*K x cnt*P*Q, int8) from the int8 image xq for samples [n0, n0+cnt) of group g. */
void mh__conv_im2col_s8(const mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, int8_t *col, int n0, int cnt,
                        int g);
/* plane (H x W int32) += col2im of channel c (within its group) of sample s from the int32 columns
 * dcol (Cg*K*K rows of stride ld). */
void mh__conv_col2im_s32_plane(const conv_dims *d, const int32_t *dcol, size_t ld, int s, int c, int32_t *plane);
/* G (Og x cnt*P*Q, int8) gathered from the NCHW output error dyq for samples [n0, n0+cnt) of group g. */
void mh__conv_gather_s8(const conv_dims *d, const int8_t *dyq, int8_t *gq, int n0, int cnt, int g);

/* Where an int8 convolution's exact int32 result goes (NCHW): to FP32 as acc * scale (+ bias[channel]),
 * or added to f when accumulate; or, when f is NULL, to i32 as it is. */
typedef struct {
  float *f;
  float scale;
  const float *bias;
  int accumulate;
  int32_t *i32;
} mh_conv_out;

/* The int8 GEMMs for stride 1, no groups, padding < K, without im2col (conv2d_s8_padded.c). */
int mh__conv_s8_padded_ok(const conv_dims *d);
/* Samples per GEMM on the padded path: enough for about `cols` columns (no column buffer to bound
 * here; wide GEMMs amortise packing and thread hand-offs). The int8 algorithm asks for
 * MH_S8_PADDED_COLS; niti for a quarter, since its int32 chunk adds to its memory. */
enum { MH_S8_PADDED_COLS = 16384 };
int mh__conv_s8_padded_chunk(const conv_dims *d, long cols);
/* Scratch bytes for chunks of nb samples (and, with base, the buffers laid out from it into *out). */
size_t mh__conv_s8_padded_bytes(const conv_dims *d, int nb, void *base, void *out);
/* The output conv(xq, wq) of the whole batch into out, nb samples per GEMM (as sized). */
void mh__conv_s8_padded_forward(mh_op_ctx *ctx, const conv_dims *d, int nb, const int8_t *xq, const int8_t *wq,
                                const mh_conv_out *out, void *scratch);
/* The pieces of the padded construction, shared with the DSP's grid subgraph (conv2d_dsp.c):
 * samples [n0, n0+cnt) of src (NCHW, chs channels of h x w) into dst [ch][cnt][hp][wp] at (pad, pad)
 * with zeros around; the offsets of the column matrix's rows (c, kh, kw) in such a buffer; the
 * flipped, transposed weights of backward-data (C x O*K*K: each K x K block reversed); the valid
 * part of a result on the grid (chs rows of stride ld, sample s at s*hp*wp) into NCHW, as FP32 or
 * int32 (emit) or int8 (extract). */
void mh__conv_pad_image(const mh_op_ctx *ctx, const int8_t *src, int chs, int h, int w, int pad, int hp, int wp, int n0,
                        int cnt, int8_t *dst);
void mh__conv_row_offsets(int chs, int K, int cnt, int hp, int wp, uint32_t *off);
void mh__conv_flip_weights(const conv_dims *d, const int8_t *wq, int8_t *wt);
void mh__conv_grid_emit(mh_op_ctx *ctx, const int32_t *acc, size_t ld, const mh_conv_out *out, int n0, int cnt,
                        int chs, int h, int w, int hp, int wp);
void mh__conv_grid_extract_s8(const int8_t *grid, size_t ld, int8_t *dst, int n, int chs, int h, int w, int hp, int wp);
/* parts: MH_PASS_BWD_W into dwacc (int32, O x C*K*K, overwritten), MH_PASS_BWD_D into dx. */
void mh__conv_s8_padded_backward(mh_op_ctx *ctx, const conv_dims *d, int nb, const int8_t *xq, const int8_t *wq,
                                 const int8_t *dyq, const mh_conv_out *dx, int32_t *dwacc, unsigned parts,
                                 void *scratch);

/* The int8 depthwise convolution as direct loops (conv2d_s8_depthwise.c). */
int mh__conv_s8_depthwise_ok(const conv_dims *d);
void mh__conv_s8_depthwise_forward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq, float scale,
                                   const float *bias);
void mh__conv_s8_depthwise_backward(mh_op_ctx *ctx, const conv_dims *d, const int8_t *xq, const int8_t *wq,
                                    const int8_t *dyq, float dx_scale, int32_t *dwacc, unsigned parts);

/* The int8 convolution's pieces a backend shares (conv2d_s8.c): its buffers (saved exponents, int8
 * x and W; scratch: int8 dy, int32 dW and input-gradient planes), the forward quantisation (returns
 * the output scale 2^(e_x + e_w)), dy's (returns its exponent), the weight gradient's completion
 * (FP32 dW from the int32 sums, and the bias gradient), and col2im of int32 columns into FP32 dx. */
typedef struct {
  int32_t *e;
  int8_t *xq, *wq, *dyq;
  int32_t *dwacc, *dxacc;
} mh_conv_s8_bufs;
void mh__conv_s8_bufs(const mh_op_ctx *ctx, const conv_dims *d, mh_conv_s8_bufs *b);
float mh__conv_s8_quantize_inputs(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b);
int mh__conv_s8_quantize_dy(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b);
void mh__conv_s8_finish_weights(mh_op_ctx *ctx, const conv_dims *d, const mh_conv_s8_bufs *b, int ey);
void mh__conv_s8_col2im(mh_op_ctx *ctx, const conv_dims *d, const int32_t *dcol, size_t ld, int32_t *acc, int n0,
                        int cnt, int g, int e);

/* The integer convolution's pieces a backend shares (conv2d_int.c): the layer's int32 result or input
 * gradient (NCHW), the aligned bias added to a result, the bias gradient, and the input gradient's
 * completion (rescaled to int8 and handed to the input). */
int32_t *mh__conv_int_big(const mh_op_ctx *ctx, const conv_dims *d);
/* The forward's int32 result with the aligned bias, on the CPU, into mh__conv_int_big. */
void mh__conv_int_acc(mh_op_ctx *ctx, const conv_dims *d, int e_acc);
void mh__conv_int_bias(mh_op_ctx *ctx, const conv_dims *d, int32_t *big, int e_acc);
void mh__conv_int_bias_grad(mh_op_ctx *ctx, const conv_dims *d);
void mh__conv_int_finish_dx(mh_op_ctx *ctx, const conv_dims *d);
/* dx planes (int32) += col2im of dcol (kk x N*P*Q): the whole batch of group 0. */
void mh__conv_int_col2im(mh_op_ctx *ctx, const conv_dims *d, const int32_t *dcol, int32_t *dx);
#endif
