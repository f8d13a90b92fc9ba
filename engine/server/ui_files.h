// The dashboard's files (engine/server/ui/), compiled into heraldd by cmake/embed_files.cmake.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::server {

struct UiFile {
  const char* path;  // relative to ui/, e.g. "js/app.js"
  const unsigned char* data;
  size_t size;
};

extern const UiFile kUiFiles[];
extern const size_t kUiFileCount;

}  // namespace herald::server
