// The unit of emotional-RAG memory: one remembered exchange ("user line\ncharacter reply", the
// Emotional RAG QA pair) with its semantic embedding, emotion vector and time stamps.
// A plain value type; safe to share read-only between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/memory/emotion.h"
#include "engine/store/memory_scope.h"

namespace troupe {

using MemoryId = int64_t;

inline constexpr float kImportanceMin = 1.0f;
inline constexpr float kImportanceMax = 10.0f;

struct MemoryUnit {
  MemoryId id = 0;  // unique within its index
  MemoryScope scope = MemoryScope::kSession;
  std::string text;                         // "user line\ncharacter reply"
  std::vector<float> embedding;             // [dim], unit L2 norm (the index checks both)
  EmotionVector emotion = kNeutralEmotion;  // from the character's perspective, 1..10 each
  float importance = kImportanceMin;        // 1..10
  int64_t wall_time_ms = 0;                 // when it was written, Unix epoch milliseconds
  // Position on the story's timeline (chapter, episode or any ordinal the character's lore
  // uses; larger = later). nullopt = timeless: it passes every point-in-time filter.
  std::optional<int64_t> story_time;
  int32_t turn_index = 0;  // the session turn that produced it (0 for canon)
};

}  // namespace troupe
