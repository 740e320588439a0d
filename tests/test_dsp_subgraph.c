/* DSP subgraphs under qemu-hexagon: prepared GEMM nodes (all transposition combinations, weights
 * packed once per version, the fused epilogue) equal the host oracle with ==; a subgraph really
 * reuses its packed weights until told they changed; reuse and --no-reuse give the same results
 * with the expected preparation counts; malformed descriptors, runs and releases are rejected with
 * the status of the check they fail while the DSP keeps serving; training under mixed placements
 * (some passes on the DSP, the backward GEMMs of a layer split between DSP and CPU and run at once)
 * equals the CPU bit for bit.
 * Skips (77) where the DSP program or emulator is absent. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/subgraph.h"
#include "backend/planner.h"
#include "core/rng.h"
#include "graph/executor.h"
#include "ops/ops.h"
#include "train/trainer.h"
#include "mandheling.h"
#include "testlib.h"

enum { W, BIAS, X, Y, NT };

static void fill(mh_rng *r, int8_t *p, long n) {
  for (long i = 0; i < n; i++) p[i] = (int8_t)((int)mh_rng_below(r, 255) - 127);
}

/* One node over tensors W (op(A) = W or W^T, constant), X (op(B)), Y; m x n x k. */
static mh_dsp_sg_desc desc_of(int m, int n, int k, int ta, int tb) {
  mh_dsp_sg_desc s;
  memset(&s, 0, sizeof s);
  s.n_tensors = NT, s.n_nodes = 1, s.weights = W;
  s.t[W].bytes = (size_t)m * k, s.t[W].persistent = 1;
  s.t[BIAS].bytes = (size_t)m * 4, s.t[BIAS].persistent = 1;
  s.t[X].bytes = (size_t)k * n, s.t[Y].bytes = (size_t)m * n * 4;
  mh_dsp_sg_node nd = {m, n, k, W, ta ? m : k, ta, X, tb ? k : n, tb, Y, n, BIAS, 1, 1};
  s.nodes[0] = nd;
  return s;
}

/* The host's answer: int32 C, or the fused int8 y with its statistics. */
static void oracle(int m, int n, int k, const int8_t *w, int ta, const int8_t *x, int tb, const int32_t *bias, int shift,
                   int fused, int32_t *c, int8_t *y, mh_requant_stats *st) {
  mh_gemm_s8_args g = {m, n, k, w, ta ? m : k, ta, x, tb ? k : n, tb, c, n, 0};
  mh_gemm_s8_ref(&g);
  if (!fused) return;
  for (long i = 0; i < (long)m * n; i++) c[i] = mh_q_add_sat32(c[i], bias[i / n]);
  st->max_abs = 0, st->saturated = 0;
  mh_cpu_kernels_get(1)->requant_s8(c, y, (long)m * n, shift, MH_ROUND_PSTO, 0, 0, st);
}

/* Random shapes and every transposition; each subgraph runs plain, fused and after new weights. */
static void nodes(mh_dsp *d) {
  mh_rng r = mh_rng_make(41);
  static const int shapes[][3] = {{1, 1, 1}, {32, 8, 9}, {33, 5, 7}, {64, 40, 288}, {6, 200, 25}, {70, 3, 1500}, {9, 17, 9000}};
  int key = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int tt = 0; tt < 4; tt++) {
      int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2], ta = tt & 1, tb = tt >> 1;
      mh_dsp_sg_desc desc = desc_of(m, n, k, ta, tb);
      mh_dsp_counts cnt = {0};
      mh_dsp_sg *s = mh_dsp_sg_get(d, key++, &desc, &cnt);
      CHECK(s != NULL);
      if (!s) {
        fprintf(stderr, "%s\n", mh_last_error());
        continue;
      }
      int8_t *w = malloc((size_t)m * k), *x = malloc((size_t)k * n), *y = malloc((size_t)m * n);
      int32_t *c = malloc((size_t)m * n * 4), *bias = malloc((size_t)m * 4);
      fill(&r, w, (long)m * k), fill(&r, x, (long)k * n);
      for (int i = 0; i < m; i++) bias[i] = (int32_t)mh_rng_below(&r, 1u << 16) - (1 << 15);
      for (int round = 0; round < 3; round++) {
        int fused = round == 1 && mh_wire_fused_fits((uint32_t)m, (uint32_t)k), shift = 3 + (int)(si % 5);
        if (round == 2) fill(&r, w, (long)m * k); /* new weights: must be copied and packed again */
        mh_dsp_sg_set_weights(d, s, w, (size_t)m * k, &cnt);
        memcpy(mh_dsp_sg_at(d, s, X), x, (size_t)k * n);
        memcpy(mh_dsp_sg_at(d, s, BIAS), bias, (size_t)m * 4);
        mh_requant_stats ds = {0, 0}, hs = {0, 0};
        CHECK_OK(mh_dsp_sg_run(d, s, 1u, fused, shift, MH_ROUND_PSTO, &ds, &cnt));
        oracle(m, n, k, w, ta, x, tb, bias, shift, fused, c, y, &hs);
        tl_checks++;
        if (fused ? memcmp(mh_dsp_sg_at(d, s, Y), y, (size_t)m * n) || ds.max_abs != hs.max_abs || ds.saturated != hs.saturated
                  : memcmp(mh_dsp_sg_at(d, s, Y), c, (size_t)m * n * 4))
          TL_FAIL("subgraph node %dx%dx%d trans_a %d trans_b %d %s differs from the oracle", m, n, k, ta, tb,
                  fused ? "fused" : "int32");
      }
      CHECK_EQ_INT(cnt.sg_prepares, 1);
      CHECK_EQ_INT(cnt.sg_runs, 3);
      CHECK_EQ_INT(cnt.packed_bytes, 2 * m * k); /* first run and after the new weights: not the fused run */
      CHECK_EQ_INT(cnt.weight_bytes, 2 * m * k);
      free(w), free(x), free(y), free(c), free(bias);
    }
}

/* The DSP packs the weights once and keeps using the packed copy: rewriting the weight tensor
 * behind the subgraph's back changes nothing until a run says the weights changed. */
static void packed_weights_stay(mh_dsp *d) {
  mh_rng r = mh_rng_make(43);
  int m = 40, n = 12, k = 50;
  mh_dsp_sg_desc desc = desc_of(m, n, k, 0, 0);
  mh_dsp_sg *s = mh_dsp_sg_get(d, 1000, &desc, NULL);
  CHECK(s != NULL);
  if (!s) return;
  int8_t w[40 * 50], w2[40 * 50], x[50 * 12], y[40 * 12];
  int32_t want[40 * 12], want2[40 * 12];
  fill(&r, w, m * k), fill(&r, w2, m * k), fill(&r, x, k * n);
  oracle(m, n, k, w, 0, x, 0, NULL, 0, 0, want, y, NULL);
  oracle(m, n, k, w2, 0, x, 0, NULL, 0, 0, want2, y, NULL);
  mh_dsp_sg_set_weights(d, s, w, sizeof w, NULL);
  memcpy(mh_dsp_sg_at(d, s, X), x, sizeof x);
  CHECK_OK(mh_dsp_sg_run(d, s, 1u, 0, 0, MH_ROUND_NEAREST, NULL, NULL));
  CHECK(memcmp(mh_dsp_sg_at(d, s, Y), want, sizeof want) == 0);
  memcpy(mh_dsp_sg_at(d, s, W), w2, sizeof w2); /* behind its back */
  CHECK_OK(mh_dsp_sg_run(d, s, 1u, 0, 0, MH_ROUND_NEAREST, NULL, NULL));
  CHECK(memcmp(mh_dsp_sg_at(d, s, Y), want, sizeof want) == 0); /* still the packed old weights */
  mh_dsp_sg_set_weights(d, s, w2, sizeof w2, NULL);             /* equal bytes: no copy, so ... */
  memcpy(mh_dsp_sg_at(d, s, W), w, sizeof w);                   /* (restore the region's copy) */
  mh_dsp_sg_set_weights(d, s, w2, sizeof w2, NULL);             /* ... now they differ: copied, flagged */
  CHECK_OK(mh_dsp_sg_run(d, s, 1u, 0, 0, MH_ROUND_NEAREST, NULL, NULL));
  CHECK(memcmp(mh_dsp_sg_at(d, s, Y), want2, sizeof want2) == 0);
}

/* The same runs with reuse off: identical outputs, one preparation and one weight copy per run. */
static void no_reuse(void) {
  mh_dsp *a = NULL, *b = NULL;
  CHECK_OK(mh_dsp_open(&a, 4u << 20));
  CHECK_OK(mh_dsp_open(&b, 4u << 20));
  if (!a || !b) {
    mh_dsp_close(a), mh_dsp_close(b);
    return;
  }
  b->reuse = 0;
  mh_rng r = mh_rng_make(47);
  int m = 48, n = 20, k = 70;
  mh_dsp_sg_desc desc = desc_of(m, n, k, 1, 1);
  mh_dsp_counts ca = {0}, cb = {0};
  int8_t w[48 * 70], x[70 * 20];
  fill(&r, w, m * k);
  for (int run = 0; run < 4; run++) {
    fill(&r, x, k * n);
    if (run == 2) fill(&r, w, m * k);
    mh_dsp_sg *sa = mh_dsp_sg_get(a, 7, &desc, &ca), *sb = mh_dsp_sg_get(b, 7, &desc, &cb);
    CHECK(sa && sb);
    if (!sa || !sb) break;
    mh_dsp_sg_set_weights(a, sa, w, sizeof w, &ca), mh_dsp_sg_set_weights(b, sb, w, sizeof w, &cb);
    memcpy(mh_dsp_sg_at(a, sa, X), x, sizeof x), memcpy(mh_dsp_sg_at(b, sb, X), x, sizeof x);
    CHECK_OK(mh_dsp_sg_run(a, sa, 1u, 0, 0, MH_ROUND_NEAREST, NULL, &ca));
    CHECK_OK(mh_dsp_sg_run(b, sb, 1u, 0, 0, MH_ROUND_NEAREST, NULL, &cb));
    CHECK(memcmp(mh_dsp_sg_at(a, sa, Y), mh_dsp_sg_at(b, sb, Y), (size_t)m * n * 4) == 0);
  }
  CHECK_EQ_INT(ca.sg_prepares, 1);
  CHECK_EQ_INT(cb.sg_prepares, 4);
  CHECK_EQ_INT(ca.weight_bytes, 2 * m * k);
  CHECK_EQ_INT(cb.weight_bytes, 4 * m * k);
  CHECK_EQ_INT(ca.packed_bytes, 2 * m * k);
  CHECK_EQ_INT(cb.packed_bytes, 4 * m * k);
  CHECK_EQ_INT(a->messages - 1, 4 + 1);  /* HELLO aside: 4 runs, 1 preparation */
  CHECK_EQ_INT(b->messages - 1, 4 + 4);
  mh_dsp_close(a), mh_dsp_close(b);
}

static uint32_t call(mh_dsp *d, uint32_t op, const void *args, size_t n) {
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = op;
  memcpy(msg->args.raw, args, n);
  mh_dsp_call(d, 20000);
  return msg->status;
}

/* Malformed subgraph messages, one case per check of dsp/subgraph.c (and the GEMM checks as a
 * node sees them): a valid message or descriptor with only the checked field(s) changed, so that
 * check alone rejects it. A rejected preparation leaves nothing to run; after every case the DSP
 * prepares and runs the valid subgraph again with the right output. */

#define SG_WORD(type, field) ((int)(offsetof(type, field) / 4) + 1) /* 1 + a 32-bit word of the struct */
#define ND(f) SG_WORD(mh_wire_sg_node, f)
#define SP(f) SG_WORD(mh_wire_sg_prepare, f)
#define SR(f) SG_WORD(mh_wire_sg_run, f)

enum { NODE0, NODE1, ARGS }; /* what a case changes: node 0 or node 1 (of two) of the descriptor, or the message */

typedef struct sg_case {
  uint32_t op; /* SG_PREPARE, SG_RUN or SG_RELEASE */
  int where;
  struct {
    int word; /* ND / SP / SR of the field; 0: none */
    uint32_t value;
  } set[3];
  uint32_t want;
  const char *what; /* what the case pins */
} sg_case;

/* The valid subgraph: one 8 x 8 x 8 GEMM, A at PAGE, B at PAGE + 128, int32 C at PAGE + 256. */
static mh_wire_sg_node sg_good_node(void) {
  uint32_t t = MH_WIRE_PAGE;
  mh_wire_sg_node nd = {MH_WIRE_GEMM_S8, 0, 0, 0, {8, 8, 8, t, 8, t + 128, 8, t + 256, 8}};
  return nd;
}

/* Prepares and runs the valid subgraph in slot 3 on fresh inputs; checks the output. */
static void sg_serve(mh_dsp *d, uint32_t desc_off, const char *after) {
  static uint32_t serial;
  mh_rng r = mh_rng_make(500 + serial++);
  mh_wire_sg_node nd = sg_good_node();
  memcpy(mh_dsp_at(d, desc_off), &nd, sizeof nd);
  mh_wire_sg_prepare p = {3, desc_off, 1};
  mh_wire_sg_run run = {3, 1u};
  int8_t *a = (int8_t *)mh_dsp_at(d, MH_WIRE_PAGE), *b = a + 128;
  int32_t want[64];
  fill(&r, a, 64), fill(&r, b, 64);
  memset(mh_dsp_at(d, MH_WIRE_PAGE + 256), 0x55, sizeof want);
  mh_gemm_s8_args g = {8, 8, 8, a, 8, 0, b, 8, 0, want, 8, 0};
  mh_gemm_s8_ref(&g);
  uint32_t st = call(d, MH_WIRE_SG_PREPARE, &p, sizeof p);
  tl_checks++;
  if (st != MH_WIRE_OK || mh_dsp_msg(d)->checked_nodes != 1)
    TL_FAIL("preparing the valid subgraph after %s: status %u, %u nodes checked", after, st,
            mh_dsp_msg(d)->checked_nodes);
  st = call(d, MH_WIRE_SG_RUN, &run, sizeof run);
  tl_checks++;
  if (st != MH_WIRE_OK || memcmp(mh_dsp_at(d, MH_WIRE_PAGE + 256), want, sizeof want))
    TL_FAIL("running the valid subgraph after %s: status %u, %s output", after, st,
            memcmp(mh_dsp_at(d, MH_WIRE_PAGE + 256), want, sizeof want) ? "wrong" : "right");
}

static const char *sg_op_name(uint32_t op) {
  return op == MH_WIRE_SG_PREPARE ? "SG_PREPARE" : op == MH_WIRE_SG_RUN ? "SG_RUN" : "SG_RELEASE";
}

static void malformed(mh_dsp *d) {
  const uint32_t R = (uint32_t)d->region_bytes, desc_off = R - 4096, t = MH_WIRE_PAGE;
  const uint32_t PREP = MH_WIRE_SG_PREPARE, RUN = MH_WIRE_SG_RUN, ARG = MH_WIRE_E_ARG, OUT = MH_WIRE_E_BOUNDS;
  const sg_case cases[] = {
      /* SG_PREPARE: the nodes (packed area for m = k = 8: 256 bytes) */
      {PREP, NODE0, {{ND(op), MH_WIRE_RELU_S8}}, ARG, "a node that is not a GEMM"},
      {PREP, NODE0, {{ND(a_const), 2}, {ND(gemm.apack_off), t + 4096}}, ARG, "a_const = 2 (with a packed area)"},
      {PREP, NODE0, {{ND(may_fuse), 2}}, ARG, "may_fuse = 2"},
      {PREP, NODE0, {{ND(gemm.epilogue), 1}}, ARG, "the epilogue set in the descriptor (SG_RUN sets it)"},
      {PREP, NODE0, {{ND(a_const), 1}}, ARG, "a constant A without a packed area"},
      {PREP, NODE0, {{ND(gemm.apack_off), t + 4096}}, ARG, "a packed area for an A that is not constant"},
      {PREP, NODE0, {{ND(a_const), 1}, {ND(gemm.apack_off), t + 4096 + 64}}, ARG, "a packed area not 128-byte aligned"},
      {PREP, NODE0, {{ND(a_const), 1}, {ND(gemm.apack_off), R - 128}}, OUT, "a packed area (256 bytes) past the end"},
      {PREP, NODE0, {{ND(a_const), 1}, {ND(gemm.apack_off), t + 4096}}, MH_WIRE_OK, "a constant A with a packed area"},
      {PREP, NODE0, {{ND(gemm.flags), 16}}, ARG, "an unknown GEMM flag"},
      {PREP, NODE0, {{ND(gemm.m), 0}}, ARG, "a GEMM with m = 0"},
      {PREP, NODE0, {{ND(gemm.c_off), R - 8}}, OUT, "the output past the region's end"},
      {PREP, NODE0, {{ND(may_fuse), 1}, {ND(gemm.accumulate), 1}}, ARG, "fusable but accumulating (the fused form)"},
      {PREP, NODE0, {{ND(may_fuse), 1}}, MH_WIRE_OK, "a fusable node"},
      {PREP, NODE1, {{ND(op), MH_WIRE_RELU_S8}}, ARG, "a second node that is not a GEMM (every node is checked)"},
      /* SG_PREPARE: the message */
      {PREP, ARGS, {{SP(id), MH_WIRE_SG_SLOTS}}, ARG, "slot id 64"},
      {PREP, ARGS, {{SP(n_nodes), 0}}, ARG, "no nodes"},
      {PREP, ARGS, {{SP(n_nodes), MH_WIRE_SG_NODES + 1}}, ARG, "five valid nodes, one more than a subgraph holds"},
      {PREP, ARGS, {{SP(desc_off), R - 4096 + 2}}, ARG, "a descriptor not 4-byte aligned"},
      {PREP, ARGS, {{SP(desc_off), R - 40}}, OUT, "a descriptor (80 bytes) past the end"},
      /* SG_RUN */
      {RUN, ARGS, {{SR(id), MH_WIRE_SG_SLOTS}}, MH_WIRE_E_SUBGRAPH, "slot id 64"},
      {RUN, ARGS, {{SR(id), 999}}, MH_WIRE_E_SUBGRAPH, "slot id 999"},
      {RUN, ARGS, {{SR(id), 5}}, MH_WIRE_E_SUBGRAPH, "a slot never prepared"},
      {RUN, ARGS, {{SR(node_mask), 0}}, ARG, "no node to run"},
      {RUN, ARGS, {{SR(node_mask), 2}}, ARG, "node 1 of a one-node subgraph"},
      {RUN, ARGS, {{SR(weights_changed), 2}}, ARG, "weights_changed = 2"},
      {RUN, ARGS, {{SR(epilogue), 2}}, ARG, "epilogue = 2"},
      {RUN, ARGS, {{SR(epilogue), 1}, {SR(shift), 32}}, ARG, "the epilogue with shift 32"},
      {RUN, ARGS, {{SR(epilogue), 1}, {SR(mode), 2}}, ARG, "the epilogue with mode 2"},
      {RUN, ARGS, {{SR(shift), 40}, {SR(mode), 5}}, MH_WIRE_OK, "shift 40 and mode 5 without the epilogue (unused)"},
      {RUN, ARGS, {{SR(epilogue), 1}}, MH_WIRE_OK, "the epilogue with a node that may not fuse"},
      /* SG_RELEASE */
      {MH_WIRE_SG_RELEASE, ARGS, {{SP(id), MH_WIRE_SG_SLOTS}}, ARG, "slot id 64"},
  };
  mh_wire_sg_node good = sg_good_node();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const sg_case *c = &cases[i];
    mh_wire_sg_node nodes[MH_WIRE_SG_NODES + 1];
    mh_wire_sg_prepare p = {3, desc_off, c->where == NODE1 ? 2 : 1};
    mh_wire_sg_run run = {3, 1u};
    uint32_t args[16];
    for (uint32_t k = 0; k <= MH_WIRE_SG_NODES; k++) nodes[k] = good;
    memcpy(mh_dsp_at(d, desc_off), nodes, sizeof nodes);
    mh_wire_sg_prepare p1 = {3, desc_off, 1};
    CHECK_EQ_INT(call(d, MH_WIRE_SG_PREPARE, &p1, sizeof p1), MH_WIRE_OK); /* slot 3 holds the valid subgraph */
    if (c->op == RUN) memcpy(args, &run, sizeof args);
    else memcpy(args, &p, sizeof args);
    for (int s = 0; s < 3 && c->set[s].word; s++) {
      uint8_t *to = c->where == ARGS ? (uint8_t *)args : (uint8_t *)&nodes[c->where == NODE1];
      memcpy(to + 4 * (c->set[s].word - 1), &c->set[s].value, 4);
    }
    uint32_t at = c->op == PREP ? args[SP(desc_off) - 1] : desc_off;
    if (at >= t && at <= R - sizeof nodes) memcpy(mh_dsp_at(d, at), nodes, sizeof nodes); /* valid nodes where read */
    uint32_t st = call(d, c->op, args, sizeof args);
    tl_checks++;
    if (st != c->want)
      TL_FAIL("%s with %s: status %u (%s), expected %u (%s)", sg_op_name(c->op), c->what, st, mh_wire_status_name(st),
              c->want, mh_wire_status_name(c->want));
    if (c->op == PREP && c->where != ARGS && c->want != MH_WIRE_OK) {
      CHECK_EQ_INT(mh_dsp_msg(d)->checked_nodes, c->where == NODE1); /* the nodes before the bad one */
      CHECK_EQ_INT(call(d, MH_WIRE_SG_RUN, &run, sizeof run), MH_WIRE_E_SUBGRAPH); /* the slot was dropped */
    }
    if (!d->alive) {
      TL_FAIL("%s with %s: the DSP died", sg_op_name(c->op), c->what);
      return;
    }
    sg_serve(d, desc_off, c->what);
  }

  /* releasing one slot, then every slot */
  mh_wire_sg_prepare p3 = {3, desc_off, 1}, p4 = {4, desc_off, 1}, all = {MH_WIRE_SG_ALL};
  mh_wire_sg_run run3 = {3, 1u}, run4 = {4, 1u};
  CHECK_EQ_INT(call(d, MH_WIRE_SG_RELEASE, &p3, sizeof p3), MH_WIRE_OK);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_RUN, &run3, sizeof run3), MH_WIRE_E_SUBGRAPH);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_PREPARE, &p3, sizeof p3), MH_WIRE_OK);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_PREPARE, &p4, sizeof p4), MH_WIRE_OK);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_RELEASE, &all, sizeof all), MH_WIRE_OK);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_RUN, &run3, sizeof run3), MH_WIRE_E_SUBGRAPH);
  CHECK_EQ_INT(call(d, MH_WIRE_SG_RUN, &run4, sizeof run4), MH_WIRE_E_SUBGRAPH);
  sg_serve(d, desc_off, "releasing every slot");

  mh_wire_gemm_s8 packed = good.gemm; /* packed operands belong to subgraphs, not single GEMMs */
  packed.apack_off = t + 4096;
  CHECK_EQ_INT(call(d, MH_WIRE_GEMM_S8, &packed, sizeof packed), MH_WIRE_E_ARG);
  CHECK_EQ_INT(call(d, MH_WIRE_GEMM_S8, &good.gemm, sizeof good.gemm), MH_WIRE_OK);
}

/* Segment programs by hand: a PAD into a grid (the grid form's im2col), ReLU and 2x2 max-pool of
 * one tensor, against plain loops written here, with the exponent handed through; then malformed
 * programs, one field each, refused with the status of their check while the DSP keeps serving the
 * valid one. */
enum { SN = 2, SC = 3, SH = 5, SW = 6, SP_ = 7, SQ = 8, STOP = 1, SLD = SN * SP_ * SQ };

static void seg_valid(mh_wire_seg_tensor *t, mh_wire_seg_node *nd) {
  const uint32_t base = MH_WIRE_PAGE, none = MH_WIRE_SEG_NONE;
  mh_wire_seg_tensor tt[4] = {{base, SN * SC * SH * SW}, {base + 1024, SC * SLD}, {base + 2048, SN * SC * SH * SW},
                              {base + 3072, SN * SC * (SH / 2) * (SW / 2)}};
  memcpy(t, tt, sizeof tt);
  memset(nd, 0, 3 * sizeof *nd);
  mh_wire_seg_node pad = {MH_SEG_PAD, 0, none, 1, none, 0, SN, SC, SH, SW, SP_, SQ, STOP, SLD, {0, 0}};
  mh_wire_seg_node relu = {MH_SEG_RELU, 0, none, 2, none, 0, SN, SC, SH, SW, 0, 0, 0, 0, {0, 0}};
  mh_wire_seg_node pool = {MH_SEG_POOL2, 0, none, 3, none, 0, SN, SC, SH, SW, 0, 0, 0, 0, {0, 0}};
  nd[0] = pad, nd[1] = relu, nd[2] = pool;
}

/* Prepares (slot 7) what is at desc_off and runs it; returns the preparation's status. */
static uint32_t seg_prepare_run(mh_dsp *d, uint32_t desc_off, uint32_t n_t, uint32_t n_nodes, uint32_t *run_status) {
  const uint32_t table_off = MH_WIRE_PAGE + 8192;
  mh_wire_seg_prepare p = {7, desc_off, n_t, n_nodes, {0}};
  uint32_t st = call(d, MH_WIRE_SEG_PREPARE, &p, sizeof p);
  mh_wire_seg_run r = {7, table_off, 1, {0, 0}, 0, {0}};
  *run_status = call(d, MH_WIRE_SEG_RUN, &r, sizeof r);
  return st;
}

static void seg_programs(mh_dsp *d) {
  const uint32_t desc_off = MH_WIRE_PAGE + 16384, table_off = MH_WIRE_PAGE + 8192;
  mh_wire_seg_tensor t[4];
  mh_wire_seg_node nd[3];
  seg_valid(t, nd);
  mh_rng r = mh_rng_make(77);
  int8_t *x = (int8_t *)mh_dsp_at(d, t[0].off);
  fill(&r, x, SN * SC * SH * SW);
  memset(mh_dsp_at(d, t[1].off), 0x55, t[1].bytes); /* the pad must write its zeros too */
  mh_wire_seg_table *tb = (mh_wire_seg_table *)mh_dsp_at(d, table_off);
  memset(tb, 0, sizeof *tb);
  tb->e[0] = -5;
  memcpy(mh_dsp_at(d, desc_off), t, sizeof t);
  memcpy(mh_dsp_at(d, desc_off + sizeof t), nd, sizeof nd);
  uint32_t run = 0;
  CHECK_EQ_INT(seg_prepare_run(d, desc_off, 4, 3, &run), MH_WIRE_OK);
  CHECK_EQ_INT(run, MH_WIRE_OK);
  const int8_t *pad = (const int8_t *)mh_dsp_at(d, t[1].off), *relu = (const int8_t *)mh_dsp_at(d, t[2].off),
               *pool = (const int8_t *)mh_dsp_at(d, t[3].off);
  long bad_pad = -1, bad_relu = -1, bad_pool = -1;
  for (int c = 0; c < SC; c++)
    for (int j = 0; j < SLD; j++) { /* grid position j of channel c: sample, row, column */
      int s = j / (SP_ * SQ), y = j / SQ % SP_ - STOP, xx = j % SQ - STOP;
      int want = y >= 0 && y < SH && xx >= 0 && xx < SW ? x[((s * SC + c) * SH + y) * SW + xx] : 0;
      if (pad[c * SLD + j] != want && bad_pad < 0) bad_pad = c * SLD + j;
    }
  for (int i = 0; i < SN * SC * SH * SW; i++)
    if (relu[i] != (x[i] > 0 ? x[i] : 0) && bad_relu < 0) bad_relu = i;
  for (int pl = 0; pl < SN * SC; pl++)
    for (int p = 0; p < SH / 2; p++)
      for (int q = 0; q < SW / 2; q++) {
        const int8_t *w = x + pl * SH * SW + 2 * p * SW + 2 * q;
        int m = w[0] > w[1] ? w[0] : w[1];
        m = w[SW] > m ? w[SW] : m, m = w[SW + 1] > m ? w[SW + 1] : m;
        if (pool[(pl * (SH / 2) + p) * (SW / 2) + q] != m && bad_pool < 0) bad_pool = pl;
      }
  tl_checks += 3;
  if (bad_pad >= 0) TL_FAIL("segment PAD: byte %ld of the grid differs", bad_pad);
  if (bad_relu >= 0) TL_FAIL("segment ReLU: element %ld differs", bad_relu);
  if (bad_pool >= 0) TL_FAIL("segment max-pool: plane %ld differs", bad_pool);
  CHECK(tb->e[1] == -5 && tb->e[2] == -5 && tb->e[3] == -5); /* exponents handed through */

  const uint32_t R = (uint32_t)d->region_bytes, ARG = MH_WIRE_E_ARG, OUT = MH_WIRE_E_BOUNDS;
  static const struct {
    int tensor, node, field; /* tensor >= 0: t[tensor].{off,bytes}[field]; else nd[node] word `field` */
    uint32_t value, want;
    const char *what;
  } cases[] = {
      {-1, 1, 0, 99, MH_WIRE_E_OP, "an unknown node op"},
      {-1, 1, 1, 4, OUT, "an input tensor past the table"},
      {-1, 1, 3, MH_WIRE_SEG_NONE, OUT, "a ReLU without an output"},
      {-1, 0, 13, (SN - 1) * SP_ * SQ + (SH - 1 + STOP) * SQ + STOP + SW - 1, ARG, "a PAD whose last row overruns its row stride"},
      {-1, 0, 12, 3, ARG, "a PAD whose data overruns the grid's row"},
      {-1, 0, 10, SH, ARG, "a PAD whose data overruns the grid's rows"},
      {-1, 2, 8, 1, ARG, "a max-pool of planes 1 row high"},
      {-1, 1, 6, 0, ARG, "a ReLU over 0 samples"},
      {-1, 1, 6, 70000, ARG, "a ReLU over 70000 samples"},
      {-1, 0, 0, MH_SEG_CONV_FWD, ARG, "a convolution on a subgraph never prepared"},
      {1, 0, 1, SC * SLD - 1, OUT, "a grid tensor a byte short"},
      {2, 0, 0, MH_WIRE_PAGE + 2048 + 64, ARG, "a tensor not 128-byte aligned"},
      {2, 0, 0, 0xffffff80u, OUT, "a tensor past the region"},
      {3, 0, 1, 0, ARG, "a tensor of 0 bytes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mh_wire_seg_tensor tt[4];
    mh_wire_seg_node nn[3];
    seg_valid(tt, nn);
    if (cases[i].tensor >= 0) ((uint32_t *)&tt[cases[i].tensor])[cases[i].field] = cases[i].value;
    else ((uint32_t *)&nn[cases[i].node])[cases[i].field] = cases[i].value;
    if (cases[i].value == 0xffffff80u) tt[2].off = (R + 127) / 128 * 128 - 128, tt[2].bytes = 256;
    memcpy(mh_dsp_at(d, desc_off), tt, sizeof tt);
    memcpy(mh_dsp_at(d, desc_off + sizeof tt), nn, sizeof nn);
    uint32_t st = seg_prepare_run(d, desc_off, 4, 3, &run);
    tl_checks += 2;
    if (st != cases[i].want)
      TL_FAIL("SEG_PREPARE with %s: status %u (%s), expected %u", cases[i].what, st, mh_wire_status_name(st), cases[i].want);
    if (run != MH_WIRE_E_SUBGRAPH) TL_FAIL("SEG_RUN after a refused preparation (%s): status %u", cases[i].what, run);
    if (!d->alive) {
      TL_FAIL("SEG_PREPARE with %s: the DSP died", cases[i].what);
      return;
    }
    memcpy(mh_dsp_at(d, desc_off), t, sizeof t); /* the valid program again */
    memcpy(mh_dsp_at(d, desc_off + sizeof t), nd, sizeof nd);
    CHECK_EQ_INT(seg_prepare_run(d, desc_off, 4, 3, &run), MH_WIRE_OK);
    CHECK_EQ_INT(run, MH_WIRE_OK);
  }
  /* the messages themselves */
  mh_wire_seg_prepare p = {7, desc_off, 4, 3, {0}};
  mh_wire_seg_prepare bad[] = {{MH_WIRE_SEG_SLOTS, desc_off, 4, 3, {0}}, {7, desc_off + 2, 4, 3, {0}},
                               {7, desc_off, 0, 3, {0}}, {7, desc_off, 4, 0, {0}},
                               {7, desc_off, MH_WIRE_SEG_TENSORS + 1, 3, {0}}, {7, desc_off, 4, MH_WIRE_SEG_NODES + 1, {0}},
                               {7, R - 64, 4, 3, {0}}};
  uint32_t want[] = {ARG, ARG, ARG, ARG, ARG, ARG, OUT};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tl_checks++;
    uint32_t st = call(d, MH_WIRE_SEG_PREPARE, &bad[i], sizeof bad[i]);
    if (st != want[i]) TL_FAIL("SEG_PREPARE message case %zu: status %u, expected %u", i, st, want[i]);
  }
  CHECK_EQ_INT(call(d, MH_WIRE_SEG_PREPARE, &p, sizeof p), MH_WIRE_OK);
  mh_wire_seg_run runs[] = {{MH_WIRE_SEG_SLOTS, table_off, 1, {0, 0}, 0, {0}}, {9, table_off, 1, {0, 0}, 0, {0}},
                            {7, table_off, 2, {0, 0}, 0, {0}}, {7, table_off + 2, 1, {0, 0}, 0, {0}},
                            {7, R - 64, 1, {0, 0}, 0, {0}}};
  uint32_t want_run[] = {MH_WIRE_E_SUBGRAPH, MH_WIRE_E_SUBGRAPH, ARG, ARG, OUT};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    tl_checks++;
    uint32_t st = call(d, MH_WIRE_SEG_RUN, &runs[i], sizeof runs[i]);
    if (st != want_run[i]) TL_FAIL("SEG_RUN case %zu: status %u, expected %u", i, st, want_run[i]);
  }
  mh_wire_seg_run ok = {7, table_off, 1, {0, 0}, 0, {0}};
  CHECK_EQ_INT(call(d, MH_WIRE_SEG_RUN, &ok, sizeof ok), MH_WIRE_OK);
}

/* PAD over the shapes its kernel tells apart: several grid rows a vector (cnn6's 28 and 14, a
 * CIFAR-like 32 with 3 rows, lenet5's pad 2), planes of 3, 5, 6, 7 and 8 vectors, one row a vector,
 * rows past 128 bytes, no pad at all and a last plane cut short by ld; each placed at the region's start, with the grid ending at the
 * region's end, and with the input ending there, against the grid written by hand. The grid is
 * filled with 0x55 first: the pad must write its zeros too. */
static void seg_pad_shapes(mh_dsp *d) {
  const uint32_t desc_off = MH_WIRE_PAGE + 16384, table_off = MH_WIRE_PAGE + 8192, none = MH_WIRE_SEG_NONE;
  const uint32_t R = (uint32_t)d->region_bytes & ~127u;
  static const struct {
    uint32_t n, c, h, w, p, q, top, ld;
  } shapes[] = {
      {3, 2, 28, 28, 30, 30, 1, 3 * 900},  {3, 3, 14, 14, 16, 16, 1, 3 * 256}, {2, 2, 32, 32, 34, 34, 1, 2 * 1156},
      {2, 2, 28, 28, 32, 32, 2, 2 * 1024}, {2, 2, 9, 100, 11, 102, 1, 2 * 1122}, {2, 2, 3, 140, 5, 142, 1, 2 * 710},
      {2, 3, 10, 10, 10, 10, 0, 2 * 100},  {3, 2, 5, 6, 7, 8, 1, 2 * 56 + 6 * 8 + 1 + 6},
      {3, 2, 20, 14, 22, 16, 1, 3 * 352},  {3, 2, 20, 28, 22, 30, 1, 3 * 660}, {2, 2, 24, 28, 26, 30, 1, 2 * 780},
      {3, 2, 32, 28, 34, 30, 1, 3 * 1020},
  };
  mh_rng r = mh_rng_make(91);
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (int place = 0; place < 3; place++) {
      uint32_t n = shapes[i].n, c = shapes[i].c, h = shapes[i].h, w = shapes[i].w, P = shapes[i].p, Q = shapes[i].q,
               top = shapes[i].top, ld = shapes[i].ld, in_bytes = n * c * h * w, g_bytes = c * ld;
      uint32_t in_off = MH_WIRE_PAGE + 32768, g_off = (in_off + in_bytes + 127) / 128 * 128 + 256;
      if (place == 1) g_off = (R - g_bytes) / 128 * 128, in_off = g_off - (in_bytes + 127) / 128 * 128;
      if (place == 2) in_off = (R - in_bytes) / 128 * 128, g_off = in_off - (g_bytes + 127) / 128 * 128 - 256;
      mh_wire_seg_tensor t[2] = {{in_off, in_bytes}, {g_off, g_bytes}};
      mh_wire_seg_node pad = {MH_SEG_PAD, 0, none, 1, none, 0, n, c, h, w, P, Q, top, ld, {0, 0}};
      int8_t *x = (int8_t *)mh_dsp_at(d, in_off), *g = (int8_t *)mh_dsp_at(d, g_off);
      fill(&r, x, in_bytes);
      memset(g, 0x55, g_bytes);
      uint8_t *guard = place == 1 ? NULL : (uint8_t *)g + g_bytes; /* the bytes past the grid stay as they are */
      if (guard) memset(guard, 0x3c, 256);
      memset(mh_dsp_at(d, table_off), 0, sizeof(mh_wire_seg_table));
      memcpy(mh_dsp_at(d, desc_off), t, sizeof t);
      memcpy(mh_dsp_at(d, desc_off + sizeof t), &pad, sizeof pad);
      uint32_t run = 0;
      const mh_wire_seg_prepare pp = {7, desc_off, 2, 1, {0}};
      CHECK_EQ_INT(call(d, MH_WIRE_SEG_PREPARE, &pp, sizeof pp), MH_WIRE_OK);
      mh_wire_seg_run rr = {7, table_off, 1, {0, 0}, 0, {0}};
      run = call(d, MH_WIRE_SEG_RUN, &rr, sizeof rr);
      CHECK_EQ_INT(run, MH_WIRE_OK);
      long bad = -1;
      for (uint32_t ch = 0; ch < c && bad < 0; ch++)
        for (uint32_t j = 0; j < ld; j++) {
          long s = j / (P * Q), y = (long)(j / Q % P) - (long)top, xx = (long)(j % Q) - (long)top;
          int want = y >= 0 && y < (long)h && xx >= 0 && xx < (long)w ? x[((s * c + ch) * h + y) * w + xx] : 0;
          if (g[ch * ld + j] != want) {
            bad = (long)(ch * ld + j);
            break;
          }
        }
      for (int k = 0; guard && k < 256 && bad < 0; k++)
        if (guard[k] != 0x3c) bad = (long)g_bytes + k;
      tl_checks++;
      if (bad >= 0)
        TL_FAIL("PAD %ux%ux%ux%u into %ux%u (top %u, ld %u), placement %d: grid byte %ld is %d", n, c, h, w, P, Q, top, ld,
                place, bad, g[bad]);
    }
}

/* A subgraph that cannot fit the region: NULL and a message saying so, nothing prepared. */
static void region_full(void) {
  mh_dsp *d = NULL;
  CHECK_OK(mh_dsp_open(&d, 64u << 10));
  if (!d) return;
  mh_dsp_sg_desc desc = desc_of(64, 512, 512, 0, 0); /* 1 MiB of int32 output */
  mh_dsp_sg *s = mh_dsp_sg_get(d, 1, &desc, NULL);
  CHECK(s == NULL);
  CHECK(strstr(mh_last_error(), "shared region is full") != NULL);
  mh_dsp_close(d);
}

/* A 1x28x28 model (lenet5: conv1, conv2, fc1, fc2, fc3) for 6 steps at batch 8 under a placement (per
 * node bits; NULL: the CPU only). Returns the parameters (int8 for niti, FP32 bytes for int8) and the
 * report; seg_first (when given, n_nodes ints): the segments of the last step's forward (-1: none);
 * exps (when given, 2 x n_nodes ints): the exponents of the outputs, then of the gradients. */
static void *train_model_placed(const char *model, const char *precision, const unsigned char *place, size_t *bytes,
                                mh_dsp_report *rep, int *seg_first, int *exps) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = precision, cfg.backend = place ? "dsp" : "cpu", cfg.batch = 8;
  if (mh_model_create(&m, model, 4) || mh_trainer_create(&t, m, &cfg)) {
    TL_FAIL("%s %s: %s", model, precision, mh_last_error());
    mh_model_free(m);
    return NULL;
  }
  if (place && t->dsp_backend) mh_exec_set_backend(t->ex, &t->dsp_backend->be, place);
  static float x[8 * 784];
  int32_t y[8];
  for (int s = 0; s < 6; s++) {
    for (int i = 0; i < 8 * 784; i++) x[i] = (float)((i * 2654435761u + s * 131u) % 1009) / 504.f - 1.f;
    for (int i = 0; i < 8; i++) y[i] = (i + 7 * s) % 10;
    CHECK_OK(mh_trainer_step(t, x, y, 8, NULL));
  }
  mh_trainer_dsp_report(t, rep);
  const int *sf = mh_exec_segment_first(t->ex);
  for (int i = 0; seg_first && i < m->g.n_nodes; i++) seg_first[i] = sf ? sf[i] : -1;
  if (exps) {
    memcpy(exps, mh_exec_exponents(t->ex, 0), sizeof(int) * (size_t)m->g.n_nodes);
    memcpy(exps + m->g.n_nodes, mh_exec_exponents(t->ex, 1), sizeof(int) * (size_t)m->g.n_nodes);
  }
  int integer = !strcmp(precision, "niti");
  *bytes = (size_t)m->g.n_param_floats * (integer ? 1 : sizeof(float));
  void *out = malloc(*bytes);
  memcpy(out, integer ? (void *)m->qparams : (void *)m->params, *bytes);
  mh_trainer_free(t);
  mh_model_free(m);
  return out;
}

static void *train_placed(const char *precision, const unsigned char *place, size_t *bytes, mh_dsp_report *rep) {
  return train_model_placed("lenet5", precision, place, bytes, rep, NULL, NULL);
}

/* A segment spanning conv -> ReLU -> max-pool -> conv (cnn6-nobn's conv2 .. conv3 on the DSP, the
 * rest on the CPU): one message per pass for the four layers, the parameters equal to the CPU's;
 * and the whole chain conv1 .. pool2 with everything on the DSP, equal again. */
static void segments(void) {
  enum { ALL = MH_PASS_FWD | MH_PASS_BWD_W | MH_PASS_BWD_D };
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "cnn6-nobn", 4));
  if (!m) return;
  int n = m->g.n_nodes, conv2 = -1, conv3 = -1, pool2 = -1;
  for (int i = 0; i < n; i++) {
    if (!strcmp(m->g.nodes[i].name, "conv2")) conv2 = i;
    if (!strcmp(m->g.nodes[i].name, "conv3")) conv3 = i;
    if (!strcmp(m->g.nodes[i].name, "pool2")) pool2 = i;
  }
  mh_model_free(m);
  CHECK(conv2 > 0 && conv3 == conv2 + 3 && pool2 > conv3 && n <= 64);
  if (conv2 < 0 || conv3 < 0 || pool2 < 0 || n > 64) return;
  size_t nb = 0, nb2 = 0;
  mh_dsp_report rc, rd;
  int sf[64], ecpu[128], edsp[128];
  unsigned char *cpu = train_model_placed("cnn6-nobn", "niti", NULL, &nb, &rc, NULL, ecpu);
  unsigned char place[64] = {0};
  for (int i = conv2; i <= conv3; i++) place[i] = ALL;
  unsigned char *dsp = train_model_placed("cnn6-nobn", "niti", place, &nb2, &rd, sf, edsp);
  tl_checks++;
  if (!cpu || !dsp || nb2 != nb || memcmp(cpu, dsp, nb))
    TL_FAIL("cnn6-nobn niti, segment conv2 .. conv3: parameters differ from the CPU's");
  /* the exponents the DSP carried through the chain, of activations and errors (the weights of niti
   * do not show an error's exponent) */
  for (int i = 1; i < n; i++) {
    tl_checks += 2;
    if (ecpu[i] != edsp[i]) TL_FAIL("node %d: output exponent %d on the DSP, %d on the CPU", i, edsp[i], ecpu[i]);
    if (ecpu[n + i] != edsp[n + i]) TL_FAIL("node %d: gradient exponent %d on the DSP, %d on the CPU", i, edsp[n + i], ecpu[n + i]);
  }
  CHECK_EQ_INT(sf[conv3], conv2);   /* one segment: conv2, ReLU, pool1, conv3 */
  CHECK_EQ_INT(rd.seg_runs, 2 * 6); /* forward and backward, every step */
  CHECK_EQ_INT(rd.sg_runs, 0);      /* nothing ran layer by layer */
  int named = -1; /* the backend's counters by name carry the same count */
  for (int i = 0; i < rd.n_stats; i++)
    if (!strcmp(rd.stats[i].name, "segment_runs")) named = (int)rd.stats[i].value;
  CHECK_EQ_INT(named, 2 * 6);
  CHECK(rd.gemms == 6 * 6 && rd.cpu_fallbacks == 0); /* each convolution: forward, weight and input gradient */
  free(dsp);
  memset(place, ALL, sizeof place);
  dsp = train_model_placed("cnn6-nobn", "niti", place, &nb2, &rd, sf, NULL);
  tl_checks++;
  if (!cpu || !dsp || nb2 != nb || memcmp(cpu, dsp, nb)) TL_FAIL("cnn6-nobn niti, every pass on the DSP: parameters differ");
  CHECK_EQ_INT(sf[pool2], 1); /* conv1 .. pool2 is one segment */
  CHECK(rd.seg_runs == 2 * 6 && rd.cpu_fallbacks == 0);
  free(dsp);
  free(cpu);
}

/* With the weights fixed (predictions after a training step), a segment's weights are packed by
 * the first forward only: the DSP is told of new weights once, not on every run. */
static void segment_packs_once(void) {
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.precision = "niti", cfg.backend = "dsp", cfg.batch = 8;
  if (mh_model_create(&m, "cnn6-nobn", 4) || mh_trainer_create(&t, m, &cfg)) {
    TL_FAIL("cnn6-nobn niti on the DSP: %s", mh_last_error());
    mh_model_free(m);
    return;
  }
  static float x[8 * 784], logits[8 * 10];
  int32_t y[8];
  for (int i = 0; i < 8 * 784; i++) x[i] = (float)((i * 2654435761u) % 1009) / 504.f - 1.f;
  for (int i = 0; i < 8; i++) y[i] = i % 10;
  CHECK_OK(mh_trainer_step(t, x, y, 8, NULL)); /* the update changes the weights */
  mh_dsp_report r[4];
  for (int k = 0; k < 4; k++) {
    if (k) CHECK_OK(mh_trainer_predict(t, x, 8, logits));
    mh_trainer_dsp_report(t, &r[k]);
  }
  CHECK(r[1].seg_runs == r[0].seg_runs + 1 && r[3].seg_runs == r[0].seg_runs + 3); /* forwards as segments */
  CHECK(r[1].packed_bytes > r[0].packed_bytes);                                    /* the new weights, packed */
  CHECK(r[3].packed_bytes == r[1].packed_bytes);                                   /* and not again */
  mh_trainer_free(t);
  mh_model_free(m);
}

static void placements(void) {
  enum { F = MH_PASS_FWD, W = MH_PASS_BWD_W, D = MH_PASS_BWD_D };
  /* node order: input, conv1, relu, pool, conv2, relu, pool, flatten, fc1, relu, fc2, relu, fc3 */
  mh_model *m = NULL;
  CHECK_OK(mh_model_create(&m, "lenet5", 4));
  if (!m) return;
  int n = m->g.n_nodes, gemm[16], ng = 0;
  for (int i = 0; i < n && ng < 16; i++)
    if (m->g.nodes[i].op == MH_OP_CONV2D || m->g.nodes[i].op == MH_OP_LINEAR) gemm[ng++] = i;
  mh_model_free(m);
  CHECK_EQ_INT(ng, 5);
  static const unsigned char mixes[][5] = {
      {F | W | D, F | W | D, F | W | D, F | W | D, F | W | D}, /* everything */
      {F, W, D, F | W, F | D},                                 /* every split: W on the DSP, D on the CPU, and back */
      {0, F | W, W, D, 0},                                     /* first and last layer on the CPU */
  };
  const char *precisions[] = {"niti", "int8"};
  for (int pi = 0; pi < 2; pi++) {
    size_t nb = 0, nb2 = 0;
    mh_dsp_report rc, rd;
    unsigned char *cpu = train_placed(precisions[pi], NULL, &nb, &rc);
    for (size_t mi = 0; mi < sizeof mixes / sizeof mixes[0] && cpu; mi++) {
      unsigned char place[64] = {0};
      if (mi == 0) memset(place, F | W | D, sizeof place); /* every pass of every node: ReLU and pools too */
      for (int k = 0; k < ng; k++) place[gemm[k]] = mixes[mi][k];
      unsigned char *dsp = train_placed(precisions[pi], place, &nb2, &rd);
      tl_checks++;
      if (!dsp || nb2 != nb || memcmp(cpu, dsp, nb))
        TL_FAIL("lenet5 %s, placement %zu: parameters differ from the CPU's", precisions[pi], mi);
      CHECK(rd.gemms > 0 && rd.cpu_fallbacks == 0);
      if (mi == 1) CHECK(rd.cosched_runs >= 6 * 4); /* conv2, fc1, fc2, fc3 split their backward every step */
      if (mi == 0 && pi == 0) CHECK(rd.eltwise_ops >= 6 * 12); /* 4 ReLUs and 2 pools, both passes */
      if (mi != 0 || pi != 0) CHECK_EQ_INT(rd.eltwise_ops, 0);
      free(dsp);
    }
    free(cpu);
  }
}

/* What is planned is what runs: with --backend auto the passes the DSP completed in a step are
 * exactly the planner's placement (the planner records what the DSP can do from the backend's
 * supports()), and with --backend dsp exactly what supports() says of every pass. */
static void plan_is_what_runs(void) {
  /* cnn6-nobn at batch 8 mixes both sides on sd865 with a DSP clocked ten times as fast (at its own
   * clock the calibrated model keeps every pass on the CPU); lenet5 with --backend dsp */
  static const char *backends[2] = {"auto", "dsp"}, *models[2] = {"cnn6-nobn", "lenet5"};
  enum { B = 8 };
  char fast[512], line[1024];
  snprintf(fast, sizeof fast, "%s/fast-dsp.profile", MH_BINARY_DIR);
  FILE *in = fopen(MH_SOURCE_DIR "/profiles/sd865.profile", "r"), *out = fopen(fast, "w");
  CHECK(in && out);
  while (in && out && fgets(line, sizeof line, in))
    fputs(strncmp(line, "dsp_clock_ghz", 13) ? line : "dsp_clock_ghz = 14\n", out);
  if (in) fclose(in);
  if (out) fclose(out);
  for (int k = 0; k < 2; k++) {
    mh_model *m = NULL;
    mh_trainer *t = NULL;
    mh_train_config cfg;
    mh_train_config_default(&cfg);
    cfg.precision = "niti", cfg.backend = backends[k], cfg.batch = B, cfg.profile = k == 0 ? fast : "sd865";
    if (mh_model_create(&m, models[k], 4) || mh_trainer_create(&t, m, &cfg)) {
      TL_FAIL("lenet5 niti --backend %s: %s", backends[k], mh_last_error());
      mh_model_free(m);
      continue;
    }
    const mh_graph *g = &m->g;
    unsigned char want[64] = {0};
    if (k == 0) {
      mh_profile p;
      mh_plan_summary sum;
      CHECK_OK(mh_profile_find(&p, fast));
      CHECK_OK(mh_plan(g, MH_PRECISION_INTEGER, &p, B, NULL, &sum, want));
    } else
      for (int i = 1; i < g->n_nodes; i++)
        for (unsigned bit = MH_PASS_FWD; bit <= MH_PASS_BWD_D; bit <<= 1)
          if (mh_dsp_supports(g, i, bit, MH_PRECISION_INTEGER)) want[i] |= (unsigned char)bit;
    static float x[B * 784];
    int32_t y[B];
    for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 2654435761u) % 1009) / 504.f - 1.f;
    for (int i = 0; i < B; i++) y[i] = i % 10;
    CHECK_OK(mh_trainer_step(t, x, y, B, NULL));
    const unsigned char *ran = mh_exec_backend_ran(t->ex);
    int on = 0;
    for (int i = 1; i < g->n_nodes; i++) {
      tl_checks++;
      on += want[i] != 0;
      if ((ran ? ran[i] : 0) != want[i])
        TL_FAIL("%s --backend %s: node %d '%s' ran passes %u on the DSP, the plan says %u", models[k], backends[k], i, g->nodes[i].name,
                ran ? ran[i] : 0u, want[i]);
    }
    CHECK(on > 0); /* the comparison is not vacuous */
    mh_trainer_free(t);
    mh_model_free(m);
  }
}

int main(void) {
  char prog[512], emu[512], why[640];
  if (!mh_dsp_locate(prog, sizeof prog, emu, sizeof emu, why, sizeof why)) {
    printf("SKIP: %s\n", why);
    return 77;
  }
  mh_dsp *d = NULL;
  CHECK_OK(mh_dsp_open(&d, 16u << 20));
  if (!d) return tl_exit();
  nodes(d);
  packed_weights_stay(d);
  mh_dsp_close(d);
  CHECK_OK(mh_dsp_open(&d, 1u << 20));
  if (d) malformed(d), seg_programs(d), seg_pad_shapes(d);
  mh_dsp_close(d);
  no_reuse();
  region_full();
  placements();
  segments();
  segment_packs_once();
  plan_is_what_runs();
  return tl_exit();
}
