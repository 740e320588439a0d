/* Device profiles for the placement cost model: compute rates, memory and transport bandwidth,
 * latencies and energies of a CPU and a DSP, read from profiles/<name>.profile (key = value lines,
 * each with its source) or, for `host`, measured on this machine. */
#ifndef MH_BACKEND_PROFILE_H
#define MH_BACKEND_PROFILE_H

typedef struct mh_profile {
  char name[64];
  char origin[160];         /* where the numbers come from, for the printed plan */
  /* throughputs the cost model uses (derived from the file's per-cycle figures) */
  double cpu_fp32_gmacs;    /* whole CPU, GEMM-class work */
  double cpu_int8_gmacs;
  double dsp_int8_gmacs;    /* all HVX contexts */
  double dram_gbps;         /* streaming bandwidth either side sees */
  double transport_latency_us, transport_gbps; /* one CPU<->DSP hand-off */
  double dsp_vtcm_bytes;
  double dsp_clock_ghz, dsp_contexts; /* for times derived from executed packets (1 packet per cycle per context) */
  double cpu_efficiency, dsp_efficiency; /* sustained fraction of peak in GEMMs (already in the rates) */
  /* 1 (default; key dsp_packet_model): DSP tasks take the packets the calibrated model gives them
   * (src/backend/dsp/cost.h) at dsp_clock_ghz on the one HVX context the program uses; 0: their MACs
   * at dsp_int8_gmacs */
  int dsp_packet_model;
  /* energy (0 when the profile has none) */
  double e_cpu_fp32_mac_pj, e_cpu_int8_mac_pj, e_dsp_int8_mac_pj, e_dram_byte_pj, e_transport_call_uj;
} mh_profile;

/* Reads a profile file; a missing key or a malformed line is an error naming file:line. */
int mh_profile_load(mh_profile *p, const char *path);
/* `name` as a file in the profiles directory, or a path. */
int mh_profile_find(mh_profile *p, const char *name_or_path);
/* This machine: CPU rates and memory bandwidth measured by short micro-benchmarks (about a second),
 * the doorbell round trip measured on the emulator when present; the DSP's compute and the energies
 * come from `dsp_side` (a real DSP cannot be measured here). */
int mh_profile_measure_host(mh_profile *p, const mh_profile *dsp_side, int threads);
/* A device profile by name as the commands take it: "host" (measured now, the DSP side from
 * sd865), or a name/path for mh_profile_find. */
int mh_profile_resolve(mh_profile *p, const char *name, int threads);

#endif
