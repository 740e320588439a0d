/* Internal: gunzip a memory buffer with a cap on the decompressed size (used by the IDX loader
 * and its fuzzer). Not a general compression API: gzip members only, no streaming, no writing. */
#ifndef MH_DATA_GZ_H
#define MH_DATA_GZ_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the buffer starts with the gzip magic 1f 8b. */
static inline int mh__is_gzip(const uint8_t *buf, size_t len) {
  return buf && len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

/* Decompresses one or more concatenated gzip members. Fails (MH_ERR_FORMAT, message naming
 * `name`) on corrupt or truncated input, on trailing non-gzip bytes, and when the output would
 * exceed `max_out` bytes. On success *out (malloc'd, caller frees, never NULL) holds *out_len bytes. */
int mh__gunzip(const uint8_t *in, size_t in_len, size_t max_out, const char *name, uint8_t **out,
               size_t *out_len);

#endif
