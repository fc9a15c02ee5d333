// Test helper: loads the labelled emotional-RAG retrieval set (tests/testdata/memory, made by
// scripts/memory/make_retrieval_set.py) into MemoryUnits and labelled queries.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "engine/memory/emotion.h"
#include "engine/memory/memory_unit.h"
#include "engine/memory/retrieval_eval.h"
#include "engine/memory/retrieval_options.h"
#include "nlohmann/json.hpp"

namespace troupe::testing {

struct LabelledQuery {
  MemoryId id = 0;
  std::string topic;
  std::string text;
  std::vector<float> embedding;  // [dim], unit norm
  EmotionVector emotion = kNeutralEmotion;
  int64_t point_in_time = 0;
  int64_t now_ms = 0;
  RetrievalLabels labels;

  RetrievalQuery AsQuery() const {
    return {.embedding = embedding,
            .emotion = emotion,
            .point_in_time = point_in_time,
            .now_ms = now_ms};
  }
};

struct LabelledCharacter {
  std::string name;
  std::vector<MemoryUnit> memories;
  std::vector<LabelledQuery> queries;
};

struct RetrievalSet {
  int dim = 0;
  std::vector<LabelledCharacter> characters;
};

inline std::string RetrievalSetPath() {
  return std::string(TROUPE_SOURCE_DIR) + "/tests/testdata/memory/retrieval_set.json";
}

namespace internal {

inline EmotionVector EmotionOf(const nlohmann::json& j) {
  EmotionVector v;
  for (int i = 0; i < kNumEmotions; ++i) v[i] = j.at(i).get<float>();
  return v;
}

inline std::vector<float> Row(const std::vector<float>& matrix, int dim, int64_t row) {
  return std::vector<float>(matrix.begin() + row * dim, matrix.begin() + (row + 1) * dim);
}

// Throws nlohmann::json::exception on a missing or mistyped field.
inline absl::StatusOr<RetrievalSet> ParseRetrievalSet(const nlohmann::json& j,
                                                      const std::string& dir) {
  RetrievalSet set;
  set.dim = j.at("embedding_dim").get<int>();
  const int64_t rows = j.at("embedding_rows").get<int64_t>();
  std::ifstream bin(dir + j.at("embeddings_file").get<std::string>(), std::ios::binary);
  std::vector<float> matrix(static_cast<size_t>(rows) * set.dim);  // little-endian f32
  bin.read(reinterpret_cast<char*>(matrix.data()),
           static_cast<std::streamsize>(matrix.size() * sizeof(float)));
  if (!bin) return absl::InvalidArgumentError("retrieval set: short embedding file");

  for (const nlohmann::json& jc : j.at("characters")) {
    LabelledCharacter c;
    c.name = jc.at("name").get<std::string>();
    for (const nlohmann::json& jm : jc.at("memories")) {
      MemoryUnit m;
      m.id = jm.at("id").get<MemoryId>();
      m.scope = MemoryScope::kUserCharacter;
      m.text = jm.at("text").get<std::string>();
      m.embedding = internal::Row(matrix, set.dim, jm.at("embedding_row").get<int64_t>());
      m.emotion = internal::EmotionOf(jm.at("emotion"));
      m.importance = jm.at("importance").get<float>();
      m.wall_time_ms = jm.at("wall_time_ms").get<int64_t>();
      if (!jm.at("story_time").is_null()) m.story_time = jm.at("story_time").get<int64_t>();
      m.turn_index = jm.at("turn_index").get<int32_t>();
      c.memories.push_back(std::move(m));
    }
    for (const nlohmann::json& jq : jc.at("queries")) {
      LabelledQuery q;
      q.id = jq.at("id").get<MemoryId>();
      q.topic = jq.at("topic").get<std::string>();
      q.text = jq.at("text").get<std::string>();
      q.embedding = internal::Row(matrix, set.dim, jq.at("embedding_row").get<int64_t>());
      q.emotion = internal::EmotionOf(jq.at("emotion"));
      q.point_in_time = jq.at("point_in_time").get<int64_t>();
      q.now_ms = jq.at("now_ms").get<int64_t>();
      q.labels.semantic = jq.at("gold_semantic").get<std::vector<MemoryId>>();
      q.labels.emotional = jq.at("gold_emotional").get<std::vector<MemoryId>>();
      c.queries.push_back(std::move(q));
    }
    set.characters.push_back(std::move(c));
  }
  return set;
}

}  // namespace internal

// Reads the JSON at `json_path` and the embedding file beside it.
inline absl::StatusOr<RetrievalSet> LoadRetrievalSet(const std::string& json_path) {
  std::ifstream in(json_path);
  if (!in) return absl::NotFoundError(absl::StrFormat("cannot open %s", json_path));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("retrieval set: bad JSON");
  try {
    return internal::ParseRetrievalSet(j, json_path.substr(0, json_path.find_last_of('/') + 1));
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrFormat("retrieval set: %s", e.what()));
  }
}

}  // namespace troupe::testing
