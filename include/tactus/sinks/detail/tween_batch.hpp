// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

// The batch behind every moving servo and fading LED: one timer per (executor, update rate),
// which wakes on a grid of multiples of the rate's period (counted from the clock's epoch, so
// every batch of a rate shares one grid) and updates every running tween of that rate in one
// pass, plus exactly at each time-measured tween's end. A sink with nothing running is not in
// any batch and costs nothing; an idle batch has no wait pending.

namespace tactus::sinks::detail {

template <class Clock>
class tween_batch : public std::enable_shared_from_this<tween_batch<Clock>> {
 public:
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// A sink with a tween running in this batch.
  class member {
   public:
    member() = default;
    member(const member&) = delete;
    member& operator=(const member&) = delete;

    /// A grid point: sample the tween at `now` and send it. May remove itself (an error).
    virtual void tween_update(time_point now) = 0;
    /// Its end time (given to add) has come; it has been removed already.
    virtual void tween_end(time_point now) = 0;

   protected:
    ~member() = default;
    /// What an update reads besides the member itself (its driver's state): prefetched ahead.
    void set_prefetch_hint(const void* p) noexcept { hint_ = p; }

   private:
    friend class tween_batch;
    static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    std::size_t index_ = none;
    typename std::multimap<time_point, member*>::iterator end_;
    bool has_end_ = false;
    const void* hint_ = nullptr;
  };

  tween_batch(asio::any_io_executor ex, duration period) : ex_(std::move(ex)), period_(period), timer_(ex_) {}

  const asio::any_io_executor& get_executor() const noexcept { return ex_; }
  duration period() const noexcept { return period_; }
  std::size_t size() const noexcept { return active_.size(); }
  bool contains(const member& m) const noexcept { return m.index_ != member::none; }

  /// Updates done (one per member per grid point) and wake-ups, since construction.
  std::uint64_t updates() const noexcept { return updates_; }
  std::uint64_t wakeups() const noexcept { return wakeups_; }

  /// Adds `m`, updated from the next grid point on; tween_end is called at `end` exactly
  /// (time_point::max(): never, its owner ends it).
  void add(member& m, time_point end) {
    if (contains(m)) remove(m);
    m.index_ = active_.size();
    active_.push_back(&m);
    if (end != time_point::max()) {
      m.end_ = ends_.emplace(end, &m);
      m.has_end_ = true;
    }
    if (active_.size() == 1) next_grid_ = grid_after(Clock::now());
    arm();
  }

  /// Removes `m` (no effect when it is not in the batch).
  void remove(member& m) noexcept {
    if (!contains(m)) return;
    const auto i = m.index_;
    active_[i] = active_.back();
    active_[i]->index_ = i;
    active_.pop_back();
    m.index_ = member::none;
    if (m.has_end_) {
      ends_.erase(m.end_);
      m.has_end_ = false;
    }
    // An emptied batch keeps its pending wait: it wakes once more, finds nothing, and stops.
  }

  /// The io_context is going away: drop everything, wait no more.
  void shut_down() noexcept {
    for (auto* m : active_) {
      m->index_ = member::none;
      m->has_end_ = false;
    }
    active_.clear();
    ends_.clear();
    try {
      timer_.cancel();
    } catch (...) {
    }
  }

 private:
  time_point grid_after(time_point t) const noexcept {
    const auto k = t.time_since_epoch() / period_;  // floor for t >= epoch
    return time_point(period_ * (k + 1));
  }

  time_point wake_time() const noexcept {
    auto t = next_grid_;
    if (!ends_.empty() && ends_.begin()->first < t) t = ends_.begin()->first;
    return t;
  }

  // Sets the timer for the next thing due. A wait already pending keeps going unless the new
  // time is earlier; then expires_at aborts it and its handler comes back here.
  void arm() {
    if (active_.empty()) return;
    const auto t = wake_time();
    if (waiting_ && timer_.expiry() <= t) return;
    timer_.expires_at(t);
    if (waiting_) return;
    waiting_ = true;
    timer_.async_wait([self = this->shared_from_this()](std::error_code) {
      self->waiting_ = false;
      self->serve();
    });
  }

  void serve() {
    if (active_.empty()) return;
    const auto now = Clock::now();
    ++wakeups_;
    // Ends first: a tween ending at a grid point sends its target, not one more sample.
    while (!ends_.empty() && ends_.begin()->first <= now) {
      auto* m = ends_.begin()->second;
      remove(*m);
      m->tween_end(now);
    }
    if (now >= next_grid_) {
      // Index, not iterators: a member may remove itself (a driver error), swapping in the last.
      for (std::size_t i = 0; i < active_.size();) {
        // Members are objects of their own on the heap: ask for the next ones' first cache lines
        // (vtable pointer, the tween's hot fields) while this one is updated.
        // Then, half-way there, for the drivers those members point to (their addresses are in
        // cache by then).
        if (i + prefetch_ahead < active_.size()) {
          const auto* next = reinterpret_cast<const char*>(active_[i + prefetch_ahead]);
          __builtin_prefetch(next);
          __builtin_prefetch(next + 64);
        }
        if (i + prefetch_ahead / 2 < active_.size())
          if (const void* h = active_[i + prefetch_ahead / 2]->hint_) __builtin_prefetch(h);
        auto* m = active_[i];
        m->tween_update(now);
        ++updates_;
        if (i < active_.size() && active_[i] == m) ++i;
      }
      next_grid_ = grid_after(now);  // a late wake skips the grid points it missed
    }
    arm();
  }

  static constexpr std::size_t prefetch_ahead = 8;

  asio::any_io_executor ex_;
  duration period_;
  asio::basic_waitable_timer<Clock> timer_;
  std::vector<member*> active_;
  std::multimap<time_point, member*> ends_;
  time_point next_grid_{};
  std::uint64_t updates_ = 0;
  std::uint64_t wakeups_ = 0;
  bool waiting_ = false;
};

// The batches of an execution context, one per (executor, period), as an Asio service: they live
// as long as the io_context (and are shut down with it).
template <class Clock>
class tween_service final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit tween_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  std::shared_ptr<tween_batch<Clock>> batch(const asio::any_io_executor& ex, typename Clock::duration period) {
    std::lock_guard lock(mutex_);  // sinks may be made on several threads, for several executors
    for (auto& b : batches_)
      if (b->period() == period && b->get_executor() == ex) return b;
    batches_.push_back(std::make_shared<tween_batch<Clock>>(ex, period));
    return batches_.back();
  }

 private:
  void shutdown() override {
    std::lock_guard lock(mutex_);
    for (auto& b : batches_) b->shut_down();
    batches_.clear();
  }

  std::mutex mutex_;
  std::vector<std::shared_ptr<tween_batch<Clock>>> batches_;
};

/// The batch for `ex` at `period`.
template <class Clock>
std::shared_ptr<tween_batch<Clock>> batch_for(const asio::any_io_executor& ex, typename Clock::duration period) {
  auto& ctx = asio::query(ex, asio::execution::context);
  return asio::use_service<tween_service<Clock>>(ctx).batch(ex, period);
}

}  // namespace tactus::sinks::detail
