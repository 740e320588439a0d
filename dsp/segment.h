/* The DSP's cache of segment programs (wire.h, "Segment programs"): a chain of layers checked once
 * when prepared and run by one message, the activations staying in the region between layers. */
#ifndef MH_DSP_SEGMENT_H
#define MH_DSP_SEGMENT_H

#include <stdint.h>

#include "vtcm.h"
#include "wire.h"

/* Checks the tensor table and nodes at p->desc_off and caches them under p->id; *checked: nodes
 * validated. */
uint32_t mh_seg_prepare(const mh_wire_seg_prepare *p, uint32_t *checked);

/* Runs a cached program with the run table at r->table_off. Reply: VTCM chunks, weight bytes packed. */
uint32_t mh_seg_run(mh_vtcm *v, const mh_wire_seg_run *r, uint32_t *chunks, uint32_t *packed_bytes);

#endif
