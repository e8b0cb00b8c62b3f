// stats_publish.hpp: the delivery worker's side of hyperline.stats (stats.hpp
// has the vocabulary): adds what the delivery engine saw to the counters in
// shared memory. Pure C++ declarations (include before Postgres headers).
#pragma once

#include <cstdint>
#include <string>

#include "core/delivery/types.hpp"

namespace hyperline::pg::stats {

// Adds the engine's statistics of one or more turns (cheap: a lookup and a
// few additions per destination and model, no table write).
void Publish(const delivery::StatsDelta& delta);

// Adds `n` events of `model` for `destination` superseded by the claim
// transaction's SQL (older waiting rows of a key taken).
void PublishSuperseded(const std::string& model, const std::string& destination, int64_t n);

}  // namespace hyperline::pg::stats
