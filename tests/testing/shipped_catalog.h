// The catalog shipped in configs/, loaded once per test binary. Tests run from the source root;
// HERALD_SOURCE_DIR (set by ctest) also finds it from elsewhere.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "herald/catalog.h"

namespace herald::test_support {

inline std::string ShippedCatalogPath() {
  const char* root = std::getenv("HERALD_SOURCE_DIR");
  return root != nullptr ? std::string(root) + "/configs/catalog.json" : "configs/catalog.json";
}

// Null (with a test failure) when the file does not load.
inline const Catalog* ShippedCatalog() {
  static const std::shared_ptr<const Catalog> catalog = [] {
    auto loaded = Catalog::Load(ShippedCatalogPath());
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *std::move(loaded) : nullptr;
  }();
  return catalog.get();
}

}  // namespace herald::test_support
