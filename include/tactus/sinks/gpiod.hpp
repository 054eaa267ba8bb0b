// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cerrno>
#include <gpiod.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

// A GPIO line through libgpiod (target tactus::gpiod, built when libgpiod is found), as a
// switch sink for an LED: on a driver that only switches, the LED's levels between 0 and 1
// become software PWM. The line is requested as an output, off, at construction:
//
//   tactus::led lamp{io.get_executor(), tactus::sinks::gpio_line{"gpiochip0", 17}};
//
// libgpiod 1.6 (Debian 12) and 2.x (Debian 13) have different APIs; the tactus::gpiod target
// sets TACTUS_GPIOD_API to 1 or 2 from the version pkg-config reports.

#if !defined(TACTUS_GPIOD_API)
#error "tactus/sinks/gpiod.hpp: link the target tactus::gpiod (it sets TACTUS_GPIOD_API from libgpiod's version)"
#endif

namespace tactus::sinks {

/// How a line is requested.
struct gpio_options {
  /// The LED lights when the line is low (wired from the supply to the pin).
  bool active_low = false;
  /// The consumer name the kernel shows for the line (gpioinfo).
  std::string consumer = "tactus";
};

/// One output line of a GPIO chip. A switch sink (value_type bool). Movable, not copyable.
/// Thread-safe: no. Each set() is one ioctl on the calling thread.
class gpio_line {
 public:
  using value_type = bool;

  /// Requests line `offset` of `chip` ("/dev/gpiochip0", "gpiochip0" or "0") as an output,
  /// inactive. Throws std::system_error naming the chip (and the line) when the chip is missing
  /// (ENOENT), not a GPIO chip, not permitted (EACCES: the user wants the `gpio` group) or the
  /// line is in use (EBUSY, with its consumer); std::invalid_argument for a line the chip does
  /// not have. Nothing stays open or requested after an error.
  gpio_line(std::string chip, unsigned offset, gpio_options o = {}) : path_(path_of(std::move(chip))), offset_(offset) {
    chip_.reset(gpiod_chip_open(path_.c_str()));
    if (!chip_) fail(errno, "cannot open GPIO chip " + path_);
#if TACTUS_GPIOD_API >= 2
    {
      std::unique_ptr<gpiod_chip_info, void (*)(gpiod_chip_info*)> info(gpiod_chip_get_info(chip_.get()),
                                                                        gpiod_chip_info_free);
      if (!info) fail(errno, "cannot read GPIO chip " + path_);
      check_offset(gpiod_chip_info_get_num_lines(info.get()));
    }
    std::unique_ptr<gpiod_line_settings, void (*)(gpiod_line_settings*)> settings(gpiod_line_settings_new(),
                                                                                  gpiod_line_settings_free);
    std::unique_ptr<gpiod_line_config, void (*)(gpiod_line_config*)> line_cfg(gpiod_line_config_new(),
                                                                              gpiod_line_config_free);
    std::unique_ptr<gpiod_request_config, void (*)(gpiod_request_config*)> req_cfg(gpiod_request_config_new(),
                                                                                   gpiod_request_config_free);
    if (!settings || !line_cfg || !req_cfg) throw std::bad_alloc();
    gpiod_line_settings_set_direction(settings.get(), GPIOD_LINE_DIRECTION_OUTPUT);
    gpiod_line_settings_set_output_value(settings.get(), GPIOD_LINE_VALUE_INACTIVE);
    gpiod_line_settings_set_active_low(settings.get(), o.active_low);
    if (gpiod_line_config_add_line_settings(line_cfg.get(), &offset_, 1, settings.get()) < 0)
      fail(errno, "cannot configure " + line_name());
    gpiod_request_config_set_consumer(req_cfg.get(), o.consumer.c_str());
    request_.reset(gpiod_chip_request_lines(chip_.get(), req_cfg.get(), line_cfg.get()));
    if (!request_) fail_request(errno);
#else
    check_offset(gpiod_chip_num_lines(chip_.get()));
    line_ = gpiod_chip_get_line(chip_.get(), offset_);
    if (!line_) fail(errno, "cannot get " + line_name());
    const int flags = o.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    if (gpiod_line_request_output_flags(line_, o.consumer.c_str(), flags, 0) < 0) fail_request(errno);
#endif
  }

  ~gpio_line() { release(); }
  gpio_line(gpio_line&& o) noexcept
      : path_(std::move(o.path_)),
        offset_(o.offset_),
        chip_(std::move(o.chip_))
#if TACTUS_GPIOD_API >= 2
        ,
        request_(std::move(o.request_))
#else
        ,
        line_(std::exchange(o.line_, nullptr))
#endif
  {
  }
  gpio_line& operator=(gpio_line&&) = delete;
  gpio_line(const gpio_line&) = delete;

  /// Drives the line active (on) or inactive. Throws std::system_error naming the line.
  void set(bool on) {
#if TACTUS_GPIOD_API >= 2
    const int rc =
        gpiod_line_request_set_value(request_.get(), offset_, on ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
#else
    const int rc = gpiod_line_set_value(line_, on ? 1 : 0);
#endif
    if (rc < 0)
      throw std::system_error(errno, std::generic_category(), std::string(who) + ": cannot set " + line_name());
  }

  const std::string& chip() const noexcept { return path_; }
  unsigned offset() const noexcept { return offset_; }

 private:
  static constexpr const char* who = "tactus::sinks::gpio_line";

  static std::string path_of(std::string chip) {
    if (!chip.empty() && chip.find_first_not_of("0123456789") == std::string::npos) return "/dev/gpiochip" + chip;
    if (chip.find('/') == std::string::npos) return "/dev/" + chip;
    return chip;
  }
  std::string line_name() const { return "line " + std::to_string(offset_) + " of " + path_; }

  void check_offset(std::size_t lines) {
    if (offset_ >= lines) {
      release();
      throw std::invalid_argument(std::string(who) + ": " + path_ + " has " + std::to_string(lines) +
                                  " lines, so no line " + std::to_string(offset_));
    }
  }
  [[noreturn]] void fail(int e, const std::string& what) {
    release();
    throw std::system_error(e, std::generic_category(), std::string(who) + ": " + what);
  }
  [[noreturn]] void fail_request(int e) {
    std::string user;
#if TACTUS_GPIOD_API >= 2
    if (auto* info = gpiod_chip_get_line_info(chip_.get(), offset_)) {
      if (const char* c = gpiod_line_info_get_consumer(info)) user = c;
      gpiod_line_info_free(info);
    }
#else
    if (const char* c = gpiod_line_consumer(line_)) user = c;
#endif
    fail(e, "cannot request " + line_name() + " as an output" + (user.empty() ? "" : " (in use by '" + user + "')"));
  }

  void release() noexcept {
#if TACTUS_GPIOD_API >= 2
    request_.reset();
#else
    if (line_ && gpiod_line_is_requested(line_)) gpiod_line_release(line_);
    line_ = nullptr;
#endif
    chip_.reset();
  }

  struct chip_close {
    void operator()(gpiod_chip* c) const noexcept { gpiod_chip_close(c); }
  };

  std::string path_;
  unsigned offset_;
  std::unique_ptr<gpiod_chip, chip_close> chip_;
#if TACTUS_GPIOD_API >= 2
  struct request_release {
    void operator()(gpiod_line_request* r) const noexcept { gpiod_line_request_release(r); }
  };
  std::unique_ptr<gpiod_line_request, request_release> request_;
#else
  gpiod_line* line_ = nullptr;
#endif
};

}  // namespace tactus::sinks
