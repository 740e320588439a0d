/* The shared region as the DSP sees it, and the bounds checks every message's offsets pass
 * before use (a host mistake gets an error status, never an access outside the region). */
#ifndef MH_DSP_REGION_H
#define MH_DSP_REGION_H

#include <stdint.h>

#include "wire.h"

extern uint8_t *mh_region;
extern uint32_t mh_region_bytes;

/* [off, off + bytes) lies inside the tensor area of the region. */
static inline int mh_in_region(uint32_t off, uint64_t bytes) {
  return off >= MH_WIRE_PAGE && off <= mh_region_bytes && bytes <= (uint64_t)(mh_region_bytes - off);
}

/* Bytes spanned by rows x cols elements of `size` bytes with row stride ld (elements). */
static inline uint64_t mh_span(uint32_t rows, uint32_t cols, uint32_t ld, uint32_t size) {
  return ((uint64_t)(rows - 1) * ld + cols) * size;
}

#endif
