// What every heraldctl command shares: the global flags, the output, the client, and reading
// JSON from flags, files and stdin.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "simdjson.h"
#include "tools/heraldctl/client.h"
#include "tools/heraldctl/output.h"

namespace heraldctl {

struct Globals {
  std::string url, api_key, context, output;
  bool json = false;
  bool trace = false;

  Output out() const { return Output::Make(json, output); }
  std::unique_ptr<Client> client() const;
};

// --data's text: itself, "@file" the file's, "-" stdin's. Failure(kUsage) when unreadable.
std::string ReadData(const std::string& data);
// A JSON object as its fields' JSON texts, in order; Failure(kUsage) naming `what` when `text`
// is not one.
std::vector<std::pair<std::string, std::string>> ObjectFields(const std::string& text,
                                                              const std::string& what);
// The fields back as a JSON object.
std::string JoinObject(const std::vector<std::pair<std::string, std::string>>& fields);
// Applies "field=value": the value as JSON when it is JSON, else as a string. A later field
// replaces an earlier one of the same name.
void ApplySet(std::vector<std::pair<std::string, std::string>>& fields, const std::string& set);
// Indented JSON for a terminal.
std::string Pretty(const std::string& json);
// Prints a JSON answer as the output asks (tables are the command's business).
void PrintJson(const Output& out, const std::string& json);

// Percent-encodes everything but unreserved characters (a path segment or query value).
std::string UrlEncode(std::string_view s);

// e[key] as an array; Failure(kServerError) when it is not one (heraldd answered oddly).
simdjson::dom::array ArrayOf(simdjson::dom::element e, std::string_view key);

// Field readers that tolerate absence.
std::string Str(simdjson::dom::element e, std::string_view key);
int64_t Int(simdjson::dom::element e, std::string_view key, int64_t missing = 0);
double Num(simdjson::dom::element e, std::string_view key, double missing = 0);
bool Bool(simdjson::dom::element e, std::string_view key);
std::string JoinStrings(simdjson::dom::element e, std::string_view key);
// An entry of a subscription's events: "DELIVERY", or {"event":"DELIVERY","format":…}.
std::string EventName(simdjson::dom::element entry);

// Registration of each group of commands.
void AddContextCommands(CLI::App& app, Globals& g);
void AddResourceCommands(CLI::App& app, Globals& g);
void AddEventCommands(CLI::App& app, Globals& g);
void AddListenCommands(CLI::App& app, Globals& g);
void AddWatchCommands(CLI::App& app, Globals& g);

}  // namespace heraldctl
