// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <functional>
#include <memory>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

// The one operation a sink runs at a time (latest wins): its type-erased completion handler,
// completed by posting to the handler's associated executor (never inside the call that
// completes it), with the handler's cancellation slot connected to the sink while it runs.

namespace tactus::sinks::detail {

template <class... Result>
class pending_op {
 public:
  pending_op() = default;
  pending_op(const pending_op&) = delete;
  pending_op& operator=(const pending_op&) = delete;

  /// Takes `handler` (void(std::error_code, Result...)), completed later with `result`.
  /// `on_cancel()` runs when its cancellation slot is emitted (any type).
  template <class Handler, class Executor, class OnCancel>
  void start(Handler&& handler, const Executor& fallback, OnCancel on_cancel, Result... result) {
    auto op = std::make_unique<impl<std::decay_t<Handler>, Executor>>(std::forward<Handler>(handler), fallback,
                                                                      std::move(result)...);
    slot_ = asio::get_associated_cancellation_slot(op->handler_);
    on_cancel_ = std::move(on_cancel);
    op_ = std::move(op);
    rearm();
  }

  bool active() const noexcept { return op_ != nullptr; }

  /// The handler's cancellation slot (not connected when it has none).
  asio::cancellation_slot slot() const noexcept { return slot_; }

  /// Connects the slot to on_cancel again, after a wait that was handed the slot (to let a
  /// metronome see whose operation it is) has taken it over or cleared it.
  void rearm() {
    if (!op_ || !slot_.is_connected()) return;
    slot_.assign([f = on_cancel_](asio::cancellation_type type) {
      if (type != asio::cancellation_type::none) f();
    });
  }

  /// Completes the operation, if one runs, with `ec` and the result given at start.
  void complete(std::error_code ec) {
    slot_ = {};
    on_cancel_ = nullptr;
    if (auto op = std::move(op_)) op->complete(ec);
  }

 private:
  struct base {
    virtual ~base() = default;
    virtual void complete(std::error_code ec) = 0;
  };

  template <class Handler, class Executor>
  struct impl final : base {
    using executor_t = asio::associated_executor_t<Handler, Executor>;
    impl(Handler&& h, const Executor& fallback, Result... r)
        : work_(asio::get_associated_executor(h, fallback)), handler_(std::move(h)), result_(std::move(r)...) {}
    void complete(std::error_code ec) override {
      auto slot = asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) slot.clear();
      auto ex = work_.get_executor();
      asio::post(ex, [h = std::move(handler_), ec, r = std::move(result_)]() mutable {
        std::apply([&](auto&&... v) { std::move(h)(ec, std::move(v)...); }, std::move(r));
      });
      work_.reset();
    }
    asio::executor_work_guard<executor_t> work_;
    Handler handler_;
    std::tuple<Result...> result_;
  };

  std::unique_ptr<base> op_;
  asio::cancellation_slot slot_;
  std::function<void()> on_cancel_;
};

}  // namespace tactus::sinks::detail
