/* A minimal test harness: checks that print both operands, a failure count, skips.
 * Each test file is its own process; main() returns tl_exit() so any failure exits 1. */
#ifndef MH_TESTLIB_H
#define MH_TESTLIB_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tl_failures, tl_checks;

#define TL_FAIL(...)                                              \
  do {                                                            \
    tl_failures++;                                                \
    fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);         \
    fprintf(stderr, __VA_ARGS__);                                 \
    fputc('\n', stderr);                                          \
  } while (0)

#define CHECK(cond)                                    \
  do {                                                 \
    tl_checks++;                                       \
    if (!(cond)) TL_FAIL("%s", #cond);                 \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
  do {                                                                              \
    long long tl_a_ = (long long)(a), tl_b_ = (long long)(b);                       \
    tl_checks++;                                                                    \
    if (tl_a_ != tl_b_) TL_FAIL("%s == %s (%lld vs %lld)", #a, #b, tl_a_, tl_b_);    \
  } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                         \
  do {                                                                                       \
    double tl_a_ = (double)(a), tl_b_ = (double)(b);                                         \
    tl_checks++;                                                                             \
    if (!(fabs(tl_a_ - tl_b_) <= (atol) + (rtol)*fabs(tl_b_)))                               \
      TL_FAIL("%s ~ %s (%.9g vs %.9g, atol %g rtol %g)", #a, #b, tl_a_, tl_b_, (double)(atol), \
              (double)(rtol));                                                               \
  } while (0)

/* Status call must return 0; prints the library's last error otherwise. */
#define CHECK_OK(expr)                                                                      \
  do {                                                                                      \
    int tl_st_ = (expr);                                                                    \
    tl_checks++;                                                                            \
    if (tl_st_ != 0) TL_FAIL("%s returned %d: %s", #expr, tl_st_, mh_last_error());         \
  } while (0)

/* Status call must fail (negative). */
#define CHECK_ERR(expr)                                                 \
  do {                                                                  \
    int tl_st_ = (expr);                                                \
    tl_checks++;                                                        \
    if (tl_st_ >= 0) TL_FAIL("%s succeeded but should fail", #expr);    \
  } while (0)

#define TL_SKIP(reason)                                  \
  do {                                                   \
    printf("SKIP: %s\n", reason);                        \
    exit(77);                                            \
  } while (0)

static inline int tl_exit(void) {
  printf("%d checks, %d failed\n", tl_checks, tl_failures);
  return tl_failures ? 1 : 0;
}

#endif
