/* The placement planner (see planner.h). Costs: a task takes max(MACs / rate, bytes / bandwidth) on
 * a side; a hand-off between sides costs the transport latency plus the bytes handed over at
 * transport bandwidth; energy is MACs x pJ/MAC (at the sustained efficiency) + bytes x pJ/byte +
 * hand-offs x uJ/call. */
#include "backend/planner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/cost.h"
#include "core/status.h"
#include "ops/ops.h"

enum { CPU = 0, DSP = 1 };

typedef struct {
  char name[96];
  double macs, bytes, in_bytes; /* work, memory traffic, what a hand-off into this task moves */
  int dsp_ok;
  double dsp_packets;           /* when dsp_ok: the packets the DSP program executes for it (cost.h) */
  const char *why_cpu;          /* when !dsp_ok */
  int pair;                     /* 1: bwd-weight that may overlap with the preceding bwd-data task */
  int node;                     /* the graph node (-1: loss, update) */
  unsigned place;               /* its MH_PLACE_* bit */
  double t[2], e[2];            /* time (ms) and energy (mJ) per side */
  int side;                     /* chosen */
} task;

/* The DSP program runs on one HVX context (one packet per cycle); its work in packets comes from the
 * model calibrated on executed-packet counts (profile.h: dsp_packet_model 0 costs MACs at a rate). */
#define DSP_PROGRAM_CONTEXTS 1
static double task_ms(const mh_profile *p, const task *t, int side, int int8) {
  double rate = side == DSP ? p->dsp_int8_gmacs : int8 ? p->cpu_int8_gmacs : p->cpu_fp32_gmacs;
  double c = t->macs / (rate * 1e9), m = t->bytes / (p->dram_gbps * 1e9);
  if (side == DSP && p->dsp_packet_model && p->dsp_clock_ghz > 0) c = t->dsp_packets / (p->dsp_clock_ghz * 1e9 * DSP_PROGRAM_CONTEXTS);
  return (c > m ? c : m) * 1e3;
}
/* Energies per MAC are quoted at peak throughput: at a sustained fraction of peak the unit draws its
 * power for proportionally longer, so a MAC costs pJ / efficiency. */
static double task_mj(const mh_profile *p, const task *t, int side, int int8) {
  double pj = side == DSP ? p->e_dsp_int8_mac_pj / p->dsp_efficiency
                          : (int8 ? p->e_cpu_int8_mac_pj : p->e_cpu_fp32_mac_pj) / p->cpu_efficiency;
  return (t->macs * pj + t->bytes * p->e_dram_byte_pj) * 1e-9;
}
static double handoff_ms(const mh_profile *p, double bytes) { return p->transport_latency_us * 1e-3 + bytes / (p->transport_gbps * 1e9) * 1e3; }
static double handoff_mj(const mh_profile *p, double bytes) { return p->e_transport_call_uj * 1e-3 + bytes * p->e_dram_byte_pj * 1e-9; }

/* Why a node's pass stays on the CPU when the DSP program does not run it (mh_dsp_supports). */
static const char *why_cpu(const mh_graph *g, int i, int precision) {
  const mh_node *nd = &g->nodes[i];
  if (precision == MH_PRECISION_FP32) return "FP32: v66 HVX has no vector float";
  switch (nd->op) {
    case MH_OP_CONV2D: return "grouped or depthwise convolution: direct loops on the CPU";
    case MH_OP_BATCHNORM: return "batch norm: float statistics, division";
    case MH_OP_MAXPOOL: return precision == MH_PRECISION_INTEGER ? "the DSP's max-pool takes 2x2 windows of stride 2 only"
                                                                 : "float elementwise (int8 algorithm keeps FP32 between GEMMs)";
    case MH_OP_ADD: return precision == MH_PRECISION_INTEGER ? "hands the error on: no work"
                                                             : "float elementwise (int8 algorithm keeps FP32 between GEMMs)";
    default: return precision == MH_PRECISION_INTEGER ? "no DSP form" : "float elementwise (int8 algorithm keeps FP32 between GEMMs)";
  }
}

/* The step's tasks for a precision (elements of activations: 4 bytes in FP32, 1 in int8/integer). */
static void set_packets(const mh_graph *g, int precision, int B, task *t) {
  double w[MH_DSPW_COUNT] = {0};
  if (t->dsp_ok) mh_dsp_node_work(g, t->node, t->place, precision, B, w);
  t->dsp_packets = mh_dsp_work_packets(w);
}

/* With a trainable mask, only the backward work partial training does (graph.h:
 * mh_graph_backward_needs) and the update of the trainable parameters. */
static int build_tasks(const mh_graph *g, int precision, int B, const unsigned char *trainable, task **out) {
  int N = g->n_nodes, cap = 3 * N + 4, n = 0;
  task *ts = calloc((size_t)cap, sizeof *ts);
  unsigned char *trains = malloc((size_t)N), *bwd = malloc((size_t)N);
  if (!ts || !trains || !bwd) {
    free(ts), free(trains), free(bwd);
    return mh__error(MH_ERR_NOMEM, "planner: out of memory");
  }
  mh_graph_backward_needs(g, trainable, trains, bwd);
  int integer = precision == MH_PRECISION_INTEGER, q = precision != MH_PRECISION_FP32;
  double act = q ? 1 : 4;
  for (int pass = 0; pass < 2; pass++) {
    for (int k = 1; k < N; k++) {
      int i = pass == 0 ? k : N - k; /* forward in order, backward in reverse */
      const mh_node *nd = &g->nodes[i], *in = &g->nodes[nd->in[0]];
      double xin = (double)B * in->c * in->h * in->w * act, y = (double)B * nd->c * nd->h * nd->w * act;
      double w = 0;
      for (int p = 0; p < nd->n_params; p++) w += (double)g->params[nd->param0 + p].numel * (q ? 1 : 4);
      int gemm = nd->op == MH_OP_CONV2D || nd->op == MH_OP_LINEAR;
      double macs = gemm ? (double)B * mh_node_macs(g, i) : 0;
      const char *dir = pass == 0 ? "fwd" : "bwd";
      if (pass == 1 && !bwd[i]) continue; /* below the first trainable layer: no backward */
      if (pass == 1 && gemm) { /* backward-data (unless no gradient is needed below) and backward-weight */
        if (nd->in[0] != 0 && bwd[nd->in[0]]) {
          task *t = &ts[n++];
          snprintf(t->name, sizeof t->name, "bwd-data %s", nd->name);
          t->macs = macs, t->bytes = y + w + xin * (q && !integer ? 4 : 1), t->in_bytes = y;
          t->dsp_ok = mh_dsp_supports(g, i, MH_PASS_BWD_D, precision), t->why_cpu = why_cpu(g, i, precision);
          t->node = i, t->place = MH_PASS_BWD_D;
        }
        if (!trains[i]) continue; /* frozen: no weight gradient */
        task *t = &ts[n++];
        snprintf(t->name, sizeof t->name, "bwd-weight %s", nd->name);
        t->macs = macs, t->bytes = y + xin + w * 4, t->in_bytes = y;
        t->dsp_ok = mh_dsp_supports(g, i, MH_PASS_BWD_W, precision), t->why_cpu = why_cpu(g, i, precision);
        t->pair = nd->in[0] != 0 && bwd[nd->in[0]];
        t->node = i, t->place = MH_PASS_BWD_W;
        continue;
      }
      if (nd->op == MH_OP_FLATTEN) continue; /* a view */
      task *t = &ts[n++];
      unsigned bit = pass == 0 ? MH_PASS_FWD : MH_PASS_BWD_D;
      snprintf(t->name, sizeof t->name, "%s %s", dir, nd->name);
      t->macs = macs, t->bytes = xin + y + w, t->in_bytes = xin;
      t->dsp_ok = mh_dsp_supports(g, i, bit, precision), t->why_cpu = why_cpu(g, i, precision);
      t->node = i, t->place = bit;
      if (pass == 0 && k == N - 1) { /* the loss sits between forward and backward */
        task *l = &ts[n++];
        snprintf(l->name, sizeof l->name, "loss (softmax cross-entropy)");
        l->bytes = 2 * y, l->in_bytes = y, l->why_cpu = "softmax: exponentials, division, int64";
        l->node = -1;
      }
    }
  }
  task *u = &ts[n++];
  double np = 0;
  for (int i = 0; i < g->n_params; i++) np += trains[g->params[i].node] ? (double)g->params[i].numel : 0;
  snprintf(u->name, sizeof u->name, "update (%s)", integer ? "integer" : "SGD on FP32 masters");
  u->bytes = integer ? np * 6 : np * 16, u->in_bytes = integer ? np * 4 : np * 4, u->dsp_ok = 0;
  u->why_cpu = integer ? "the DSP program has no update" : "FP32 SGD with momentum";
  u->node = -1;
  for (int i = 0; i < n; i++)
    if (ts[i].node >= 0) set_packets(g, precision, B, &ts[i]);
  free(trains), free(bwd);
  *out = ts;
  return n;
}

static void cost_tasks(const mh_profile *p, task *ts, int n, int precision) {
  int q = precision != MH_PRECISION_FP32;
  for (int i = 0; i < n; i++)
    for (int s = 0; s < 2; s++) {
      ts[i].t[s] = s == DSP && !ts[i].dsp_ok ? 1e30 : task_ms(p, &ts[i], s, q && ts[i].macs > 0);
      ts[i].e[s] = task_mj(p, &ts[i], s, q && ts[i].macs > 0);
    }
}

/* Time/energy of a fixed placement (sides already in ts[].side), with overlap of pairs on
 * different sides. */
static mh_plan_totals evaluate(const mh_profile *p, const task *ts, int n) {
  mh_plan_totals r = {0, 0, 0, 0};
  double macs = 0, dmacs = 0;
  int prev = CPU;
  for (int i = 0; i < n; i++) {
    const task *t = &ts[i];
    macs += t->macs;
    if (t->side == DSP) dmacs += t->macs;
    r.mj += t->e[t->side];
    if (t->pair && ts[i - 1].side != t->side) { /* overlaps with bwd-data: pay the longer one */
      double a = ts[i - 1].t[ts[i - 1].side], b = t->t[t->side] + handoff_ms(p, t->in_bytes);
      r.ms += (b > a ? b - a : 0);
      r.mj += handoff_mj(p, t->in_bytes);
      r.handoffs++;
      continue; /* prev stays the bwd-data side: the next task follows it */
    }
    if (t->side != prev) {
      r.ms += handoff_ms(p, t->in_bytes), r.mj += handoff_mj(p, t->in_bytes);
      r.handoffs++;
    }
    r.ms += t->t[t->side];
    prev = t->side;
  }
  r.dsp_macs_share = macs > 0 ? dmacs / macs : 0;
  return r;
}

/* Minimum-time placement by dynamic programming over (task, side of the task the next one follows). */
static void place(const mh_profile *p, task *ts, int n) {
  double *best = malloc(sizeof(double) * 2 * (n + 1));
  int *from = malloc(sizeof(int) * 2 * (n + 1)), *pairside = malloc(sizeof(int) * 2 * (n + 1));
  best[0] = 0, best[1] = 1e30; /* the step starts on the CPU (the data is there) */
  for (int i = 0; i < n; i++) {
    for (int s = 0; s < 2; s++) {
      best[2 * (i + 1) + s] = 1e30, from[2 * (i + 1) + s] = 0, pairside[2 * (i + 1) + s] = s;
      for (int ps = 0; ps < 2; ps++) {
        double b = best[2 * i + ps];
        if (b >= 1e30) continue;
        if (ts[i].pair) { /* s is the state carried on (the bwd-data side = ps); choose this task's side */
          if (s != ps) continue;
          for (int my = 0; my < 2; my++) {
            if (ts[i].t[my] >= 1e30) continue;
            double c = my == ps ? ts[i].t[my] : ts[i].t[my] + handoff_ms(p, ts[i].in_bytes) - ts[i - 1].t[ps];
            if (my != ps && c < 0) c = 0;
            if (b + c < best[2 * (i + 1) + s]) best[2 * (i + 1) + s] = b + c, from[2 * (i + 1) + s] = ps, pairside[2 * (i + 1) + s] = my;
          }
          continue;
        }
        if (ts[i].t[s] >= 1e30) continue;
        double c = ts[i].t[s] + (s != ps ? handoff_ms(p, ts[i].in_bytes) : 0);
        if (b + c < best[2 * (i + 1) + s]) best[2 * (i + 1) + s] = b + c, from[2 * (i + 1) + s] = ps, pairside[2 * (i + 1) + s] = s;
      }
    }
  }
  int s = best[2 * n] <= best[2 * n + 1] ? 0 : 1;
  for (int i = n; i >= 1; i--) {
    ts[i - 1].side = pairside[2 * i + s];
    s = from[2 * i + s];
  }
  free(best), free(from), free(pairside);
}

static void all_on(task *ts, int n, int dsp) {
  for (int i = 0; i < n; i++) ts[i].side = dsp && ts[i].dsp_ok ? DSP : CPU;
}

int mh_plan(const mh_graph *g, int precision, const mh_profile *p, int batch, char **text, mh_plan_summary *sum,
            unsigned char *placement) {
  return mh_plan_partial(g, precision, p, batch, NULL, text, sum, placement);
}

int mh_plan_partial(const mh_graph *g, int precision, const mh_profile *p, int batch, const unsigned char *trainable,
                    char **text, mh_plan_summary *sum, unsigned char *placement) {
  task *ts = NULL, *tf = NULL;
  int n = build_tasks(g, precision, batch, trainable, &ts);
  if (n < 0) return n;
  int nf = build_tasks(g, MH_PRECISION_FP32, batch, trainable, &tf);
  if (nf < 0) {
    free(ts);
    return nf;
  }
  cost_tasks(p, ts, n, precision), cost_tasks(p, tf, nf, MH_PRECISION_FP32);
  all_on(tf, nf, 0), sum->cpu_fp32 = evaluate(p, tf, nf);
  all_on(ts, n, 0), sum->cpu = evaluate(p, ts, n);
  all_on(ts, n, 1), sum->dsp = evaluate(p, ts, n);
  place(p, ts, n), sum->cosched = evaluate(p, ts, n);
  if (placement) {
    memset(placement, 0, (size_t)g->n_nodes);
    for (int i = 0; i < n; i++)
      if (ts[i].node >= 0 && ts[i].side == DSP) placement[ts[i].node] |= (unsigned char)ts[i].place;
  }
  if (!text) {
    free(ts), free(tf);
    return MH_OK;
  }
  size_t cap = 4096 + (size_t)n * 200;
  char *out = malloc(cap), *o = out;
  if (!out) {
    free(ts), free(tf);
    return mh__error(MH_ERR_NOMEM, "planner: out of memory");
  }
  o += sprintf(o, "plan for %s, batch %d, profile %s (MODELLED: %s)\n", g->model_name, batch, p->name, p->origin);
  o += sprintf(o, "%-34s %10s %10s %10s  %-4s %s\n", "task", "MMAC", "CPU ms", "DSP ms", "on", "why");
  for (int i = 0; i < n; i++) {
    const task *t = &ts[i];
    char dsp[32];
    if (t->t[DSP] >= 1e30) snprintf(dsp, sizeof dsp, "-");
    else snprintf(dsp, sizeof dsp, "%.3f", t->t[DSP]);
    const char *why = !t->dsp_ok ? t->why_cpu
                      : t->pair && t->side != ts[i - 1].side ? "runs beside bwd-data on the other side"
                      : t->side == DSP ? "faster on the DSP, hand-offs included"
                                       : "faster on the CPU, hand-offs included";
    o += sprintf(o, "%-34.34s %10.2f %10.3f %10s  %-4s %s\n", t->name, t->macs * 1e-6, t->t[CPU], dsp,
                 t->side == DSP ? "DSP" : "CPU", why);
  }
  const mh_plan_totals *r[4] = {&sum->cpu_fp32, &sum->cpu, &sum->dsp, &sum->cosched};
  const char *lbl[4] = {"CPU only, fp32", "CPU only, this algorithm", "DSP wherever it can", "co-scheduled (plan above)"};
  o += sprintf(o, "\npredicted step (modelled)         %10s %10s %9s %13s %18s\n", "ms", "mJ", "hand-offs", "MACs on DSP",
               "vs CPU-only fp32");
  for (int k = 0; k < 4; k++)
    o += sprintf(o, "  %-31s %10.2f %10.3f %9d %12.0f%% %8.2fx time %5.2fx energy\n", lbl[k], r[k]->ms, r[k]->mj,
                 r[k]->handoffs, 100 * r[k]->dsp_macs_share, sum->cpu_fp32.ms / r[k]->ms,
                 r[k]->mj > 0 ? sum->cpu_fp32.mj / r[k]->mj : 0);
  free(ts), free(tf);
  *text = out;
  return MH_OK;
}
