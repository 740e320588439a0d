/* The counter table shared by the packet-counting QEMU plugin (mh_packets.c, which fills it while
 * the DSP program runs) and the host (src/backend/dsp/packets.c, which reads it between messages):
 * one bucket per function of the DSP program, sorted by address, plus "(other)". */
#ifndef MH_DSP_QEMU_PACKETS_H
#define MH_DSP_QEMU_PACKETS_H

#include <stdint.h>

#define MH_PKT_MAGIC 0x544b506du /* "mPKT": set by the plugin once the buckets are named */
#define MH_PKT_FUNCS 512u

typedef struct mh_pkt_func {
  char name[48];
  uint64_t lo, hi;          /* the function's addresses [lo, hi) */
  uint64_t packets;         /* packets executed in it */
  uint64_t hvx_packets;     /* ... of which hold at least one HVX instruction */
} mh_pkt_func;

/* Whether a 32-bit Hexagon instruction word is an HVX instruction: parse bits not 00 (a duplex
 * holds two scalar sub-instructions), instruction class 1 or 2, and bit 27 set (the coprocessor
 * encodings of those classes; with bit 27 clear they are scalar compare-and-jumps). */
static inline int mh_pkt_word_is_hvx(uint32_t w) {
  uint32_t cls = w >> 28;
  return ((w >> 14) & 3u) != 0 && (cls == 1 || cls == 2) && ((w >> 27) & 1u);
}

typedef struct mh_pkt_table {
  uint32_t magic, n_funcs;  /* n_funcs named buckets, then funcs[n_funcs] = "(other)" */
  uint32_t reserved[14];
  mh_pkt_func funcs[MH_PKT_FUNCS];
} mh_pkt_table;

#endif
