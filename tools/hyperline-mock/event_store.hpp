// event_store.hpp: what the mock has received, kept small enough for millions
// of events.
//
// Vocabulary: a *receipt* is one accepted arrival of an event (or one deletion)
// with a global sequence number `seq` (1, 2, ...). The *stored* event of a key
// is its latest receipt, unless a deletion came after it. Receipts of one key
// are chained (each points at the previous one), which gives /_mock/log
// without a vector per key. Event texts live once, in an append-only arena.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace hyperline {
namespace mock {

// One accepted event on its way into the store.
struct IncomingEvent {
  std::string key;          // canonical record id
  std::string text;         // compact JSON text, as sent
  std::string event_type;   // for GET filters
  std::string customer_id;  // for GET filters
};

// Which stored events a listing returns (empty = no filter on that field).
struct EventFilter {
  std::string event_type;
  std::string customer_id;
  std::unordered_set<std::string> record_ids;
  bool filter_event_type = false;
  bool filter_customer_id = false;
  bool filter_record_ids = false;
  size_t skip = 0;
  size_t take = SIZE_MAX;
};

// Counters the store maintains under its own lock.
struct StoreCounters {
  uint64_t events_received = 0;
  uint64_t events_unique = 0;
  uint64_t events_deleted = 0;
  uint64_t duplicates = 0;
};

class EventStore {
 public:
  EventStore();

  // Stores accepted events in order (later ones replace earlier ones of the same key).
  void Accept(const std::vector<IncomingEvent>& events, int64_t now_ms);
  // Deletes the stored events of these keys; returns how many existed.
  size_t Delete(const std::vector<std::string>& keys, int64_t now_ms);
  // Returns a JSON array of stored events in first-arrival order.
  std::string List(const EventFilter& filter) const;
  // Returns a JSON array of the receipts of one key in arrival order.
  std::string Log(const std::string& key) const;
  // Returns a copy of the counters.
  StoreCounters Counters() const;
  // Forgets every event, receipt and counter.
  void Reset();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Receipt {
    const char* text;  // nullptr for a deletion
    int64_t received_at_ms;
    uint32_t len;  // deletion: 1 if the key was stored, else 0
    uint32_t prev;
    uint32_t event_type;
    uint32_t customer;
  };
  struct KeyState {
    uint32_t latest = kNone;
    uint32_t order_slot = kNone;  // index in order_ while stored
  };
  struct Interned {
    std::unordered_map<std::string, uint32_t> ids;
    std::vector<const std::string*> names;
    // Returns the id of s, adding it if new.
    uint32_t Intern(const std::string& s);
    // Returns the id of s, or kNone if it was never interned.
    uint32_t Find(const std::string& s) const;
  };

  // Copies text into the arena; the pointer stays valid until Reset().
  const char* Copy(const std::string& text);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = 0;
  size_t chunk_size_ = 0;
  std::vector<Receipt> receipts_;
  std::unordered_map<std::string, KeyState> keys_;
  using KeyEntry = std::pair<const std::string, KeyState>;
  std::vector<const KeyEntry*> order_;  // nullptr where deleted
  Interned event_types_;
  Interned customers_;
  StoreCounters counters_;
};

}  // namespace mock
}  // namespace hyperline
