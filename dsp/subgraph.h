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

#endif
