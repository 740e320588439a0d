/* CIFAR-10 binary parsing: records of 1 label byte + 3x32x32 pixel bytes (already CHW).
 * Deliberately not CIFAR-100 (two label bytes) nor the Python pickle format. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/dataset.h"

#define MH_CIFAR_C 3
#define MH_CIFAR_SIDE 32
#define MH_CIFAR_PIXELS (MH_CIFAR_C * MH_CIFAR_SIDE * MH_CIFAR_SIDE)
#define MH_CIFAR_RECORD (1 + MH_CIFAR_PIXELS)
#define MH_CIFAR_CLASSES 10
#define MH_CIFAR_MAX_SAMPLES ((size_t)1 << 24)

int mh_cifar_parse(const uint8_t *buf, size_t len, const char *name, mh_dataset *out) {
  const char *nm = name ? name : "<buffer>";
  if (!out) return mh__error(MH_ERR_INVALID_ARG, "%s: mh_cifar_parse: NULL output", nm);
  memset(out, 0, sizeof *out);
  if (!buf && len) return mh__error(MH_ERR_INVALID_ARG, "%s: NULL buffer", nm);
  if (len == 0) return mh__error(MH_ERR_FORMAT, "%s: empty, no CIFAR-10 records", nm);
  if (len % MH_CIFAR_RECORD != 0)
    return mh__error(MH_ERR_FORMAT,
                     "%s: length %zu is not a multiple of the %d-byte CIFAR-10 record (%zu records + %zu bytes)",
                     nm, len, MH_CIFAR_RECORD, len / MH_CIFAR_RECORD, len % MH_CIFAR_RECORD);
  size_t n = len / MH_CIFAR_RECORD;
  if (n > MH_CIFAR_MAX_SAMPLES)
    return mh__error(MH_ERR_FORMAT, "%s: %zu records is more than the %zu supported", nm, n, MH_CIFAR_MAX_SAMPLES);
  for (size_t i = 0; i < n; i++) {
    uint8_t label = buf[i * MH_CIFAR_RECORD];
    if (label >= MH_CIFAR_CLASSES)
      return mh__error(MH_ERR_FORMAT, "%s: record %zu has label %u, out of range (0..%d)", nm, i,
                       (unsigned)label, MH_CIFAR_CLASSES - 1);
  }
  /* n <= 2^24 makes n * 3072 < 2^36, which a 32-bit size_t cannot hold: check. */
  if (n > SIZE_MAX / MH_CIFAR_PIXELS)
    return mh__error(MH_ERR_NOMEM, "%s: %zu records do not fit in memory", nm, n);
  uint8_t *px = malloc(n * MH_CIFAR_PIXELS);
  uint8_t *lb = malloc(n);
  if (!px || !lb) {
    free(px);
    free(lb);
    return mh__error(MH_ERR_NOMEM, "%s: cannot allocate %zu CIFAR-10 records", nm, n);
  }
  for (size_t i = 0; i < n; i++) {
    const uint8_t *rec = buf + i * MH_CIFAR_RECORD;
    lb[i] = rec[0];
    memcpy(px + i * MH_CIFAR_PIXELS, rec + 1, MH_CIFAR_PIXELS);
  }
  out->n = (int)n;
  out->c = MH_CIFAR_C;
  out->h = MH_CIFAR_SIDE;
  out->w = MH_CIFAR_SIDE;
  out->n_classes = MH_CIFAR_CLASSES;
  out->pixels = px;
  out->labels = lb;
  return MH_OK;
}
