// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <type_traits>

// What a servo or an LED drives: a sink, anything with a non-blocking `set(value)`. A level sink
// takes a double (a servo angle in degrees, an LED level 0..1, a pulse width through a
// pulse_map); a switch sink takes a bool and says so with `using value_type = bool;` (a GPIO
// line: an LED on it fades by software PWM). A sink may declare how long after a set() the
// physical event happens, `lead_time()`, which servo and led use as their default lead:
//
//   struct printer {
//     void set(double angle) { std::printf("%.1f\n", angle); }
//   };
//   static_assert(tactus::sinks::level_sink<printer>);
//
// set() runs on the executor's thread, so it must return quickly (a sysfs or I2C write of a few
// bytes is fine); it may throw to report an error (std::system_error carries its code).

namespace tactus::sinks {

namespace detail {
template <class D>
struct value_type_of {
  using type = double;
};
template <class D>
requires requires { typename D::value_type; }
struct value_type_of<D> {
  using type = typename D::value_type;
};
template <class D>
struct unwrap {
  using type = D;
};
template <class D>
struct unwrap<std::reference_wrapper<D>> {
  using type = D;
};
}  // namespace detail

/// The type a sink's set() takes: `D::value_type` when it declares one, else double.
template <class D>
using sink_value_t = typename detail::value_type_of<D>::type;

/// A driver without a std::reference_wrapper around it.
template <class D>
using unwrapped_t = typename detail::unwrap<std::remove_cvref_t<D>>::type;

/// Takes a level: `d.set(double)`.
template <class D>
concept level_sink = !std::same_as<sink_value_t<D>, bool> && requires(D & d, double v) {
  d.set(v);
};

/// Only switches: `d.set(bool)`, declared with `using value_type = bool;`.
template <class D>
concept switch_sink = std::same_as < sink_value_t<D>,
bool > &&requires(D& d, bool on) { d.set(on); };

/// Either.
template <class D>
concept sink = level_sink<D> || switch_sink<D>;

/// Declares its own delay: `d.lead_time()`, a std::chrono duration.
template <class D>
concept declares_lead = requires(const D& d) {
  { d.lead_time() } -> std::convertible_to<std::chrono::nanoseconds>;
};

}  // namespace tactus::sinks
