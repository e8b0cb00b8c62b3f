// mock_service.cpp: routes, faults, validation and control endpoints of
// hyperline-mock (see mock_service.hpp and docs/mock.md).
#include "mock_service.hpp"

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "event_validation.hpp"

namespace hyperline {
namespace mock {

namespace {

constexpr size_t kMaxBatch = 5000;
constexpr size_t kMaxDeleteIds = 5000;
constexpr size_t kMaxTake = 100;

// Milliseconds from the monotonic clock (for the rate-limit window).
int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Fills res with a JSON {"message": ...} error.
void Error(HttpResponse& res, int status, const std::string& message) {
  res.status = status;
  res.content_type = "application/json";
  res.body = "{\"message\":" + JsonString(message) + "}";
}

// Parses a whole decimal integer; false if s is not exactly one.
bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  int64_t v = 0;
  for (; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return true;
}

// Returns path without one trailing slash (so /v1/events/ is /v1/events).
std::string NormalizePath(const std::string& path) {
  if (path.size() > 1 && path.back() == '/') return path.substr(0, path.size() - 1);
  return path;
}

// Returns the Bearer token of the Authorization header, or "" if absent.
std::string BearerToken(const HttpRequest& req) {
  const std::string* auth = req.Header("Authorization");
  if (!auth || auth->size() < 7) return "";
  std::string scheme = auth->substr(0, 7);
  for (auto& ch : scheme) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  if (scheme != "bearer ") return "";
  size_t start = 7;
  while (start < auth->size() && (*auth)[start] == ' ') start++;
  return auth->substr(start);
}

// Returns a JSON array of strings.
std::string JsonStringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); i++) {
    if (i) out += ',';
    out += JsonString(items[i]);
  }
  return out + "]";
}

// Reads a list of ids (strings or numbers) from a JSON array; "" or the reason.
std::string IdList(const nlohmann::json& v, const char* name, std::vector<std::string>* out) {
  if (!v.is_array()) return std::string(name) + " must be an array of strings or numbers";
  out->clear();
  for (const auto& item : v) {
    std::string key = RecordIdKey(item);
    if (key.empty()) return std::string(name) + " must hold only non-empty strings or numbers";
    out->push_back(key);
  }
  return "";
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MockService::MockService(MockConfig config, int64_t force_429, uint64_t seed, bool verbose,
                         bool quiet)
    : force_429_(force_429), rng_(seed), verbose_(verbose), quiet_(quiet) {
  auto s = std::make_shared<Snapshot>();
  s->config = std::move(config);
  s->reject_ids.insert(s->config.reject_ids.begin(), s->config.reject_ids.end());
  s->api_keys.insert(s->config.api_keys.begin(), s->config.api_keys.end());
  snapshot_ = s;
  for (auto& c : by_status_) c.store(0);
}

std::shared_ptr<const MockService::Snapshot> MockService::Current() const {
  std::lock_guard<std::mutex> lock(config_mutex_);
  return snapshot_;
}

double MockService::Roll() {
  std::lock_guard<std::mutex> lock(rng_mutex_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

void MockService::Handle(const HttpRequest& req, HttpResponse& res) {
  if (req.path == "/_mock" || req.path.compare(0, 7, "/_mock/") == 0) {
    HandleControl(req, res);
    return;
  }
  auto started = std::chrono::steady_clock::now();
  requests_++;
  bool dropped = false;
  HandleApi(req, res, &dropped);
  if (dropped) {
    dropped_++;
    res.drop = true;
  } else if (res.status >= 100 && res.status < 600) {
    by_status_[res.status]++;
  }
  if (verbose_) {
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    fprintf(stderr, "hyperline-mock: %s %s -> %s (%zu bytes in, %.1f ms)\n", req.method.c_str(),
            req.path.c_str(), dropped ? "dropped" : std::to_string(res.status).c_str(),
            req.body.size(), ms);
  }
}

void MockService::Shutdown() {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  stopping_ = true;
  stop_cv_.notify_all();
}

bool MockService::RateLimited(const Snapshot& s, HttpResponse& res) {
  int64_t limit = s.config.rate_limit;
  if (limit <= 0) return false;
  int64_t now = SteadyMs();
  std::lock_guard<std::mutex> lock(rate_mutex_);
  while (!window_ms_.empty() && window_ms_.front() <= now - 1000) window_ms_.pop_front();
  bool limited = static_cast<int64_t>(window_ms_.size()) >= limit;
  if (!limited) window_ms_.push_back(now);
  int64_t reset_ms = window_ms_.empty() ? 0 : window_ms_.front() + 1000 - now;
  int64_t reset_s = std::max<int64_t>(1, (reset_ms + 999) / 1000);
  int64_t remaining = std::max<int64_t>(0, limit - static_cast<int64_t>(window_ms_.size()));
  res.headers.emplace_back("X-RateLimit-Limit", std::to_string(limit));
  res.headers.emplace_back("X-RateLimit-Remaining", std::to_string(remaining));
  res.headers.emplace_back("X-RateLimit-Reset", std::to_string(reset_s));
  if (limited) {
    res.headers.emplace_back("Retry-After", std::to_string(s.config.retry_after));
    Error(res, 429,
          "Too many requests: rate limit of " + std::to_string(limit) +
              " requests per second exceeded");
  }
  return limited;
}

void MockService::HandleApi(const HttpRequest& req, HttpResponse& res, bool* dropped) {
  std::shared_ptr<const Snapshot> snap = Current();
  const MockConfig& cfg = snap->config;

  bool drop = cfg.drop_rate > 0 && Roll() < cfg.drop_rate;
  if (cfg.delay_ms > 0) {
    // Why a condition variable and not sleep: SIGTERM must not wait for delays.
    std::unique_lock<std::mutex> lock(stop_mutex_);
    if (stop_cv_.wait_for(lock, std::chrono::milliseconds(cfg.delay_ms),
                          [this] { return stopping_; })) {
      *dropped = true;
      return;
    }
  }
  if (drop && cfg.drop_mode != "after") {
    *dropped = true;
    return;
  }

  // Why before everything else: a real server (or its proxy) refuses a body
  // over its limit before it looks at the request.
  if (cfg.max_body_bytes > 0 && static_cast<int64_t>(req.body.size()) > cfg.max_body_bytes) {
    Error(res, 413,
          "Request body too large: " + std::to_string(req.body.size()) + " bytes, the limit is " +
              std::to_string(cfg.max_body_bytes) + " bytes");
    return;
  }

  int64_t pending = force_429_.load();
  while (pending > 0 && !force_429_.compare_exchange_weak(pending, pending - 1)) {
  }
  if (pending > 0) {
    res.headers.emplace_back("Retry-After", std::to_string(cfg.retry_after));
    res.headers.emplace_back("X-RateLimit-Limit",
                             std::to_string(std::max<int64_t>(0, cfg.rate_limit)));
    res.headers.emplace_back("X-RateLimit-Remaining", "0");
    res.headers.emplace_back("X-RateLimit-Reset", std::to_string(cfg.retry_after));
    Error(res, 429, "Too many requests (forced by hyperline-mock)");
    return;
  }
  if (RateLimited(*snap, res)) return;
  if (cfg.fail_rate > 0 && Roll() < cfg.fail_rate) {
    Error(res, cfg.fail_status, "Injected failure (hyperline-mock --fail-rate)");
    return;
  }

  std::string path = NormalizePath(req.path);
  enum class Route { kNone, kEvents, kBatch } route = Route::kNone;
  if (path == "/v1/events") {
    if (req.method == "POST" || req.method == "DELETE" || req.method == "GET" ||
        req.method == "HEAD") {
      route = Route::kEvents;
    }
  } else if (path == "/v1/events/batch" && req.method == "POST") {
    route = Route::kBatch;
  }
  if (route == Route::kNone) {
    Error(res, 404, "Not found");
    return;
  }
  std::string token = BearerToken(req);
  if (token.empty() || snap->api_keys.count(token) == 0) {
    Error(res, 401, "Unauthorized");
    return;
  }
  if (route == Route::kBatch) {
    PostBatch(*snap, req, res);
  } else if (req.method == "POST") {
    PostEvent(*snap, req, res);
  } else if (req.method == "DELETE") {
    DeleteEvents(req, res);
  } else {
    ListEvents(req, res, true);
  }
  if (drop) *dropped = true;  // drop_mode "after": processed, answer lost
}

void MockService::PostEvent(const Snapshot& s, const HttpRequest& req, HttpResponse& res) {
  nlohmann::json event;
  try {
    event = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    Error(res, 400, std::string("Malformed JSON: ") + e.what());
    return;
  }
  if (!event.is_object()) {
    Error(res, 400, "Body must be one event (a JSON object); send arrays to /v1/events/batch");
    return;
  }
  std::string err = ValidateEvent(event);
  std::string key;
  if (err.empty()) {
    key = RecordIdKey(event["record"]["id"]);
    if (s.reject_ids.count(key)) {
      err = "record id " + JsonString(key) + " is rejected by hyperline-mock (--reject-ids)";
    }
  }
  if (!err.empty()) {
    events_failed_++;
    Error(res, 400, err);
    return;
  }
  std::vector<IncomingEvent> incoming(1);
  incoming[0].key = key;
  incoming[0].text = CompactJson(req.body);
  incoming[0].event_type = event["event_type"].get<std::string>();
  incoming[0].customer_id = event["customer_id"].get<std::string>();
  store_.Accept(incoming, NowMs());
  res.status = 201;
  res.body = std::move(incoming[0].text);
}

void MockService::PostBatch(const Snapshot& s, const HttpRequest& req, HttpResponse& res) {
  nlohmann::json events;
  try {
    events = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    Error(res, 400, std::string("Malformed JSON: ") + e.what());
    return;
  }
  if (!events.is_array()) {
    Error(res, 400, "Body must be a JSON array of events");
    return;
  }
  if (events.empty() || events.size() > kMaxBatch) {
    Error(res, 400,
          "A batch must hold between 1 and 5000 events, got " + std::to_string(events.size()));
    return;
  }
  std::string compact = CompactJson(req.body);
  auto spans = SplitArrayElements(compact);
  if (spans.size() != events.size()) {
    Error(res, 500, "hyperline-mock could not split the batch");  // a bug, not the client's
    return;
  }
  std::vector<IncomingEvent> incoming;
  incoming.reserve(events.size());
  std::string created = "[", failed = "[";
  size_t n_failed = 0;
  for (size_t i = 0; i < events.size(); i++) {
    const nlohmann::json& event = events[i];
    std::string text = compact.substr(spans[i].first, spans[i].second - spans[i].first);
    std::string err = ValidateEvent(event);
    std::string key;
    if (err.empty()) {
      key = RecordIdKey(event["record"]["id"]);
      if (s.reject_ids.count(key)) {
        err = "record id " + JsonString(key) + " is rejected by hyperline-mock (--reject-ids)";
      }
    }
    if (!err.empty()) {
      if (n_failed++) failed += ',';
      failed += WithError(text, err);
      continue;
    }
    if (!incoming.empty()) created += ',';
    created += text;
    IncomingEvent in;
    in.key = std::move(key);
    in.text = std::move(text);
    in.event_type = event["event_type"].get<std::string>();
    in.customer_id = event["customer_id"].get<std::string>();
    incoming.push_back(std::move(in));
  }
  if (!incoming.empty()) store_.Accept(incoming, NowMs());
  events_failed_ += n_failed;
  res.status = 201;
  res.body.reserve(created.size() + failed.size() + 40);
  res.body = "{\"events_created\":" + created + "],\"events_failed\":" + failed + "]}";
}

void MockService::DeleteEvents(const HttpRequest& req, HttpResponse& res) {
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    Error(res, 400, std::string("Malformed JSON: ") + e.what());
    return;
  }
  if (!body.is_object()) {
    Error(res, 400, "Body must be {\"matching\":\"record_ids\",\"record_ids\":[...]}");
    return;
  }
  auto matching = body.find("matching");
  if (matching == body.end() || !matching->is_string() || *matching != "record_ids") {
    Error(res, 400, "matching must be \"record_ids\"");
    return;
  }
  auto ids = body.find("record_ids");
  if (ids == body.end()) {
    Error(res, 400, "record_ids is required");
    return;
  }
  std::vector<std::string> keys;
  std::string err = IdList(*ids, "record_ids", &keys);
  if (!err.empty()) {
    Error(res, 400, err);
    return;
  }
  if (keys.size() > kMaxDeleteIds) {
    Error(res, 400, "record_ids may hold at most 5000 ids, got " + std::to_string(keys.size()));
    return;
  }
  size_t deleted = store_.Delete(keys, NowMs());
  res.status = 200;
  res.body = "{\"deleted\":" + std::to_string(deleted) + "}";
}

void MockService::ListEvents(const HttpRequest& req, HttpResponse& res, bool api) {
  EventFilter filter;
  if (const std::string* v = req.Param("event_type")) {
    filter.filter_event_type = true;
    filter.event_type = *v;
  }
  if (const std::string* v = req.Param("customer_id")) {
    filter.filter_customer_id = true;
    filter.customer_id = *v;
  }
  if (const std::string* v = req.Param("record_id__in")) {
    filter.filter_record_ids = true;
    size_t start = 0;
    while (start <= v->size()) {
      size_t comma = v->find(',', start);
      if (comma == std::string::npos) comma = v->size();
      if (comma > start) filter.record_ids.insert(v->substr(start, comma - start));
      start = comma + 1;
    }
  }
  filter.take = api ? kMaxTake : SIZE_MAX;
  if (const std::string* v = req.Param("take")) {
    int64_t take;
    if (!ParseInt(*v, &take) || take < 0 || (api && take > static_cast<int64_t>(kMaxTake))) {
      Error(res, 400,
            api ? "take must be an integer between 0 and 100" : "take must be an integer >= 0");
      return;
    }
    filter.take = static_cast<size_t>(take);
  }
  if (const std::string* v = req.Param("skip")) {
    int64_t skip;
    if (!ParseInt(*v, &skip) || skip < 0) {
      Error(res, 400, "skip must be an integer >= 0");
      return;
    }
    filter.skip = static_cast<size_t>(skip);
  }
  res.status = 200;
  res.body = store_.List(filter);
}

std::string MockService::ConfigJson() const {
  auto snap = Current();
  const MockConfig& c = snap->config;
  char rates[128];
  snprintf(rates, sizeof(rates), "{\"fail_rate\":%.17g,\"fail_status\":%d,", c.fail_rate,
           c.fail_status);
  std::string out = rates;
  out += "\"delay_ms\":" + std::to_string(c.delay_ms);
  snprintf(rates, sizeof(rates), ",\"drop_rate\":%.17g,", c.drop_rate);
  out += rates;
  out += "\"drop_mode\":" + JsonString(c.drop_mode);
  out += ",\"rate_limit\":" + std::to_string(c.rate_limit);
  out += ",\"force_429\":" + std::to_string(force_429_.load());
  out += ",\"retry_after\":" + std::to_string(c.retry_after);
  out += ",\"max_body_bytes\":" + std::to_string(c.max_body_bytes);
  out += ",\"reject_ids\":" + JsonStringArray(c.reject_ids);
  out += ",\"api_keys\":" + JsonStringArray(c.api_keys) + "}";
  return out;
}

std::string MockService::PatchConfig(const std::string& patch_json) {
  nlohmann::json patch;
  try {
    patch = nlohmann::json::parse(patch_json);
  } catch (const nlohmann::json::parse_error& e) {
    return std::string("Malformed JSON: ") + e.what();
  }
  if (!patch.is_object()) return "config must be a JSON object";
  auto snap = Current();
  MockConfig c = snap->config;
  int64_t force = -1;
  // Reads a number field within [lo, hi]; "" or the reason.
  auto number = [](const nlohmann::json& v, const std::string& key, double lo, double hi,
                   bool integer, double* out) -> std::string {
    if (!v.is_number() || (integer && !v.is_number_integer())) {
      return key + (integer ? " must be an integer" : " must be a number");
    }
    double d = v.get<double>();
    if (std::isnan(d) || d < lo || d > hi) {
      return key + " must be between " + nlohmann::json(lo).dump() + " and " +
             nlohmann::json(hi).dump();
    }
    *out = d;
    return "";
  };
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    double d = 0;
    std::string err;
    if (key == "fail_rate") {
      err = number(v, key, 0, 1, false, &d);
      c.fail_rate = d;
    } else if (key == "fail_status") {
      err = number(v, key, 100, 599, true, &d);
      c.fail_status = static_cast<int>(d);
    } else if (key == "delay_ms") {
      err = number(v, key, 0, 3600000, true, &d);
      c.delay_ms = static_cast<int64_t>(d);
    } else if (key == "drop_rate") {
      err = number(v, key, 0, 1, false, &d);
      c.drop_rate = d;
    } else if (key == "drop_mode") {
      if (!v.is_string() || (v != "before" && v != "after")) {
        err = "drop_mode must be \"before\" or \"after\"";
      } else {
        c.drop_mode = v.get<std::string>();
      }
    } else if (key == "rate_limit") {
      if (v.is_null()) {
        c.rate_limit = 0;
      } else {
        err = number(v, key, 0, 1e9, true, &d);
        c.rate_limit = static_cast<int64_t>(d);
      }
    } else if (key == "force_429") {
      err = number(v, key, 0, 1e12, true, &d);
      force = static_cast<int64_t>(d);
    } else if (key == "retry_after") {
      err = number(v, key, 0, 86400, true, &d);
      c.retry_after = static_cast<int64_t>(d);
    } else if (key == "max_body_bytes") {
      if (v.is_null()) {
        c.max_body_bytes = 0;
      } else {
        err = number(v, key, 0, 1e12, true, &d);
        c.max_body_bytes = static_cast<int64_t>(d);
      }
    } else if (key == "reject_ids") {
      err = IdList(v, "reject_ids", &c.reject_ids);
    } else if (key == "api_keys") {
      err = IdList(v, "api_keys", &c.api_keys);
      if (err.empty()) {
        for (const auto& k : v) {
          if (!k.is_string()) err = "api_keys must hold only non-empty strings";
        }
      }
    } else {
      err = "unknown config key " + JsonString(key) +
            " (known: fail_rate, fail_status, delay_ms, drop_rate, drop_mode, rate_limit, "
            "force_429, retry_after, max_body_bytes, reject_ids, api_keys)";
    }
    if (!err.empty()) return err;
  }
  auto next = std::make_shared<Snapshot>();
  next->config = std::move(c);
  next->reject_ids.insert(next->config.reject_ids.begin(), next->config.reject_ids.end());
  next->api_keys.insert(next->config.api_keys.begin(), next->config.api_keys.end());
  {
    std::lock_guard<std::mutex> lock(config_mutex_);
    snapshot_ = next;
  }
  if (force >= 0) force_429_.store(force);
  if (!quiet_) fprintf(stderr, "hyperline-mock: config changed: %s\n", patch.dump().c_str());
  return "";
}

std::string MockService::StatsJson() const {
  StoreCounters c = store_.Counters();
  std::string by_status = "{";
  bool first = true;
  for (size_t i = 0; i < by_status_.size(); i++) {
    uint64_t n = by_status_[i].load();
    if (n == 0) continue;
    if (!first) by_status += ',';
    first = false;
    by_status += "\"" + std::to_string(i) + "\":" + std::to_string(n);
  }
  by_status += "}";
  return "{\"requests\":" + std::to_string(requests_.load()) +
         ",\"requests_by_status\":" + by_status +
         ",\"requests_dropped\":" + std::to_string(dropped_.load()) +
         ",\"events_received\":" + std::to_string(c.events_received) +
         ",\"events_unique\":" + std::to_string(c.events_unique) +
         ",\"events_deleted\":" + std::to_string(c.events_deleted) +
         ",\"duplicates\":" + std::to_string(c.duplicates) +
         ",\"events_failed\":" + std::to_string(events_failed_.load()) + "}";
}

void MockService::Reset() {
  store_.Reset();
  requests_ = 0;
  dropped_ = 0;
  events_failed_ = 0;
  for (auto& c : by_status_) c.store(0);
  {
    std::lock_guard<std::mutex> lock(rate_mutex_);
    window_ms_.clear();
  }
  malloc_trim(0);  // give the memory of a million events back to the system
}

void MockService::HandleControl(const HttpRequest& req, HttpResponse& res) {
  std::string path = NormalizePath(req.path);
  bool get = req.method == "GET" || req.method == "HEAD";
  bool post = req.method == "POST";
  if (path == "/_mock/health" && get) {
    res.status = 200;
    res.content_type = "text/plain";
    res.body = "ok";
  } else if (path == "/_mock/config" && get) {
    res.body = ConfigJson();
  } else if (path == "/_mock/config" && post) {
    std::string err = PatchConfig(req.body);
    if (!err.empty()) {
      Error(res, 400, err);
      return;
    }
    res.body = ConfigJson();
  } else if (path == "/_mock/stats" && get) {
    res.body = StatsJson();
  } else if (path == "/_mock/events" && get) {
    ListEvents(req, res, false);
  } else if (path == "/_mock/log" && get) {
    const std::string* id = req.Param("record_id");
    if (!id) {
      Error(res, 400, "record_id is required");
      return;
    }
    res.body = store_.Log(*id);
  } else if (path == "/_mock/reset" && post) {
    Reset();
    if (!quiet_) fprintf(stderr, "hyperline-mock: reset\n");
    res.body = "{\"reset\":true}";
  } else {
    Error(res, 404, "Not found");
  }
}

}  // namespace mock
}  // namespace hyperline
