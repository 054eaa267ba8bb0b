// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <iterator>
#include <memory>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

// Pending asynchronous waits for a value of type T ("resume me at the next bar", "at the next
// pulse"): type-erased completion handlers of signature void(std::error_code, T), each with an
// optional Key saying what it waits for. They complete by posting to the handler's associated
// executor, never inline, and are cancellable through the handler's cancellation slot.

namespace tactus::detail {

template <class T, class Key = std::monostate>
class waiter_list {
 public:
  waiter_list() = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;
  ~waiter_list() { complete_all(asio::error::operation_aborted, T{}); }

  /// Registers `handler`; `fallback` is the executor used when it has none associated.
  template <class Handler, class Executor>
  void add(Handler&& handler, const Executor& fallback, Key key = {}) {
    auto w = std::make_unique<waiter<std::decay_t<Handler>, Executor>>(std::forward<Handler>(handler), fallback,
                                                                       std::move(key));
    auto slot = asio::get_associated_cancellation_slot(w->handler_);
    if (slot.is_connected()) {
      slot.assign([this, p = w.get()](asio::cancellation_type type) {
        if (type != asio::cancellation_type::none) cancel(p);
      });
    }
    list_.push_back(std::move(w));
  }

  /// Completes, with `value`, every waiter whose key satisfies `match(key)`, in the order added.
  template <class Match>
  void complete_if(Match&& match, const T& value) {
    if (list_.empty()) return;
    auto due = std::stable_partition(list_.begin(), list_.end(), [&](const auto& w) { return !match(w->key_); });
    std::vector<std::unique_ptr<waiter_base>> done(std::make_move_iterator(due), std::make_move_iterator(list_.end()));
    list_.erase(due, list_.end());
    for (auto& w : done) w->complete({}, value);
  }

  /// Completes every waiter whose key satisfies `match(key)` with its own `value_of(key)`.
  template <class Match, class ValueOf>
  void complete_each_if(Match&& match, ValueOf&& value_of) {
    if (list_.empty()) return;
    auto due = std::stable_partition(list_.begin(), list_.end(), [&](const auto& w) { return !match(w->key_); });
    std::vector<std::unique_ptr<waiter_base>> done(std::make_move_iterator(due), std::make_move_iterator(list_.end()));
    list_.erase(due, list_.end());
    for (auto& w : done) w->complete({}, value_of(w->key_));
  }

  /// Calls `f(key)` for every waiter's key, in the order added.
  template <class F>
  void for_each_key(F&& f) const {
    for (const auto& w : list_) f(w->key_);
  }

  /// Completes every waiter with `ec` and `value`.
  void complete_all(std::error_code ec, const T& value) {
    auto done = std::move(list_);
    list_.clear();
    for (auto& w : done) w->complete(ec, value);
  }

  std::size_t size() const noexcept { return list_.size(); }
  bool empty() const noexcept { return list_.empty(); }

 private:
  struct waiter_base {
    explicit waiter_base(Key k) : key_(std::move(k)) {}
    virtual ~waiter_base() = default;
    virtual void complete(std::error_code ec, const T& value) = 0;
    Key key_;
  };

  template <class Handler, class Executor>
  struct waiter final : waiter_base {
    using executor_t = asio::associated_executor_t<Handler, Executor>;
    waiter(Handler&& h, const Executor& fallback, Key k)
        : waiter_base(std::move(k)), work_(asio::get_associated_executor(h, fallback)), handler_(std::move(h)) {}
    void complete(std::error_code ec, const T& value) override {
      auto slot = asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) slot.clear();
      auto ex = work_.get_executor();
      // Never inline: the waiting coroutine resumes on its own executor after we return.
      asio::post(ex, [h = std::move(handler_), ec, value]() mutable { std::move(h)(ec, value); });
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
    w->complete(asio::error::operation_aborted, T{});
  }

  std::vector<std::unique_ptr<waiter_base>> list_;
};

}  // namespace tactus::detail
