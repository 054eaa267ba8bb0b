// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <system_error>
#include <unistd.h>

// Small writes and reads of Linux device attributes (sysfs), each failure one message that
// names the file and says what was attempted.

namespace tactus::sinks::detail {

[[noreturn]] inline void throw_errno(int e, const std::string& what) {
  throw std::system_error(e, std::generic_category(), what);
}

/// Writes `text` to the attribute at `path` (opened, written, closed).
inline void write_attribute(const std::string& path, const std::string& text, const char* who) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC);
  if (fd < 0) throw_errno(errno, std::string(who) + ": cannot open " + path + " to write " + text);
  const auto n = ::write(fd, text.data(), text.size());
  const int e = errno;
  ::close(fd);
  if (n < 0) throw_errno(e, std::string(who) + ": cannot write " + text + " to " + path);
  if (static_cast<std::size_t>(n) != text.size()) throw_errno(EIO, std::string(who) + ": short write to " + path);
}

/// The first line of the attribute at `path`, or `fallback` when it cannot be read.
inline std::string read_attribute(const std::string& path, std::string fallback = {}) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fallback;
  char buf[64];
  const auto n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return fallback;
  std::string s(buf, static_cast<std::size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

}  // namespace tactus::sinks::detail
