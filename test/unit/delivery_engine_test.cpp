// Tests for the delivery engine (src/core/delivery), on a fake clock and a
// fake transport. A small in-memory outbox (FakeOutbox) does what the worker's
// SQL does (src/pg/outbox_store.cpp), and Sim runs the worker's loop
// (src/pg/delivery_worker.cpp) in fake time, so that behaviours the TAP tests
// could only show by waiting on the wall clock run here in microseconds.
#include "core/delivery/engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "core/delivery/request.hpp"

namespace hyperline::delivery {
namespace {

using std::chrono::milliseconds;

// --- fakes -------------------------------------------------------------------

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(now_ - start_);
  }
  void Advance(milliseconds d) { now_ += d; }
  void AdvanceTo(TimePoint t) { now_ = std::max(now_, t); }
  int64_t ElapsedMs() const { return std::chrono::duration_cast<milliseconds>(now_ - start_).count(); }

 private:
  TimePoint start_ = TimePoint{} + std::chrono::hours(1);
  TimePoint now_ = start_;
};

// Answers each request with what `responder` says, `latency` after it started.
class FakeTransport final : public Transport {
 public:
  struct Sent {
    HttpRequest request;
    TimePoint started;
    TimePoint answered;  // time the answer became available
  };
  using Responder = std::function<HttpResponse(const HttpRequest&)>;

  explicit FakeTransport(const FakeClock& clock) : clock_(clock) {}

  void Start(HttpRequest request) override {
    TimePoint at = clock_.Now() + latency;
    if (responder) {
      HttpResponse r = responder(request);
      r.tag = request.tag;
      pending_.push_back({at, r});
    }
    sent.push_back({request, clock_.Now(), at});
  }
  void Poll(int) override {}
  size_t TakeCompleted(std::vector<HttpResponse>& out) override {
    size_t n = 0;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->first <= clock_.Now()) {
        out.push_back(it->second);
        it = pending_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }
  void CancelAll() override {
    pending_.clear();
    ++cancelled;
  }
  void SetMaxConnections(int n) override { max_connections = n; }

  // Answers an open request by hand (tests without a responder).
  void Answer(uint64_t tag, HttpResponse r) {
    r.tag = tag;
    pending_.push_back({clock_.Now(), r});
  }
  std::optional<TimePoint> NextAnswer() const {
    std::optional<TimePoint> t;
    for (const auto& p : pending_) {
      if (!t || p.first < *t) t = p.first;
    }
    return t;
  }
  size_t Unanswered() const { return pending_.size(); }

  Responder responder;
  milliseconds latency{5};
  std::vector<Sent> sent;
  int max_connections = 0;
  int cancelled = 0;

 private:
  const FakeClock& clock_;
  std::vector<std::pair<TimePoint, HttpResponse>> pending_;
};

HttpResponse Status(int status, std::string body = "", std::string retry_after = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

std::string Event(const std::string& record_id, const std::string& extra = "") {
  return R"({"customer_id":"cus_1","event_type":"api_call","timestamp":0,"record":{"id":")" +
         record_id + "\"" + extra + "}}";
}

// The record ids a request carried (batch, single or delete body).
std::vector<std::string> RecordIds(const HttpRequest& req) {
  std::vector<std::string> ids;
  size_t at = 0;
  const std::string marker = R"("record":{"id":")";
  while ((at = req.body.find(marker, at)) != std::string::npos) {
    at += marker.size();
    ids.push_back(req.body.substr(at, req.body.find('"', at) - at));
  }
  if (req.method == "DELETE") {
    size_t open = req.body.find('[');
    size_t close = req.body.find(']');
    std::string list = req.body.substr(open + 1, close - open - 1);
    size_t i = 0;
    while ((i = list.find('"', i)) != std::string::npos) {
      size_t e = list.find('"', i + 1);
      ids.push_back(list.substr(i + 1, e - i - 1));
      i = e + 1;
    }
  }
  return ids;
}

// hyperline.outbox and hyperline._destinations, as the worker's SQL sees them.
class FakeOutbox {
 public:
  struct Row {
    int64_t id = 0;
    std::string model;
    std::string event_key;
    RequestKind kind = RequestKind::kPost;
    std::optional<std::string> payload;
    std::string destination;
    OutboxStatus status = OutboxStatus::kPending;
    int attempts = 0;
    TimePoint next_attempt_at{};
    TimePoint created_at{};
    std::optional<TimePoint> delivered_at;
    std::optional<int> http_status;
    std::optional<std::string> last_error;
  };

  explicit FakeOutbox(const FakeClock& clock) : clock_(clock) {}

  DestinationConfig& AddDestination(const std::string& name, int batch_size = 1) {
    DestinationConfig& d = destinations[name];
    d.name = name;
    d.base_url = "https://ingest.example";
    d.api_key = "sk_live_secret";
    d.batch_size = batch_size;
    return d;
  }

  // An event of `key`; the payload's record id is `record_id` (default: key).
  int64_t Insert(const std::string& key, std::string destination = "hyperline",
                 std::optional<std::string> payload = std::nullopt,
                 RequestKind kind = RequestKind::kPost, std::string model = "m") {
    Row r;
    r.id = next_id_++;
    r.model = std::move(model);
    r.event_key = key;
    r.kind = kind;
    r.payload = payload ? std::move(payload) : std::optional<std::string>(Event(key));
    r.destination = std::move(destination);
    r.created_at = r.next_attempt_at = clock_.Now();
    rows.push_back(r);
    return r.id;
  }
  void InsertNull(const std::string& key) {
    Insert(key);
    rows.back().payload.reset();
  }

  std::vector<DestinationConfig> Destinations() const {
    std::vector<DestinationConfig> out;
    for (const auto& [name, d] : destinations) out.push_back(d);
    return out;
  }

  // The claim statement: per group, due pending rows of its destinations in
  // id order, at most `limit`, and payload bytes up to the budget.
  Claimed Claim(const ClaimPlan& plan) {
    Claimed c;
    for (const ClaimGroup& g : plan.groups) {
      int got = 0;
      int64_t bytes = 0;
      for (Row& r : rows) {
        if (got >= g.limit) break;
        if (r.status != OutboxStatus::kPending || r.next_attempt_at > clock_.Now()) continue;
        if (std::find(g.destinations.begin(), g.destinations.end(), r.destination) ==
            g.destinations.end()) {
          continue;
        }
        if (bytes >= plan.byte_budget) break;
        bytes += r.payload ? static_cast<int64_t>(r.payload->size()) : 0;
        r.status = OutboxStatus::kSending;
        ++got;
        ClaimedRow row;
        row.id = r.id;
        row.model = r.model;
        row.event_key = r.event_key;
        row.kind = r.kind;
        row.payload = r.payload;
        row.destination = r.destination;
        row.attempts = r.attempts;
        c.rows.push_back(std::move(row));
      }
      if (got >= g.limit || bytes >= plan.byte_budget) c.filled = true;
    }
    std::reverse(c.rows.begin(), c.rows.end());  // RETURNING order is not id order
    return c;
  }

  void Apply(const ClaimDecisions& d) {
    for (const StatusChange& c : d.changes) {
      for (int64_t id : c.ids) {
        Row& r = Get(id);
        r.status = c.status;
        if (c.error) r.last_error = c.error;
      }
    }
    for (const KeyRef& k : d.supersede_older) {
      for (Row& r : rows) {
        if (r.model == k.model && r.event_key == k.event_key &&
            r.status == OutboxStatus::kPending && r.next_attempt_at > r.created_at && r.id < k.id) {
          r.status = OutboxStatus::kSuperseded;
        }
      }
    }
  }

  void Apply(const Records& records) {
    TimePoint now = clock_.Now();
    for (const OutcomeGroup& g : records.outcomes) {
      for (int64_t id : g.ids) {
        Row& r = Get(id);
        if (r.status != OutboxStatus::kSending) continue;
        r.status = g.status;
        r.attempts += g.attempts_inc;
        if (g.details == Details::kReplace) {
          r.http_status = g.http_status;
          r.last_error = g.error;
        }
        if (g.status == OutboxStatus::kDelivered) r.delivered_at = now;
        if (g.delay_ms) {
          auto d = destinations.find(r.destination);
          if (g.unless_key_version &&
              (d == destinations.end() || d->second.key_version != *g.unless_key_version)) {
            r.next_attempt_at = now;
          } else {
            r.next_attempt_at = now + milliseconds(*g.delay_ms);
          }
        }
      }
    }
    for (const DestinationChange& c : records.destinations) {
      auto d = destinations.find(c.name);
      if (d == destinations.end() || d->second.key_version != c.key_version) continue;
      d->second.state = c.state;
      d->second.last_error = c.last_error;
    }
  }

  // alter_destination(name, api_key => key).
  void AlterKey(const std::string& name, const std::string& key) {
    DestinationConfig& d = destinations.at(name);
    d.api_key = key;
    d.key_version++;
    d.state = DestinationState::kActive;
    d.last_error.reset();
    for (Row& r : rows) {
      if (r.status == OutboxStatus::kPending && r.destination == name &&
          r.next_attempt_at > clock_.Now()) {
        r.next_attempt_at = clock_.Now();
      }
    }
  }

  Row& Get(int64_t id) {
    for (Row& r : rows) {
      if (r.id == id) return r;
    }
    throw std::out_of_range("no row " + std::to_string(id));
  }
  Row& ByKey(const std::string& key) {
    for (Row& r : rows) {
      if (r.event_key == key) return r;
    }
    throw std::out_of_range("no row " + key);
  }
  size_t Count(OutboxStatus s) const {
    return static_cast<size_t>(
        std::count_if(rows.begin(), rows.end(), [s](const Row& r) { return r.status == s; }));
  }
  bool Drained() const {
    return Count(OutboxStatus::kPending) == 0 && Count(OutboxStatus::kSending) == 0;
  }

  std::vector<Row> rows;
  std::map<std::string, DestinationConfig> destinations;

 private:
  const FakeClock& clock_;
  int64_t next_id_ = 1;
};

Settings TestSettings() {
  Settings s;
  s.retry_base_ms = 50;
  s.retry_max_ms = 500;
  s.max_attempts = 12;
  s.user_agent = "pg_hyperline/test";
  return s;
}

// The worker's loop (src/pg/delivery_worker.cpp) in fake time.
struct Sim {
  explicit Sim(Settings settings = TestSettings(), uint64_t seed = 1)
      : transport(clock), db(clock), engine(std::move(settings), clock, transport, seed) {
    transport.responder = [](const HttpRequest&) { return Status(201); };
  }

  // One turn of the loop.
  void Turn() {
    engine.Pump(0);
    wake |= engine.TakeDue();
    bool claim = (wake || clock.Now() >= next_poll || engine.MoreDue()) && engine.HasRoom();
    if (engine.RecordDue(claim)) {
      db.Apply(engine.TakeRecords());
      engine.Recorded();
    }
    if (claim) {
      wake = false;
      ClaimPlan plan = engine.PlanClaim(db.Destinations());
      if (!plan.groups.empty()) db.Apply(engine.Admit(db.Claim(plan)));
      next_poll = clock.Now() + poll;
    }
    engine.StartRequests();
  }

  // Runs turns, advancing the clock to the next thing to do, until `done`
  // or `limit` of fake time has passed. Returns whether `done` held.
  bool RunUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(60000)) {
    TimePoint end = clock.Now() + limit;
    for (int turns = 0; turns < 100000; ++turns) {
      Turn();
      if (done()) return true;
      // As the worker: the poll matters only while a claim could take rows.
      TimePoint next = engine.HasRoom() ? next_poll : end + milliseconds(1);
      if (auto w = engine.NextWake()) next = std::min(next, *w);
      if (auto a = transport.NextAnswer()) next = std::min(next, *a);
      if (next > end) return false;
      clock.AdvanceTo(next);
    }
    ADD_FAILURE() << "the loop did not settle";
    return false;
  }
  bool Drain(milliseconds limit = milliseconds(60000)) {
    return RunUntil([this] { return db.Drained() && !engine.HasOutcomes(); }, limit);
  }

  FakeClock clock;
  FakeTransport transport;
  FakeOutbox db;
  Engine engine;
  bool wake = true;
  milliseconds poll{1000};
  TimePoint next_poll = clock.Now();
};

// --- claims, shares, per-key order -------------------------------------------

TEST(DeliveryEngine, DeliversBatchesAndSingles) {
  Sim sim;
  sim.db.AddDestination("hyperline", 100);
  sim.db.AddDestination("single", 1);
  for (int i = 1; i <= 250; ++i) sim.db.Insert("b" + std::to_string(i));
  for (int i = 1; i <= 3; ++i) sim.db.Insert("s" + std::to_string(i), "single");
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 253u);
  ASSERT_EQ(sim.transport.sent.size(), 6u);  // 100 + 100 + 50, and three singles
  int batches = 0;
  for (const auto& s : sim.transport.sent) {
    EXPECT_EQ(s.request.method, "POST");
    EXPECT_EQ(s.request.bearer_token, "sk_live_secret");
    EXPECT_EQ(s.request.user_agent, "pg_hyperline/test");
    if (s.request.url == "https://ingest.example/v1/events/batch") {
      ++batches;
      EXPECT_EQ(s.request.body.front(), '[');
    } else {
      EXPECT_EQ(s.request.url, "https://ingest.example/v1/events");
      EXPECT_EQ(s.request.body.front(), '{');
    }
  }
  EXPECT_EQ(batches, 3);
  for (const auto& r : sim.db.rows) {
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(r.http_status, 201);
    EXPECT_TRUE(r.delivered_at.has_value());
  }
}

TEST(DeliveryEngine, SharesAcrossDestinations) {
  Sim sim;
  sim.db.AddDestination("open", 100);
  sim.db.AddDestination("limited", 10).max_requests_per_second = 2.5;
  sim.db.AddDestination("refused", 5).state = DestinationState::kUnauthorized;
  sim.db.AddDestination("nokey", 5).api_key.reset();
  ClaimPlan plan = sim.engine.PlanClaim(sim.db.Destinations());
  EXPECT_EQ(plan.byte_budget, 2 * sim.engine.settings().max_request_bytes);
  std::map<std::string, int> limits;
  std::vector<std::string> shared_with_open;
  for (const ClaimGroup& g : plan.groups) {
    if (g.destinations.size() == 1) limits[g.destinations[0]] = g.limit;
    if (std::find(g.destinations.begin(), g.destinations.end(), "open") != g.destinations.end()) {
      shared_with_open = g.destinations;
    }
  }
  EXPECT_EQ(limits["limited"], 50);  // two seconds of requests: ceil(2.5 * 2) batches of 10
  EXPECT_EQ(limits["refused"], 5);   // one probe request
  EXPECT_EQ(limits["open"], 5000);   // hyperline.claim_batch
  EXPECT_EQ(shared_with_open, std::vector<std::string>{"open"});  // no key: not claimed

  // Rows beyond a share go back to pending; rows held count against it.
  for (int i = 0; i < 8; ++i) sim.db.Insert("r" + std::to_string(i), "refused");
  Claimed claimed = sim.db.Claim(plan);
  ASSERT_EQ(claimed.rows.size(), 5u);
  ClaimDecisions d = sim.engine.Admit(claimed);
  EXPECT_EQ(d.taken, 5u);
  plan = sim.engine.PlanClaim(sim.db.Destinations());
  for (const ClaimGroup& g : plan.groups) {
    EXPECT_EQ(std::count(g.destinations.begin(), g.destinations.end(), "refused"), 0)
        << "a destination whose share is held is not claimed";
  }
}

TEST(DeliveryEngine, OverShareRowsArePutBack) {
  Sim sim;
  sim.db.AddDestination("refused", 2).state = DestinationState::kUnauthorized;
  ClaimPlan plan = sim.engine.PlanClaim(sim.db.Destinations());
  Claimed c;
  for (int i = 1; i <= 4; ++i) {
    ClaimedRow r;
    r.id = i;
    r.model = "m";
    r.event_key = "k" + std::to_string(i);
    r.payload = Event(r.event_key);
    r.destination = "refused";
    c.rows.push_back(r);
  }
  ClaimDecisions d = sim.engine.Admit(c);
  EXPECT_EQ(d.taken, 2u);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].status, OutboxStatus::kPending);
  EXPECT_EQ(d.changes[0].ids, (std::vector<int64_t>{3, 4}));
}

TEST(DeliveryEngine, PerKeyOrderSupersedesOlderRowsOfAClaim) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":1)"));
  sim.db.Insert("k2", "hyperline", Event("k2", R"(,"v":1)"));
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":2)"));
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Get(1).status, OutboxStatus::kSuperseded);
  EXPECT_EQ(sim.db.Get(2).status, OutboxStatus::kDelivered);
  EXPECT_EQ(sim.db.Get(3).status, OutboxStatus::kDelivered);
  ASSERT_EQ(sim.transport.sent.size(), 2u);
  for (const auto& s : sim.transport.sent) {
    EXPECT_EQ(s.request.body.find(R"("v":1)") != std::string::npos, RecordIds(s.request)[0] == "k2");
  }
}

TEST(DeliveryEngine, KeyInFlightWaitsThenGoes) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.transport.latency = milliseconds(300);
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":1)"));
  sim.Turn();  // claims and sends v1
  ASSERT_EQ(sim.transport.sent.size(), 1u);
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":2)"));
  sim.wake = true;
  sim.clock.Advance(milliseconds(10));
  sim.Turn();  // v2 is claimed while v1 is in flight: it waits
  EXPECT_EQ(sim.transport.sent.size(), 1u);
  EXPECT_EQ(sim.db.Get(2).status, OutboxStatus::kPending);
  EXPECT_EQ(sim.db.Get(1).status, OutboxStatus::kSending);
  ASSERT_TRUE(sim.Drain(milliseconds(5000)));
  // v2 went as soon as v1 was recorded, not at the next poll.
  ASSERT_EQ(sim.transport.sent.size(), 2u);
  EXPECT_LT(sim.transport.sent[1].started - sim.transport.sent[0].answered, milliseconds(100));
  EXPECT_EQ(sim.db.Get(1).status, OutboxStatus::kDelivered);
  EXPECT_EQ(sim.db.Get(2).status, OutboxStatus::kDelivered);
}

TEST(DeliveryEngine, NewerRowSupersedesAnOlderOneWaitingForARetry) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  int calls = 0;
  sim.transport.responder = [&calls](const HttpRequest&) {
    return ++calls == 1 ? Status(503) : Status(201);
  };
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":1)"));
  ASSERT_TRUE(sim.RunUntil([&] { return sim.db.Get(1).status == OutboxStatus::kPending &&
                                        sim.db.Get(1).attempts == 1; }));
  sim.db.Insert("k1", "hyperline", Event("k1", R"(,"v":2)"));
  sim.wake = true;
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Get(1).status, OutboxStatus::kSuperseded);
  EXPECT_EQ(sim.db.Get(2).status, OutboxStatus::kDelivered);
  ASSERT_EQ(sim.transport.sent.size(), 2u) << "v1 is never sent again after v2";
  EXPECT_NE(sim.transport.sent[1].request.body.find(R"("v":2)"), std::string::npos);
}

// 40 versions of 3 keys written while 40 % of the requests fail: per key, no
// two requests at once and never an older version after a newer one.
TEST(DeliveryEngine, PerKeyOrderUnderFailures) {
  Settings s = TestSettings();
  s.max_attempts = 100;
  Sim sim(s, 7);
  sim.db.AddDestination("hyperline", 1);
  sim.transport.latency = milliseconds(15);  // longer than between two writes
  std::mt19937 dice(3);
  sim.transport.responder = [&dice](const HttpRequest&) {
    return std::uniform_real_distribution<double>(0, 1)(dice) < 0.4 ? Status(503) : Status(201);
  };
  for (int v = 1; v <= 40; ++v) {
    for (const char* k : {"a", "b", "c"}) {
      sim.db.Insert(k, "hyperline", Event(k, R"(,"v":)" + std::to_string(v)));
    }
    sim.wake = true;
    sim.RunUntil([] { return false; }, milliseconds(10));
  }
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Count(OutboxStatus::kFailed), 0u);
  std::map<std::string, int> last_started, newest_sent;
  std::map<std::string, TimePoint> busy_until;
  for (const auto& sent : sim.transport.sent) {
    std::string key = RecordIds(sent.request)[0];
    const std::string& body = sent.request.body;
    int v = std::stoi(body.substr(body.find(R"("v":)") + 4));
    EXPECT_GE(sent.started, busy_until[key]) << key << ": two requests at once";
    busy_until[key] = sent.answered;
    EXPECT_GE(v, newest_sent[key]) << key << ": version " << v << " after " << newest_sent[key];
    newest_sent[key] = std::max(newest_sent[key], v);
  }
  for (const char* k : {"a", "b", "c"}) EXPECT_EQ(newest_sent[k], 40) << k;
}

// --- answers -------------------------------------------------------------------

TEST(DeliveryEngine, PartialBatchFailureFailsOnlyTheListedEvents) {
  Sim sim;
  sim.db.AddDestination("hyperline", 100);
  for (int i = 1; i <= 10; ++i) sim.db.Insert("p" + std::to_string(i));
  sim.transport.responder = [](const HttpRequest&) {
    return Status(201, R"({"events_created":[],"events_failed":[)"
                       R"({"record":{"id":"p3"},"error":"customer not found sk_live_secret"},)"
                       R"({"record":{"id":"p7"},"error":"bad timestamp"}]})");
  };
  ASSERT_TRUE(sim.Drain());
  for (const auto& r : sim.db.rows) {
    bool rejected = r.event_key == "p3" || r.event_key == "p7";
    EXPECT_EQ(r.status, rejected ? OutboxStatus::kFailed : OutboxStatus::kDelivered) << r.event_key;
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(r.http_status, 201);
  }
  EXPECT_EQ(*sim.db.ByKey("p3").last_error,
            "rejected by the destination: customer not found [redacted]");
  EXPECT_EQ(*sim.db.ByKey("p7").last_error, "rejected by the destination: bad timestamp");
  EXPECT_EQ(sim.transport.sent.size(), 1u);
}

TEST(DeliveryEngine, OtherClientErrorsFailAtOnceWithTheAnswer) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.db.Insert("bad1");
  sim.transport.responder = [](const HttpRequest&) {
    return Status(400, R"({"message":"customer_id is required"})");
  };
  ASSERT_TRUE(sim.Drain());
  const auto& r = sim.db.ByKey("bad1");
  EXPECT_EQ(r.status, OutboxStatus::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(*r.last_error, R"(HTTP 400: {"message":"customer_id is required"})");
}

TEST(DeliveryEngine, BackoffDelaysStayWithinJitterBounds) {
  Settings s = TestSettings();
  s.retry_base_ms = 1000;
  s.retry_max_ms = 8000;
  s.max_attempts = 100;
  for (int attempts : {0, 1, 2, 5}) {
    FakeClock clock;
    FakeTransport transport(clock);
    Engine engine(s, clock, transport, 42 + attempts);
    DestinationConfig d;
    d.name = "hyperline";
    d.base_url = "https://x";
    d.api_key = "k";
    d.batch_size = 1;
    engine.PlanClaim({d});
    Claimed c;
    for (int i = 1; i <= 200; ++i) {
      ClaimedRow r;
      r.id = i;
      r.model = "m";
      r.event_key = "k" + std::to_string(i);
      r.payload = Event(r.event_key);
      r.destination = "hyperline";
      r.attempts = attempts;
      c.rows.push_back(r);
    }
    s.max_concurrent_requests = 200;
    engine.SetSettings(s);
    engine.Admit(c);
    engine.StartRequests();
    ASSERT_EQ(transport.sent.size(), 200u);
    for (const auto& sent : transport.sent) transport.Answer(sent.request.tag, Status(503));
    engine.Pump(0);
    Records records = engine.TakeRecords();
    int64_t ceiling = BackoffCeilingMs(attempts + 1, s.retry_base_ms, s.retry_max_ms);
    std::set<int64_t> delays;
    size_t rows = 0;
    for (const OutcomeGroup& g : records.outcomes) {
      EXPECT_EQ(g.status, OutboxStatus::kPending);
      EXPECT_EQ(g.attempts_inc, 1);
      EXPECT_EQ(g.http_status, 503);
      ASSERT_TRUE(g.delay_ms.has_value());
      EXPECT_GE(*g.delay_ms, ceiling / 2) << "attempt " << attempts + 1;
      EXPECT_LE(*g.delay_ms, ceiling) << "attempt " << attempts + 1;
      delays.insert(*g.delay_ms);
      rows += g.ids.size();
    }
    EXPECT_EQ(rows, 200u);
    EXPECT_GT(delays.size(), 50u) << "jitter spreads the retries";
  }
}

TEST(DeliveryEngine, RetriesUntilMaxAttemptsThenFails) {
  Settings s = TestSettings();
  s.max_attempts = 4;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 100);
  for (int i = 1; i <= 3; ++i) sim.db.Insert("x" + std::to_string(i));
  sim.transport.responder = [](const HttpRequest&) { return Status(500, "boom"); };
  ASSERT_TRUE(sim.Drain());
  for (const auto& r : sim.db.rows) {
    EXPECT_EQ(r.status, OutboxStatus::kFailed);
    EXPECT_EQ(r.attempts, 4);
    EXPECT_EQ(*r.last_error, "gave up after 4 attempts: HTTP 500: boom");
  }
  ASSERT_EQ(sim.transport.sent.size(), 4u);
  // Backoff between attempts: 50, 100, 200 ms ceilings, at least half each.
  EXPECT_GE(sim.transport.sent[1].started - sim.transport.sent[0].answered, milliseconds(25));
  EXPECT_GE(sim.transport.sent[3].started - sim.transport.sent[2].answered, milliseconds(100));
}

TEST(DeliveryEngine, RetryAfterIsHonouredBeyondRetryMax) {
  Sim sim;  // retry_max_ms 500
  sim.db.AddDestination("hyperline", 100);
  sim.db.AddDestination("other", 1);
  for (int i = 1; i <= 5; ++i) sim.db.Insert("q" + std::to_string(i));
  int calls = 0;
  sim.transport.responder = [&calls](const HttpRequest&) {
    return ++calls == 1 ? Status(429, R"({"message":"slow down"})", "2") : Status(201);
  };
  sim.transport.latency = milliseconds(1);
  ASSERT_TRUE(sim.RunUntil([&] { return calls >= 1 && !sim.engine.HasOutcomes() &&
                                        sim.db.ByKey("q1").attempts == 1; }));
  TimePoint refused = sim.transport.sent[0].answered;
  const auto& q1 = sim.db.ByKey("q1");
  EXPECT_EQ(q1.status, OutboxStatus::kPending);
  EXPECT_EQ(q1.http_status, 429);
  EXPECT_GE(q1.next_attempt_at - refused, milliseconds(1990));
  // The destination is paused: nothing is sent to it for two seconds, while
  // another destination is served.
  sim.db.Insert("o1", "other");
  sim.wake = true;
  ASSERT_TRUE(sim.Drain());
  ASSERT_EQ(sim.transport.sent.size(), 3u);  // the batch, refused; other; the batch again
  for (const auto& sent : sim.transport.sent) {
    if (RecordIds(sent.request)[0][0] == 'q' && sent.started != sim.transport.sent[0].started) {
      EXPECT_GE(sent.started - refused, milliseconds(2000)) << "sent during the Retry-After";
    }
  }
  EXPECT_LT(sim.db.ByKey("o1").delivered_at.value() - refused, milliseconds(1000));
  for (int i = 1; i <= 5; ++i) {
    const auto& r = sim.db.ByKey("q" + std::to_string(i));
    EXPECT_EQ(r.status, OutboxStatus::kDelivered);
    EXPECT_EQ(r.attempts, 2);
    EXPECT_GE(r.delivered_at.value() - refused, milliseconds(2000));
  }
}

TEST(DeliveryEngine, RetryAfterAsHttpDate) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.db.Insert("q1");
  int calls = 0;
  // 1700000003 s: three seconds after the fake wall clock's start.
  sim.transport.responder = [&calls](const HttpRequest&) {
    return ++calls == 1 ? Status(503, "", "Tue, 14 Nov 2023 22:13:23 GMT") : Status(201);
  };
  ASSERT_TRUE(sim.Drain());
  EXPECT_GE(sim.db.ByKey("q1").delivered_at.value() - sim.transport.sent[0].answered,
            milliseconds(2900));
}

TEST(DeliveryEngine, UnauthorizedWaitsForANewKeyWithoutCountingAttempts) {
  Settings s = TestSettings();
  s.retry_max_ms = 600000;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 50).api_key = "wrong_key_4711";
  for (int i = 1; i <= 200; ++i) sim.db.Insert("u" + std::to_string(i));
  sim.transport.responder = [](const HttpRequest& req) {
    return req.bearer_token == "test_key" ? Status(201)
                                           : Status(401, "bad key " + req.bearer_token);
  };
  sim.RunUntil([] { return false; }, milliseconds(10000));
  const DestinationConfig& d = sim.db.destinations.at("hyperline");
  EXPECT_EQ(d.state, DestinationState::kUnauthorized);
  EXPECT_EQ(*d.last_error, "HTTP 401: bad key [redacted]");
  // The first claim (the destination still active) sends its four batches at
  // once; after the 401s, nothing until retry_max_ms or a new key.
  EXPECT_EQ(sim.transport.sent.size(), 4u);
  for (const auto& sent : sim.transport.sent) {
    EXPECT_EQ(sent.started, sim.transport.sent[0].started) << "not hammered";
  }
  EXPECT_EQ(sim.db.Count(OutboxStatus::kPending), 200u);
  EXPECT_EQ(sim.db.Count(OutboxStatus::kFailed), 0u);
  for (const auto& r : sim.db.rows) EXPECT_EQ(r.attempts, 0) << "401 is not an attempt";

  // A new key: everything goes at once.
  TimePoint fixed = sim.clock.Now();
  sim.db.AlterKey("hyperline", "test_key");
  sim.wake = true;
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 200u);
  for (const auto& r : sim.db.rows) {
    EXPECT_EQ(r.attempts, 1);
    EXPECT_LT(r.delivered_at.value() - fixed, milliseconds(200));
  }
  EXPECT_EQ(sim.db.destinations.at("hyperline").state, DestinationState::kActive);
  EXPECT_FALSE(sim.db.destinations.at("hyperline").last_error.has_value());
}

TEST(DeliveryEngine, UnauthorizedDestinationIsProbedEveryRetryMax) {
  Settings s = TestSettings();
  s.retry_max_ms = 1000;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 10);
  for (int i = 1; i <= 30; ++i) sim.db.Insert("u" + std::to_string(i));
  sim.transport.responder = [](const HttpRequest&) { return Status(403); };
  sim.RunUntil([] { return false; }, milliseconds(3500));
  // Three batches at first (the destination was active), then one probe of
  // one batch every retry_max_ms.
  ASSERT_EQ(sim.transport.sent.size(), 6u);
  for (size_t i = 3; i < sim.transport.sent.size(); ++i) {
    EXPECT_GE(sim.transport.sent[i].started - sim.transport.sent[i - 1].answered,
              milliseconds(995));
    EXPECT_LE(sim.transport.sent[i].started - sim.transport.sent[i - 1].answered,
              milliseconds(1100));
    EXPECT_EQ(RecordIds(sim.transport.sent[i].request).size(), 10u) << "one batch per probe";
  }
  EXPECT_EQ(sim.db.Count(OutboxStatus::kFailed), 0u);
}

TEST(DeliveryEngine, TimeoutsAreRetriedWithBackoff) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1).timeout_ms = 1234;
  sim.db.Insert("t1");
  int calls = 0;
  sim.transport.responder = [&calls](const HttpRequest&) {
    HttpResponse r;
    if (++calls == 1) {
      r.error = "Operation timed out after 1234 milliseconds with 0 bytes received";
      r.timed_out = true;
      return r;
    }
    return Status(201);
  };
  sim.transport.latency = milliseconds(1234);
  ASSERT_TRUE(sim.RunUntil([&] { return sim.db.ByKey("t1").attempts == 1; }));
  EXPECT_EQ(sim.transport.sent[0].request.timeout_ms, 1234);
  const auto& t1 = sim.db.ByKey("t1");
  EXPECT_EQ(t1.status, OutboxStatus::kPending);
  EXPECT_FALSE(t1.http_status.has_value());
  EXPECT_EQ(*t1.last_error, "Operation timed out after 1234 milliseconds with 0 bytes received");
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.ByKey("t1").status, OutboxStatus::kDelivered);
  EXPECT_EQ(sim.db.ByKey("t1").attempts, 2);
}

// --- rates and limits ------------------------------------------------------------

TEST(DeliveryEngine, MaxRequestsPerSecondIsKept) {
  Sim sim;
  sim.db.AddDestination("slow", 1).max_requests_per_second = 4;
  for (int i = 1; i <= 12; ++i) sim.db.Insert("rl" + std::to_string(i), "slow");
  ASSERT_TRUE(sim.Drain());
  ASSERT_EQ(sim.transport.sent.size(), 12u);
  // A token bucket of 4 per second (burst 4): at most 4 + 4t requests start
  // within t seconds of the first.
  TimePoint first = sim.transport.sent[0].started;
  for (size_t i = 0; i < 12; ++i) {
    auto since = sim.transport.sent[i].started - first;
    double allowed = 4 + 4 * std::chrono::duration<double>(since).count();
    EXPECT_LE(static_cast<double>(i + 1), allowed + 1e-9) << "request " << i + 1;
    // ... and each goes as soon as a token is there, not at the next poll (1 s).
    if (i > 0) {
      EXPECT_LE(sim.transport.sent[i].started - sim.transport.sent[i - 1].started,
                milliseconds(260));
    }
  }
  EXPECT_GE(sim.transport.sent[11].started - first, milliseconds(2000));
}

TEST(DeliveryEngine, ConcurrencyIsLimited) {
  Settings s = TestSettings();
  s.max_concurrent_requests = 3;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 1);
  for (int i = 1; i <= 10; ++i) sim.db.Insert("c" + std::to_string(i));
  sim.transport.latency = milliseconds(100);
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.transport.max_connections, 3);
  for (const auto& a : sim.transport.sent) {
    int open = 0;
    for (const auto& b : sim.transport.sent) {
      if (b.started <= a.started && a.started < b.answered) ++open;
    }
    EXPECT_LE(open, 3);
  }
}

TEST(DeliveryEngine, ClaimsStopWhileTheEngineHoldsEnough) {
  Settings s = TestSettings();
  s.claim_batch = 10;
  s.max_request_bytes = 1000;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 100);
  std::string big(300, 'x');
  for (int i = 1; i <= 20; ++i) {
    sim.db.Insert("k" + std::to_string(i), "hyperline",
                  Event("k" + std::to_string(i), R"(,"pad":")" + big + "\""));
  }
  ClaimPlan plan = sim.engine.PlanClaim(sim.db.Destinations());
  EXPECT_EQ(plan.byte_budget, 2000);
  Claimed c = sim.db.Claim(plan);
  EXPECT_EQ(c.rows.size(), 6u) << "the byte budget stops the claim";
  EXPECT_TRUE(c.filled);
  sim.db.Apply(sim.engine.Admit(c));
  EXPECT_GE(sim.engine.HeldBytes(), 2000);
  EXPECT_FALSE(sim.engine.HasRoom());
  EXPECT_TRUE(sim.engine.MoreDue());
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 20u);
}

TEST(DeliveryEngine, DeferredRowsGoBackToPending) {
  Sim sim;
  sim.db.AddDestination("hyperline", 10);
  sim.engine.PlanClaim(sim.db.Destinations());
  Claimed c;
  for (int i = 1; i <= 3; ++i) {
    ClaimedRow r;
    r.id = i;
    r.model = "m";
    r.event_key = "k" + std::to_string(i);
    r.destination = "hyperline";
    r.payload = Event(r.event_key);
    if (i == 3) {
      r.payload.reset();
      r.deferred = true;
    }
    c.rows.push_back(r);
  }
  c.filled = true;
  ClaimDecisions d = sim.engine.Admit(c);
  EXPECT_EQ(d.taken, 2u);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].status, OutboxStatus::kPending);
  EXPECT_EQ(d.changes[0].ids, std::vector<int64_t>{3});
  EXPECT_TRUE(sim.engine.MoreDue());
}

TEST(DeliveryEngine, NullPayloadFails) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.db.InsertNull("n1");
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.ByKey("n1").status, OutboxStatus::kFailed);
  EXPECT_EQ(*sim.db.ByKey("n1").last_error, "nothing to send: the payload is NULL");
  EXPECT_TRUE(sim.transport.sent.empty());
}

// --- oversized events and 413 ----------------------------------------------------

TEST(DeliveryEngine, OversizedEventFailsAloneAndBatchesKeepTheByteCap) {
  Settings s = TestSettings();
  s.max_request_bytes = 1000;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 100);
  std::string pad(200, 'x');
  for (int i = 1; i <= 10; ++i) {
    sim.db.Insert("k" + std::to_string(i), "hyperline",
                  Event("k" + std::to_string(i), R"(,"pad":")" + pad + "\""));
  }
  sim.db.Insert("huge", "hyperline", Event("huge", R"(,"pad":")" + std::string(1200, 'y') + "\""));
  ASSERT_TRUE(sim.Drain());
  const auto& huge = sim.db.ByKey("huge");
  EXPECT_EQ(huge.status, OutboxStatus::kFailed);
  EXPECT_EQ(huge.attempts, 0);
  EXPECT_NE(huge.last_error->find("more than hyperline.max_request_bytes (1000 bytes): not sent"),
            std::string::npos)
      << *huge.last_error;
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 10u);
  size_t events = 0;
  for (const auto& sent : sim.transport.sent) {
    EXPECT_LE(sent.request.body.size(), 1000u);
    EXPECT_EQ(sent.request.body.find("huge"), std::string::npos);
    events += RecordIds(sent.request).size();
  }
  EXPECT_EQ(events, 10u);
  EXPECT_GE(sim.transport.sent.size(), 3u);  // ~260 bytes each: three or four per request
}

TEST(DeliveryEngine, TooLargeAnswerSplitsTheBatch) {
  Settings s = TestSettings();
  s.max_request_bytes = 1 << 20;
  Sim sim(s);
  sim.db.AddDestination("hyperline", 100);
  for (int i = 1; i <= 7; ++i) {
    sim.db.Insert("k" + std::to_string(i), "hyperline",
                  Event("k" + std::to_string(i), R"(,"pad":")" + std::string(200, 'x') + "\""));
  }
  // One event is too large for the server on its own.
  sim.db.Insert("big", "hyperline", Event("big", R"(,"pad":")" + std::string(900, 'z') + "\""));
  for (int i = 8; i <= 9; ++i) sim.db.Insert("k" + std::to_string(i));
  // A server that takes at most 700 bytes per request.
  sim.transport.responder = [](const HttpRequest& req) {
    if (req.body.size() > 700) {
      return Status(413, R"({"message":"Request body too large"})");
    }
    return Status(201);
  };
  ASSERT_TRUE(sim.Drain());
  const auto& big = sim.db.ByKey("big");
  EXPECT_EQ(big.status, OutboxStatus::kFailed);
  EXPECT_EQ(big.http_status, 413);
  EXPECT_EQ(*big.last_error, R"(HTTP 413: {"message":"Request body too large"})");
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 9u) << "its neighbours are delivered";
  for (const auto& r : sim.db.rows) {
    // Attempts count every request that carried the row, split ones included.
    EXPECT_GE(r.attempts, 2) << r.event_key;
  }
  // Every accepted request was within the server's limit, and no request
  // repeated the one that failed (the halves are smaller each time).
  std::set<std::string> bodies;
  for (const auto& sent : sim.transport.sent) {
    EXPECT_TRUE(bodies.insert(sent.request.body).second) << "the same batch sent twice";
  }
}

TEST(DeliveryEngine, SplitHalvesKeepTheirKeysInFlight) {
  Sim sim;
  sim.db.AddDestination("hyperline", 100);
  for (int i = 1; i <= 4; ++i) sim.db.Insert("k" + std::to_string(i));
  sim.transport.responder = [](const HttpRequest& req) {
    return RecordIds(req).size() > 1 ? Status(413) : Status(201);
  };
  sim.transport.latency = milliseconds(50);
  sim.Turn();
  sim.clock.Advance(milliseconds(50));
  sim.engine.Pump(0);  // 413: the halves are queued, the rows still held
  EXPECT_EQ(sim.engine.HeldRows(), 4u);
  EXPECT_EQ(sim.engine.Queued(), 2u);
  EXPECT_FALSE(sim.engine.HasOutcomes());
  sim.db.Insert("k1");  // a newer row of a held key waits
  sim.wake = true;
  sim.Turn();
  EXPECT_EQ(sim.db.rows.back().status, OutboxStatus::kPending);
  ASSERT_TRUE(sim.Drain());
  EXPECT_EQ(sim.db.Count(OutboxStatus::kDelivered), 5u);
}

// --- deletes, reset ---------------------------------------------------------------

TEST(DeliveryEngine, DeletesAreSentAsDeleteRequests) {
  Sim sim;
  sim.db.AddDestination("hyperline", 100);
  sim.db.Insert("d1", "hyperline", std::nullopt, RequestKind::kDelete);
  sim.db.Insert("d2", "hyperline", std::nullopt, RequestKind::kDelete);
  sim.db.Insert("d3", "hyperline", R"({"record":{}})", RequestKind::kDelete);
  sim.db.Insert("p1");
  ASSERT_TRUE(sim.Drain());
  ASSERT_EQ(sim.transport.sent.size(), 2u);
  const HttpRequest* del = nullptr;
  for (const auto& s : sim.transport.sent) {
    if (s.request.method == "DELETE") del = &s.request;
  }
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->url, "https://ingest.example/v1/events");
  EXPECT_EQ(del->body, R"({"matching":"record_ids","record_ids":["d1","d2"]})");
  EXPECT_EQ(sim.db.ByKey("d3").status, OutboxStatus::kFailed);
  EXPECT_EQ(*sim.db.ByKey("d3").last_error, "cannot delete: the payload has no record.id");
}

TEST(DeliveryEngine, PlainHttpPermissionIsCarriedToTheRequest) {
  Settings s = TestSettings();
  DestinationConfig d;
  d.base_url = "http://10.0.0.1:8080";
  d.api_key = "k";
  d.timeout_ms = 777;
  HttpRequest r = MakeRequest(d, s, RequestKind::kPost, false, "{}");
  EXPECT_FALSE(r.allow_http);
  EXPECT_EQ(r.timeout_ms, 777);
  d.allow_http = true;
  EXPECT_TRUE(MakeRequest(d, s, RequestKind::kPost, false, "{}").allow_http);
  d.allow_http = false;
  s.allow_http = true;
  EXPECT_TRUE(MakeRequest(d, s, RequestKind::kDelete, true, "{}").allow_http);
  EXPECT_EQ(MakeRequest(d, s, RequestKind::kDelete, true, "{}").url,
            "http://10.0.0.1:8080/v1/events");
}

TEST(DeliveryEngine, ResetForgetsEverythingAndCancelsRequests) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  for (int i = 1; i <= 3; ++i) sim.db.Insert("r" + std::to_string(i));
  sim.transport.latency = milliseconds(1000);
  sim.Turn();
  EXPECT_EQ(sim.engine.InFlight(), 3u);
  sim.engine.Reset();
  EXPECT_EQ(sim.transport.cancelled, 1);
  EXPECT_EQ(sim.engine.InFlight(), 0u);
  EXPECT_EQ(sim.engine.HeldRows(), 0u);
  EXPECT_EQ(sim.engine.HeldBytes(), 0);
  EXPECT_FALSE(sim.engine.HasOutcomes());
  EXPECT_FALSE(sim.engine.NextWake().has_value());
}

TEST(DeliveryEngine, OutcomesAreRecordedSoonButInBulk) {
  Sim sim;
  sim.db.AddDestination("hyperline", 1);
  sim.db.Insert("a");
  sim.db.Insert("b");
  sim.transport.latency = milliseconds(5);
  sim.Turn();
  sim.clock.Advance(milliseconds(5));
  sim.engine.Pump(0);
  EXPECT_TRUE(sim.engine.HasOutcomes());
  EXPECT_TRUE(sim.engine.RecordDue(false)) << "nothing else in flight: record now";
  ASSERT_TRUE(sim.engine.NextWake().has_value());
  EXPECT_LE(*sim.engine.NextWake() - sim.clock.Now(), Engine::kRecordDelay);
}

}  // namespace
}  // namespace hyperline::delivery
