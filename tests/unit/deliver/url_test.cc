#include "engine/deliver/url.h"

#include "gtest/gtest.h"

namespace herald::deliver {
namespace {

TEST(Url, SplitsSchemeHostPortAndTarget) {
  auto u = ParseUrl("https://hooks.example.com/a/b?x=1#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/a/b?x=1");
  EXPECT_EQ(u->host_header, "hooks.example.com");
  EXPECT_EQ(u->origin, "https://hooks.example.com:443");

  u = ParseUrl("HTTP://127.0.0.1:8081");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, 8081);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "127.0.0.1:8081");

  u = ParseUrl("http://[::1]:9000/hook");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->host_header, "[::1]:9000");
  EXPECT_EQ(u->origin, "http://[::1]:9000");
}

TEST(Url, RefusesWhatCannotBeDelivered) {
  for (const char* bad : {"", "example.com/hook", "ftp://example.com/", "http:///path",
                          "http://user:pw@example.com/", "http://example.com:0/",
                          "http://example.com:70000/", "http://example.com:8x/", "http://[::1/"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald::deliver
