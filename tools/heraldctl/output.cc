#include "tools/heraldctl/output.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "tools/heraldctl/client.h"

namespace heraldctl {

Output Output::Make(bool json, const std::string& output) {
  Output out;
  const bool terminal = ::isatty(STDOUT_FILENO);
  out.stderr_terminal = ::isatty(STDERR_FILENO);
  out.color = terminal && std::getenv("NO_COLOR") == nullptr;
  if (output.empty()) {
    out.format = json || !terminal ? Format::kJson : Format::kTable;
  } else if (output == "table") {
    out.format = Format::kTable;
  } else if (output == "json") {
    out.format = Format::kJson;
  } else if (output == "ndjson") {
    out.format = Format::kNdjson;
  } else if (output == "ids") {
    out.format = Format::kIds;
  } else {
    throw Failure(kUsage, "--output must be table, json, ndjson or ids, not \"" + output + "\"");
  }
  if (json && !output.empty() && out.format != Format::kJson && out.format != Format::kNdjson) {
    throw Failure(kUsage, "--json and --output " + output + " contradict each other");
  }
  return out;
}

std::string Output::Red(std::string_view text) const {
  return color ? "\033[31m" + std::string(text) + "\033[0m" : std::string(text);
}
std::string Output::Green(std::string_view text) const {
  return color ? "\033[32m" + std::string(text) + "\033[0m" : std::string(text);
}
std::string Output::Bold(std::string_view text) const {
  return color ? "\033[1m" + std::string(text) + "\033[0m" : std::string(text);
}

size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {  // a colour sequence takes no room
      const size_t m = text.find('m', i);
      i = m == std::string_view::npos ? text.size() : m + 1;
      continue;
    }
    uint32_t cp = c;
    size_t n = 1;
    if (c >= 0xf0) {
      n = 4;
      cp = c & 0x07;
    } else if (c >= 0xe0) {
      n = 3;
      cp = c & 0x0f;
    } else if (c >= 0xc0) {
      n = 2;
      cp = c & 0x1f;
    }
    for (size_t k = 1; k < n && i + k < text.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    }
    i += n;
    // CJK, Hiragana, Katakana, Hangul, full-width forms: two columns.
    const bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                      (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                      (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                      (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff);
    width += wide ? 2 : 1;
  }
  return width;
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      text += cell;
      if (i + 1 < widths.size()) text += std::string(widths[i] - DisplayWidth(cell) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  line(header_);
  for (const auto& row : rows_) line(row);
  return out;
}

Progress::Progress(const Output& out, std::string unit, uint64_t total)
    : shown_(out.stderr_terminal), unit_(std::move(unit)), total_(total) {}

void Progress::Update(uint64_t done, bool force) {
  if (!shown_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - drawn_ < std::chrono::milliseconds(100)) return;
  drawn_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  char line[256];
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int filled = static_cast<int>(fraction * 30);
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0;
    std::snprintf(line, sizeof line, "\r[%s%s] %3.0f%% %llu/%llu %s  %.0f/s  ETA %.0fs ",
                  std::string(filled, '#').c_str(), std::string(30 - filled, '.').c_str(),
                  fraction * 100, static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(total_), unit_.c_str(), rate, eta);
  } else {
    std::snprintf(line, sizeof line, "\r%llu %s  %.0f/s ", static_cast<unsigned long long>(done),
                  unit_.c_str(), rate);
  }
  std::cerr << line << std::flush;
}

void Progress::Finish(uint64_t done) {
  if (!shown_) return;
  Update(done, true);
  std::cerr << "\n";
}

bool Confirm(const Output& out, const std::string& question) {
  if (!out.stderr_terminal || !::isatty(STDIN_FILENO)) return false;
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

std::string FormatMs(double ms) {
  char text[32];
  if (ms >= 1000) {
    std::snprintf(text, sizeof text, "%.1f s", ms / 1000);
  } else if (ms >= 1) {
    std::snprintf(text, sizeof text, "%.0f ms", ms);
  } else {
    std::snprintf(text, sizeof text, "%.0f µs", ms * 1000);
  }
  return text;
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%SZ", &tm);
  return text;
}

}  // namespace heraldctl
