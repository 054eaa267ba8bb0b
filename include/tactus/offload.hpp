// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/execution/executor.hpp>
#include <asio/execution_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/is_executor.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

// A blocking call (a driver's read, a speech engine, a file's fsync) run on a thread pool while
// the loop keeps running, and its result (or exception) back in the calling coroutine, on its own
// executor: asyncio's `await loop.run_in_executor(pool, fn)`.
//
//   asio::thread_pool pool{2};
//   ...
//   double v = co_await tactus::offload(pool, [] { return read_sensor(); });   // blocks a pool thread
//
// Cancelling the await drops the result: the coroutine resumes at once with operation_aborted,
// while the call itself runs to its end on the pool (a blocking call cannot be interrupted).

namespace tactus {

namespace detail {

template <class F>
using offload_result_t = std::decay_t<std::invoke_result_t<std::decay_t<F>&>>;

template <class R>
struct offload_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct offload_signature<void> {
  using type = void(std::exception_ptr);
};

/// An executor (standard or Networking TS style): what async_offload runs fn on.
template <class T>
concept offload_executor = asio::execution::is_executor<T>::value || asio::is_executor<T>::value;
/// An execution context (asio::thread_pool, asio::io_context): its executor is used.
template <class T>
concept offload_context = std::is_convertible_v<T&, asio::execution_context&>;

// One offloaded call. The pool thread and a cancellation race to complete it; the winner of
// claimed_ does, through a post to the handler's executor, where the handler (and its
// cancellation slot) is touched only.
template <class Handler, class R, class IoExecutor>
class offload_op : public std::enable_shared_from_this<offload_op<Handler, R, IoExecutor>> {
 public:
  using handler_executor = asio::associated_executor_t<Handler, IoExecutor>;

  offload_op(Handler h, const IoExecutor& io_ex)
      : handler_(std::move(h)), work_(asio::get_associated_executor(handler_, io_ex)), ex_(work_.get_executor()) {}

  // On the caller's executor, in the initiating function.
  void watch_cancellation() {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (!slot.is_connected()) return;
    slot.assign([w = this->weak_from_this()](asio::cancellation_type type) {
      if (type == asio::cancellation_type::none) return;
      if (auto self = w.lock())
        self->finish_with(std::make_exception_ptr(std::system_error(asio::error::operation_aborted)));
    });
  }

  // On the pool: runs fn; hands its result over unless the await was cancelled meanwhile (then the
  // result is destroyed here).
  template <class F>
  void run(F& fn) noexcept {
    std::exception_ptr e;
    std::optional<value_type> r;
    try {
      if constexpr (std::is_void_v<R>) fn();
      else r.emplace(fn());
    } catch (...) {
      e = std::current_exception();
    }
    finish_with(std::move(e), std::move(r));
  }

 private:
  using value_type = std::conditional_t<std::is_void_v<R>, char, R>;

  void finish_with(std::exception_ptr e, std::optional<value_type> r = std::nullopt) noexcept {
    // acq_rel: one winner; whatever it writes below reaches the handler's executor through the post.
    if (claimed_.exchange(true, std::memory_order_acq_rel)) return;
    error_ = std::move(e);
    result_ = std::move(r);
    asio::post(ex_, [self = this->shared_from_this()]() mutable { self->complete(); });
  }

  // On the handler's executor.
  void complete() {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    auto h = std::move(handler_);
    auto work = std::move(work_);
    auto e = std::move(error_);
    if constexpr (std::is_void_v<R>) {
      std::move(h)(std::move(e));
    } else {
      std::move(h)(std::move(e), result_ ? std::move(*result_) : R{});
    }
  }

  Handler handler_;
  asio::executor_work_guard<handler_executor> work_;  // the caller's executor stays busy meanwhile
  handler_executor ex_;
  std::atomic<bool> claimed_{false};
  std::exception_ptr error_;
  std::optional<value_type> result_;
};

struct initiate_offload {
  template <class Handler, class Executor, class F>
  void operator()(Handler&& handler, const Executor& ex, F&& fn) const {
    using R = offload_result_t<F>;
    auto op = std::make_shared<offload_op<std::decay_t<Handler>, R, Executor>>(std::forward<Handler>(handler), ex);
    op->watch_cancellation();
    asio::post(ex, [op, f = std::decay_t<F>(std::forward<F>(fn))]() mutable { op->run(f); });
  }
};

}  // namespace detail

/// Runs `fn()` on `ex` (a thread pool's executor, or any executor) and completes with its result:
/// signature void(std::exception_ptr, R), or void(std::exception_ptr) when fn returns void; the
/// exception_ptr holds what fn threw. R is fn's result by value, and must be
/// default-constructible (a cancelled call completes with R{}).
///
/// The completion handler runs on its associated executor: for use_awaitable, the calling
/// coroutine's, so it resumes where it was; a plain callback without one runs on `ex` (bind
/// one with asio::bind_executor, above all when you also bind a cancellation slot: the slot is
/// cleared where the handler runs). `fn` is moved to `ex`'s thread and destroyed there.
///
/// Cancellation (terminal, partial or total, through the handler's cancellation slot) completes
/// at once with a std::system_error(operation_aborted) in the exception_ptr; fn runs to its end
/// all the same (nothing can interrupt a blocking call), and its result is destroyed on the pool.
/// So fn must not refer to anything the caller destroys when it moves on: capture by value (or by
/// shared_ptr) what fn touches.
///
/// GCC 12 (Debian 12's compiler) destroys the captures of a lambda written inside a co_await
/// expression twice, a compiler bug (seen with 12.2; Clang is not affected): a lambda that owns
/// what it captures (a shared_ptr, a string by value) must be named before the co_await, as in
/// `auto read = [dev] { return dev->read(); };` then `co_await tactus::offload(pool,
/// std::move(read))`. Captures by reference or of trivial values (ints, pointers) are safe inline.
///
/// Lifetimes: the pool thread posts the completion to the caller's executor, and may still be
/// inside that post when the caller's io_context::run() returns; join (or destroy) the pool
/// before the io_context is destroyed (declaring the pool after the io_context does it).
///
/// Thread-safe: yes (call it from the caller's executor; fn runs on `ex`). While pending, it is
/// outstanding work on the caller's executor and on `ex`.
template <detail::offload_executor Executor, class F, class CompletionToken>
auto async_offload(const Executor& ex, F&& fn, CompletionToken&& token) {
  using R = detail::offload_result_t<F>;
  static_assert(std::is_void_v<R> || (std::is_default_constructible_v<R> && std::is_move_constructible_v<R>),
                "tactus::async_offload: fn's result must be void, or default- and move-constructible "
                "(a cancelled call completes with R{})");
  return asio::async_initiate<CompletionToken, typename detail::offload_signature<R>::type>(
      detail::initiate_offload{}, token, ex, std::forward<F>(fn));
}

/// As above, on `ctx`'s executor (an asio::thread_pool, or any execution context).
template <detail::offload_context ExecutionContext, class F, class CompletionToken>
auto async_offload(ExecutionContext& ctx, F&& fn, CompletionToken&& token) {
  return async_offload(ctx.get_executor(), std::forward<F>(fn), std::forward<CompletionToken>(token));
}

/// `co_await tactus::offload(pool, fn)`: runs fn on the pool (or on an executor), resumes on the
/// calling coroutine's executor with fn's result, or rethrows what fn threw. Cancelling the
/// awaiting coroutine (or the `||` it is part of) resumes it at once with a std::system_error
/// (operation_aborted) and drops fn's result; fn runs to its end (see async_offload).
template <detail::offload_executor Executor, class F>
asio::awaitable<detail::offload_result_t<F>> offload(Executor ex, F fn) {
  // use_awaitable rethrows a completion's non-null exception_ptr in the coroutine.
  if constexpr (std::is_void_v<detail::offload_result_t<F>>) {
    co_await async_offload(ex, std::move(fn), asio::use_awaitable);
  } else {
    co_return co_await async_offload(ex, std::move(fn), asio::use_awaitable);
  }
}

/// As above, on `ctx`'s executor: `co_await tactus::offload(pool, fn)` with an asio::thread_pool.
template <detail::offload_context ExecutionContext, class F>
asio::awaitable<detail::offload_result_t<F>> offload(ExecutionContext& ctx, F fn) {
  return offload(ctx.get_executor(), std::move(fn));
}

}  // namespace tactus
