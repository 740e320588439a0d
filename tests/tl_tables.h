/* The kernel tables a test runs on: every table this CPU supports, in order (portable first); the
 * ones it does not support are named as skipped. */
#ifndef MH_TL_TABLES_H
#define MH_TL_TABLES_H

#include <stdio.h>

#include "backend/cpu/kernels.h"

static int tl_kernel_tables(const mh_cpu_kernels **out, int max) {
  int n = 0;
  for (int i = 0; mh_cpu_kernels_at(i); i++) {
    const mh_cpu_kernels *kt = mh_cpu_kernels_at(i);
    if (!mh_cpu_kernels_available(kt)) printf("kernel table %s: not supported by this CPU, skipped\n", kt->isa);
    else if (n < max) out[n++] = kt;
  }
  return n;
}

#endif
