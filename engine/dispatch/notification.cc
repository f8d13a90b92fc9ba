// herald::Notification's out-of-line parts: its payload and id, and what releasing and settling
// it does to the subscription handle and the profile's progress.
#include "engine/dispatch/profile_queue.h"
#include "engine/dispatch/route_handle.h"
#include "engine/ingest/block_pool.h"
#include "herald/sink.h"

namespace herald::internal {

void Unref(const RouteHandle* h) {
  if (h->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete h;
}

void Settle(const RouteHandle* h, const PayloadBlock* block) {
  if (block->sequence != 0 && h->queue)
    h->queue->tracker().Settle(block->sequence, h->queue_generation);
}

std::string_view SubscriptionIdOf(const RouteHandle* h) {
  return h ? std::string_view(h->subscription_id) : std::string_view();
}
std::string_view ProfileIdOf(const RouteHandle* h) {
  return h ? std::string_view(h->profile_id) : std::string_view();
}
std::string_view ChannelOf(const RouteHandle* h) {
  return h ? std::string_view(h->channel_name) : std::string_view();
}

}  // namespace herald::internal

namespace herald {

std::string_view Notification::payload() const {
  return block_ ? std::string_view(block_->data() + payload_offset_, payload_len_)
                : std::string_view();
}

std::string_view Notification::key() const {
  return block_ && key_len_ > 0 ? std::string_view(block_->data() + key_offset_, key_len_)
                                : std::string_view();
}

std::string_view Notification::webhook_id() const {
  if (id_len_ > 0) return std::string_view(block_->data() + id_offset_, id_len_);
  return std::string_view(generated_id_, kGeneratedIdLen);
}

}  // namespace herald
