/* The GEMM message (MH_WIRE_GEMM_S8) checked and run: shared by single GEMM messages and the
 * nodes of cached subgraphs. */
#ifndef MH_DSP_GEMM_MSG_H
#define MH_DSP_GEMM_MSG_H

#include <stdint.h>

#include "vtcm.h"
#include "wire.h"

/* MH_WIRE_OK when every dimension, flag, offset and stride is valid for the region. */
uint32_t mh_gemm_msg_check(const mh_wire_gemm_s8 *g);

/* Runs a checked GEMM; apack: op(A) packed beforehand (or 0). Reply values go to the out-params. */
uint32_t mh_gemm_msg_run(mh_vtcm *v, const mh_wire_gemm_s8 *g, const uint8_t *apack, uint32_t *chunks,
                         uint32_t *max_abs, uint32_t *saturated);

#endif
