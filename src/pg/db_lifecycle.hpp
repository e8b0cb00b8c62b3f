// db_lifecycle.hpp: which databases pg_hyperline serves, and what happens to
// their workers when a database is dropped, renamed, moved or copied.
//
// Vocabulary:
//   served — a database gets a delivery worker when the extension exists in
//            it, it allows connections, is not a template, and
//            hyperline.database is empty or names it.
//   stop   — before DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE
//            and CREATE DATABASE ... TEMPLATE, which all need the database
//            to themselves, the backend running the command blocks the
//            database until its transaction ends and stops our processes
//            connected to it (shmem.hpp, BlockAndStopDatabase). The launcher
//            starts the worker again afterwards if the database still exists.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace hyperline::pg {

// Why a database would not be served, or kServed.
enum class ServedState { kServed, kOtherDatabase, kTemplate, kNoConnections, kInvalid };

// Whether a database with these attributes is served (the launcher's rule).
ServedState DatabaseServedState(const char* datname, bool is_template, bool allow_connections,
                                bool invalid);

// The same for the current database (reads pg_database; needs a transaction).
ServedState CurrentDatabaseServedState();

// Why no worker delivers from the current database (palloc'd sentence; nullptr
// for kServed), e.g. for test_delivery's answer or health().
char* NotServedDetail(ServedState state);

// Installs the ProcessUtility hook that stops our workers before a command
// that needs their database, and tells the launcher about CREATE EXTENSION.
void InstallDatabaseLifecycleHook();

}  // namespace hyperline::pg
