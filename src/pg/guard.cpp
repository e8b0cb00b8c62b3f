// guard.cpp: reporting half of the error boundary (see guard.hpp).
#include "pg/guard.hpp"

namespace hyperline::pg::detail {

// Raises the error saved in the static buffers; never returns.
void ReportBuffers() {
  ErrorBuffers& b = Buffers();
  ereport(ERROR, (errcode(b.sqlstate), errmsg_internal("%s", b.message),
                  b.detail[0] ? errdetail_internal("%s", b.detail) : 0,
                  b.hint[0] ? errhint("%s", b.hint) : 0));
  pg_unreachable();
}

}  // namespace hyperline::pg::detail
