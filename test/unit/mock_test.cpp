// mock_test.cpp: black-box tests of the hyperline-mock executable.
//
// Each test starts its own mock (port 0, --port-file), talks to it over real
// sockets with a deliberately small HTTP client (so a dropped connection or a
// 100-continue is visible byte for byte), and stops it with SIGTERM, checking
// that it exits cleanly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hyperline {
namespace {

using nlohmann::json;

const char kKey[] = "Bearer test_key";

// One HTTP answer; dropped = the connection closed before any byte came back.
struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool dropped = false;

  json Json() const { return json::parse(body); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Connects to 127.0.0.1:port; returns the socket or -1.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends all of s.
void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads one response from fd (buffering extra bytes in *buf); dropped if EOF first.
Reply ReadReply(int fd, std::string* buf) {
  Reply r;
  char tmp[65536];
  size_t head_end;
  while ((head_end = buf->find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      r.dropped = buf->empty();
      return r;
    }
    buf->append(tmp, static_cast<size_t>(n));
  }
  std::string head = buf->substr(0, head_end);
  r.status = std::atoi(head.substr(9, 3).c_str());
  size_t p = head.find("\r\n");
  while (p != std::string::npos && p < head.size()) {
    size_t e = head.find("\r\n", p + 2);
    std::string line = head.substr(p + 2, e == std::string::npos ? std::string::npos : e - p - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
      size_t vs = line.find_first_not_of(' ', colon + 1);
      r.headers[name] = vs == std::string::npos ? "" : line.substr(vs);
    }
    p = e;
  }
  size_t length = static_cast<size_t>(std::atol(r.Header("content-length").c_str()));
  size_t body_start = head_end + 4;
  while (buf->size() < body_start + length) {
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) break;
    buf->append(tmp, static_cast<size_t>(n));
  }
  r.body = buf->substr(body_start, length);
  buf->erase(0, body_start + length);
  return r;
}

// Builds the bytes of one request.
std::string RequestText(const std::string& method, const std::string& path, const std::string& body,
                        const std::vector<std::string>& headers, bool close_after) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "DELETE") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (close_after) req += "Connection: close\r\n";
  return req + "\r\n" + body;
}

// Sends one request on a fresh connection and returns the answer.
Reply Http(int port, const std::string& method, const std::string& path,
           const std::string& body = "", std::vector<std::string> headers = {kKey}) {
  for (auto& h : headers) {
    if (h.rfind("Bearer ", 0) == 0) h = "Authorization: " + h;
  }
  int fd = Connect(port);
  if (fd < 0) {
    Reply r;
    r.dropped = true;
    return r;
  }
  SendAll(fd, RequestText(method, path, body, headers, true));
  std::string buf;
  Reply r = ReadReply(fd, &buf);
  close(fd);
  return r;
}

// Returns a valid event with the given record id.
json Event(const std::string& id, const std::string& customer = "cus_1",
           const std::string& type = "api_call") {
  return json{{"customer_id", customer},
              {"event_type", type},
              {"timestamp", "2024-12-20T16:04:11Z"},
              {"record", {{"id", id}, {"durationInMs", 32}, {"isVerified", true}}}};
}

// A running hyperline-mock process.
class Mock {
 public:
  explicit Mock(std::vector<std::string> args) {
    port_file_ = testing::TempDir() + "mock_port_" + std::to_string(getpid()) + "_" +
                 std::to_string(counter_++);
    unlink(port_file_.c_str());
    int out[2];
    if (pipe(out) != 0) abort();
    std::vector<std::string> argv = {HYPERLINE_MOCK_BIN, "--port",   "0",
                                     "--port-file",      port_file_, "--quiet"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_fd_ = out[0];
    // Wait for the port file (written once the socket is listening).
    for (int i = 0; i < 1000 && port_ == 0; i++) {
      std::ifstream f(port_file_);
      if (f >> port_) break;
      port_ = 0;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {  // died before listening
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Mock() {
    if (pid_ > 0) Stop();
    if (stdout_fd_ >= 0) close(stdout_fd_);
    unlink(port_file_.c_str());
  }

  int port() const { return port_; }

  // Returns the first line the mock printed on stdout.
  std::string FirstLine() {
    std::string line;
    char ch;
    pollfd p{stdout_fd_, POLLIN, 0};
    while (poll(&p, 1, 5000) > 0 && read(stdout_fd_, &ch, 1) == 1 && ch != '\n') line += ch;
    return line;
  }

  // Sends SIGTERM and returns the exit status (0 when it stopped cleanly).
  int Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; i++) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

  Reply Get(const std::string& path) { return Http(port_, "GET", path); }
  Reply Post(const std::string& path, const json& body) {
    return Http(port_, "POST", path, body.dump());
  }
  json Stats() { return Get("/_mock/stats").Json(); }

 private:
  static int counter_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int stdout_fd_ = -1;
};
int Mock::counter_ = 0;

TEST(MockTest, StartsPrintsOneLineAndStopsOnSigterm) {
  Mock mock({});
  ASSERT_GT(mock.port(), 0);
  EXPECT_EQ(mock.FirstLine(),
            "hyperline-mock listening on http://127.0.0.1:" + std::to_string(mock.port()));
  Reply health = mock.Get("/_mock/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
  EXPECT_EQ(mock.Stop(), 0);
}

// Runs the mock with args until it exits; returns its exit status and stderr.
std::pair<int, std::string> RunToExit(std::vector<std::string> args) {
  int err[2];
  if (pipe(err) != 0) abort();
  args.insert(args.begin(), HYPERLINE_MOCK_BIN);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], 2);
    close(err[0]);
    close(err[1]);
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(err[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  pollfd p{err[0], POLLIN, 0};
  // A mock that wrongly accepted the flags would serve forever: give it 5 s.
  while (poll(&p, 1, 5000) > 0 && (n = read(err[0], buf, sizeof(buf))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  kill(pid, SIGKILL);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

TEST(MockTest, BadFlagsStopWithAMessage) {
  auto bad_rate = RunToExit({"--fail-rate", "1.5"});
  EXPECT_EQ(bad_rate.first, 2);
  EXPECT_NE(bad_rate.second.find("--fail-rate"), std::string::npos) << bad_rate.second;
  auto unknown = RunToExit({"--frobnicate"});
  EXPECT_EQ(unknown.first, 2);
  EXPECT_NE(unknown.second.find("--frobnicate"), std::string::npos) << unknown.second;
  auto bad_mode = RunToExit({"--drop-mode", "sometimes"});
  EXPECT_EQ(bad_mode.first, 2);
}

TEST(MockTest, SingleEventIsEchoedAndStoredExactly) {
  Mock mock({});
  // Exactness: a big numeric stays as its text, key order as sent.
  std::string body =
      R"({"event_type":"api_call","customer_id":"cus_1","timestamp":"2024-12-20T16:04:11.123+02:00",)"
      R"("record":{"id":"r1","amount":12345678901234567890.123456789,"tags":["a",1,true]}})";
  Reply r = Http(mock.port(), "POST", "/v1/events", body);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(mock.Get("/_mock/events").body, "[" + body + "]");
  json stats = mock.Stats();
  EXPECT_EQ(stats["requests"], 1);
  EXPECT_EQ(stats["requests_by_status"]["201"], 1);
  EXPECT_EQ(stats["events_received"], 1);
  EXPECT_EQ(stats["events_unique"], 1);
}

TEST(MockTest, BearerTokenIsChecked) {
  Mock mock({"--api-key", "k1", "--api-key", "k2"});
  std::string ev = Event("r1").dump();
  for (const std::vector<std::string>& headers : {std::vector<std::string>{},
                                                  {"Authorization: Bearer test_key"},
                                                  {"Authorization: k1"},
                                                  {"Authorization: Bearer k3"}}) {
    Reply r = Http(mock.port(), "POST", "/v1/events", ev, headers);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.Json(), json({{"message", "Unauthorized"}}));
  }
  EXPECT_EQ(Http(mock.port(), "POST", "/v1/events", ev, {"Authorization: Bearer k1"}).status, 201);
  EXPECT_EQ(Http(mock.port(), "POST", "/v1/events", ev, {"Authorization: bearer k2"}).status, 201);
  EXPECT_EQ(mock.Stats()["requests_by_status"]["401"], 4);
}

TEST(MockTest, InvalidEventsAreRejectedWithTheReason) {
  Mock mock({});
  struct Case {
    std::string body;
    std::string message_part;
  };
  json no_customer = Event("r");
  no_customer.erase("customer_id");
  json empty_type = Event("r");
  empty_type["event_type"] = "";
  json bad_ts = Event("r");
  bad_ts["timestamp"] = "2024-12-20 16:04:11";
  json no_zone = Event("r");
  no_zone["timestamp"] = "2024-12-20T16:04:11";
  json bad_day = Event("r");
  bad_day["timestamp"] = "2023-02-29T00:00:00Z";
  json float_ts = Event("r");
  float_ts["timestamp"] = 1734710651000.5;
  json no_record = Event("r");
  no_record.erase("record");
  json no_id = Event("r");
  no_id["record"].erase("id");
  json empty_id = Event("");
  json nested = Event("r");
  nested["record"]["meta"] = {{"a", 1}};
  json array_of_objects = Event("r");
  array_of_objects["record"]["items"] = json::array({{{"a", 1}}});
  std::vector<Case> cases = {
      {"{not json", "Malformed JSON"},
      {"[]", "one event"},
      {no_customer.dump(), "customer_id is required"},
      {empty_type.dump(), "event_type must not be empty"},
      {bad_ts.dump(), "ISO 8601"},
      {no_zone.dump(), "ISO 8601"},
      {bad_day.dump(), "ISO 8601"},
      {float_ts.dump(), "integer number of milliseconds"},
      {no_record.dump(), "record is required"},
      {no_id.dump(), "record.id is required"},
      {empty_id.dump(), "record.id must be a non-empty string or a number"},
      {nested.dump(), "record.meta is an object"},
      {array_of_objects.dump(), "record.items contains an object"},
  };
  for (const Case& c : cases) {
    Reply r = Http(mock.port(), "POST", "/v1/events", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_NE(r.Json()["message"].get<std::string>().find(c.message_part), std::string::npos)
        << c.body << " -> " << r.body;
  }
  EXPECT_EQ(mock.Get("/_mock/events").body, "[]");

  // What Hyperline accepts: offsets, fractions, milliseconds, numeric ids, arrays of scalars.
  json ok1 = Event("a");
  ok1["timestamp"] = "2024-02-29T23:59:59.123456-05:30";
  json ok2 = Event("b");
  ok2["timestamp"] = 1734710651000;
  json ok3 = Event("c");
  ok3["record"]["id"] = 42;
  ok3["record"]["list"] = {"x", 2, false};
  json ok4 = Event("d");
  ok4["timestamp"] = "1734710651000";
  for (const json& ok : {ok1, ok2, ok3, ok4}) {
    EXPECT_EQ(mock.Post("/v1/events", ok).status, 201) << ok.dump();
  }
  EXPECT_EQ(mock.Stats()["events_unique"], 4);
}

TEST(MockTest, BatchSplitsCreatedAndFailed) {
  Mock mock({"--reject-ids", "bad1,bad2"});
  json bad = Event("r2");
  bad["record"]["nested"] = {{"x", 1}};
  json batch = json::array({Event("r1"), bad, Event("bad1"), 7, Event("r3")});
  Reply r = mock.Post("/v1/events/batch", batch);
  ASSERT_EQ(r.status, 201);
  json out = r.Json();
  ASSERT_EQ(out["events_created"].size(), 2u);
  EXPECT_EQ(out["events_created"][0], Event("r1"));
  EXPECT_EQ(out["events_created"][1], Event("r3"));
  ASSERT_EQ(out["events_failed"].size(), 3u);
  json failed0 = out["events_failed"][0];
  EXPECT_NE(failed0["error"].get<std::string>().find("record.nested"), std::string::npos);
  failed0.erase("error");
  EXPECT_EQ(failed0, bad);  // the event as sent, plus "error"
  EXPECT_EQ(out["events_failed"][1]["record"]["id"], "bad1");
  EXPECT_NE(out["events_failed"][1]["error"].get<std::string>().find("rejected"),
            std::string::npos);
  EXPECT_EQ(out["events_failed"][2]["event"], 7);
  json stats = mock.Stats();
  EXPECT_EQ(stats["events_received"], 2);
  EXPECT_EQ(stats["events_failed"], 3);

  // Whole-batch errors.
  EXPECT_EQ(mock.Post("/v1/events/batch", json::array()).status, 400);
  EXPECT_EQ(mock.Post("/v1/events/batch", Event("x")).status, 400);
  EXPECT_EQ(Http(mock.port(), "POST", "/v1/events/batch", "[{").status, 400);
  json big = json::array();
  for (int i = 0; i < 5001; i++) big.push_back(Event("b" + std::to_string(i)));
  Reply too_big = mock.Post("/v1/events/batch", big);
  EXPECT_EQ(too_big.status, 400);
  EXPECT_NE(too_big.body.find("5000"), std::string::npos);
  big.erase(big.begin());
  EXPECT_EQ(mock.Post("/v1/events/batch", big).status, 201);
  EXPECT_EQ(mock.Stats()["events_unique"], 5002);
}

TEST(MockTest, RejectIdsOnSingleEvents) {
  Mock mock({"--reject-ids", "no"});
  Reply r = mock.Post("/v1/events", Event("no"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("\"no\""), std::string::npos);
  EXPECT_EQ(mock.Post("/v1/events", Event("yes")).status, 201);
}

TEST(MockTest, SameRecordIdReplacesAndIsLogged) {
  Mock mock({});
  json v1 = Event("r1");
  json v2 = Event("r1");
  v2["record"]["durationInMs"] = 99;
  EXPECT_EQ(mock.Post("/v1/events", Event("r0")).status, 201);
  EXPECT_EQ(mock.Post("/v1/events", v1).status, 201);
  EXPECT_EQ(mock.Post("/v1/events/batch", json::array({v2})).status, 201);
  json events = mock.Get("/_mock/events").Json();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], Event("r0"));  // first-arrival order
  EXPECT_EQ(events[1], v2);           // latest version
  json stats = mock.Stats();
  EXPECT_EQ(stats["events_received"], 3);
  EXPECT_EQ(stats["events_unique"], 2);
  EXPECT_EQ(stats["duplicates"], 1);

  json log = mock.Get("/_mock/log?record_id=r1").Json();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["event"], v1);
  EXPECT_EQ(log[1]["event"], v2);
  EXPECT_LT(log[0]["seq"].get<int>(), log[1]["seq"].get<int>());
  EXPECT_LE(log[0]["received_at_ms"].get<int64_t>(), log[1]["received_at_ms"].get<int64_t>());
  EXPECT_EQ(mock.Get("/_mock/log?record_id=nothing").body, "[]");
  EXPECT_EQ(mock.Get("/_mock/log").status, 400);
}

TEST(MockTest, DeleteByRecordIds) {
  Mock mock({});
  json e42 = Event("x");
  e42["record"]["id"] = 42;
  EXPECT_EQ(mock.Post("/v1/events/batch", json::array({Event("a"), Event("b"), e42})).status, 201);
  Reply r = Http(mock.port(), "DELETE", "/v1/events",
                 json{{"matching", "record_ids"}, {"record_ids", {"a", 42, "missing"}}}.dump());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Json(), json({{"deleted", 2}}));
  EXPECT_EQ(mock.Get("/_mock/events").Json(), json::array({Event("b")}));
  json stats = mock.Stats();
  EXPECT_EQ(stats["events_deleted"], 2);
  EXPECT_EQ(stats["events_unique"], 1);
  json log = mock.Get("/_mock/log?record_id=a").Json();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1]["deleted"], true);
  EXPECT_GT(log[1]["seq"].get<int>(), log[0]["seq"].get<int>());

  EXPECT_EQ(Http(mock.port(), "DELETE", "/v1/events", R"({"matching":"all"})").status, 400);
  EXPECT_EQ(Http(mock.port(), "DELETE", "/v1/events", R"({"matching":"record_ids"})").status, 400);
  json many = json::array();
  for (int i = 0; i < 5001; i++) many.push_back(std::to_string(i));
  EXPECT_EQ(Http(mock.port(), "DELETE", "/v1/events",
                 json{{"matching", "record_ids"}, {"record_ids", many}}.dump())
                .status,
            400);
}

TEST(MockTest, ListEventsFiltersAndPages) {
  Mock mock({});
  json batch = json::array();
  for (int i = 0; i < 150; i++) {
    batch.push_back(Event("r" + std::to_string(i), i % 2 ? "odd" : "even", i < 120 ? "a" : "b"));
  }
  ASSERT_EQ(mock.Post("/v1/events/batch", batch).status, 201);
  EXPECT_EQ(mock.Get("/v1/events?event_type=a").Json().size(), 100u);  // default take
  EXPECT_EQ(mock.Get("/v1/events?event_type=b").Json().size(), 30u);
  json page = mock.Get("/v1/events?event_type=a&take=5&skip=10").Json();
  ASSERT_EQ(page.size(), 5u);
  EXPECT_EQ(page[0]["record"]["id"], "r10");
  json odd = mock.Get("/v1/events?event_type=b&customer_id=odd").Json();
  EXPECT_EQ(odd.size(), 15u);
  for (const auto& e : odd) EXPECT_EQ(e["customer_id"], "odd");
  json some = mock.Get("/v1/events?event_type=a&record_id__in=r3,r7,r140").Json();
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[1]["record"]["id"], "r7");
  EXPECT_EQ(mock.Get("/v1/events?event_type=a&take=101").status, 400);
  EXPECT_EQ(mock.Get("/v1/events?event_type=a&skip=-1").status, 400);
  EXPECT_EQ(Http(mock.port(), "GET", "/v1/events?event_type=a", "", {}).status, 401);
  EXPECT_EQ(mock.Get("/_mock/events").Json().size(), 150u);
}

TEST(MockTest, UnknownPathIs404) {
  Mock mock({});
  for (const char* path : {"/v2/events", "/", "/v1/events/batch/x", "/_mock/nothing"}) {
    Reply r = mock.Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.Json(), json({{"message", "Not found"}}));
  }
}

TEST(MockTest, FailRateOneFailsEveryApiRequest) {
  Mock mock({"--fail-rate", "1.0", "--fail-status", "500"});
  for (int i = 0; i < 5; i++) {
    Reply r = mock.Post("/v1/events", Event("r" + std::to_string(i)));
    EXPECT_EQ(r.status, 500);
    EXPECT_TRUE(r.Json().contains("message"));
  }
  EXPECT_EQ(mock.Get("/_mock/health").status, 200);  // control endpoints are never faulted
  json stats = mock.Stats();
  EXPECT_EQ(stats["requests_by_status"]["500"], 5);
  EXPECT_EQ(stats["events_received"], 0);
}

TEST(MockTest, DefaultFailStatusIs503) {
  Mock mock({"--fail-rate", "1"});
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 503);
}

TEST(MockTest, Force429ThenRecovers) {
  Mock mock({"--force-429", "2", "--retry-after", "7"});
  for (int i = 0; i < 2; i++) {
    Reply r = mock.Post("/v1/events", Event("r"));
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.Header("retry-after"), "7");
    EXPECT_FALSE(r.Header("x-ratelimit-limit").empty());
    EXPECT_EQ(r.Header("x-ratelimit-remaining"), "0");
    EXPECT_FALSE(r.Header("x-ratelimit-reset").empty());
  }
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 201);
  // And again through the control endpoint.
  EXPECT_EQ(mock.Post("/_mock/config", json{{"force_429", 1}}).status, 200);
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 429);
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 201);
  EXPECT_EQ(mock.Stats()["requests_by_status"]["429"], 3);
}

TEST(MockTest, BodiesOverTheLimitGet413) {
  Mock mock({"--max-body-bytes", "300"});
  json big = Event("big");
  big["record"]["pad"] = std::string(300, 'x');
  Reply r = mock.Post("/v1/events", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.Json()["message"].get<std::string>().find("the limit is 300 bytes"),
            std::string::npos);
  EXPECT_EQ(mock.Post("/v1/events/batch", json::array({Event("a"), Event("b"), Event("c")})).status,
            413);
  EXPECT_EQ(mock.Post("/v1/events", Event("small")).status, 201);
  json stats = mock.Stats();
  EXPECT_EQ(stats["requests_by_status"]["413"], 2);
  EXPECT_EQ(stats["events_unique"], 1);  // nothing of a refused body is stored
  // Live: raised, then off.
  EXPECT_EQ(mock.Post("/_mock/config", json{{"max_body_bytes", 100000}}).status, 200);
  EXPECT_EQ(mock.Post("/v1/events", big).status, 201);
  EXPECT_EQ(mock.Get("/_mock/config").Json()["max_body_bytes"], 100000);
  EXPECT_EQ(mock.Post("/_mock/config", json{{"max_body_bytes", nullptr}}).status, 200);
  EXPECT_EQ(mock.Get("/_mock/config").Json()["max_body_bytes"], 0);
  EXPECT_EQ(mock.Post("/_mock/config", json{{"max_body_bytes", -1}}).status, 400);
}

TEST(MockTest, DropClosesTheConnectionWithoutAnswer) {
  Mock mock({"--drop-rate", "1"});
  Reply r = mock.Post("/v1/events", Event("r"));
  EXPECT_TRUE(r.dropped);
  EXPECT_EQ(r.status, 0);
  json stats = mock.Stats();
  EXPECT_EQ(stats["requests_dropped"], 1);
  EXPECT_EQ(stats["events_received"], 0);  // "before": not processed

  // "after": processed and stored, but the answer is lost.
  EXPECT_EQ(mock.Post("/_mock/config", json{{"drop_mode", "after"}}).status, 200);
  EXPECT_TRUE(mock.Post("/v1/events", Event("r2")).dropped);
  EXPECT_EQ(mock.Stats()["events_received"], 1);
  EXPECT_EQ(mock.Post("/_mock/config", json{{"drop_rate", 0}}).status, 200);
  EXPECT_EQ(mock.Post("/v1/events", Event("r3")).status, 201);
}

TEST(MockTest, DelayAddsLatency) {
  Mock mock({"--delay-ms", "300"});
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 201);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_GE(ms, 300);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(mock.Get("/_mock/health").status, 200);  // control endpoints are not delayed
  ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                             start)
           .count();
  EXPECT_LT(ms, 300);
}

TEST(MockTest, SigtermDoesNotWaitForDelayedRequests) {
  Mock mock({"--delay-ms", "10000"});
  Reply slow;
  std::thread client([&] { slow = mock.Post("/v1/events", Event("slow")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(mock.Stop(), 0);
  client.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(slow.dropped);
}

TEST(MockTest, RateLimitOverSlidingSecond) {
  Mock mock({"--rate-limit", "5", "--retry-after", "2"});
  int ok = 0, limited = 0;
  Reply last_429;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 12; i++) {
    Reply r = mock.Post("/v1/events", Event("r" + std::to_string(i)));
    if (r.status == 201) {
      ok++;
      EXPECT_EQ(r.Header("x-ratelimit-limit"), "5");
    } else if (r.status == 429) {
      limited++;
      last_429 = r;
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  if (elapsed < std::chrono::milliseconds(900)) {  // all inside one window
    EXPECT_EQ(ok, 5);
    EXPECT_EQ(limited, 7);
  }
  ASSERT_GT(limited, 0);
  EXPECT_EQ(last_429.Header("retry-after"), "2");
  EXPECT_EQ(last_429.Header("x-ratelimit-limit"), "5");
  EXPECT_EQ(last_429.Header("x-ratelimit-remaining"), "0");
  int reset = std::atoi(last_429.Header("x-ratelimit-reset").c_str());
  EXPECT_GE(reset, 1);
  EXPECT_LE(reset, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(mock.Post("/v1/events", Event("late")).status, 201);
}

TEST(MockTest, ConfigMergesAndValidates) {
  Mock mock({"--fail-status", "502"});
  json cfg = mock.Get("/_mock/config").Json();
  EXPECT_EQ(cfg["fail_status"], 502);
  EXPECT_EQ(cfg["api_keys"], json::array({"test_key"}));
  Reply r = mock.Post("/_mock/config", json{{"delay_ms", 5}, {"api_keys", {"new"}}});
  ASSERT_EQ(r.status, 200);
  cfg = r.Json();
  EXPECT_EQ(cfg["delay_ms"], 5);
  EXPECT_EQ(cfg["fail_status"], 502);  // untouched keys stay
  EXPECT_EQ(mock.Get("/_mock/config").Json(), cfg);
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 401);
  EXPECT_EQ(
      Http(mock.port(), "POST", "/v1/events", Event("r").dump(), {"Authorization: Bearer new"})
          .status,
      201);
  EXPECT_EQ(mock.Post("/_mock/config", json{{"fail_rate", 2}}).status, 400);
  EXPECT_EQ(mock.Post("/_mock/config", json{{"fail_status", "x"}}).status, 400);
  Reply unknown = mock.Post("/_mock/config", json{{"nope", 1}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("nope"), std::string::npos);
  EXPECT_EQ(mock.Get("/_mock/config").Json(), cfg);  // refused patches change nothing
}

TEST(MockTest, ResetClearsEventsAndCountersButKeepsConfig) {
  Mock mock({"--reject-ids", "z"});
  EXPECT_EQ(mock.Post("/v1/events", Event("r")).status, 201);
  EXPECT_EQ(mock.Post("/_mock/reset", json::object()).status, 200);
  EXPECT_EQ(mock.Get("/_mock/events").body, "[]");
  EXPECT_EQ(mock.Get("/_mock/log?record_id=r").body, "[]");
  json stats = mock.Stats();
  EXPECT_EQ(stats["requests"], 0);
  EXPECT_EQ(stats["events_received"], 0);
  EXPECT_EQ(stats["events_unique"], 0);
  EXPECT_EQ(stats["requests_by_status"], json::object());
  EXPECT_EQ(mock.Get("/_mock/config").Json()["reject_ids"], json::array({"z"}));
  EXPECT_EQ(mock.Post("/v1/events", Event("z")).status, 400);
}

TEST(MockTest, NonHttpBytesGet400AtOnce) {
  Mock mock({});
  int fd = Connect(mock.port());
  ASSERT_GE(fd, 0);
  SendAll(fd, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  std::string buf;
  Reply r = ReadReply(fd, &buf);
  close(fd);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(mock.Get("/_mock/health").status, 200);
}

TEST(MockTest, KeepAlivePipeliningAndExpectContinue) {
  Mock mock({});
  int fd = Connect(mock.port());
  ASSERT_GE(fd, 0);
  std::vector<std::string> h = {"Authorization: Bearer test_key"};
  // Two requests in one write, on one connection.
  SendAll(fd, RequestText("POST", "/v1/events", Event("p1").dump(), h, false) +
                  RequestText("POST", "/v1/events", Event("p2").dump(), h, false));
  std::string buf;
  EXPECT_EQ(ReadReply(fd, &buf).status, 201);
  EXPECT_EQ(ReadReply(fd, &buf).status, 201);
  // Expect: 100-continue: the mock must invite the body before it is sent.
  std::string body = Event("p3").dump();
  std::string head =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test_key\r\n"
      "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  SendAll(fd, head);
  Reply cont = ReadReply(fd, &buf);
  EXPECT_EQ(cont.status, 100);
  SendAll(fd, body);
  EXPECT_EQ(ReadReply(fd, &buf).status, 201);
  // A chunked body.
  std::string chunked_body = Event("p4").dump();
  std::string chunked =
      "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test_key\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  chunked += "5\r\n" + chunked_body.substr(0, 5) + "\r\n";
  char size_hex[16];
  snprintf(size_hex, sizeof(size_hex), "%zx", chunked_body.size() - 5);
  chunked += std::string(size_hex) + "\r\n" + chunked_body.substr(5) + "\r\n0\r\n\r\n";
  SendAll(fd, chunked);
  Reply r4 = ReadReply(fd, &buf);
  EXPECT_EQ(r4.status, 201);
  EXPECT_EQ(r4.body, chunked_body);
  close(fd);
  EXPECT_EQ(mock.Stats()["events_unique"], 4);
}

}  // namespace
}  // namespace hyperline
