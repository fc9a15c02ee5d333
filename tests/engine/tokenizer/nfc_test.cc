// ToNfc on the cases NFC is made of; the tables themselves were checked against tokenizers' NFC
// over every code point and 20000 random mark sequences by scripts/golden/make_nfc_tables.py,
// and through tokenizer.json in hf_tokenizer_test.
#include "engine/tokenizer/nfc.h"

#include "gtest/gtest.h"

namespace troupe::unicode {
namespace {

TEST(NfcTest, ComposesDecomposesAndOrders) {
  EXPECT_EQ(ToNfc("plain ASCII stays"), "plain ASCII stays");
  EXPECT_EQ(ToNfc("e\xCC\x81"), "\xC3\xA9");                  // e + U+0301 -> é
  EXPECT_EQ(ToNfc("\xC3\xA9"), "\xC3\xA9");                   // é stays
  EXPECT_EQ(ToNfc("\xE2\x84\xAB"), "\xC3\x85");               // U+212B ANGSTROM SIGN -> Å
  EXPECT_EQ(ToNfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");  // U+0958 is excluded: क + ़
  // Marks out of class order are sorted (dot below, class 220, before acute, 230), then the
  // first composes: q has no composite, so both stay, ordered.
  EXPECT_EQ(ToNfc("q\xCC\x81\xCC\xA3"), "q\xCC\xA3\xCC\x81");
  // s + dot below + dot above -> U+1E69 (ṩ) through U+1E63.
  EXPECT_EQ(ToNfc("s\xCC\x87\xCC\xA3"), "\xE1\xB9\xA9");
  // A mark of the same class as one before it is blocked from composing with the base.
  EXPECT_EQ(ToNfc("a\xCC\x88\xCC\x81"), "\xC3\xA4\xCC\x81");  // ä + acute
  // Hangul jamo L V T -> one syllable; a syllable stays.
  EXPECT_EQ(ToNfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // 각
  EXPECT_EQ(ToNfc("\xEA\xB0\x81"), "\xEA\xB0\x81");
  EXPECT_EQ(ToNfc("\xFF"), "\xEF\xBF\xBD");  // a malformed byte: U+FFFD
}

}  // namespace
}  // namespace troupe::unicode
