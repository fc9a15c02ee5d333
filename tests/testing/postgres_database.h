// A PostgreSQL database of one test's own on the test server that ctest's fixture "postgres"
// starts (scripts/postgres-test-server.sh, tests/CMakeLists.txt), whose admin URL arrives in
// TROUPE_TEST_POSTGRES_URL. Made empty at construction, dropped on destruction. Test-thread only;
// only in builds with libpq (TROUPE_HAVE_POSTGRES).
#pragma once

#ifdef TROUPE_HAVE_POSTGRES

#include <libpq-fe.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/temp_files.h"

namespace troupe::testing {

// The admin URL of the test server; "" (and a test failure saying how to get one) without it.
inline std::string PostgresAdminUrl() {
  const char* url = std::getenv("TROUPE_TEST_POSTGRES_URL");
  if (url == nullptr || *url == 0) {
    ADD_FAILURE() << "TROUPE_TEST_POSTGRES_URL is not set: run this test through ctest (its fixture "
                     "\"postgres\" starts a server), or start one with scripts/postgres-test-server.sh start DIR "
                     "and export the URL it prints";
    return "";
  }
  return url;
}

// Runs one statement on the admin database; failures fail the test.
inline bool PostgresAdminExec(const std::string& admin_url, const std::string& sql) {
  PGconn* conn = PQconnectdb(admin_url.c_str());
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (!ok) {
    ADD_FAILURE() << "cannot connect to the test PostgreSQL server " << admin_url << ": " << PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    ok = PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
    if (!ok) ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  return ok;
}

// The first column of the first row of `sql` on `url`, as text ("" and a test failure when the
// statement fails or returns no row).
inline std::string PostgresQueryValue(const std::string& url, const std::string& sql) {
  std::string value;
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    ADD_FAILURE() << "cannot connect to " << url << ": " << PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) == 0) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result);
    } else {
      value = PQgetvalue(result, 0, 0);
    }
    PQclear(result);
  }
  PQfinish(conn);
  return value;
}

class PostgresDatabase {
 public:
  PostgresDatabase() : admin_url_(PostgresAdminUrl()), name_(DatabaseName()) {
    if (admin_url_.empty()) return;
    PostgresAdminExec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    created_ = PostgresAdminExec(admin_url_, "CREATE DATABASE " + name_);
  }
  ~PostgresDatabase() {
    if (created_) PostgresAdminExec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  bool ok() const { return created_; }
  const std::string& name() const { return name_; }
  // The admin URL with this database in place of "postgres".
  std::string url() const {
    std::string url = admin_url_;
    const size_t at = url.find("/postgres");
    if (at != std::string::npos) url.replace(at, 9, "/" + name_);
    return url;
  }
  const std::string& admin_url() const { return admin_url_; }

 private:
  // "t_<suite>_<case>_<pid>" in lower case letters, digits and '_' (a name that needs no quoting,
  // of at most 63 bytes).
  static std::string DatabaseName() {
    std::string name = "t_" + UniqueTestName();
    for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '_';
    if (name.size() > 63) name = name.substr(0, 52) + "_" + std::to_string(std::hash<std::string>{}(name) % 10000000000ull);
    return name;
  }

  std::string admin_url_;
  std::string name_;
  bool created_ = false;
};

}  // namespace troupe::testing

#endif  // TROUPE_HAVE_POSTGRES
