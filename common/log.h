// Minimal leveled logging to stderr (Debian's Abseil has no absl/log). Safe from any thread:
// each message is formatted first and written with one fprintf call.
#pragma once

#include <cstdio>

namespace troupe {
enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Set once at start-up, before threads start.
LogLevel& MinLogLevel();

void LogMessage(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
}  // namespace troupe

#define TROUPE_LOG_DEBUG(...) ::troupe::LogMessage(::troupe::LogLevel::kDebug, __FILE__, __LINE__, __VA_ARGS__)
#define TROUPE_LOG_INFO(...) ::troupe::LogMessage(::troupe::LogLevel::kInfo, __FILE__, __LINE__, __VA_ARGS__)
#define TROUPE_LOG_WARNING(...) ::troupe::LogMessage(::troupe::LogLevel::kWarning, __FILE__, __LINE__, __VA_ARGS__)
#define TROUPE_LOG_ERROR(...) ::troupe::LogMessage(::troupe::LogLevel::kError, __FILE__, __LINE__, __VA_ARGS__)
