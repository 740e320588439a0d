/* Segment programs on the host side (dsp/wire.h, "Segment programs"): a chain of integer layers
 * (grid convolutions, ReLU, 2x2 max-pool) run by one message per pass, its activations, errors and
 * padded images staying in the shared region between layers and from forward to backward. The host
 * writes the chain's input (forward) or error (backward) and reads back what the rest of the step
 * reads: the activations saved for a CPU backward, the gradients, exponents and rescale histories. */
#include <stdlib.h>
#include <string.h>

#include "backend/dsp/backend_dsp.h"
#include "backend/dsp/packets.h"
#include "backend/dsp/subgraph.h"
#include "core/status.h"
#include "ops/conv2d_common.h"
#include "quant/rescale.h"

#define SEG_NODES 12 /* layers per segment: keeps the tensor table and node lists within the wire's */
#define NONE MH_WIRE_SEG_NONE

typedef struct mh_dsp_seg {
  int first, cnt, batch;
  int id[2];            /* DSP program slots: forward, backward */
  int prepared[2];
  unsigned char bwd_passes[SEG_NODES]; /* the backward program was built for these passes */
  int fwd_ok;           /* the forward ran in this step (the region holds its activations) */
  uint32_t base, bytes; /* the segment's own tensors */
  int n_t;
  mh_wire_seg_tensor t[MH_WIRE_SEG_TENSORS];
  /* tensor indices per layer: input activation, output, input gradient; per convolution the
   * subgraph's padded image, error grid, padded error; the raw biases and the bias gradient */
  int act[SEG_NODES + 1], dx[SEG_NODES], x[SEG_NODES], g[SEG_NODES], dyp[SEG_NODES], braw[SEG_NODES], db[SEG_NODES];
  int dy_in;            /* the error of the chain's output (written by the host) */
  int big;              /* int32 scratch (exact rescaling, input gradients) */
  uint32_t table_off;
  struct mh_dsp_sg *sg[SEG_NODES];
  int rule_node[2][SEG_NODES]; /* program node of each layer's rescaled GEMM (forward, backward) */
} mh_dsp_seg;

static uint64_t al128(uint64_t b) { return (b + 127) / 128 * 128; }

static int placed_all(const mh_graph *g, int i, const unsigned char *place) {
  unsigned need = MH_PASS_FWD | MH_PASS_BWD_D | (g->nodes[i].op == MH_OP_CONV2D ? MH_PASS_BWD_W : 0u);
  return place && (place[i] & need) == need;
}

/* Whether node i can be in a segment (its forward and backward run there as the CPU op would). */
static int seg_op(const mh_graph *g, int i) {
  const mh_node *nd = &g->nodes[i];
  if (nd->op == MH_OP_CONV2D) {
    conv_dims d = mh__conv_dims_of(g, nd, 1);
    return d.G == 1 && mh__dsp_conv_is_grid(&d) && mh_wire_fused_fits((uint32_t)d.O, (uint32_t)(d.C * d.K * d.K));
  }
  return (nd->op == MH_OP_RELU || nd->op == MH_OP_MAXPOOL) &&
         mh_dsp_supports(g, i, MH_PASS_FWD, MH_PRECISION_INTEGER) && mh_dsp_supports(g, i, MH_PASS_BWD_D, MH_PRECISION_INTEGER);
}

int mh__dsp_segment_last(const mh_dsp_backend *b, const mh_graph *g, int node, const unsigned char *place, int precision) {
  if (precision != MH_PRECISION_INTEGER || !b->dsp->reuse || node < 1 || g->nodes[node].op != MH_OP_CONV2D ||
      !seg_op(g, node) || !placed_all(g, node, place))
    return node;
  int last = node;
  while (last + 1 < g->n_nodes && last - node + 1 < SEG_NODES && last - node + 1 < MH_SEGMENT_MAX) {
    const mh_node *nx = &g->nodes[last + 1];
    if (nx->n_in != 1 || nx->in[0] != last || g->nodes[last].n_consumers != 1 || !seg_op(g, last + 1) ||
        !placed_all(g, last + 1, place))
      break;
    last++;
  }
  return last;
}

static int add_tensor(mh_dsp_seg *s, uint32_t off, uint64_t bytes) {
  s->t[s->n_t].off = off, s->t[s->n_t].bytes = (uint32_t)bytes;
  return s->n_t++;
}

/* The next of the segment's own tensors (own[*i] bytes) at *p. */
static int take(mh_dsp_seg *s, uint64_t *p, const uint64_t *own, int *i) {
  uint64_t bytes = own[(*i)++], off = *p;
  *p += al128(bytes ? bytes : 1);
  return add_tensor(s, (uint32_t)off, bytes);
}

/* Lays out the segment's tensors for this chain and batch (once: a segment keeps its first batch
 * size; other batches run layer by layer). */
static int layout(mh_dsp_backend *b, mh_dsp_seg *s, mh_op_ctx *c, int cnt) {
  mh_dsp *d = b->dsp;
  uint64_t own[4 * SEG_NODES + 4], big = 0, sum = 0;
  int n_own = 0;
  const mh_node *in0 = &c[0].g->nodes[c[0].node->in[0]];
  own[n_own++] = (uint64_t)c[0].n * in0->c * in0->h * in0->w; /* the chain's input */
  for (int k = 0; k < cnt; k++) {
    const mh_node *nd = c[k].node, *in = &c[k].g->nodes[nd->in[0]];
    uint64_t y = (uint64_t)c[k].n * nd->c * nd->h * nd->w, x = (uint64_t)c[k].n * in->c * in->h * in->w;
    own[n_own++] = y, own[n_own++] = x; /* output, input gradient */
    if (nd->op == MH_OP_CONV2D) {
      big = y * 4 > big ? y * 4 : big, big = x * 4 > big ? x * 4 : big;
      own[n_own++] = 4u * (uint64_t)nd->c, own[n_own++] = 4u * (uint64_t)nd->c; /* raw biases, bias gradient */
    }
  }
  const mh_node *ln = c[cnt - 1].node;
  own[n_own++] = (uint64_t)c[0].n * ln->c * ln->h * ln->w;
  own[n_own++] = big, own[n_own++] = sizeof(mh_wire_seg_table);
  for (int i = 0; i < n_own; i++) sum += al128(own[i] ? own[i] : 1);
  uint64_t desc = al128((uint64_t)MH_WIRE_SEG_TENSORS * sizeof(mh_wire_seg_tensor) +
                        (uint64_t)MH_WIRE_SEG_NODES * sizeof(mh_wire_seg_node));
  if (d->persist_top + sum + desc > d->transient_low)
    return mh__error(MH_ERR_UNSUPPORTED, "DSP: segment at node %d needs %llu bytes; the shared region is full", s->first,
                     (unsigned long long)sum);
  s->base = (uint32_t)al128(d->persist_top), s->bytes = (uint32_t)sum;
  d->persist_top = s->base + (uint32_t)sum;
  uint64_t p = s->base;
  int i = 0;
  s->n_t = 0;
  s->act[0] = take(s, &p, own, &i);
  for (int k = 0; k < cnt; k++) {
    s->act[k + 1] = take(s, &p, own, &i);
    s->dx[k] = take(s, &p, own, &i);
    s->braw[k] = s->db[k] = -1;
    if (c[k].node->op == MH_OP_CONV2D) {
      s->braw[k] = take(s, &p, own, &i);
      s->db[k] = take(s, &p, own, &i);
    }
  }
  s->dy_in = take(s, &p, own, &i);
  s->big = take(s, &p, own, &i);
  s->table_off = s->t[take(s, &p, own, &i)].off;
  return MH_OK;
}

/* The subgraphs of the chain's convolutions with this step's weights; their tensors join the table. */
static int conv_sgs(mh_dsp_backend *b, mh_dsp_seg *s, mh_op_ctx *c, int cnt, int add) {
  for (int k = 0; k < cnt; k++) {
    if (c[k].node->op != MH_OP_CONV2D) continue;
    conv_dims cd = mh__conv_dims(&c[k]);
    mh_dsp_sg *sg = mh__dsp_conv_sg(b, &c[k], &cd, c[k].qw, 1);
    if (!sg) return MH_ERR_BACKEND;
    s->sg[k] = sg;
    if (add) {
      s->x[k] = add_tensor(s, sg->off[MH_CONV_X], sg->desc.t[MH_CONV_X].bytes);
      s->g[k] = add_tensor(s, sg->off[MH_CONV_G], sg->desc.t[MH_CONV_G].bytes);
      s->dyp[k] = add_tensor(s, sg->off[MH_CONV_DYP], sg->desc.t[MH_CONV_DYP].bytes);
    }
  }
  return MH_OK;
}

static mh_wire_seg_node node(uint32_t op, int in, int in2, int out, int bias, uint32_t sg, uint32_t n, uint32_t c,
                             uint32_t h, uint32_t w) {
  mh_wire_seg_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = op, nd.sg = sg, nd.n = n, nd.c = c, nd.h = h, nd.w = w;
  nd.in = in < 0 ? NONE : (uint32_t)in, nd.in2 = in2 < 0 ? NONE : (uint32_t)in2;
  nd.out = out < 0 ? NONE : (uint32_t)out, nd.bias = bias < 0 ? NONE : (uint32_t)bias;
  return nd;
}

static mh_wire_seg_node pad(int in, int out, uint32_t n, uint32_t c, uint32_t h, uint32_t w, int p, int q, int top,
                            size_t ld) {
  mh_wire_seg_node nd = node(MH_SEG_PAD, in, -1, out, -1, 0, n, c, h, w);
  nd.p = (uint32_t)p, nd.q = (uint32_t)q, nd.top = (uint32_t)top, nd.ld = (uint32_t)ld;
  return nd;
}

/* The program of one pass: nodes into `out`, their count returned; rule_node[k]: the program node
 * whose rescale history is layer k's (-1: none). */
static int program(const mh_dsp_seg *s, const mh_op_ctx *c, int cnt, int bwd, mh_wire_seg_node *out, int *rule_node) {
  int m = 0;
  for (int j = 0; j < cnt; j++) {
    int k = bwd ? cnt - 1 - j : j;
    const mh_node *nd = c[k].node, *in = &c[k].g->nodes[nd->in[0]];
    uint32_t N = (uint32_t)c[k].n;
    rule_node[k] = -1;
    if (nd->op == MH_OP_CONV2D) {
      conv_dims d = mh__conv_dims(&c[k]);
      int hp, wp, hq, wq;
      size_t jt, jt2;
      mh__dsp_conv_grid(&d, &hp, &wp, &hq, &wq, &jt, &jt2);
      uint32_t id = (uint32_t)s->sg[k]->id;
      if (!bwd) {
        out[m++] = pad(s->act[k], s->x[k], N, (uint32_t)d.C, (uint32_t)d.H, (uint32_t)d.W, hp, wp, d.D, (size_t)d.N * hp * wp);
        mh_wire_seg_node f = node(MH_SEG_CONV_FWD, s->act[k], s->big, s->act[k + 1], nd->bias ? s->braw[k] : -1, id, N,
                                  (uint32_t)d.O, (uint32_t)d.P, (uint32_t)d.Q);
        f.p = (uint32_t)hp, f.q = (uint32_t)wp;
        rule_node[k] = m, out[m++] = f;
        continue;
      }
      int dy = k + 1 < cnt ? s->dx[k + 1] : s->dy_in, in_dyp = s->sg[k]->desc.g_in_dyp;
      if (in_dyp) /* the weight gradient reads the error inside its padded form: one pad for both */
        out[m++] = pad(dy, s->dyp[k], N, (uint32_t)d.O, (uint32_t)d.P, (uint32_t)d.Q, hq, wq, d.K - 1 - d.D,
                       (size_t)d.N * hq * wq);
      if (c[k].passes & MH_PASS_BWD_W) {
        if (!in_dyp) out[m++] = pad(dy, s->g[k], N, (uint32_t)d.O, (uint32_t)d.P, (uint32_t)d.Q, hp, wp, 0, jt);
        out[m++] = node(MH_SEG_CONV_BWD_W, dy, -1, -1, nd->bias ? s->db[k] : -1, id, N, (uint32_t)d.O, (uint32_t)d.P,
                        (uint32_t)d.Q);
      }
      if (c[k].passes & MH_PASS_BWD_D) {
        if (!in_dyp)
          out[m++] = pad(dy, s->dyp[k], N, (uint32_t)d.O, (uint32_t)d.P, (uint32_t)d.Q, hq, wq, d.K - 1 - d.D,
                         (size_t)d.N * hq * wq);
        mh_wire_seg_node bd = node(MH_SEG_CONV_BWD_D, dy, s->big, s->dx[k], -1, id, N, (uint32_t)d.C, (uint32_t)d.H,
                                   (uint32_t)d.W);
        bd.p = (uint32_t)hq, bd.q = (uint32_t)wq;
        rule_node[k] = m, out[m++] = bd;
      }
      continue;
    }
    int pool = nd->op == MH_OP_MAXPOOL;
    uint32_t C = (uint32_t)(pool ? in->c : nd->c), H = (uint32_t)(pool ? in->h : nd->h), W = (uint32_t)(pool ? in->w : nd->w);
    if (!bwd) {
      out[m++] = node(pool ? MH_SEG_POOL2 : MH_SEG_RELU, s->act[k], -1, s->act[k + 1], -1, 0, N, C, H, W);
      continue;
    }
    int dy = k + 1 < cnt ? s->dx[k + 1] : s->dy_in;
    out[m++] = node(pool ? MH_SEG_POOL2_BWD : MH_SEG_RELU_BWD, pool ? s->act[k] : s->act[k + 1], dy, s->dx[k], -1, 0, N,
                    C, H, W);
  }
  return m;
}

/* Sends program `bwd` of the segment (its tensor table and nodes) to be checked and cached. */
static int prepare(mh_dsp_backend *b, mh_dsp_seg *s, int bwd, const mh_wire_seg_node *nodes, int m) {
  mh_dsp *d = b->dsp;
  s->prepared[bwd] = 0;
  uint32_t desc_off = (uint32_t)al128(d->persist_top);
  mh_wire_seg_tensor *t = (mh_wire_seg_tensor *)mh_dsp_at(d, desc_off);
  memcpy(t, s->t, sizeof *t * (size_t)s->n_t);
  memcpy(t + s->n_t, nodes, sizeof *nodes * (size_t)m);
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_SEG_PREPARE;
  mh_wire_seg_prepare pr = {(uint32_t)s->id[bwd], desc_off, (uint32_t)s->n_t, (uint32_t)m, {0}};
  msg->args.seg_prepare = pr;
  MH_TRY(mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS));
  s->prepared[bwd] = 1;
  b->cnt->seg_prepares++;
  b->cnt->sg_nodes_checked += msg->checked_nodes;
  b->cnt->bytes_to_dsp += sizeof *t * (double)s->n_t + sizeof *nodes * (double)m + sizeof *msg;
  return MH_OK;
}

/* The segment of this chain at this batch: found, or laid out (NULL with an error when it cannot be:
 * another batch size than its first, no room in the region or no free program slot). */
static mh_dsp_seg *find(mh_dsp_backend *b, mh_op_ctx *c, int cnt) {
  for (int i = 0; i < b->n_segs; i++)
    if (b->segs[i].first == c[0].node_id) {
      if (b->segs[i].cnt == cnt && b->segs[i].batch == c[0].n) return &b->segs[i];
      mh__error(MH_ERR_UNSUPPORTED, "DSP: the segment at node %d is laid out for batch %d", c[0].node_id, b->segs[i].batch);
      return NULL;
    }
  if (2 * (b->n_segs + 1) > (int)MH_WIRE_SEG_SLOTS) {
    mh__error(MH_ERR_UNSUPPORTED, "DSP: all %u segment slots are in use", MH_WIRE_SEG_SLOTS);
    return NULL;
  }
  mh_dsp_seg *segs = realloc(b->segs, sizeof *segs * (size_t)(b->n_segs + 1));
  if (!segs) {
    mh__error(MH_ERR_NOMEM, "DSP: out of memory");
    return NULL;
  }
  b->segs = segs;
  mh_dsp_seg *s = &segs[b->n_segs];
  memset(s, 0, sizeof *s);
  s->first = c[0].node_id, s->cnt = cnt, s->batch = c[0].n;
  s->id[0] = 2 * b->n_segs, s->id[1] = 2 * b->n_segs + 1;
  if (layout(b, s, c, cnt) != MH_OK || conv_sgs(b, s, c, cnt, 1) != MH_OK) return NULL;
  b->n_segs++;
  return s;
}

static void count_rule(const mh_op_ctx *c, const mh_wire_seg_table *tb, int j) {
  mh_rescale_count_event(c->rc, (int)tb->res[j][1], (long)tb->res[j][2], c->rescale);
}

static size_t numel(const mh_op_ctx *c, const mh_node *nd) { return (size_t)c->n * nd->c * nd->h * nd->w; }

int mh__dsp_segment_run(mh_dsp_backend *b, mh_op_ctx *c, int cnt, unsigned pass) {
  mh_dsp *d = b->dsp;
  if (!d->alive) return mh__error(MH_ERR_BACKEND, "DSP: the session is gone");
  if (cnt > SEG_NODES) return mh__error(MH_ERR_UNSUPPORTED, "DSP: a segment of %d layers", cnt);
  mh_dsp_seg *s = find(b, c, cnt);
  if (!s) return MH_ERR_UNSUPPORTED; /* why: mh_last_error(); the layers run one by one */
  int bwd = pass != MH_PASS_FWD;
  if (bwd && !s->fwd_ok) return mh__error(MH_ERR_UNSUPPORTED, "DSP: the segment's forward did not run in this step");
  s->fwd_ok = 0;
  MH_TRY(conv_sgs(b, s, c, cnt, 0));
  mh_wire_seg_node nodes[MH_WIRE_SEG_NODES];
  int m = program(s, c, cnt, bwd, nodes, s->rule_node[bwd]);
  int same = 1;
  for (int k = 0; bwd && k < cnt; k++) same &= s->bwd_passes[k] == (unsigned char)c[k].passes;
  if (!s->prepared[bwd] || !same) {
    MH_TRY(prepare(b, s, bwd, nodes, m));
    for (int k = 0; bwd && k < cnt; k++) s->bwd_passes[k] = (unsigned char)c[k].passes;
  }
  /* the run table and the chain's input (forward) or error (backward) */
  mh_wire_seg_table *tb = (mh_wire_seg_table *)mh_dsp_at(d, s->table_off);
  memset(tb, 0, sizeof *tb);
  uint32_t changed[2] = {0, 0};
  for (int k = 0; k < cnt; k++) {
    if (c[k].node->op != MH_OP_CONV2D) continue;
    mh_dsp_sg *sg = s->sg[k];
    if (sg->weights_new) changed[sg->id >> 5] |= 1u << (sg->id & 31);
    int j = s->rule_node[bwd][k];
    if (j < 0) continue;
    tb->ew[j][0] = c[k].ew[0], tb->ew[j][1] = c[k].node->bias ? c[k].ew[1] : 0;
    const mh_rescale_state *rs = &c[k].rs[bwd];
    tb->rs[j][0] = rs->shift, tb->rs[j][1] = rs->have, tb->rs[j][2] = rs->since_exact;
    if (!bwd && c[k].node->bias) {
      int32_t *raw = (int32_t *)mh_dsp_at(d, s->t[s->braw[k]].off);
      const conv_dims cd = mh__conv_dims(&c[k]);
      const int8_t *qb = c[k].qw + (size_t)cd.O * cd.C * cd.K * cd.K;
      for (int o = 0; o < cd.O; o++) raw[o] = qb[o];
      b->cnt->bytes_to_dsp += 4.0 * cd.O;
    }
  }
  const mh_node *in0 = &c[0].g->nodes[c[0].node->in[0]];
  size_t in_bytes = bwd ? numel(&c[cnt - 1], c[cnt - 1].node) : numel(&c[0], in0);
  if (bwd) {
    tb->e[s->dy_in] = c[cnt - 1].edy;
    memcpy(mh_dsp_at(d, s->t[s->dy_in].off), c[cnt - 1].qdy, in_bytes);
  } else {
    tb->e[s->act[0]] = c[0].ex[0];
    memcpy(mh_dsp_at(d, s->t[s->act[0]].off), c[0].qx[0], in_bytes);
  }
  mh_wire_msg *msg = mh_dsp_msg(d);
  memset(msg, 0, sizeof *msg);
  msg->op = MH_WIRE_SEG_RUN;
  mh_wire_seg_run r = {(uint32_t)s->id[bwd], s->table_off, c[0].rescale == MH_RESCALE_ADAPTIVE, {changed[0], changed[1]},
                       (uint32_t)bwd, {0}};
  msg->args.seg_run = r;
  double pk0 = 0, hvx;
  if (b->node_packets) mh_dsp_packets_totals(d, &pk0, &hvx);
  int st = mh_dsp_call(d, MH_DSP_CALL_TIMEOUT_MS);
  if (st != MH_OK) {
    s->prepared[0] = s->prepared[1] = 0;
    for (int k = 0; k < cnt; k++)
      if (s->sg[k]) s->sg[k]->weights_new = 1; /* repack after a failure */
    return st;
  }
  mh_dsp_counts *cnt_ = b->cnt;
  cnt_->seg_runs++;
  for (int i = 0; i < m; i++)
    if (nodes[i].op == MH_SEG_PAD) cnt_->pad_bytes += (double)nodes[i].c * nodes[i].ld;
  cnt_->packed_bytes += msg->packed_bytes;
  cnt_->vtcm_chunks += msg->chunks;
  cnt_->bytes_to_dsp += in_bytes + sizeof *tb + sizeof *msg;
  cnt_->bytes_from_dsp += sizeof *tb;
  /* results: what the rest of the step reads */
  for (int k = 0; k < cnt; k++) {
    const mh_node *nd = c[k].node;
    if (nd->op == MH_OP_CONV2D) {
      mh_dsp_sg *sg = s->sg[k];
      sg->weights_new = 0;
      conv_dims cd = mh__conv_dims(&c[k]);
      size_t kk = (size_t)cd.C * cd.K * cd.K;
      int j = s->rule_node[bwd][k];
      if (j >= 0) {
        mh_rescale_state *rs = &c[k].rs[bwd];
        rs->shift = tb->rs[j][0], rs->have = tb->rs[j][1], rs->since_exact = tb->rs[j][2];
        count_rule(&c[k], tb, j);
      }
      unsigned gemms = bwd ? c[k].passes : MH_PASS_FWD;
      for (unsigned bit = MH_PASS_FWD; bit <= MH_PASS_BWD_D; bit <<= 1)
        if (gemms & bit) cnt_->gemms++, cnt_->macs += (double)cd.N * cd.O * cd.P * cd.Q * kk;
      if (!bwd) cnt_->fused_gemms += (int)(tb->res[j][1] & MH_RULE_EXACT) == 0;
      if (bwd && (c[k].passes & MH_PASS_BWD_W)) {
        mh__dsp_conv_read_dw(&sg->desc, mh_dsp_sg_at(d, sg, MH_CONV_DW), cd.O, (int)kk, c[k].qdw);
        cnt_->bytes_from_dsp += 4.0 * cd.O * kk;
        if (nd->bias) {
          memcpy(c[k].qdw + (size_t)cd.O * kk, mh_dsp_at(d, s->t[s->db[k]].off), sizeof(int32_t) * cd.O);
          cnt_->bytes_from_dsp += 4.0 * cd.O;
        }
      }
    } else
      cnt_->eltwise_ops++;
    if (!bwd) {
      *c[k].ey = tb->e[s->act[k + 1]];
      /* a convolution's output read only by the ReLU after it stays in the region */
      int kept = nd->op == MH_OP_CONV2D && k + 1 < cnt && c[k + 1].node->op == MH_OP_RELU;
      if (!kept) {
        memcpy(c[k].qy, mh_dsp_at(d, s->t[s->act[k + 1]].off), numel(&c[k], nd));
        cnt_->bytes_from_dsp += (double)numel(&c[k], nd);
      }
    } else if (k > 0) {
      *c[k].edx[0] = tb->e[s->dx[k]]; /* as the CPU leaves it; the error itself stays in the region */
    } else if (c[0].qdx[0] && (c[0].passes & MH_PASS_BWD_D)) {
      size_t nx = numel(&c[0], in0);
      mh__int_emit_grad(&c[0], 0, (const int8_t *)mh_dsp_at(d, s->t[s->dx[0]].off), tb->e[s->dx[0]], (long)nx);
      cnt_->bytes_from_dsp += (double)nx;
    }
  }
  if (b->node_packets) {
    double now;
    mh_dsp_packets_totals(d, &now, &hvx);
    b->node_packets[2 * c[0].node_id + bwd] += now - pk0;
  }
  s->fwd_ok = !bwd;
  return MH_OK;
}

void mh__dsp_segments_release(mh_dsp_backend *b) {
  free(b->segs);
  b->segs = NULL, b->n_segs = 0;
}
