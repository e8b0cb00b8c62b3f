// sync_worker.hpp: scheduled runs of query models (see sync_worker.cpp).
#pragma once

#include <chrono>

namespace hyperline::pg {

// The scheduler's turn, for the delivery worker's loop to call at every
// iteration, outside any transaction: at most once a second (sooner when a
// model falls due sooner) it looks for query models whose run is due and
// starts sync workers for them. Cheap between looks; never throws (an error
// is logged and the look retried later). Returns how long until it wants to
// look again: the loop should not sleep longer than that, or scheduled runs
// start late by as much.
std::chrono::milliseconds TickSyncScheduler();

}  // namespace hyperline::pg
