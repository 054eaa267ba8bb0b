// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beat.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

// The pending async waits of a metronome ("resume me at the next bar"): a list of type-erased
// handlers, each with the grid point it waits for, completed by posting to the handler's own
// executor, never inline, and cancellable through the handler's cancellation slot.

namespace tactus::detail {

enum class wait_kind { tick, beat, bar, position };

template <class Clock, class Executor>
class beat_waiters {
 public:
  using beat_type = basic_beat<Clock>;

  beat_waiters() = default;
  beat_waiters(const beat_waiters&) = delete;
  beat_waiters& operator=(const beat_waiters&) = delete;
  ~beat_waiters() { complete_all(asio::error::operation_aborted); }

  /// Registers `handler` (signature void(std::error_code, beat_type)).
  template <class Handler>
  void add(Handler&& handler, const Executor& fallback, wait_kind kind, beats target) {
    using h_type = std::decay_t<Handler>;
    auto w = std::make_unique<waiter<h_type>>(std::forward<Handler>(handler), fallback, kind, target);
    auto slot = asio::get_associated_cancellation_slot(w->handler_);
    if (slot.is_connected()) {
      slot.assign([this, p = w.get()](asio::cancellation_type type) {
        if (type != asio::cancellation_type::none) cancel(p);
      });
    }
    list_.push_back(std::move(w));
  }

  /// Completes every waiter that `b` satisfies.
  void notify(const beat_type& b) {
    if (list_.empty()) return;
    auto due = std::stable_partition(list_.begin(), list_.end(), [&](const auto& w) { return !w->matches(b); });
    std::vector<std::unique_ptr<waiter_base>> done(std::make_move_iterator(due), std::make_move_iterator(list_.end()));
    list_.erase(due, list_.end());
    for (auto& w : done) w->complete({}, b);
  }

  /// Completes every waiter with `ec` (operation_aborted when the metronome stops).
  void complete_all(std::error_code ec) {
    auto done = std::move(list_);
    list_.clear();
    for (auto& w : done) w->complete(ec, beat_type{});
  }

  std::size_t size() const noexcept { return list_.size(); }

 private:
  struct waiter_base {
    waiter_base(wait_kind k, beats t) : kind_(k), target_(t) {}
    virtual ~waiter_base() = default;
    virtual void complete(std::error_code ec, const beat_type& b) = 0;
    bool matches(const beat_type& b) const noexcept {
      switch (kind_) {
        case wait_kind::tick: return true;
        case wait_kind::beat: return b.is_beat();
        case wait_kind::bar: return b.is_downbeat();
        case wait_kind::position: return b.position.count() >= target_.count() - 1e-9;
      }
      return true;
    }
    wait_kind kind_;
    beats target_;
  };

  template <class Handler>
  struct waiter final : waiter_base {
    using executor_t = asio::associated_executor_t<Handler, Executor>;
    waiter(Handler&& h, const Executor& fallback, wait_kind k, beats t)
        : waiter_base(k, t), work_(asio::get_associated_executor(h, fallback)), handler_(std::move(h)) {}
    void complete(std::error_code ec, const beat_type& b) override {
      auto slot = asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) slot.clear();
      auto ex = work_.get_executor();
      // Never inline: the waiting coroutine resumes on its own executor after we return.
      asio::post(ex, [h = std::move(handler_), ec, b]() mutable { std::move(h)(ec, b); });
      work_.reset();
    }
    asio::executor_work_guard<executor_t> work_;
    Handler handler_;
  };

  void cancel(waiter_base* p) {
    auto it = std::find_if(list_.begin(), list_.end(), [p](const auto& w) { return w.get() == p; });
    if (it == list_.end()) return;
    auto w = std::move(*it);
    list_.erase(it);
    w->complete(asio::error::operation_aborted, beat_type{});
  }

  std::vector<std::unique_ptr<waiter_base>> list_;
};

}  // namespace tactus::detail
