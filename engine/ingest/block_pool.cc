#include "engine/ingest/block_pool.h"

#include <new>

#include "herald/engine.h"
#include "herald/event.h"

namespace herald::internal {
uint64_t SequenceOf(const PayloadBlock* block) { return block->sequence; }
int64_t IngestedNanosOf(const PayloadBlock* block) { return block->ingested_ns; }

void Unref(PayloadBlock* block) {
  if (block->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) block->pool->Recycle(block);
}
}  // namespace herald::internal

namespace herald {

char* IngestBuffer::data() { return block_ ? block_->data() : nullptr; }
size_t IngestBuffer::capacity() const { return block_ ? block_->capacity : 0; }
void IngestBuffer::Reset() {
  if (block_) internal::Unref(block_);
  block_ = nullptr;
}

}  // namespace herald

namespace herald::ingest {
namespace {

constexpr uint8_t kUnpooled = 0xff;

int ClassFor(size_t bytes) {
  size_t size = BlockPool::kMinClassBytes;
  for (int c = 0; c < BlockPool::kClasses; ++c, size <<= 1) {
    if (bytes <= size) return c;
  }
  return -1;
}

internal::PayloadBlock* NewBlock(size_t capacity, uint8_t size_class, BlockPool* pool) {
  void* mem = ::operator new(sizeof(internal::PayloadBlock) + capacity + kInputPadding);
  auto* block = new (mem) internal::PayloadBlock();
  block->capacity = capacity;
  block->size_class = size_class;
  block->pool = pool;
  return block;
}

void DeleteBlock(internal::PayloadBlock* block) {
  block->~PayloadBlock();
  ::operator delete(static_cast<void*>(block));
}

}  // namespace

BlockPool::BlockPool(size_t retained_bytes_per_class)
    : retained_bytes_per_class_(retained_bytes_per_class) {}

BlockPool::~BlockPool() {
  for (auto& list : free_) {
    internal::PayloadBlock* block;
    while (list.blocks.try_dequeue(block)) DeleteBlock(block);
  }
}

internal::PayloadBlock* BlockPool::Acquire(size_t bytes) {
  const int c = ClassFor(bytes);
  if (c < 0) {
    allocations_.fetch_add(1, std::memory_order_relaxed);
    live_bytes_.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
    return NewBlock(bytes, kUnpooled, this);
  }
  live_bytes_.fetch_add(static_cast<int64_t>(kMinClassBytes << c), std::memory_order_relaxed);
  FreeList& list = free_[c];
  internal::PayloadBlock* block;
  if (list.blocks.try_dequeue(block)) {
    list.retained_bytes.fetch_sub(static_cast<int64_t>(block->capacity), std::memory_order_relaxed);
    block->refs.store(1, std::memory_order_relaxed);
    block->sequence = 0;
    return block;
  }
  allocations_.fetch_add(1, std::memory_order_relaxed);
  return NewBlock(kMinClassBytes << c, static_cast<uint8_t>(c), this);
}

void BlockPool::Recycle(internal::PayloadBlock* block) {
  live_bytes_.fetch_sub(static_cast<int64_t>(block->capacity), std::memory_order_relaxed);
  if (block->size_class != kUnpooled) {
    FreeList& list = free_[block->size_class];
    const int64_t size = static_cast<int64_t>(block->capacity);
    if (list.retained_bytes.fetch_add(size, std::memory_order_relaxed) + size <=
        static_cast<int64_t>(retained_bytes_per_class_)) {
      list.blocks.enqueue(block);
      return;
    }
    list.retained_bytes.fetch_sub(size, std::memory_order_relaxed);
  }
  DeleteBlock(block);
}

}  // namespace herald::ingest
