/* The epoch loop: load the data directory, normalise with the training set's statistics, feed the
 * prefetching batcher to the trainer, report progress, evaluate after each epoch. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "core/status.h"
#include "data/dataset.h"
#include "train/trainer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t rss_peak(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (size_t)ru.ru_maxrss * 1024 : 0;
}

static int check_shape(const mh_trainer *t, const mh_dataset *ds, const char *dir) {
  const mh_node *in = &t->m->g.nodes[0];
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
  if (ds->c != in->c || ds->h != in->h || ds->w != in->w)
    return mh__error(MH_ERR_SHAPE, "%s: samples are %dx%dx%d but model '%s' takes %dx%dx%d", dir, ds->c, ds->h, ds->w,
                     t->m->g.model_name, in->c, in->h, in->w);
  if (ds->n_classes > classes)
    return mh__error(MH_ERR_SHAPE, "%s: %d classes but model '%s' outputs %d", dir, ds->n_classes, t->m->g.model_name,
                     classes);
  return MH_OK;
}

static void batcher_config(mh_trainer *t, const mh_dataset *train, int for_training, mh_batcher_config *bc) {
  memset(bc, 0, sizeof *bc);
  bc->batch = t->cfg.batch;
  bc->seed = t->cfg.seed;
  bc->shuffle = for_training;
  bc->prefetch = 1;
  if (for_training && t->cfg.augment) {
    bc->crop_pad = train->h >= 32 ? 4 : 2;
    bc->hflip = train->c == 3; /* mirrored clothing/digits are other classes; natural images are not */
  }
  if (!t->norm_known) { /* the training split's statistics: fixed for this trainer from now on */
    mh_dataset_channel_stats(train, t->norm_mean, t->norm_std);
    t->norm_known = 1;
  }
  memcpy(bc->mean, t->norm_mean, sizeof bc->mean);
  memcpy(bc->std, t->norm_std, sizeof bc->std);
}

static int eval_set(mh_trainer *t, const mh_dataset *test, const mh_batcher_config *bc, double *acc, double *loss) {
  mh_batcher *b = NULL;
  MH_TRY(mh_batcher_init(&b, test, bc));
  int st = mh_batcher_start_epoch(b, 0, 0);
  long correct = 0, seen = 0;
  double lsum = 0;
  const float *x;
  const int32_t *y;
  int n;
  while (st == MH_OK) {
    int r = mh_batcher_next(b, &x, &y, &n);
    if (r <= 0) {
      st = r;
      break;
    }
    st = mh_trainer_evaluate_batch(t, x, y, n, &correct, &lsum);
    seen += n;
  }
  mh_batcher_free(b);
  if (st < 0) return st;
  *acc = seen ? (double)correct / seen : 0;
  *loss = seen ? lsum / seen : 0;
  return MH_OK;
}

int mh_evaluate(mh_trainer *t, const char *data_dir, double *accuracy, double *loss) {
  mh_dataset train = {0}, test = {0};
  /* the training split only for its statistics, when the trainer (its checkpoint) lacks them */
  int st = mh_dataset_load_dir(data_dir, t->norm_known ? NULL : &train, &test);
  if (st == MH_OK) st = check_shape(t, &test, data_dir);
  if (st == MH_OK) {
    mh_batcher_config bc;
    batcher_config(t, &train, 0, &bc); /* normalise with the training statistics, as in training */
    st = eval_set(t, &test, &bc, accuracy, loss);
  }
  mh_dataset_free(&train);
  mh_dataset_free(&test);
  return st;
}

int mh_fit(mh_trainer *t, const char *data_dir, mh_progress_fn progress, void *user, mh_fit_summary *sum) {
  memset(sum, 0, sizeof *sum);
  sum->test_accuracy = -1;
  mh_dataset train = {0}, test = {0};
  mh_batcher *b = NULL;
  int st = mh_dataset_load_dir(data_dir, &train, &test);
  if (st == MH_OK) st = check_shape(t, &train, data_dir);
  mh_batcher_config bc, bc_test;
  if (st == MH_OK) {
    batcher_config(t, &train, 1, &bc);
    batcher_config(t, &train, 0, &bc_test);
    st = mh_batcher_init(&b, &train, &bc);
  }
  if (st == MH_OK) st = mh__trainer_prepare(t, t->cfg.batch);
  if (st) goto done;
  t->steps_per_epoch = mh_batcher_batches_per_epoch(b);
  long total = t->steps_per_epoch * t->cfg.epochs;
  if (t->cfg.max_steps > 0 && t->cfg.max_steps < total) total = t->cfg.max_steps;
  mh_exec_reset_rescale_counts(t->ex);
  t->stop = 0;
  double t0 = now_s(), loss_sum = 0;
  long loss_n = 0, samples = 0;
  mh__log(MH_LOG_INFO, "training %s (%lld parameters) on %s: %d train / %d test samples, %d epochs of %ld steps, %s kernels, %d threads",
          t->m->g.model_name, (long long)t->m->g.n_param_floats, data_dir, train.n, test.n, t->cfg.epochs,
          t->steps_per_epoch, t->kt->isa, t->cfg.threads);
  while (t->epoch < t->cfg.epochs && t->step < total) {
    if ((st = mh_batcher_start_epoch(b, t->epoch, (int)t->batch_in_epoch))) goto done;
    loss_sum = 0, loss_n = 0;
    for (;;) {
      if (t->step >= total) break;
      const float *x;
      const int32_t *y;
      int n;
      int r = mh_batcher_next(b, &x, &y, &n);
      if (r < 0) {
        st = r;
        goto done;
      }
      if (r == 0) break;
      double lr = mh__trainer_lr(t);
      float loss;
      if ((st = mh_trainer_step(t, x, y, n, &loss))) goto done;
      t->batch_in_epoch++;
      loss_sum += loss, loss_n++, samples += n;
      if (progress) {
        double el = now_s() - t0;
        mh_progress p = {t->epoch, t->cfg.epochs, t->batch_in_epoch, t->steps_per_epoch, t->step, total,
                         loss_sum / loss_n, lr, el, el > 0 ? samples / el : 0, 0, -1, mh__trainer_mu(t), -1};
        progress(user, &p);
      }
      if (t->stop) break; /* asked to stop: here, at a step boundary */
    }
    int finished_epoch = t->batch_in_epoch >= t->steps_per_epoch;
    sum->train_loss = loss_n ? loss_sum / loss_n : sum->train_loss;
    if (finished_epoch) t->epoch++, t->batch_in_epoch = 0;
    sum->epochs = t->epoch + (finished_epoch ? 0 : 1);
    if (test.n && (finished_epoch || t->step >= total)) {
      if ((st = eval_set(t, &test, &bc_test, &sum->test_accuracy, &sum->test_loss))) goto done;
    }
    if (progress) {
      double el = now_s() - t0;
      mh_progress p = {finished_epoch ? t->epoch - 1 : t->epoch, t->cfg.epochs, finished_epoch ? t->steps_per_epoch : t->batch_in_epoch,
                       t->steps_per_epoch, t->step, total, sum->train_loss, mh__trainer_lr(t), el,
                       el > 0 ? samples / el : 0, 1, test.n ? sum->test_accuracy : -1, mh__trainer_mu(t),
                       test.n ? sum->test_loss : -1};
      progress(user, &p);
    }
    if (t->stop) {
      sum->stopped = 1;
      break;
    }
    if (!finished_epoch) break; /* stopped by max_steps */
  }
  if (samples == 0) { /* nothing left to train (resumed at the end): still report the test accuracy */
    sum->train_loss = NAN;
    sum->epochs = t->epoch;
    if (test.n && (st = eval_set(t, &test, &bc_test, &sum->test_accuracy, &sum->test_loss))) goto done;
  }
  sum->steps = t->step;
  sum->seconds = now_s() - t0;
  sum->peak_bytes = mh_trainer_peak_bytes(t);
  sum->rss_peak_bytes = rss_peak();
  mh__trainer_rescale_report(t, &sum->rescale);
  mh_trainer_dsp_report(t, &sum->dsp);
done:
  mh_batcher_free(b);
  mh_dataset_free(&train);
  mh_dataset_free(&test);
  return st;
}

/* An IDX images file (no labels: all 0) as a data set. */
static int load_images_file(const char *path, mh_dataset *ds) {
  uint8_t *buf = NULL;
  size_t len = 0;
  MH_TRY(mh_read_file_maybe_gz(path, (size_t)1 << 31, &buf, &len));
  int st = mh_idx_parse_images(buf, len, path, ds);
  free(buf);
  if (st == MH_OK && !(ds->labels = calloc((size_t)ds->n, 1))) {
    mh_dataset_free(ds);
    return mh__error(MH_ERR_NOMEM, "%s: out of memory", path);
  }
  ds->n_classes = 1;
  return st;
}

int mh_predict_data(mh_trainer *t, const char *data, float **logits, int32_t **labels, int *n) {
  *logits = NULL, *labels = NULL, *n = 0;
  struct stat sb;
  if (stat(data, &sb) != 0) return mh__error(MH_ERR_IO, "%s: %s", data, strerror(errno));
  int dir = S_ISDIR(sb.st_mode), st;
  mh_dataset train = {0}, set = {0};
  if (dir) st = mh_dataset_load_dir(data, t->norm_known ? NULL : &train, &set);
  else if (!t->norm_known)
    st = mh__error(MH_ERR_INVALID_ARG, "%s: the checkpoint carries no input normalisation (an older one): give a data "
                   "directory, whose training split sets it", data);
  else st = load_images_file(data, &set);
  if (st == MH_OK) st = check_shape(t, &set, data);
  mh_batcher *b = NULL;
  if (st == MH_OK) {
    mh_batcher_config bc;
    batcher_config(t, &train, 0, &bc);
    st = mh_batcher_init(&b, &set, &bc);
  }
  int classes = t->m->g.nodes[t->m->g.n_nodes - 1].c;
  float *z = st == MH_OK ? malloc(sizeof(float) * (size_t)set.n * classes) : NULL;
  int32_t *y = st == MH_OK && dir ? malloc(sizeof(int32_t) * (size_t)set.n) : NULL;
  if (st == MH_OK && (!z || (dir && !y))) st = mh__error(MH_ERR_NOMEM, "%s: out of memory for %d predictions", data, set.n);
  if (st == MH_OK) st = mh_batcher_start_epoch(b, 0, 0);
  int seen = 0;
  while (st == MH_OK) {
    const float *x;
    const int32_t *lab;
    int k;
    int r = mh_batcher_next(b, &x, &lab, &k);
    if (r <= 0) {
      st = r;
      break;
    }
    st = mh_trainer_predict(t, x, k, z + (size_t)seen * classes);
    if (y) memcpy(y + seen, lab, sizeof(int32_t) * (size_t)k);
    seen += k;
  }
  mh_batcher_free(b);
  mh_dataset_free(&train);
  mh_dataset_free(&set);
  if (st < 0) {
    free(z), free(y);
    return st;
  }
  *logits = z, *labels = y, *n = seen;
  return MH_OK;
}
