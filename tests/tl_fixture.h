/* Fixture lookups for tests that read a committed safetensors fixture: a tensor the fixture must hold,
 * or the test stops with the missing name (a stale fixture, not a failed check). */
#ifndef MH_TL_FIXTURE_H
#define MH_TL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "train/safetensors.h"

static const mh_st_tensor *tl_need(const mh_st_file *f, const char *name) {
  const mh_st_tensor *t = mh_st_find(f, name);
  if (!t) {
    fprintf(stderr, "fixture lacks %s\n", name);
    exit(1);
  }
  return t;
}

#endif
