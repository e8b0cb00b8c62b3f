// event_store.cpp: receipts, arena and per-key state (see event_store.hpp).
#include "event_store.hpp"

#include <algorithm>
#include <cstring>

#include "event_validation.hpp"

namespace hyperline {
namespace mock {

namespace {
constexpr size_t kChunkBytes = size_t{8} * 1024 * 1024;
}  // namespace

uint32_t EventStore::Interned::Intern(const std::string& s) {
  auto it = ids.find(s);
  if (it != ids.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(names.size());
  auto inserted = ids.emplace(s, id).first;
  names.push_back(&inserted->first);
  return id;
}

uint32_t EventStore::Interned::Find(const std::string& s) const {
  auto it = ids.find(s);
  return it == ids.end() ? kNone : it->second;
}

EventStore::EventStore() = default;

const char* EventStore::Copy(const std::string& text) {
  if (chunks_.empty() || chunk_used_ + text.size() > chunk_size_) {
    // Why chunks: texts never move, so receipts keep plain pointers, and a
    // million events never trigger a copy of everything stored so far.
    chunk_size_ = std::max(kChunkBytes, text.size());
    chunks_.emplace_back(new char[chunk_size_]);
    chunk_used_ = 0;
  }
  char* dst = chunks_.back().get() + chunk_used_;
  // Why no terminator: the arena holds bytes, not C strings; List and Log read
  // them back with Receipt::len.
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes, never a C string
  if (!text.empty()) memcpy(dst, text.data(), text.size());
  chunk_used_ += text.size();
  return dst;
}

void EventStore::Accept(const std::vector<IncomingEvent>& events, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const IncomingEvent& e : events) {
    Receipt r;
    r.text = Copy(e.text);
    r.received_at_ms = now_ms;
    r.len = static_cast<uint32_t>(e.text.size());
    r.event_type = event_types_.Intern(e.event_type);
    r.customer = customers_.Intern(e.customer_id);
    uint32_t index = static_cast<uint32_t>(receipts_.size());
    auto found = keys_.try_emplace(e.key);
    KeyState& state = found.first->second;
    r.prev = state.latest;
    receipts_.push_back(r);
    state.latest = index;
    counters_.events_received++;
    if (state.order_slot != kNone) {
      counters_.duplicates++;
    } else {
      state.order_slot = static_cast<uint32_t>(order_.size());
      order_.push_back(&*found.first);
      counters_.events_unique++;
    }
  }
}

size_t EventStore::Delete(const std::vector<std::string>& keys, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t deleted = 0;
  for (const std::string& key : keys) {
    auto found = keys_.try_emplace(key);
    KeyState& state = found.first->second;
    Receipt r{};
    r.text = nullptr;
    r.received_at_ms = now_ms;
    r.len = state.order_slot != kNone ? 1 : 0;
    r.prev = state.latest;
    r.event_type = kNone;
    r.customer = kNone;
    state.latest = static_cast<uint32_t>(receipts_.size());
    receipts_.push_back(r);
    if (state.order_slot != kNone) {
      order_[state.order_slot] = nullptr;
      state.order_slot = kNone;
      counters_.events_unique--;
      counters_.events_deleted++;
      deleted++;
    }
  }
  return deleted;
}

std::string EventStore::List(const EventFilter& filter) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "[";
  uint32_t type_id = kNone, customer_id = kNone;
  if (filter.filter_event_type) {
    type_id = event_types_.Find(filter.event_type);
    if (type_id == kNone) return "[]";
  }
  if (filter.filter_customer_id) {
    customer_id = customers_.Find(filter.customer_id);
    if (customer_id == kNone) return "[]";
  }
  size_t skipped = 0, taken = 0;
  for (const KeyEntry* entry : order_) {
    if (taken >= filter.take) break;
    if (entry == nullptr) continue;
    if (filter.filter_record_ids && filter.record_ids.count(entry->first) == 0) continue;
    const Receipt& r = receipts_[entry->second.latest];
    if (filter.filter_event_type && r.event_type != type_id) continue;
    if (filter.filter_customer_id && r.customer != customer_id) continue;
    if (skipped < filter.skip) {
      skipped++;
      continue;
    }
    if (taken > 0) out += ',';
    out.append(r.text, r.len);
    taken++;
  }
  out += ']';
  return out;
}

std::string EventStore::Log(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = keys_.find(key);
  if (found == keys_.end()) return "[]";
  std::vector<uint32_t> chain;
  for (uint32_t i = found->second.latest; i != kNone; i = receipts_[i].prev) chain.push_back(i);
  std::string out = "[";
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Receipt& r = receipts_[*it];
    if (it != chain.rbegin()) out += ',';
    out += "{\"seq\":" + std::to_string(*it + 1) +
           ",\"received_at_ms\":" + std::to_string(r.received_at_ms);
    if (r.text == nullptr) {
      out += ",\"deleted\":true,\"existed\":";
      out += r.len ? "true}" : "false}";
    } else {
      out += ",\"event\":";
      out.append(r.text, r.len);
      out += '}';
    }
  }
  out += ']';
  return out;
}

StoreCounters EventStore::Counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void EventStore::Reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Why swap with empties: clear() keeps the capacity of a million entries.
  std::vector<std::unique_ptr<char[]>>().swap(chunks_);
  chunk_used_ = chunk_size_ = 0;
  std::vector<Receipt>().swap(receipts_);
  std::unordered_map<std::string, KeyState>().swap(keys_);
  std::vector<const KeyEntry*>().swap(order_);
  event_types_ = Interned();
  customers_ = Interned();
  counters_ = StoreCounters();
}

}  // namespace mock
}  // namespace hyperline
