#include "tools/heraldctl/contexts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/common/json_writer.h"
#include "simdjson.h"

namespace heraldctl {

std::string Contexts::Path() {
  if (const char* p = std::getenv("HERALDCTL_CONFIG"); p && *p) return p;
  std::string base;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
    base = x;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = std::string(home) + "/.config";
  } else {
    base = ".";
  }
  return base + "/heraldctl/contexts.json";
}

Contexts Contexts::Load() {
  Contexts out;
  const std::string path = Path();
  std::ifstream in(path);
  if (!in) return out;
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object named;
  if (parser.parse(json).get(root) != simdjson::SUCCESS ||
      root["contexts"].get_object().get(named) != simdjson::SUCCESS) {
    throw Failure(kUsage, path + " is not a heraldctl contexts file; move it away or fix it");
  }
  std::string_view current;
  if (root["current"].get_string().get(current) == simdjson::SUCCESS) out.current = current;
  for (auto [name, value] : named) {
    Endpoint e;
    std::string_view s;
    if (value["url"].get_string().get(s) == simdjson::SUCCESS) e.url = s;
    if (value["apiKey"].get_string().get(s) == simdjson::SUCCESS) e.api_key = s;
    e.context = std::string(name);
    out.named[std::string(name)] = e;
  }
  return out;
}

void Contexts::Save() const {
  const std::filesystem::path path = Path();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::string json;
  herald::JsonWriter w(json);
  w.BeginObject().Field("current", current).Key("contexts").BeginObject();
  for (const auto& [name, e] : named) {
    w.Key(name).BeginObject().Field("url", e.url).Field("apiKey", e.api_key).EndObject();
  }
  w.EndObject().EndObject();
  json.push_back('\n');
  // The key is a secret: the file is the user's alone, from its first byte.
  const std::string temp = path.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Failure(kServerError, "cannot write " + temp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  const bool written = ::write(fd, json.data(), json.size()) == static_cast<ssize_t>(json.size());
  ::close(fd);
  if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
    throw Failure(kServerError, "cannot write " + path.string() + ": " + std::strerror(errno));
  }
}

Endpoint Resolve(const std::string& url_flag, const std::string& key_flag,
                 const std::string& context_flag) {
  Endpoint out;
  std::string name = context_flag;
  if (name.empty()) {
    if (const char* c = std::getenv("HERALD_CONTEXT"); c && *c) name = c;
  }
  const bool asked = !name.empty();
  const Contexts contexts = Contexts::Load();
  if (name.empty()) name = contexts.current;
  if (!name.empty()) {
    auto it = contexts.named.find(name);
    if (it != contexts.named.end()) {
      out = it->second;
    } else if (asked) {
      throw Failure(kUsage, "no context named \"" + name + "\" (heraldctl context ls)");
    }
  }
  if (const char* u = std::getenv("HERALD_URL"); u && *u) out.url = u;
  if (const char* k = std::getenv("HERALD_API_KEY"); k && *k) out.api_key = k;
  if (!url_flag.empty()) out.url = url_flag;
  if (!key_flag.empty()) out.api_key = key_flag;
  return out;
}

}  // namespace heraldctl
