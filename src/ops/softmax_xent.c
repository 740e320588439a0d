/* Softmax cross-entropy with mean reduction over the batch (PyTorch's F.cross_entropy), computed
 * with the max-subtracted log-sum-exp in double. The loss is the trainer's; this is only the math. */
#include <math.h>

#include "ops/ops.h"

double mh_softmax_xent_f32(const float *logits, const int32_t *labels, int n, int classes, float *dlogits) {
  double total = 0;
  for (int i = 0; i < n; i++) {
    const float *z = logits + (size_t)i * classes;
    float m = z[0];
    for (int k = 1; k < classes; k++) m = z[k] > m ? z[k] : m;
    double s = 0;
    for (int k = 0; k < classes; k++) s += exp((double)z[k] - m);
    double lse = m + log(s);
    total += lse - z[labels[i]];
    if (dlogits)
      for (int k = 0; k < classes; k++)
        dlogits[(size_t)i * classes + k] = (float)((exp((double)z[k] - lse) - (k == labels[i])) / n);
  }
  return total / n;
}
