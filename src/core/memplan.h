/* Static memory planning: place buffers with known lifetimes [start, end] in one arena so that
 * buffers alive at the same time never overlap (greedy by size, lowest fitting offset). */
#ifndef MH_CORE_MEMPLAN_H
#define MH_CORE_MEMPLAN_H

#include <stddef.h>

typedef struct mh_mem_block {
  size_t size;    /* bytes */
  int start, end; /* inclusive lifetime in the executor's time steps */
  size_t offset;  /* output: byte offset in the arena */
} mh_mem_block;

/* Assigns offsets (multiples of `align`); returns the arena size in bytes, or (size_t)-1 when out
 * of memory for the planner's own bookkeeping. */
size_t mh_memplan_assign(mh_mem_block *blocks, int n, size_t align);

#endif
