// http_server.hpp: the small HTTP/1.1 server under hyperline-mock.
//
// Vocabulary: a *connection* is one accepted TCP socket; it may carry many
// *requests* (keep-alive, pipelining). A pool of worker threads waits on one
// epoll set; a ready connection is served by exactly one worker at a time
// (EPOLLONESHOT), so idle keep-alive connections never hold a thread.
//
// Why not cpp-httplib: the project's CMake target for the mock does not link
// libcpp-httplib (the Debian package ships it compiled, not header-only), and a
// mock that must drop connections on purpose needs the socket anyway.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace hyperline {
namespace mock {

// One parsed request: method, decoded path and query, headers, whole body.
struct HttpRequest {
  std::string method;
  std::string path;          // percent-decoded, without the query string
  std::string query_string;  // raw, after '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> params;  // decoded query
  std::string body;

  // Returns the first header with this name (case-insensitive), or nullptr.
  const std::string* Header(const std::string& name) const;
  // Returns the first query parameter with this name, or nullptr.
  const std::string* Param(const std::string& name) const;
};

// What the handler answers; drop = close the connection without any answer.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool drop = false;
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  HttpServer(Handler handler, int threads);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port (port 0 = any free port); returns the port.
  // Throws std::runtime_error with a readable message on failure.
  int Listen(const std::string& host, int port);
  // Serves until Stop(); returns once every worker has finished.
  void Run();
  // Asks Run() to return; safe to call from any thread, more than once.
  void Stop();

 private:
  struct Connection;

  // Accepts connections and hands them to epoll until Stop().
  void AcceptLoop();
  // Serves ready connections, one at a time, until Stop().
  void WorkerLoop();
  // Serves the requests buffered or readable on c; false = close it.
  bool Serve(Connection* c);
  // Forgets, closes and frees c.
  void Close(Connection* c);

  Handler handler_;
  int threads_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable once Stop() was called
  std::atomic<bool> stopping_{false};
  std::mutex connections_mutex_;
  std::unordered_set<Connection*> connections_;
};

// Percent-decodes s; plus_as_space for query strings.
std::string PercentDecode(const std::string& s, bool plus_as_space);

}  // namespace mock
}  // namespace hyperline
