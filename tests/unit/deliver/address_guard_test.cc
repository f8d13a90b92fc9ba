#include "engine/deliver/address_guard.h"

#include "gtest/gtest.h"

namespace herald::deliver {
namespace {

bool Public(const char* address) { return IsPublicAddress(boost::asio::ip::make_address(address)); }

TEST(AddressGuard, RefusesLoopbackPrivateLinkLocalMulticastAndMetadata) {
  for (const char* a :
       {"127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1",
        "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(Public(a)) << a;
  }
}

// Translated and tunnelled forms reach the IPv4 address they carry: NAT64 (64:ff9b::/96 and the
// local-use 64:ff9b:1::/48), 6to4 (2002::/16), Teredo, IPv4-compatible addresses.
TEST(AddressGuard, RefusesPrivateAddressesInsideTranslatedForms) {
  for (const char* a : {"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1",
                        "64:ff9b:1::808:808", "2002:7f00:1::1", "2002:c0a8:101::1",
                        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::127.0.0.1", "::10.0.0.1"}) {
    EXPECT_FALSE(Public(a)) << a;
  }
}

TEST(AddressGuard, AllowsPublicAddresses) {
  for (const char* a :
       {"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "100.128.0.1", "2001:4860:4860::8888",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"}) {
    EXPECT_TRUE(Public(a)) << a;
  }
}

}  // namespace
}  // namespace herald::deliver
