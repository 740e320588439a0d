/* Greedy-by-size arena placement (the scheme TFLite's arena planner popularised): the largest
 * buffers are placed first, each at the lowest offset free of every placed, time-overlapping buffer. */
#include "core/memplan.h"

#include <stdlib.h>

/* Sort keys carry what they compare (no global state: two planners may run in two threads). */
typedef struct {
  size_t size;
  int idx;
} size_key;

static int by_size_desc(const void *a, const void *b) {
  const size_key *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->idx - y->idx; /* stable: earlier buffer first */
}

size_t mh_memplan_assign(mh_mem_block *blocks, int n, size_t align) {
  size_key *order = malloc(sizeof *order * (size_t)(n ? n : 1));
  int *placed = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!order || !placed) {
    free(order), free(placed);
    return (size_t)-1;
  }
  for (int i = 0; i < n; i++) order[i].size = blocks[i].size, order[i].idx = i;
  qsort(order, (size_t)n, sizeof *order, by_size_desc);
  size_t total = 0;
  int n_placed = 0;
  for (int oi = 0; oi < n; oi++) {
    mh_mem_block *b = &blocks[order[oi].idx];
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
    int at = n_placed; /* insert in offset order, after those at the same offset */
    while (at > 0 && blocks[placed[at - 1]].offset > cand) placed[at] = placed[at - 1], at--;
    placed[at] = order[oi].idx;
    n_placed++;
  }
  free(order);
  free(placed);
  return total;
}
