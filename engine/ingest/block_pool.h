// Reference-counted, pooled input buffers. An ingest call copies its bytes once into a block; the
// parser works in place and every notification of every event in it slices its payload from the
// same block, so fan-out never copies payloads. Blocks return to a per-size-class free list when
// the last notification is done, which keeps steady-state ingest free of heap allocation.
//
// Thread-safe. The pool must outlive every block (the Engine owns it and outlives notifications).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "concurrentqueue/concurrentqueue.h"

namespace herald::ingest {
class BlockPool;
}

namespace herald::internal {

struct PayloadBlock {
  std::atomic<uint32_t> refs{1};
  uint8_t size_class = 0;
  uint64_t sequence = 0;    // the input's position in a durable log; 0 = none
  int64_t ingested_ns = 0;  // steady clock, when the input reached the router
  size_t capacity = 0;      // usable bytes, padding excluded
  ingest::BlockPool* pool = nullptr;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};

inline void Ref(PayloadBlock* block) { block->refs.fetch_add(1, std::memory_order_relaxed); }

// The engine's side of herald::IngestBuffer.
struct IngestBufferAccess {
  template <typename Buffer>
  static Buffer Wrap(PayloadBlock* block) {
    Buffer b;
    b.block_ = block;
    return b;
  }
  template <typename Buffer>
  static PayloadBlock* Release(Buffer& buffer) {
    PayloadBlock* block = buffer.block_;
    buffer.block_ = nullptr;
    return block;
  }
};

}  // namespace herald::internal

namespace herald::ingest {

class BlockPool {
 public:
  // Size classes are powers of two from 128 B (a small event's own copy) to 16 MiB; larger
  // blocks are not pooled.
  static constexpr int kClasses = 18;
  static constexpr size_t kMinClassBytes = 128;
  // Bytes of idle blocks kept per class; beyond it, released blocks are freed.
  explicit BlockPool(size_t retained_bytes_per_class = 64u << 20);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block with at least `bytes` usable bytes plus the parser's padding; refs = 1.
  internal::PayloadBlock* Acquire(size_t bytes);
  void Recycle(internal::PayloadBlock* block);

  uint64_t allocations() const { return allocations_.load(std::memory_order_relaxed); }
  // Capacity of the blocks acquired and not yet recycled: inputs being routed and the payloads
  // that queued and held notifications keep alive.
  uint64_t live_bytes() const {
    const int64_t b = live_bytes_.load(std::memory_order_relaxed);
    return b > 0 ? static_cast<uint64_t>(b) : 0;
  }

 private:
  // Lock-free: routers acquire and consumers on other threads release, all the time.
  struct FreeList {
    moodycamel::ConcurrentQueue<internal::PayloadBlock*> blocks;
    std::atomic<int64_t> retained_bytes{0};
  };
  const size_t retained_bytes_per_class_;
  FreeList free_[kClasses];
  std::atomic<uint64_t> allocations_{0};
  std::atomic<int64_t> live_bytes_{0};
};

}  // namespace herald::ingest
