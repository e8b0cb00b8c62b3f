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
// Writes what the engine decided for the claimed rows, and commits.
void FinishClaim(const delivery::ClaimDecisions& decisions);
// Commits a claim transaction that claimed nothing.
void CommitClaim();

// Writes outcomes and destination changes in one transaction.
void TxnRecord(const delivery::Records& records);

// --- upkeep -----------------------------------------------------------------

// Deletes delivered (and superseded) rows older than `retention_s`, in
// transactions of 10,000 rows, at most 1,000,000 per call. Returns rows
// deleted.
int64_t TxnPurgeDelivered(int retention_s);

// --- hyperline.test_delivery ------------------------------------------------

// The destination of a model, with its key, read in the caller's transaction.
// Throws undefined_object if the model does not exist.
delivery::DestinationConfig LoadModelDestination(const std::string& model);

}  // namespace hyperline::pg::store
