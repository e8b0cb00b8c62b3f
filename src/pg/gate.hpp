// gate.hpp: who is calling, and running Postgres code as that role (see
// gate.cpp for the vocabulary: caller, twin).
#pragma once

extern "C" {
#include "postgres.h"

#include "miscadmin.h"
}

namespace hyperline::pg {

// The caller recorded by the innermost gate; ERROR when no gate is active.
Oid CurrentCaller();

// Whether a gate is active (the code runs for a public function's caller).
bool HaveCaller();

// The caller's search_path when the innermost gate was entered (before the
// gate pinned its own); ERROR when no gate is active. Query models keep it:
// their query runs with the search_path of the role that created them.
const char* CallerSearchPath();

// Sets search_path to pg_catalog, pg_temp at the current GUC nest level (the
// caller opens one with NewGUCNestLevel and closes it with AtEOXact_GUC).
void PinSearchPath();

// Runs `fn` (Postgres code, as for PgGuard: no C++ objects with destructors)
// with `role` as the current user, adding `flags` (SECURITY_* of miscadmin.h)
// to the security context; the previous user and context come back afterwards,
// also when `fn` raises an error.
template <typename Fn>
void AsRole(Oid role, int flags, Fn&& fn) {
  Oid save_user = InvalidOid;
  int save_sec = 0;
  GetUserIdAndSecContext(&save_user, &save_sec);
  PG_TRY();
  {
    SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE | flags);
    fn();
  }
  PG_FINALLY();
  { SetUserIdAndSecContext(save_user, save_sec); }
  PG_END_TRY();
}

// While alive, the current user is `role` (with SECURITY_LOCAL_USERID_CHANGE
// and `flags` added to the security context); the previous user and context
// come back when it goes, also when a C++ exception unwinds it. For C++ code
// that calls Postgres through PgGuard; Postgres-only code uses AsRole.
class UserScope {
 public:
  UserScope(Oid role, int flags) {
    GetUserIdAndSecContext(&save_user_, &save_sec_);
    SetUserIdAndSecContext(role, save_sec_ | SECURITY_LOCAL_USERID_CHANGE | flags);
  }
  ~UserScope() { SetUserIdAndSecContext(save_user_, save_sec_); }
  UserScope(const UserScope&) = delete;
  UserScope& operator=(const UserScope&) = delete;

 private:
  Oid save_user_ = InvalidOid;
  int save_sec_ = 0;
};

}  // namespace hyperline::pg
