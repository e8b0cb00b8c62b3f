// Tests for the 64-bit hash (XXH64) against the reference vectors.
#include "core/hash.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hyperline {
namespace {

// xxHash's sanity buffer (cli/xsum_sanity_check.c of the reference tool).
std::vector<unsigned char> SanityBuffer(size_t size) {
  std::vector<unsigned char> buffer(size);
  uint32_t gen = 2654435761U;
  for (size_t i = 0; i < size; ++i) {
    buffer[i] = static_cast<unsigned char>(gen >> 24);
    gen *= gen;
  }
  return buffer;
}

TEST(Hash64, MatchesTheReferenceVectors) {
  EXPECT_EQ(Hash64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(Hash64("", 2654435761U), 0xAC75FDA2929B17EFULL);
  EXPECT_EQ(Hash64("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(Hash64("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(Hash64("asdf"), 0x415872F599CEA71EULL);
  // 39 bytes: the 32-byte stripes, then 8-, 4- and 1-byte tails.
  EXPECT_EQ(Hash64("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
  std::vector<unsigned char> sanity = SanityBuffer(101);
  EXPECT_EQ(Hash64Bytes(sanity.data(), 1), 0x4FCE394CC88952D8ULL);
  EXPECT_EQ(Hash64Bytes(sanity.data(), 1, 2654435761U), 0x739840CB819FA723ULL);
  EXPECT_EQ(Hash64Bytes(sanity.data(), 14), 0xCFFA8DB881BC3A3DULL);
  EXPECT_EQ(Hash64Bytes(sanity.data(), 14, 2654435761U), 0x5B9611585EFCC9CBULL);
  EXPECT_EQ(Hash64Bytes(sanity.data(), sanity.size()), 0x0EAB543384F878ADULL);
  EXPECT_EQ(Hash64Bytes(sanity.data(), sanity.size(), 2654435761U), 0xCAA65939306F1E21ULL);
}

TEST(Hash64, EveryByteAndLengthCounts) {
  std::string base(100, 'x');
  uint64_t h = Hash64(base);
  for (size_t i = 0; i < base.size(); ++i) {
    std::string changed = base;
    changed[i] = 'y';
    EXPECT_NE(Hash64(changed), h) << "byte " << i;
  }
  // Every length from 0 to 100 of the same bytes hashes differently.
  std::vector<uint64_t> seen;
  for (size_t n = 0; n <= base.size(); ++n) {
    uint64_t v = Hash64Bytes(base.data(), n);
    for (uint64_t s : seen) EXPECT_NE(v, s) << "length " << n;
    seen.push_back(v);
  }
}

TEST(Hash64, UnalignedInputHashesTheSame) {
  std::string text = "_{\"customer_id\":\"cus_1\",\"event_type\":\"seats\",\"record\":{\"id\":1}}";
  std::string copy = text.substr(1);
  EXPECT_EQ(Hash64Bytes(text.data() + 1, text.size() - 1), Hash64(copy));
}

}  // namespace
}  // namespace hyperline
