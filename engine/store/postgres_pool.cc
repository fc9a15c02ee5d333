#include "engine/store/postgres_pool.h"

#include <libpq-fe.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "engine/store/postgres_status.h"

namespace troupe {
namespace {

static_assert(std::endian::native == std::endian::little, "vectors are stored as little-endian float32");

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

PgParam PgParam::Real(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);  // float32 round-trips in 9 digits
  return {buffer, false, false};
}

PgParam PgParam::Floats(const float* data, size_t n) {
  return {std::string(reinterpret_cast<const char*>(data), n * sizeof(float)), true, false};
}

PgRows& PgRows::operator=(PgRows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

PgRows::~PgRows() { PQclear(result_); }

int PgRows::size() const { return PQntuples(result_); }

int64_t PgRows::affected() const {
  const char* n = PQcmdTuples(result_);
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

bool PgRows::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string PgRows::Text(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col), PQgetlength(result_, row, col));
}

int64_t PgRows::Int(int row, int col) const { return std::strtoll(PQgetvalue(result_, row, col), nullptr, 10); }

bool PgRows::Bool(int row, int col) const { return PQgetvalue(result_, row, col)[0] == 't'; }

double PgRows::Double(int row, int col) const { return std::strtod(PQgetvalue(result_, row, col), nullptr); }

std::vector<float> PgRows::Floats(int row, int col) const {
  // bytea in text format is "\x" and two hex digits per byte (bytea_output = hex, the default).
  const char* text = PQgetvalue(result_, row, col);
  const int length = PQgetlength(result_, row, col);
  if (length < 2 || text[0] != '\\' || text[1] != 'x' || (length - 2) % (2 * sizeof(float)) != 0) return {};
  std::vector<float> out((length - 2) / (2 * sizeof(float)));
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  for (int i = 2, b = 0; i < length; i += 2, ++b) {
    const int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return {};
    bytes[b] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::array<float, 8> PgRows::Emotion(int row, int col) const {
  std::array<float, 8> e{};
  const std::vector<float> v = Floats(row, col);
  for (size_t i = 0; i < e.size() && i < v.size(); ++i) e[i] = v[i];
  return e;
}

PgConnection::PgConnection(std::string url, const PostgresPoolOptions& options)
    : url_(std::move(url)), options_(options) {}

PgConnection::~PgConnection() { PQfinish(conn_); }

void PgConnection::Disconnect() {
  PQfinish(conn_);
  conn_ = nullptr;
}

bool PgConnection::connected() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

absl::Status PgConnection::Connect() {
  if (connected()) return absl::OkStatus();
  PQfinish(conn_);
  // Keywords before "dbname" are defaults the URL (expanded in place of dbname) may override.
  const std::string connect_timeout =
      std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(options_.connect_timeout)));
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {connect_timeout.c_str(), "troupe", url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(conn_) == CONNECTION_OK) {
    // NOTICEs ("relation already exists, skipping") are not errors; libpq would print them.
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    // What PgRows reads (bytea in hex), and the statement timeout, whatever the role's or the
    // database's defaults say; SET rather than the startup "options", which poolers refuse.
    const std::string settings = absl::StrCat("SET bytea_output = 'hex'; SET statement_timeout = ",
                                              absl::ToInt64Milliseconds(options_.statement_timeout));
    if (absl::Status set = RunScript("configure the connection", settings.c_str()); !set.ok()) {
      Disconnect();
      return set;
    }
    return absl::OkStatus();
  }
  std::string message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  // libpq sends no SQLSTATE for a failed connection; a refused login reads "authentication" or
  // "password", a missing database "does not exist": those will not pass by retrying.
  const bool refused = message.find("authentication") != std::string::npos ||
                       message.find("password") != std::string::npos ||
                       message.find("does not exist") != std::string::npos ||
                       message.find("invalid") != std::string::npos;
  sqlstate_.clear();
  transient_ = !refused;
  if (refused) return absl::FailedPreconditionError(absl::StrCat("the database refused troupe: ", message));
  return absl::UnavailableError(absl::StrCat("cannot reach the database; retry: ", message));
}

absl::StatusOr<PgRows> PgConnection::Exec(std::string_view what, const char* sql, const std::vector<PgParam>& params) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size());
  std::vector<int> formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    // Text goes out NUL-terminated, so a NUL byte would cut it short without an error.
    if (!params[i].binary && !params[i].null && params[i].value.find('\0') != std::string::npos) {
      sqlstate_ = "22021";  // character_not_in_repertoire, as the server says of bad UTF-8
      transient_ = false;
      return PostgresStatus(sqlstate_, absl::StrCat("parameter $", i + 1, " holds a NUL byte, which text cannot"),
                            absl::string_view(what.data(), what.size()));
    }
    values[i] = params[i].null ? nullptr : params[i].value.data();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  return Finish(what, PQexecParams(conn_, sql, static_cast<int>(params.size()), /*paramTypes=*/nullptr,
                                   values.data(), lengths.data(), formats.data(), /*resultFormat=*/0));
}

absl::Status PgConnection::RunScript(std::string_view what, const char* sql) {
  return Finish(what, PQexec(conn_, sql)).status();
}

absl::StatusOr<PgRows> PgConnection::Finish(std::string_view what, pg_result* result) {
  PgRows rows(result);  // owns it; `result` stays readable below
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    sqlstate_.clear();
    transient_ = false;
    return rows;
  }
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = state ? state : "";
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  // A broken connection is transient whatever the SQLSTATE says (libpq reports none, or 08xxx).
  const bool broken = PQstatus(conn_) != CONNECTION_OK;
  transient_ = broken || IsTransientPostgresError(sqlstate_);
  if (broken && sqlstate_.empty()) sqlstate_ = "08006";  // connection_failure
  return PostgresStatus(sqlstate_, message, absl::string_view(what.data(), what.size()));
}

absl::Status PgConnection::Run(std::string_view what, const char* sql, const std::vector<PgParam>& params) {
  return Exec(what, sql, params).status();
}

PostgresPool::PostgresPool(std::string url, const PostgresPoolOptions& options)
    : url_(std::move(url)), display_url_(RedactDatabaseUrl(url_)), options_(options) {
  const int n = std::max(1, options_.num_connections);
  for (int i = 0; i < n; ++i) {
    connections_.push_back(std::make_unique<PgConnection>(url_, options_));
    free_.push_back(connections_.back().get());
  }
}

absl::StatusOr<std::unique_ptr<PostgresPool>> PostgresPool::Open(const std::string& url,
                                                                 const PostgresPoolOptions& options) {
  std::unique_ptr<PostgresPool> pool(new PostgresPool(url, options));
  if (absl::Status connected = pool->connections_.front()->Connect(); !connected.ok()) {
    return absl::Status(connected.code(), absl::StrCat(pool->display_url_, ": ", connected.message()));
  }
  return pool;
}

absl::StatusOr<PgConnection*> PostgresPool::Acquire() {
  absl::MutexLock lock(&mu_);
  auto available = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !free_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&available), options_.acquire_timeout)) {
    return absl::UnavailableError(absl::StrCat("all ", connections_.size(), " connections to ", display_url_,
                                               " stayed busy for ", absl::FormatDuration(options_.acquire_timeout)));
  }
  PgConnection* conn = free_.back();
  free_.pop_back();
  return conn;
}

void PostgresPool::Release(PgConnection* conn) {
  absl::MutexLock lock(&mu_);
  free_.push_back(conn);
}

absl::Duration PostgresPool::Backoff(int attempt) {
  absl::Duration wait = options_.first_backoff;
  for (int i = 0; i < attempt && wait < options_.max_backoff; ++i) wait *= 2;
  wait = std::min(wait, options_.max_backoff);
  uint64_t r;
  {
    absl::MutexLock lock(&mu_);
    jitter_state_ ^= jitter_state_ << 13;
    jitter_state_ ^= jitter_state_ >> 7;
    jitter_state_ ^= jitter_state_ << 17;
    r = jitter_state_;
  }
  return wait / 2 + wait * (static_cast<double>(r % 1000) / 2000.0);  // 50% to 100% of the wait
}

absl::Status PostgresPool::Run(std::string_view what, bool transaction,
                               absl::FunctionRef<absl::Status(PgConnection& conn, bool may_have_committed)> work) {
  absl::Status last;
  bool may_have_committed = false;
  const int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (attempt > 0) absl::SleepFor(Backoff(attempt - 1));
    TROUPE_ASSIGN_OR_RETURN(PgConnection * conn, Acquire());
    bool transient = false;
    absl::Status status = conn->Connect();
    if (!status.ok()) {
      transient = conn->last_failure_transient();
    } else {
      bool work_sent = false;  // the unit's own statements reached the server
      bool committing = false;
      if (transaction) status = conn->Run(what, "BEGIN");
      if (status.ok()) {
        work_sent = true;
        status = work(*conn, may_have_committed);
      }
      if (status.ok() && transaction) {
        committing = true;
        status = conn->Run(what, "COMMIT");
        if (status.ok() && options_.lose_commit_reply_for_testing && options_.lose_commit_reply_for_testing(what)) {
          conn->Disconnect();
          status = absl::UnavailableError("the connection was lost before COMMIT's reply (test)");
        }
      }
      transient = !status.ok() && (conn->last_failure_transient() || !conn->connected());
      // A transaction is settled unless its COMMIT went out; a lone statement once it was sent.
      if (transient && (transaction ? committing : work_sent)) may_have_committed = true;
      if (!status.ok() && transaction && conn->connected()) (void)conn->Run(what, "ROLLBACK");
    }
    Release(conn);
    if (status.ok() || !transient) return status;
    last = status;
    TROUPE_LOG_WARNING("database %s: %s failed (try %d of %d), retrying: %s", display_url_.c_str(),
               std::string(what).c_str(), attempt + 1, attempts, std::string(status.message()).c_str());
  }
  return absl::Status(last.code(), absl::StrCat(last.message(), " (gave up after ", attempts, " tries)"));
}

std::string RedactDatabaseUrl(std::string_view url) {
  std::string out(url);
  // postgresql://user:password@host/...: the password runs from the ':' after the user to '@'.
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t at = out.find('@', start);
    const size_t slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    const size_t value = p + 9;
    const size_t end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

}  // namespace troupe
