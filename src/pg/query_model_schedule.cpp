// query_model_schedule.cpp: when a query model runs next (its `schedule`,
// parsed by core/schedule.hpp: an interval or a five-field cron expression in
// UTC). Times are TimestampTz: microseconds since 2000-01-01 UTC, as the core
// Schedule counts them.
#include "core/schedule.hpp"
#include "pg/query_model.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "pg/guard.hpp"

namespace hyperline::pg {
namespace {

// Parses `text`; throws PgException naming the problem.
Schedule ParseSchedule(const std::string& text) {
  try {
    return Schedule::Parse(text);
  } catch (const ScheduleError& e) {
    Throw(ERRCODE_INVALID_PARAMETER_VALUE, "invalid schedule \"" + text + "\": " + e.what(), "",
          "A schedule is an interval ('15 minutes', '1 hour', '1 day') or a five-field cron "
          "expression in UTC: minute hour day-of-month month day-of-week ('0 * * * *' is "
          "hourly, '30 2 * * mon-fri' is 02:30 UTC on weekdays); NULL runs only when asked.");
  }
}

// SQL hyperline._next_run_at(schedule text, after timestamptz) -> the first
// run time after `after`, NULL for no schedule (NULL or ''); ERROR naming the
// problem for a schedule that does not parse.
Datum NextRunAt(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  std::string schedule_text;
  PgGuard([&] { schedule_text = text_to_cstring(PG_GETARG_TEXT_PP(0)); });
  if (schedule_text.find_first_not_of(" \t\r\n") == std::string::npos) PG_RETURN_NULL();
  Schedule schedule = ParseSchedule(schedule_text);
  if (PG_ARGISNULL(1)) PG_RETURN_NULL();
  TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
  if (TIMESTAMP_NOT_FINITE(after)) PG_RETURN_NULL();
  std::optional<int64_t> next = schedule.NextAfter(after);
  if (!next) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(*next);
}

// SQL hyperline._next_due(schedule text, last_due timestamptz, now
// timestamptz) -> the run time after the run due at `last_due` that starts at
// `now` (NextDue), NULL for no schedule.
Datum NextDueSql(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_NULL();
  std::string schedule_text;
  PgGuard([&] { schedule_text = text_to_cstring(PG_GETARG_TEXT_PP(0)); });
  TimestampTz last_due = PG_GETARG_TIMESTAMPTZ(1);
  TimestampTz now = PG_GETARG_TIMESTAMPTZ(2);
  if (TIMESTAMP_NOT_FINITE(last_due) || TIMESTAMP_NOT_FINITE(now)) PG_RETURN_NULL();
  std::optional<TimestampTz> next = NextDue(schedule_text, last_due, now);
  if (!next) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(*next);
}

}  // namespace

std::optional<TimestampTz> NextDue(const std::string& schedule_text, TimestampTz last_due,
                                   TimestampTz now) {
  if (schedule_text.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
  Schedule schedule = ParseSchedule(schedule_text);
  std::optional<int64_t> next = schedule.NextDue(last_due, now);
  if (!next) return std::nullopt;
  return static_cast<TimestampTz>(*next);
}

}  // namespace hyperline::pg

HYPERLINE_SQL_FUNCTION(hyperline_next_run_at, hyperline::pg::NextRunAt)
HYPERLINE_SQL_FUNCTION(hyperline_next_due, hyperline::pg::NextDueSql)
