// Invariant checks. HERALD_ASSERT is for debug builds only; HERALD_CHECK always fires. Neither is
// ever used for bad input: input errors are results, not crashes.
#pragma once

#include <cstdio>
#include <cstdlib>

#define HERALD_CHECK(cond)                                                                    \
  do {                                                                                        \
    if (__builtin_expect(!(cond), 0)) {                                                       \
      std::fprintf(stderr, "herald: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

#ifdef NDEBUG
#define HERALD_ASSERT(cond) \
  do {                      \
  } while (0)
#else
#define HERALD_ASSERT(cond) HERALD_CHECK(cond)
#endif

#define HERALD_LIKELY(x) __builtin_expect(!!(x), 1)
#define HERALD_UNLIKELY(x) __builtin_expect(!!(x), 0)
