// Tests for the libcurl client against the real hyperline-mock over loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.hpp"

namespace hyperline::http {
namespace {

using nlohmann::json;

// Runs hyperline-mock on a free port for the duration of a test.
class MockServer {
 public:
  MockServer() {
    std::string bin = HYPERLINE_MOCK_BIN;
    if (bin.empty() || access(bin.c_str(), X_OK) != 0) return;
    port_file_ = "/tmp/http_client_test_port_" + std::to_string(getpid());
    unlink(port_file_.c_str());
    pid_ = fork();
    if (pid_ == 0) {
      execl(bin.c_str(), bin.c_str(), "--port", "0", "--port-file", port_file_.c_str(), "--quiet",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0)
        port_ = port;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~MockServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (!port_file_.empty()) unlink(port_file_.c_str());
  }
  bool ok() const { return port_ > 0; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string port_file_;
};

std::string Event(const std::string& id, int value = 1) {
  return json{{"customer_id", "cus_1"},
              {"event_type", "api_call"},
              {"timestamp", "2024-12-20T16:04:11Z"},
              {"record", {{"id", id}, {"value", value}}}}
      .dump();
}

Request Make(const std::string& method, const std::string& url, std::string body,
             std::string token = "test_key") {
  Request r;
  r.method = method;
  r.url = url;
  r.body = std::move(body);
  r.bearer_token = std::move(token);
  r.user_agent = "pg_hyperline/test";
  r.timeout_ms = 5000;
  return r;
}

Response Send(Client& c, Request r) {
  return Perform(c, std::move(r), [] {});
}

json Stats(Client& c, const MockServer& m) {
  Response r = Send(c, Make("GET", m.url("/_mock/stats"), ""));
  EXPECT_EQ(r.status, 200) << r.error;
  return json::parse(r.body, nullptr, false);
}

#define REQUIRE_MOCK(m) \
  if (!(m).ok()) GTEST_SKIP() << "hyperline-mock not built"

TEST(HttpClient, PostsOneEventAndReadsAnswer) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(4);
  Response r = Send(c, Make("POST", mock.url("/v1/events"), Event("r1")));
  EXPECT_GE(r.status, 200);
  EXPECT_LT(r.status, 300);
  EXPECT_TRUE(r.error.empty());
  json stats = Stats(c, mock);
  EXPECT_EQ(stats["events_received"], 1);
  Response events = Send(c, Make("GET", mock.url("/_mock/events"), ""));
  EXPECT_NE(events.body.find("\"r1\""), std::string::npos);
}

TEST(HttpClient, WrongKeyIs401) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(1);
  Response r = Send(c, Make("POST", mock.url("/v1/events"), Event("r1"), "wrong_key"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Stats(c, mock)["events_received"], 0);
}

TEST(HttpClient, ManyConcurrentBatchesAndDelete) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(4);
  constexpr int kRequests = 40, kPerBatch = 50;
  for (int i = 0; i < kRequests; ++i) {
    std::string body = "[";
    for (int j = 0; j < kPerBatch; ++j) {
      if (j) body += ",";
      body += Event("b" + std::to_string(i * kPerBatch + j));
    }
    body += "]";
    Request r = Make("POST", mock.url("/v1/events/batch"), body);
    r.tag = 1000 + i;
    c.Start(std::move(r));
  }
  EXPECT_EQ(c.InFlight(), static_cast<size_t>(kRequests));
  std::vector<Response> done;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (done.size() < kRequests && std::chrono::steady_clock::now() < deadline) {
    c.Poll(100);
    c.TakeCompleted(done);
  }
  ASSERT_EQ(done.size(), static_cast<size_t>(kRequests));
  std::vector<bool> seen(kRequests);
  for (const Response& r : done) {
    EXPECT_EQ(r.status, 201) << r.error << r.body;
    ASSERT_GE(r.tag, 1000u);
    seen[r.tag - 1000] = true;
    json answer = json::parse(r.body, nullptr, false);
    EXPECT_EQ(answer["events_created"].size(), static_cast<size_t>(kPerBatch));
  }
  for (bool s : seen) EXPECT_TRUE(s);
  EXPECT_EQ(c.InFlight(), 0u);
  EXPECT_EQ(Stats(c, mock)["events_unique"], kRequests * kPerBatch);

  Response del = Send(c, Make("DELETE", mock.url("/v1/events"),
                              R"({"matching":"record_ids","record_ids":["b0","b1"]})"));
  EXPECT_GE(del.status, 200);
  EXPECT_LT(del.status, 300);
  EXPECT_EQ(Stats(c, mock)["events_deleted"], 2);
}

TEST(HttpClient, RetryAfterHeaderIsKept) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(1);
  Response cfg =
      Send(c, Make("POST", mock.url("/_mock/config"), R"({"force_429":1,"retry_after":7})"));
  ASSERT_EQ(cfg.status, 200) << cfg.body;
  Response r = Send(c, Make("POST", mock.url("/v1/events"), Event("r1")));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.retry_after, "7");
  Response next = Send(c, Make("POST", mock.url("/v1/events"), Event("r1")));
  EXPECT_LT(next.status, 300);
  EXPECT_TRUE(next.retry_after.empty());
}

TEST(HttpClient, TimeoutIsATransportError) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(1);
  ASSERT_EQ(Send(c, Make("POST", mock.url("/_mock/config"), R"({"delay_ms":1500})")).status, 200);
  Request q = Make("POST", mock.url("/v1/events"), Event("slow"));
  q.timeout_ms = 200;
  auto start = std::chrono::steady_clock::now();
  Response r = Send(c, std::move(q));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.error.empty());
  EXPECT_LT(took, std::chrono::milliseconds(1200));
}

TEST(HttpClient, RefusedConnectionIsATransportError) {
  Client c(1);
  // Port 1 on loopback: nothing listens there.
  Response r = Send(c, Make("POST", "http://127.0.0.1:1/v1/events", Event("x")));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(r.error.find("test_key"), std::string::npos);
}

TEST(HttpClient, PlainHttpOnlyToLoopback) {
  EXPECT_EQ(CheckUrl("http://127.0.0.1:8080", false), "");
  EXPECT_EQ(CheckUrl("http://127.1.2.3", false), "");
  EXPECT_EQ(CheckUrl("http://localhost/x", false), "");
  EXPECT_EQ(CheckUrl("HTTP://[::1]:80", false), "");
  EXPECT_EQ(CheckUrl("https://ingest.hyperline.co", false), "");
  EXPECT_NE(CheckUrl("http://ingest.hyperline.co", false), "");
  EXPECT_NE(CheckUrl("http://127.0.0.1.evil.com", false), "");
  EXPECT_NE(CheckUrl("http://128.0.0.1", false), "");
  EXPECT_EQ(CheckUrl("http://ingest.hyperline.co", true), "");
  EXPECT_NE(CheckUrl("ftp://127.0.0.1", true), "");
  EXPECT_NE(CheckUrl("file:///etc/passwd", true), "");
  // A refused URL completes at once, without touching the network.
  Client c(1);
  Response r = Send(c, Make("POST", "http://example.com/v1/events", Event("x")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("plain http"), std::string::npos);
}

TEST(HttpClient, TlsVerificationFailsOnPlainServer) {
  MockServer mock;
  REQUIRE_MOCK(mock);
  Client c(1);
  // https to a plain-http server: the TLS handshake must fail, not silently pass.
  std::string url = mock.url("/v1/events");
  url.replace(0, 4, "https");
  Request q = Make("POST", url, Event("x"));
  q.timeout_ms = 1000;
  Response r = Send(c, std::move(q));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace hyperline::http
