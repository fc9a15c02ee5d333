// The --api-keys file parser: good files, every kind of malformed line (the error names the
// file and line and never more than the bad token), and hash-key's line format round trip.
#include "server/auth/key_file.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/auth/sha256.h"

namespace troupe {
namespace {

std::string Spec(const std::string& key) { return "sha256:" + DigestToHex(Sha256(key)); }

// The error of a one-bad-line file whose bad line is line 3.
std::string ErrorOf(const std::string& bad_line) {
  const std::string text = absl::StrCat("# keys\n", "acme ", Spec("good"), "\n", bad_line, "\n");
  absl::StatusOr<std::vector<KeyEntry>> parsed = ParseKeyFile(text, "/etc/troupe/keys");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad_line;
  return std::string(parsed.status().message());
}

TEST(KeyFileTest, ParsesTenantsDigestsLimitsCommentsAndBlankLines) {
  const std::string text = absl::StrCat(
      "# production keys\n"
      "\n",
      "acme   ", Spec("k1"), "   max_priority=5 rpm=60 tpm=10000 max_streams=4  # main\n",
      "  \t\n",
      "acme ", Spec("k2"), "\r\n",  // CRLF files work
      "beta.co ", Spec("k3"), " max_priority=-2\n");
  absl::StatusOr<std::vector<KeyEntry>> parsed = ParseKeyFile(text, "keys");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 3u);
  const KeyEntry& first = (*parsed)[0];
  EXPECT_EQ(first.tenant, "acme");
  EXPECT_EQ(first.digest, Sha256("k1"));
  EXPECT_EQ(first.line, 3);
  EXPECT_EQ(first.limits.max_priority, 5);
  EXPECT_EQ(first.limits.rpm, 60);
  EXPECT_EQ(first.limits.tpm, 10000);
  EXPECT_EQ(first.limits.max_streams, 4);
  const KeyEntry& second = (*parsed)[1];
  EXPECT_EQ(second.digest, Sha256("k2"));
  EXPECT_EQ(second.line, 5);
  EXPECT_EQ(second.limits, KeyLimits{});
  EXPECT_EQ((*parsed)[2].tenant, "beta.co");
  EXPECT_EQ((*parsed)[2].limits.max_priority, -2);
}

TEST(KeyFileTest, EmptyFileHasNoKeys) {
  absl::StatusOr<std::vector<KeyEntry>> parsed = ParseKeyFile("# nobody yet\n\n", "keys");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->empty());
}

TEST(KeyFileTest, MalformedLinesNameFileAndLine) {
  const std::vector<std::string> bad = {
      "acme",                                          // no key
      "acme my-plain-key",                             // plain key
      "acme sha256:abc",                               // short digest
      absl::StrCat("acme sha256:", std::string(63, 'a'), "z"),  // non-hex digit
      absl::StrCat("acme ", Spec("x"), " rpm=0"),      // zero limit
      absl::StrCat("acme ", Spec("x"), " rpm=-1"),     // negative limit
      absl::StrCat("acme ", Spec("x"), " rpm=ten"),    // not a number
      absl::StrCat("acme ", Spec("x"), " rpm=1 rpm=2"),  // repeated
      absl::StrCat("acme ", Spec("x"), " burst=3"),    // unknown option
      absl::StrCat("acme ", Spec("x"), " rpm"),        // not NAME=VALUE
      absl::StrCat("acme ", Spec("x"), " max_priority=99999999999"),  // outside int32
      absl::StrCat("ac/me ", Spec("x")),               // bad tenant character
      absl::StrCat(std::string(65, 't'), " ", Spec("x")),  // tenant too long
      absl::StrCat("other ", Spec("good")),            // key already on line 2
  };
  for (const std::string& line : bad) {
    const std::string error = ErrorOf(line);
    EXPECT_EQ(error.rfind("/etc/troupe/keys:3: ", 0), 0u) << line << " -> " << error;
  }
  EXPECT_NE(ErrorOf(absl::StrCat("other ", Spec("good"))).find("already on line 2"), std::string::npos);
  EXPECT_NE(ErrorOf("acme my-plain-key").find("plain keys are not accepted"), std::string::npos);
  // A plain key put where the digest belongs is not repeated in the message.
  EXPECT_EQ(ErrorOf("acme my-plain-key").find("my-plain-key"), std::string::npos);
  EXPECT_NE(ErrorOf(absl::StrCat("acme ", Spec("x"), " burst=3")).find("burst"), std::string::npos);
}

TEST(KeyFileTest, FormattedLineParsesBackToTheSameEntry) {
  KeyEntry entry;
  entry.tenant = "acme";
  entry.digest = Sha256("secret");
  entry.limits.max_priority = 3;
  entry.limits.tpm = 5000;
  entry.limits.max_streams = 2;
  const std::string line = FormatKeyLine(entry);
  EXPECT_EQ(line, absl::StrCat("acme ", Spec("secret"), " max_priority=3 tpm=5000 max_streams=2"));
  absl::StatusOr<std::vector<KeyEntry>> parsed = ParseKeyFile(line, "line");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].tenant, entry.tenant);
  EXPECT_EQ((*parsed)[0].digest, entry.digest);
  EXPECT_EQ((*parsed)[0].limits, entry.limits);
}

TEST(KeyFileTest, UnreadableFileIsNamed) {
  absl::StatusOr<std::vector<KeyEntry>> read = ReadKeyFile("/nonexistent/troupe/keys");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(read.status().message().find("/nonexistent/troupe/keys"), absl::string_view::npos);
}

}  // namespace
}  // namespace troupe
