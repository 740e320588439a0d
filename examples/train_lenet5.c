/* A minimal program on the installed Mandheling library: build lenet5, train it a few steps on
 * Fashion-MNIST, evaluate it, and predict the first test images' classes.
 *   cc train_lenet5.c $(pkg-config --cflags --libs mandheling) -o train_lenet5
 *   ./train_lenet5 [DATA_DIR] [STEPS] */
#include <stdio.h>
#include <stdlib.h>

#include <mandheling.h>

int main(int argc, char **argv) {
  const char *data = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  long steps = argc > 2 ? atol(argv[2]) : 100;
  printf("Mandheling %d.%d.%d (library %d)\n", MH_VERSION_MAJOR, MH_VERSION_MINOR, MH_VERSION_PATCH, mh_version());
  mh_model *m = NULL;
  mh_trainer *t = NULL;
  mh_train_config cfg;
  mh_train_config_default(&cfg);
  cfg.epochs = 1, cfg.max_steps = steps, cfg.batch = 64;
  mh_fit_summary sum;
  double acc = 0, loss = 0;
  float *logits = NULL;
  int32_t *labels = NULL;
  int n = 0, st = mh_model_create(&m, "lenet5", 1);
  if (!st) st = mh_trainer_create(&t, m, &cfg);
  if (!st) st = mh_fit(t, data, NULL, NULL, &sum);
  if (!st) st = mh_evaluate(t, data, &acc, &loss);
  if (!st) st = mh_predict_data(t, data, &logits, &labels, &n);
  if (st) {
    fprintf(stderr, "train_lenet5: %s\n", mh_last_error());
  } else {
    printf("%ld steps, test accuracy %.2f%%, loss %.4f\n", sum.steps, 100 * acc, loss);
    int classes = mh_model_classes(m);
    for (int i = 0; i < 5 && i < n; i++) {
      int best = 0;
      for (int k = 1; k < classes; k++)
        if (logits[(size_t)i * classes + k] > logits[(size_t)i * classes + best]) best = k;
      printf("test image %d: predicted class %d, label %d\n", i, best, labels[i]);
    }
  }
  free(logits), free(labels);
  mh_trainer_free(t);
  mh_model_free(m);
  return st ? 1 : 0;
}
