#include "engine/deliver/resolver.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "engine/common/mutex.h"
#include "engine/common/strings.h"

namespace herald::deliver {

namespace asio = boost::asio;

struct Resolver::Pool {
  LookupFn lookup;
  size_t max_threads = 0;
  Mutex mu;
  CondVar work;
  std::deque<std::string> queue HERALD_GUARDED_BY(mu);  // names to look up
  struct Waiter {
    std::weak_ptr<void> alive;  // the caller's wait; gone once it timed out
    Done done;
  };
  // By name: queued or running.
  absl::flat_hash_map<std::string, std::vector<Waiter>> waiting HERALD_GUARDED_BY(mu);
  size_t threads HERALD_GUARDED_BY(mu) = 0;
  size_t idle HERALD_GUARDED_BY(mu) = 0;
  bool stop HERALD_GUARDED_BY(mu) = false;
};

namespace {

absl::StatusOr<std::vector<std::string>> SystemLookup(std::string_view host) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(std::string(host), "", ec);  // getaddrinfo, here
  if (ec) return absl::UnavailableError(Cat("resolve ", host, ": ", ec.message()));
  std::vector<std::string> out;
  for (const auto& entry : results) out.push_back(entry.endpoint().address().to_string());
  return out;
}

}  // namespace

Resolver::Resolver(LookupFn lookup, size_t max_threads) : pool_(std::make_shared<Pool>()) {
  pool_->lookup = lookup ? std::move(lookup) : LookupFn(&SystemLookup);
  pool_->max_threads = std::max<size_t>(1, max_threads);
}

Resolver::~Resolver() {
  MutexLock lock(pool_->mu);
  pool_->stop = true;
  pool_->waiting.clear();  // callbacks hold the workers' executors: none runs from now on
  pool_->work.NotifyAll();
}

void Resolver::Lookup(const std::string& host, std::weak_ptr<void> alive, Done done) {
  MutexLock lock(pool_->mu);
  if (pool_->stop) return;
  auto [it, first] = pool_->waiting.try_emplace(host);
  // Callers that gave up on a lookup that hangs leave; the rest wait for its answer.
  std::erase_if(it->second, [](const Pool::Waiter& w) { return w.alive.expired(); });
  it->second.push_back({std::move(alive), std::move(done)});
  if (!first) return;  // that name is being looked up: its answer is shared
  pool_->queue.push_back(host);
  if (pool_->queue.size() > pool_->idle && pool_->threads < pool_->max_threads) {
    ++pool_->threads;
    std::thread([pool = pool_] { Run(pool); }).detach();
  } else {
    pool_->work.NotifyOne();
  }
}

void Resolver::Run(const std::shared_ptr<Pool>& pool) {
  MutexLock lock(pool->mu);
  for (;;) {
    ++pool->idle;
    while (!pool->stop && pool->queue.empty()) pool->work.Wait(pool->mu);
    --pool->idle;
    if (pool->stop) return;
    const std::string host = std::move(pool->queue.front());
    pool->queue.pop_front();
    pool->mu.unlock();
    const auto result = pool->lookup(host);
    pool->mu.lock();
    if (pool->stop) return;
    auto it = pool->waiting.find(host);
    if (it == pool->waiting.end()) continue;
    std::vector<Pool::Waiter> waiters = std::move(it->second);
    pool->waiting.erase(it);
    // Under the lock, so the destructor knows no callback runs once it has it.
    for (auto& w : waiters) w.done(result);
  }
}

asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolver::Resolve(
    std::string host, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  // The timer is the wait: the answer cancels it; if it expires first, the answer comes too
  // late and is dropped. Both run on this coroutine's (single-threaded) context.
  struct Wait {
    explicit Wait(const asio::any_io_executor& e) : timer(e) {}
    asio::steady_timer timer;
    bool done = false;
    absl::StatusOr<std::vector<std::string>> result = absl::UnknownError("no answer");
  };
  // Owned by this frame alone: the timer must go with its context, not with a late answer.
  auto wait = std::make_shared<Wait>(executor);
  wait->timer.expires_after(timeout);
  Lookup(host, wait,
         [weak = std::weak_ptr<Wait>(wait),
          executor](const absl::StatusOr<std::vector<std::string>>& result) {
           asio::post(executor, [weak, result] {
             const auto wait = weak.lock();
             if (!wait || wait->done) return;
             wait->done = true;
             wait->result = result;
             wait->timer.cancel();
           });
         });
  boost::system::error_code ec;
  co_await wait->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!wait->done) {
    wait->done = true;
    co_return absl::DeadlineExceededError(
        Cat("resolve ", host, ": no answer within ", timeout.count(), " ms (connectTimeout)"));
  }
  if (!wait->result.ok()) co_return wait->result.status();
  std::vector<asio::ip::address> out;
  for (const std::string& text : *wait->result) {
    const auto address = asio::ip::make_address(text, ec);
    if (!ec) out.push_back(address);
  }
  if (out.empty()) co_return absl::UnavailableError(Cat("resolve ", host, ": no address"));
  co_return out;
}

}  // namespace herald::deliver
