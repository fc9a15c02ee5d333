// A prompt as a chat template renders it: template text, whose special-token texts (e.g.
// "<|im_start|>") are the template's own markers, and client text, which is always plain.
// Tokenizer::EncodePrompt encodes it (docs/tokenizer.md, "Role-safe prompts"). A value type:
// safe to share read-only between threads, not to mutate concurrently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe {

class PromptText {
 public:
  struct Segment {
    std::string text;
    // true: written by troupe's template code; special-token texts in it become their ids.
    // false: from a client (message, card, memory...); encoded as plain text, always.
    bool is_template = false;

    bool operator==(const Segment&) const = default;
  };

  PromptText() = default;
  // A prompt of one client segment (base-model transcripts are all client text).
  static PromptText Client(std::string_view text);

  // Appends; an empty text adds nothing, and text of the kind the last segment has joins it.
  PromptText& AddTemplate(std::string_view text) { return Add(text, true); }
  PromptText& AddClient(std::string_view text) { return Add(text, false); }
  PromptText& Add(std::string_view text, bool is_template);
  PromptText& Append(const PromptText& other);

  const std::vector<Segment>& segments() const { return segments_; }
  // The concatenated text (what the template renders), e.g. to show or to search.
  std::string Flat() const;
  size_t size() const;  // bytes of Flat()
  bool empty() const { return segments_.empty(); }

  // The prompt from byte `offset` of Flat() on, segment kinds kept. REQUIRES: offset <= size().
  PromptText Suffix(size_t offset) const;
  // Jinja's trim (Python's str.strip()) over the whole text: leading and trailing whitespace
  // removed, whichever segments it is in.
  PromptText Trimmed() const;

  bool operator==(const PromptText&) const = default;

 private:
  std::vector<Segment> segments_;  // none empty; neighbours differ in is_template
};

}  // namespace troupe
