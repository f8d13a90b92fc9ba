// How heraldctl prints: tables on a terminal, JSON otherwise (or as --json / --output asks);
// data on stdout, progress and prompts on stderr, progress only on a terminal; NO_COLOR honoured.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace heraldctl {

enum class Format { kTable, kJson, kNdjson, kIds };

struct Output {
  Format format = Format::kTable;
  bool color = false;            // on a terminal, unless NO_COLOR is set
  bool stderr_terminal = false;  // progress and prompts

  // From --json / --output (table|json|ndjson|ids; anything else is a usage error) and the
  // terminals; without either flag, a table on a terminal and JSON otherwise.
  static Output Make(bool json, const std::string& output);
  bool table() const { return format == Format::kTable; }
  // `text` in red or green when colour is on.
  std::string Red(std::string_view text) const;
  std::string Green(std::string_view text) const;
  std::string Bold(std::string_view text) const;
};

// Columns sized to their widest cell (East Asian wide characters count two).
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text in a terminal.
size_t DisplayWidth(std::string_view text);

// A progress line on stderr, redrawn at most ten times a second: done of total (when known),
// the rate and the time left. Silent unless stderr is a terminal.
class Progress {
 public:
  Progress(const Output& out, std::string unit, uint64_t total = 0);
  void Update(uint64_t done, bool force = false);
  void Finish(uint64_t done);

 private:
  bool shown_;
  std::string unit_;
  uint64_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point drawn_{};
};

// Asks on stderr; false without a terminal (a prompt is never the only way: see --yes).
bool Confirm(const Output& out, const std::string& question);

// "2.5 s", "340 ms", "12 µs" for a duration in milliseconds.
std::string FormatMs(double ms);
// Unix ms as "2026-12-03 08:22:19Z" (UTC), or "-" for 0.
std::string FormatTime(int64_t unix_ms);

}  // namespace heraldctl
