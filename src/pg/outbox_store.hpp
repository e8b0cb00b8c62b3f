// outbox_store.hpp: every SQL statement of the delivery and upkeep workers
// (and the destination lookup of hyperline.test_delivery), over
// hyperline.outbox, hyperline._destinations and _hyperline.api_keys.
//
// Functions named Txn* run one short transaction each; BeginClaim starts the
// claim transaction that ClaimRows continues and FinishClaim (or CommitClaim)
// commits. All run Postgres code inside PgGuard, so a Postgres error arrives
// as a PgException and the caller aborts the transaction (AbortAfterError).
//
// Every statement qualifies its names, functions and operators
// (pg_catalog.now(), OPERATOR(pg_catalog.=)): the workers run as the
// bootstrap superuser, and their search_path is pinned besides
// (worker_common.cpp), so no object of a database owner is ever resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/alerts.hpp"
#include "core/delivery/types.hpp"

namespace hyperline::pg::store {

// Whether the extension is installed in this database, and at which version.
enum class ExtensionState {
  kAbsent,        // no CREATE EXTENSION yet (or dropped)
  kOtherVersion,  // installed at a version other than the library's: hands off
  kReady,         // installed at the library's version
};

struct ExtensionCheck {
  ExtensionState state = ExtensionState::kAbsent;
  std::string installed_version;  // when present
};

// The library's version (HYPERLINE_VERSION, pg_hyperline.control's
// default_version).
const char* LibraryVersion();

// Reads pg_extension in a short transaction.
ExtensionCheck TxnCheckExtension();

// --- delivery worker --------------------------------------------------------

// Crash safety at start: rows left 'sending' go back to 'pending'. Returns
// how long until the latest retry of rows waiting for one is due (nullopt:
// none waits).
std::optional<int64_t> TxnResetSending();

// Starts the claim transaction and loads every destination with its key.
// nullopt, and the transaction is over, when the extension is not ready
// (*check says why).
std::optional<std::vector<delivery::DestinationConfig>> BeginClaim(ExtensionCheck* check);
// Claims due rows as planned (status 'sending'), in the claim transaction.
// Payloads are read up to plan.byte_budget bytes in all (uncompressed); the
// rows beyond come back `deferred`, unread.
delivery::Claimed ClaimRows(const delivery::ClaimPlan& plan);
// Events of a model for a destination superseded by the claim's SQL (older
// rows of a taken key that waited for a retry): for hyperline.stats.
struct Superseded {
  std::string model;
  std::string destination;
  int64_t n = 0;
};

// Writes what the engine decided for the claimed rows, and commits. Returns
// the rows superseded by SQL.
std::vector<Superseded> FinishClaim(const delivery::ClaimDecisions& decisions);
// Commits a claim transaction that claimed nothing.
void CommitClaim();

// Writes outcomes, destination changes and the request log
// (hyperline._requests) in one transaction.
void TxnRecord(const delivery::Records& records);

// --- health and alerts (health.cpp) ---------------------------------------------

// Starts a transaction and evaluates hyperline.health().
std::vector<alerts::CheckStatus> BeginHealth();
// Sends each payload with NOTIFY `channel` and commits the transaction
// BeginHealth started (the notifications go out at commit).
void FinishHealth(const char* channel, const std::vector<std::string>& payloads);

// --- upkeep -----------------------------------------------------------------

// Deletes delivered (and superseded) rows older than `retention_s`, in
// transactions of 10,000 rows, at most 1,000,000 per call. Returns rows
// deleted.
int64_t TxnPurgeDelivered(int retention_s);

// Deletes requests of hyperline.requests older than `retention_s` the same
// way. Returns rows deleted.
int64_t TxnPurgeRequests(int retention_s);

// In its own transaction: hyperline._purge_sync_runs() (query model runs
// finished longer than the retention ago, the last of each model kept).
// Returns how many were purged; 0 when the schema has no runs table.
int64_t TxnPurgeSyncRuns();

// --- hyperline.test_delivery ------------------------------------------------

// The destination of a model, with its key, read in the caller's transaction.
// Throws undefined_object if the model does not exist.
delivery::DestinationConfig LoadModelDestination(const std::string& model);

}  // namespace hyperline::pg::store
