// libpq underneath PostgresStore: one connection (PgConnection) that runs parameterised
// statements and reads their rows, and a fixed-size pool of them (PostgresPool) that runs a
// unit of work in a transaction and retries it, with backoff, when it failed for a transient
// reason (postgres_status.h): a dropped connection, a server restarting, a serialization
// failure. A unit of work is told when an earlier try of it may have committed (its COMMIT was
// sent and never answered), so that it can find its own effect instead of doing it twice.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct pg_conn;
struct pg_result;

namespace troupe {

// A statement parameter: text (numbers are sent as their decimal text), bytes (sent in binary
// format, for bytea) or NULL.
struct PgParam {
  static PgParam Text(std::string_view text) { return {std::string(text), false, false}; }
  static PgParam Int(int64_t value) { return {std::to_string(value), false, false}; }
  static PgParam Bool(bool value) { return {value ? "true" : "false", false, false}; }
  static PgParam Real(double value);
  static PgParam Floats(const float* data, size_t n);  // little-endian float32, as SQLite stores
  static PgParam Null() { return {std::string(), false, true}; }

  std::string value;
  bool binary = false;
  bool null = false;
};

// The rows of one statement (text format). Owns the libpq result.
class PgRows {
 public:
  explicit PgRows(pg_result* result) : result_(result) {}
  PgRows(PgRows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  PgRows& operator=(PgRows&& other) noexcept;
  PgRows(const PgRows&) = delete;
  PgRows& operator=(const PgRows&) = delete;
  ~PgRows();

  int size() const;
  // Rows an INSERT, UPDATE or DELETE touched.
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;  // a boolean column ("t" / "f" in text format)
  double Double(int row, int col) const;
  // A bytea column written by PgParam::Floats; empty for a value not a whole number of floats.
  std::vector<float> Floats(int row, int col) const;
  std::array<float, 8> Emotion(int row, int col) const;  // the first 8 floats, zero-padded

 private:
  pg_result* result_;
};

struct PostgresPoolOptions {
  int num_connections = 4;
  // How long a call waits for a free connection before failing with kUnavailable.
  absl::Duration acquire_timeout = absl::Seconds(10);
  // Tries of one unit of work (the first included) when it fails for a transient reason; the
  // waits between them double from first_backoff up to max_backoff, with jitter.
  int max_attempts = 6;
  absl::Duration first_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  // Given to the server as statement_timeout (0 = none), and to libpq as connect_timeout unless
  // the URL sets its own.
  absl::Duration statement_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(5);
  // Tests only: called after each COMMIT that succeeded, with the unit of work's name; true makes
  // the pool drop the connection and treat the COMMIT's answer as lost, so the unit runs again
  // (as when the network fails between COMMIT and its reply). Production leaves it empty.
  std::function<bool(std::string_view what)> lose_commit_reply_for_testing;
};

// One libpq connection. Not thread-safe: a PostgresPool lends it to one unit of work at a time.
class PgConnection {
 public:
  PgConnection(std::string url, const PostgresPoolOptions& options);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Connects, or reconnects a broken connection; OK when already connected.
  [[nodiscard]] absl::Status Connect();
  // Closes the connection; the next Connect opens a new one.
  void Disconnect();
  bool connected() const;

  // Runs one statement ($1, $2, ... take `params` in order). An error carries the SQLSTATE
  // (sqlstate() until the next Exec) and is mapped by PostgresStatus; `what` names the
  // operation in its message.
  [[nodiscard]] absl::StatusOr<PgRows> Exec(std::string_view what, const char* sql,
                                            const std::vector<PgParam>& params = {});
  // Several statements separated by semicolons, without parameters (schema migrations).
  [[nodiscard]] absl::Status RunScript(std::string_view what, const char* sql);
  // Exec for a statement whose rows are not needed.
  [[nodiscard]] absl::Status Run(std::string_view what, const char* sql, const std::vector<PgParam>& params = {});

  // The SQLSTATE of the last failed Exec ("" for a failure with no server answer) and whether
  // it was transient (IsTransientPostgresError, or the connection broke).
  const std::string& sqlstate() const { return sqlstate_; }
  bool last_failure_transient() const { return transient_; }

 private:
  // Takes `result` (may be null), records the failure if it is one.
  absl::StatusOr<PgRows> Finish(std::string_view what, pg_result* result);

  const std::string url_;
  const PostgresPoolOptions options_;
  pg_conn* conn_ = nullptr;
  std::string sqlstate_;
  bool transient_ = false;
};

// A fixed set of connections to one database, opened lazily (the first at Open). Thread-safe.
class PostgresPool {
 public:
  // Connects once to check the URL, the credentials and the server. kFailedPrecondition for a
  // malformed URL or a refused login; kUnavailable for a server that does not answer. Messages
  // name the URL with its password left out.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PostgresPool>> Open(const std::string& url,
                                                                          const PostgresPoolOptions& options);

  // Runs `work` on a pooled connection, in a transaction (BEGIN ... COMMIT, rolled back when
  // `work` fails) when `transaction` is set. A transient failure, the COMMIT's included, runs it
  // again on a working connection after a backoff, up to max_attempts; `may_have_committed`
  // tells `work` that an earlier try failed at or after its COMMIT (without a transaction: after
  // its statements were sent), so its effect may be there already. Other failures return at once.
  [[nodiscard]] absl::Status Run(std::string_view what, bool transaction,
                                 absl::FunctionRef<absl::Status(PgConnection& conn, bool may_have_committed)> work);

  // The URL without its password, for messages.
  const std::string& display_url() const { return display_url_; }

 private:
  PostgresPool(std::string url, const PostgresPoolOptions& options);
  absl::StatusOr<PgConnection*> Acquire() ABSL_LOCKS_EXCLUDED(mu_);
  void Release(PgConnection* conn) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Duration Backoff(int attempt);

  const std::string url_;
  const std::string display_url_;
  const PostgresPoolOptions options_;
  std::vector<std::unique_ptr<PgConnection>> connections_;  // constant after construction

  absl::Mutex mu_;
  std::vector<PgConnection*> free_ ABSL_GUARDED_BY(mu_);
  uint64_t jitter_state_ ABSL_GUARDED_BY(mu_) = 0x9e3779b97f4a7c15ull;
};

// `url` with the password of its user-info part and any password= parameter replaced by "***".
std::string RedactDatabaseUrl(std::string_view url);

}  // namespace troupe
