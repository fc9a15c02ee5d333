// troupe-cli: a small client for the troupe.v1.RolePlay API.
//   troupe-cli generate --addr A --prompt P [--max-tokens N --temperature T ...]
//   troupe-cli chat --addr A [--session ID | --character NAME --system PROMPT] [--message M]
//   troupe-cli chat --addr A --character-id ID [--user-name NAME] [--message M]
//   troupe-cli character import FILE | list | export ID [--spec v2|v3] [--png] [--out F] | delete ID
//   troupe-cli session list [--character-id ID] | show ID | delete ID
//   troupe-cli info --addr A
//   troupe-cli hash-key --tenant T [--max-priority N --rpm N --tpm N --max-streams N] [KEY]
// Text streams to stdout as it arrives; usage and errors go to stderr. The API key of a server
// started with --api-keys comes from $TROUPE_API_KEY or --api-key-file (never a flag value,
// which `ps` would show); --tls-ca (and --tls-cert/--tls-key for mutual TLS) connect over TLS.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <iostream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/flag_parser.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/auth/key_file.h"
#include "server/auth/sha256.h"
#include "server/proto_convert.h"
#include "server/status_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "troupe/v1/roleplay.grpc.pb.h"

namespace {

namespace v1 = troupe::v1;

constexpr char kUsage[] =
    "usage: troupe-cli <generate|chat|character|session|info|health|hash-key> [flags]\n"
    "  generate  stream a completion of --prompt (raw, no chat template)\n"
    "  chat      chat with a character: one --message, or an interactive session reading lines\n"
    "            from stdin; a new inline session (--character NAME --system PROMPT), a new\n"
    "            durable session with a stored character (--character-id ID, kept for resuming),\n"
    "            or an existing session (--session ID)\n"
    "  character import FILE   store a character card (JSON, or a PNG carrying one); prints its id\n"
    "  character list          the stored characters: id, name, format\n"
    "  character export ID     the card as JSON (--spec v2|v3, default v3) or --png; to --out FILE\n"
    "                          or stdout\n"
    "  character delete ID     delete a stored character\n"
    "  session list            durable sessions (--character-id ID: only that character's)\n"
    "  session show ID         a session's history\n"
    "  session delete ID       delete a session\n"
    "  info      print the server's model information\n"
    "  health    exit 0 when the server's grpc.health.v1 --service (readiness) is SERVING, else 1\n"
    "  hash-key  print the --api-keys line of a key: troupe-cli hash-key --tenant T [limits] < KEYFILE\n"
    "            (the key is read from stdin, or from the one argument after hash-key)\n\nflags:\n";

struct CliFlags {
  std::string addr = "127.0.0.1:50051";
  std::string service = "readiness";  // health
  int timeout_s = 0;
  std::string prompt;
  std::string message;
  std::string session;
  std::string character = "Assistant";
  std::string character_id;  // chat, session list
  std::string user_name;     // chat --character-id
  std::string spec = "v3";   // character export
  bool png = false;          // character export
  std::string out;           // character export
  std::string system;
  bool keep_session = false;
  bool help = false;
  // Sampling: unset = server default.
  std::optional<int> max_tokens, top_k, penalty_last_n, logprobs;
  std::optional<float> temperature, top_p, min_p, repetition_penalty, presence_penalty,
      frequency_penalty, dry_multiplier, dry_base, xtc_probability, xtc_threshold;
  std::optional<int> dry_allowed_length, dry_penalty_last_n;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  // Auth and TLS (client side).
  std::string api_key_file;
  std::string api_key;  // from $TROUPE_API_KEY or api_key_file
  std::string tls_ca, tls_cert, tls_key;
  // hash-key
  std::string tenant;
  std::optional<int> max_priority, rpm, tpm, max_streams;
};

void AddFlags(troupe::FlagParser& parser, CliFlags& f) {
  parser.AddString("addr", &f.addr, "server host:port");
  parser.AddString("service", &f.service, "health: the grpc.health.v1 service (readiness, liveness, \"\")");
  parser.AddInt("timeout-s", &f.timeout_s, "deadline per RPC in seconds (0 = none)");
  parser.AddString("prompt", &f.prompt, "generate: prompt text");
  parser.AddString("message", &f.message, "chat: one message (otherwise read stdin lines)");
  parser.AddString("session", &f.session, "chat: existing session id");
  parser.AddString("character", &f.character, "chat: character name of a new session");
  parser.AddString("system", &f.system, "chat: system prompt of a new session");
  parser.AddBool("keep-session", &f.keep_session, "chat: do not delete the session at exit");
  parser.AddString("character-id", &f.character_id,
                   "chat: a stored character (new durable session); session list: only its sessions");
  parser.AddString("user-name", &f.user_name, "chat --character-id: the user's name ({{user}})");
  parser.AddString("spec", &f.spec, "character export: card spec, v2 or v3");
  parser.AddBool("png", &f.png, "character export: a PNG carrying the card instead of JSON");
  parser.AddString("out", &f.out, "character export: write the card here instead of stdout");
  parser.AddOptionalInt("max-tokens", &f.max_tokens, "completion tokens");
  parser.AddOptionalFloat("temperature", &f.temperature, "0 = greedy");
  parser.AddOptionalInt("top-k", &f.top_k, "0 = off");
  parser.AddOptionalFloat("top-p", &f.top_p, "1 = off");
  parser.AddOptionalFloat("min-p", &f.min_p, "0 = off");
  parser.AddOptionalFloat("repetition-penalty", &f.repetition_penalty, "1 = off");
  parser.AddOptionalFloat("presence-penalty", &f.presence_penalty, "0 = off");
  parser.AddOptionalFloat("frequency-penalty", &f.frequency_penalty, "0 = off");
  parser.AddOptionalInt("penalty-last-n", &f.penalty_last_n, "penalty window (-1 = all)");
  parser.AddOptionalFloat("dry-multiplier", &f.dry_multiplier, "DRY strength (0 = off)");
  parser.AddOptionalFloat("dry-base", &f.dry_base, "DRY growth per repeated token");
  parser.AddOptionalInt("dry-allowed-length", &f.dry_allowed_length, "DRY: repeats this long are free");
  parser.AddOptionalInt("dry-penalty-last-n", &f.dry_penalty_last_n, "DRY window (-1 = all)");
  parser.AddOptionalFloat("xtc-probability", &f.xtc_probability, "XTC: chance per token (0 = off)");
  parser.AddOptionalFloat("xtc-threshold", &f.xtc_threshold, "XTC: probability of a top choice");
  parser.AddOptionalUint64("seed", &f.seed, "sampling seed");
  parser.AddStrings("stop", &f.stop, "stop string (repeatable)");
  parser.AddBool("ignore-eos", &f.ignore_eos, "keep generating past EOS");
  parser.AddOptionalInt("logprobs", &f.logprobs, "print logprobs with N alternatives");
  parser.AddString("api-key-file", &f.api_key_file,
                   "file holding the API key to send (default: $TROUPE_API_KEY)");
  parser.AddString("tls-ca", &f.tls_ca, "PEM CA bundle: connect over TLS, trusting these CAs");
  parser.AddString("tls-cert", &f.tls_cert, "PEM client certificate (mutual TLS; with --tls-ca)");
  parser.AddString("tls-key", &f.tls_key, "PEM private key of --tls-cert");
  parser.AddString("tenant", &f.tenant, "hash-key: the key's tenant");
  parser.AddOptionalInt("max-priority", &f.max_priority, "hash-key: highest priority the key may use");
  parser.AddOptionalInt("rpm", &f.rpm, "hash-key: requests per minute");
  parser.AddOptionalInt("tpm", &f.tpm, "hash-key: prompt + completion tokens per minute");
  parser.AddOptionalInt("max-streams", &f.max_streams, "hash-key: concurrent Generate/Chat streams");
  parser.AddBool("help", &f.help, "print this help");
}

// Reads a whole file (or stdin for "-"); false when it cannot be read.
bool ReadAll(const std::string& path, std::string* out) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    text << in.rdbuf();
  }
  *out = text.str();
  return true;
}

// hash-key: prints `TENANT sha256:<hex> [limits]` for the key in `key_arg` or on stdin. The
// line is parsed back with the server's own parser, so what it prints is what the server takes.
int HashKey(const CliFlags& f, const std::vector<std::string>& positional) {
  std::string key;
  if (positional.size() == 2) {
    key = positional[1];
  } else if (!ReadAll("-", &key)) {
    std::fprintf(stderr, "troupe-cli hash-key: cannot read the key from stdin\n");
    return 1;
  }
  key = std::string(absl::StripAsciiWhitespace(key));  // a trailing newline is not part of it
  if (key.empty()) {
    std::fprintf(stderr, "troupe-cli hash-key: the key is empty (pipe it on stdin)\n");
    return 2;
  }
  if (absl::Status tenant = troupe::ValidateTenant(f.tenant); !tenant.ok()) {
    std::fprintf(stderr, "troupe-cli hash-key: --tenant: %s\n", std::string(tenant.message()).c_str());
    return 2;
  }
  troupe::KeyEntry entry;
  entry.tenant = f.tenant;
  entry.digest = troupe::Sha256(key);
  entry.limits.max_priority = f.max_priority;
  if (f.rpm) entry.limits.rpm = *f.rpm;
  if (f.tpm) entry.limits.tpm = *f.tpm;
  entry.limits.max_streams = f.max_streams;
  const std::string line = troupe::FormatKeyLine(entry);
  absl::StatusOr<std::vector<troupe::KeyEntry>> parsed = troupe::ParseKeyFile(line, "hash-key");
  if (!parsed.ok()) {
    std::fprintf(stderr, "troupe-cli %s (--tenant, --max-priority, --rpm, --tpm, --max-streams)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", line.c_str());
  return 0;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const CliFlags& f, bool* ok) {
  *ok = true;
  if (f.tls_ca.empty()) {
    if (!f.tls_cert.empty() || !f.tls_key.empty()) {
      std::fprintf(stderr, "troupe-cli: --tls-cert and --tls-key need --tls-ca\n");
      *ok = false;
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  *ok = ReadAll(f.tls_ca, &ssl.pem_root_certs) &&
        (f.tls_cert.empty() || ReadAll(f.tls_cert, &ssl.pem_cert_chain)) &&
        (f.tls_key.empty() || ReadAll(f.tls_key, &ssl.pem_private_key));
  if (!*ok) std::fprintf(stderr, "troupe-cli: cannot read --tls-ca, --tls-cert or --tls-key\n");
  return grpc::SslCredentials(ssl);
}

void FillSampling(const CliFlags& f, v1::SamplingParams* s) {
  if (f.max_tokens) s->set_max_tokens(*f.max_tokens);
  if (f.temperature) s->set_temperature(*f.temperature);
  if (f.top_k) s->set_top_k(*f.top_k);
  if (f.top_p) s->set_top_p(*f.top_p);
  if (f.min_p) s->set_min_p(*f.min_p);
  if (f.repetition_penalty) s->set_repetition_penalty(*f.repetition_penalty);
  if (f.presence_penalty) s->set_presence_penalty(*f.presence_penalty);
  if (f.frequency_penalty) s->set_frequency_penalty(*f.frequency_penalty);
  if (f.penalty_last_n) s->set_penalty_last_n(*f.penalty_last_n);
  if (f.dry_multiplier) s->set_dry_multiplier(*f.dry_multiplier);
  if (f.dry_base) s->set_dry_base(*f.dry_base);
  if (f.dry_allowed_length) s->set_dry_allowed_length(*f.dry_allowed_length);
  if (f.dry_penalty_last_n) s->set_dry_penalty_last_n(*f.dry_penalty_last_n);
  if (f.xtc_probability) s->set_xtc_probability(*f.xtc_probability);
  if (f.xtc_threshold) s->set_xtc_threshold(*f.xtc_threshold);
  if (f.seed) s->set_seed(*f.seed);
  for (const std::string& stop : f.stop) s->add_stop(stop);
  s->set_ignore_eos(f.ignore_eos);
  if (f.logprobs) {
    s->set_logprobs(true);
    s->set_top_logprobs(*f.logprobs);
  }
}

// The deadline and the API key of every RPC, and the session id of a session's RPCs as
// `x-session-id` metadata, on which a gateway routes a session's turns to one replica
// (docs/operations.md).
void PrepareContext(const CliFlags& f, grpc::ClientContext& context, const std::string& session_id = "") {
  if (!f.api_key.empty()) context.AddMetadata("authorization", "Bearer " + f.api_key);
  if (!session_id.empty()) context.AddMetadata("x-session-id", session_id);
  if (f.timeout_s > 0) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(f.timeout_s));
  }
}

const char* FinishName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP: return "stop";
    case v1::FINISH_REASON_EOS: return "eos";
    case v1::FINISH_REASON_LENGTH: return "length";
    case v1::FINISH_REASON_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

bool ReportError(const grpc::Status& status) {
  if (status.ok()) return false;
  std::fprintf(stderr, "\nerror: %s: %s\n", absl::StatusCodeToString(troupe::FromGrpcStatus(status).code()).c_str(),
               status.error_message().c_str());
  return true;
}

// Streams one Generate or Chat response stream to stdout. Returns the RPC status.
template <typename Response>
grpc::Status StreamToStdout(grpc::ClientReaderInterface<Response>& reader, bool show_logprobs) {
  Response response;
  bool line_open = false;  // stdout holds text not yet ended by a newline
  while (reader.Read(&response)) {
    std::fwrite(response.text().data(), 1, response.text().size(), stdout);
    if (!response.text().empty()) line_open = response.text().back() != '\n';
    std::fflush(stdout);
    if (show_logprobs) {
      for (const v1::TokenLogprobs& lp : response.logprobs()) {
        std::fprintf(stderr, "[%d %.3f", lp.token_id(), lp.logprob());
        for (const v1::TokenLogprob& top : lp.top()) {
          std::fprintf(stderr, " %d:%.3f", top.token_id(), top.logprob());
        }
        std::fprintf(stderr, "]\n");
      }
    }
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      if (line_open) std::fputc('\n', stdout);
      line_open = false;
      std::fflush(stdout);
      const v1::Usage& u = response.usage();
      std::fprintf(stderr,
                   "[%s] prompt=%d (cached %d) completion=%d ttft=%.3fs e2e=%.3fs\n",
                   FinishName(response.finish_reason()), u.prompt_tokens(),
                   u.cached_prompt_tokens(), u.completion_tokens(),
                   response.timings().time_to_first_token_seconds(),
                   response.timings().e2e_seconds());
    }
  }
  return reader.Finish();
}

int Generate(v1::RolePlay::Stub& stub, const CliFlags& f) {
  if (f.prompt.empty()) {
    std::fprintf(stderr, "troupe-cli generate: --prompt is required\n");
    return 2;
  }
  v1::GenerateRequest request;
  request.set_prompt(f.prompt);
  FillSampling(f, request.mutable_sampling());
  grpc::ClientContext context;
  PrepareContext(f, context);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.Generate(&context, request);
  return ReportError(StreamToStdout(*reader, f.logprobs.has_value())) ? 1 : 0;
}

bool ChatTurn(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& session_id,
              const std::string& speaker, const std::string& message) {
  v1::ChatRequest request;
  request.set_session_id(session_id);
  request.set_message(message);
  FillSampling(f, request.mutable_sampling());
  grpc::ClientContext context;
  PrepareContext(f, context, session_id);
  std::fprintf(stdout, "%s: ", speaker.c_str());
  std::fflush(stdout);
  std::unique_ptr<grpc::ClientReader<v1::ChatResponse>> reader = stub.Chat(&context, request);
  return !ReportError(StreamToStdout(*reader, f.logprobs.has_value()));
}

int DeleteSession(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& id) {
  v1::DeleteSessionRequest request;
  request.set_session_id(id);
  v1::DeleteSessionResponse response;
  grpc::ClientContext context;
  PrepareContext(f, context, id);
  return ReportError(stub.DeleteSession(&context, request, &response)) ? 1 : 0;
}

int Chat(v1::RolePlay::Stub& stub, const CliFlags& f) {
  std::string session_id = f.session;
  std::string speaker = f.character;
  const bool created = session_id.empty();
  // A durable session with a stored character is kept, to be resumed with --session.
  const bool keep = f.keep_session || (created && !f.character_id.empty());
  if (created) {
    v1::CreateSessionRequest request;
    if (!f.character_id.empty()) {
      request.set_character_id(f.character_id);
      if (!f.user_name.empty()) request.mutable_setup()->set_user_name(f.user_name);
    } else {
      request.mutable_character()->set_name(f.character);
      request.mutable_character()->set_system_prompt(f.system);
    }
    v1::Session session;
    grpc::ClientContext context;
    PrepareContext(f, context);
    if (ReportError(stub.CreateSession(&context, request, &session))) return 1;
    session_id = session.session_id();
    speaker = session.character().name();
    std::fprintf(stderr, "session %s%s\n", session_id.c_str(),
                 keep ? " (kept: resume with --session)" : "");
    // A stored character's greeting opens the session.
    for (const v1::ChatMessage& m : session.history()) {
      if (m.role() == v1::ROLE_ASSISTANT) std::printf("%s: %s\n", speaker.c_str(), m.content().c_str());
    }
  } else {
    v1::GetSessionRequest request;
    request.set_session_id(session_id);
    v1::Session session;
    grpc::ClientContext context;
    PrepareContext(f, context, session_id);
    if (ReportError(stub.GetSession(&context, request, &session))) return 1;
    speaker = session.character().name();
  }

  bool ok = true;
  if (!f.message.empty()) {
    ok = ChatTurn(stub, f, session_id, speaker, f.message);
  } else {
    std::string line;
    while (std::fprintf(stderr, "> "), std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (!ChatTurn(stub, f, session_id, speaker, line)) ok = false;
    }
    std::fputc('\n', stderr);  // end the last "> " prompt
  }
  if (created && !keep) DeleteSession(stub, f, session_id);
  return ok ? 0 : 1;
}

// A two-word command ("character export ID"): `list` takes no argument, every other verb one.
// Runs the verb, or prints `usage` and returns 2.
int TwoWordCommand(const std::vector<std::string>& positional,
                   const std::map<std::string, std::function<int(const std::string&)>>& verbs,
                   const char* usage) {
  const std::string verb = positional.size() > 1 ? positional[1] : "";
  const bool has_argument = positional.size() == 3;
  auto it = verbs.find(verb);
  if (it != verbs.end() && has_argument == (verb != "list")) {
    return it->second(has_argument ? positional[2] : "");
  }
  std::fprintf(stderr, "troupe-cli: %s\n", usage);
  return 2;
}

bool IsPng(const std::string& bytes) { return bytes.rfind("\x89PNG\r\n\x1a\n", 0) == 0; }

int ImportCharacter(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& path) {
  std::string bytes;
  if (path.empty() || !ReadAll(path, &bytes)) {
    std::fprintf(stderr, "troupe-cli character import: cannot read card file '%s'\n", path.c_str());
    return 2;
  }
  v1::CreateCharacterRequest request;
  if (IsPng(bytes)) {
    request.set_card_png(bytes);
  } else {
    request.set_card_json(bytes);
  }
  v1::StoredCharacter character;
  grpc::ClientContext context;
  PrepareContext(f, context);
  if (ReportError(stub.CreateCharacter(&context, request, &character))) return 1;
  std::printf("%s\t%s\t%s\n", character.character_id().c_str(), character.profile().name().c_str(),
              character.import_format().c_str());
  return 0;
}

int ListCharacters(v1::RolePlay::Stub& stub, const CliFlags& f) {
  v1::ListCharactersRequest request;
  do {
    v1::ListCharactersResponse page;
    grpc::ClientContext context;
    PrepareContext(f, context);
    if (ReportError(stub.ListCharacters(&context, request, &page))) return 1;
    for (const v1::StoredCharacter& c : page.characters()) {
      std::printf("%s\t%s\t%s\n", c.character_id().c_str(), c.profile().name().c_str(),
                  c.import_format().empty() ? "profile" : c.import_format().c_str());
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return 0;
}

int ExportCharacter(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& id) {
  if (f.spec != "v2" && f.spec != "v3") {
    std::fprintf(stderr, "troupe-cli character export: --spec must be v2 or v3, not '%s'\n", f.spec.c_str());
    return 2;
  }
  v1::ExportCharacterRequest request;
  request.set_character_id(id);
  request.set_spec(f.spec == "v2" ? v1::CARD_SPEC_V2 : v1::CARD_SPEC_V3);
  request.set_png(f.png);
  v1::ExportCharacterResponse response;
  grpc::ClientContext context;
  PrepareContext(f, context);
  if (ReportError(stub.ExportCharacter(&context, request, &response))) return 1;
  if (f.out.empty()) {
    std::fwrite(response.card().data(), 1, response.card().size(), stdout);
    if (!f.png) std::fputc('\n', stdout);
    return 0;
  }
  std::ofstream out(f.out, std::ios::binary | std::ios::trunc);
  out.write(response.card().data(), static_cast<std::streamsize>(response.card().size()));
  if (!out.flush()) {
    std::fprintf(stderr, "troupe-cli character export: cannot write '%s'\n", f.out.c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (%zu bytes, %s)\n", f.out.c_str(), response.card().size(),
               response.content_type().c_str());
  return 0;
}

int DeleteCharacter(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& id) {
  v1::DeleteCharacterRequest request;
  request.set_character_id(id);
  v1::DeleteCharacterResponse response;
  grpc::ClientContext context;
  PrepareContext(f, context);
  return ReportError(stub.DeleteCharacter(&context, request, &response)) ? 1 : 0;
}

int CharacterCommand(v1::RolePlay::Stub& stub, const CliFlags& f, const std::vector<std::string>& positional) {
  return TwoWordCommand(positional,
                        {{"import", [&](const std::string& path) { return ImportCharacter(stub, f, path); }},
                         {"list", [&](const std::string&) { return ListCharacters(stub, f); }},
                         {"export", [&](const std::string& id) { return ExportCharacter(stub, f, id); }},
                         {"delete", [&](const std::string& id) { return DeleteCharacter(stub, f, id); }}},
                        "character import FILE | list | export ID | delete ID");
}

int ListSessions(v1::RolePlay::Stub& stub, const CliFlags& f) {
  v1::ListSessionsRequest request;
  request.set_character_id(f.character_id);
  do {
    v1::ListSessionsResponse page;
    grpc::ClientContext context;
    PrepareContext(f, context);
    if (ReportError(stub.ListSessions(&context, request, &page))) return 1;
    for (const v1::Session& s : page.sessions()) {
      std::printf("%s\t%s\t%s\n", s.session_id().c_str(), s.character_id().c_str(),
                  s.character().name().c_str());
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return 0;
}

int ShowSession(v1::RolePlay::Stub& stub, const CliFlags& f, const std::string& id) {
  v1::GetSessionRequest request;
  request.set_session_id(id);
  v1::Session session;
  grpc::ClientContext context;
  PrepareContext(f, context, id);
  if (ReportError(stub.GetSession(&context, request, &session))) return 1;
  std::printf("session %s, character %s%s%s\n", session.session_id().c_str(),
              session.character().name().c_str(), session.character_id().empty() ? "" : " ",
              session.character_id().c_str());
  const std::string user = session.setup().user_name().empty() ? "User" : session.setup().user_name();
  for (const v1::ChatMessage& m : session.history()) {
    const std::string speaker = m.role() == v1::ROLE_USER        ? user
                                : m.role() == v1::ROLE_ASSISTANT ? session.character().name()
                                                                 : (troupe::RoleFromProto(m.role()) ? troupe::RoleFromProto(m.role()) : "unspecified");
    std::printf("%s: %s\n", speaker.c_str(), m.content().c_str());
  }
  return 0;
}

int SessionCommand(v1::RolePlay::Stub& stub, const CliFlags& f, const std::vector<std::string>& positional) {
  return TwoWordCommand(positional,
                        {{"list", [&](const std::string&) { return ListSessions(stub, f); }},
                         {"show", [&](const std::string& id) { return ShowSession(stub, f, id); }},
                         {"delete", [&](const std::string& id) { return DeleteSession(stub, f, id); }}},
                        "session list | show ID | delete ID");
}

// grpc.health.v1 Check of f.service; prints the status. The container images' HEALTHCHECK.
int Health(const std::shared_ptr<grpc::Channel>& channel, const CliFlags& f) {
  std::unique_ptr<grpc::health::v1::Health::Stub> health = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(f.service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  PrepareContext(f, context);
  if (f.timeout_s <= 0) context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (ReportError(health->Check(&context, request, &response))) return 1;
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int Info(v1::RolePlay::Stub& stub, const CliFlags& f) {
  v1::ServerInfo info;
  grpc::ClientContext context;
  PrepareContext(f, context);
  if (ReportError(stub.GetServerInfo(&context, v1::GetServerInfoRequest(), &info))) return 1;
  std::printf("model %s (%s, %lld parameters)\ncontext %d tokens, vocab %d, chat template %s\n"
              "server %s\n",
              info.model_name().c_str(), info.architecture().c_str(),
              static_cast<long long>(info.num_parameters()), info.context_length(),
              info.vocab_size(), info.chat_family().c_str(), info.server_version().c_str());
  return 0;
}

int Run(int argc, char** argv) {
  CliFlags f;
  troupe::FlagParser parser;
  AddFlags(parser, f);
  std::vector<std::string> positional;
  const absl::Status parsed = parser.Parse(argc, argv, &positional);
  const bool hash_key = !positional.empty() && positional[0] == "hash-key";
  const bool two_words = !positional.empty() && (positional[0] == "character" || positional[0] == "session");
  const size_t max_positional = hash_key ? 2u : two_words ? 3u : 1u;
  if (!parsed.ok() || f.help || positional.empty() || positional.size() > max_positional) {
    if (!parsed.ok()) std::fprintf(stderr, "troupe-cli: %s\n", std::string(parsed.message()).c_str());
    std::fprintf(f.help ? stdout : stderr, "%s%s", kUsage, parser.Help().c_str());
    return f.help ? 0 : 2;
  }
  if (hash_key) return HashKey(f, positional);
  if (!f.api_key_file.empty()) {
    if (!ReadAll(f.api_key_file, &f.api_key)) {
      std::fprintf(stderr, "troupe-cli: cannot read --api-key-file %s\n", f.api_key_file.c_str());
      return 2;
    }
  } else if (const char* env = std::getenv("TROUPE_API_KEY")) {
    f.api_key = env;
  }
  f.api_key = std::string(absl::StripAsciiWhitespace(f.api_key));
  bool credentials_ok = false;
  std::shared_ptr<grpc::ChannelCredentials> credentials = ChannelCredentialsFor(f, &credentials_ok);
  if (!credentials_ok) return 2;
  auto channel = grpc::CreateChannel(f.addr, credentials);
  std::unique_ptr<v1::RolePlay::Stub> stub = v1::RolePlay::NewStub(channel);
  const std::string& command = positional[0];
  if (command == "generate") return Generate(*stub, f);
  if (command == "chat") return Chat(*stub, f);
  if (command == "character") return CharacterCommand(*stub, f, positional);
  if (command == "session") return SessionCommand(*stub, f, positional);
  if (command == "info") return Info(*stub, f);
  if (command == "health") return Health(channel, f);
  std::fprintf(stderr, "troupe-cli: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
