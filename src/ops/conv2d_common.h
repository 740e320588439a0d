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

/* The layer as a DSP subgraph (conv2d_dsp.c). Tensors: */
enum { MH_CONV_W, MH_CONV_BIAS, MH_CONV_DW, MH_CONV_X, MH_CONV_G, MH_CONV_Y }; /* nodes: MH_PASS_* */
struct mh_dsp_sg;
/* The subgraph of this node at this batch with weights wq in place, or NULL: no live DSP, a
 * grouped convolution, or no room (the caller runs the CPU path). */
struct mh_dsp_sg *mh__conv_dsp(const mh_op_ctx *ctx, const conv_dims *d, const int8_t *wq);
/* Writes the whole batch's col (from xq, when given) and gathered G (Og x N*P*Q, from dyq). */
void mh__conv_dsp_inputs(const mh_op_ctx *ctx, const conv_dims *d, struct mh_dsp_sg *sg, const int8_t *xq,
                         const int8_t *dyq);
#endif
