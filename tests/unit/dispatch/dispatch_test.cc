// Dispatch on its own: notifications made from a pooled block and a route handle, without the
// index, through bounded queues, progress tracking and the dispatcher into a sink.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/dispatch/dispatcher.h"
#include "engine/dispatch/notification_builder.h"
#include "engine/dispatch/profile_queue.h"
#include "engine/dispatch/route_handle.h"
#include "engine/dispatch/sequence_tracker.h"
#include "engine/ingest/block_pool.h"
#include "gtest/gtest.h"

namespace herald::dispatch {
namespace {

// One profile's queue and a handle that routes to it; makes notifications of `payload`.
struct Route {
  ingest::BlockPool pool;
  ProfileQueue queue;
  internal::RouteHandle* handle = new internal::RouteHandle();
  uint64_t next_id = 1;

  explicit Route(std::string profile, size_t max_count = 1000, size_t max_bytes = 1 << 20)
      : queue(profile, max_count, max_bytes) {
    handle->subscription_id = "sub-" + profile;
    handle->profile_id = profile;
    handle->channel_name = "SMS";
    handle->queue = &queue;
    handle->queue_generation = queue.tracker().generation();
  }
  ~Route() { internal::Unref(handle); }

  Notification Make(std::string_view payload, uint64_t seq = 0) {
    internal::PayloadBlock* block = pool.Acquire(payload.size());
    payload.copy(block->data(), payload.size());
    block->sequence = seq;
    if (seq != 0) queue.tracker().Add(seq, handle->queue_generation);
    Notification n = NotificationBuilder::Make(
        block, handle, "DELIVERY", std::string_view(block->data(), payload.size()), {}, next_id++);
    internal::Unref(block);  // the notification holds its own reference
    return n;
  }
};

TEST(SequenceTracker, TheOldestOutstandingPositionMovesOnlyWhenItsNotificationsSettle) {
  SequenceTracker t;
  const uint32_t g = t.generation();
  EXPECT_EQ(t.Oldest(), SequenceTracker::kNone);
  t.Add(5, g);
  t.Add(5, g);
  t.Add(7, g);
  t.Add(9, g);
  EXPECT_EQ(t.Oldest(), 5u);
  t.Settle(7, g);  // out of order
  EXPECT_EQ(t.Oldest(), 5u);
  t.Settle(5, g);
  EXPECT_EQ(t.Oldest(), 5u) << "one of the two notifications of 5 is still out";
  t.Settle(5, g);
  EXPECT_EQ(t.Oldest(), 9u);
  std::vector<uint64_t> listed;
  EXPECT_TRUE(t.List(&listed, 10));
  EXPECT_EQ(listed, (std::vector<uint64_t>{9}));
  t.Settle(9, g + 1);  // stale: from before a reset
  EXPECT_EQ(t.outstanding(), 1u);
  t.Reset();
  EXPECT_EQ(t.Oldest(), SequenceTracker::kNone);
  t.Settle(9, g);  // of the generation before the reset: ignored
  EXPECT_EQ(t.outstanding(), 0u);
}

TEST(ProfileQueue, RefusesPastItsCountOrByteBoundAndCountsIt) {
  Route by_count("p1", /*max_count=*/2);
  EXPECT_TRUE(by_count.queue.TryEnqueue(by_count.Make("a")));
  EXPECT_TRUE(by_count.queue.TryEnqueue(by_count.Make("b")));
  EXPECT_FALSE(by_count.queue.TryEnqueue(by_count.Make("c")));
  EXPECT_EQ(by_count.queue.back_pressured(), 1u);
  Notification out[4];
  ASSERT_EQ(by_count.queue.DequeueBulk(out, 4), 2u);
  EXPECT_EQ(out[0].payload(), "a");
  EXPECT_EQ(out[1].payload(), "b");
  EXPECT_EQ(out[0].profile_id(), "p1");
  EXPECT_EQ(out[0].subscription_id(), "sub-p1");
  EXPECT_NE(out[0].webhook_id(), out[1].webhook_id());
  EXPECT_TRUE(by_count.queue.TryEnqueue(by_count.Make("c"))) << "room again once drained";

  Route by_bytes("p2", 1000, /*max_bytes=*/10);
  EXPECT_TRUE(by_bytes.queue.TryEnqueue(by_bytes.Make("123456")));
  EXPECT_FALSE(by_bytes.queue.TryEnqueue(by_bytes.Make("123456")));
}

// Per-key ordering needs one order across producers: what one thread enqueued after another
// thread's enqueue finished comes out after it. (The moodycamel queue drains per producer, the
// newest producer first, so it would hand over 1, 0, 3, 2, …)
TEST(ProfileQueue, AFifoQueueKeepsOneOrderAcrossProducerThreads) {
  Route r("p1", 10'000);
  r.queue.set_fifo(true);
  // Two producer threads, alive throughout, taking turns: 0 from the first, 1 from the second…
  std::mutex mu;
  std::condition_variable turn_changed;
  int turn = 0;
  auto produce = [&](int parity) {
    for (;;) {
      std::unique_lock lock(mu);
      turn_changed.wait(lock, [&] { return turn >= 200 || turn % 2 == parity; });
      if (turn >= 200) return;
      EXPECT_TRUE(r.queue.TryEnqueue(r.Make(std::to_string(turn))));
      ++turn;
      turn_changed.notify_all();
    }
  };
  std::thread first(produce, 0), second(produce, 1);
  first.join();
  second.join();
  Notification out[256];
  ASSERT_EQ(r.queue.DequeueBulk(out, 256), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(out[i].payload(), std::to_string(i));
  EXPECT_EQ(r.queue.depth(), 0u);

  // Switched on with notifications queued the other way: those come out first.
  Route switched("p2");
  EXPECT_TRUE(switched.queue.TryEnqueue(switched.Make("before")));
  switched.queue.set_fifo(true);
  EXPECT_TRUE(switched.queue.TryEnqueue(switched.Make("after")));
  ASSERT_EQ(switched.queue.DequeueBulk(out, 4), 2u);
  EXPECT_EQ(out[0].payload(), "before");
  EXPECT_EQ(out[1].payload(), "after");
  for (Notification& n : out) n.Reset();  // before the routes whose blocks they hold
}

// Settling a notification moves the profile's progress; releasing it without settling does not
// (a log replays it), and the payload block returns to the pool once every holder is done.
TEST(Notification, SettleMovesProgressAndTheLastReleaseRecyclesTheBlock) {
  Route r("p1");
  Notification first = r.Make("x", 3);
  Notification second = r.Make("y", 4);
  EXPECT_EQ(first.sequence(), 3u);
  EXPECT_EQ(r.queue.tracker().Oldest(), 3u);
  first.Settle();
  EXPECT_TRUE(first.empty());
  EXPECT_EQ(r.queue.tracker().Oldest(), 4u);
  second.Reset();
  EXPECT_EQ(r.queue.tracker().Oldest(), 4u) << "released unsettled: still owed";
  EXPECT_EQ(r.pool.live_bytes(), 0u);
}

class CollectingSink : public Sink {
 public:
  void Deliver(std::string_view profile_id, std::span<Notification> batch) override {
    std::lock_guard lock(mu_);
    batches_.push_back(batch.size());
    for (Notification& n : batch) {
      got_.emplace_back(std::string(profile_id) + ":" + std::string(n.payload()));
      Notification taken = std::move(n);
      taken.Settle();
    }
  }
  size_t Capacity(std::string_view) override { return capacity_.load(); }

  std::vector<std::string> got() {
    std::lock_guard lock(mu_);
    return got_;
  }
  std::vector<size_t> batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::atomic<size_t> capacity_{SIZE_MAX};

 private:
  std::mutex mu_;
  std::vector<std::string> got_;
  std::vector<size_t> batches_;
};

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 2000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

TEST(Dispatcher, DrainsEachQueueInOrderInBatchesTheSinkHasRoomFor) {
  CollectingSink sink;
  sink.capacity_ = 0;  // parked: the notifications wait in the bounded queue
  Dispatcher dispatcher(&sink, 1);
  Route r("p1", 10'000);
  r.queue.set_listener(&dispatcher);
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(r.queue.TryEnqueue(r.Make(std::to_string(i), i + 1)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(sink.got().empty()) << "a sink without room gets nothing";
  EXPECT_EQ(r.queue.depth(), 600u);
  sink.capacity_ = SIZE_MAX;
  ASSERT_TRUE(WaitFor([&] { return sink.got().size() == 600; }));
  const auto got = sink.got();
  for (int i = 0; i < 600; ++i) ASSERT_EQ(got[i], "p1:" + std::to_string(i));
  for (size_t b : sink.batches()) EXPECT_LE(b, Dispatcher::kBatch);
  EXPECT_EQ(r.queue.tracker().Oldest(), SequenceTracker::kNone) << "all settled by the sink";
  dispatcher.Stop();
}

}  // namespace
}  // namespace herald::dispatch
