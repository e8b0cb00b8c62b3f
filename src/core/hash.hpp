// hash.hpp: a fast 64-bit hash of bytes (XXH64, the xxHash algorithm).
//
// Why: a query model's run compares, key by key, what it would send now with
// what it sent last time. It keeps a 64-bit hash of each key's rendered payload
// instead of the payload, so that the comparison reads 8 bytes per key. XXH64
// is well distributed, byte-order independent (little-endian reads on every
// host) and runs at several GB/s, so hashing a payload costs next to nothing
// beside rendering it. A collision (two different payloads with one hash, about
// 1 in 2^64 per changed key) would make a change go unsent until the next one.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hyperline {

// XXH64 of `size` bytes at `data` with `seed` (the reference algorithm:
// github.com/Cyan4973/xxHash, doc/xxhash_spec.md).
uint64_t Hash64Bytes(const void* data, size_t size, uint64_t seed = 0);

inline uint64_t Hash64(std::string_view bytes, uint64_t seed = 0) {
  return Hash64Bytes(bytes.data(), bytes.size(), seed);
}

}  // namespace hyperline
