// heraldctl: see and steer heraldd from a terminal or a script (DESIGN §9).
#include <iostream>

#include "tools/heraldctl/cli.h"
#include "tools/heraldctl/contexts.h"

namespace heraldctl {
namespace {

// Every command path, for completion: "sub ls", "sub get", ….
void CommandPaths(const CLI::App& app, const std::string& prefix,
                  std::vector<std::pair<std::string, std::vector<std::string>>>* out) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
    CommandPaths(*sub, prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name(), out);
  }
  if (!names.empty()) out->emplace_back(prefix, names);
}

std::string Completion(const CLI::App& app, const std::string& shell) {
  std::vector<std::pair<std::string, std::vector<std::string>>> paths;
  CommandPaths(app, "", &paths);
  std::string cases;
  for (const auto& [path, names] : paths) {
    std::string words;
    for (const auto& n : names) words += (words.empty() ? "" : " ") + n;
    cases += "    \"" + path + "\") words=\"" + words + "\" ;;\n";
  }
  const std::string flags = "--url --api-key --context --json --output --trace --help";
  std::string bash =
      "# heraldctl completion for bash: source <(heraldctl completion bash)\n"
      "_heraldctl() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} path=\"\" w i words\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    w=${COMP_WORDS[i]}\n"
      "    [[ $w == -* ]] && continue\n"
      "    path=\"${path:+$path }$w\"\n"
      "  done\n"
      "  case \"$path\" in\n" +
      cases +
      "    *) words=\"\" ;;\n"
      "  esac\n"
      "  COMPREPLY=($(compgen -W \"$words " +
      flags +
      "\" -- \"$cur\"))\n"
      "}\n"
      "complete -F _heraldctl heraldctl\n";
  if (shell == "bash") return bash;
  if (shell == "zsh") {
    return "# heraldctl completion for zsh: source <(heraldctl completion zsh)\n"
           "autoload -U +X bashcompinit && bashcompinit\n" +
           bash;
  }
  throw Failure(kUsage, "completion: the shell must be bash or zsh");
}

int Run(int argc, char** argv) {
  CLI::App app{
      "heraldctl — see and steer heraldd: subscriptions, events, deliveries, dead letters"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags go anywhere: subcommands (made after this) inherit it
  Globals g;
  app.add_option("--url", g.url, "heraldd's URL (env HERALD_URL; default http://127.0.0.1:8080)");
  app.add_option("--api-key", g.api_key, "the management key (env HERALD_API_KEY)");
  app.add_option("--context", g.context, "a named context (env HERALD_CONTEXT)");
  app.add_flag("--json", g.json, "JSON on stdout (NDJSON for streams), also on a terminal");
  app.add_option("-o,--output", g.output, "table, json, ndjson or ids");
  app.add_flag("--trace", g.trace, "print each HTTP request and its status on stderr");
  app.footer(
      "Exit codes: 0 ok, 1 server error, 2 usage or bad request, 3 not found, 4 auth, "
      "5 conflict, 6 partial, 7 cannot connect.");
  AddContextCommands(app, g);
  AddResourceCommands(app, g);
  AddEventCommands(app, g);
  AddListenCommands(app, g);
  AddWatchCommands(app, g);
  std::string shell;
  auto* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->add_option("shell", shell, "bash or zsh")->required();
  completion->callback([&] { std::cout << Completion(app, shell); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  return kOk;
}

}  // namespace
}  // namespace heraldctl

int main(int argc, char** argv) {
  try {
    return heraldctl::Run(argc, argv);
  } catch (const heraldctl::Failure& f) {
    std::cerr << "heraldctl: " << f.what() << "\n";
    return f.code;
  } catch (const std::exception& e) {
    std::cerr << "heraldctl: " << e.what() << "\n";
    return heraldctl::kServerError;
  }
}
