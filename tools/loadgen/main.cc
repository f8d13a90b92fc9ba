// herald-loadgen: drives a running heraldd end to end and measures it. It creates P profiles
// whose webhooks point at its own receivers and N subscriptions (bulk import), then posts
// realistic events — delivery reports, inbound messages, email events, 200 B to 2 KB — single or
// as NDJSON batches, flat out or at a fixed rate, over C keep-alive connections. Each payload
// carries the time it was sent; the receivers turn it into ingest→webhook latency.
//
//   herald-loadgen --target 127.0.0.1:8080 --subscriptions 10000 --profiles 20 --events 200000
//                  --batch 100 --concurrency 4 --max-bucket-size 100 --json
//
// heraldd must allow private targets (--allow-private-targets): the receivers are on loopback.
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tools/loadgen/workload.h"

// clang-format off
#include <utility>  // before Asio: Boost 1.74's asio uses std::exchange without including it
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Target {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
};

struct Options {
  std::vector<Target> targets{Target{}};  // clients spread over them; set-up goes to the first
  std::string api_key;
  size_t subscriptions = 1000;
  size_t profiles = 10;
  size_t events = 100'000;
  size_t batch = 1;  // events per request: 1 = single envelopes, more = NDJSON
  int concurrency = 4;
  double rate = 0;  // events per second; 0 = flat out
  int max_bucket_size = 1;
  int window_size = 20;
  int receiver_threads = 2;
  uint64_t seed = 42;
  bool json = false;
  int drain_timeout_s = 60;
  std::string latency_out;  // quantile,latency_us lines, for plots
  bool unmatched = false;   // events no subscription matches: measures ingest alone
};

void Usage() {
  std::fputs(
      "usage: herald-loadgen [flags]\n"
      "  --target HOST:PORT[,..] heraldd to drive (default 127.0.0.1:8080); with several\n"
      "                          (instances sharing a JetStream store) clients spread over them\n"
      "  --api-key KEY           its management and ingest key\n"
      "  --subscriptions N       subscriptions to create (default 1000)\n"
      "  --profiles P            webhook profiles, one receiver path each (default 10)\n"
      "  --events E              events to send (default 100000)\n"
      "  --batch B               events per request; >1 sends NDJSON (default 1)\n"
      "  --concurrency C         client connections (default 4)\n"
      "  --rate R                events per second; 0 = flat out (default 0)\n"
      "  --max-bucket-size M     the profiles' maxBucketSize (default 1)\n"
      "  --window-size W         the profiles' windowSize (default 20)\n"
      "  --receiver-threads T    webhook receiver threads (default 2)\n"
      "  --seed S                workload seed (default 42)\n"
      "  --drain-timeout S       seconds to wait for deliveries after sending (default 60)\n"
      "  --json                  print a JSON summary on stdout\n"
      "  --latency-out FILE      write the latency distribution (quantile, us) as CSV\n"
      "  --unmatched             events that match no subscription (ingest alone, no webhooks)\n",
      stderr);
}

bool ParseOptions(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--unmatched") {
      o.unmatched = true;
      continue;
    }
    if (a == "--help" || a == "-h") return false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "herald-loadgen: %s needs a value\n", argv[i]);
      return false;
    }
    const std::string v = argv[++i];
    auto num = [&](auto& out) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || d < 0) {
        std::fprintf(stderr, "herald-loadgen: %s: bad number \"%s\"\n", argv[i - 1], v.c_str());
        return false;
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(d);
      return true;
    };
    bool ok = true;
    if (a == "--target") {
      o.targets.clear();
      size_t from = 0;
      while (from <= v.size()) {
        const size_t comma = std::min(v.find(',', from), v.size());
        const std::string t = v.substr(from, comma - from);
        const size_t colon = t.rfind(':');
        if (colon == std::string::npos) return false;
        o.targets.push_back(
            {t.substr(0, colon), static_cast<uint16_t>(std::atoi(t.c_str() + colon + 1))});
        from = comma + 1;
      }
    } else if (a == "--api-key") {
      o.api_key = v;
    } else if (a == "--subscriptions") {
      ok = num(o.subscriptions);
    } else if (a == "--profiles") {
      ok = num(o.profiles);
    } else if (a == "--events") {
      ok = num(o.events);
    } else if (a == "--batch") {
      ok = num(o.batch);
    } else if (a == "--concurrency") {
      ok = num(o.concurrency);
    } else if (a == "--rate") {
      ok = num(o.rate);
    } else if (a == "--max-bucket-size") {
      ok = num(o.max_bucket_size);
    } else if (a == "--window-size") {
      ok = num(o.window_size);
    } else if (a == "--receiver-threads") {
      ok = num(o.receiver_threads);
    } else if (a == "--seed") {
      ok = num(o.seed);
    } else if (a == "--latency-out") {
      o.latency_out = v;
    } else if (a == "--drain-timeout") {
      ok = num(o.drain_timeout_s);
    } else {
      std::fprintf(stderr, "herald-loadgen: unknown flag %s\n", argv[i - 1]);
      return false;
    }
    if (!ok) return false;
  }
  if (o.subscriptions == 0 || o.profiles == 0 || o.batch == 0 || o.concurrency <= 0 ||
      o.max_bucket_size < 1 || o.max_bucket_size > 2000 || o.window_size < 20) {
    std::fprintf(stderr,
                 "herald-loadgen: subscriptions, profiles, batch and concurrency must be positive; "
                 "max-bucket-size 1..2000; window-size at least 20\n");
    return false;
  }
  return true;
}

// --- webhook receivers -------------------------------------------------------------------------

class Receivers {
 public:
  explicit Receivers(int threads) : acceptor_(io_) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    Accept();
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~Receivers() {
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  uint64_t delivered() const { return delivered_.load(); }
  uint64_t requests() const { return requests_.load(); }
  std::vector<int64_t> TakeLatencies() {
    std::lock_guard lock(mu_);
    return std::move(latencies_ns_);
  }
  int64_t last_delivery_ns() const { return last_ns_.load(); }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket s, Receivers* r) : stream(std::move(s)), owner(r) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::empty_body> response;
    Receivers* owner;
    void Read() {
      request = {};
      http::async_read(
          stream, buffer, request, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) return;
            self->owner->Record(self->request.body());
            self->response = {http::status::ok, 11};
            self->response.keep_alive(self->request.keep_alive());
            self->response.prepare_payload();
            http::async_write(self->stream, self->response, [self](beast::error_code ec2, size_t) {
              if (!ec2) self->Read();
            });
          });
    }
  };

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket s) {
      if (!ec) {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), this)->Read();
      }
      Accept();
    });
  }

  // Every "lgts":<ns> in the body is one delivered event (batches carry several).
  void Record(const std::string& body) {
    const int64_t now = herald::loadgen::NowNs();
    std::vector<int64_t> found;
    for (size_t at = body.find("\"lgts\":"); at != std::string::npos;
         at = body.find("\"lgts\":", at + 7)) {
      int64_t ts = 0;
      std::from_chars(body.data() + at + 7, body.data() + body.size(), ts);
      found.push_back(now - ts);
    }
    requests_.fetch_add(1);
    {
      std::lock_guard lock(mu_);
      latencies_ns_.insert(latencies_ns_.end(), found.begin(), found.end());
    }
    delivered_.fetch_add(found.size());
    last_ns_.store(now);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<int64_t> latencies_ns_;
  std::atomic<uint64_t> delivered_{0}, requests_{0};
  std::atomic<int64_t> last_ns_{0};
};

// --- the client --------------------------------------------------------------------------------

class Client {
 public:
  Client(const Options& o, size_t target = 0)
      : options_(o), target_(o.targets[target % o.targets.size()]), socket_(io_) {}
  bool Connect() {
    beast::error_code ec;
    socket_ = tcp::socket(io_);
    socket_.connect(tcp::endpoint(asio::ip::make_address(target_.host), target_.port), ec);
    if (!ec) socket_.set_option(tcp::no_delay(true), ec);
    return !ec;
  }
  // Returns the status (0 on a transport error) and the body.
  std::pair<int, std::string> Call(http::verb verb, const std::string& target,
                                   const std::string& body, const std::string& type) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!socket_.is_open() && !Connect()) return {0, "connect failed"};
      http::request<http::string_body> req(verb, target, 11);
      req.set(http::field::host, target_.host);
      req.set(http::field::content_type, type);
      if (!options_.api_key.empty()) req.set(http::field::authorization, "App " + options_.api_key);
      req.body() = body;
      req.prepare_payload();
      beast::error_code ec;
      http::write(socket_, req, ec);
      http::response<http::string_body> res;
      if (!ec) http::read(socket_, buffer_, res, ec);
      if (!ec) {
        if (!res.keep_alive()) socket_.close(ec);
        return {static_cast<int>(res.result_int()), std::move(res.body())};
      }
      socket_.close(ec);  // a stale keep-alive connection: once more on a fresh one
    }
    return {0, "transport error"};
  }

 private:
  const Options& options_;
  const Target target_;
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

size_t Field(const std::string& json, const char* key) {
  const std::string k = std::string("\"") + key + "\":";
  const size_t at = json.find(k);
  return at == std::string::npos ? 0 : std::strtoull(json.c_str() + at + k.size(), nullptr, 10);
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

Percentiles Summarize(std::vector<int64_t>& ns) {
  Percentiles p;
  if (ns.empty()) return p;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))]) /
           1000.0;
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = static_cast<double>(ns.back()) / 1000.0;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, o)) {
    Usage();
    return 2;
  }
  Receivers receivers(o.receiver_threads);
  Client admin(o);
  if (!admin.Connect()) {
    std::fprintf(stderr, "herald-loadgen: cannot connect to %s:%u\n", o.targets[0].host.c_str(),
                 o.targets[0].port);
    return 1;
  }
  // Profiles: create, or point an existing one at this run's receivers.
  for (size_t i = 0; i < o.profiles; ++i) {
    const std::string id = "lg-p" + std::to_string(i);
    const std::string body = R"({"profileId":")" + id +
                             R"(","webhook":{"notifyUrl":"http://127.0.0.1:)" +
                             std::to_string(receivers.port()) + "/" + id +
                             R"("},"maxBucketSize":)" + std::to_string(o.max_bucket_size) +
                             R"(,"windowSize":)" + std::to_string(o.window_size) + "}";
    auto [status, answer] =
        admin.Call(http::verb::post, "/subscriptions/1/profiles", body, "application/json");
    if (status == 409) {
      std::tie(status, answer) =
          admin.Call(http::verb::put, "/subscriptions/1/profiles/" + id, body, "application/json");
    }
    if (status != 200 && status != 201) {
      std::fprintf(stderr, "herald-loadgen: profile %s: HTTP %d %s\n", id.c_str(), status,
                   answer.c_str());
      return 1;
    }
  }
  // Subscriptions: bulk import in chunks (existing ones from an earlier run are reported, fine).
  const auto setup_start = Clock::now();
  for (size_t first = 0; first < o.subscriptions; first += 100'000) {
    std::string ndjson;
    for (size_t j = first; j < std::min(o.subscriptions, first + 100'000); ++j) {
      ndjson += herald::loadgen::Subscription(j, o.profiles);
      ndjson += '\n';
    }
    auto [status, answer] =
        admin.Call(http::verb::post, "/subscriptions/1/import", ndjson, "application/x-ndjson");
    if (status != 200 && status != 201) {
      std::fprintf(stderr, "herald-loadgen: import: HTTP %d %s\n", status,
                   answer.substr(0, 300).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "herald-loadgen: %zu profiles, %zu subscriptions ready in %.1f s\n",
               o.profiles, o.subscriptions,
               std::chrono::duration<double>(Clock::now() - setup_start).count());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // visible to routing
  // Other instances of a shared store: until they route by all of them too.
  for (size_t t = 1; t < o.targets.size(); ++t) {
    Client other(o, t);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    auto subscriptions = [&] {
      const std::string m = other.Call(http::verb::get, "/metrics", "", "text/plain").second;
      const std::string name = "\nherald_subscriptions ";
      const size_t at = m.find(name);
      return at == std::string::npos ? 0 : std::strtoull(m.c_str() + at + name.size(), nullptr, 10);
    };
    while (subscriptions() < o.subscriptions) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "herald-loadgen: target %zu never had the subscriptions\n", t);
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // Drive.
  std::atomic<uint64_t> next{0}, accepted{0}, rejected{0}, errors{0}, sent{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.concurrency; ++c) {
    clients.emplace_back([&, c] {
      Client client(o, static_cast<size_t>(c));
      std::mt19937_64 rng(o.seed * 1000 + c);
      std::string body;
      const bool ndjson = o.batch > 1;
      for (;;) {
        const uint64_t first = next.fetch_add(o.batch);
        if (first >= o.events) break;
        const uint64_t n = std::min<uint64_t>(o.batch, o.events - first);
        if (o.rate > 0) {
          const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(first / o.rate));
          std::this_thread::sleep_until(due);
        }
        body.clear();
        for (uint64_t k = 0; k < n; ++k) {
          // Subscription j matches only events of app-j; app-(N+j) matches none.
          const size_t j = rng() % o.subscriptions + (o.unmatched ? o.subscriptions : 0);
          herald::loadgen::AppendEvent(body, j, first + k, rng);
          if (ndjson) body += '\n';
        }
        auto [status, answer] = client.Call(http::verb::post, "/v1/events", body,
                                            ndjson ? "application/x-ndjson" : "application/json");
        sent.fetch_add(n);
        if (status == 202) {
          accepted.fetch_add(Field(answer, "accepted"));
          rejected.fetch_add(Field(answer, "rejected"));
        } else {
          errors.fetch_add(n);
        }
      }
    });
  }
  auto expected = [&] { return o.unmatched ? uint64_t{0} : accepted.load(); };
  // Progress, once a second, until everything sent is delivered (or the drain timeout).
  std::thread progress([&] {
    uint64_t last = 0;
    while (sent.load() < o.events || receivers.delivered() < expected()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const uint64_t d = receivers.delivered();
      std::fprintf(stderr,
                   "\rherald-loadgen: sent %" PRIu64 "/%zu  accepted %" PRIu64
                   "  delivered %" PRIu64 "  (%" PRIu64 "/s)  errors %" PRIu64 "   ",
                   sent.load(), o.events, accepted.load(), d, d - last,
                   errors.load() + rejected.load());
      last = d;
      if (sent.load() >= o.events &&
          Clock::now() - start >
              std::chrono::seconds(o.drain_timeout_s) + std::chrono::seconds(1)) {
        break;
      }
    }
    std::fputc('\n', stderr);
  });
  for (auto& t : clients) t.join();
  const double send_s = std::chrono::duration<double>(Clock::now() - start).count();
  const auto drain_deadline = Clock::now() + std::chrono::seconds(o.drain_timeout_s);
  while (receivers.delivered() < expected() && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  progress.join();
  const uint64_t delivered = receivers.delivered();
  const double deliver_s = std::max(
      1e-9,
      static_cast<double>(
          receivers.last_delivery_ns() -
          std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count()) /
          1e9);
  auto latencies = receivers.TakeLatencies();
  const Percentiles p = Summarize(latencies);
  if (!o.latency_out.empty()) herald::loadgen::WriteQuantiles(o.latency_out, latencies);
  const uint64_t missing = expected() > delivered ? expected() - delivered : 0;
  const uint64_t all_errors = errors.load() + rejected.load() + missing;
  const double eps = static_cast<double>(accepted.load()) / send_s;
  const double dps = static_cast<double>(delivered) / deliver_s;
  if (o.json) {
    std::printf(
        R"({"events":%zu,"batch":%zu,"concurrency":%d,"subscriptions":%zu,"profiles":%zu,)"
        R"("max_bucket_size":%d,"accepted":%)" PRIu64 R"(,"delivered":%)" PRIu64
        R"(,"webhook_requests":%)" PRIu64
        R"(,"events_per_second":%.0f,"deliveries_per_second":%.0f,)"
        R"("latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f},"errors":%)" PRIu64
        "}\n",
        o.events, o.batch, o.concurrency, o.subscriptions, o.profiles, o.max_bucket_size,
        accepted.load(), delivered, receivers.requests(), eps, dps, p.p50, p.p90, p.p99, p.p999,
        p.max, all_errors);
  } else {
    std::printf(
        "accepted %" PRIu64
        " events in %.2f s: %.0f events/s\n"
        "delivered %" PRIu64 " in %" PRIu64
        " webhook requests: %.0f deliveries/s\n"
        "ingest -> webhook latency (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n"
        "errors %" PRIu64 " (HTTP %" PRIu64 ", rejected %" PRIu64 ", undelivered %" PRIu64 ")\n",
        accepted.load(), send_s, eps, delivered, receivers.requests(), dps, p.p50, p.p90, p.p99,
        p.p999, p.max, all_errors, errors.load(), rejected.load(), missing);
  }
  return all_errors == 0 ? 0 : 1;
}
