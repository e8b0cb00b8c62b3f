// gate.hpp: who is calling, and running Postgres code as that role (see
// gate.cpp for the vocabulary: caller, twin).
#pragma once

extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"
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
// also when `fn` raises an error, and so do the settings (see UserScope: what
// `role`'s code SETs for the session is undone).
template <typename Fn>
void AsRole(Oid role, int flags, Fn&& fn) {
  Oid save_user = InvalidOid;
  int save_sec = 0;
  GetUserIdAndSecContext(&save_user, &save_sec);
  int nest = NewGUCNestLevel();
  PG_TRY();
  {
    SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE | flags);
    fn();
  }
  PG_FINALLY();
  {
    AtEOXact_GUC(false, nest);
    SetUserIdAndSecContext(save_user, save_sec);
  }
  PG_END_TRY();
}

// While alive, the current user is `role` (with SECURITY_LOCAL_USERID_CHANGE
// and `flags` added to the security context); the previous user and context
// come back when it goes, also when a C++ exception unwinds it. For C++ code
// that calls Postgres through PgGuard; Postgres-only code uses AsRole.
//
// Settings come back too: the scope opens a GUC nest level and rolls it back
// (AtEOXact_GUC(false), as Postgres does after an index build or a
// materialized view refresh). Why: `role`'s code (a function its query calls,
// a policy on its table) may run set_config('search_path', 'mal, pg_catalog',
// false), which outlives a function's SET clause and the gate's pinned path;
// the extension owner's code that runs next would resolve names in `role`'s
// schema, and a sync worker's next run (another role's) would inherit it.
// AtEOXact_GUC raises no error (assign hooks may not fail), so it is safe in
// the destructor.
class UserScope {
 public:
  UserScope(Oid role, int flags) {
    GetUserIdAndSecContext(&save_user_, &save_sec_);
    nest_ = NewGUCNestLevel();
    SetUserIdAndSecContext(role, save_sec_ | SECURITY_LOCAL_USERID_CHANGE | flags);
  }
  ~UserScope() {
    AtEOXact_GUC(false, nest_);
    SetUserIdAndSecContext(save_user_, save_sec_);
  }
  UserScope(const UserScope&) = delete;
  UserScope& operator=(const UserScope&) = delete;

 private:
  Oid save_user_ = InvalidOid;
  int save_sec_ = 0;
  int nest_ = 0;
};

}  // namespace hyperline::pg
