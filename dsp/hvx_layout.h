/* Layout kernels of segment programs on HVX, bit-exact to the host's: padding an int8 NCHW tensor
 * into a convolution's grid (the grid form's im2col: src/ops/conv2d_s8_padded.c), taking a GEMM's
 * grid result back to NCHW, per-channel sums (the bias gradient) and the saturating bias add. */
#ifndef MH_DSP_HVX_LAYOUT_H
#define MH_DSP_HVX_LAYOUT_H

#include <hexagon_types.h>
#include <stdint.h>

/* The control of a byte route for vdelta (a spread: ds >= ss and de >= se) or vrdelta (a squeeze):
 * byte r*ss + x*se of a vector goes to lane r*ds + off + x*de (r < rows, x < len; all < 128, the map
 * keeping the bytes' order). Bit 7 of a control byte, which neither network reads, marks the lanes
 * that receive no byte (Q6_Q_vand_VR(ctl, 0x80808080) selects them). */
HVX_Vector mh_hvx_route_ctl(uint32_t rows, uint32_t len, uint32_t ss, uint32_t se, uint32_t ds, uint32_t de,
                            uint32_t off);

/* dst: c rows of ld bytes, all zero but sample s's row y of channel ch (w bytes of src, NCHW n x c x
 * h x w) at ch*ld + s*p*q + (y+top)*q + top (the caller checks that the grid holds it). */
void mh_hvx_pad_s8(const int8_t *src, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int8_t *dst, uint32_t p,
                   uint32_t q, uint32_t top, uint32_t ld, const int8_t *end);

/* out (NCHW n x c x h x w, elements of `size` 1 or 4 bytes) from a grid result: channel ch's row
 * starts at grid + ch*ld elements, sample s's row y at s*gp*gq + y*gq. */
void mh_hvx_grid_to_nchw(const void *grid, uint32_t ld, uint32_t gp, uint32_t gq, uint32_t n, uint32_t c, uint32_t h,
                         uint32_t w, uint32_t size, void *out, const int8_t *end);

/* rows x cols int32 at x (row stride ld elements): x = sat32(x + bias[row]) with
 * mh_q_add_sat32's bounds (+-INT32_MAX). */
void mh_hvx_add_rows_s32(int32_t *x, uint32_t rows, uint32_t cols, uint32_t ld, const int32_t *bias);

/* sums[ch] = the sum of channel ch of in (int8 NCHW n x c x plane), wrapping int32. */
void mh_hvx_channel_sums_s8(const int8_t *in, uint32_t n, uint32_t c, uint32_t plane, int32_t *sums,
                            const int8_t *end);

#endif
