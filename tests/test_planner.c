/* The placement planner and device profiles: profile files parse (and bad ones fail naming the
 * file and line), every zoo model gets a plan, the planned placement is never slower than all-CPU or
 * DSP-wherever-possible under the same model, float work never lands on the DSP, and more expensive
 * hand-offs never move work onto the DSP. The cost model itself is pinned against values worked out by
 * hand on a profile of round numbers and a one-layer model (every term of time, energy, hand-off and
 * pair overlap, and the loader's derived rates). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/planner.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "backend/dsp/cost.h"
#include "testlib.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* A device of round numbers for the hand-worked costs below: every key the loader reads, the GEMM
 * efficiencies given (NULL: the line left out). No two factors of a rate are equal and none is 1,
 * so dropping or swapping any of them changes a rate. */
static void write_round_profile(const char *path, const char *cpu_eff, const char *dsp_eff) {
  FILE *f = fopen(path, "w");
  fputs("name = round\n"
        "cpu_cores_big = 4\n"
        "cpu_clock_ghz = 1.25\n"
        "cpu_fp32_macs_per_cycle = 8\n"
        "cpu_int8_macs_per_cycle = 16\n"
        "dsp_hvx_contexts = 2\n"
        "dsp_clock_ghz = 2.5\n"
        "dsp_int8_macs_per_cycle = 32\n"
        "dsp_vtcm_bytes = 262144\n"
        "dram_gbps = 20\n"
        "transport_latency_us = 1.5\n"
        "transport_gbps = 10\n"
        "energy_cpu_pj_per_fp32_mac = 30\n"
        "energy_cpu_pj_per_int8_mac = 10\n"
        "energy_dsp_pj_per_int8_mac = 2\n"
        "energy_dram_pj_per_byte = 5\n"
        "energy_transport_uj_per_call = 3\n"
        "dsp_packet_model = 0\n",
        f);
  if (cpu_eff) fprintf(f, "cpu_gemm_efficiency = %s\n", cpu_eff);
  if (dsp_eff) fprintf(f, "dsp_gemm_efficiency = %s\n", dsp_eff);
  fclose(f);
}

/* The loader's derived rates are units x clock x MACs/cycle x GEMM efficiency (profile.c); the other
 * figures are copied as written; a missing efficiency is 1, and an efficiency must lie in (0, 1]
 * (1 itself included). Expected values: the products of the file's numbers, worked out by hand. */
static void loader_rates(const char *path) {
  mh_profile p;
  write_round_profile(path, "0.2", "0.25");
  CHECK_OK(mh_profile_load(&p, path));
  CHECK(strcmp(p.name, "round") == 0);
  CHECK_NEAR(p.cpu_fp32_gmacs, 8, 0, 1e-12);  /* 4 cores x 1.25 GHz x 8 MAC/cycle x 0.2 = 8 GMAC/s */
  CHECK_NEAR(p.cpu_int8_gmacs, 16, 0, 1e-12); /* 4 x 1.25 x 16 x 0.2 = 16 */
  CHECK_NEAR(p.dsp_int8_gmacs, 40, 0, 1e-12); /* 2 contexts x 2.5 GHz x 32 MAC/cycle x 0.25 = 40 */
  CHECK(p.cpu_efficiency == 0.2 && p.dsp_efficiency == 0.25);
  CHECK(p.dram_gbps == 20 && p.transport_latency_us == 1.5 && p.transport_gbps == 10);
  CHECK(p.dsp_vtcm_bytes == 262144);
  CHECK(p.e_cpu_fp32_mac_pj == 30 && p.e_cpu_int8_mac_pj == 10 && p.e_dsp_int8_mac_pj == 2);
  CHECK(p.e_dram_byte_pj == 5 && p.e_transport_call_uj == 3);
  /* no efficiency lines: peak rates, 4 x 1.25 x 8 = 40, 4 x 1.25 x 16 = 80, 2 x 2.5 x 32 = 160 */
  write_round_profile(path, NULL, NULL);
  CHECK_OK(mh_profile_load(&p, path));
  CHECK_NEAR(p.cpu_fp32_gmacs, 40, 0, 1e-12);
  CHECK_NEAR(p.cpu_int8_gmacs, 80, 0, 1e-12);
  CHECK_NEAR(p.dsp_int8_gmacs, 160, 0, 1e-12);
  CHECK(p.cpu_efficiency == 1 && p.dsp_efficiency == 1);
  /* the bounds of (0, 1] */
  write_round_profile(path, "1", "1");
  CHECK_OK(mh_profile_load(&p, path));
  CHECK_NEAR(p.dsp_int8_gmacs, 160, 0, 1e-12);
  write_round_profile(path, "1.5", "0.25");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "efficiencies") != NULL);
  write_round_profile(path, "0.2", "0");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "efficiencies") != NULL);
}

/* Modelled totals: ms and mJ to 1e-9 relative (the hand values are exact decimals; only binary
 * rounding separates them), hand-offs and the DSP's share of the MACs. */
#define CHECK_TOTALS(t, ms_, mj_, handoffs_, share_) \
  do {                                               \
    CHECK_NEAR((t).ms, ms_, 0, 1e-9);                \
    CHECK_NEAR((t).mj, mj_, 0, 1e-9);                \
    CHECK_EQ_INT((t).handoffs, handoffs_);           \
    CHECK_NEAR((t).dsp_macs_share, share_, 1e-12, 0); \
  } while (0)

/* The planner's cost model (planner.c) against a hand calculation: a task takes max(MACs / rate,
 * bytes / DRAM bandwidth) on a side; a hand-off costs latency + bytes / transport bandwidth and
 * e_call + bytes x e_DRAM; a MAC costs e_MAC / efficiency, a byte e_DRAM; a bwd-weight beside its
 * bwd-data on the other side adds only what it (with its hand-off) takes beyond the bwd-data.
 *
 * The device (write_round_profile): CPU fp32 8, CPU int8 16, DSP 40 GMAC/s (see loader_rates);
 * DRAM 20 GB/s = 20000 B/us; transport 1.5 us + 10000 B/us; energies per MAC 30/0.2 = 150 pJ
 * (CPU fp32), 10/0.2 = 50 pJ (CPU int8), 2/0.25 = 8 pJ (DSP); 5 pJ per byte, 3 uJ per hand-off.
 * The model: input 1x4x4, flatten, linear 16 -> 4 without bias (64 weights), batch 1000. Each GEMM
 * pass is 1000 x 4 x 16 = 64000 MACs: 4 us on the CPU in int8, 8 us in fp32, 1.6 us on the DSP.
 * Its tasks (build_tasks), bytes with 1-byte int8 activations and weights (4 bytes in fp32):
 *   fwd fc         x 16000 + y 4000 + w 64         = 20064 B    hand-off in: x, 16000 B
 *   loss           2 y                             =  8000 B    (CPU only)   in: y, 4000 B
 *   bwd-data fc    dy 4000 + w 64 + x 16000 x 4    = 68064 B    (the x-sized term at 4 bytes in int8,
 *                                                               FP32 between GEMMs; 1 byte in integer:
 *                                                               4000 + 64 + 16000 = 20064 B)
 *   bwd-weight fc  dy 4000 + x 16000 + w 64 x 4    = 20256 B    pairs with bwd-data, in 4000 B
 *   update         64 x 16 = 1024 B (FP32 SGD, CPU only), 64 x 6 = 384 B (integer, either side)
 *                                                               in: 64 x 4 = 256 B
 * Times (us): CPU = max(MAC time, bytes / 20000), DSP likewise at 1.6 us per GEMM:
 *   fwd    CPU max(4, 1.0032) = 4 (compute-bound)   DSP max(1.6, 1.0032) = 1.6
 *   loss   CPU 8000 / 20000 = 0.4
 *   bwd-d  CPU max(4, 3.4032) = 4                   DSP max(1.6, 3.4032) = 3.4032 (memory-bound)
 *   bwd-w  CPU 4                                    DSP max(1.6, 1.0128) = 1.6
 *   update CPU 1024 / 20000 = 0.0512 (memory only)
 * Hand-offs at 1.5 us latency: 16000 B -> 1.5 + 1.6 = 3.1 us, 4000 B -> 1.9 us, 256 B -> 1.5256 us;
 *   energy 3 uJ + 5 pJ/B: 16000 B -> 3.08 uJ, 4000 B -> 3.02 uJ, 256 B -> 3.00128 uJ.
 * Bytes over the step: int8 20064 + 8000 + 68064 + 20256 + 1024 = 117408 B -> 0.58704 uJ. */
static void hand_costs(const char *path) {
  static const char text[] = "input 1x4x4\nflatten f\nlinear fc out=4 bias=false\n";
  mh_graph g;
  CHECK_OK(mh_model_parse(&g, text, strlen(text), "round.mh"));
  int fc = mh_graph_find(&g, "fc");
  CHECK_EQ_INT(fc, 2);
  CHECK_EQ_INT(g.n_param_floats, 64);
  mh_profile p;
  write_round_profile(path, "0.2", "0.25");
  CHECK_OK(mh_profile_load(&p, path));
  mh_plan_summary s;
  unsigned char place[3] = {9, 9, 9};

  /* int8 at 1.5 us per hand-off. */
  CHECK_OK(mh_plan(&g, MH_PRECISION_INT8, &p, 1000, NULL, &s, place));
  /* fp32 on the CPU, 4-byte tensors: fwd 16000 x 4 + 4000 x 4 + 256 = 80256 B -> max(8, 4.0128) = 8 us;
   * loss 2 x 16000 = 32000 B -> 1.6 us; bwd-d 16000 + 256 + 64000 = 80256 B -> 8 us; bwd-w 16000 + 64000
   * + 1024 = 81024 B -> 8 us; update 1024 B -> 0.0512 us. 8 + 1.6 + 8 + 8 + 0.0512 = 25.6512 us.
   * Energy: 3 x 64000 x 150 pJ = 28.8 uJ + (80256 + 32000 + 80256 + 81024 + 1024 = 274560 B) x 5 pJ
   * = 1.3728 uJ -> 30.1728 uJ. */
  CHECK_TOTALS(s.cpu_fp32, 25.6512e-3, 30.1728e-3, 0, 0);
  /* int8 on the CPU: 4 + 0.4 + 4 + 4 + 0.0512 = 12.4512 us; 3 x 64000 x 50 pJ = 9.6 uJ + 0.58704 uJ. */
  CHECK_TOTALS(s.cpu, 12.4512e-3, 10.18704e-3, 0, 0);
  /* every GEMM on the DSP: fwd 3.1 + 1.6, loss back on the CPU 1.9 + 0.4, bwd-d 1.9 + 3.4032, bwd-w
   * 1.6 (same side), update back 1.5256 + 0.0512 -> 4.7 + 2.3 + 5.3032 + 1.6 + 1.5768 = 15.48 us, 4
   * hand-offs. Energy: 192000 x 8 pJ = 1.536 + 0.58704 + 3.08 + 3.02 + 3.02 + 3.00128 = 14.24432 uJ. */
  CHECK_TOTALS(s.dsp, 15.48e-3, 14.24432e-3, 4, 1);
  /* planned: fwd on the DSP would cost 3.1 + 1.6 > 4, bwd-d 1.9 + 3.4032 > 4, so only the bwd-weight
   * moves, beside the bwd-data: 1.6 + 1.9 = 3.5 us < 4 us, hidden. 4 + 0.4 + 4 + 0 + 0.0512 = 8.4512 us;
   * 1 hand-off; the update follows the bwd-data on the CPU. Energy 128000 x 50 pJ = 6.4 + 64000 x 8 pJ
   * = 0.512 + 0.58704 + 3.02 = 10.51904 uJ; a third of the MACs on the DSP. */
  CHECK_TOTALS(s.cosched, 8.4512e-3, 10.51904e-3, 1, 1.0 / 3);
  CHECK_EQ_INT(place[0], 0);
  CHECK_EQ_INT(place[1], 0);
  CHECK_EQ_INT(place[fc], MH_PASS_BWD_W);

  /* int8 at 3 us per hand-off: the bwd-weight now outlasts the bwd-data, 1.6 + 3 + 0.4 = 5 us vs 4 us,
   * so the pair costs 1 us more (still less than the CPU's 4 us): 4 + 0.4 + 4 + 1 + 0.0512 = 9.4512 us.
   * All-DSP: 4 hand-offs 1.5 us dearer, 15.48 + 6 = 21.48 us. Energies as before (latency costs none). */
  mh_profile slow = p;
  slow.transport_latency_us = 3;
  CHECK_OK(mh_plan(&g, MH_PRECISION_INT8, &slow, 1000, NULL, &s, place));
  CHECK_TOTALS(s.cpu, 12.4512e-3, 10.18704e-3, 0, 0);
  CHECK_TOTALS(s.dsp, 21.48e-3, 14.24432e-3, 4, 1);
  CHECK_TOTALS(s.cosched, 9.4512e-3, 10.51904e-3, 1, 1.0 / 3);
  CHECK_EQ_INT(place[fc], MH_PASS_BWD_W);

  /* integer (niti) at 0.25 us per hand-off: hand-offs 16000 B -> 0.25 + 1.6 = 1.85 us, 4000 B -> 0.65 us,
   * 256 B -> 0.2756 us; bwd-d 20064 B -> CPU 4, DSP max(1.6, 1.0032) = 1.6 us; the update (384 B ->
   * 0.0192 us) runs on the CPU (the DSP program has no update). Bytes 20064 + 8000 + 20064 + 20256 + 384
   * = 68768 B -> 0.34384 uJ.
   * CPU: 4 + 0.4 + 4 + 4 + 0.0192 = 12.4192 us; 9.6 + 0.34384 = 9.94384 uJ.
   * All-DSP: fwd 1.85 + 1.6, loss 0.65 + 0.4, bwd-d 0.65 + 1.6, bwd-w 1.6, the update back on the CPU
   * 0.2756 + 0.0192 -> 3.45 + 1.05 + 2.25 + 1.6 + 0.2948 = 8.6448 us, 4 hand-offs; 1.536 + 0.34384 + 3.08
   * + 3.02 + 3.02 + 3.00128 = 14.00112 uJ.
   * Planned: fwd on the DSP would save 4 - 3.45 = 0.55 us but the loss's way back costs 0.65, so fwd
   * stays; moving bwd-d (0.65 + 1.6) and bwd-w after it would need the way back to the update too
   * (2.25 + 1.6 + 0.2756 = 4.1256 us for 8 us of CPU work: 8.5448 us in all), while the bwd-weight
   * alone beside the bwd-data on the CPU is hidden (1.6 + 0.65 = 2.25 < 4): 4 + 0.4 + 4 + 0 + 0.0192 =
   * 8.4192 us, 1 hand-off; 128000 x 50 pJ = 6.4 + 64000 x 8 pJ = 0.512 + 0.34384 + 3.02 = 10.27584 uJ,
   * a third of the MACs. */
  mh_profile fast = p;
  fast.transport_latency_us = 0.25;
  CHECK_OK(mh_plan(&g, MH_PRECISION_INTEGER, &fast, 1000, NULL, &s, place));
  CHECK_TOTALS(s.cpu_fp32, 25.6512e-3, 30.1728e-3, 0, 0);
  CHECK_TOTALS(s.cpu, 12.4192e-3, 9.94384e-3, 0, 0);
  CHECK_TOTALS(s.dsp, 8.6448e-3, 14.00112e-3, 4, 1);
  CHECK_TOTALS(s.cosched, 8.4192e-3, 10.27584e-3, 1, 1.0 / 3);
  CHECK_EQ_INT(place[0], 0);
  CHECK_EQ_INT(place[1], 0);
  CHECK_EQ_INT(place[fc], MH_PASS_BWD_W);

  /* fp32: nothing can leave the CPU, so all four placements are the fp32 CPU step above. */
  CHECK_OK(mh_plan(&g, MH_PRECISION_FP32, &p, 1000, NULL, &s, place));
  CHECK_TOTALS(s.cpu, 25.6512e-3, 30.1728e-3, 0, 0);
  CHECK_TOTALS(s.dsp, 25.6512e-3, 30.1728e-3, 0, 0);
  CHECK_TOTALS(s.cosched, 25.6512e-3, 30.1728e-3, 0, 0);
  CHECK_EQ_INT(place[fc], 0);
  mh_graph_free(&g);
}

/* The DSP work the cost model counts (cost.c), by hand, for the linear 16 -> 4 layer at batch 1000
 * (node 2 of the hand-worked model): forward Y (4 x 1000) = W (4 x 16) * x^T, B read transposed;
 * weight gradient DW (4 x 16) = dy^T (A transposed) * x; input gradient (1000 x 16) = dy * W. */
static void dsp_work_counts(void) {
  mh_graph g;
  static const char text[] = "input 1x4x4\nflatten f\nlinear fc out=4 bias=false\n";
  CHECK_OK(mh_model_parse(&g, text, strlen(text), "round.mh"));
  double w[MH_DSPW_COUNT] = {0};
  mh_dsp_node_work(&g, 2, MH_PASS_FWD, MH_PRECISION_INTEGER, 1000, w);
  /* tiles: ceil(4/4) row blocks x ceil(1000/128) = 8 panels x 16/4 = 4 quads = 32; B^T blocks of
   * 32 columns x 32 quads: ceil(1000/32) = 32 x 1; output vectors 4 rows x 32, requantised by the
   * fused epilogue (niti's forward); A 4 rows x 16 bytes */
  CHECK(w[MH_DSPW_TILES] == 32 && w[MH_DSPW_B_TRANS] == 32 && w[MH_DSPW_B_ROWS] == 0 && w[MH_DSPW_B_COLS] == 0);
  CHECK(w[MH_DSPW_FUSED_VECS] == 128 && w[MH_DSPW_OUT_VECS] == 0 && w[MH_DSPW_A_BYTES] == 64 && w[MH_DSPW_A_TRANS] == 0 && w[MH_DSPW_A_ROWS] == 4);
  CHECK(w[MH_DSPW_GEMMS] == 1 && w[MH_DSPW_MESSAGES] == 1 && w[MH_DSPW_GRID] == 0 && w[MH_DSPW_ELTWISE] == 0);
  memset(w, 0, sizeof w);
  mh_dsp_node_work(&g, 2, MH_PASS_BWD_W | MH_PASS_BWD_D, MH_PRECISION_INTEGER, 1000, w);
  /* weight gradient m 4, n 16, k 1000 (250 quads): 1 x 1 x 250 tiles, B (stored k x n) 1 x 250 panels, 4 x 1
   * vectors, A transposed 4 x 1000 bytes; input gradient (its input is flatten's, not the data's):
   * m 1000, n 16, k 4 (1 quad): 250 x 1 x 1 tiles, 1 panel of B, 1000 x 1 vectors, A 1000 x 4 bytes;
   * both in one message */
  CHECK(w[MH_DSPW_TILES] == 250 + 250 && w[MH_DSPW_B_COLS] == 250 + 1 && w[MH_DSPW_B_ROWS] == 0 && w[MH_DSPW_B_TRANS] == 0);
  CHECK(w[MH_DSPW_OUT_VECS] == 4 + 1000 && w[MH_DSPW_A_TRANS] == 4000 && w[MH_DSPW_A_BYTES] == 4000);
  CHECK(w[MH_DSPW_A_ROWS] == 1004 && w[MH_DSPW_GEMMS] == 2 && w[MH_DSPW_MESSAGES] == 1);
  /* FP32 runs nothing on the DSP: no work */
  memset(w, 0, sizeof w);
  mh_dsp_node_work(&g, 2, MH_PASS_FWD, MH_PRECISION_FP32, 1000, w);
  CHECK(mh_dsp_work_packets(w) == 0);
  mh_graph_free(&g);
}

int main(void) {
  mh_profile p;
  CHECK_OK(mh_profile_find(&p, "sd865"));
  CHECK(p.dsp_int8_gmacs > 0 && p.cpu_fp32_gmacs > 0 && p.transport_latency_us > 0);
  /* bad profiles */
  char path[256];
  snprintf(path, sizeof path, "%s/bad.profile", MH_BINARY_DIR);
  write_file(path, "name = x\ndsp_clock_ghz = fast\n");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "bad.profile:2") != NULL);
  write_file(path, "name = x\ndsp_clock_ghz = 1\n");
  CHECK_ERR(mh_profile_load(&p, path));
  CHECK(strstr(mh_last_error(), "lacks") != NULL);
  CHECK_ERR(mh_profile_find(&p, "no-such-device"));
  snprintf(path, sizeof path, "%s/round.profile", MH_BINARY_DIR);
  loader_rates(path);
  hand_costs(path);
  dsp_work_counts();

  CHECK_OK(mh_profile_find(&p, "sd865"));
  const char *const *names = mh_zoo_names();
  for (int z = 0; names[z]; z++)
    for (int prec = MH_PRECISION_FP32; prec <= MH_PRECISION_INTEGER; prec++) {
      mh_graph g;
      if (mh_zoo_build(&g, names[z])) continue;
      int bn = 0;
      for (int i = 1; i < g.n_nodes; i++) bn |= !mh_op_impl_for(g.nodes[i].op, prec);
      if (bn) { /* niti cannot run batch norm models */
        mh_graph_free(&g);
        continue;
      }
      char *text = NULL;
      mh_plan_summary s;
      CHECK_OK(mh_plan(&g, prec, &p, 32, &text, &s, NULL));
      if (text) {
        CHECK(s.cosched.ms <= s.cpu.ms * (1 + 1e-9) && s.cosched.ms <= s.dsp.ms * (1 + 1e-9));
        if (prec == MH_PRECISION_FP32) CHECK(s.cosched.dsp_macs_share == 0 && s.dsp.dsp_macs_share == 0);
        CHECK(strstr(text, "MODELLED") != NULL);
        /* hand-offs 100x dearer: the plan keeps at most as much work on the DSP */
        mh_profile dear = p;
        dear.transport_latency_us *= 100;
        char *t2 = NULL;
        mh_plan_summary s2;
        CHECK_OK(mh_plan(&g, prec, &dear, 32, &t2, &s2, NULL));
        CHECK(s2.cosched.handoffs <= s.cosched.handoffs);
        free(t2);
      }
      free(text);
      mh_graph_free(&g);
    }
  return tl_exit();
}
