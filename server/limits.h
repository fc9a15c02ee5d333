// The byte and count caps on everything a client sizes, in one place (docs/api.md, "Limits",
// has them as a table). RolePlayService checks each request against them right after resolving
// the caller, before any work: no tokenizing, no database access, no copy into a job.
// Pure functions and constants, safe from any thread.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "engine/character/character_card.h"
#include "engine/engine.h"
#include "troupe/v1/roleplay.pb.h"

namespace troupe {

// ---- fixed caps (bytes unless named otherwise) ----

inline constexpr size_t kMaxIdBytes = 64;           // session_id, character_id, page_token (ids are 32)
inline constexpr size_t kMaxNameBytes = 256;        // inline character name, user_name, user_id, labels
inline constexpr size_t kMaxCacheSaltBytes = 256;   // cache_salt
inline constexpr size_t kMaxChatMessageBytes = 64 << 10;  // one chat message
inline constexpr int kMaxGenerateMessages = 1024;         // GenerateRequest.messages (their
                                                          // contents together: the prompt cap)
inline constexpr size_t kMaxSetupTextBytes = 64 << 10;    // setup.user_persona, setup.scenario
// An inline character's system prompt: as long as any one text of a card.
inline constexpr size_t kMaxInlineSystemPromptBytes = kMaxCardTextBytes;
// A CharacterProfile, serialized: as large as a card's JSON may be. Each of its strings is held
// to kMaxCardTextBytes, like a card's.
inline constexpr size_t kMaxProfileBytes = kMaxCardBytes;
inline constexpr size_t kMaxCardPngBytes = 16 << 20;  // card_png (the JSON inside: kMaxCardBytes)
// A Generate prompt may be this many bytes per token of the context, and at least
// kMinPromptCapBytes: a prompt that fills the context is far shorter (English runs about 4
// bytes a token), and the cap is checked before the prompt is tokenized.
inline constexpr size_t kMaxPromptBytesPerToken = 16;
inline constexpr size_t kMinPromptCapBytes = 1 << 20;
// What a request's framing adds to its largest field (tags, lengths, the other small fields).
inline constexpr size_t kRequestOverheadBytes = 64 << 10;

// ---- caps that follow the model ----

struct RequestLimits {
  size_t max_prompt_bytes = kMinPromptCapBytes;  // GenerateRequest.prompt, or its messages together
  int max_prompt_token_ids = 0;                  // GenerateRequest.prompt_token_ids (the context)
};

RequestLimits RequestLimitsFor(const ModelInfo& model);

// The largest request the server accepts, plus framing: what gRPC's receive limit is set to
// (ServerBuilder::SetMaxReceiveMessageSize). Larger messages gRPC itself refuses with
// RESOURCE_EXHAUSTED before they are parsed.
int MaxReceiveMessageBytes(const RequestLimits& limits);

// ---- checks ----

// kInvalidArgument "<field>: <size> bytes; the limit is <cap>" (or "<count> ids" / "entries")
// for the first field over its cap; OK otherwise. Only sizes are checked here: the RPC
// families validate contents (UTF-8, enums, ranges) as before.
[[nodiscard]] absl::Status CheckBytes(size_t size, const char* field, size_t cap);

[[nodiscard]] absl::Status CheckLimits(const v1::GenerateRequest& request, const RequestLimits& limits);
[[nodiscard]] absl::Status CheckLimits(const v1::ChatRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::CreateSessionRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::GetSessionRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::ListSessionsRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::DeleteSessionRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::CreateCharacterRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::UpdateCharacterRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::GetCharacterRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::ListCharactersRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::DeleteCharacterRequest& request);
[[nodiscard]] absl::Status CheckLimits(const v1::ExportCharacterRequest& request);

// A character profile: at most kMaxProfileBytes serialized and every string in it (names,
// greetings, tags, lore keys and contents, map values...) at most kMaxCardTextBytes; `field`
// prefixes the path in errors ("profile.lorebook.entries[3].keys[0]").
[[nodiscard]] absl::Status CheckProfileLimits(const v1::CharacterProfile& profile, const char* field);

}  // namespace troupe
