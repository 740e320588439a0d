/* A DSP session: the Hexagon program (dsp/) behind a transport, one shared memory region that
 * carries the message slot and tensors, and a doorbell. The emulator transport (transport_emu.c)
 * runs the program under qemu-hexagon here; a phone needs a FastRPC transport behind the same
 * interface. */
#ifndef MH_BACKEND_DSP_SESSION_H
#define MH_BACKEND_DSP_SESSION_H

#include <errno.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdint.h>

#include "../../../dsp/wire.h"

typedef struct mh_dsp mh_dsp;

/* How the host reaches the DSP. start() makes the region and launches the program; post() sends
 * one sequence number; wait() waits (up to timeout_ms) for it to come back, so the host can work
 * in between; stop() ends the program. */
typedef struct mh_dsp_transport {
  const char *name;
  int (*start)(mh_dsp *d);
  int (*post)(mh_dsp *d, uint32_t seq);
  int (*wait)(mh_dsp *d, uint32_t seq, int timeout_ms);
  void (*stop)(mh_dsp *d);
} mh_dsp_transport;

struct mh_dsp {
  const mh_dsp_transport *tr;
  uint8_t *region;      /* mapped shared region */
  size_t region_bytes;
  uint32_t seq;
  long messages;        /* doorbells rung since open */
  uint32_t pending;     /* the sequence number posted and not yet waited for (0: none) */
  int alive;
  /* the region's memory plan (subgraph.c): persistent tensors of prepared subgraphs grow up from
   * the tensor area's start; per-run tensors sit at the top; single GEMMs use what lies between */
  uint32_t persist_top, transient_low;
  int reuse;            /* 1: keep subgraphs prepared across runs; 0: rebuild before every run */
  struct mh_dsp_sg *sgs; /* the host's handles of cached subgraphs */
  int n_sgs;
  /* transport state */
  int memfd, req_fd, rep_fd;
  int pid;
  char program[512], emulator[512];
  /* executed-packet counting (packets.c): the plugin's counter table when it is loaded */
  char plugin[512];     /* the QEMU plugin to load ("" : none) */
  int pkt_fd;
  struct mh_pkt_table *pkt;
  double pkt_posted;    /* the table's total when the message in flight was posted */
  double pkt_pass[3];   /* packets of messages by pass: forward, backward, other (packets.h) */
};

extern const mh_dsp_transport mh_dsp_transport_emu;

/* Where the DSP program and emulator are (env MH_DSP_ELF, MH_QEMU_HEXAGON override the defaults),
 * and whether both exist; why (when not) goes to `why`. */
int mh_dsp_locate(char *program, size_t np, char *emulator, size_t ne, char *why, size_t nw);

/* Opens a session with a region of at least region_bytes (rounded up to pages; the first page is
 * the header and message slot) and checks the handshake. */
int mh_dsp_open(mh_dsp **out, size_t region_bytes);
void mh_dsp_close(mh_dsp *d); /* NULL-safe; asks the program to exit, then stops it */

/* The tensor area: offsets in messages count from the region's start, tensors from MH_WIRE_PAGE. */
static inline uint8_t *mh_dsp_at(mh_dsp *d, uint32_t off) { return d->region + off; }

/* Where single messages may put their tensors: above every prepared subgraph's persistent data. */
static inline uint32_t mh_dsp_free_base(const mh_dsp *d) { return (d->persist_top + 127u) & ~127u; }

/* Offsets in the free area for `count` tensors of bytes[i] (each 128-byte aligned), or an error
 * naming `what` when they do not fit the region. */
int mh_dsp_free_offsets(const mh_dsp *d, int count, const uint64_t *bytes, uint32_t *off, const char *what);

/* Sends the message in the slot (op and args filled by the caller) and waits for the reply.
 * MH_OK, or an error naming the wire status, a timeout, or a DSP that died. */
int mh_dsp_call(mh_dsp *d, int timeout_ms);
/* The same in two halves: post the message, do other work (not touching the slot or the tensors
 * the message uses), then wait for its reply. */
int mh_dsp_post(mh_dsp *d);
int mh_dsp_wait(mh_dsp *d, int timeout_ms);
static inline mh_wire_msg *mh_dsp_msg(mh_dsp *d) { return (mh_wire_msg *)(d->region + MH_WIRE_MSG_OFFSET); }

const char *mh_wire_status_name(uint32_t status);

/* The shared region and the counter table are memfds: Linux, and Android from API 30. Elsewhere the
 * library still builds; the DSP then reports that it cannot start. */
#if defined(__linux__) && (!defined(__ANDROID__) || (defined(__ANDROID_API__) && __ANDROID_API__ >= 30))
#define MH_MEMFD(name) memfd_create((name), MFD_CLOEXEC)
#else
#define MH_MEMFD(name) (errno = ENOSYS, -1)
#endif

#endif
