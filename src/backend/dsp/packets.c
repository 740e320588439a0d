/* Executed-packet counting on the host side (see packets.h): the counter table is a memfd the
 * emulator inherits and the plugin maps; the host reads it between messages. */
#define _GNU_SOURCE
#include "backend/dsp/packets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/paths.h"
#include "core/status.h"

#ifndef MH_DSP_PLUGIN_PATH
#define MH_DSP_PLUGIN_PATH ""
#endif

void mh_dsp_packets_locate(char *out, size_t n) {
  const char *env = getenv("MH_DSP_PLUGIN"), *off = getenv("MH_DSP_PACKETS");
  if (env) snprintf(out, n, "%s", env);
  else if (!mh__data_path("lib/mandheling/libmh_packets.so", MH_DSP_PLUGIN_PATH, out, n)) *out = 0;
  if ((off && !strcmp(off, "0")) || (*out && access(out, R_OK) != 0)) *out = 0;
}

int mh_dsp_packets_prepare(mh_dsp *d) {
  d->pkt_fd = -1, d->pkt = NULL;
  if (!d->plugin[0]) return MH_OK;
  d->pkt_fd = MH_MEMFD("mandheling-dsp-packets");
  void *m = MAP_FAILED;
  if (d->pkt_fd >= 0 && ftruncate(d->pkt_fd, (off_t)sizeof(mh_pkt_table)) == 0)
    m = mmap(NULL, sizeof(mh_pkt_table), PROT_READ | PROT_WRITE, MAP_SHARED, d->pkt_fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    if (d->pkt_fd >= 0) close(d->pkt_fd);
    d->pkt_fd = -1;
    return mh__error(MH_ERR_IO, "DSP packet counters: %s", strerror(e));
  }
  d->pkt = m; /* zero-filled: magic 0 until the plugin names the buckets */
  return MH_OK;
}

int mh_dsp_packets_active(const mh_dsp *d) { return d && d->pkt && d->pkt->magic == MH_PKT_MAGIC; }

void mh_dsp_packets_release(mh_dsp *d) {
  if (!d->pkt) return; /* nothing prepared (pkt_fd is then not ours to close) */
  munmap(d->pkt, sizeof(mh_pkt_table));
  if (d->pkt_fd >= 0) close(d->pkt_fd);
  d->pkt = NULL, d->pkt_fd = -1;
}

void mh_dsp_packets_totals(const mh_dsp *d, double *packets, double *hvx) {
  double p = 0, h = 0;
  if (mh_dsp_packets_active(d))
    for (uint32_t i = 0; i <= d->pkt->n_funcs && i < MH_PKT_FUNCS; i++)
      p += (double)d->pkt->funcs[i].packets, h += (double)d->pkt->funcs[i].hvx_packets;
  if (packets) *packets = p;
  if (hvx) *hvx = h;
}

void mh_dsp_packets_posted(mh_dsp *d) {
  if (mh_dsp_packets_active(d)) mh_dsp_packets_totals(d, &d->pkt_posted, NULL);
}

/* Forward: a subgraph run of forward nodes, or a forward element-wise op; backward: backward nodes
 * or element-wise backward; other: single GEMMs, requantisation, the handshake. */
static int pass_of(const mh_wire_msg *m) {
  switch (m->op) {
    case MH_WIRE_SG_RUN: return m->args.sg_run.node_mask & 1u ? MH_PKT_PASS_FWD : MH_PKT_PASS_BWD;
    case MH_WIRE_SEG_RUN: return m->args.seg_run.backward ? MH_PKT_PASS_BWD : MH_PKT_PASS_FWD;
    case MH_WIRE_RELU_S8:
    case MH_WIRE_MAXPOOL2_S8:
    case MH_WIRE_ADD_S8: return MH_PKT_PASS_FWD;
    case MH_WIRE_RELU_BWD_S8:
    case MH_WIRE_MAXPOOL2_BWD_S8: return MH_PKT_PASS_BWD;
    default: return MH_PKT_PASS_OTHER;
  }
}

void mh_dsp_packets_answered(mh_dsp *d) {
  if (!mh_dsp_packets_active(d)) return;
  double now;
  mh_dsp_packets_totals(d, &now, NULL);
  d->pkt_pass[pass_of(mh_dsp_msg(d))] += now - d->pkt_posted;
}

mh_pkt_func *mh_dsp_packets_copy(const mh_dsp *d, int *n) {
  *n = 0;
  if (!mh_dsp_packets_active(d)) return NULL;
  int count = (int)d->pkt->n_funcs + 1;
  mh_pkt_func *c = malloc(sizeof *c * (size_t)count);
  if (c) memcpy(c, d->pkt->funcs, sizeof *c * (size_t)count), *n = count;
  return c;
}

char *mh_dsp_packets_top(const mh_pkt_func *before, const mh_pkt_func *after, int n, double steps, int top) {
  double total = 0, *delta = calloc((size_t)n, sizeof(double));
  char *out = malloc((size_t)top * 128 + 256), *p = out;
  if (!delta || !out) {
    free(delta), free(out);
    return NULL;
  }
  for (int i = 0; i < n; i++) total += delta[i] = (double)(after[i].packets - before[i].packets);
  p += sprintf(p, "%-32s %16s %8s %8s\n", "DSP function", "packets/step", "share", "HVX");
  for (int k = 0; k < top; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (delta[i] > 0 && (best < 0 || delta[i] > delta[best])) best = i;
    if (best < 0) break;
    double hvx = (double)(after[best].hvx_packets - before[best].hvx_packets);
    p += sprintf(p, "%-32.32s %16.0f %7.1f%% %7.1f%%\n", after[best].name, delta[best] / steps,
                 100 * delta[best] / (total > 0 ? total : 1), 100 * hvx / delta[best]);
    delta[best] = 0;
  }
  free(delta);
  return out;
}
