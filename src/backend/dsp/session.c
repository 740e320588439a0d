/* DSP session lifetime and the call protocol over a transport: handshake, sequence numbers, and
 * the mapping of wire statuses and transport failures to library errors. */
#include "backend/dsp/session.h"

#include "backend/dsp/packets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define MH_DSP_CLOSE_WAIT_MS 60000

const char *mh_wire_status_name(uint32_t s) {
  switch (s) {
    case MH_WIRE_OK: return "ok";
    case MH_WIRE_E_OP: return "unknown operation";
    case MH_WIRE_E_BOUNDS: return "offset or size outside the shared region";
    case MH_WIRE_E_ARG: return "bad dimension, stride or flag";
    case MH_WIRE_E_VTCM: return "working set exceeds the VTCM budget";
    case MH_WIRE_E_VERSION: return "wire format version mismatch";
    case MH_WIRE_E_SUBGRAPH: return "subgraph not prepared";
    default: return "unknown status";
  }
}

int mh_dsp_free_offsets(const mh_dsp *d, int count, const uint64_t *bytes, uint32_t *off, const char *what) {
  uint64_t at = mh_dsp_free_base(d);
  for (int i = 0; i < count; i++) off[i] = (uint32_t)at, at += (bytes[i] + 127) / 128 * 128;
  if (at > d->region_bytes)
    return mh__error(MH_ERR_UNSUPPORTED, "DSP %s: %llu bytes exceed the %zu-byte shared region", what,
                     (unsigned long long)at, d->region_bytes);
  return MH_OK;
}

int mh_dsp_post(mh_dsp *d) {
  if (!d->alive) return mh__error(MH_ERR_BACKEND, "DSP (%s): the session is not running", d->tr->name);
  if (d->pending) return mh__error(MH_ERR_INVALID_ARG, "DSP: message %u is still in flight", d->pending);
  mh_wire_msg *msg = mh_dsp_msg(d);
  msg->seq = ++d->seq;
  msg->status = 0xffffffffu;
  d->messages++;
  mh_dsp_packets_posted(d);
  MH_TRY(d->tr->post(d, d->seq));
  d->pending = d->seq;
  return MH_OK;
}

int mh_dsp_wait(mh_dsp *d, int timeout_ms) {
  if (!d->pending) return mh__error(MH_ERR_INVALID_ARG, "DSP: no message in flight");
  uint32_t seq = d->pending;
  d->pending = 0;
  MH_TRY(d->tr->wait(d, seq, timeout_ms));
  mh_dsp_packets_answered(d);
  mh_wire_msg *msg = mh_dsp_msg(d);
  if (msg->status != MH_WIRE_OK)
    return mh__error(MH_ERR_INVALID_ARG, "DSP rejected message %u (op %u): %s", seq, msg->op, mh_wire_status_name(msg->status));
  return MH_OK;
}

int mh_dsp_call(mh_dsp *d, int timeout_ms) {
  MH_TRY(mh_dsp_post(d));
  return mh_dsp_wait(d, timeout_ms);
}

/* Opens a session, loading the packet-counting plugin when `plugin` names one. */
static int open_session(mh_dsp **out, size_t region_bytes, const char *plugin) {
  *out = NULL;
  mh_dsp *d = calloc(1, sizeof *d);
  if (!d) return mh__error(MH_ERR_NOMEM, "DSP: out of memory");
  d->tr = &mh_dsp_transport_emu;
  d->memfd = d->req_fd = d->rep_fd = d->pkt_fd = -1;
  snprintf(d->plugin, sizeof d->plugin, "%s", plugin);
  d->reuse = 1;
  d->region_bytes = (region_bytes + 2 * MH_WIRE_PAGE - 1) / MH_WIRE_PAGE * MH_WIRE_PAGE;
  d->persist_top = MH_WIRE_PAGE, d->transient_low = (uint32_t)d->region_bytes;
  if (d->region_bytes > 0xfffff000u) {
    free(d);
    return mh__error(MH_ERR_INVALID_ARG, "DSP: a shared region of %zu bytes exceeds the 32-bit DSP address space", region_bytes);
  }
  int st = mh_dsp_packets_prepare(d);
  if (st == MH_OK) st = d->tr->start(d);
  if (st == MH_OK) {
    mh_wire_msg *msg = mh_dsp_msg(d);
    memset(msg, 0, sizeof *msg);
    msg->op = MH_WIRE_HELLO;
    st = mh_dsp_call(d, 20000); /* the emulator's start-up takes a moment */
    if (st == MH_OK && msg->version != MH_WIRE_VERSION)
      st = mh__error(MH_ERR_FORMAT, "DSP program speaks wire version %u, the host %u", msg->version, MH_WIRE_VERSION);
  }
  if (st) {
    mh_dsp_close(d);
    return st;
  }
  if (!mh_dsp_packets_active(d)) mh_dsp_packets_release(d); /* the plugin did not take: no counts */
  *out = d;
  return MH_OK;
}

int mh_dsp_open(mh_dsp **out, size_t region_bytes) {
  char plugin[512];
  mh_dsp_packets_locate(plugin, sizeof plugin);
  int st = open_session(out, region_bytes, plugin);
  if (st != MH_OK && plugin[0]) st = open_session(out, region_bytes, ""); /* without the counting plugin */
  return st;
}

int mh_dsp_probe(char *desc, size_t n) {
  char prog[512], emu[512];
  if (!mh_dsp_locate(prog, sizeof prog, emu, sizeof emu, desc, n)) return 0;
  mh_dsp *d = NULL;
  if (mh_dsp_open(&d, 1u << 20) != MH_OK) {
    snprintf(desc, n, "the DSP program did not start: %s", mh_last_error());
    return 0;
  }
  snprintf(desc, n, "Hexagon v66 + HVX-128 program %s via %s (transport %s, wire v%u, VTCM budget %u KiB; emulated: "
                    "results bit-exact, no timing%s%s)",
           prog, emu, d->tr->name, MH_WIRE_VERSION, mh_dsp_msg(d)->vtcm_bytes / 1024,
           mh_dsp_packets_active(d) ? "; executed packets counted by " : "", mh_dsp_packets_active(d) ? d->plugin : "");
  mh_dsp_close(d);
  return 1;
}

void mh_dsp_close(mh_dsp *d) {
  if (!d) return;
  if (d->alive && d->pending) mh_dsp_wait(d, MH_DSP_CLOSE_WAIT_MS); /* the reply of a message in flight */
  if (d->alive) {
    mh_wire_msg *msg = mh_dsp_msg(d);
    memset(msg, 0, sizeof *msg);
    msg->op = MH_WIRE_EXIT;
    mh_dsp_call(d, 2000);
  }
  d->tr->stop(d);
  mh_dsp_packets_release(d);
  free(d->sgs);
  free(d);
}
