/* Greedy-by-size arena placement (the scheme TFLite's arena planner popularised): the largest
 * buffers are placed first, each at the lowest offset free of every placed, time-overlapping buffer. */
#include "core/memplan.h"

#include <stdlib.h>

static const mh_mem_block *g_sort_blocks;

static int by_size_desc(const void *a, const void *b) {
  const mh_mem_block *x = &g_sort_blocks[*(const int *)a], *y = &g_sort_blocks[*(const int *)b];
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return *(const int *)a - *(const int *)b; /* stable: earlier buffer first */
}

static int by_offset(const void *a, const void *b) {
  const mh_mem_block *x = &g_sort_blocks[*(const int *)a], *y = &g_sort_blocks[*(const int *)b];
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

size_t mh_memplan_assign(mh_mem_block *blocks, int n, size_t align) {
  int *order = malloc(sizeof(int) * (size_t)(n ? n : 1)), *placed = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!order || !placed) {
    free(order), free(placed);
    return (size_t)-1;
  }
  for (int i = 0; i < n; i++) order[i] = i;
  g_sort_blocks = blocks;
  qsort(order, (size_t)n, sizeof(int), by_size_desc);
  size_t total = 0;
  int n_placed = 0;
  for (int oi = 0; oi < n; oi++) {
    mh_mem_block *b = &blocks[order[oi]];
    size_t size = (b->size + align - 1) / align * align, cand = 0;
    /* placed is kept sorted by offset: walk it, skipping past every live conflict */
    for (int k = 0; k < n_placed; k++) {
      const mh_mem_block *o = &blocks[placed[k]];
      if (o->end < b->start || b->end < o->start) continue; /* not alive together */
      size_t osize = (o->size + align - 1) / align * align;
      if (cand + size <= o->offset) break; /* fits in the gap before o */
      if (o->offset + osize > cand) cand = o->offset + osize;
    }
    b->offset = cand;
    if (cand + size > total) total = cand + size;
    placed[n_placed++] = order[oi];
    qsort(placed, (size_t)n_placed, sizeof(int), by_offset);
  }
  free(order);
  free(placed);
  return total;
}
