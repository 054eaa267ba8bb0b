// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>
#include <tactus/detail/handoff_queue.hpp>
#include <tactus/detail/pending_op.hpp>
#include <tactus/detail/wakeup_fd.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

// A bounded channel from threads of your own (a microphone's capture loop, a sensor driver, a
// network library's callback) to a coroutine on an executor. The producer side never blocks:
// when the consumer falls behind, the oldest item (or the new one) is dropped and counted. The
// consumer awaits; it is woken once per burst, not once per item, through an eventfd (no lock,
// no allocation on the producer's thread). It replaces the queue.Queue whose blocking get() on
// the loop starves everything else until someone adds sleep(0):
//
//   tactus::thread_channel<frame> frames{io.get_executor(), 64};   // drop_oldest by default
//   std::thread mic([&] {
//     for (int i = 0; i < 50; ++i) {
//       frames.try_send(capture(i));                                // never blocks
//     }
//     frames.close();                                               // the end of the stream
//   });
//   ...
//   while (auto f = co_await frames.next()) {                     // nullopt: closed, all received
//     ++got;                                                      // send f->samples on, ...
//   }
//
// Invariant: sent() == received() + dropped() + what is still queued.

namespace tactus {

/// What a full thread_channel drops.
enum class overflow_policy {
  drop_oldest,  ///< the oldest queued item makes room for the new one: the consumer sees the latest
  drop_newest,  ///< the new item is refused (try_send returns false): the consumer sees the first
};

/// The errors of a thread_channel (besides asio::error::operation_aborted and in_progress).
enum class thread_channel_errc {
  closed = 1,  ///< close() was called and every item sent before it has been received
};

/// The category of thread_channel_errc ("tactus.thread_channel").
inline const std::error_category& thread_channel_category() noexcept {
  struct category final : std::error_category {
    const char* name() const noexcept override { return "tactus.thread_channel"; }
    std::string message(int e) const override {
      return e == int(thread_channel_errc::closed) ? "the channel is closed" : "unknown thread_channel error";
    }
  };
  static const category c;
  return c;
}

inline std::error_code make_error_code(thread_channel_errc e) noexcept { return {int(e), thread_channel_category()}; }

}  // namespace tactus

template <>
struct std::is_error_code_enum<tactus::thread_channel_errc> : std::true_type {};

namespace tactus {

/// A bounded channel of `T` from any threads to one consumer on an executor.
///
/// `T` must be nothrow-move-constructible (a push cannot be undone halfway) and
/// default-constructible (an error completes with `T{}`). Producers hand items over with
/// try_send() from any thread; the consumer receives them in order with async_receive() (or
/// `co_await receive()`) on the channel's executor.
///
/// Thread-safe: try_send, close and the counters from any thread, by any number of producers;
/// async_receive, receive, next and the destructor on the executor (a strand if the io_context
/// runs on several threads; one receive at a time).
/// Realtime-safe: try_send takes no lock and makes no system call other than one eventfd write
/// per burst, and allocates nothing when moving `T` allocates nothing; with drop_oldest, an item
/// it drops is destroyed on the producer's thread.
///
/// A pending async_receive is outstanding work, as a socket read is: io_context::run() does not
/// return while a consumer waits. A channel nobody receives from keeps no work.
/// Destroy the channel on its executor once no producer uses it any more (join them first):
/// the destructor closes it (as close()) and ends a pending receive with operation_aborted.
template <class T>
class thread_channel {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "tactus::thread_channel<T>: T must be nothrow-move-constructible (a push cannot be undone halfway)");
  static_assert(std::is_default_constructible_v<T>,
                "tactus::thread_channel<T>: T must be default-constructible (an error completes with T{})");

 public:
  using executor_type = asio::any_io_executor;
  using value_type = T;

  /// A channel of `capacity` items (at least 1: std::invalid_argument otherwise) on `ex`, whose
  /// consumer runs there. Throws std::system_error when no eventfd can be made.
  thread_channel(executor_type ex, std::size_t capacity, overflow_policy policy = overflow_policy::drop_oldest)
      : s_(std::make_shared<state>(std::move(ex), capacity, policy)) {}

  /// Closes the channel (see close()) and ends a pending receive with operation_aborted.
  /// On the executor.
  ~thread_channel() { s_->shut_down(); }

  thread_channel(const thread_channel&) = delete;
  thread_channel& operator=(const thread_channel&) = delete;

  executor_type get_executor() const noexcept { return s_->ex_; }
  std::size_t capacity() const noexcept { return s_->queue_.capacity(); }
  overflow_policy policy() const noexcept { return s_->policy_; }

  /// Hands `v` to the consumer. Never blocks. When the channel is full, drop_oldest drops the
  /// oldest queued item to make room (and returns true), drop_newest drops `v` (and returns
  /// false); either way dropped() counts it. (With several producers, drop_oldest drops `v`
  /// instead, and returns false, when the oldest item is at that instant still being written by
  /// its own producer: waiting for it would block.) After close(), drops `v` and returns false.
  /// Returns true when `v` was queued. Any thread; see the class comment for realtime use.
  bool try_send(T v) noexcept {
    state& s = *s_;
    bool queued = false;
    const bool open = s.queue_.produce([&]() noexcept {
      const auto r = s.queue_.push([&](std::optional<T>& slot) noexcept { slot.emplace(std::move(v)); },
                                   [](std::optional<T>& slot) noexcept { slot.reset(); });
      queued = r.queued;
      // Inside the gate: the eventfd is not closed under us (see state::shut_down()).
      if (r.wake) s.wake_.signal();
    });
    // relaxed: a count; sent() and dropped() read it, nothing else rides on it.
    if (!open) s.refused_.fetch_add(1, std::memory_order_relaxed);
    return queued;
  }

  /// Waits for the next item: signature void(std::error_code, T). Items come in the order they
  /// were queued (items of one producer in its order; producers racing each other in the order
  /// their pushes took effect). The completion handler runs on its associated executor (for
  /// use_awaitable: the coroutine resumes on its own executor; by default, the channel's),
  /// never inside this call. After close(), the items sent before it are still received; then
  /// thread_channel_errc::closed. Cancellation (terminal, partial or total, through the
  /// handler's cancellation slot) completes it with asio::error::operation_aborted and loses no
  /// item. One receive at a time: a second one completes with asio::error::in_progress. On the
  /// executor. While pending, it is outstanding work (see the class comment).
  template <class CompletionToken>
  auto async_receive(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, T)>(
        [](auto handler, std::shared_ptr<state> s) { s->start_receive(std::move(handler)); }, token, s_);
  }

  /// `co_await ch.receive()`: async_receive with use_awaitable. Throws std::system_error with
  /// thread_channel_errc::closed after close() once every item was received, and with
  /// operation_aborted when cancelled.
  asio::awaitable<T> receive() { return async_receive(asio::use_awaitable); }

  /// `while (auto v = co_await ch.next())`: the next item, or std::nullopt once the channel is
  /// closed and every item received. Throws std::system_error (operation_aborted) when cancelled.
  asio::awaitable<std::optional<T>> next() {
    auto [ec, v] = co_await async_receive(detail::as_tuple(asio::use_awaitable));
    if (ec == thread_channel_errc::closed) co_return std::nullopt;
    if (ec) throw std::system_error(ec, "tactus::thread_channel: receive");
    co_return std::optional<T>(std::move(v));
  }

  /// Closes the channel: try_send refuses (and counts) every item from now on; the items queued
  /// before are still received, then a receive completes with thread_channel_errc::closed. Waits
  /// until no producer is inside try_send (microseconds), so when it returns nothing more can be
  /// queued. Any thread (a producer may close its own stream); idempotent.
  void close() noexcept { s_->close(); }
  /// True once close() was called.
  bool is_closed() const noexcept { return s_->queue_.is_shut(); }

  /// try_send calls so far (queued or not). Any thread.
  std::uint64_t sent() const noexcept {
    // relaxed: see try_send; exact once no producer runs.
    return s_->queue_.arrived() + s_->refused_.load(std::memory_order_relaxed);
  }
  /// Items dropped so far: by the overflow policy, and refused after close(). Any thread.
  std::uint64_t dropped() const noexcept {
    return s_->queue_.overflowed() + s_->refused_.load(std::memory_order_relaxed);  // relaxed: see sent()
  }
  /// Items delivered to a receive so far. Any thread.
  std::uint64_t received() const noexcept {
    return s_->received_.load(std::memory_order_relaxed);  // relaxed: a count, written on the executor
  }
  /// Items queued now: exact when no thread sends or receives meanwhile, else an estimate.
  std::size_t size() const noexcept { return s_->queue_.size(); }

 private:
  // Everything posted handlers and the eventfd wait touch; they hold it weakly, and a delivery
  // in progress strongly, so the channel may be destroyed from a handler it completes.
  struct state : std::enable_shared_from_this<state> {
    state(executor_type ex, std::size_t capacity, overflow_policy p)
        : ex_(std::move(ex)),
          policy_(p),
          queue_(capacity,
                 p == overflow_policy::drop_oldest ? detail::when_full::drop_oldest : detail::when_full::drop_newest),
          wake_(ex_) {}

    // At most this many completions in a row from one delivery; then the rest goes through a post,
    // so that a flood of items never keeps the executor's other handlers (timers) waiting long.
    static constexpr int batch = 16;

    void close() noexcept {
      queue_.shut();  // afterwards no producer pushes any more (and none is inside try_send)
      // acq_rel: release publishes the end of the stream after every push (shut() acquired them);
      // the exchange makes one closer wake the consumer.
      if (!closed_.exchange(true, std::memory_order_acq_rel)) wake_.signal();
    }

    void shut_down() noexcept {
      close();
      destroyed_ = true;
      if (waiter_)
        std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, T{}, detail::completion::post);
      wake_.close();  // ends a pending wait: no work is left behind
    }

    template <class Handler>
    void start_receive(Handler&& handler) {
      auto op = detail::make_pending_op<T>(std::forward<Handler>(handler), ex_);
      if (waiter_ || destroyed_) {  // one consumer: a second receive is a usage error
        op->complete(destroyed_ ? asio::error::operation_aborted : asio::error::in_progress, T{},
                     detail::completion::post);
        return;
      }
      op->on_cancellation([w = this->weak_from_this()] {
        if (auto self = w.lock()) self->cancel_receive();
      });
      waiter_ = std::move(op);
      if (delivering_) return;  // from a handler that deliver() completed: its loop serves this one
      // acquire: see close().
      if (queue_.ready() || closed_.load(std::memory_order_acquire) || queue_.arm()) post_deliver();
      else wait_for_wake();
    }

    void cancel_receive() {
      if (!waiter_) return;
      std::exchange(waiter_, nullptr)->complete(asio::error::operation_aborted, T{}, detail::completion::post);
      if (waking_) wake_.cancel();  // nobody waits any more: keep no work
    }

    void post_deliver() {
      if (deliver_posted_) return;
      deliver_posted_ = true;
      asio::post(ex_, [w = this->weak_from_this()] {
        if (auto self = w.lock()) {
          self->deliver_posted_ = false;
          self->deliver();
        }
      });
    }

    void wait_for_wake() {
      if (waking_ || destroyed_) return;
      waking_ = true;
      wake_.async_wait([w = this->weak_from_this()](std::error_code) {
        auto self = w.lock();
        if (!self) return;
        self->waking_ = false;
        if (!self->destroyed_ && self->waiter_) self->deliver();  // after a cancel too: one may wait again
      });
    }

    // On the executor: completes the waiting receive with the next item (or closed), and the
    // next receives its handler starts, until the queue is empty; then waits for a wake-up.
    void deliver() {
      const auto self = this->shared_from_this();  // a handler we run may destroy the channel
      delivering_ = true;
      int served = 0;
      while (waiter_ && !destroyed_) {
        if (served == batch) {  // let the executor's other handlers run; carry on after them
          post_deliver();
          break;
        }
        // acquire: see close(). Read before the pop, so that "closed" comes after every item.
        const bool closed = closed_.load(std::memory_order_acquire);
        std::optional<T> v;
        if (queue_.pop([&](std::optional<T>& slot) noexcept {
              v.emplace(std::move(*slot));
              slot.reset();
            })) {
          // relaxed: a count (see received()); only this thread writes it.
          received_.store(received_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
          ++served;
          // dispatch: we are on the executor; a waiting coroutine resumes at once, and its next
          // receive is served by this loop.
          std::exchange(waiter_, nullptr)->complete({}, std::move(*v), detail::completion::dispatch);
          continue;
        }
        if (closed) {
          ++served;
          std::exchange(waiter_, nullptr)->complete(thread_channel_errc::closed, T{}, detail::completion::dispatch);
          continue;
        }
        if (queue_.arm()) continue;  // an item slipped in before the flag was cleared
        wait_for_wake();
        break;
      }
      delivering_ = false;
    }

    executor_type ex_;
    overflow_policy policy_;
    detail::handoff_queue<std::optional<T>> queue_;
    detail::wakeup_fd wake_;
    std::atomic<std::uint64_t> refused_{0};   // try_send after close()
    std::atomic<bool> closed_{false};         // close() is done: nothing more will be queued
    std::atomic<std::uint64_t> received_{0};  // written on the executor only
    // The executor's.
    std::unique_ptr<detail::pending_op<T>> waiter_;
    bool waking_ = false;          // an eventfd wait is pending
    bool deliver_posted_ = false;  // a deliver() is posted
    bool delivering_ = false;      // deliver() is on the stack
    bool destroyed_ = false;       // the channel is gone
  };

  std::shared_ptr<state> s_;
};

}  // namespace tactus
