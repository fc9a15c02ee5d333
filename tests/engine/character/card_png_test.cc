#include "engine/character/card_png.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "engine/character/character_card.h"
#include "gtest/gtest.h"
#include "tests/testing/testdata.h"

namespace troupe {
namespace {

using json = nlohmann::json;

std::string ReadTestFile(const std::string& name) { return testing::ReadTestData("cards/" + name); }

std::vector<std::string> ChunkTypes(std::string_view png) {
  absl::StatusOr<std::vector<PngChunk>> chunks = ParsePngChunks(png);
  EXPECT_TRUE(chunks.ok()) << chunks.status();
  std::vector<std::string> types;
  if (chunks.ok()) {
    for (const PngChunk& c : *chunks) types.push_back(c.type);
  }
  return types;
}

// tEXt keywords in file order.
std::vector<std::string> TextKeywords(std::string_view png) {
  std::vector<std::string> keywords;
  absl::StatusOr<std::vector<PngChunk>> chunks = ParsePngChunks(png);
  if (!chunks.ok()) return keywords;
  for (const PngChunk& c : *chunks) {
    if (c.type == "tEXt") keywords.emplace_back(c.data.substr(0, c.data.find('\0')));
  }
  return keywords;
}

// A chunk with a correct CRC.
std::string MakeChunk(const std::string& type, const std::string& data) {
  std::string chunk;
  const auto append32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<char>(v >> shift));
  };
  append32(static_cast<uint32_t>(data.size()));
  chunk += type + data;
  append32(PngCrc32(type + data));
  return chunk;
}

// `png` with `chunk` inserted just before its IEND (the last 12 bytes).
std::string InsertBeforeIend(const std::string& png, const std::string& chunk) {
  return png.substr(0, png.size() - 12) + chunk + png.substr(png.size() - 12);
}

void ExpectInvalid(const absl::StatusOr<std::string>& result, std::string_view message) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(result.status().message()), std::string(message));
}

TEST(CardPngTest, Crc32MatchesKnownValues) {
  EXPECT_EQ(PngCrc32(""), 0u);
  EXPECT_EQ(PngCrc32("123456789"), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(PngCrc32("IEND"), 0xAE426082u);       // every PNG ends with these CRC bytes
  EXPECT_EQ(PngCrc32("56789", PngCrc32("1234")), 0xCBF43926u);
}

TEST(CardPngTest, WalksChunksOfTheTestImages) {
  EXPECT_EQ(ChunkTypes(ReadTestFile("no_card.png")),
            (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(ChunkTypes(ReadTestFile("lighthouse_keeper.png")),
            (std::vector<std::string>{"IHDR", "tEXt", "tEXt", "IDAT", "IEND"}));
}

TEST(CardPngTest, ReadsV2CardFromCharaChunk) {
  absl::StatusOr<std::string> text = ReadCardFromPng(ReadTestFile("lighthouse_keeper.png"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(json::parse(*text), json::parse(ReadTestFile("v2_lighthouse_keeper.json")));
  absl::StatusOr<CharacterProfile> p = ParseCharacterCard(*text);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "Maren Holt");
}

TEST(CardPngTest, PrefersCcv3OverChara) {
  const std::string png = ReadTestFile("clockwork_archivist.png");
  EXPECT_EQ(TextKeywords(png), (std::vector<std::string>{"chara", "ccv3"}));
  absl::StatusOr<std::string> text = ReadCardFromPng(png);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(json::parse(*text)["spec"], "chara_card_v3");
  EXPECT_EQ(json::parse(*text), json::parse(ReadTestFile("v3_clockwork_archivist.json")));
}

TEST(CardPngTest, WritesBothChunksAndReplacesOldOnes) {
  const std::string png = ReadTestFile("lighthouse_keeper.png");
  absl::StatusOr<CharacterProfile> p = ParseCharacterCard(*ReadCardFromPng(png));
  ASSERT_TRUE(p.ok()) << p.status();
  p->name = "Maren Holt (edited)";
  CardPngText text;
  text.chara_json = ToCharacterCardJson(*p, CardSpec::kV2);
  text.ccv3_json = ToCharacterCardJson(*p, CardSpec::kV3);
  absl::StatusOr<std::string> written = WriteCardToPng(png, text);
  ASSERT_TRUE(written.ok()) << written.status();
  // The old chara chunk is gone, the unrelated tEXt stays, the new ones sit before IEND.
  EXPECT_EQ(TextKeywords(*written), (std::vector<std::string>{"Software", "chara", "ccv3"}));
  EXPECT_EQ(ChunkTypes(*written),
            (std::vector<std::string>{"IHDR", "tEXt", "IDAT", "tEXt", "tEXt", "IEND"}));
  absl::StatusOr<std::string> back = ReadCardFromPng(*written);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text.ccv3_json);
  EXPECT_EQ(ParseCharacterCard(*back)->name, "Maren Holt (edited)");

  // Writing only a chara chunk drops the stale ccv3 too, so readers cannot see old data.
  absl::StatusOr<std::string> v2_only = WriteCardToPng(*written, CardPngText{text.chara_json, ""});
  ASSERT_TRUE(v2_only.ok()) << v2_only.status();
  EXPECT_EQ(TextKeywords(*v2_only), (std::vector<std::string>{"Software", "chara"}));
  EXPECT_EQ(*ReadCardFromPng(*v2_only), text.chara_json);
}

TEST(CardPngTest, EmbedsIntoAnImageWithoutACard) {
  const std::string png = ReadTestFile("no_card.png");
  ExpectInvalid(ReadCardFromPng(png), "png: no 'ccv3' or 'chara' tEXt chunk; not a character card");
  const std::string card = ReadTestFile("v1_tavern_cat.json");
  absl::StatusOr<std::string> written = WriteCardToPng(png, CardPngText{card, ""});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*ReadCardFromPng(*written), card);
  // Non-ASCII JSON survives base64 byte for byte.
  const std::string v3 = ReadTestFile("v3_clockwork_archivist.json");
  written = WriteCardToPng(png, CardPngText{"", v3});
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*ReadCardFromPng(*written), v3);
  ExpectInvalid(WriteCardToPng(png, CardPngText{}),
                "png: nothing to write; both card texts are empty");
}

TEST(CardPngTest, RefusesNonPngAndTruncatedFiles) {
  const std::string png = ReadTestFile("lighthouse_keeper.png");
  ExpectInvalid(ReadCardFromPng("GIF89a..."), "png: not a PNG file (bad signature)");
  ExpectInvalid(ReadCardFromPng(""), "png: not a PNG file (bad signature)");
  ExpectInvalid(ReadCardFromPng(png.substr(0, 8)), "png: no IEND chunk; the file is truncated");
  ExpectInvalid(
      ReadCardFromPng(png.substr(0, 8 + 7)),
      "png: truncated chunk header at offset 8: 7 bytes remain, a chunk needs at least 12");
  // Cut in the middle of the chara chunk (after IHDR and the Software tEXt).
  absl::StatusOr<std::vector<PngChunk>> chunks = ParsePngChunks(png);
  ASSERT_TRUE(chunks.ok());
  const PngChunk& chara = (*chunks)[2];
  const std::string cut = png.substr(0, chara.offset + 100);
  ExpectInvalid(ReadCardFromPng(cut),
                "png: truncated chunk 'tEXt' at offset " + std::to_string(chara.offset) +
                    ": needs " + std::to_string(chara.data.size() + 12) + " bytes, 100 remain");
  // Everything up to IEND but not IEND itself.
  ExpectInvalid(ReadCardFromPng(png.substr(0, png.size() - 12)),
                "png: no IEND chunk; the file is truncated");
  ExpectInvalid(WriteCardToPng(cut, CardPngText{"{}", ""}),
                "png: truncated chunk 'tEXt' at offset " + std::to_string(chara.offset) +
                    ": needs " + std::to_string(chara.data.size() + 12) + " bytes, 100 remain");
}

TEST(CardPngTest, RefusesBadCrc) {
  std::string png = ReadTestFile("no_card.png");
  png[8 + 8] ^= 0x01;  // first byte of IHDR's data (width)
  absl::StatusOr<std::string> result = ReadCardFromPng(png);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(result.status().message(),
                               "png: bad CRC in chunk 'IHDR' at offset 8 (stored 0x"))
      << result.status();
}

TEST(CardPngTest, RefusesMalformedChunks) {
  const std::string signature("\x89PNG\r\n\x1a\n", 8);
  const std::string png = ReadTestFile("no_card.png");
  // IDAT before IHDR.
  const std::string rest = png.substr(8 + 25);
  ExpectInvalid(ReadCardFromPng(signature + rest), "png: first chunk is 'IDAT', expected 'IHDR'");
  // A length with the top bit set.
  ExpectInvalid(
      ReadCardFromPng(signature + std::string("\x80\0\0\0IHDR", 8) + std::string(8, '\0')),
      "png: chunk 'IHDR' at offset 8 has length 2147483648, over the PNG limit of 2^31 - 1");
  ExpectInvalid(ReadCardFromPng(signature + std::string("\0\0\0\0I#DR", 8) + std::string(4, '\0')),
                "png: bad chunk type at offset 8");
}

TEST(CardPngTest, RefusesInvalidBase64) {
  const std::string png = ReadTestFile("no_card.png");
  const std::string bad =
      InsertBeforeIend(png, MakeChunk("tEXt", std::string("chara") + '\0' + "@@not base64@@"));
  ExpectInvalid(ReadCardFromPng(bad), "png: the 'chara' chunk at offset " +
                                          std::to_string(png.size() - 12) + " is not valid base64");
}

TEST(CardPngTest, KeywordsAreMatchedCaseInsensitively) {
  const std::string png = ReadTestFile("no_card.png");
  // "eyJuYW1lIjoieCJ9" is {"name":"x"} in base64.
  const std::string with_card =
      InsertBeforeIend(png, MakeChunk("tEXt", std::string("Chara") + '\0' + "eyJuYW1lIjoieCJ9"));
  absl::StatusOr<std::string> text = ReadCardFromPng(with_card);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "{\"name\":\"x\"}");
}

}  // namespace
}  // namespace troupe
