#include "engine/tokenizer/prompt_text.h"

#include <algorithm>

namespace troupe {
namespace {

constexpr std::string_view kSpace = " \t\n\r\f\v";

}  // namespace

PromptText PromptText::Client(std::string_view text) {
  PromptText p;
  p.AddClient(text);
  return p;
}

PromptText& PromptText::Add(std::string_view text, bool is_template) {
  if (text.empty()) return *this;
  if (!segments_.empty() && segments_.back().is_template == is_template) {
    segments_.back().text.append(text);
  } else {
    segments_.push_back(Segment{std::string(text), is_template});
  }
  return *this;
}

PromptText& PromptText::Append(const PromptText& other) {
  for (const Segment& s : other.segments_) Add(s.text, s.is_template);
  return *this;
}

std::string PromptText::Flat() const {
  std::string out;
  out.reserve(size());
  for (const Segment& s : segments_) out.append(s.text);
  return out;
}

size_t PromptText::size() const {
  size_t n = 0;
  for (const Segment& s : segments_) n += s.text.size();
  return n;
}

PromptText PromptText::Suffix(size_t offset) const {
  PromptText out;
  for (const Segment& s : segments_) {
    if (offset >= s.text.size()) {
      offset -= s.text.size();
      continue;
    }
    out.Add(std::string_view(s.text).substr(offset), s.is_template);
    offset = 0;
  }
  return out;
}

PromptText PromptText::Trimmed() const {
  const std::string flat = Flat();
  const size_t begin = flat.find_first_not_of(kSpace);
  if (begin == std::string::npos) return {};
  const size_t end = flat.find_last_not_of(kSpace) + 1;
  PromptText out;
  size_t at = 0;  // offset of the current segment in flat
  for (const Segment& s : segments_) {
    const size_t from = std::max(at, begin), to = std::min(at + s.text.size(), end);
    if (from < to) out.Add(std::string_view(s.text).substr(from - at, to - from), s.is_template);
    at += s.text.size();
  }
  return out;
}

}  // namespace troupe
