// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>

#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

// asyncio.wait_for: an awaitable operation with a deadline. At the deadline the operation is
// cancelled and the caller gets std::system_error with asio::error::timed_out.
//
//   try {
//     auto msg = co_await tactus::with_timeout(in.async_receive(asio::use_awaitable), 2s);
//   } catch (const std::system_error& e) {
//     if (e.code() != asio::error::timed_out) throw;   // "tactus::with_timeout: nothing within 2000 ms"
//   }
//
// It is Asio's own idiom, `co_await (op || timer.async_wait(use_awaitable))` (awaitable operators),
// with one correction: Asio's `||` waits for the first operation to *succeed*, so an operation
// that throws before the deadline would have it wait for the timer and lose the exception;
// with_timeout takes the operation's exception as its outcome and rethrows it. Asio 1.31 and
// later also offer `asio::cancel_after(d, token)` for one asynchronous operation (not in the
// 1.22 to 1.30 that tactus supports).

namespace tactus {

namespace detail {
// An operation's outcome, never thrown: what Asio's || needs to end on the first completion.
template <class T>
struct outcome {
  std::exception_ptr error;
  std::optional<T> value;
};
template <>
struct outcome<void> {
  std::exception_ptr error;
};

template <class T>
asio::awaitable<outcome<T>> capture(asio::awaitable<T> op) {
  outcome<T> r;
  try {
    if constexpr (std::is_void_v<T>) co_await std::move(op);
    else r.value.emplace(co_await std::move(op));
  } catch (...) {
    r.error = std::current_exception();
  }
  co_return r;
}

}  // namespace detail

/// Awaits `op` until `deadline` on `Clock` (std::chrono::steady_clock, or testing::manual_clock).
/// Returns op's result, or rethrows op's exception. At the deadline, op is cancelled (every
/// cancellation type at once) and, once it has ended, with_deadline throws std::system_error
/// with asio::error::timed_out. An op that ignores cancellation delays that until it ends (for
/// blocking work, use tactus::offload, whose cancellation lets go at once). An op that completes
/// at the deadline itself may count either way. Terminal cancellation of the caller (the only
/// kind a coroutine lets through unless it says otherwise) cancels op: op's operation_aborted
/// comes out. Limitation: a caller that accepts partial cancellation
/// (`reset_cancellation_state(enable_partial_cancellation())`) and receives one leaves Asio
/// 1.22's awaitable operators unable to cancel op at the deadline: op then runs to its end and
/// timed_out comes out after it. Resumes on the caller's executor.
template <class Clock = std::chrono::steady_clock, class T>
asio::awaitable<T> with_deadline(asio::awaitable<T> op, typename Clock::time_point deadline,
                                 std::string what = "tactus::with_deadline: the deadline passed") {
  using namespace detail::awaitable_operators;
  asio::basic_waitable_timer<Clock> timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  auto r = co_await (detail::capture(std::move(op)) || timer.async_wait(detail::as_tuple(asio::use_awaitable)));
  if (r.index() == 1) throw std::system_error(asio::error::timed_out, what);
  auto& done = std::get<0>(r);
  if (done.error) std::rethrow_exception(done.error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*done.value);
}

/// Awaits `op` for at most `timeout` from now (when the returned awaitable is awaited), on
/// `Clock`: as with_deadline. The timed_out error reads "tactus::with_timeout: nothing within
/// N ms".
template <class Clock = std::chrono::steady_clock, class T, class Rep, class Period>
asio::awaitable<T> with_timeout(asio::awaitable<T> op, std::chrono::duration<Rep, Period> timeout) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  co_return co_await with_deadline<Clock>(std::move(op),
                                          Clock::now() + std::chrono::duration_cast<typename Clock::duration>(timeout),
                                          "tactus::with_timeout: nothing within " + std::to_string(ms) + " ms");
}

}  // namespace tactus
