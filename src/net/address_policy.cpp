#include "net/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>

namespace creatord {

namespace {

using Bytes = std::array<uint8_t, 16>;

// IPv4 becomes its IPv4-mapped IPv6 form, so one table covers both families.
std::optional<Bytes> bytes_of(const sockaddr* sa) {
  Bytes b{};
  if (!sa) return std::nullopt;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    b[10] = b[11] = 0xff;
    std::memcpy(b.data() + 12, &in->sin_addr, 4);
    return b;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(b.data(), &in6->sin6_addr, 16);
    return b;
  }
  return std::nullopt;
}

bool in_net(const Bytes& a, const Bytes& net, int prefix) {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.data(), net.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[static_cast<size_t>(full)] & mask) == (net[static_cast<size_t>(full)] & mask);
}

Bytes v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}; }

Bytes v6(std::initializer_list<uint16_t> groups) {
  Bytes b{};
  size_t i = 0;
  for (uint16_t g : groups) {
    b[i++] = static_cast<uint8_t>(g >> 8);
    b[i++] = static_cast<uint8_t>(g & 0xff);
  }
  return b;
}

struct Range {
  Bytes net;
  int prefix;
};

// IPv4 prefixes are +96 (the mapped form).
const Range kInternal[] = {
    {v4(0, 0, 0, 0), 96 + 8},        // "this network"
    {v4(10, 0, 0, 0), 96 + 8},       // private
    {v4(100, 64, 0, 0), 96 + 10},    // shared address space (CGNAT)
    {v4(127, 0, 0, 0), 96 + 8},      // loopback
    {v4(169, 254, 0, 0), 96 + 16},   // link-local (cloud metadata lives here)
    {v4(172, 16, 0, 0), 96 + 12},    // private
    {v4(192, 0, 0, 0), 96 + 24},     // IETF protocol assignments
    {v4(192, 0, 2, 0), 96 + 24},     // documentation
    {v4(192, 88, 99, 0), 96 + 24},   // 6to4 relay anycast
    {v4(192, 168, 0, 0), 96 + 16},   // private
    {v4(198, 18, 0, 0), 96 + 15},    // benchmarking
    {v4(198, 51, 100, 0), 96 + 24},  // documentation
    {v4(203, 0, 113, 0), 96 + 24},   // documentation
    {v4(224, 0, 0, 0), 96 + 4},      // multicast
    {v4(240, 0, 0, 0), 96 + 4},      // reserved, and broadcast
    {v6({0, 0, 0, 0, 0, 0, 0, 0}), 128},  // unspecified
    {v6({0, 0, 0, 0, 0, 0, 0, 1}), 128},  // loopback
    {v6({0x100}), 64},                    // discard
    {v6({0x2001}), 23},                   // IETF protocol assignments (Teredo among them)
    {v6({0x2001, 0xdb8}), 32},            // documentation
    {v6({0xfc00}), 7},                    // unique local
    {v6({0xfe80}), 10},                   // link-local
    {v6({0xfec0}), 10},                   // site-local (deprecated)
    {v6({0xff00}), 8},                    // multicast
    {v6({0x64, 0xff9b, 1}), 48},          // local-use NAT64
};

// The IPv4 address an IPv6 address carries (IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16),
// in mapped form; the IPv4-mapped form needs nothing (it is the table's form already).
std::optional<Bytes> embedded_v4(const Bytes& a) {
  static const Bytes zero{};
  if (in_net(a, zero, 96) && !in_net(a, zero, 127)) return v4(a[12], a[13], a[14], a[15]);  // ::a.b.c.d
  if (in_net(a, v6({0x64, 0xff9b}), 96)) return v4(a[12], a[13], a[14], a[15]);
  if (in_net(a, v6({0x2002}), 16)) return v4(a[2], a[3], a[4], a[5]);
  return std::nullopt;
}

bool internal_bytes(const Bytes& a) {
  for (const auto& r : kInternal)
    if (in_net(a, r.net, r.prefix)) return true;
  if (auto e = embedded_v4(a)) return internal_bytes(*e);
  return false;
}

std::string lower_host(std::string_view h) {
  std::string out(h);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::optional<Bytes> parse_address(const std::string& text) {
  in_addr a4{};
  in6_addr a6{};
  std::string t = text;
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  if (::inet_pton(AF_INET, t.c_str(), &a4) == 1) {
    Bytes b = v4(0, 0, 0, 0);
    std::memcpy(b.data() + 12, &a4, 4);
    return b;
  }
  if (::inet_pton(AF_INET6, t.c_str(), &a6) == 1) {
    Bytes b{};
    std::memcpy(b.data(), &a6, 16);
    return b;
  }
  return std::nullopt;
}

}  // namespace

Result<AddressPolicy> AddressPolicy::parse(const std::vector<std::string>& entries) {
  AddressPolicy p;
  for (const auto& entry : entries) {
    auto bad = [&](const std::string& why) {
      return Error::make(ErrorCode::validation, "allow_internal entry \"" + entry + "\": " + why);
    };
    if (entry == "*") {
      p.any_ = true;
      continue;
    }
    std::string text = entry;
    int prefix = -1;
    if (auto slash = text.find('/'); slash != std::string::npos) {
      std::string bits = text.substr(slash + 1);
      text = text.substr(0, slash);
      if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos)
        return bad("the prefix length must be a number");
      prefix = std::stoi(bits);
    }
    if (auto addr = parse_address(text)) {
      bool is_v4 = text.find(':') == std::string::npos;
      int max = is_v4 ? 32 : 128;
      if (prefix > max) return bad("the prefix length must be at most " + std::to_string(max));
      p.nets_.push_back(Net{*addr, prefix < 0 ? 128 : (is_v4 ? prefix + 96 : prefix)});
      continue;
    }
    if (prefix >= 0) return bad("a network must be an address with a prefix length, like 10.0.0.0/8");
    std::string host = lower_host(text);
    if (host.empty() || host.size() > 253 ||
        host.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_") != std::string::npos)
      return bad("not an address, a network (10.0.0.0/8) or a host name");
    p.hosts_.push_back(host);
  }
  return p;
}

AddressPolicy AddressPolicy::merged(const AddressPolicy& other) const {
  AddressPolicy p = *this;
  p.any_ = any_ || other.any_;
  p.nets_.insert(p.nets_.end(), other.nets_.begin(), other.nets_.end());
  p.hosts_.insert(p.hosts_.end(), other.hosts_.begin(), other.hosts_.end());
  return p;
}

bool AddressPolicy::allows(std::string_view host, const sockaddr* addr) const {
  auto a = bytes_of(addr);
  if (!a) return false;  // not IP: nothing a step should reach
  if (!internal_bytes(*a) || any_) return true;
  std::string h = lower_host(host);
  if (!h.empty() && std::find(hosts_.begin(), hosts_.end(), h) != hosts_.end()) return true;
  auto e = embedded_v4(*a);
  for (const auto& n : nets_) {
    if (in_net(*a, n.bytes, n.prefix)) return true;
    if (e && in_net(*e, n.bytes, n.prefix)) return true;
  }
  return false;
}

bool is_internal_address(const sockaddr* addr) {
  auto a = bytes_of(addr);
  return a && internal_bytes(*a);
}

std::string address_text(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr && addr->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  else if (addr && addr->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  else
    return "(not IP)";
  return buf;
}

}  // namespace creatord
