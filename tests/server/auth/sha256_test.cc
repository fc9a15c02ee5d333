// SHA-256 of API keys against published test vectors (FIPS 180-2 / NIST CSRC examples), hex
// round trips and the digest comparison.
#include "server/auth/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace troupe {
namespace {

TEST(Sha256Test, MatchesPublishedVectors) {
  EXPECT_EQ(DigestToHex(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(DigestToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(DigestToHex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(DigestToHex(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, HexRoundTripsInEitherCase) {
  const Sha256Digest digest = Sha256("troupe");
  const std::string hex = DigestToHex(digest);
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(DigestFromHex(hex), digest);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(DigestFromHex(upper), digest);
}

TEST(Sha256Test, HexRejectsWrongLengthAndNonHex) {
  const std::string hex = DigestToHex(Sha256("troupe"));
  EXPECT_FALSE(DigestFromHex(hex.substr(1)).has_value());
  EXPECT_FALSE(DigestFromHex(hex + "0").has_value());
  EXPECT_FALSE(DigestFromHex("g" + hex.substr(1)).has_value());
  EXPECT_FALSE(DigestFromHex("").has_value());
}

TEST(Sha256Test, DigestsEqualOnlyWhenEveryByteMatches) {
  const Sha256Digest a = Sha256("key-a");
  Sha256Digest b = a;
  EXPECT_TRUE(DigestsEqual(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(DigestsEqual(a, b));
  b = a;
  b[0] ^= 0x80;
  EXPECT_FALSE(DigestsEqual(a, b));
  EXPECT_FALSE(DigestsEqual(a, Sha256("key-b")));
}

}  // namespace
}  // namespace troupe
