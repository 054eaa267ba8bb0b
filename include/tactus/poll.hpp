// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

// Waiting for a condition that nothing announces (a device ready bit, a file appearing, a
// motor at rest): ask every `interval`, give up at `timeout`.
//
//   bool ready = co_await tactus::poll_until([&] { return device.ready(); }, 50ms, 2s);
//   if (!ready) std::puts("not ready after 2 s");
//
// The asyncio loop it replaces, `while not pred(): await asyncio.sleep(interval)`, drifts by the
// time pred takes on every turn and overshoots its timeout by up to an interval; here the times
// are computed from the start, and the answer comes at the deadline exactly.

namespace tactus {

/// Evaluates `pred` at the start (t0), then at t0 + k·interval for every k with k·interval <
/// timeout, then once more at the deadline t0 + timeout; returns true as soon as pred returns
/// true, false at the deadline when it never did. Times are computed from t0 (never
/// accumulated), on `Clock` (std::chrono::steady_clock, or testing::manual_clock).
///
/// `pred` is `bool()` or `asio::awaitable<bool>()`. An awaitable pred is awaited to its end; the
/// next evaluation is then at the next grid point after it (grid points it overran are skipped,
/// so evaluations never bunch up), and if it ended past the deadline its answer is still taken.
/// Throws std::invalid_argument for an interval that is not positive or a negative timeout.
///
/// Cancellation (any type): throws std::system_error with asio::error::operation_aborted at once.
/// An exception from pred comes out of poll_until. Resumes on the caller's executor.
/// Thread-safe: pred runs on the caller's executor only.
template <class Clock = std::chrono::steady_clock, class Pred, class Rep1, class Period1, class Rep2, class Period2>
asio::awaitable<bool> poll_until(Pred pred, std::chrono::duration<Rep1, Period1> interval,
                                 std::chrono::duration<Rep2, Period2> timeout) {
  using duration = typename Clock::duration;
  using result = std::invoke_result_t<Pred&>;
  static_assert(std::is_convertible_v<result, bool> || std::is_same_v<result, asio::awaitable<bool>>,
                "tactus::poll_until: pred returns bool or asio::awaitable<bool>");
  const auto step = std::chrono::duration_cast<duration>(interval);
  const auto limit = std::chrono::duration_cast<duration>(timeout);
  if (step <= duration::zero()) throw std::invalid_argument("tactus::poll_until: the interval must be positive");
  if (limit < duration::zero()) throw std::invalid_argument("tactus::poll_until: the timeout must not be negative");

  asio::basic_waitable_timer<Clock> timer(co_await asio::this_coro::executor);
  const auto t0 = Clock::now();
  // A timeout too long to add (hours::max(): no timeout) waits for ever.
  const auto deadline = limit > Clock::time_point::max() - t0 ? Clock::time_point::max() : t0 + limit;
  for (;;) {
    bool ok = false;
    if constexpr (std::is_same_v<result, asio::awaitable<bool>>) ok = co_await pred();
    else ok = static_cast<bool>(pred());
    if (ok) co_return true;
    const auto now = Clock::now();
    if (now >= deadline) co_return false;
    // The first grid point after now, from the anchor: a slow pred skips the points it overran.
    const std::int64_t k = (now - t0) / step + 1;
    auto next = t0 + step * k;
    if (next > deadline) next = deadline;
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace tactus
