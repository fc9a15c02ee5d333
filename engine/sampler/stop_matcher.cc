// StopMatcher: stop-string search over streamed text with a bounded hold-back. Engine thread only.
#include "engine/sampler/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace troupe {
namespace {

// Length in bytes of the UTF-8 sequence a lead byte starts; 1 for ASCII and for bytes that
// cannot start a sequence (those are passed through rather than held forever).
size_t Utf8SequenceLength(unsigned char lead) {
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Largest j <= end such that text[0, j) does not end inside an incomplete UTF-8 sequence.
size_t Utf8SafeEnd(std::string_view text, size_t end) {
  for (size_t k = 1; k <= std::min<size_t>(3, end); ++k) {
    const auto c = static_cast<unsigned char>(text[end - k]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    return Utf8SequenceLength(c) > k ? end - k : end;
  }
  return end;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
}

size_t StopMatcher::PartialMatchStart() const {
  const size_t n = held_.size();
  if (max_stop_bytes_ == 0) return n;
  // Only a suffix shorter than the longest stop string can be a proper prefix of one.
  for (size_t i = n - std::min(n, max_stop_bytes_ - 1); i < n; ++i) {
    const std::string_view suffix = std::string_view(held_).substr(i);
    for (const std::string& stop : stops_) {
      if (stop.size() > suffix.size() && std::string_view(stop).starts_with(suffix)) return i;
    }
  }
  return n;
}

StopMatcher::Result StopMatcher::Push(std::string_view delta) {
  Result result;
  if (stopped()) {
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  held_.append(delta);

  // The stop string that completes first wins (as if fed byte by byte, so the result does not
  // depend on how the text was split); at the same end byte the longer one, then the first
  // listed. No match completed in earlier calls, so every match here ends in `delta`.
  size_t best_pos = std::string::npos;
  size_t best_end = std::string::npos;
  for (size_t k = 0; k < stops_.size(); ++k) {
    if (stops_[k].empty()) continue;
    const size_t pos = held_.find(stops_[k]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[k].size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_pos = pos;
      best_end = end;
      stop_index_ = static_cast<int>(k);
    }
  }
  if (best_pos != std::string::npos) {
    result.text = held_.substr(0, best_pos);
    result.stopped = true;
    result.stop_index = stop_index_;
    held_.clear();
    return result;
  }

  const size_t emit = Utf8SafeEnd(held_, PartialMatchStart());
  result.text = held_.substr(0, emit);
  held_.erase(0, emit);
  return result;
}

std::string StopMatcher::Flush() { return std::exchange(held_, std::string()); }

}  // namespace troupe
