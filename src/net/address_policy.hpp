// Where steps' outgoing calls may connect. Internal addresses (loopback, private, link-local,
// shared/CGNAT, multicast, reserved, documentation ranges, and the IPv6 forms that embed such an
// IPv4 address) are refused unless an allow-list entry names them; public addresses always pass.
// Checked on the address libcurl is about to connect to, after resolution: a DNS answer that
// changes between a check and the connection cannot slip through.
#pragma once
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace creatord {

class AddressPolicy {
 public:
  // Entries: an address ("127.0.0.1", "::1"), a network ("10.0.0.0/8", "fd00::/8"), a host name
  // ("ai.internal": any address it resolves to), or "*" (every address). Errors name the entry.
  static Result<AddressPolicy> parse(const std::vector<std::string>& entries);
  // Both lists' entries.
  AddressPolicy merged(const AddressPolicy& other) const;
  bool empty() const { return !any_ && nets_.empty() && hosts_.empty(); }

  // May a call to URL host `host` (as written in the URL) connect to `addr`?
  bool allows(std::string_view host, const sockaddr* addr) const;

 private:
  struct Net {
    std::array<uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d
    int prefix = 128;
  };
  bool any_ = false;
  std::vector<Net> nets_;
  std::vector<std::string> hosts_;  // lower case, no trailing dot
};

// Loopback, private, link-local, ... (see above). False for anything that is not IPv4 or IPv6.
bool is_internal_address(const sockaddr* addr);
// "127.0.0.1", "::1": for logs.
std::string address_text(const sockaddr* addr);

}  // namespace creatord
