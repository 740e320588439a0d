/* Executed-packet counts of the DSP program, from the counting QEMU plugin (dsp/qemu/): whether
 * they are available, totals, per message pass, and per function of the program. Derived from the
 * emulator's execution, not measured on a phone. */
#ifndef MH_BACKEND_DSP_PACKETS_H
#define MH_BACKEND_DSP_PACKETS_H

#include "backend/dsp/session.h"
#include "../../../dsp/qemu/mh_packets.h"

enum { MH_PKT_PASS_FWD, MH_PKT_PASS_BWD, MH_PKT_PASS_OTHER };

/* The plugin to load with the emulator (env MH_DSP_PLUGIN overrides the build's; MH_DSP_PLUGIN=""
 * or MH_DSP_PACKETS=0 turns counting off): writes its path to out, or "" when there is none. */
void mh_dsp_packets_locate(char *out, size_t n);
/* Makes the counter table for a session about to start (its fd goes to the emulator). */
int mh_dsp_packets_prepare(mh_dsp *d);
/* After the handshake: whether the plugin filled the table (else counting is off). */
int mh_dsp_packets_active(const mh_dsp *d);
void mh_dsp_packets_release(mh_dsp *d);

/* All packets counted so far, and those holding HVX instructions. */
void mh_dsp_packets_totals(const mh_dsp *d, double *packets, double *hvx);
/* Called by the session around each message: attributes the packets it ran to its pass. */
void mh_dsp_packets_posted(mh_dsp *d);
void mh_dsp_packets_answered(mh_dsp *d);

/* A copy of the per-function counters (n_funcs + 1 entries; free() it), or NULL. */
mh_pkt_func *mh_dsp_packets_copy(const mh_dsp *d, int *n);
/* The functions that ran the most packets between two copies, one line each (packets per step,
 * share, HVX share), as a malloc'ed table; NULL on no memory. */
char *mh_dsp_packets_top(const mh_pkt_func *before, const mh_pkt_func *after, int n, double steps, int top);

#endif
