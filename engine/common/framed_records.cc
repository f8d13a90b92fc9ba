#include "engine/common/framed_records.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "engine/common/strings.h"

namespace herald {
namespace {

void CrcHex(std::string_view s, char out[9]) {
  const auto crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
  std::snprintf(out, 9, "%08x", crc);
}

}  // namespace

std::string FrameRecord(std::string_view record) {
  char crc[9];
  CrcHex(record, crc);
  return Cat(std::string_view(crc, 8), " ", record, "\n");
}

std::optional<std::string_view> UnframeRecord(std::string_view line) {
  if (line.size() < 11 || line.back() != '\n' || line[8] != ' ') return std::nullopt;
  const std::string_view record = line.substr(9, line.size() - 10);
  char crc[9];
  CrcHex(record, crc);
  if (line.substr(0, 8) != std::string_view(crc, 8)) return std::nullopt;
  return record;
}

absl::StatusOr<ReadRecordsResult> ReadRecords(
    const std::string& path, const std::function<bool(std::string_view)>& on_record) {
  ReadRecordsResult result;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    // Nothing yet is fine; a file that exists but cannot be read is an error.
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return result;
    return absl::UnavailableError(Cat("cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  size_t pos = 0, line = 0;
  while (pos < data.size()) {
    ++line;
    const size_t nl = data.find('\n', pos);
    const std::string_view framed(data.data() + pos,
                                  (nl == std::string::npos ? data.size() : nl) - pos);
    bool good = nl != std::string::npos && framed.size() > 9 && framed[8] == ' ';
    if (good) {
      char crc[9];
      CrcHex(framed.substr(9), crc);
      good = framed.substr(0, 8) == std::string_view(crc, 8) && on_record(framed.substr(9));
    }
    if (!good) {
      result.bad_bytes = data.size() - pos;
      result.bad_line = line;
      break;
    }
    ++result.records;
    pos = nl + 1;
    result.good_bytes = pos;
  }
  return result;
}

absl::Status ErrnoError(std::string_view what, const std::string& path) {
  return absl::UnavailableError(Cat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& dir, const std::string& name,
                                 std::string_view contents) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("open", tmp);
  absl::Status s = WriteAll(fd, contents, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoError("fsync", tmp);
  ::close(fd);
  if (!s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename", tmp);
  return SyncDir(dir);
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoError("open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoError("fsync", dir);
}

}  // namespace herald
