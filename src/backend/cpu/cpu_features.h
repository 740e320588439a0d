/* What this CPU is and which vector ISAs it and the OS let us use: CPUID feature bits checked against
 * XGETBV's enabled register state on x86-64. Detection only; choosing kernels is cpu_kernels.c's job. */
#ifndef MH_BACKEND_CPU_CPU_FEATURES_H
#define MH_BACKEND_CPU_CPU_FEATURES_H

enum {
  MH_CPU_AVX2 = 1 << 0,       /* AVX2 + FMA, with the OS saving ymm state */
  MH_CPU_AVX512 = 1 << 1,     /* AVX-512 F, BW, VL and DQ, with the OS saving zmm and mask state */
  MH_CPU_AVXVNNI = 1 << 2,    /* AVX-VNNI: vpdpbusd on ymm with a VEX encoding */
  MH_CPU_AVX512VNNI = 1 << 3, /* AVX512-VNNI: vpdpbusd on zmm (and ymm with VL) */
  MH_CPU_NEON = 1 << 4        /* arm64 Advanced SIMD (baseline there) */
};

typedef struct mh_cpu_info {
  char vendor[16];  /* "GenuineIntel", "AuthenticAMD", ... or the architecture elsewhere */
  char brand[64];   /* the processor brand string, as /proc/cpuinfo's "model name" */
  int family, model; /* display family and model, as /proc/cpuinfo's "cpu family" and "model" */
  unsigned isa;      /* MH_CPU_* bits usable here */
} mh_cpu_info;

/* Detected once (thread-safe), then cached. */
const mh_cpu_info *mh_cpu_info_get(void);

#endif
