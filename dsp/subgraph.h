/* The DSP's cache of prepared subgraphs: a subgraph (a few GEMM nodes over fixed tensors in the
 * region) is checked once when prepared; each run is one short message naming it, and a constant
 * operand (the layer's weights) is packed once per weights version instead of on every GEMM. */
#ifndef MH_DSP_SUBGRAPH_H
#define MH_DSP_SUBGRAPH_H

#include <stdint.h>

#include "vtcm.h"
#include "wire.h"

/* Checks the nodes at p->desc_off and caches them under p->id; *checked: nodes validated. */
uint32_t mh_sg_prepare(const mh_wire_sg_prepare *p, uint32_t *checked);

/* Runs the masked nodes in order. Reply: VTCM chunks, the fused nodes' max|acc| and saturation
 * count, and the weight bytes packed by this run. */
uint32_t mh_sg_run(mh_vtcm *v, const mh_wire_sg_run *r, uint32_t *chunks, uint32_t *max_abs, uint32_t *saturated,
                   uint32_t *packed_bytes);

uint32_t mh_sg_release(uint32_t id);

/* For segment programs: node i of cached subgraph id as checked (0 when there is none); marking a
 * subgraph's weights rewritten; running one node (epilogue: the requantise epilogue at shift/mode
 * when the node may fuse it), adding the bytes it packed to *packed_bytes. */
const mh_wire_gemm_s8 *mh_sg_node(uint32_t id, uint32_t i);
void mh_sg_weights_changed(uint32_t id);
uint32_t mh_sg_run_node(mh_vtcm *v, uint32_t id, uint32_t i, int epilogue, int shift, int mode, uint32_t *chunks,
                        uint32_t *max_abs, uint32_t *saturated, uint32_t *packed_bytes);

#endif
