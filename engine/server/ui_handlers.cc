// GET /ui/…: the dashboard's files (ui_files.h), with a policy that lets the page load nothing
// but heraldd's own files and talk to nothing but heraldd. They need no key: the data does.
#include <string_view>

#include "engine/server/http_api.h"
#include "engine/server/http_reply.h"
#include "engine/server/ui_files.h"

namespace herald::server {
namespace {

std::string_view ContentType(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  if (path.ends_with(".png")) return "image/png";
  return "text/plain; charset=utf-8";
}

}  // namespace

void HttpApi::Ui(Call& call) {
  std::string_view path = call.request.target;
  path = path.substr(0, path.find_first_of("?#"));
  if (path == "/ui") {  // relative links need the slash
    call.response.status = 308;
    call.response.headers.emplace_back("Location", "/ui/");
    return;
  }
  path.remove_prefix(std::string_view("/ui/").size());
  if (path.empty()) path = "index.html";
  for (size_t i = 0; i < kUiFileCount; ++i) {
    if (path != kUiFiles[i].path) continue;
    call.response.status = 200;
    call.response.content_type = std::string(ContentType(path));
    call.response.body.assign(reinterpret_cast<const char*>(kUiFiles[i].data), kUiFiles[i].size);
    call.response.headers.emplace_back("Content-Security-Policy",
                                       "default-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'; base-uri 'self'");
    call.response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    call.response.headers.emplace_back("Cache-Control", "no-cache");
    return;
  }
  Error(call.response, 404, "NOT_FOUND", "no such dashboard file");
}

}  // namespace herald::server
