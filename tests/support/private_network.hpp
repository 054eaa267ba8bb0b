// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// Ableton Link sends UDP multicast on every network interface it finds, so no test ever runs it
// on the machine's real network. enter_private_network() moves the calling thread into a network
// namespace of its own, which holds only a loopback interface, and brings that up (what
// `unshare -n` then `ip link set lo up` do, done in-process: the threads Link starts afterwards
// and the children the test spawns inherit the namespace; no iproute2 needed). Loopback carries
// Link's multicast between peers on it without a route or a MULTICAST flag. Needs root (or
// CAP_SYS_ADMIN), as CI has; elsewhere the tests that need it skip, saying why.

namespace tactus_tests {

/// "" once this thread is in a private network namespace with loopback up (the first call
/// enters it; later calls answer the same), else why not.
inline std::string enter_private_network() {
  static const std::string why_not = []() -> std::string {
    if (::unshare(CLONE_NEWNET) != 0)
      return std::string("no private network namespace: unshare(CLONE_NEWNET): ") + std::strerror(errno) +
             " (the Link tests need root or CAP_SYS_ADMIN, and never use the real network)";
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    std::string err;
    if (::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) err = std::string("SIOCGIFFLAGS lo: ") + std::strerror(errno);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (err.empty() && ::ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
      err = std::string("SIOCSIFFLAGS lo up: ") + std::strerror(errno);
    ::close(fd);
    return err;
  }();
  return why_not;
}

}  // namespace tactus_tests
