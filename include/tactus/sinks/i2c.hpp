// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/detail/posix_file.hpp>

#include <linux/i2c-dev.h>

#include <array>
#include <cerrno>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <span>
#include <string>
#include <sys/ioctl.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

// The small bus interface the PCA9685 driver writes through: `bus.write(address, bytes)`, one
// I2C write transaction to a 7-bit address. linux_i2c is a real bus (/dev/i2c-N, the i2c-dev
// module; on a Raspberry Pi, enable I2C in raspi-config: /dev/i2c-1); recording_i2c records
// every transaction and keeps the register image a register device would have, for tests:
//
//   tactus::sinks::recording_i2c bus;
//   tactus::sinks::pca9685 board{bus};      // 0x40, 50 Hz: MODE1, PRE_SCALE, MODE2, ...
//   std::printf("PRE_SCALE = %d\n", bus.reg(0x40, 0xFE));   // 121

namespace tactus::sinks {

/// What the PCA9685 driver needs of a bus: a write of `bytes` to the device at `address`,
/// throwing (std::system_error) when it fails.
template <class B>
concept i2c_bus = requires(B& b, std::uint8_t address, std::span<const std::uint8_t> bytes) {
  b.write(address, bytes);
};

/// /dev/i2c-N. Each write is an ioctl(I2C_SLAVE) when the address changes, then write(2): a short
/// syscall on the calling thread. Movable, not copyable. Thread-safe: no.
class linux_i2c {
 public:
  /// Opens `path`. Throws std::system_error naming it when it is missing (ENOENT: is the i2c-dev
  /// module loaded, I2C enabled?) or not permitted (EACCES: the user wants the `i2c` group).
  explicit linux_i2c(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) detail::throw_errno(errno, "tactus::sinks::linux_i2c: cannot open " + path_);
  }
  ~linux_i2c() {
    if (fd_ >= 0) ::close(fd_);
  }
  linux_i2c(linux_i2c&& o) noexcept
      : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), address_(std::exchange(o.address_, -1)) {}
  linux_i2c& operator=(linux_i2c&&) = delete;
  linux_i2c(const linux_i2c&) = delete;

  /// One write transaction. Throws std::system_error naming the bus and the address (ENXIO or
  /// EREMOTEIO: no device answered there).
  void write(std::uint8_t address, std::span<const std::uint8_t> bytes) {
    if (address_ != address) {
      if (::ioctl(fd_, I2C_SLAVE, static_cast<unsigned long>(address)) < 0)
        detail::throw_errno(errno, "tactus::sinks::linux_i2c: cannot address " + hex(address) + " on " + path_);
      address_ = address;
    }
    const auto n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) detail::throw_errno(errno, "tactus::sinks::linux_i2c: cannot write to " + hex(address) + " on " + path_);
    if (static_cast<std::size_t>(n) != bytes.size())
      detail::throw_errno(EIO, "tactus::sinks::linux_i2c: short write to " + hex(address) + " on " + path_);
  }

  const std::string& path() const noexcept { return path_; }

  static std::string hex(std::uint8_t a) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", a);
    return buf;
  }

 private:
  std::string path_;
  int fd_ = -1;
  int address_ = -1;
};

/// A bus for tests: records every write, and keeps for each address the register image of a
/// register device with auto-increment (the first byte of a write selects a register, the bytes
/// after it fill that register and the ones after it). Thread-safe: no.
class recording_i2c {
 public:
  struct transaction {
    std::uint8_t address;
    std::vector<std::uint8_t> bytes;
  };

  /// Records the write. Throws std::system_error (EREMOTEIO, as when no device answers) while
  /// fail_writes(true).
  void write(std::uint8_t address, std::span<const std::uint8_t> bytes) {
    if (failing_)
      detail::throw_errno(EREMOTEIO, "tactus::sinks::recording_i2c: no answer from " + linux_i2c::hex(address));
    writes_.push_back({address, {bytes.begin(), bytes.end()}});
    if (bytes.empty()) return;
    auto& image = images_[address & 0x7f];
    std::uint8_t r = bytes[0];
    for (std::size_t i = 1; i < bytes.size(); ++i) image[r++] = bytes[i];
  }

  const std::vector<transaction>& writes() const noexcept { return writes_; }
  void clear() noexcept { writes_.clear(); }
  /// Register `r` of the device at `address`, as written (0 when never written).
  std::uint8_t reg(std::uint8_t address, std::uint8_t r) const noexcept { return images_[address & 0x7f][r]; }
  void fail_writes(bool on) noexcept { failing_ = on; }

 private:
  std::vector<transaction> writes_;
  std::array<std::array<std::uint8_t, 256>, 128> images_{};
  bool failing_ = false;
};

}  // namespace tactus::sinks
