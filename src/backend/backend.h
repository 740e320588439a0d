/* The seam between execution and backends. The executor runs every op on the CPU (the op tables in
 * src/ops/) unless the schedule gives some passes of a node to a backend; then it asks the backend
 * to run them, does any passes left to the CPU meanwhile (co-scheduling), and when the backend fails
 * it runs the backend's passes on the CPU from the same inputs, with the same results. Ops know
 * nothing of backends; a backend knows the ops' data (the op context) and helpers. */
#ifndef MH_BACKEND_BACKEND_H
#define MH_BACKEND_BACKEND_H

#include "graph/graph.h"

#define MH_SEGMENT_MAX 24 /* nodes in one backend segment */

struct mh_op_ctx;

typedef struct mh_backend {
  const char *name;
  void *self;
  /* Whether it runs pass `pass` (one MH_PASS_* bit) of node `node` in this precision, as the CPU op
   * would, bit for bit. The only record of what the backend can do: the planner asks it too. */
  int (*supports)(void *self, const mh_graph *g, int node, unsigned pass, int precision);
  /* Starts `passes` of the context's node (MH_PASS_* bits it supports). MH_OK: started (or done);
   * an error: nothing of them was done, the executor runs them on the CPU. */
  int (*post)(void *self, struct mh_op_ctx *ctx, unsigned passes);
  /* Completes what post started, writing the node's outputs as the CPU op would. MH_OK, or an
   * error after which the executor runs those passes on the CPU. */
  int (*wait)(void *self, struct mh_op_ctx *ctx, unsigned passes);
  /* Told when the executor ran passes on the CPU after the backend failed them (counting, warning). */
  void (*fell_back)(void *self, const struct mh_op_ctx *ctx, unsigned passes);
  /* Segments (optional, NULL: none): a chain of nodes the backend runs as one program, activations
   * staying on its side. segment() names the last node of the chain starting at `node` that it runs
   * as one (from the placement: every node of it placed there for all its passes), or `node` for none.
   * run_segment() runs n consecutive nodes' contexts start to end: MH_PASS_FWD in forward order, or
   * the backward (each context's `passes`) of a chain whose forward it ran in this step. MH_OK; or
   * MH_ERR_UNSUPPORTED, declined before anything was tried (another batch size than the segment's);
   * or another error: it failed. Either way the executor runs every node of it on its own, from the
   * same inputs. */
  int (*segment)(void *self, const mh_graph *g, int node, const unsigned char *place, int precision);
  int (*run_segment)(void *self, struct mh_op_ctx *ctx, int n, unsigned pass);
  /* Its counters by name, since it started (up to max; returns how many it has). A new counter is
   * added here alone: reports, JSON and per-step figures take every one by name. */
  int (*stats)(void *self, mh_stat *out, int max);
} mh_backend;

#endif
