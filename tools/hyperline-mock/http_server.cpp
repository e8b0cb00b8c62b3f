// http_server.cpp: epoll + worker pool HTTP/1.1 server (see http_server.hpp).
#include "http_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace hyperline {
namespace mock {

namespace {

constexpr size_t kMaxHeaderBytes = size_t{64} * 1024;
constexpr size_t kMaxBodyBytes = size_t{256} * 1024 * 1024;
constexpr int kSocketTimeoutSec = 30;

// Returns true when a and b are equal ignoring ASCII case.
bool EqualsNoCase(const std::string& a, const char* b) {
  size_t n = strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; i++) {
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Returns true when the comma-separated header value contains token (any case).
bool HasToken(const std::string& value, const char* token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    size_t a = start, b = end;
    while (a < b && isspace(static_cast<unsigned char>(value[a]))) a++;
    while (b > a && isspace(static_cast<unsigned char>(value[b - 1]))) b--;
    if (EqualsNoCase(value.substr(a, b - a), token)) return true;
    start = end + 1;
  }
  return false;
}

// Returns the standard reason phrase for an HTTP status code.
const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

// Writes all of the given buffers; false when the peer is gone or too slow.
bool WriteAll(int fd, const std::string& head, const std::string* body) {
  size_t head_off = 0, body_off = 0;
  size_t body_len = body ? body->size() : 0;
  while (head_off < head.size() || body_off < body_len) {
    iovec iov[2];
    int n = 0;
    if (head_off < head.size()) {
      iov[n].iov_base = const_cast<char*>(head.data() + head_off);
      iov[n].iov_len = head.size() - head_off;
      n++;
    }
    if (body_off < body_len) {
      iov[n].iov_base = const_cast<char*>(body->data() + body_off);
      iov[n].iov_len = body_len - body_off;
      n++;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(w);
    size_t take = std::min(left, head.size() - head_off);
    head_off += take;
    left -= take;
    body_off += left;
  }
  return true;
}

// Outcome of trying to decode a chunked body from a buffer.
enum class ChunkResult { kNeedMore, kError, kDone };

// Decodes a chunked body starting at buf[start]; on kDone sets *end past it.
ChunkResult DecodeChunked(const std::string& buf, size_t start, std::string* out, size_t* end) {
  out->clear();
  size_t p = start;
  for (;;) {
    size_t eol = buf.find("\r\n", p);
    if (eol == std::string::npos)
      return buf.size() - p > 1024 ? ChunkResult::kError : ChunkResult::kNeedMore;
    size_t size = 0;
    size_t digits = 0;
    for (size_t i = p; i < eol; i++) {
      char ch = buf[i];
      int v;
      if (ch >= '0' && ch <= '9')
        v = ch - '0';
      else if (ch >= 'a' && ch <= 'f')
        v = ch - 'a' + 10;
      else if (ch >= 'A' && ch <= 'F')
        v = ch - 'A' + 10;
      else if (ch == ';' || ch == ' ' || ch == '\t')
        break;
      else
        return ChunkResult::kError;
      if (++digits > 15) return ChunkResult::kError;
      size = size * 16 + static_cast<size_t>(v);
    }
    if (digits == 0) return ChunkResult::kError;
    p = eol + 2;
    if (size == 0) {
      // Trailers (ignored) end with an empty line.
      for (;;) {
        size_t line_end = buf.find("\r\n", p);
        if (line_end == std::string::npos) return ChunkResult::kNeedMore;
        bool empty = line_end == p;
        p = line_end + 2;
        if (empty) {
          *end = p;
          return ChunkResult::kDone;
        }
      }
    }
    if (out->size() + size > kMaxBodyBytes) return ChunkResult::kError;
    if (buf.size() < p + size + 2) return ChunkResult::kNeedMore;
    out->append(buf, p, size);
    p += size;
    if (buf.compare(p, 2, "\r\n") != 0) return ChunkResult::kError;
    p += 2;
  }
}

// Splits a raw query string into decoded name/value pairs.
std::vector<std::pair<std::string, std::string>> ParseQuery(const std::string& q) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < q.size()) {
    size_t amp = q.find('&', start);
    if (amp == std::string::npos) amp = q.size();
    std::string part = q.substr(start, amp - start);
    if (!part.empty()) {
      size_t eq = part.find('=');
      if (eq == std::string::npos) {
        out.emplace_back(PercentDecode(part, true), "");
      } else {
        out.emplace_back(PercentDecode(part.substr(0, eq), true),
                         PercentDecode(part.substr(eq + 1), true));
      }
    }
    start = amp + 1;
  }
  return out;
}

}  // namespace

std::string PercentDecode(const std::string& s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    char ch = s[i];
    if (ch == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (ch == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

const std::string* HttpRequest::Header(const std::string& name) const {
  for (const auto& h : headers) {
    if (EqualsNoCase(h.first, name.c_str())) return &h.second;
  }
  return nullptr;
}

const std::string* HttpRequest::Param(const std::string& name) const {
  for (const auto& p : params) {
    if (p.first == name) return &p.second;
  }
  return nullptr;
}

// A connection and the bytes read from it but not yet consumed.
struct HttpServer::Connection {
  int fd = -1;
  std::string buf;
};

HttpServer::HttpServer(Handler handler, int threads)
    : handler_(std::move(handler)), threads_(threads < 1 ? 1 : threads) {}

HttpServer::~HttpServer() {
  for (Connection* c : connections_) {
    close(c->fd);
    delete c;
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

int HttpServer::Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error("cannot resolve host " + host + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  // Why IPv4 first: "localhost" may resolve to ::1 first, and clients told
  // http://localhost:PORT usually try 127.0.0.1.
  std::vector<addrinfo*> candidates;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) candidates.push_back(ai);
  }
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET) candidates.push_back(ai);
  }
  for (addrinfo* ai : candidates) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_error = strerror(errno);
      close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             last_error);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || stop_fd_ < 0) throw std::runtime_error("epoll/eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: wakes every worker once stopping
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  return bound;
}

void HttpServer::Run() {
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads_));  // threads_ >= 1 (constructor)
  for (int i = 0; i < threads_; i++) workers.emplace_back([this] { WorkerLoop(); });
  AcceptLoop();
  uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  for (auto& t : workers) t.join();
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  // Why shutdown and not close: the fds stay owned by the threads using them;
  // shutdown wakes accept() and any worker blocked in recv() on them.
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  std::lock_guard<std::mutex> lock(connections_mutex_);
  for (Connection* c : connections_) shutdown(c->fd, SHUT_RDWR);
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) break;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        usleep(10000);
      }
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{kSocketTimeoutSec, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    auto* c = new Connection;
    c->fd = fd;
    {
      std::lock_guard<std::mutex> lock(connections_mutex_);
      if (stopping_.load()) {
        close(fd);
        delete c;
        break;
      }
      connections_.insert(c);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = c;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) Close(c);
  }
}

void HttpServer::WorkerLoop() {
  for (;;) {
    epoll_event ev{};
    int n = epoll_wait(epoll_fd_, &ev, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (n == 0) continue;
    if (ev.data.ptr == nullptr) return;  // stop_fd_
    auto* c = static_cast<Connection*>(ev.data.ptr);
    if (stopping_.load() || !Serve(c)) {
      Close(c);
      continue;
    }
    // Why re-arm only now: with EPOLLONESHOT no other worker can see c until
    // this call, so a connection is never served by two threads at once.
    epoll_event again{};
    again.events = EPOLLIN | EPOLLONESHOT;
    again.data.ptr = c;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &again) != 0) Close(c);
  }
}

void HttpServer::Close(Connection* c) {
  {
    std::lock_guard<std::mutex> lock(connections_mutex_);
    connections_.erase(c);
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  delete c;
}

bool HttpServer::Serve(Connection* c) {
  // Reads more bytes into c->buf; false on EOF, error or timeout.
  auto read_more = [c]() -> bool {
    size_t old = c->buf.size();
    c->buf.resize(old + 65536);
    ssize_t n;
    do {
      n = recv(c->fd, &c->buf[old], 65536, 0);
    } while (n < 0 && errno == EINTR);
    c->buf.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    return n > 0;
  };
  auto send_simple = [c](int status, const std::string& message) {
    std::string body = "{\"message\":\"" + message + "\"}";
    std::string head =
        "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n";
    WriteAll(c->fd, head, &body);
  };

  bool first = true;
  for (;;) {
    // 1. The head: request line and headers.
    size_t head_end;
    while ((head_end = c->buf.find("\r\n\r\n")) == std::string::npos) {
      if (c->buf.size() > kMaxHeaderBytes) {
        send_simple(431, "Request headers too large");
        return false;
      }
      // A connection woken by epoll has bytes (or EOF) ready; after a served
      // request with nothing buffered, go back to epoll instead of blocking.
      if (!first && c->buf.empty()) return true;
      if (!read_more()) return false;
      // Why: a TLS handshake (or other non-HTTP bytes) would otherwise wait for
      // a blank line that never comes; every HTTP method starts with A-Z.
      if (c->buf[0] < 'A' || c->buf[0] > 'Z') {
        send_simple(400, "Not an HTTP request (https to a plain http server?)");
        return false;
      }
    }
    first = false;
    HttpRequest req;
    size_t line_end = c->buf.find("\r\n");
    std::string line = c->buf.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) {
      send_simple(400, "Malformed request line");
      return false;
    }
    req.method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    if (version.compare(0, 5, "HTTP/") != 0) {
      send_simple(400, "Malformed request line");
      return false;
    }
    size_t qm = target.find('?');
    req.path = PercentDecode(target.substr(0, qm), false);
    if (qm != std::string::npos) {
      req.query_string = target.substr(qm + 1);
      req.params = ParseQuery(req.query_string);
    }
    size_t p = line_end + 2;
    while (p < head_end) {
      size_t e = c->buf.find("\r\n", p);
      if (e == std::string::npos || e > head_end) e = head_end;
      size_t colon = c->buf.find(':', p);
      if (colon != std::string::npos && colon < e) {
        size_t vs = colon + 1;
        while (vs < e && (c->buf[vs] == ' ' || c->buf[vs] == '\t')) vs++;
        size_t ve = e;
        while (ve > vs && (c->buf[ve - 1] == ' ' || c->buf[ve - 1] == '\t')) ve--;
        req.headers.emplace_back(c->buf.substr(p, colon - p), c->buf.substr(vs, ve - vs));
      }
      p = e + 2;
    }
    size_t body_start = head_end + 4;

    bool keep_alive = version == "HTTP/1.1";
    if (const std::string* conn = req.Header("Connection")) {
      if (HasToken(*conn, "close")) keep_alive = false;
      if (HasToken(*conn, "keep-alive")) keep_alive = true;
    }

    // 2. The body: Content-Length or chunked.
    const std::string* te = req.Header("Transfer-Encoding");
    const std::string* cl = req.Header("Content-Length");
    bool chunked = te && HasToken(*te, "chunked");
    size_t length = 0;
    if (!chunked && cl) {
      char* endp = nullptr;
      unsigned long long v = strtoull(cl->c_str(), &endp, 10);
      if (cl->empty() || *endp != '\0' || v > kMaxBodyBytes) {
        send_simple(v > kMaxBodyBytes ? 413 : 400, "Bad Content-Length");
        return false;
      }
      length = static_cast<size_t>(v);
    }
    const std::string* expect = req.Header("Expect");
    bool need_body = chunked || length > 0;
    if (expect && EqualsNoCase(*expect, "100-continue") && need_body &&
        c->buf.size() == body_start) {
      // Why: libcurl waits up to a second for this before sending a large body.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!WriteAll(c->fd, kContinue, nullptr)) return false;
    }
    size_t consumed;
    if (chunked) {
      size_t end = 0;
      for (;;) {
        ChunkResult r = DecodeChunked(c->buf, body_start, &req.body, &end);
        if (r == ChunkResult::kDone) break;
        if (r == ChunkResult::kError) {
          send_simple(400, "Malformed chunked body");
          return false;
        }
        if (!read_more()) return false;
      }
      consumed = end;
    } else {
      if (c->buf.capacity() < body_start + length) c->buf.reserve(body_start + length);
      while (c->buf.size() < body_start + length) {
        if (!read_more()) return false;
      }
      req.body.assign(c->buf, body_start, length);
      consumed = body_start + length;
    }
    c->buf.erase(0, consumed);

    // 3. Handle and answer.
    HttpResponse res;
    try {
      handler_(req, res);
    } catch (const std::exception& e) {
      res = HttpResponse();
      res.status = 500;
      res.body = "{\"message\":\"Internal error\"}";
    }
    if (res.drop) return false;
    std::string head;
    head.reserve(256);
    head += "HTTP/1.1 ";
    head += std::to_string(res.status);
    head += ' ';
    head += ReasonPhrase(res.status);
    head += "\r\nContent-Type: ";
    head += res.content_type;
    head += "\r\nContent-Length: ";
    head += std::to_string(res.body.size());
    head += "\r\n";
    for (const auto& h : res.headers) {
      head += h.first;
      head += ": ";
      head += h.second;
      head += "\r\n";
    }
    if (!keep_alive) head += "Connection: close\r\n";
    head += "\r\n";
    bool head_only = req.method == "HEAD";
    if (!WriteAll(c->fd, head, head_only ? nullptr : &res.body)) return false;
    if (!keep_alive) return false;
  }
}

}  // namespace mock
}  // namespace hyperline
