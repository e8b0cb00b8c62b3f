// guard.hpp: the C++ / Postgres error boundary (see STYLE.md).
//
// Postgres reports errors with longjmp; C++ unwinds with exceptions; neither may
// cross the other's frames. Two guards, used by every entry point:
//   CppGuard  — called from an extern "C" shell; runs a C++ body, catches every
//               exception, copies its message into static buffers (no allocation
//               inside the catch), leaves the catch block, then ereports with
//               the exception's SQLSTATE.
//   PgGuard   — called from C++; runs Postgres code that may ereport inside
//               PG_TRY and rethrows the error as a PgException (SQLSTATE, detail
//               and hint kept). Guard a batch, not each tuple.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace hyperline::pg {

// A C++ exception carrying a Postgres-style error.
class PgException : public std::runtime_error {
 public:
  PgException(int sqlstate, const std::string& message, std::string detail = {},
              std::string hint = {})
      : std::runtime_error(message),
        sqlstate(sqlstate),
        detail(std::move(detail)),
        hint(std::move(hint)) {}
  int sqlstate;
  std::string detail;
  std::string hint;
  // True when the error was raised by Postgres (caught by PgGuard): the
  // transaction must then be aborted, so callers rethrow instead of going on.
  bool from_postgres = false;
};

// Throws a PgException (shorthand for bodies).
[[noreturn]] inline void Throw(int sqlstate, const std::string& message, std::string detail = {},
                               std::string hint = {}) {
  throw PgException(sqlstate, message, std::move(detail), std::move(hint));
}

namespace detail {
// Static buffers: copying into them cannot fail, so nothing inside a catch
// block can ereport (which would longjmp out of it).
struct ErrorBuffers {
  int sqlstate;
  char message[2048];
  char detail[2048];
  char hint[1024];
};
inline ErrorBuffers& Buffers() {
  static ErrorBuffers buffers;
  return buffers;
}
inline void CopyInto(char* dst, size_t size, const char* src) {
  size_t i = 0;
  if (src != nullptr) {
    for (; src[i] != '\0' && i + 1 < size; ++i) dst[i] = src[i];
  }
  dst[i] = '\0';
}
[[noreturn]] void ReportBuffers();
}  // namespace detail

// Runs `body` (a C++ callable) and turns any exception into ereport(ERROR).
// Every extern "C" function that Postgres calls runs its C++ body through it
// (HYPERLINE_SQL_FUNCTION below for SQL-callable functions).
template <typename Body>
auto CppGuard(Body&& body) -> decltype(body()) {
  bool failed = false;
  {
    auto& b = detail::Buffers();
    try {
      return body();
    } catch (const PgException& e) {
      b.sqlstate = e.sqlstate;
      detail::CopyInto(b.message, sizeof b.message, e.what());
      detail::CopyInto(b.detail, sizeof b.detail, e.detail.c_str());
      detail::CopyInto(b.hint, sizeof b.hint, e.hint.c_str());
      failed = true;
    } catch (const std::bad_alloc&) {
      b.sqlstate = ERRCODE_OUT_OF_MEMORY;
      detail::CopyInto(b.message, sizeof b.message, "out of memory in pg_hyperline");
      b.detail[0] = b.hint[0] = '\0';
      failed = true;
    } catch (const std::exception& e) {
      b.sqlstate = ERRCODE_INTERNAL_ERROR;
      detail::CopyInto(b.message, sizeof b.message, e.what());
      b.detail[0] = b.hint[0] = '\0';
      failed = true;
    } catch (...) {
      b.sqlstate = ERRCODE_INTERNAL_ERROR;
      detail::CopyInto(b.message, sizeof b.message, "unknown C++ exception in pg_hyperline");
      b.detail[0] = b.hint[0] = '\0';
      failed = true;
    }
  }
  // Outside the catch block: now it is safe to longjmp.
  (void)failed;
  detail::ReportBuffers();
}

// Runs `fn` (Postgres calls that may ereport) and rethrows any Postgres error as
// a PgException. `fn` must not create C++ objects with destructors that would be
// skipped by the longjmp. Should a C++ exception still leave `fn`, the
// Postgres error state this frame changed (the innermost PG_TRY's jump buffer,
// the error context stack) is put back before it goes on: otherwise the next
// ereport would jump into a frame that no longer exists.
template <typename Fn>
void PgGuard(Fn&& fn) {
  // volatile: read after a longjmp back into this frame.
  MemoryContext volatile oldcontext = CurrentMemoryContext;
  ErrorData* volatile edata = nullptr;
  sigjmp_buf* volatile saved_stack = PG_exception_stack;
  ErrorContextCallback* volatile saved_context = error_context_stack;
  PG_TRY();
  {
    try {
      fn();
    } catch (...) {
      PG_exception_stack = saved_stack;
      error_context_stack = saved_context;
      throw;
    }
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(oldcontext);
    edata = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  if (edata != nullptr) {
    PgException ex(edata->sqlerrcode, edata->message ? edata->message : "unknown error",
                   edata->detail ? edata->detail : "", edata->hint ? edata->hint : "");
    ex.from_postgres = true;
    FreeErrorData(edata);
    throw ex;
  }
}

}  // namespace hyperline::pg

// Defines the SQL-callable C function `name` (PG_FUNCTION_INFO_V1 and the
// extern "C" shell), whose body is the C++ function `body(FunctionCallInfo)`
// run through CppGuard: no entry point is written by hand.
#define HYPERLINE_SQL_FUNCTION(name, body)                                     \
  extern "C" {                                                                 \
  PG_FUNCTION_INFO_V1(name);                                                   \
  Datum name(PG_FUNCTION_ARGS) {                                               \
    return ::hyperline::pg::CppGuard([&]() -> Datum { return body(fcinfo); }); \
  }                                                                            \
  }

// Defines the SQL-callable C function `name` whose body `body(FunctionCallInfo)`
// is Postgres code only (no C++ object, nothing that throws): it is called
// directly, so that Postgres errors keep their context and cursor position.
#define HYPERLINE_SQL_FUNCTION_PG(name, body)           \
  extern "C" {                                          \
  PG_FUNCTION_INFO_V1(name);                            \
  Datum name(PG_FUNCTION_ARGS) { return body(fcinfo); } \
  }

// Defines the background worker entry `name` (its bgw_function_name) whose
// body `body(Datum)` sets the process up (Postgres code) and runs its C++ work
// through CppGuard.
#define HYPERLINE_BGWORKER_MAIN(name, body) \
  extern "C" {                              \
  PGDLLEXPORT void name(Datum arg);         \
  void name(Datum arg) { body(arg); }       \
  }
