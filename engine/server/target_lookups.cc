#include "engine/server/target_lookups.h"

#include <simdjson.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/deliver/address_guard.h"
#include "engine/deliver/url.h"

namespace herald::server {

namespace asio = boost::asio;

namespace {

constexpr auto kKeepFor = std::chrono::minutes(1);
constexpr size_t kMaxKept = 4096;

void CollectUrls(simdjson::dom::element e, int depth, std::vector<std::string>& out) {
  if (depth > 8) return;  // management bodies are shallow; a deep one names no target we check
  simdjson::dom::array array;
  if (e.get_array().get(array) == simdjson::SUCCESS) {
    for (simdjson::dom::element item : array) CollectUrls(item, depth + 1, out);
    return;
  }
  simdjson::dom::object object;
  if (e.get_object().get(object) != simdjson::SUCCESS) return;
  for (auto [key, value] : object) {
    std::string_view url;
    if ((key == "notifyUrl" || key == "tokenUrl") &&
        value.get_string().get(url) == simdjson::SUCCESS) {
      out.emplace_back(url);
    } else {
      CollectUrls(value, depth + 1, out);
    }
  }
}

bool IsLiteral(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

TargetLookups::TargetLookups(std::chrono::milliseconds timeout, deliver::Resolver::LookupFn lookup)
    : timeout_(timeout), resolver_(std::move(lookup)) {}

TargetLookups::~TargetLookups() { Stop(); }

void TargetLookups::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  thread_.join();  // the lookups under way finish, skipping the names left
}

std::vector<std::string> TargetLookups::UrlsIn(std::string_view body) {
  std::vector<std::string> out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) return out;
  CollectUrls(root, 0, out);
  return out;
}

std::vector<std::string> TargetLookups::Unknown(const std::vector<std::string>& urls) const {
  std::vector<std::string> out;
  const auto now = std::chrono::steady_clock::now();
  MutexLock lock(mu_);
  for (const std::string& url : urls) {
    auto parsed = deliver::ParseUrl(url);
    if (!parsed.ok() || IsLiteral(parsed->host)) continue;
    auto it = answers_.find(parsed->host);
    if (it != answers_.end() && now - it->second.at < kKeepFor) continue;
    if (std::find(out.begin(), out.end(), parsed->host) == out.end()) out.push_back(parsed->host);
  }
  return out;
}

void TargetLookups::Keep(const std::string& host, std::vector<asio::ip::address> addresses) {
  MutexLock lock(mu_);
  if (answers_.size() >= kMaxKept) answers_.clear();
  answers_[host] = {std::move(addresses), std::chrono::steady_clock::now()};
}

void TargetLookups::LookUp(std::vector<std::string> hosts, std::function<void()> then) {
  {
    MutexLock lock(mu_);  // against Stop: spawned before it joins, or run here
    if (!stopping_) {
      Spawn(std::move(hosts), std::move(then));
      return;
    }
  }
  then();
}

void TargetLookups::Spawn(std::vector<std::string> hosts, std::function<void()> then) {
  asio::co_spawn(
      thread_,
      [this, hosts = std::move(hosts), then = std::move(then)]() -> asio::awaitable<void> {
        for (const std::string& host : hosts) {
          {
            MutexLock lock(mu_);
            if (stopping_) break;
          }
          auto addresses = co_await resolver_.Resolve(host, timeout_);
          Keep(host, addresses.ok() ? *std::move(addresses) : std::vector<asio::ip::address>{});
        }
        then();
      },
      asio::detached);
}

absl::Status TargetLookups::Check(std::string_view url) const {
  auto parsed = deliver::ParseUrl(url);
  if (!parsed.ok()) return absl::OkStatus();
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(parsed->host, ec);
  if (!ec) return deliver::CheckTargetAddresses(parsed->host, {&literal, 1});
  MutexLock lock(mu_);
  auto it = answers_.find(parsed->host);
  if (it == answers_.end()) return absl::OkStatus();
  return deliver::CheckTargetAddresses(parsed->host, it->second.addresses);
}

}  // namespace herald::server
