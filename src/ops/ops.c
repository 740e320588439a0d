/* The op table lookup and the add-or-copy helper shared by several ops.
 * Op arithmetic itself lives in one file per op family. */
#include "ops/ops.h"

#include <stdatomic.h>
#include <string.h>

#include "core/status.h"

const mh_op_impl *mh_op_impl_get(mh_op_type op) {
  switch (op) {
    case MH_OP_CONV2D: return &mh_op_conv2d;
    case MH_OP_LINEAR: return &mh_op_linear;
    case MH_OP_BATCHNORM: return &mh_op_batchnorm;
    case MH_OP_RELU: return &mh_op_relu;
    case MH_OP_RELU6: return &mh_op_relu6;
    case MH_OP_MAXPOOL: return &mh_op_maxpool;
    case MH_OP_AVGPOOL: return &mh_op_avgpool;
    case MH_OP_GAP: return &mh_op_gap;
    case MH_OP_ADD: return &mh_op_add;
    case MH_OP_FLATTEN: return &mh_op_flatten;
    default: return NULL;
  }
}

const mh_op_impl *mh_op_impl_int_get(mh_op_type op) {
  switch (op) {
    case MH_OP_CONV2D: return &mh_op_conv2d_int;
    case MH_OP_LINEAR: return &mh_op_linear_int;
    case MH_OP_RELU: return &mh_op_relu_int;
    case MH_OP_MAXPOOL: return &mh_op_maxpool_int;
    case MH_OP_ADD: return &mh_op_add_int;
    case MH_OP_FLATTEN: return &mh_op_flatten_int;
    default: return NULL; /* batch norm, ReLU6, average pools: no integer-only form */
  }
}

const mh_op_impl *mh_op_impl_for(mh_op_type op, int precision) {
  if (precision == MH_PRECISION_INTEGER) return mh_op_impl_int_get(op);
  if (precision == MH_PRECISION_INT8) switch (op) {
      case MH_OP_CONV2D: return &mh_op_conv2d_s8;
      case MH_OP_LINEAR: return &mh_op_linear_s8;
      case MH_OP_RELU: return &mh_op_relu_s8;
      case MH_OP_RELU6: return &mh_op_relu6_s8;
      case MH_OP_MAXPOOL: return &mh_op_maxpool_s8;
      case MH_OP_BATCHNORM: return &mh_op_batchnorm_s8;
      default: break;
    }
  return mh_op_impl_get(op);
}

void mh__op_record_absmax(const mh_op_ctx *ctx, float m) {
  if (!ctx->y_absmax || !(m >= 0.f)) return;
  uint32_t bits, cur = atomic_load(ctx->y_absmax);
  memcpy(&bits, &m, sizeof bits);
  while (bits > cur && !atomic_compare_exchange_weak(ctx->y_absmax, &cur, bits)) {}
}

void mh__add_or_copy(float *dx, const float *dy, size_t n, int accumulate) {
  if (!accumulate) {
    memcpy(dx, dy, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}
