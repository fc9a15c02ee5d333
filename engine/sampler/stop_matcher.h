// StopMatcher: finds stop strings in streamed text and decides what is safe to emit now.
// One per request; used by the engine thread after detokenizing each step's tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe {

// Fed text deltas in order, it returns the text that can be emitted now and whether a stop
// string matched. Text that could be the beginning of a stop string is held back until the next
// delta decides it; so is an incomplete UTF-8 sequence at the end, so emitted text never ends
// inside a character. The stop string that completes first in the text wins (at the same end
// byte the longer one, then the one listed first); the output ends right before it and
// everything after it is dropped. Matching is on bytes, and the emitted text and the match do
// not depend on where the deltas split the text. With no stop strings only the UTF-8 hold-back
// applies.
//
// Memory: holds at most (longest stop string - 1) bytes, plus up to 3 bytes of a split character.
// Not thread-safe; engine thread only.
class StopMatcher {
 public:
  struct Result {
    std::string text;     // safe to emit now (possibly empty)
    bool stopped = false;  // a stop string matched; `text` ends right before it
    int stop_index = -1;   // index into the stop list of the match; -1 when !stopped
  };

  // Empty strings in `stops` are ignored (ValidateSamplingParams rejects them).
  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds the next piece of output text. After a match every call returns an empty Result with
  // stopped = true and the same stop_index.
  Result Push(std::string_view delta);

  // Ends the stream: returns the held-back text (empty after a match) and clears it.
  std::string Flush();

  bool stopped() const { return stop_index_ >= 0; }
  // Bytes currently held back.
  size_t held_bytes() const { return held_.size(); }

 private:
  // Smallest i such that held_[i..] is a proper prefix of some stop string; held_.size() if none.
  size_t PartialMatchStart() const;

  std::vector<std::string> stops_;  // constant after construction; empty ones never match
  size_t max_stop_bytes_ = 0;
  std::string held_;      // text not yet emitted
  int stop_index_ = -1;   // >= 0 once a stop string matched
};

}  // namespace troupe
