// Named contexts: a URL and an API key under a name, kept in one JSON file of mode 0600
// ($XDG_CONFIG_HOME/heraldctl/contexts.json, or ~/.config/…; HERALDCTL_CONFIG names another).
#pragma once

#include <map>
#include <string>

#include "tools/heraldctl/client.h"

namespace heraldctl {

struct Contexts {
  std::string current;
  std::map<std::string, Endpoint> named;

  static std::string Path();
  // An absent file is no contexts; a file that is not ours is a Failure(kUsage).
  static Contexts Load();
  // Writes atomically with mode 0600.
  void Save() const;
};

// Where the command talks to: each of the URL and the key from its flag, else its environment
// variable (HERALD_URL, HERALD_API_KEY), else the context (--context, else HERALD_CONTEXT, else
// the current one), else the default URL.
Endpoint Resolve(const std::string& url_flag, const std::string& key_flag,
                 const std::string& context_flag);

}  // namespace heraldctl
