/* The DSP program: maps the shared region (fd 3), then serves messages: it reads a sequence
 * number from the request pipe (fd 0), validates and runs the message in the slot, and writes the
 * sequence number back (fd 1). Every offset and size from the host is checked against the region
 * before use; a bad message gets an error status, never a crash. */
#include <stdint.h>

#include "gemm_msg.h"
#include "hvx_eltwise.h"
#include "hvx_pool.h"
#include "hvx_requant.h"
#include "region.h"
#include "segment.h"
#include "subgraph.h"
#include "sys.h"
#include "vtcm.h"
#include "wire.h"

#define REGION_FD 3

static uint8_t vtcm_mem[MH_WIRE_VTCM_BYTES] __attribute__((aligned(128)));
uint8_t *mh_region;
uint32_t mh_region_bytes;

static uint32_t do_requant(mh_vtcm *v, const mh_wire_requant_s8 *r, uint32_t *max_abs, uint32_t *saturated) {
  if (!r->n || r->n > (1u << 28) || r->shift > 31 || r->mode > 1 || (r->x_off & 127u) || (r->y_off & 127u)) return MH_WIRE_E_ARG;
  if (!mh_in_region(r->x_off, (uint64_t)r->n * 4) || !mh_in_region(r->y_off, r->n)) return MH_WIRE_E_BOUNDS;
  return (uint32_t)mh_hvx_requant_s8(v, (const int32_t *)(mh_region + r->x_off), (int8_t *)(mh_region + r->y_off), r->n,
                                     (int)r->shift, (int)r->mode, max_abs, saturated);
}

static uint32_t do_eltwise(mh_vtcm *v, uint32_t op, mh_wire_eltwise_s8 *e) {
  int bwd = op == MH_WIRE_RELU_BWD_S8 || op == MH_WIRE_ADD_S8;
  if (!e->n || e->n > (1u << 28) || (e->a_off & 127u) || (e->out_off & 127u) || (bwd && (e->b_off & 127u)))
    return MH_WIRE_E_ARG;
  if (!mh_in_region(e->a_off, e->n) || !mh_in_region(e->out_off, e->n) || (bwd && !mh_in_region(e->b_off, e->n)))
    return MH_WIRE_E_BOUNDS;
  const int8_t *a = (const int8_t *)(mh_region + e->a_off);
  int8_t *out = (int8_t *)(mh_region + e->out_off);
  if (op == MH_WIRE_ADD_S8) {
    if (e->ea < -(1 << 20) || e->ea > (1 << 20) || e->eb < -(1 << 20) || e->eb > (1 << 20)) return MH_WIRE_E_ARG;
    int ey = 0;
    uint32_t st = (uint32_t)mh_hvx_add_s8(v, a, e->ea, (const int8_t *)(mh_region + e->b_off), e->eb, out, e->n, &ey);
    e->ey = ey;
    return st;
  }
  return (uint32_t)(bwd ? mh_hvx_relu_bwd_s8(v, a, (const int8_t *)(mh_region + e->b_off), out, e->n)
                        : mh_hvx_relu_s8(v, a, out, e->n));
}

static uint32_t do_pool(mh_vtcm *v, uint32_t op, const mh_wire_pool_s8 *p) {
  int bwd = op == MH_WIRE_MAXPOOL2_BWD_S8;
  if (!p->planes || p->h < 2 || p->w < 2 || p->h > 65536 || p->w > 65536 || p->planes > (1u << 24)) return MH_WIRE_E_ARG;
  uint64_t in = (uint64_t)p->planes * p->h * p->w, out = (uint64_t)p->planes * (p->h / 2) * (p->w / 2);
  if (!mh_in_region(p->x_off, in) || !mh_in_region(p->y_off, out) || (bwd && !mh_in_region(p->dx_off, in))) return MH_WIRE_E_BOUNDS;
  const int8_t *x = (const int8_t *)(mh_region + p->x_off), *end = (const int8_t *)(mh_region + mh_region_bytes);
  return (uint32_t)(bwd ? mh_hvx_maxpool2_bwd_s8(v, x, (const int8_t *)(mh_region + p->y_off), (int8_t *)(mh_region + p->dx_off),
                                                 p->planes, p->h, p->w, end)
                        : mh_hvx_maxpool2_s8(v, x, (int8_t *)(mh_region + p->y_off), p->planes, p->h, p->w, end));
}

/* Maps the region: first its header page, then all of it once the size is known. 0 on success. */
static int map_region(void) {
  mh_wire_header *h = mh_sys_map_shared(REGION_FD, MH_WIRE_PAGE);
  if ((unsigned long)h >= (unsigned long)-4096) return -1;
  uint32_t bytes = h->region_bytes;
  if (h->magic != MH_WIRE_MAGIC || h->version != MH_WIRE_VERSION || bytes < MH_WIRE_PAGE || bytes % MH_WIRE_PAGE) {
    mh_region = (uint8_t *)h, mh_region_bytes = MH_WIRE_PAGE; /* enough to answer HELLO with an error */
    return 1;
  }
  mh_sys_munmap(h, MH_WIRE_PAGE);
  uint8_t *r = mh_sys_map_shared(REGION_FD, bytes);
  if ((unsigned long)r >= (unsigned long)-4096) return -1;
  mh_region = r, mh_region_bytes = bytes;
  return 0;
}

void _start(void) {
  int mapped = map_region();
  if (mapped < 0) mh_sys_exit(2);
  mh_vtcm v = {vtcm_mem, MH_WIRE_VTCM_BYTES, 0, 0};
  for (;;) {
    uint32_t seq;
    if (mh_sys_read(0, &seq, sizeof seq) != (long)sizeof seq) mh_sys_exit(0); /* host gone: stop */
    mh_wire_msg *msg = (mh_wire_msg *)(mh_region + MH_WIRE_MSG_OFFSET);
    uint32_t op = msg->op, status;
    mh_vtcm_reset(&v);
    if (msg->seq != seq) status = MH_WIRE_E_ARG;
    else if (op == MH_WIRE_HELLO) {
      msg->version = MH_WIRE_VERSION, msg->vtcm_bytes = MH_WIRE_VTCM_BYTES;
      status = mapped == 0 ? MH_WIRE_OK : MH_WIRE_E_VERSION;
    } else if (mapped != 0) status = MH_WIRE_E_VERSION;
    else if (op == MH_WIRE_GEMM_S8) {
      mh_wire_gemm_s8 g = msg->args.gemm; /* copy: the host may not change what was checked */
      uint32_t chunks = 0, mx = 0, sat = 0;
      status = g.apack_off ? MH_WIRE_E_ARG : mh_gemm_msg_check(&g); /* packed operands belong to subgraphs */
      if (status == MH_WIRE_OK) status = mh_gemm_msg_run(&v, &g, 0, &chunks, &mx, &sat);
      msg->chunks = chunks, msg->max_abs = mx, msg->saturated = sat;
    } else if (op == MH_WIRE_SG_PREPARE) {
      mh_wire_sg_prepare p = msg->args.sg_prepare;
      uint32_t checked = 0;
      status = mh_sg_prepare(&p, &checked);
      msg->checked_nodes = checked;
    } else if (op == MH_WIRE_SG_RUN) {
      mh_wire_sg_run r = msg->args.sg_run;
      uint32_t chunks = 0, mx = 0, sat = 0, packed = 0;
      status = mh_sg_run(&v, &r, &chunks, &mx, &sat, &packed);
      msg->chunks = chunks, msg->max_abs = mx, msg->saturated = sat, msg->packed_bytes = packed;
    } else if (op == MH_WIRE_SEG_PREPARE) {
      mh_wire_seg_prepare p = msg->args.seg_prepare;
      uint32_t checked = 0;
      status = mh_seg_prepare(&p, &checked);
      msg->checked_nodes = checked;
    } else if (op == MH_WIRE_SEG_RUN) {
      mh_wire_seg_run r = msg->args.seg_run;
      uint32_t chunks = 0, packed = 0;
      status = mh_seg_run(&v, &r, &chunks, &packed);
      msg->chunks = chunks, msg->packed_bytes = packed;
    } else if (op == MH_WIRE_SG_RELEASE) {
      status = mh_sg_release(msg->args.sg_prepare.id);
    } else if (op == MH_WIRE_REQUANT_S8) {
      mh_wire_requant_s8 r = msg->args.requant;
      uint32_t mx = 0, sat = 0;
      status = do_requant(&v, &r, &mx, &sat);
      msg->max_abs = mx, msg->saturated = sat;
    } else if (op == MH_WIRE_RELU_S8 || op == MH_WIRE_RELU_BWD_S8 || op == MH_WIRE_ADD_S8) {
      mh_wire_eltwise_s8 e = msg->args.eltwise;
      status = do_eltwise(&v, op, &e);
      msg->args.eltwise.ey = e.ey;
    } else if (op == MH_WIRE_MAXPOOL2_S8 || op == MH_WIRE_MAXPOOL2_BWD_S8) {
      mh_wire_pool_s8 p = msg->args.pool;
      status = do_pool(&v, op, &p);
    } else if (op == MH_WIRE_EXIT) status = MH_WIRE_OK;
    else status = MH_WIRE_E_OP;
    msg->status = status;
    if (mh_sys_write(1, &seq, sizeof seq) != (long)sizeof seq) mh_sys_exit(3);
    if (op == MH_WIRE_EXIT && status == MH_WIRE_OK) mh_sys_exit(0);
  }
}
