// Fuzzes the dead-letter file as a crash or a bad disk leaves it (data_dir/dead-letters.log:
// CRC-framed add, remove, disable and enable records). Whatever the bytes, opening gives a usable
// store or a clear error — never a crash — and the store then works: a letter added is listed,
// a replay of it ends as the store says, and all of it survives reopening.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "engine/deliver/dead_letters.h"

namespace {

std::string ScratchDir() {
  static const std::string dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "herald-fuzz-XXXXXX").string();
    if (!mkdtemp(templ.data())) std::abort();
    return templ;
  }();
  std::filesystem::remove_all(dir + "/data");
  std::filesystem::create_directories(dir + "/data");
  return dir + "/data";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using herald::DeadLetter;
  using herald::DeadLetterPage;
  using herald::deliver::DeadLetterStore;
  const std::string dir = ScratchDir();
  std::ofstream(dir + "/dead-letters.log", std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  auto store = DeadLetterStore::Open(dir);
  if (!store.ok()) {
    if (store.status().message().empty()) std::abort();
    return 0;
  }
  // What opened reads back: every letter's payload comes from the file.
  const auto first = (*store)->List("p1", 0, 100);
  if (!first.ok()) std::abort();
  const size_t before = first->total;
  size_t listed = 0;
  for (size_t page = 0; listed < before; ++page) {
    const auto got = (*store)->List("p1", page, 100);
    if (!got.ok() || got->results.empty() || got->total != before) std::abort();
    for (const DeadLetter& d : got->results) {
      if (d.profile_id != "p1") std::abort();
    }
    listed += got->results.size();
  }
  std::vector<DeadLetter> letters = {
      {.profile_id = "p1", .webhook_id = "w", .payload = "{\"a\":\n1}", .last_error = "e"},
      {.profile_id = "p1", .webhook_id = "v", .payload = "[2]", .last_error = "e"}};
  if (!(*store)->Add(letters).ok()) std::abort();
  if (letters[0].id == 0 || letters[1].id <= letters[0].id) std::abort();
  if ((*store)->List("p1", 0, 1)->total != before + 2) std::abort();
  // One delivered (leaves the store), one failed again (replaced by a new letter).
  const auto replay = (*store)->BeginReplay("p1", {letters[0].id, letters[1].id});
  if (!replay.ok() || replay->size() != 2 || (*replay)[0].payload != "{\"a\":\n1}") std::abort();
  if (!(*store)->Remove({letters[0].id}).ok()) std::abort();
  std::vector<DeadLetter> again = {letters[1]};
  const std::vector<uint64_t> replaces = {letters[1].id};
  if (!(*store)->Add(again, replaces).ok()) std::abort();
  (void)(*store)->SetDisabled("p1", true);
  store->reset();
  auto reopened = DeadLetterStore::Open(dir);
  if (!reopened.ok()) std::abort();
  const auto listed_again = (*reopened)->List("p1", 0, 1000);
  if (!listed_again.ok()) std::abort();
  const DeadLetterPage& page = *listed_again;
  if (page.total != before + 1) std::abort();
  bool found = false;
  for (const DeadLetter& d : page.results)
    found = found || (d.id == again[0].id && d.payload == "[2]");
  if (before < 1000 && !found) std::abort();
  const auto disabled = (*reopened)->disabled();
  if (std::find(disabled.begin(), disabled.end(), "p1") == disabled.end()) std::abort();
  return 0;
}
