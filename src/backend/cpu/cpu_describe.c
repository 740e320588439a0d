/* The public description of this CPU and its kernel tables (mh_cpu_describe, mh_cpu_name), for
 * `mandheling info` and the benchmark summaries: every speed figure names the CPU it ran on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels.h"
#include "core/status.h"
#include "mandheling.h"

const char *mh_cpu_name(void) {
  static char name[128];
  const mh_cpu_info *c = mh_cpu_info_get();
  if (!*name) snprintf(name, sizeof name, "%s (family %d, model %d)", c->brand, c->family, c->model);
  return name;
}

int mh_cpu_describe(char **text) {
  const mh_cpu_info *c = mh_cpu_info_get();
  size_t cap = 4096;
  char *s = malloc(cap);
  if (!s) return mh__error(MH_ERR_NOMEM, "out of memory");
  size_t n = (size_t)snprintf(s, cap, "cpu: %s, %s (family %d, model %d)\nisa found:", c->brand, c->vendor, c->family,
                              c->model);
  static const struct { unsigned bit; const char *name; } bits[] = {
      {MH_CPU_AVX2, " avx2+fma"}, {MH_CPU_AVXVNNI, " avx-vnni"}, {MH_CPU_AVX512, " avx512(f,bw,vl,dq)"},
      {MH_CPU_AVX512VNNI, " avx512-vnni"}, {MH_CPU_NEON, " neon"}};
  int any = 0;
  for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
    if (c->isa & bits[i].bit) n += (size_t)snprintf(s + n, cap - n, "%s", bits[i].name), any = 1;
  if (!any) n += (size_t)snprintf(s + n, cap - n, " none beyond the baseline");
  const mh_cpu_kernels *def = NULL;
  mh_cpu_kernels_select(NULL, 0, &def);
  mh_clear_error();
  n += (size_t)snprintf(s + n, cap - n, "\nkernel tables (--isa, MH_ISA; * = used by default):\n");
  n += (size_t)snprintf(s + n, cap - n, "  %-12s %-10s %-22s %-42s %s\n", "table", "here", "fp32 GEMM", "int8 GEMM",
                        "element-wise");
  for (int i = 0; mh_cpu_kernels_at(i); i++) {
    const mh_cpu_kernels *kt = mh_cpu_kernels_at(i);
    char label[16];
    snprintf(label, sizeof label, "%s%s", kt->isa, kt == def ? " *" : "");
    n += (size_t)snprintf(s + n, cap - n, "  %-12s %-10s %-22s %-42s %s\n", label,
                          mh_cpu_kernels_available(kt) ? "yes" : "no", kt->f32_desc, kt->s8_desc, kt->elt_desc);
  }
  *text = s;
  return MH_OK;
}
