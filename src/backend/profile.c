/* Profile files and the measured host profile. */
#define _GNU_SOURCE
#include "backend/profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "backend/dsp/session.h"
#include "core/pool.h"
#include "core/paths.h"
#include "core/status.h"

#ifndef MH_PROFILES_DIR
#define MH_PROFILES_DIR "profiles"
#endif

typedef struct {
  const char *key;
  double v;
  int seen;
} kv;

enum {
  K_CONTEXTS, K_DSP_CLOCK, K_DSP_MACS, K_VTCM, K_CORES, K_CPU_CLOCK, K_CPU_F32, K_CPU_I8, K_DRAM, K_LAT, K_TBW,
  K_E_DSP, K_E_F32, K_E_I8, K_E_DRAM, K_E_CALL, K_CPU_EFF, K_DSP_EFF, K_PACKETS, K_N
};

int mh_profile_load(mh_profile *p, const char *path) {
  kv keys[K_N] = {{"dsp_hvx_contexts"}, {"dsp_clock_ghz"}, {"dsp_int8_macs_per_cycle"}, {"dsp_vtcm_bytes"},
                  {"cpu_cores_big"}, {"cpu_clock_ghz"}, {"cpu_fp32_macs_per_cycle"}, {"cpu_int8_macs_per_cycle"},
                  {"dram_gbps"}, {"transport_latency_us"}, {"transport_gbps"}, {"energy_dsp_pj_per_int8_mac"},
                  {"energy_cpu_pj_per_fp32_mac"}, {"energy_cpu_pj_per_int8_mac"}, {"energy_dram_pj_per_byte"},
                  {"energy_transport_uj_per_call"}, {"cpu_gemm_efficiency"}, {"dsp_gemm_efficiency"},
                  {"dsp_packet_model"}};
  FILE *f = fopen(path, "r");
  if (!f) return mh__error(MH_ERR_IO, "%s: cannot open the profile", path);
  memset(p, 0, sizeof *p);
  char line[1024];
  int ln = 0, st = MH_OK;
  while (st == MH_OK && fgets(line, sizeof line, f)) {
    ln++;
    char *h = strchr(line, '#');
    if (h) *h = 0;
    char *eq = strchr(line, '='), *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n' || *s == '\r') continue;
    if (!eq) {
      st = mh__error(MH_ERR_FORMAT, "%s:%d: expected 'key = value'", path, ln);
      break;
    }
    char key[64];
    int kl = 0;
    for (char *q = s; q < eq && kl < 63; q++)
      if (*q != ' ' && *q != '\t') key[kl++] = *q;
    key[kl] = 0;
    char *v = eq + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcmp(key, "name")) {
      int n = 0;
      while (v[n] && v[n] != ' ' && v[n] != '\t' && v[n] != '\n' && v[n] != '\r' && n < 63) n++;
      snprintf(p->name, sizeof p->name, "%.*s", n, v);
      continue;
    }
    char *end;
    double x = strtod(v, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
    if (end == v || *end || !(x >= 0) || !isfinite(x)) {
      st = mh__error(MH_ERR_FORMAT, "%s:%d: %s: '%.40s' is not a non-negative number", path, ln, key, v);
      break;
    }
    for (int i = 0; i < K_N; i++)
      if (!strcmp(key, keys[i].key)) keys[i].v = x, keys[i].seen = 1; /* unknown keys: notes for readers */
  }
  fclose(f);
  if (st) return st;
  for (int i = 0; i < K_N; i++)
    if (!keys[i].seen && i != K_CPU_EFF && i != K_DSP_EFF && i != K_PACKETS)
      return mh__error(MH_ERR_FORMAT, "%s: profile lacks '%s'", path, keys[i].key);
  double ce = keys[K_CPU_EFF].seen ? keys[K_CPU_EFF].v : 1, de = keys[K_DSP_EFF].seen ? keys[K_DSP_EFF].v : 1;
  p->cpu_fp32_gmacs = keys[K_CORES].v * keys[K_CPU_CLOCK].v * keys[K_CPU_F32].v * ce;
  p->cpu_int8_gmacs = keys[K_CORES].v * keys[K_CPU_CLOCK].v * keys[K_CPU_I8].v * ce;
  p->dsp_int8_gmacs = keys[K_CONTEXTS].v * keys[K_DSP_CLOCK].v * keys[K_DSP_MACS].v * de;
  p->dram_gbps = keys[K_DRAM].v, p->transport_latency_us = keys[K_LAT].v, p->transport_gbps = keys[K_TBW].v;
  p->dsp_vtcm_bytes = keys[K_VTCM].v;
  p->dsp_clock_ghz = keys[K_DSP_CLOCK].v, p->dsp_contexts = keys[K_CONTEXTS].v;
  p->cpu_efficiency = ce, p->dsp_efficiency = de;
  p->dsp_packet_model = keys[K_PACKETS].seen ? keys[K_PACKETS].v != 0 : 1;
  if (!(ce > 0 && ce <= 1) || !(de > 0 && de <= 1)) return mh__error(MH_ERR_FORMAT, "%s: GEMM efficiencies must be in (0, 1]", path);
  p->e_dsp_int8_mac_pj = keys[K_E_DSP].v, p->e_cpu_fp32_mac_pj = keys[K_E_F32].v, p->e_cpu_int8_mac_pj = keys[K_E_I8].v;
  p->e_dram_byte_pj = keys[K_E_DRAM].v, p->e_transport_call_uj = keys[K_E_CALL].v;
  if (!p->cpu_fp32_gmacs || !p->cpu_int8_gmacs || !p->dsp_int8_gmacs || !p->dram_gbps || !p->transport_gbps)
    return mh__error(MH_ERR_FORMAT, "%s: a throughput or bandwidth is zero", path);
  if (!*p->name) snprintf(p->name, sizeof p->name, "%s", path);
  snprintf(p->origin, sizeof p->origin, "%s (public figures, each with its source in the file)", path);
  return MH_OK;
}

int mh_profile_find(mh_profile *p, const char *name) {
  if (strchr(name, '/') || strstr(name, ".profile")) return mh_profile_load(p, name);
  char path[4352], rel[512], build[4352];
  snprintf(rel, sizeof rel, "share/mandheling/profiles/%s.profile", name);
  snprintf(build, sizeof build, "%s/%s.profile", MH_PROFILES_DIR, name);
  if (!mh__data_path(rel, build, path, sizeof path))
    return mh__error(MH_ERR_INVALID_ARG, "profile '%s' not found (looked for %s; 'host' is measured, sd865 is in profiles/)",
                     name, build);
  return mh_profile_load(p, path);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best of a few runs of one GEMM shape typical of a convolution (GMAC/s). */
static double gemm_rate(const mh_cpu_kernels *kt, mh_pool *pool, int s8) {
  enum { M = 128, N = 784, K = 576 };
  float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)K * N, 4), *c = calloc((size_t)M * N, 4);
  int8_t *a8 = calloc((size_t)M * K, 1), *b8 = calloc((size_t)K * N, 1);
  int32_t *c8 = calloc((size_t)M * N, 4);
  double best = 1e30;
  for (int r = 0; r < 5 && a && b && c && a8 && b8 && c8; r++) {
    double t0 = now_s();
    if (s8) {
      mh_gemm_s8_args g = {M, N, K, a8, K, 0, b8, N, 0, c8, N, 0};
      mh_gemm_s8(kt, pool, &g);
    } else {
      mh_gemm_f32_args g = {M, N, K, a, K, 0, b, N, 0, c, N, 0};
      mh_gemm_f32(kt, pool, &g);
    }
    double t = now_s() - t0;
    best = t < best ? t : best;
  }
  free(a), free(b), free(c), free(a8), free(b8), free(c8);
  return (double)M * N * K / best * 1e-9;
}

static double copy_gbps(void) {
  size_t n = 64u << 20;
  char *a = malloc(n), *b = malloc(n);
  if (!a || !b) {
    free(a), free(b);
    return 10;
  }
  memset(a, 1, n), memset(b, 2, n);
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t0 = now_s();
    memcpy(b, a, n);
    double t = now_s() - t0;
    best = t < best ? t : best;
  }
  free(a), free(b);
  return 2.0 * n / best * 1e-9; /* read + write */
}

int mh_profile_measure_host(mh_profile *p, const mh_profile *dsp, int threads) {
  *p = *dsp;
  snprintf(p->name, sizeof p->name, "host");
  mh_pool *pool = NULL;
  MH_TRY(mh_pool_init(&pool, threads));
  const mh_cpu_kernels *kt = mh_cpu_kernels_get(0);
  p->cpu_fp32_gmacs = gemm_rate(kt, pool, 0);
  p->cpu_int8_gmacs = gemm_rate(kt, pool, 1);
  p->cpu_efficiency = 1; /* measured rates are sustained rates */
  mh_pool_free(pool);
  p->dram_gbps = copy_gbps();
  p->transport_gbps = p->dram_gbps; /* a shared region: the hand-off costs a copy at memory speed */
  mh_dsp *d = NULL;
  const char *lat = "the DSP profile's";
  if (mh_dsp_open(&d, 1u << 20) == MH_OK) { /* the doorbell round trip through the emulator's pipes */
    double best = 1e30;
    for (int i = 0; i < 50; i++) {
      mh_dsp_msg(d)->op = MH_WIRE_HELLO;
      double t0 = now_s();
      if (mh_dsp_call(d, 5000)) break;
      double t = now_s() - t0;
      best = t < best ? t : best;
    }
    if (best < 1e30) p->transport_latency_us = best * 1e6, lat = "measured on the emulator's doorbell";
    mh_dsp_close(d);
  }
  mh_clear_error();
  snprintf(p->origin, sizeof p->origin,
           "this machine: CPU GEMM rates and memory bandwidth measured now (%d threads), transport latency %s, DSP "
           "compute and energies from %s",
           threads, lat, dsp->name);
  return MH_OK;
}

int mh_profile_resolve(mh_profile *p, const char *name, int threads) {
  if (strcmp(name, "host") != 0) return mh_profile_find(p, name);
  mh_profile dsp;
  MH_TRY(mh_profile_find(&dsp, "sd865"));
  return mh_profile_measure_host(p, &dsp, threads);
}
