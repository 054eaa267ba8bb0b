// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cerrno>
#include <chrono>
#include <optional>
#include <system_error>
#include <vector>

// A driver that records every set() with its time on `Clock` (with testing::manual_clock, the
// exact virtual time): for tests, for plotting a show's trajectories, and for a terminal view
// that runs without hardware. A servo or LED refers to it with std::ref, so that it can be read:
//
//   using clock = tactus::testing::manual_clock;
//   tactus::sinks::recording_driver<clock> rec;
//   tactus::basic_servo<clock> arm{io.get_executor(), std::ref(rec)};
//   arm.async_move_to(120, std::chrono::milliseconds(100), [](std::error_code, tactus::move_result) {});
//   tactus::testing::advance(io, std::chrono::milliseconds(100));
//   for (const auto& e : rec.events()) std::printf("%3lld ms: %5.1f\n", ms(e.time), e.value);

namespace tactus::sinks {

/// A level sink (Value = double) or a switch (Value = bool) that records. Thread-safe: no.
/// Never fails, unless told to (fail_sets).
template <class Clock = std::chrono::steady_clock, class Value = double>
class recording_driver {
 public:
  using value_type = Value;
  using time_point = typename Clock::time_point;
  struct event {
    time_point time;
    Value value;
  };

  /// Records `v` at Clock::now(). Throws std::system_error (EIO) while fail_sets(true).
  void set(Value v) {
    if (failing_) throw std::system_error(EIO, std::generic_category(), "tactus::sinks::recording_driver: fail_sets");
    events_.push_back({Clock::now(), v});
  }

  /// Everything set, in order.
  const std::vector<event>& events() const noexcept { return events_; }
  /// The last value set, if any.
  std::optional<Value> last() const {
    if (events_.empty()) return std::nullopt;
    return events_.back().value;
  }
  void clear() noexcept { events_.clear(); }

  /// While true, set() throws (to test error paths).
  void fail_sets(bool on) noexcept { failing_ = on; }

  /// The delay this driver declares (default 0): what a servo or LED on it takes as its lead.
  std::chrono::nanoseconds lead_time() const noexcept { return lead_; }
  void set_lead_time(std::chrono::nanoseconds d) noexcept { lead_ = d; }

 private:
  std::vector<event> events_;
  std::chrono::nanoseconds lead_{};
  bool failing_ = false;
};

}  // namespace tactus::sinks
