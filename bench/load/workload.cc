#include "bench/load/workload.h"

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "nlohmann/json.hpp"

namespace troupe::load {
namespace {

// Common English words; most are one token in BPE vocabularies, so word counts approximate
// token counts.
constexpr const char* kWords[] = {
    "the", "ship", "sea", "night", "storm", "captain", "harbour", "light", "wind", "old",
    "friend", "road", "forest", "king", "queen", "song", "river", "stone", "fire", "gold",
    "silver", "wolf", "bird", "winter", "summer", "rain", "cold", "warm", "house", "door",
    "window", "letter", "book", "sword", "shield", "horse", "bridge", "tower", "garden", "market",
    "bread", "wine", "coin", "map", "star", "moon", "sun", "cloud", "mountain", "valley",
    "village", "city", "castle", "dragon", "secret", "promise", "journey", "morning", "evening", "story",
    "and", "but", "with", "from", "under", "over", "near", "far", "after", "before",
    "quiet", "loud", "bright", "dark", "quick", "slow", "brave", "tired", "happy", "sad",
    "walk", "run", "sing", "speak", "listen", "watch", "wait", "find", "lose", "keep",
    "give", "take", "open", "close", "remember", "forget", "hope", "fear", "trust", "laugh"};
constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string RandomWords(std::mt19937_64& rng, int n) {
  std::uniform_int_distribution<int> pick(0, kNumWords - 1);
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ' ';
    out += kWords[pick(rng)];
  }
  return out;
}

absl::Status LineError(int line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

}  // namespace

std::vector<Conversation> MakeSyntheticConversations(const SyntheticOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::vector<std::string> characters;
  for (int c = 0; c < options.num_characters; ++c) {
    characters.push_back(absl::StrCat("You are character ", c, ". Stay in character. ",
                                      RandomWords(rng, options.character_words)));
  }
  std::vector<Conversation> out;
  for (int i = 0; i < options.num_conversations; ++i) {
    Conversation conv;
    conv.id = absl::StrCat("c", i);
    conv.character = characters.empty() ? "" : characters[i % characters.size()];
    for (int t = 0; t < options.num_turns; ++t) {
      conv.turns.push_back(Turn{RandomWords(rng, options.user_words), options.max_tokens});
    }
    out.push_back(std::move(conv));
  }
  return out;
}

absl::StatusOr<std::vector<Conversation>> ParseConversationsJsonl(const std::string& text) {
  std::vector<Conversation> out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!JsonWithinDepth(line)) return LineError(number, "JSON nested too deep");
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return LineError(number, "not a JSON object");
    Conversation conv;
    conv.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>()
                                                       : absl::StrCat("line", number);
    if (j.contains("character")) {
      if (!j["character"].is_string()) return LineError(number, "\"character\" must be a string");
      conv.character = j["character"].get<std::string>();
    }
    if (!j.contains("turns") || !j["turns"].is_array() || j["turns"].empty()) {
      return LineError(number, "\"turns\" must be a non-empty array");
    }
    for (const auto& t : j["turns"]) {
      if (!t.is_object() || !t.contains("user") || !t["user"].is_string() ||
          t["user"].get<std::string>().empty()) {
        return LineError(number, "every turn needs a non-empty string \"user\"");
      }
      Turn turn{t["user"].get<std::string>(), 0};
      if (t.contains("max_tokens")) {
        if (!t["max_tokens"].is_number_integer() || t["max_tokens"].get<int>() <= 0) {
          return LineError(number, "\"max_tokens\" must be a positive integer");
        }
        turn.max_tokens = t["max_tokens"].get<int>();
      }
      conv.turns.push_back(std::move(turn));
    }
    out.push_back(std::move(conv));
  }
  if (out.empty()) return absl::InvalidArgumentError("no conversations in the input");
  return out;
}

absl::StatusOr<std::vector<Conversation>> ReadConversationsJsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<Conversation>> parsed = ParseConversationsJsonl(text.str());
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::Status WriteConversationsJsonl(const std::string& path,
                                     const std::vector<Conversation>& conversations) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  for (const Conversation& conv : conversations) {
    nlohmann::json j{{"id", conv.id}, {"character", conv.character}, {"turns", nlohmann::json::array()}};
    for (const Turn& t : conv.turns) {
      nlohmann::json turn{{"user", t.user}};
      if (t.max_tokens > 0) turn["max_tokens"] = t.max_tokens;
      j["turns"].push_back(std::move(turn));
    }
    out << j.dump() << '\n';
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

}  // namespace troupe::load
