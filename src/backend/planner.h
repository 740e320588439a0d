/* The CPU-DSP placement planner: splits a training step into tasks (each op's forward, backward-data,
 * backward-weight, the loss, the update), costs each on each side from a device profile, and places
 * them by dynamic programming over the step, counting every CPU<->DSP hand-off and letting an op's
 * backward-data and backward-weight run on different sides at once (co-scheduling). Modelled numbers. */
#ifndef MH_BACKEND_PLANNER_H
#define MH_BACKEND_PLANNER_H

#include "backend/profile.h"
#include "graph/graph.h"

typedef struct mh_plan_totals {
  double ms, mj;        /* modelled step time and energy */
  int handoffs;         /* CPU<->DSP boundaries crossed */
  double dsp_macs_share; /* fraction of MACs on the DSP */
} mh_plan_totals;

typedef struct mh_plan_summary {
  mh_plan_totals cpu_fp32; /* everything on the CPU in FP32: the baseline */
  mh_plan_totals cpu;      /* this algorithm, everything on the CPU */
  mh_plan_totals dsp;      /* every task the DSP can run on the DSP */
  mh_plan_totals cosched;  /* the planner's placement */
} mh_plan_summary;

/* precision: mh_precision of the algorithm. Writes a printable plan (caller frees *text; text may
 * be NULL) and, when placement is given, the co-scheduled placement (g->n_nodes bytes of MH_PASS_* bits). */
int mh_plan(const mh_graph *g, int precision, const mh_profile *p, int batch, char **text, mh_plan_summary *sum,
            unsigned char *placement);
/* The same for partial training: trainable per node (NULL: all train; see mh_graph_backward_needs). */
int mh_plan_partial(const mh_graph *g, int precision, const mh_profile *p, int batch, const unsigned char *trainable,
                    char **text, mh_plan_summary *sum, unsigned char *placement);

#endif
