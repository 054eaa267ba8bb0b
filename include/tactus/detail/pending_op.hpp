// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

// One pending asynchronous operation of signature void(std::error_code, T), type-erased so that
// a component can hold it until it completes: the handler, the work it keeps on the component's
// executor and on its own, and its cancellation slot. thread_channel's receive, midi::input's
// receive and midi::port_watcher's wait are built on it:
//
//   auto op = make_pending_op<T>(std::move(handler), ex);
//   op->on_cancellation([this, p = op.get()] { cancel(p); });   // if the handler has a slot
//   pending_.push_back(std::move(op));                             // later: complete(ec, v, how)

namespace tactus::detail {

/// How complete() runs the handler on its associated executor.
enum class completion {
  post,      ///< always later: inside an initiating function, or from another component's handler
  dispatch,  ///< at once if already there (from our own handler on the executor): a waiting
             ///< coroutine resumes without a second trip through the queue
};

template <class T>
class pending_op {
 public:
  virtual ~pending_op() = default;
  /// Clears the cancellation slot, releases the work and runs the handler with (ec, value).
  /// Call it once; the operation is spent afterwards.
  virtual void complete(std::error_code ec, T value, completion how) = 0;
};

template <class T, class Handler, class Executor>
class pending_op_for final : public pending_op<T> {
 public:
  pending_op_for(Handler h, const Executor& io_ex)
      : handler_(std::move(h)),
        io_work_(asio::prefer(io_ex, asio::execution::outstanding_work.tracked)),
        handler_work_(
            asio::prefer(asio::get_associated_executor(handler_, io_ex), asio::execution::outstanding_work.tracked)) {}

  /// Installs `f` (void()) as the handler's cancellation handler, for every cancellation type,
  /// when the handler has a connected slot. complete() uninstalls it.
  template <class F>
  void on_cancellation(F f) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (!slot.is_connected()) return;
    slot.assign([f = std::move(f)](asio::cancellation_type type) mutable {
      if (type != asio::cancellation_type::none) f();
    });
  }

  void complete(std::error_code ec, T value, completion how) override {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    auto ex = std::move(handler_work_);
    io_work_ = {};
    auto f = [h = std::move(handler_), ec, v = std::move(value)]() mutable { std::move(h)(ec, std::move(v)); };
    if (how == completion::post) asio::post(ex, std::move(f));
    else asio::dispatch(ex, std::move(f));
  }

 private:
  Handler handler_;
  decltype(asio::prefer(std::declval<Executor>(), asio::execution::outstanding_work.tracked)) io_work_;
  std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler, Executor>>(),
                                     asio::execution::outstanding_work.tracked))>
      handler_work_;
};

/// A pending operation holding `handler`; `io_ex` is the component's executor, kept busy (and
/// used when the handler has no associated executor) until the operation completes.
template <class T, class Handler, class Executor>
auto make_pending_op(Handler&& handler, const Executor& io_ex) {
  return std::make_unique<pending_op_for<T, std::decay_t<Handler>, Executor>>(std::forward<Handler>(handler), io_ex);
}

}  // namespace tactus::detail
