// client.cpp: libcurl multi implementation of the asynchronous HTTP client.
#include "http/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace hyperline::http {
namespace {

// Responses larger than this are truncated (an ingest answer is far smaller);
// bounds the worker's memory whatever a server sends.
constexpr size_t kMaxBodyBytes = 32u << 20;

// Initialises libcurl once per process.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("could not initialise libcurl");
    }
  });
}

// ASCII lower case (host names and schemes; no locale, unlike std::tolower).
std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// One transfer in flight: the request, its buffers and what came back so far.
struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Request request;
  Response response;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  bool truncated = false;
};

// libcurl write callback. Why no allocation failure escapes: exceptions must
// not cross libcurl's C frames, so they become an abort code.
size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  try {
    size_t room = kMaxBodyBytes - std::min(kMaxBodyBytes, t->response.body.size());
    if (n > room) t->truncated = true;
    t->response.body.append(data, std::min(n, room));
  } catch (...) {
    return 0;
  }
  return n;
}

// libcurl header callback: keeps Retry-After (the only header the caller needs).
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  static const char kName[] = "retry-after:";
  constexpr size_t kLen = sizeof(kName) - 1;
  if (n > kLen && strncasecmp(data, kName, kLen) == 0) {
    try {
      std::string value(data + kLen, n - kLen);
      size_t b = value.find_first_not_of(" \t");
      size_t e = value.find_last_not_of(" \t\r\n");
      t->response.retry_after = b == std::string::npos ? "" : value.substr(b, e - b + 1);
    } catch (...) {
      return 0;
    }
  }
  // A new status line (e.g. after 100 Continue) starts a new header block.
  if (n >= 5 && std::strncmp(data, "HTTP/", 5) == 0) t->response.retry_after.clear();
  return n;
}

}  // namespace

bool IsLoopbackHost(const std::string& raw_host) {
  std::string host = Lower(raw_host);
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  // 127.0.0.0/8 written as a dotted quad.
  int parts = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string::npos) j = host.size();
    if (j == i || j - i > 3) return false;
    int value = 0;
    for (size_t k = i; k < j; ++k) {
      if (host[k] < '0' || host[k] > '9') return false;
      value = value * 10 + (host[k] - '0');
    }
    if (value > 255 || (parts == 0 && value != 127)) return false;
    ++parts;
    i = j + 1;
  }
  return parts == 4;
}

std::string CheckUrl(const std::string& url, bool allow_http) {
  std::string lower = Lower(url.substr(0, 8));
  bool https = lower.rfind("https://", 0) == 0;
  bool http = lower.rfind("http://", 0) == 0;
  if (!https && !http) return "only http:// and https:// URLs are supported";
  size_t start = https ? 8 : 7;
  std::string host;
  if (start < url.size() && url[start] == '[') {
    size_t close = url.find(']', start);
    if (close == std::string::npos) return "malformed IPv6 host in URL";
    host = url.substr(start, close - start + 1);
  } else {
    size_t end = url.find_first_of(":/?#@", start);
    host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  if (host.empty()) return "URL has no host";
  if (http && !allow_http && !IsLoopbackHost(host)) {
    return "plain http is refused for non-loopback host \"" + host +
           "\" (use https, or set hyperline.allow_http)";
  }
  return {};
}

struct Client::Impl {
  CURLM* multi = nullptr;
  std::vector<CURL*> idle;  // easy handles kept for reuse
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  std::vector<Response> completed;

  // Finishes every transfer libcurl reports done.
  void Collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode code = msg->data.result;
      auto it = active.find(easy);
      if (it == active.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      curl_multi_remove_handle(multi, easy);
      Response& r = t->response;
      if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        r.status = static_cast<int>(status);
      } else {
        r.status = 0;
        r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
        r.error = t->error_buffer[0] ? t->error_buffer : curl_easy_strerror(code);
        r.body.clear();
      }
      curl_slist_free_all(t->headers);
      t->headers = nullptr;
      // Forget the secret as soon as it is no longer needed.
      std::fill(t->request.bearer_token.begin(), t->request.bearer_token.end(), '\0');
      curl_easy_reset(easy);
      idle.push_back(easy);
      completed.push_back(std::move(r));
    }
  }

  // Runs libcurl's state machines once.
  void Perform() {
    int running = 0;
    curl_multi_perform(multi, &running);
    Collect();
  }
};

Client::Client(int max_connections) : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->multi = curl_multi_init();
  if (impl_->multi == nullptr) throw std::runtime_error("could not create a libcurl multi handle");
  SetMaxConnections(max_connections);
}

Client::~Client() {
  for (auto& [easy, t] : impl_->active) {
    curl_multi_remove_handle(impl_->multi, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(t->headers);
  }
  for (CURL* easy : impl_->idle) curl_easy_cleanup(easy);
  curl_multi_cleanup(impl_->multi);
}

void Client::SetMaxConnections(int max_connections) {
  long n = std::max(1, max_connections);
  curl_multi_setopt(impl_->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, std::max(16L, 4 * n));
}

void Client::Start(Request request) {
  auto t = std::make_unique<Transfer>();
  t->response.tag = request.tag;
  std::string refused = CheckUrl(request.url, request.allow_http);
  if (!refused.empty()) {
    t->response.error = refused;
    impl_->completed.push_back(std::move(t->response));
    return;
  }
  t->request = std::move(request);
  CURL* easy = nullptr;
  if (!impl_->idle.empty()) {
    easy = impl_->idle.back();
    impl_->idle.pop_back();
  } else {
    easy = curl_easy_init();
    if (easy == nullptr) throw std::runtime_error("could not create a libcurl handle");
  }
  t->easy = easy;
  const Request& q = t->request;
  auto add = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(t->headers, line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    t->headers = next;
  };
  try {
    add("Content-Type: application/json");
    add("Accept: application/json");
    add("Expect:");  // no 100-continue round trip for large batches
    if (!q.bearer_token.empty()) add("Authorization: Bearer " + q.bearer_token);
  } catch (...) {
    curl_slist_free_all(t->headers);
    impl_->idle.push_back(easy);
    throw;
  }
  curl_easy_setopt(easy, CURLOPT_URL, q.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
  if (!q.user_agent.empty()) curl_easy_setopt(easy, CURLOPT_USERAGENT, q.user_agent.c_str());
  if (q.method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
  } else if (q.method != "GET") {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, q.method.c_str());
  }
  if (q.method != "GET") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, q.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(q.body.size()));
  }
  long timeout = std::max(1L, q.timeout_ms);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, 10000L));
  // Why NOSIGNAL: libcurl must never install signal handlers or raise SIGALRM
  // inside a Postgres process.
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error_buffer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
  CURLMcode rc = curl_multi_add_handle(impl_->multi, easy);
  if (rc != CURLM_OK) {
    curl_slist_free_all(t->headers);
    curl_easy_reset(easy);
    impl_->idle.push_back(easy);
    t->response.error = curl_multi_strerror(rc);
    impl_->completed.push_back(std::move(t->response));
    return;
  }
  impl_->active.emplace(easy, std::move(t));
}

void Client::Poll(int timeout_ms) {
  if (impl_->active.empty()) return;
  impl_->Perform();
  if (!impl_->completed.empty() || impl_->active.empty()) return;
  curl_multi_poll(impl_->multi, nullptr, 0, std::max(0, timeout_ms), nullptr);
  impl_->Perform();
}

size_t Client::TakeCompleted(std::vector<Response>& out) {
  size_t n = impl_->completed.size();
  for (auto& r : impl_->completed) out.push_back(std::move(r));
  impl_->completed.clear();
  return n;
}

void Client::CancelAll() {
  for (auto& [easy, t] : impl_->active) {
    curl_multi_remove_handle(impl_->multi, easy);
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    std::fill(t->request.bearer_token.begin(), t->request.bearer_token.end(), '\0');
    // Why cleanup and not reuse: the handle's connection is in the middle of a
    // transfer; a fresh handle starts clean.
    curl_easy_cleanup(easy);
  }
  impl_->active.clear();
  impl_->completed.clear();
}

size_t Client::InFlight() const { return impl_->active.size() + impl_->completed.size(); }

}  // namespace hyperline::http
