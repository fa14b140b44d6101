#include "net/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

using namespace creatord;

namespace {

// A sockaddr for an address in text form (IPv4 or IPv6).
struct Addr {
  sockaddr_storage ss{};
  explicit Addr(const std::string& text) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, text.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
    } else {
      EXPECT_EQ(::inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr), 1) << text;
      in6->sin6_family = AF_INET6;
    }
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

AddressPolicy policy(std::vector<std::string> entries) { return AddressPolicy::parse(entries).value(); }

}  // namespace

TEST(AddressPolicy, InternalAddressesInEveryForm) {
  for (std::string a : {"127.0.0.1", "127.1.2.3", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255", "192.0.2.1", "::", "::1",
                        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a9fe:a9fe",
                        "2002:7f00:1::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "2001:db8::1"})
    EXPECT_TRUE(is_internal_address(Addr(a).get())) << a;
  for (std::string a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "93.184.216.34", "2606:4700::1111",
                        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"})
    EXPECT_FALSE(is_internal_address(Addr(a).get())) << a;
}

TEST(AddressPolicy, PublicAlwaysPassesInternalOnlyWhenNamed) {
  AddressPolicy none;
  EXPECT_TRUE(none.allows("example.com", Addr("93.184.216.34").get()));
  EXPECT_FALSE(none.allows("localhost", Addr("127.0.0.1").get()));
  auto p = policy({"127.0.0.1", "10.0.0.0/8", "fd00::/8", "AI.Internal."});
  EXPECT_TRUE(p.allows("127.0.0.1", Addr("127.0.0.1").get()));
  EXPECT_TRUE(p.allows("x", Addr("::ffff:127.0.0.1").get()));  // the mapped form is the same address
  EXPECT_FALSE(p.allows("x", Addr("127.0.0.2").get()));
  EXPECT_TRUE(p.allows("x", Addr("10.9.8.7").get()));
  EXPECT_FALSE(p.allows("x", Addr("192.168.0.1").get()));
  EXPECT_TRUE(p.allows("x", Addr("fd00::5").get()));
  EXPECT_FALSE(p.allows("x", Addr("fe80::1").get()));
  EXPECT_TRUE(p.allows("ai.internal", Addr("192.168.0.1").get()));  // a named host, wherever it resolves
  EXPECT_FALSE(p.allows("evil.example", Addr("192.168.0.1").get()));
  EXPECT_TRUE(policy({"*"}).allows("x", Addr("169.254.169.254").get()));
  EXPECT_TRUE(AddressPolicy{}.merged(p).allows("x", Addr("10.0.0.1").get()));
}

TEST(AddressPolicy, BadEntriesAreRefusedNamingThem) {
  for (std::string e : {"10.0.0.0/33", "::/129", "10.0.0.0/x", "ai.internal/8", "not a host", ""}) {
    auto r = AddressPolicy::parse({e});
    ASSERT_FALSE(r) << e;
    EXPECT_NE(r.error().message.find("\"" + e + "\""), std::string::npos) << r.error().message;
  }
}
