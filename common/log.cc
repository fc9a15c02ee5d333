#include "common/log.h"

#include <cstdarg>
#include <cstring>
#include <ctime>

namespace troupe {

LogLevel& MinLogLevel() {
  static LogLevel level = LogLevel::kInfo;
  return level;
}

void LogMessage(LogLevel level, const char* file, int line, const char* fmt, ...) {
  if (level < MinLogLevel()) return;
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  char body[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(body, sizeof(body), fmt, args);
  va_end(args);
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  std::fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%03ld %s:%d] %s\n", kLetters[static_cast<int>(level)],
               utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec / 1000000,
               base, line, body);
}

}  // namespace troupe
