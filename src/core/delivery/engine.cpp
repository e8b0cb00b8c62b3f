// engine.cpp: the delivery engine (see engine.hpp for the vocabulary and the
// order in which the worker calls it).
#include "core/delivery/engine.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "core/delivery/request.hpp"

namespace hyperline::delivery {

namespace {

using std::chrono::milliseconds;

// Delay before a job is tried again when its destination vanished from the
// last load (dropped, or not yet seen).
constexpr int64_t kUnknownDestinationDelayMs = 1000;
// Beyond this many distinct due times the poll interval takes over.
constexpr size_t kMaxDueTimes = 10000;
// Longest last_error kept for a destination, and for a row rejected in a batch.
constexpr size_t kMaxDestinationError = 1000;
constexpr size_t kMaxRejectedError = 2000;

int64_t ToMs(TimePoint::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

std::optional<int> StatusOrNull(int status) {
  if (status == 0) return std::nullopt;
  return status;
}

}  // namespace

Engine::Engine(Settings settings, const Clock& clock, Transport& transport, uint64_t seed)
    : settings_(std::move(settings)), clock_(clock), transport_(transport), rng_(seed) {
  transport_.SetMaxConnections(std::max(1, settings_.max_concurrent_requests));
}

void Engine::SetSettings(const Settings& settings) {
  settings_ = settings;
  transport_.SetMaxConnections(std::max(1, settings_.max_concurrent_requests));
}

std::string Engine::KeyOf(const std::string& model, const std::string& event_key) {
  std::string key;
  key.reserve(model.size() + event_key.size() + 1);
  key.append(model).push_back('\x1f');
  key.append(event_key);
  return key;
}

void Engine::NoteWaiting(std::optional<int64_t> ms) {
  waiting_until_ = ms ? clock_.Now() + milliseconds(*ms + 1000) : TimePoint{};
}

long Engine::RowsHeldBy(const std::string& name) const {
  long rows = 0;
  for (const Job& j : queued_) {
    if (j.destination == name) rows += static_cast<long>(j.rows.size());
  }
  for (const auto& [tag, j] : in_flight_) {
    if (j.destination == name) rows += static_cast<long>(j.rows.size());
  }
  return rows;
}

// --- claim -----------------------------------------------------------------

ClaimPlan Engine::PlanClaim(std::vector<DestinationConfig> destinations) {
  TimePoint now = clock_.Now();
  for (auto& [name, d] : destinations_) d.seen = false;
  std::vector<std::string> eligible;
  shares_.clear();
  for (DestinationConfig& c : destinations) {
    Destination& d = destinations_[c.name];
    if (d.key_version != c.key_version) {
      // A new key: forget the pause an unauthorized answer caused.
      d.key_version = c.key_version;
      d.probe_at = {};
    }
    c.batch_size = std::clamp(c.batch_size, 1, static_cast<int>(kMaxBatchEvents));
    double rps = std::max(0.0, c.max_requests_per_second.value_or(0.0));
    d.bucket.SetRate(rps, std::max(1.0, rps), now);
    d.max_rps = rps;
    d.seen = true;
    bool has_key = c.api_key.has_value();
    d.config = std::move(c);
    bool waiting_for_key = d.probe_key_version == d.key_version && now < d.probe_at;
    if (now < d.paused_until || waiting_for_key || !has_key) continue;
    const std::string& name = d.config.name;
    // A share: an unauthorized destination probes its key with one request;
    // a rate-limited one holds two seconds of requests. Rows beyond a share
    // are never claimed, so they are not marked 'sending' only to be set back.
    long share = -1;
    if (d.config.state == DestinationState::kUnauthorized) share = d.config.batch_size;
    if (d.max_rps > 0) {
      share = std::max<long>(d.config.batch_size,
                             static_cast<long>(std::ceil(d.max_rps * 2)) * d.config.batch_size);
    }
    if (share >= 0) {
      share -= RowsHeldBy(name);
      if (share <= 0) continue;
      shares_[name] = share;
    }
    eligible.push_back(name);
  }
  for (auto it = destinations_.begin(); it != destinations_.end();) {
    it = it->second.seen ? std::next(it) : destinations_.erase(it);
  }

  long room = 2L * settings_.claim_batch - static_cast<long>(held_rows_);
  int limit = static_cast<int>(std::min<long>(settings_.claim_batch, room));
  more_due_ = false;
  keys_were_busy_ = false;
  share_freed_ = false;
  ClaimPlan plan;
  plan.byte_budget = ClaimByteBudget();
  if (eligible.empty() || limit <= 0) return plan;
  ClaimGroup unlimited;
  unlimited.limit = limit;
  for (std::string& name : eligible) {
    auto s = shares_.find(name);
    if (s == shares_.end()) {
      unlimited.destinations.push_back(std::move(name));
    } else {
      int group_limit = static_cast<int>(std::min<long>(s->second, limit));
      plan.groups.push_back(ClaimGroup{{std::move(name)}, group_limit});
    }
  }
  if (!unlimited.destinations.empty()) plan.groups.push_back(std::move(unlimited));
  return plan;
}

ClaimDecisions Engine::Admit(Claimed claimed) {
  TimePoint now = clock_.Now();
  std::vector<ClaimedRow>& rows = claimed.rows;
  std::sort(rows.begin(), rows.end(),
            [](const ClaimedRow& a, const ClaimedRow& b) { return a.id < b.id; });
  const size_t n = rows.size();
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = KeyOf(rows[i].model, rows[i].event_key);
  std::unordered_map<std::string_view, size_t> newest;
  newest.reserve(n);
  for (size_t i = 0; i < n; ++i) newest[keys[i]] = i;

  ClaimDecisions decisions;
  auto change = [&decisions](OutboxStatus status, std::optional<std::string> error, int64_t id) {
    for (StatusChange& c : decisions.changes) {
      if (c.status == status && c.error == error) {
        c.ids.push_back(id);
        return;
      }
    }
    decisions.changes.push_back(StatusChange{status, std::move(error), {id}});
  };

  // Per-key order: only the newest row of a key is sent; older ones are
  // superseded; a key already in flight waits (its newest row stays pending).
  std::vector<size_t> taken;
  taken.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const ClaimedRow& r = rows[i];
    if (newest[keys[i]] != i) {
      change(OutboxStatus::kSuperseded, std::nullopt, r.id);
      continue;
    }
    if (keys_in_flight_.count(keys[i]) != 0) {
      keys_were_busy_ = true;
      change(OutboxStatus::kPending, std::nullopt, r.id);  // waits for the older row in flight
      continue;
    }
    auto dest = destinations_.find(r.destination);
    if (r.deferred || dest == destinations_.end()) {
      change(OutboxStatus::kPending, std::nullopt, r.id);
      continue;
    }
    auto share = shares_.find(r.destination);
    if (share != shares_.end()) {
      if (share->second <= 0) {
        change(OutboxStatus::kPending, std::nullopt, r.id);  // over the destination's share
        continue;
      }
      --share->second;
    }
    if (!r.payload) {
      change(OutboxStatus::kFailed, "nothing to send: the payload is NULL", r.id);
      continue;
    }
    if (r.kind == RequestKind::kPost) {
      int64_t bytes = SingleBodyBytes(r.payload->size(), dest->second.config.batch_size > 1);
      if (bytes > settings_.max_request_bytes) {
        change(OutboxStatus::kFailed, TooLargeMessage(bytes, settings_.max_request_bytes), r.id);
        continue;
      }
    }
    taken.push_back(i);
  }
  more_due_ = claimed.filled && !taken.empty();
  decisions.taken = taken.size();

  // Why only while retries may wait: an older row of a taken key can be left
  // pending outside this claim only if it waits for a retry (due rows come in
  // id order, so older due rows are in this claim). Skipping the lookup
  // otherwise keeps a plain drain fast.
  if (!taken.empty() && now < waiting_until_) {
    decisions.supersede_older.reserve(taken.size());
    for (size_t i : taken) {
      decisions.supersede_older.push_back(KeyRef{rows[i].model, rows[i].event_key, rows[i].id});
    }
  }

  // Jobs: per destination and kind, in id order, up to batch_size rows and
  // hyperline.max_request_bytes of body.
  std::unordered_map<std::string, Job*> open_post;
  std::unordered_map<std::string, Job*> open_delete;
  for (size_t i : taken) {
    ClaimedRow& c = rows[i];
    const DestinationConfig& d = destinations_.at(c.destination).config;
    bool batch = d.batch_size > 1;
    auto len = static_cast<int64_t>(c.payload->size());
    bool is_post = c.kind == RequestKind::kPost;
    Job*& job = (is_post ? open_post : open_delete)[c.destination];
    bool fits = job != nullptr && static_cast<int>(job->rows.size()) < d.batch_size &&
                (!is_post || !batch || job->body_bytes + len + 1 <= settings_.max_request_bytes);
    if (!fits) {
      queued_.emplace_back();
      job = &queued_.back();
      job->destination = c.destination;
      job->key_version = d.key_version;
      job->kind = c.kind;
      job->batch = batch;
      job->body_bytes = batch ? 1 : 0;  // '['
      job->rows.reserve(std::min<size_t>(d.batch_size, taken.size()));
    }
    job->body_bytes += len + (batch ? 1 : 0);  // ',' or ']'
    Row row;
    row.id = c.id;
    row.model = std::move(c.model);
    row.event_key = std::move(c.event_key);
    row.payload = std::move(*c.payload);
    row.attempts = c.attempts;
    keys_in_flight_.insert(keys[i]);
    row.key = std::move(keys[i]);
    job->rows.push_back(std::move(row));
    ++held_rows_;
    held_bytes_ += len;
  }
  return decisions;
}

// --- send ------------------------------------------------------------------

void Engine::StartRequests() {
  TimePoint now = clock_.Now();
  rate_ready_.reset();
  size_t max_in_flight = static_cast<size_t>(std::max(1, settings_.max_concurrent_requests));
  for (auto it = queued_.begin(); it != queued_.end() && in_flight_.size() < max_in_flight;) {
    Job& job = *it;
    auto d = destinations_.find(job.destination);
    if (d == destinations_.end()) {
      Requeue(job, kUnknownDestinationDelayMs);
      it = queued_.erase(it);
      continue;
    }
    Destination& dest = d->second;
    if (now < dest.paused_until) {  // a 429 asked to wait
      Requeue(job, ToMs(dest.paused_until - now));
      it = queued_.erase(it);
      continue;
    }
    if (dest.probe_key_version == job.key_version && now < dest.probe_at) {
      // This key was just refused: wait for a new key or the next probe.
      Requeue(job, settings_.retry_max_ms, job.key_version);
      it = queued_.erase(it);
      continue;
    }
    if (!dest.bucket.TryTake(now)) {
      TimePoint ready = now + std::chrono::duration_cast<TimePoint::duration>(
                                  dest.bucket.WaitTime(now)) +
                        milliseconds(1);
      if (!rate_ready_ || ready < *rate_ready_) rate_ready_ = ready;
      ++it;
      continue;
    }
    std::string body;
    if (job.kind == RequestKind::kDelete) {
      std::vector<std::string> ids;
      std::vector<Row> kept;
      for (Row& r : job.rows) {
        std::optional<std::string> id = RecordIdOf(r.payload);
        if (id) {
          ids.push_back(std::move(*id));
          kept.push_back(std::move(r));
          continue;
        }
        AddOutcome(r, OutboxStatus::kFailed, Details::kReplace, std::nullopt,
                   std::string("cannot delete: the payload has no record.id"), std::nullopt,
                   std::nullopt, r.sent);
        Release({r});
      }
      job.rows = std::move(kept);
      if (job.rows.empty()) {
        it = queued_.erase(it);
        continue;
      }
      body = BuildDeleteBody(ids);
    } else if (job.batch) {
      std::vector<std::string_view> payloads;
      payloads.reserve(job.rows.size());
      for (const Row& r : job.rows) payloads.emplace_back(r.payload);
      body = BuildBatchBody(payloads);
    } else {
      body = job.rows.front().payload;
    }
    HttpRequest req = MakeRequest(dest.config, settings_, job.kind, job.batch, std::move(body));
    job.tag = next_tag_++;
    req.tag = job.tag;
    uint64_t tag = job.tag;
    in_flight_.emplace(tag, std::move(job));
    it = queued_.erase(it);
    transport_.Start(std::move(req));
  }
}

void Engine::Pump(int timeout_ms) {
  if (in_flight_.empty()) return;
  transport_.Poll(timeout_ms);
  std::vector<HttpResponse> done;
  transport_.TakeCompleted(done);
  for (HttpResponse& r : done) ProcessResponse(r);
}

void Engine::ProcessResponse(HttpResponse& response) {
  auto found = in_flight_.find(response.tag);
  if (found == in_flight_.end()) return;
  Job job = std::move(found->second);
  in_flight_.erase(found);
  auto d = destinations_.find(job.destination);
  Destination* dest = d == destinations_.end() ? nullptr : &d->second;
  static const std::string kNoKey;
  const std::string& key =
      dest != nullptr && dest->config.api_key ? *dest->config.api_key : kNoKey;
  Answer a = Classify(response.status, response.body, response.error, response.retry_after,
                      job.batch && job.kind == RequestKind::kPost, clock_.WallNow());
  std::string message = Redact(a.message, key);
  std::optional<int> http_status = StatusOrNull(response.status);
  TimePoint now = clock_.Now();
  switch (a.verdict) {
    case Verdict::kDelivered: {
      if (a.failed.empty()) {
        AddOutcomes(job.rows, OutboxStatus::kDelivered, Details::kReplace, http_status,
                    std::nullopt, std::nullopt, std::nullopt, 1);
      } else {
        // Partial failure: the events listed in events_failed fail, the rest
        // of the batch is delivered.
        std::unordered_map<std::string, std::string> rejected;
        for (FailedEvent& f : a.failed) rejected[f.record_id] = std::move(f.error);
        for (const Row& r : job.rows) {
          std::optional<std::string> id = RecordIdOf(r.payload);
          auto why = id ? rejected.find(*id) : rejected.end();
          if (why == rejected.end()) {
            AddOutcome(r, OutboxStatus::kDelivered, Details::kReplace, http_status, std::nullopt,
                       std::nullopt, std::nullopt, r.sent + 1);
          } else {
            std::string error =
                Truncate(Redact("rejected by the destination: " + why->second, key),
                         kMaxRejectedError);
            AddOutcome(r, OutboxStatus::kFailed, Details::kReplace, http_status, error,
                       std::nullopt, std::nullopt, r.sent + 1);
          }
        }
      }
      NoteDestination(job, DestinationState::kActive, std::nullopt);
      break;
    }
    case Verdict::kRetry: {
      if (response.status == 429 && a.retry_after_ms && dest != nullptr) {
        dest->paused_until = now + milliseconds(*a.retry_after_ms);
        NoteDueAt(dest->paused_until);
      }
      RetryOutcomes(job, message, a.retry_after_ms, response.status);
      if (dest != nullptr) NoteDestination(job, dest->config.state, message);
      break;
    }
    case Verdict::kFailNow:
      AddOutcomes(job.rows, OutboxStatus::kFailed, Details::kReplace, http_status, message,
                  std::nullopt, std::nullopt, 1);
      break;
    case Verdict::kTooLarge:
      if (job.rows.size() > 1) {
        // Split and send the halves next: one event too large for the server
        // never fails its neighbours (and retry() never rebuilds the batch).
        bool shared = dest != nullptr && dest->max_rps > 0;
        Bisect(std::move(job));
        if (shared) share_freed_ = true;
        return;
      }
      AddOutcomes(job.rows, OutboxStatus::kFailed, Details::kReplace, http_status, message,
                  std::nullopt, std::nullopt, 1);
      break;
    case Verdict::kUnauthorized: {
      // Nothing fails: the rows wait for a working key; the attempt is not
      // counted. They are due again at the next probe, or at once when the
      // key changes.
      AddOutcomes(job.rows, OutboxStatus::kPending, Details::kReplace, http_status, message,
                  settings_.retry_max_ms, job.key_version, 0);
      if (dest != nullptr && dest->key_version == job.key_version) {
        dest->probe_at = now + milliseconds(settings_.retry_max_ms);
        NoteDueAt(dest->probe_at);
        dest->probe_key_version = job.key_version;
      }
      NoteDestination(job, DestinationState::kUnauthorized, message);
      break;
    }
  }
  Release(job.rows);
  if (dest != nullptr &&
      (dest->max_rps > 0 || dest->config.state == DestinationState::kUnauthorized)) {
    share_freed_ = true;
  }
}

void Engine::Bisect(Job job) {
  for (Row& r : job.rows) ++r.sent;  // the refused request carried them
  size_t half = job.rows.size() / 2;
  Job parts[2];
  for (int p = 0; p < 2; ++p) {
    parts[p].destination = job.destination;
    parts[p].key_version = job.key_version;
    parts[p].kind = job.kind;
    parts[p].batch = job.batch;
    parts[p].body_bytes = job.batch ? 1 : 0;
  }
  for (size_t i = 0; i < job.rows.size(); ++i) {
    Job& part = parts[i < half ? 0 : 1];
    part.body_bytes += static_cast<int64_t>(job.rows[i].payload.size()) + (job.batch ? 1 : 0);
    part.rows.push_back(std::move(job.rows[i]));
  }
  queued_.push_front(std::move(parts[1]));
  queued_.push_front(std::move(parts[0]));
}

void Engine::RetryOutcomes(const Job& job, const std::string& message,
                           std::optional<int64_t> retry_after_ms, int http_status) {
  // One random draw per request: its rows come back together (and are
  // written by one statement).
  double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  std::optional<int> status = StatusOrNull(http_status);
  for (const Row& r : job.rows) {
    int attempts = r.attempts + r.sent + 1;
    if (attempts >= settings_.max_attempts) {
      AddOutcome(r, OutboxStatus::kFailed, Details::kReplace, status,
                 "gave up after " + std::to_string(attempts) + " attempts: " + message,
                 std::nullopt, std::nullopt, r.sent + 1);
    } else {
      // A Retry-After is honoured in full, even beyond retry_max_ms.
      int64_t delay = retry_after_ms ? *retry_after_ms
                                     : BackoffMs(attempts, settings_.retry_base_ms,
                                                 settings_.retry_max_ms, jitter);
      AddOutcome(r, OutboxStatus::kPending, Details::kReplace, status, message, delay,
                 std::nullopt, r.sent + 1);
    }
  }
}

void Engine::Requeue(const Job& job, int64_t delay_ms, std::optional<int> unless_key_version) {
  // Not sent: the attempt does not count, http_status and last_error stay.
  AddOutcomes(job.rows, OutboxStatus::kPending, Details::kKeep, std::nullopt, std::nullopt,
              std::max<int64_t>(0, delay_ms), unless_key_version, 0);
  Release(job.rows);
}

void Engine::Release(const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    keys_to_release_.push_back(r.key);
    held_bytes_ -= static_cast<int64_t>(r.payload.size());
  }
  held_rows_ -= rows.size();
}

void Engine::NoteDestination(const Job& job, DestinationState state,
                             const std::optional<std::string>& error) {
  auto d = destinations_.find(job.destination);
  if (d == destinations_.end()) return;
  DestinationConfig& config = d->second.config;
  std::optional<std::string> text;
  if (error) text = Truncate(*error, kMaxDestinationError);
  if (config.state == state && config.last_error == text) return;
  config.state = state;
  config.last_error = text;
  if (!HasOutcomes()) first_outcome_ = clock_.Now();
  destination_changes_[config.name] =
      DestinationChange{config.name, state, std::move(text), job.key_version};
}

// --- record ----------------------------------------------------------------

void Engine::AddOutcome(const Row& row, OutboxStatus status, Details details,
                        std::optional<int> http_status, const std::optional<std::string>& error,
                        std::optional<int64_t> delay_ms, std::optional<int> unless_key_version,
                        int attempts_inc) {
  if (!HasOutcomes()) first_outcome_ = clock_.Now();
  auto [it, inserted] = group_index_.try_emplace(
      OutcomeValues{status, attempts_inc, details, http_status, error, delay_ms,
                    unless_key_version},
      groups_.size());
  if (inserted) {
    OutcomeGroup g;
    g.status = status;
    g.attempts_inc = attempts_inc;
    g.details = details;
    g.http_status = http_status;
    g.error = error;
    g.delay_ms = delay_ms;
    g.unless_key_version = unless_key_version;
    groups_.push_back(std::move(g));
  }
  groups_[it->second].ids.push_back(row.id);
  ++outcome_count_;
}

void Engine::AddOutcomes(const std::vector<Row>& rows, OutboxStatus status, Details details,
                         std::optional<int> http_status, const std::optional<std::string>& error,
                         std::optional<int64_t> delay_ms, std::optional<int> unless_key_version,
                         int extra_attempt) {
  if (rows.empty()) return;
  bool uniform = std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.sent == 0; });
  if (!uniform) {
    for (const Row& r : rows) {
      AddOutcome(r, status, details, http_status, error, delay_ms, unless_key_version,
                 r.sent + extra_attempt);
    }
    return;
  }
  // The common case: one group lookup for the whole request.
  AddOutcome(rows.front(), status, details, http_status, error, delay_ms, unless_key_version,
             extra_attempt);
  std::vector<int64_t>& ids = groups_[group_index_.at(OutcomeValues{
                                          status, extra_attempt, details, http_status, error,
                                          delay_ms, unless_key_version})]
                                  .ids;
  ids.reserve(ids.size() + rows.size() - 1);
  for (size_t i = 1; i < rows.size(); ++i) ids.push_back(rows[i].id);
  outcome_count_ += rows.size() - 1;
}

bool Engine::RecordDue(bool claiming) const {
  if (!HasOutcomes()) return false;
  return claiming || outcome_count_ >= kRecordBatch || in_flight_.empty() ||
         clock_.Now() - first_outcome_ >= kRecordDelay;
}

Records Engine::TakeRecords() {
  Records records;
  recorded_delays_.clear();
  for (const OutcomeGroup& g : groups_) {
    if (g.status == OutboxStatus::kPending && g.delay_ms) recorded_delays_.push_back(*g.delay_ms);
  }
  records.outcomes = std::move(groups_);
  groups_.clear();
  group_index_.clear();
  outcome_count_ = 0;
  records.destinations.reserve(destination_changes_.size());
  for (auto& [name, change] : destination_changes_) {
    records.destinations.push_back(std::move(change));
  }
  destination_changes_.clear();
  releasing_ = std::move(keys_to_release_);
  keys_to_release_.clear();
  return records;
}

void Engine::Recorded() {
  TimePoint now = clock_.Now();
  std::sort(recorded_delays_.begin(), recorded_delays_.end());
  recorded_delays_.erase(std::unique(recorded_delays_.begin(), recorded_delays_.end()),
                         recorded_delays_.end());
  for (int64_t delay : recorded_delays_) {
    waiting_until_ = std::max(waiting_until_, now + milliseconds(delay + 1000));
    NoteDueAt(now + milliseconds(delay));
  }
  recorded_delays_.clear();
  for (const std::string& k : releasing_) keys_in_flight_.erase(k);
  if (!releasing_.empty() && keys_were_busy_) more_due_ = true;
  releasing_.clear();
}

// --- timing ----------------------------------------------------------------

void Engine::NoteDueAt(TimePoint at) {
  if (due_times_.size() < kMaxDueTimes) due_times_.push(at);
}

bool Engine::TakeDue() {
  TimePoint now = clock_.Now();
  bool due = false;
  while (!due_times_.empty() && due_times_.top() <= now) {
    due_times_.pop();
    due = true;
  }
  return due;
}

bool Engine::HasRoom() const {
  return held_rows_ < static_cast<size_t>(std::max(1, settings_.claim_batch)) &&
         held_bytes_ < ClaimByteBudget();
}

std::optional<TimePoint> Engine::NextWake() const {
  std::optional<TimePoint> wake;
  auto consider = [&wake](TimePoint t) {
    if (!wake || t < *wake) wake = t;
  };
  if (!due_times_.empty()) consider(due_times_.top() + milliseconds(1));
  if (rate_ready_) consider(*rate_ready_);
  if (HasOutcomes()) consider(first_outcome_ + kRecordDelay);
  if (MoreDue() && HasRoom()) consider(clock_.Now());
  return wake;
}

void Engine::Reset() {
  queued_.clear();
  in_flight_.clear();
  keys_in_flight_.clear();
  group_index_.clear();
  groups_.clear();
  outcome_count_ = 0;
  keys_to_release_.clear();
  destination_changes_.clear();
  releasing_.clear();
  recorded_delays_.clear();
  destinations_.clear();
  shares_.clear();
  held_rows_ = 0;
  held_bytes_ = 0;
  due_times_ = {};
  more_due_ = false;
  keys_were_busy_ = false;
  share_freed_ = false;
  rate_ready_.reset();
  transport_.CancelAll();
}

}  // namespace hyperline::delivery
