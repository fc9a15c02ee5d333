// The troupe-server binary as operators run it: --api-keys read at startup (a malformed file
// stops it naming file and line), the startup log saying whether keys are required, and a
// real SIGHUP reloading the keys file while a stream runs. stories260K, 127.0.0.1:0; the test
// learns the port and waits for each reload from the server's stderr, line by line.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/auth/sha256.h"
#include "tests/testing/model_paths.h"
#include "tests/testing/temp_files.h"
#include "troupe/v1/roleplay.grpc.pb.h"

extern char** environ;

namespace troupe {
namespace {

std::string KeyLine(const std::string& tenant, const std::string& key) {
  return absl::StrCat(tenant, " sha256:", DigestToHex(Sha256(key)), "\n");
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// troupe-server as a child process with its stderr on a pipe. Killed (SIGKILL) on destruction
// unless it already exited.
class ServerProcess {
 public:
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stderr_ != nullptr) std::fclose(stderr_);
  }

  bool Spawn(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {TROUPE_SERVER_BINARY,
                                     "--model", testing::StoriesPath(),
                                     "--listen", "127.0.0.1:0",
                                     "--metrics-port", "-1", "--http-listen", "",
                                     "--data-dir", "",
                                     "--embedding-model", "",
                                     "--threads", "1",
                                     "--kv-cache-mb", "16"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    stderr_ = ::fdopen(fds[0], "r");
    if (spawned != 0) pid_ = 0;
    return spawned == 0 && stderr_ != nullptr;
  }

  // Reads stderr lines until one contains `text`; returns it ("" at end of output). Every line
  // read is kept in log().
  std::string ReadUntil(const std::string& text) {
    char* line = nullptr;
    size_t capacity = 0;
    std::string found;
    while (::getline(&line, &capacity, stderr_) > 0) {
      log_ += line;
      if (std::string(line).find(text) != std::string::npos) {
        found = line;
        break;
      }
    }
    std::free(line);
    return found;
  }

  // The gRPC port from "troupe-server: serving ... on 127.0.0.1:PORT"; 0 if it never came.
  int ReadPort() {
    const std::string line = ReadUntil("troupe-server: serving ");
    int port = 0;
    const size_t colon = line.rfind(':');
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(line.substr(colon + 1, line.find_last_not_of("\r\n") - colon), &port)) {
      return 0;
    }
    return port;
  }

  void Signal(int signal_number) { ::kill(pid_, signal_number); }

  // Waits for the process; its exit status (-1 if it did not exit normally).
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = 0;
  FILE* stderr_ = nullptr;
  std::string log_;
};

grpc::Status ServerInfo(v1::RolePlay::Stub& stub, const std::string& key) {
  grpc::ClientContext context;
  context.AddMetadata("x-api-key", key);
  v1::ServerInfo info;
  return stub.GetServerInfo(&context, v1::GetServerInfoRequest(), &info);
}

TEST(ServerProcessTest, MalformedKeysFileStopsStartupNamingFileAndLine) {
  testing::ScopedTempDir dir("process");
  const std::string keys = dir.File("keys");
  WriteText(keys, "# ok so far\n" + KeyLine("acme", "k") + "beta sha256:" + std::string(64, 'a') +
                      " max_streams=lots\n");
  ServerProcess server;
  ASSERT_TRUE(server.Spawn({"--api-keys", keys}));
  server.ReadUntil("\n-never-");  // all of stderr
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_NE(server.log().find(absl::StrCat("--api-keys: ", keys, ":3: max_streams")), std::string::npos)
      << server.log();
  EXPECT_EQ(server.log().find("serving"), std::string::npos) << "it must stop before serving";
}

TEST(ServerProcessTest, WithoutApiKeysTheLogSaysSingleTenant) {
  ServerProcess server;
  ASSERT_TRUE(server.Spawn({}));
  ASSERT_GT(server.ReadPort(), 0) << server.log();
  EXPECT_NE(server.ReadUntil("troupe-server: gRPC ").find("plaintext"), std::string::npos) << server.log();
  EXPECT_NE(server.log().find("no --api-keys: single tenant"), std::string::npos) << server.log();
  server.Signal(SIGTERM);
  server.ReadUntil("\n-never-");
  EXPECT_EQ(server.Wait(), 0) << server.log();
}

TEST(ServerProcessTest, SighupReloadsTheKeysFileWhileAStreamRuns) {
  testing::ScopedTempDir dir("process");
  const std::string keys = dir.File("keys");
  WriteText(keys, KeyLine("acme", "old-key"));
  ServerProcess server;
  ASSERT_TRUE(server.Spawn({"--api-keys", keys}));
  const int port = server.ReadPort();
  ASSERT_GT(port, 0) << server.log();
  EXPECT_NE(server.ReadUntil("API keys required").find("1 key(s)"), std::string::npos) << server.log();
  auto stub = v1::RolePlay::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(ServerInfo(*stub, "old-key").ok());
  EXPECT_EQ(ServerInfo(*stub, "new-key").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A stream admitted with the old key, running while the file changes.
  v1::GenerateRequest request;
  request.set_prompt("Once upon a time");
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_tokens(100);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext stream_context;
  stream_context.AddMetadata("authorization", "Bearer old-key");
  auto reader = stub->Generate(&stream_context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));

  WriteText(keys, KeyLine("acme", "new-key") + KeyLine("beta", "beta-key"));
  server.Signal(SIGHUP);
  EXPECT_NE(server.ReadUntil("SIGHUP:").find("reloaded 2 API key(s)"), std::string::npos) << server.log();
  EXPECT_TRUE(ServerInfo(*stub, "new-key").ok());
  EXPECT_TRUE(ServerInfo(*stub, "beta-key").ok());
  EXPECT_EQ(ServerInfo(*stub, "old-key").error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A broken file is refused and the keys in force stay.
  WriteText(keys, "beta plain-key\n");
  server.Signal(SIGHUP);
  EXPECT_NE(server.ReadUntil("SIGHUP:").find("kept the previous API keys: " + keys + ":1:"),
            std::string::npos)
      << server.log();
  EXPECT_TRUE(ServerInfo(*stub, "new-key").ok());

  while (reader->Read(&response)) {
  }
  const grpc::Status stream_status = reader->Finish();
  EXPECT_TRUE(stream_status.ok()) << stream_status.error_message();

  server.Signal(SIGTERM);
  server.ReadUntil("\n-never-");
  EXPECT_EQ(server.Wait(), 0) << server.log();
}

}  // namespace
}  // namespace troupe
