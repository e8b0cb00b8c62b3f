// main.cpp: command line of hyperline-mock, a local stand-in for Hyperline's
// ingest API (docs/mock.md lists every flag and endpoint).
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "http_server.hpp"
#include "mock_service.hpp"

namespace hyperline {
namespace mock {
namespace {

const char kUsage[] =
    "usage: hyperline-mock [options]\n"
    "  --host H            address to listen on (default 127.0.0.1)\n"
    "  --port N            port, 0 = any free port (default 0)\n"
    "  --port-file PATH    write the chosen port there once listening\n"
    "  --api-key KEY       accepted Bearer key, repeatable (default: test_key)\n"
    "  --fail-rate F       fraction 0..1 of requests answered with --fail-status\n"
    "  --fail-status N     status of injected failures (default 503)\n"
    "  --delay-ms N        latency added to every API request\n"
    "  --drop-rate F       fraction 0..1 of requests whose connection is closed unanswered\n"
    "  --drop-mode M       before (default: dropped unprocessed) or after (stored, then dropped)\n"
    "  --rate-limit N      max requests per sliding second; excess gets 429\n"
    "  --force-429 N       answer the next N requests with 429\n"
    "  --retry-after S     seconds in Retry-After of every 429 (default 1)\n"
    "  --max-body-bytes N  answer 413 to request bodies larger than N bytes (default 0: off)\n"
    "  --reject-ids a,b,c  record ids to reject (400 single, events_failed in batch)\n"
    "  --seed N            seed of the fault dice (default: random)\n"
    "  --threads N         worker threads (default 16)\n"
    "  --quiet             nothing on stderr\n"
    "  --verbose           one stderr line per API request\n";

// Options that are not part of the live config.
struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int threads = 16;
  bool quiet = false;
  bool verbose = false;
  bool seed_given = false;
  uint64_t seed = 0;
  int64_t force_429 = 0;
};

// Prints the error and the usage, then exits with status 2.
[[noreturn]] void Usage(const std::string& error) {
  fprintf(stderr, "hyperline-mock: %s\n%s", error.c_str(), kUsage);
  exit(2);
}

// Parses a number or exits with a usage error naming the flag.
double Number(const std::string& flag, const std::string& v, double lo, double hi, bool integer) {
  char* end = nullptr;
  double d = strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || d < lo || d > hi || (integer && d != std::trunc(d))) {
    Usage(flag + " expects " + (integer ? "an integer" : "a number") + " between " +
          std::to_string(static_cast<int64_t>(lo)) + " and " +
          std::to_string(static_cast<int64_t>(hi)) + ", got '" + v + "'");
  }
  return d;
}

// Appends the comma-separated items of v to out.
void SplitInto(const std::string& v, std::vector<std::string>* out) {
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    if (comma > start) out->push_back(v.substr(start, comma - start));
    start = comma + 1;
  }
}

// Writes the port to path atomically (temp file + rename), so readers never see half.
void WritePortFile(const std::string& path, int port) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << port << "\n";
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + strerror(errno));
  }
}

// Parses the flags, listens, announces the port, serves until SIGTERM/SIGINT.
int Main(int argc, char** argv) {
  Options opt;
  MockConfig config;
  bool keys_given = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (arg.compare(0, 2, "--") == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--host") {
      opt.host = need();
    } else if (arg == "--port") {
      opt.port = static_cast<int>(Number(arg, need(), 0, 65535, true));
    } else if (arg == "--port-file") {
      opt.port_file = need();
    } else if (arg == "--api-key") {
      std::string key = need();
      if (key.empty()) Usage("--api-key must not be empty");
      if (!keys_given) config.api_keys.clear();
      keys_given = true;
      config.api_keys.push_back(key);
    } else if (arg == "--fail-rate") {
      config.fail_rate = Number(arg, need(), 0, 1, false);
    } else if (arg == "--fail-status") {
      config.fail_status = static_cast<int>(Number(arg, need(), 100, 599, true));
    } else if (arg == "--delay-ms") {
      config.delay_ms = static_cast<int64_t>(Number(arg, need(), 0, 3600000, true));
    } else if (arg == "--drop-rate") {
      config.drop_rate = Number(arg, need(), 0, 1, false);
    } else if (arg == "--drop-mode") {
      config.drop_mode = need();
      if (config.drop_mode != "before" && config.drop_mode != "after") {
        Usage("--drop-mode must be before or after");
      }
    } else if (arg == "--rate-limit") {
      config.rate_limit = static_cast<int64_t>(Number(arg, need(), 0, 1e9, true));
    } else if (arg == "--force-429") {
      opt.force_429 = static_cast<int64_t>(Number(arg, need(), 0, 1e12, true));
    } else if (arg == "--retry-after") {
      config.retry_after = static_cast<int64_t>(Number(arg, need(), 0, 86400, true));
    } else if (arg == "--max-body-bytes") {
      config.max_body_bytes = static_cast<int64_t>(Number(arg, need(), 0, 1e12, true));
    } else if (arg == "--reject-ids") {
      SplitInto(need(), &config.reject_ids);
    } else if (arg == "--seed") {
      opt.seed = static_cast<uint64_t>(Number(arg, need(), 0, 9e15, true));
      opt.seed_given = true;
    } else if (arg == "--threads") {
      opt.threads = static_cast<int>(Number(arg, need(), 1, 1024, true));
    } else if (arg == "--quiet" || arg == "-q") {
      opt.quiet = true;
    } else if (arg == "--verbose" || arg == "-v") {
      opt.verbose = true;
    } else {
      Usage("unknown option " + arg);
    }
  }
  if (!opt.seed_given) opt.seed = std::random_device{}();

  // Why block the signals before any thread exists: every thread inherits the
  // mask, so only the dedicated sigwait thread ever sees SIGTERM/SIGINT and it
  // can stop the server with ordinary code instead of a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  MockService service(config, opt.force_429, opt.seed, opt.verbose, opt.quiet);
  HttpServer server(
      [&service](const HttpRequest& req, HttpResponse& res) { service.Handle(req, res); },
      opt.threads);
  int port;
  try {
    port = server.Listen(opt.host, opt.port);
    if (!opt.port_file.empty()) WritePortFile(opt.port_file, port);
  } catch (const std::exception& e) {
    fprintf(stderr, "hyperline-mock: %s\n", e.what());
    return 1;
  }
  std::string shown_host =
      opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host;
  printf("hyperline-mock listening on http://%s:%d\n", shown_host.c_str(), port);
  fflush(stdout);
  if (!opt.quiet) {
    fprintf(stderr, "hyperline-mock: config %s, seed %llu, %d threads\n",
            service.ConfigJson().c_str(), static_cast<unsigned long long>(opt.seed), opt.threads);
  }

  std::thread signal_thread([&server, &service, stop_signals, quiet = opt.quiet] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!quiet) fprintf(stderr, "hyperline-mock: signal %d, stopping\n", sig);
    service.Shutdown();
    server.Stop();
  });
  server.Run();
  // Why join and not detach: Run returns as soon as Stop has begun, while the
  // signal thread may still be inside Stop; the server and the service must
  // outlive it (a detached thread once crashed the mock at exit, under load).
  // SIGINT (one of the signals it waits for) wakes it if Run ended some other
  // way; once it has taken its signal, the extra one stays pending and is
  // dropped with the thread.
  pthread_kill(signal_thread.native_handle(), SIGINT);
  signal_thread.join();
  return 0;
}

}  // namespace
}  // namespace mock
}  // namespace hyperline

int main(int argc, char** argv) { return hyperline::mock::Main(argc, argv); }
