// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/detail/posix_file.hpp>
#include <tactus/sinks/pulse_map.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>

// A PWM output of Linux's sysfs interface (/sys/class/pwm/pwmchipN), as a level sink for a
// servo or an LED: it exports the channel (writes N to `export`), sets `period`, and on each
// set() writes the pulse width to `duty_cycle` (enabling the output on the first). Raspberry Pi:
// `dtoverlay=pwm-2chan` in config.txt gives pwmchip0 channels 0 and 1 (GPIO 18 and 19):
//
//   tactus::servo arm{io.get_executor(), tactus::sinks::sysfs_pwm{"/sys/class/pwm/pwmchip0", 0}};
//
// Every write is a short syscall on the executor's thread. A missing chip, a channel the chip
// does not have, a write the kernel refuses (EBUSY: the channel is a kernel driver's; EINVAL: a
// pulse longer than the period) or no permission (add the user to the group udev gives the
// files, often `gpio`) throws one std::system_error naming the file.

namespace tactus::sinks {

/// One PWM channel through sysfs. Movable, not copyable. Thread-safe: no.
class sysfs_pwm {
 public:
  /// Opens channel `channel` of the chip at `chip` (a /sys/class/pwm/pwmchipN directory, or a
  /// tree that mimics one), exporting it unless it is exported already, and sets its period
  /// to `map.period`. After an export it waits up to `wait_for_access` for the channel's files
  /// to appear writable (udev sets their group a moment after the kernel creates them). On any
  /// error it unexports what it exported, and throws: std::system_error naming the path, or
  /// std::invalid_argument for a channel the chip does not have or a bad map.
  sysfs_pwm(std::filesystem::path chip, unsigned channel, pulse_map map = {},
            std::chrono::milliseconds wait_for_access = std::chrono::milliseconds(2000))
      : chip_(std::move(chip)), channel_(channel), map_(map) {
    map_.check(who);
    struct stat st {};
    if (::stat(chip_.c_str(), &st) != 0)
      detail::throw_errno(errno, std::string(who) + ": no PWM chip at " + chip_.string());
    if (!S_ISDIR(st.st_mode)) detail::throw_errno(ENOTDIR, std::string(who) + ": no PWM chip at " + chip_.string());
    const auto npwm = number(detail::read_attribute((chip_ / "npwm").string()));
    if (npwm >= 0 && static_cast<long long>(channel_) >= npwm)
      throw std::invalid_argument(std::string(who) + ": " + chip_.string() + " has " + std::to_string(npwm) +
                                  " channels, so no channel " + std::to_string(channel_));
    dir_ = chip_ / ("pwm" + std::to_string(channel_));
    if (!std::filesystem::exists(dir_)) {
      detail::write_attribute((chip_ / "export").string(), std::to_string(channel_), who);
      exported_ = true;
    }
    try {
      await_access(wait_for_access);
      // The kernel refuses a period shorter than the duty cycle in force: clear that first.
      if (number(detail::read_attribute(file("duty_cycle"))) > map_.period.count())
        detail::write_attribute(file("duty_cycle"), "0", who);
      detail::write_attribute(file("period"), std::to_string(map_.period.count()), who);
      duty_fd_ = ::open(file("duty_cycle").c_str(), O_WRONLY | O_CLOEXEC);
      if (duty_fd_ < 0) detail::throw_errno(errno, std::string(who) + ": cannot open " + file("duty_cycle"));
    } catch (...) {
      release();
      throw;
    }
  }

  /// Closes the channel: an output this object exported is disabled and unexported (so a servo
  /// on it goes limp: give it time to reach its rest position first); one that was exported
  /// before is left as it is.
  ~sysfs_pwm() { release(); }

  sysfs_pwm(sysfs_pwm&& o) noexcept
      : chip_(std::move(o.chip_)),
        dir_(std::move(o.dir_)),
        channel_(o.channel_),
        map_(o.map_),
        duty_fd_(std::exchange(o.duty_fd_, -1)),
        duty_(o.duty_),
        exported_(std::exchange(o.exported_, false)),
        enabled_(o.enabled_) {}
  sysfs_pwm& operator=(sysfs_pwm&&) = delete;
  sysfs_pwm(const sysfs_pwm&) = delete;

  /// Sends the pulse width for `v` (see pulse_map).
  void set(double v) { set_duty_cycle(map_.pulse(v)); }

  /// Writes `d` to duty_cycle, then enables the output if it is not yet. Throws
  /// std::system_error naming the file.
  void set_duty_cycle(std::chrono::nanoseconds d) {
    const auto text = std::to_string(d.count()) + "\n";
    // One write at offset 0 of the file kept open: the kernel parses the whole write.
    if (::pwrite(duty_fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
      detail::throw_errno(
          errno, std::string(who) + ": cannot write " + std::to_string(d.count()) + " to " + file("duty_cycle"));
    duty_ = d;
    if (!enabled_) {
      detail::write_attribute(file("enable"), "1", who);
      enabled_ = true;
    }
  }

  /// The channel's directory (…/pwmchipN/pwmM).
  const std::filesystem::path& path() const noexcept { return dir_; }
  std::chrono::nanoseconds duty_cycle() const noexcept { return duty_; }
  const pulse_map& map() const noexcept { return map_; }

 private:
  static constexpr const char* who = "tactus::sinks::sysfs_pwm";

  std::string file(const char* name) const { return (dir_ / name).string(); }

  // A whole number read from an attribute; -1 when there is none.
  static long long number(const std::string& s) noexcept {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    return end == s.c_str() || errno != 0 ? -1 : v;
  }

  void await_access(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (::access(file("period").c_str(), W_OK) == 0 && ::access(file("duty_cycle").c_str(), W_OK) == 0) return;
      const int e = errno;
      if (std::chrono::steady_clock::now() >= until)
        detail::throw_errno(e, std::string(who) + ": cannot write to " + file("period") +
                                   (exported_ ? " after exporting channel " + std::to_string(channel_) : ""));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void release() noexcept {
    if (duty_fd_ >= 0) ::close(duty_fd_);
    duty_fd_ = -1;
    if (!exported_) return;
    exported_ = false;
    try {
      if (enabled_) detail::write_attribute(file("enable"), "0", who);
    } catch (...) {
    }
    try {
      detail::write_attribute((chip_ / "unexport").string(), std::to_string(channel_), who);
    } catch (...) {
    }
  }

  std::filesystem::path chip_;
  std::filesystem::path dir_;
  unsigned channel_;
  pulse_map map_;
  int duty_fd_ = -1;
  std::chrono::nanoseconds duty_{0};
  bool exported_ = false;
  bool enabled_ = false;
};

}  // namespace tactus::sinks
