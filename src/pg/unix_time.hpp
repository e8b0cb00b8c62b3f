// unix_time.hpp: TimestampTz (µs since 2000-01-01, Postgres's epoch) and µs
// since the Unix epoch, the clock of the delivery engine (src/core/delivery)
// and of the counters the workers publish (stats_publish.hpp).
#pragma once

#include <cstdint>

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

namespace hyperline::pg {

constexpr int64 kUnixEpochShiftUs =
    (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * static_cast<int64>(USECS_PER_DAY);

inline int64_t UnixMicros(TimestampTz t) { return t + kUnixEpochShiftUs; }
inline TimestampTz FromUnixMicros(int64_t us) { return us - kUnixEpochShiftUs; }

}  // namespace hyperline::pg
