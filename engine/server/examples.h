// A ready example payload per catalog event, in the shape the platform sends for it (delivery
// reports, inbound messages, email user events, blocklist changes; a generic results[] item for
// the rest), for GET /v1/catalog/{channel}/{event}/example: heraldctl send and the dashboard's
// Send start from it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::server {

// `now_ms`: Unix time the example's timestamps show.
std::string ExamplePayload(std::string_view channel, std::string_view event, int64_t now_ms);

}  // namespace herald::server
