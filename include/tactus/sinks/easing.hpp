// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cmath>
#include <functional>
#include <numbers>

// The shape of a move or a fade: a function from progress (0 at the start, 1 at the end) to how
// far along the value is (0 to 1; an easing may overshoot, the sink's limits still hold). The
// built-in ones are plain functions; any callable double(double) will do:
//
//   co_await arm.move_to(150, 800ms, tactus::ease::in_out);
//   co_await arm.move_to(30, 800ms, [](double x) { return x * x * x; });

namespace tactus {

/// An easing: progress 0..1 -> fraction of the way, f(0) = 0 and f(1) = 1. Must be a pure
/// function (it runs inside the batch update of every sink on its rate).
using easing = std::function<double(double)>;

namespace ease {
/// Constant speed.
inline double linear(double x) noexcept { return x; }
/// Accelerates from rest (quadratic).
inline double in(double x) noexcept { return x * x; }
/// Decelerates to rest (quadratic).
inline double out(double x) noexcept { return x * (2 - x); }
/// Starts and ends at rest, fastest half-way (cubic smoothstep): what a servo arm looks natural with.
inline double in_out(double x) noexcept { return x * x * (3 - 2 * x); }
/// Starts and ends at rest along a half cosine.
inline double sine_in_out(double x) noexcept { return 0.5 - 0.5 * std::cos(std::numbers::pi * x); }
}  // namespace ease

}  // namespace tactus
