// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

// The std::error_codes a servo or LED operation completes with besides a driver's own
// (std::system_error from a sysfs or I2C write keeps its errno) and asio::error::operation_aborted.

namespace tactus::sinks {

enum class errc {
  /// The driver's set() threw something other than a std::system_error.
  driver_failed = 1,
  /// The easing returned NaN or infinity: nothing was sent, the move ended there.
  bad_easing,
};

/// The category of errc.
inline const std::error_category& sink_category() noexcept {
  struct category final : std::error_category {
    const char* name() const noexcept override { return "tactus.sinks"; }
    std::string message(int v) const override {
      switch (static_cast<errc>(v)) {
        case errc::driver_failed: return "the sink's driver failed";
        case errc::bad_easing: return "the easing returned a value that is not finite";
      }
      return "unknown tactus.sinks error";
    }
  };
  static const category c;
  return c;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), sink_category()}; }

}  // namespace tactus::sinks

template <>
struct std::is_error_code_enum<tactus::sinks::errc> : std::true_type {};
