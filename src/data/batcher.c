/* The batcher: per-epoch shuffle, random crop/flip, per-channel normalisation and an optional
 * prefetch thread. Every batch is a pure function of (seed, epoch, batch index), whatever the
 * prefetching. Deliberately not a general augmentation pipeline, and it never copies the data set. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "data/dataset.h"

/* Ring of batch buffers: the consumer holds one until its next call, the thread fills the rest. */
#define MH_BATCHER_SLOTS 3
#define MH_BATCHER_MAX_PAD 4096

typedef struct mh_batch_slot {
  float *x;
  int32_t *y;
  int n;
} mh_batch_slot;

struct mh_batcher {
  const mh_dataset *ds; /* borrowed: must outlive the batcher */
  mh_batcher_config cfg;
  size_t sample_elems; /* c * h * w */
  int cap;             /* samples per buffer: min(batch, n) */
  int n_batches;
  float lut[3][256]; /* normalised value of each byte, per channel */
  uint32_t *perm;    /* sample order of `epoch` */
  int perm_epoch;    /* epoch `perm` was built for, -1 when none */
  int epoch, first_batch;
  int taken;         /* batches handed out since the epoch (re)started */
  int thread_pending; /* prefetch wanted but the thread is started lazily at the next call */
  mh_batch_slot slots[MH_BATCHER_SLOTS];

  /* Prefetch state. `produced` and `released` count batches since first_batch and are guarded
   * by `mu`; the thread only writes slots in [released, produced + 1) which the consumer never reads. */
  int sync_ready; /* mu and the condvars were initialised */
  int thread_running;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv_ready; /* a batch was produced */
  pthread_cond_t cv_space; /* a slot was released, or stop was requested */
  int produced, released, stop;
};

static void build_perm(mh_batcher *b, int epoch) {
  int n = b->ds->n;
  for (int i = 0; i < n; i++) b->perm[i] = (uint32_t)i;
  if (b->cfg.shuffle) {
    mh_rng r = mh_rng_make(mh_rng_key(b->cfg.seed, MH_STREAM_SHUFFLE, (uint64_t)epoch, 0));
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
      uint32_t j = mh_rng_below(&r, (uint32_t)i + 1u);
      uint32_t t = b->perm[i];
      b->perm[i] = b->perm[j];
      b->perm[j] = t;
    }
  }
  b->perm_epoch = epoch;
}

/* Writes sample `idx` of the data set as the `pos`-th sample of the epoch into dst. */
static void fill_sample(const mh_batcher *b, int epoch, int pos, uint32_t idx, float *dst) {
  const mh_dataset *ds = b->ds;
  int c = ds->c, h = ds->h, w = ds->w, pad = b->cfg.crop_pad;
  const uint8_t *src = ds->pixels + (size_t)idx * b->sample_elems;
  size_t plane = (size_t)h * (size_t)w;
  int dy = 0, dx = 0, flip = 0; /* dy, dx: shift of the crop window relative to the original */
  if (pad > 0 || b->cfg.hflip) {
    mh_rng r = mh_rng_make(mh_rng_key(b->cfg.seed, MH_STREAM_AUGMENT, (uint64_t)epoch, (uint64_t)pos));
    if (pad > 0) {
      dy = (int)mh_rng_below(&r, (uint32_t)(2 * pad + 1)) - pad;
      dx = (int)mh_rng_below(&r, (uint32_t)(2 * pad + 1)) - pad;
    }
    if (b->cfg.hflip) flip = mh_rng_uniform(&r) < 0.5f;
  }
  if (dy == 0 && dx == 0 && !flip) {
    for (int ch = 0; ch < c; ch++) {
      const float *lut = b->lut[ch];
      const uint8_t *s = src + (size_t)ch * plane;
      float *d = dst + (size_t)ch * plane;
      for (size_t k = 0; k < plane; k++) d[k] = lut[s[k]];
    }
    return;
  }
  /* Crop of the zero-padded image (padding is pixel value 0, normalised like any pixel),
   * then a mirror of the crop. */
  for (int ch = 0; ch < c; ch++) {
    const float *lut = b->lut[ch];
    const uint8_t *s = src + (size_t)ch * plane;
    float *d = dst + (size_t)ch * plane;
    for (int y = 0; y < h; y++) {
      int sy = y + dy;
      float *drow = d + (size_t)y * w;
      if (sy < 0 || sy >= h) {
        for (int x = 0; x < w; x++) drow[x] = lut[0];
        continue;
      }
      const uint8_t *srow = s + (size_t)sy * w;
      for (int x = 0; x < w; x++) {
        int sx = (flip ? w - 1 - x : x) + dx;
        drow[x] = (sx >= 0 && sx < w) ? lut[srow[sx]] : lut[0];
      }
    }
  }
}

/* Fills batch `bi` of the current epoch into `slot`. Reads only data fixed while the epoch runs. */
static void fill_batch(const mh_batcher *b, int bi, mh_batch_slot *slot) {
  int batch = b->cfg.batch, n = b->ds->n;
  int64_t start = (int64_t)bi * batch;
  int cnt = (int)((int64_t)n - start < batch ? (int64_t)n - start : batch);
  for (int i = 0; i < cnt; i++) {
    int pos = (int)start + i;
    uint32_t idx = b->perm[pos];
    fill_sample(b, b->epoch, pos, idx, slot->x + (size_t)i * b->sample_elems);
    slot->y[i] = (int32_t)b->ds->labels[idx];
  }
  slot->n = cnt;
}

static void *prefetch_main(void *arg) {
  mh_batcher *b = arg;
  pthread_mutex_lock(&b->mu);
  for (;;) {
    while (!b->stop && b->produced - b->released >= MH_BATCHER_SLOTS) pthread_cond_wait(&b->cv_space, &b->mu);
    if (b->stop || b->first_batch + b->produced >= b->n_batches) break;
    int k = b->produced;
    pthread_mutex_unlock(&b->mu);
    fill_batch(b, b->first_batch + k, &b->slots[k % MH_BATCHER_SLOTS]);
    pthread_mutex_lock(&b->mu);
    b->produced = k + 1;
    pthread_cond_signal(&b->cv_ready);
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

static void stop_thread(mh_batcher *b) {
  b->thread_pending = 0;
  if (!b->thread_running) return;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  pthread_cond_broadcast(&b->cv_space);
  pthread_mutex_unlock(&b->mu);
  pthread_join(b->thread, NULL);
  b->thread_running = 0;
}

static void start_thread(mh_batcher *b) {
  b->thread_pending = 0;
  b->produced = 0;
  b->released = 0;
  b->stop = 0;
  if (!b->sync_ready || b->first_batch >= b->n_batches) return;
  /* Without a thread the batches are made synchronously: the same bytes, just later. */
  if (pthread_create(&b->thread, NULL, prefetch_main, b) == 0) b->thread_running = 1;
}

void mh_batcher_free(mh_batcher *b) {
  if (!b) return;
  stop_thread(b);
  if (b->sync_ready) {
    pthread_cond_destroy(&b->cv_space);
    pthread_cond_destroy(&b->cv_ready);
    pthread_mutex_destroy(&b->mu);
  }
  for (int i = 0; i < MH_BATCHER_SLOTS; i++) {
    free(b->slots[i].x);
    free(b->slots[i].y);
  }
  free(b->perm);
  free(b);
}

int mh_batcher_init(mh_batcher **out, const mh_dataset *ds, const mh_batcher_config *cfg) {
  if (!out) return mh__error(MH_ERR_INVALID_ARG, "mh_batcher_init: NULL output");
  *out = NULL;
  if (!ds || !cfg) return mh__error(MH_ERR_INVALID_ARG, "mh_batcher_init: NULL data set or config");
  if (ds->n <= 0 || !ds->pixels || !ds->labels)
    return mh__error(MH_ERR_INVALID_ARG, "batcher: empty data set (%d samples)", ds->n);
  if (ds->c < 1 || ds->c > 3 || ds->h < 1 || ds->h > 4096 || ds->w < 1 || ds->w > 4096)
    return mh__error(MH_ERR_INVALID_ARG, "batcher: unsupported sample shape %dx%dx%d (1..3 channels, 1..4096 px)",
                     ds->c, ds->h, ds->w);
  if (cfg->batch < 1) return mh__error(MH_ERR_INVALID_ARG, "batcher: batch size %d must be >= 1", cfg->batch);
  if (cfg->crop_pad < 0 || cfg->crop_pad > MH_BATCHER_MAX_PAD)
    return mh__error(MH_ERR_INVALID_ARG, "batcher: crop padding %d out of range (0..%d)", cfg->crop_pad,
                     MH_BATCHER_MAX_PAD);
  for (int ch = 0; ch < ds->c; ch++)
    if (!isfinite(cfg->mean[ch]) || !isfinite(cfg->std[ch]) || !(cfg->std[ch] > 0.0f))
      return mh__error(MH_ERR_INVALID_ARG, "batcher: channel %d normalisation mean %g std %g (std must be > 0)",
                       ch, (double)cfg->mean[ch], (double)cfg->std[ch]);
  int64_t nb = cfg->drop_last ? (int64_t)ds->n / cfg->batch : ((int64_t)ds->n + cfg->batch - 1) / cfg->batch;
  if (nb < 1)
    return mh__error(MH_ERR_INVALID_ARG, "batcher: batch size %d with drop_last leaves no batch of %d samples",
                     cfg->batch, ds->n);

  mh_batcher *b = calloc(1, sizeof *b);
  if (!b) return mh__error(MH_ERR_NOMEM, "batcher: out of memory");
  b->ds = ds;
  b->cfg = *cfg;
  b->sample_elems = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
  b->cap = cfg->batch < ds->n ? cfg->batch : ds->n;
  b->n_batches = (int)nb;
  b->perm_epoch = -1;
  for (int ch = 0; ch < ds->c; ch++)
    for (int v = 0; v < 256; v++) b->lut[ch][v] = ((float)v / 255.0f - cfg->mean[ch]) / cfg->std[ch];

  int nslots = cfg->prefetch ? MH_BATCHER_SLOTS : 1;
  int st = MH_OK;
  if (b->sample_elems > SIZE_MAX / sizeof(float) / (size_t)b->cap)
    st = mh__error(MH_ERR_NOMEM, "batcher: a batch of %d x %zu floats does not fit in memory", b->cap,
                   b->sample_elems);
  for (int i = 0; st == MH_OK && i < nslots; i++) {
    b->slots[i].x = malloc((size_t)b->cap * b->sample_elems * sizeof(float));
    b->slots[i].y = malloc((size_t)b->cap * sizeof(int32_t));
    if (!b->slots[i].x || !b->slots[i].y) st = mh__error(MH_ERR_NOMEM, "batcher: cannot allocate batch buffers");
  }
  if (st == MH_OK) {
    b->perm = malloc((size_t)ds->n * sizeof(uint32_t));
    if (!b->perm) st = mh__error(MH_ERR_NOMEM, "batcher: cannot allocate a permutation of %d", ds->n);
  }
  if (st == MH_OK && cfg->prefetch) {
    if (pthread_mutex_init(&b->mu, NULL) == 0) {
      if (pthread_cond_init(&b->cv_ready, NULL) == 0) {
        if (pthread_cond_init(&b->cv_space, NULL) == 0)
          b->sync_ready = 1;
        else
          pthread_cond_destroy(&b->cv_ready);
      }
      if (!b->sync_ready) pthread_mutex_destroy(&b->mu);
    }
    /* Without the primitives the batcher simply runs synchronously. */
  }
  if (st == MH_OK) st = mh_batcher_start_epoch(b, 0, 0);
  if (st < 0) {
    mh_batcher_free(b);
    return st;
  }
  *out = b;
  return MH_OK;
}

int mh_batcher_batches_per_epoch(const mh_batcher *b) { return b ? b->n_batches : 0; }

int mh_batcher_start_epoch(mh_batcher *b, int epoch, int first_batch) {
  if (!b) return mh__error(MH_ERR_INVALID_ARG, "mh_batcher_start_epoch: NULL batcher");
  if (epoch < 0) return mh__error(MH_ERR_INVALID_ARG, "batcher: epoch %d must be >= 0", epoch);
  if (first_batch < 0 || first_batch > b->n_batches)
    return mh__error(MH_ERR_INVALID_ARG, "batcher: first batch %d out of range (0..%d)", first_batch,
                     b->n_batches);
  stop_thread(b);
  b->epoch = epoch;
  if (b->perm_epoch != epoch) build_perm(b, epoch);
  b->first_batch = first_batch;
  b->taken = 0;
  b->produced = 0;
  b->released = 0;
  b->thread_pending = b->sync_ready;
  return MH_OK;
}

int mh_batcher_next(mh_batcher *b, const float **x, const int32_t **y, int *n) {
  if (!b || !x || !y || !n) return mh__error(MH_ERR_INVALID_ARG, "mh_batcher_next: NULL argument");
  *x = NULL;
  *y = NULL;
  *n = 0;
  if (b->first_batch + b->taken >= b->n_batches) return 0;
  if (b->thread_pending) start_thread(b);
  const mh_batch_slot *slot;
  if (b->thread_running) {
    pthread_mutex_lock(&b->mu);
    b->released = b->taken; /* the batch handed out last time is no longer in use */
    pthread_cond_signal(&b->cv_space);
    while (b->produced <= b->taken) pthread_cond_wait(&b->cv_ready, &b->mu);
    pthread_mutex_unlock(&b->mu);
    slot = &b->slots[b->taken % MH_BATCHER_SLOTS];
  } else {
    fill_batch(b, b->first_batch + b->taken, &b->slots[0]);
    slot = &b->slots[0];
  }
  b->taken++;
  *x = slot->x;
  *y = slot->y;
  *n = slot->n;
  return 1;
}
