// systemd's readiness protocol (sd_notify(3)): a datagram such as "READY=1" to the socket named
// by $NOTIFY_SOCKET. Written here rather than linked from libsystemd: the protocol is a stable,
// documented interface meant to be reimplemented, and the binary then runs the same with or
// without systemd (no socket: nothing is sent).
#pragma once
#include <string_view>

namespace creatord {

// Sends state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..."); false when there is no
// socket to send to or the send failed. Never blocks.
bool sd_notify(std::string_view state);

}  // namespace creatord
