// Invariant checks: TROUPE_CHECK aborts with file:line on a broken invariant (never on user input).
// TROUPE_DCHECK compiles away in release builds; use it in hot loops. Safe from any thread.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace troupe::internal {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "%s:%d: TROUPE_CHECK failed: %s%s%s\n", file, line, cond, msg ? ": " : "",
               msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace troupe::internal

#define TROUPE_CHECK(cond)                                                      \
  do {                                                                          \
    if (!(cond)) ::troupe::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr); \
  } while (0)

// TROUPE_CHECK_MSG(cond, fmt, ...): printf-style message on failure.
#define TROUPE_CHECK_MSG(cond, ...)                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      char troupe_check_buf_[512];                                       \
      std::snprintf(troupe_check_buf_, sizeof(troupe_check_buf_), __VA_ARGS__); \
      ::troupe::internal::CheckFailed(__FILE__, __LINE__, #cond, troupe_check_buf_); \
    }                                                                    \
  } while (0)

#ifdef NDEBUG
#define TROUPE_DCHECK(cond) \
  do {                      \
  } while (false && (cond))
#else
#define TROUPE_DCHECK(cond) TROUPE_CHECK(cond)
#endif
