/* CPU detection (see cpu_features.h): CPUID leaves 0, 1, 7 (subleaves 0 and 1) and the brand string,
 * XGETBV for the register state the OS saves. A feature counts only when both agree. */
#include "backend/cpu/cpu_features.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

static void detect(mh_cpu_info *c) {
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return;
  unsigned max_leaf = a;
  memcpy(c->vendor, &b, 4), memcpy(c->vendor + 4, &d, 4), memcpy(c->vendor + 8, &cx, 4);
  c->vendor[12] = 0;
  __get_cpuid(1, &a, &b, &cx, &d);
  int base_family = (a >> 8) & 15, base_model = (a >> 4) & 15;
  c->family = base_family == 15 ? base_family + (int)((a >> 20) & 255) : base_family;
  c->model = base_family == 6 || base_family == 15 ? base_model + (int)(((a >> 16) & 15) << 4) : base_model;
  int osxsave = (cx >> 27) & 1, fma = (cx >> 12) & 1;
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  int os_ymm = (xcr0 & 6) == 6, os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0; /* sse+avx; opmask+zmm state */
  unsigned b7 = 0, c7 = 0, a71 = 0;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b7, c7, d);
    unsigned subleaves = a;
    if (subleaves >= 1) __cpuid_count(7, 1, a71, b, cx, d);
  }
  int avx2 = (b7 >> 5) & 1, f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
  if (os_ymm && avx2 && fma) c->isa |= MH_CPU_AVX2;
  if (os_zmm && (c->isa & MH_CPU_AVX2) && f && dq && bw && vl) c->isa |= MH_CPU_AVX512;
  if ((c->isa & MH_CPU_AVX2) && ((a71 >> 4) & 1)) c->isa |= MH_CPU_AVXVNNI;
  if ((c->isa & MH_CPU_AVX512) && ((c7 >> 11) & 1)) c->isa |= MH_CPU_AVX512VNNI;
  unsigned brand[12];
  if (__get_cpuid(0x80000000u, &a, &b, &cx, &d) && a >= 0x80000004u) {
    for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    char s[49];
    memcpy(s, brand, 48);
    s[48] = 0;
    const char *p = s;
    while (*p == ' ') p++;
    snprintf(c->brand, sizeof c->brand, "%s", p);
  }
}
#else
static void detect(mh_cpu_info *c) {
#if defined(__aarch64__)
  snprintf(c->vendor, sizeof c->vendor, "arm64");
  c->isa |= MH_CPU_NEON;
#else
  snprintf(c->vendor, sizeof c->vendor, "unknown");
#endif
  FILE *f = fopen("/proc/cpuinfo", "r"); /* the brand, where the kernel reports one */
  char line[256];
  while (f && fgets(line, sizeof line, f)) {
    char *v = strchr(line, ':');
    if (!v || (strncmp(line, "model name", 10) && strncmp(line, "Model", 5))) continue;
    for (v++; *v == ' ' || *v == '\t'; v++) {}
    v[strcspn(v, "\n")] = 0;
    snprintf(c->brand, sizeof c->brand, "%s", v);
    break;
  }
  if (f) fclose(f);
}
#endif

static mh_cpu_info g_info;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect_once(void) {
  memset(&g_info, 0, sizeof g_info);
  snprintf(g_info.brand, sizeof g_info.brand, "unknown CPU");
  detect(&g_info);
}

const mh_cpu_info *mh_cpu_info_get(void) {
  pthread_once(&g_once, detect_once);
  return &g_info;
}
