// cpp_only.hpp: included first by every header in src/core and src/http.
//
// Why: src/core and src/http are pure C++ so they can be unit-tested and fuzzed
// without a server. Postgres headers redefine things C++ relies on and bring
// longjmp-based errors; if one is included before this header the build stops.
#pragma once

#if defined(PG_VERSION_NUM) || defined(POSTGRES_H)
#error "src/core and src/http must not include Postgres headers (README.md, \"Layout\")"
#endif
