/* How the GEMM drivers (FP32 and int8) cut C into pool tasks: MC-row blocks, NC-column blocks
 * (the tasks), and row groups only when there are too few column blocks for the threads. */
#ifndef MH_BACKEND_CPU_GEMM_SPLIT_H
#define MH_BACKEND_CPU_GEMM_SPLIT_H

typedef struct mh_gemm_split {
  int mc, nc;       /* block sizes: multiples of the micro-tile MR and NR */
  int mt, nt;       /* row blocks, column blocks */
  int mgroups;      /* row groups; tasks = mgroups * nt */
} mh_gemm_split;

static inline int mh__ceil_div(int a, int b) { return (a + b - 1) / b; }

/* NC shrinks (down to 4 panels) until every thread has at least two column blocks. */
static inline mh_gemm_split mh__gemm_split(int m, int n, int mr, int nr, int mc_target, int nc_max, int nth) {
  mh_gemm_split s;
  s.mc = mh__ceil_div(mc_target, mr) * mr;
  if (s.mc > mh__ceil_div(m, mr) * mr) s.mc = mh__ceil_div(m, mr) * mr;
  s.nc = mh__ceil_div(n < nc_max ? n : nc_max, nr) * nr;
  s.mt = mh__ceil_div(m, s.mc);
  while (nth > 1 && mh__ceil_div(n, s.nc) < 2 * nth && s.nc > 4 * nr) s.nc = mh__ceil_div(s.nc / 2, nr) * nr;
  s.nt = mh__ceil_div(n, s.nc);
  s.mgroups = s.nt >= 2 * nth ? 1 : mh__ceil_div(2 * nth, s.nt);
  if (s.mgroups > s.mt) s.mgroups = s.mt;
  return s;
}

#endif
