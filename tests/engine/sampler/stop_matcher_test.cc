// StopMatcher: hold-back across deltas, cut before the stop string, UTF-8 safety, and a
// randomized comparison against a whole-text reference under arbitrary splits.
#include "engine/sampler/stop_matcher.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace troupe {
namespace {

// Feeds `deltas` in order; returns everything emitted (including Flush when not stopped).
struct Streamed {
  std::vector<std::string> chunks;
  std::string text;
  bool stopped = false;
  int stop_index = -1;
};

Streamed Feed(std::vector<std::string> stops, const std::vector<std::string>& deltas) {
  StopMatcher m(std::move(stops));
  Streamed run;
  for (const std::string& d : deltas) {
    StopMatcher::Result r = m.Push(d);
    run.chunks.push_back(r.text);
    run.text += r.text;
    if (r.stopped) {
      run.stopped = true;
      run.stop_index = r.stop_index;
    }
  }
  if (!run.stopped) run.text += m.Flush();
  return run;
}

// True when `s` is well-formed UTF-8 (structure only: lead byte + right number of continuations).
bool IsWholeUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

TEST(StopMatcherTest, PassesTextThroughWithoutStops) {
  const Streamed run = Feed({}, {"Hello", ", ", "world"});
  EXPECT_EQ(run.chunks, (std::vector<std::string>{"Hello", ", ", "world"}));
  EXPECT_FALSE(run.stopped);
}

TEST(StopMatcherTest, CutsBeforeStopInOneDelta) {
  const Streamed run = Feed({"<|end|>"}, {"Hello<|end|>world"});
  EXPECT_EQ(run.text, "Hello");
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.stop_index, 0);
}

TEST(StopMatcherTest, MatchesAcrossDeltasAndHoldsPossiblePrefix) {
  const Streamed run = Feed({"\nUser:"}, {"Sure.", "\n", "Us", "er", ": hi"});
  EXPECT_EQ(run.chunks, (std::vector<std::string>{"Sure.", "", "", "", ""}));
  EXPECT_EQ(run.text, "Sure.");
  EXPECT_TRUE(run.stopped);
}

TEST(StopMatcherTest, ReleasesHeldTextWhenPrefixBreaks) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.Push("a<").text, "a");
  EXPECT_EQ(m.held_bytes(), 1u);
  EXPECT_EQ(m.Push("/").text, "");
  EXPECT_EQ(m.Push("b>").text, "</b>");
  EXPECT_EQ(m.held_bytes(), 0u);
  EXPECT_EQ(m.Push("<").text, "");
  EXPECT_EQ(m.Flush(), "<");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, StaysStoppedAfterMatch) {
  StopMatcher m({"x", "STOP"});
  const StopMatcher::Result r = m.Push("abSTOPcd");
  EXPECT_EQ(r.text, "ab");
  EXPECT_EQ(r.stop_index, 1);
  const StopMatcher::Result after = m.Push("more");
  EXPECT_TRUE(after.stopped);
  EXPECT_EQ(after.stop_index, 1);
  EXPECT_EQ(after.text, "");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcherTest, FirstToCompleteWinsThenLongest) {
  // "c" completes (at byte 3) before "bcd" (byte 4), however the text is split.
  EXPECT_EQ(Feed({"bcd", "c"}, {"abcd"}).text, "ab");
  EXPECT_EQ(Feed({"bcd", "c"}, {"ab", "cd"}).text, "ab");
  // Both end at the same byte: the longer one (earlier start) wins.
  const Streamed run = Feed({"c", "bc"}, {"abcd"});
  EXPECT_EQ(run.text, "a");
  EXPECT_EQ(run.stop_index, 1);
}

TEST(StopMatcherTest, NeverSplitsUtf8Characters) {
  // "é" = C3 A9 arrives split across deltas.
  const Streamed run = Feed({}, {"caf\xC3", "\xA9!"});
  EXPECT_EQ(run.chunks, (std::vector<std::string>{"caf", "\xC3\xA9!"}));
  // 4-byte emoji fed one byte at a time.
  const std::string emoji = "\xF0\x9F\x98\x80";
  const Streamed bytes = Feed({}, {emoji.substr(0, 1), emoji.substr(1, 1), emoji.substr(2, 1),
                              emoji.substr(3, 1)});
  EXPECT_EQ(bytes.chunks, (std::vector<std::string>{"", "", "", emoji}));
}

TEST(StopMatcherTest, MultiByteStopSharingALeadByte) {
  // "日本" (E6 97 A5, E6 9C AC) against stop "日曜" (E6 97 A5, E6 9B 9C): the shared bytes are
  // held, then released whole when the third byte of the second character differs.
  const Streamed no_match = Feed({"日曜"}, {"日", "本"});
  EXPECT_EQ(no_match.chunks, (std::vector<std::string>{"", "日本"}));
  EXPECT_FALSE(no_match.stopped);
  const Streamed match = Feed({"日曜"}, {"今日", "曜日"});
  EXPECT_EQ(match.text, "今");
  EXPECT_TRUE(match.stopped);
}

// Reference: the stop string that completes first (then longest, then first listed), applied
// to the whole text at once.
std::string Reference(const std::string& text, const std::vector<std::string>& stops,
                      bool* stopped) {
  for (size_t end = 1; end <= text.size(); ++end) {
    size_t best_len = 0;
    for (const std::string& s : stops) {
      if (s.size() <= end && s.size() > best_len && text.compare(end - s.size(), s.size(), s) == 0) {
        best_len = s.size();
      }
    }
    if (best_len > 0) {
      *stopped = true;
      return text.substr(0, end - best_len);
    }
  }
  *stopped = false;
  return text;
}

TEST(StopMatcherTest, RandomSplitsMatchWholeTextReference) {
  // A small alphabet with a 2-byte character makes overlaps and partial prefixes common.
  const std::vector<std::string> alphabet = {"a", "b", "c", "\xC3\xA9"};
  std::mt19937_64 rng(2026);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<std::string> stops;
    const int num_stops = 1 + static_cast<int>(rng() % 3);
    for (int s = 0; s < num_stops; ++s) {
      std::string stop;
      const int len = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < len; ++k) stop += alphabet[rng() % alphabet.size()];
      stops.push_back(stop);
    }
    std::string text;
    const int len = static_cast<int>(rng() % 30);
    for (int k = 0; k < len; ++k) text += alphabet[rng() % alphabet.size()];
    // Random byte-level split points, including inside "é".
    std::vector<std::string> deltas;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min(text.size() - pos, size_t{1} + rng() % 5);
      deltas.push_back(text.substr(pos, n));
      pos += n;
    }
    bool want_stopped = false;
    const std::string want = Reference(text, stops, &want_stopped);
    const Streamed run = Feed(stops, deltas);
    ASSERT_EQ(run.text, want) << "trial " << trial << " text '" << text << "'";
    ASSERT_EQ(run.stopped, want_stopped) << "trial " << trial;
    for (const std::string& chunk : run.chunks) {
      ASSERT_TRUE(IsWholeUtf8(chunk)) << "trial " << trial << " chunk '" << chunk << "'";
    }
  }
}

TEST(StopMatcherTest, HoldBackIsBounded) {
  StopMatcher m({"abcdef"});
  for (int i = 0; i < 100; ++i) {
    m.Push("abcde");                 // always a 5-byte prefix of the stop at the end
    EXPECT_LE(m.held_bytes(), 5u);   // longest stop - 1
    m.Push("x");
  }
  EXPECT_FALSE(m.stopped());
}

}  // namespace
}  // namespace troupe
