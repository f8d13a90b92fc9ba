// heraldctl context add|ls|use|show|rm: named endpoints (contexts.h).
#include <iostream>

#include "engine/common/json_writer.h"
#include "tools/heraldctl/cli.h"
#include "tools/heraldctl/contexts.h"

namespace heraldctl {
namespace {

std::string Masked(const std::string& key) {
  if (key.empty()) return "";
  return key.size() <= 4 ? "****" : "****" + key.substr(key.size() - 4);
}

}  // namespace

void AddContextCommands(CLI::App& app, Globals& g) {
  auto* ctx = app.add_subcommand("context", "named heraldd endpoints (URL and key), mode 0600");
  ctx->require_subcommand(1);

  struct AddArgs {
    std::string name, url, key;
    bool use = false;
  };
  auto add_args = std::make_shared<AddArgs>();
  auto* add = ctx->add_subcommand("add", "add or replace a context");
  add->add_option("name", add_args->name, "its name")->required();
  add->add_option("--url", add_args->url, "heraldd's URL")->required();
  add->add_option("--key", add_args->key, "the management key");
  add->add_flag("--use", add_args->use, "make it the current context");
  add->callback([add_args] {
    Contexts c = Contexts::Load();
    c.named[add_args->name] = {add_args->url, add_args->key, add_args->name};
    if (add_args->use || c.current.empty()) c.current = add_args->name;
    c.Save();
    std::cerr << "context " << add_args->name << " saved in " << Contexts::Path()
              << (c.current == add_args->name ? " (current)" : "") << "\n";
  });

  auto* ls = ctx->add_subcommand("ls", "list the contexts");
  ls->callback([&g] {
    const Contexts c = Contexts::Load();
    const Output out = g.out();
    if (!out.table()) {
      std::string json;
      herald::JsonWriter w(json);
      w.BeginObject().Field("current", c.current).Key("contexts").BeginArray();
      for (const auto& [name, e] : c.named) {
        w.BeginObject()
            .Field("name", name)
            .Field("url", e.url)
            .Field("apiKey", Masked(e.api_key))
            .EndObject();
      }
      w.EndArray().EndObject();
      std::cout << json << "\n";
      return;
    }
    Table t({"", "NAME", "URL", "KEY"});
    for (const auto& [name, e] : c.named) {
      t.Add({name == c.current ? "*" : "", name, e.url, Masked(e.api_key)});
    }
    std::cout << t.Render();
  });

  auto use_name = std::make_shared<std::string>();
  auto* use = ctx->add_subcommand("use", "make a context the current one");
  use->add_option("name", *use_name)->required();
  use->callback([use_name] {
    Contexts c = Contexts::Load();
    if (!c.named.contains(*use_name)) throw Failure(kNotFound, "no context " + *use_name);
    c.current = *use_name;
    c.Save();
  });

  auto show_name = std::make_shared<std::string>();
  auto* show = ctx->add_subcommand("show", "where commands go now (the key masked)");
  show->add_option("name", *show_name);
  show->callback([&g, show_name] {
    const Endpoint e = Resolve(g.url, g.api_key, show_name->empty() ? g.context : *show_name);
    std::cout << "url: " << e.url << "\nkey: " << (e.api_key.empty() ? "(none)" : Masked(e.api_key))
              << "\ncontext: " << (e.context.empty() ? "(none)" : e.context) << "\n";
  });

  auto rm_name = std::make_shared<std::string>();
  auto* rm = ctx->add_subcommand("rm", "remove a context");
  rm->add_option("name", *rm_name)->required();
  rm->callback([rm_name] {
    Contexts c = Contexts::Load();
    if (c.named.erase(*rm_name) == 0) throw Failure(kNotFound, "no context " + *rm_name);
    if (c.current == *rm_name) c.current.clear();
    c.Save();
  });
}

}  // namespace heraldctl
