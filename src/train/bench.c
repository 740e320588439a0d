/* The step benchmark: full training steps (forward, backward, SGD) on synthetic data, two warm-up
 * steps, then the median and minimum of timed steps. Measures; never judges. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/cost.h"
#include "backend/dsp/packets.h"
#include "backend/profile.h"
#include "core/rng.h"
#include "core/status.h"
#include "train/trainer.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Time per op type (forward, backward) summed over the timed steps, as a table. */
static char *profile_table(const mh_trainer *t, const double *prof, int steps, double step_ms) {
  const mh_graph *g = &t->m->g;
  double fwd[MH_OP_COUNT] = {0}, bwd[MH_OP_COUNT] = {0};
  int count[MH_OP_COUNT] = {0};
  for (int i = 1; i < g->n_nodes; i++) {
    fwd[g->nodes[i].op] += prof[2 * i] * 1e3 / steps;
    bwd[g->nodes[i].op] += prof[2 * i + 1] * 1e3 / steps;
    count[g->nodes[i].op]++;
  }
  char *out = malloc(4096), *p = out;
  if (!out) return NULL;
  double total = 0;
  p += sprintf(p, "%-10s %6s %12s %12s %8s\n", "op", "count", "forward ms", "backward ms", "share");
  for (int op = 1; op < MH_OP_COUNT; op++) total += fwd[op] + bwd[op];
  for (int op = 1; op < MH_OP_COUNT; op++)
    if (count[op])
      p += sprintf(p, "%-10s %6d %12.2f %12.2f %7.1f%%\n", mh_op_name((mh_op_type)op), count[op], fwd[op], bwd[op],
                   100 * (fwd[op] + bwd[op]) / (step_ms > 0 ? step_ms : 1));
  p += sprintf(p, "%-10s %6s %12s %12.2f %7.1f%%  (loss, optimizer, overhead: the rest of %.2f ms)\n", "ops", "", "",
               total, 100 * total / (step_ms > 0 ? step_ms : 1), step_ms);
  return out;
}

/* The DSP counters' growth since d0, divided by steps. */
static void per_step(const mh_trainer *t, const mh_dsp_report *d0, int steps, mh_dsp_report *r) {
  mh_trainer_dsp_report(t, r);
  double n = steps;
  r->gemms = (long)((r->gemms - d0->gemms) / n + 0.5), r->cpu_fallbacks = (long)((r->cpu_fallbacks - d0->cpu_fallbacks) / n + 0.5);
  r->messages = (long)((r->messages - d0->messages) / n + 0.5);
  r->macs = (r->macs - d0->macs) / n;
  r->bytes_to_dsp = (r->bytes_to_dsp - d0->bytes_to_dsp) / n, r->bytes_from_dsp = (r->bytes_from_dsp - d0->bytes_from_dsp) / n;
  r->split_parts = (long)((r->split_parts - d0->split_parts) / n + 0.5);
  r->vtcm_chunks = (long)((r->vtcm_chunks - d0->vtcm_chunks) / n + 0.5);
  r->fused_gemms = (long)((r->fused_gemms - d0->fused_gemms) / n + 0.5);
  r->int32_bytes_kept = (r->int32_bytes_kept - d0->int32_bytes_kept) / n;
  r->sg_runs = (long)((r->sg_runs - d0->sg_runs) / n + 0.5), r->sg_prepares = (long)((r->sg_prepares - d0->sg_prepares) / n + 0.5);
  r->sg_nodes_checked = (long)((r->sg_nodes_checked - d0->sg_nodes_checked) / n + 0.5);
  r->weight_bytes = (r->weight_bytes - d0->weight_bytes) / n, r->packed_bytes = (r->packed_bytes - d0->packed_bytes) / n;
  r->cosched_runs = (long)((r->cosched_runs - d0->cosched_runs) / n + 0.5);
  r->eltwise_ops = (long)((r->eltwise_ops - d0->eltwise_ops) / n + 0.5);
  r->seg_runs = (long)((r->seg_runs - d0->seg_runs) / n + 0.5);
  r->seg_prepares = (long)((r->seg_prepares - d0->seg_prepares) / n + 0.5);
  for (int i = 0; i < r->n_stats; i++) /* by name: the set may only have grown (packet counts) */
    for (int k = 0; k < d0->n_stats; k++)
      if (!strcmp(r->stats[i].name, d0->stats[k].name) && strcmp(r->stats[i].name, "reuse"))
        r->stats[i].value = (r->stats[i].value - d0->stats[k].value) / n;
  r->packets = (r->packets - d0->packets) / n, r->hvx_packets = (r->hvx_packets - d0->hvx_packets) / n;
  r->packets_fwd = (r->packets_fwd - d0->packets_fwd) / n, r->packets_bwd = (r->packets_bwd - d0->packets_bwd) / n;
  r->packets_other = (r->packets_other - d0->packets_other) / n;
}

/* Per node and pass on the DSP: packets counted per step (since `before`) against the cost model. */
static char *layers_table(const mh_trainer *t, const double *before, int batch, int steps) {
  const mh_graph *g = &t->m->g;
  const double *now = t->dsp_backend->node_packets;
  size_t cap = 512 + (size_t)g->n_nodes * 2 * 400;
  char *out = malloc(cap), *o = out;
  if (!out) return NULL;
  o += sprintf(o, "node\tname\tpass\tMMAC\tcounted\tmodelled\tratio");
  for (int f = 0; f < MH_DSPW_COUNT; f++) o += sprintf(o, "\t%s", mh_dsp_work_names[f]);
  o += sprintf(o, "\n");
  const int *seg = mh_exec_segment_first(t->ex);
  for (int i = 1; i < g->n_nodes; i++) {
    int last = mh_exec_segment_last(seg, g->n_nodes, i);
    for (int b = 0; b < 2; b++) {
      double counted = (now[2 * i + b] - before[2 * i + b]) / steps;
      if (counted <= 0) continue;
      double w[MH_DSPW_COUNT] = {0}, mmac = 0;
      unsigned passes = b == 0 ? MH_PASS_FWD : MH_PASS_BWD_W | MH_PASS_BWD_D;
      if (last > i) mh_dsp_segment_work(g, i, last, b, batch, w);
      else mh_dsp_node_work(g, i, passes, t->algo->precision, batch, w);
      for (int k = i; k <= last; k++)
        if (g->nodes[k].op == MH_OP_CONV2D || g->nodes[k].op == MH_OP_LINEAR)
          mmac += batch * (double)mh_node_macs(g, k) * (b ? 2 : 1) * 1e-6;
      double model = mh_dsp_work_packets(w);
      char name[160];
      snprintf(name, sizeof name, last > i ? "%s..%s" : "%s", g->nodes[i].name, g->nodes[last].name);
      o += sprintf(o, "%d\t%s\t%s\t%.3f\t%.0f\t%.0f\t%.3f", i, name, b ? "bwd" : "fwd", mmac, counted,
                   model, model > 0 ? counted / model : 0);
      for (int f = 0; f < MH_DSPW_COUNT; f++) o += sprintf(o, "\t%.0f", w[f]);
      o += sprintf(o, "\n");
    }
    i = last;
  }
  return out;
}

/* The function table with a last line on the segments' pads (the grid form's im2col on HVX): the grid
 * bytes they wrote per step and the bytes per packet their kernel executed. */
static char *pad_line(char *table, const mh_pkt_func *f0, const mh_pkt_func *f1, int n, double steps,
                      const mh_dsp_report *per_step) {
  double bytes = 0, packets = 0;
  for (int i = 0; i < per_step->n_stats; i++)
    if (!strcmp(per_step->stats[i].name, "pad_bytes")) bytes = per_step->stats[i].value;
  for (int i = 0; i < n; i++)
    if (!strncmp(f1[i].name, "mh_hvx_pad_", 11) || !strncmp(f1[i].name, "pad_", 4)) /* the kernel and its helpers */
      packets += (double)(f1[i].packets - f0[i].packets) / steps;
  if (!table || bytes <= 0 || packets <= 0) return table;
  size_t len = strlen(table);
  char *t = realloc(table, len + 160);
  if (!t) return table;
  snprintf(t + len, 160, "segment pads (grid-form im2col): %.2f MiB of grid per step, %.1f bytes per packet\n",
           bytes / 1048576.0, bytes / packets);
  return t;
}

int mh_bench(mh_trainer *t, int batch, int steps, int profile, mh_bench_result *res) {
  memset(res, 0, sizeof *res);
  if (batch < 1 || steps < 1) return mh__error(MH_ERR_INVALID_ARG, "bench: batch %d and steps %d must be >= 1", batch, steps);
  const mh_node *in = &t->m->g.nodes[0];
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
  size_t nx = (size_t)batch * in->c * in->h * in->w;
  float *x = malloc(nx * sizeof(float));
  int32_t *y = malloc((size_t)batch * sizeof(int32_t));
  double *ms = malloc((size_t)steps * sizeof(double));
  if (!x || !y || !ms) {
    free(x), free(y), free(ms);
    return mh__error(MH_ERR_NOMEM, "bench: out of memory");
  }
  /* standard-normal-ish inputs (sum of uniforms), random labels: like zoo.py's randn/randint */
  mh_rng r = mh_rng_make(mh_rng_key(t->cfg.seed, MH_STREAM_SYNTH, 0, 0));
  for (size_t i = 0; i < nx; i++) {
    float s = 0;
    for (int k = 0; k < 12; k++) s += mh_rng_uniform(&r);
    x[i] = s - 6.f;
  }
  for (int i = 0; i < batch; i++) y[i] = (int32_t)mh_rng_below(&r, (uint32_t)classes);
  int st = MH_OK;
  mh_dsp_report d0;
  memset(&d0, 0, sizeof d0);
  mh_pkt_func *funcs0 = NULL;
  int n_funcs = 0;
  double *layers0 = NULL; /* per-node packets before the timed steps */
  for (int i = 0; i < 2 + steps && st == MH_OK; i++) {
    if (i == 2 && profile) st = mh_exec_set_profile(t->ex, 1);
    if (i == 2) {
      mh_exec_reset_rescale_counts(t->ex), mh_trainer_dsp_report(t, &d0);
      funcs0 = mh_dsp_packets_copy(t->dsp, &n_funcs);
      if (t->dsp_backend && t->dsp_backend->node_packets &&
          (layers0 = malloc(sizeof(double) * 2 * (size_t)t->m->g.n_nodes)))
        memcpy(layers0, t->dsp_backend->node_packets, sizeof(double) * 2 * (size_t)t->m->g.n_nodes);
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    st = mh_trainer_step(t, x, y, batch, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (i >= 2) ms[i - 2] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6;
  }
  if (st == MH_OK) {
    qsort(ms, (size_t)steps, sizeof(double), cmp_double);
    res->step_ms_median = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    res->step_ms_min = ms[0];
    res->peak_bytes = mh_trainer_peak_bytes(t);
    double mean_ms = 0;
    for (int i = 0; i < steps; i++) mean_ms += ms[i] / steps;
    mh_rescale_report rr;
    mh__trainer_rescale_report(t, &rr);
    res->rescale_share = mean_ms > 0 ? rr.seconds * 1e3 / (mean_ms * steps) : 0;
    if (profile) res->profile = profile_table(t, mh_exec_profile(t->ex), steps, mean_ms);
    per_step(t, &d0, steps, &res->dsp_per_step);
    int n1 = 0;
    mh_pkt_func *funcs1 = funcs0 ? mh_dsp_packets_copy(t->dsp, &n1) : NULL;
    if (funcs1 && n1 == n_funcs) res->dsp_functions = pad_line(mh_dsp_packets_top(funcs0, funcs1, n1, steps, 20), funcs0,
                                                               funcs1, n1, steps, &res->dsp_per_step);
    free(funcs1);
    if (layers0) res->dsp_layers = layers_table(t, layers0, batch, steps);
    mh_profile p;
    if (funcs0 && mh_profile_find(&p, strcmp(t->profile, "host") ? t->profile : "sd865") == MH_OK) {
      snprintf(res->dsp_profile, sizeof res->dsp_profile, "%s", p.name);
      res->dsp_clock_ghz = p.dsp_clock_ghz, res->dsp_contexts = (int)p.dsp_contexts;
    }
  }
  free(funcs0), free(layers0);
  if (profile) mh_exec_set_profile(t->ex, 0);
  free(x), free(y), free(ms);
  return st;
}
