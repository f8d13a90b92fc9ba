// /v1/dead-letters: list (GET ?profileId&page&size), delete (DELETE ?profileId[&id…]) and replay
// (POST /replay {"profileId","ids"}).
#include <charconv>

#include "engine/common/json_writer.h"
#include "engine/common/strings.h"
#include "engine/deliver/dead_letters.h"
#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"
#include "simdjson.h"

namespace herald::server {
namespace {

bool NoDelivery(WebhookDeliverer* deliverer, HttpResponse& response) {
  if (deliverer) return false;
  Error(response, 404, "NOT_FOUND", "webhook delivery is not enabled");
  return true;
}

void ProfileIdRequired(HttpResponse& response) {
  Error(response, 400, "BAD_REQUEST", "profileId is required",
        {{"profileId", {"must be a profile id"}}});
}

bool ParseId(std::string_view text, uint64_t* id) {
  const auto [at, ec] = std::from_chars(text.data(), text.data() + text.size(), *id);
  return !text.empty() && ec == std::errc() && at == text.data() + text.size();
}

}  // namespace

void HttpApi::ListDeadLetters(Call& call) {
  if (NoDelivery(deliverer_, call.response)) return;
  auto paging = ParsePaging(call.query);
  if (!paging.ok()) return FromStatus(call.response, paging.status());
  const auto letters =
      deliverer_->ListDeadLetters(Value(call.query, "profileId"), paging->page, paging->size);
  if (!letters.ok()) {
    return Error(call.response, 503, "SERVICE_UNAVAILABLE", ToStd(letters.status().message()));
  }
  std::vector<std::string> results;
  results.reserve(letters->results.size());
  for (const auto& letter : letters->results) {
    results.push_back(deliver::EncodeDeadLetter(letter, /*payload_as_json=*/true));
  }
  Json(call.response, 200, PageBody(results, *paging, letters->total));
}

void HttpApi::DeleteDeadLetters(Call& call) {
  if (NoDelivery(deliverer_, call.response)) return;
  // ?profileId=p1 deletes all of p1's letters; &id=3 (repeatable) only those.
  const std::string profile = Value(call.query, "profileId");
  if (profile.empty()) return ProfileIdRequired(call.response);
  std::vector<uint64_t> ids;
  for (const std::string& text : Values(call.query, "id")) {
    if (!ParseId(text, &ids.emplace_back())) {
      return Error(call.response, 400, "BAD_REQUEST", "id must be a dead-letter id",
                   {{"id", {"must be a dead-letter id"}}});
    }
  }
  auto deleted = deliverer_->DeleteDeadLetters(profile, ids);
  if (!deleted.ok()) {
    return Error(call.response, 503, "SERVICE_UNAVAILABLE", ToStd(deleted.status().message()));
  }
  std::string out;
  JsonWriter(out).BeginObject().Field("deleted", uint64_t{*deleted}).EndObject();
  Json(call.response, 200, std::move(out));
}

void HttpApi::ReplayDeadLetters(Call& call) {
  if (NoDelivery(deliverer_, call.response)) return;
  // {"profileId":"p1","ids":["3","4"]}; without ids, all of the profile's dead letters.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view profile;
  if (parser.parse(call.request.body).get(root) != simdjson::SUCCESS) {
    return Error(call.response, 400, "BAD_REQUEST", "the body is not JSON");
  }
  if (root["profileId"].get_string().get(profile) != simdjson::SUCCESS || profile.empty()) {
    return ProfileIdRequired(call.response);
  }
  std::vector<uint64_t> ids;
  simdjson::dom::element ids_json;
  if (root["ids"].get(ids_json) == simdjson::SUCCESS) {
    simdjson::dom::array array;
    bool ok = ids_json.get_array().get(array) == simdjson::SUCCESS;
    if (ok) {
      for (auto id : array) {
        std::string_view text;
        uint64_t v = 0;
        if (id.get_uint64().get(v) == simdjson::SUCCESS ||
            (id.get_string().get(text) == simdjson::SUCCESS && ParseId(text, &v))) {
          ids.push_back(v);
        } else {
          ok = false;
        }
      }
    }
    if (!ok) {
      return Error(call.response, 400, "BAD_REQUEST", "ids must be a list of dead-letter ids",
                   {{"ids", {"must be a list of dead-letter ids"}}});
    }
  }
  auto replayed = deliverer_->Replay(profile, ids);
  if (!replayed.ok()) return FromStatus(call.response, replayed.status());
  std::string out;
  JsonWriter(out).BeginObject().Field("replayed", uint64_t{*replayed}).EndObject();
  Json(call.response, 200, std::move(out));
}

}  // namespace herald::server
