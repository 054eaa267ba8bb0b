// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/is_cancellation.hpp>
#include <tactus/detail/waiter_list.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

// A group of coroutines that end together: asyncio's TaskGroup, or a daemon's `self._tasks`.
// Spawn tasks into it; stop() cancels every one and waits until all have ended; a task's
// exception is never swallowed.
//
//   tactus::task_group tasks{io.get_executor()};
//   tasks.spawn(poll_state());
//   tasks.spawn(report());
//   ...
//   co_await tasks.stop();   // every task cancelled, and ended; a task's exception is rethrown here

namespace tactus {

/// Coroutines spawned on one executor, cancelled and awaited together.
///
/// Errors: an exception a task ends with is recorded in errors(). With an error handler
/// (on_error), it is passed there, on the group's executor, as soon as the task ends, and never
/// thrown. Without one, the next wait() or stop() throws it (the earliest not yet reported; every
/// error recorded until then counts as reported). A task that ends by the group's own
/// cancellation with operation_aborted (what a cancelled co_await throws) has not failed; the same
/// exception from a task the group did not cancel is an error. A group destroyed with errors
/// never reported prints them to stderr, as does a task that fails after the group is gone.
///
/// Lifetime: the group may be destroyed while tasks run: it cancels them (terminal), and they end
/// without touching it (their shared state outlives it), or are destroyed with the io_context.
///
/// Thread-safe: no; every member runs on the group's executor (the one its tasks run on).
/// Realtime-safe: no (spawning allocates).
class task_group {
 public:
  using executor_type = asio::any_io_executor;
  using error_handler = std::function<void(std::exception_ptr)>;

  /// A group whose tasks run on `ex`.
  explicit task_group(executor_type ex) : s_(std::make_shared<state>(std::move(ex))) {}

  /// Cancels every running task (terminal cancellation) without waiting for them; unreported
  /// errors go to stderr.
  ~task_group() { s_->abandon(); }

  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  executor_type get_executor() const noexcept { return s_->ex_; }

  /// Starts `task` on the group's executor (called there, Asio 1.22 may begin running it inside
  /// this call, up to its first suspension; later versions post it). Throws
  /// std::logic_error once the group is closed (stop() or cancel() was called): a task spawned
  /// while the others are being cancelled would escape the stop.
  void spawn(asio::awaitable<void> task) {
    auto s = s_;
    if (s->closed_) throw std::logic_error("tactus::task_group: spawn() after stop() or cancel(): the group is closed");
    auto node = std::make_shared<task_node>();
    // Lives in the completion handler only: the io_context's destruction destroys the handler
    // with the task's frame, and the group then knows not to emit into what is gone.
    auto life = std::make_shared<char>();
    node->life = life;
    s->running_.push_back(node);
    ++s->spawned_;
    asio::co_spawn(s->ex_, std::move(task),
                   asio::bind_cancellation_slot(node->signal.slot(), [s, node, life](std::exception_ptr e) {
                     (void)life;
                     s->finished(node, e);
                   }));
  }

  /// Where task errors go (see the class comment): `h(e)` runs on the executor, once per failed
  /// task, and the error is then never thrown by wait() or stop(). For asyncio.TaskGroup's
  /// fail-fast, call cancel() from the handler.
  void on_error(error_handler h) { s_->on_error_ = std::move(h); }

  /// Closes the group and cancels every running task (terminal cancellation), without waiting.
  /// Idempotent.
  void cancel() { s_->cancel_all(); }

  /// Waits until no task is running, or until a task fails while no error handler is set.
  /// Signature void(std::error_code, std::exception_ptr): the exception_ptr is null when every
  /// task ended cleanly, else the earliest unreported task error (the other tasks then go on
  /// running). The handler runs on its associated executor (default: the group's), never inside
  /// this call. Cancelling the wait (any cancellation type) completes it with operation_aborted
  /// and leaves the tasks alone. Does not close the group.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::exception_ptr)>(
        [s = s_](auto handler) {
          s->waiters_.add(std::move(handler), s->ex_);
          s->notify();
        },
        token);
  }

  /// cancel(), then waits until every task has ended. Signature void(std::error_code,
  /// std::exception_ptr): the earliest unreported task error, or null. A task that ignores
  /// cancellation delays it (bound the wait with with_timeout or a timer if you must). Cancelling
  /// the wait completes it with operation_aborted; the tasks stay cancelled. Do not await the
  /// stop of a group from one of its own tasks: it would wait for itself (call cancel()).
  template <class CompletionToken>
  auto async_stop(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::exception_ptr)>(
        [s = s_](auto handler) {
          s->cancel_all();
          s->stoppers_.add(std::move(handler), s->ex_);
          s->notify();
        },
        token);
  }

  /// Coroutine form of async_wait: returns when no task runs; rethrows a task's error (see the
  /// class comment). Resumes on the awaiting coroutine's executor.
  asio::awaitable<void> wait() {
    auto e = co_await async_wait(asio::use_awaitable);
    if (e) std::rethrow_exception(e);
  }

  /// Coroutine form of async_stop: cancels every task, returns once all have ended; rethrows a
  /// task's error. Throws operation_aborted if this coroutine is itself cancelled meanwhile.
  asio::awaitable<void> stop() {
    auto e = co_await async_stop(asio::use_awaitable);
    if (e) std::rethrow_exception(e);
  }

  /// Tasks spawned and not yet ended.
  std::size_t size() const noexcept { return s_->running_.size(); }
  bool empty() const noexcept { return s_->running_.empty(); }
  /// Whether stop() or cancel() was called: spawn() is refused.
  bool closed() const noexcept { return s_->closed_; }
  /// Every task error recorded so far, in the order the tasks ended (reported or not).
  const std::vector<std::exception_ptr>& errors() const noexcept { return s_->errors_; }
  /// Tasks spawned over the group's life.
  std::uint64_t spawned() const noexcept { return s_->spawned_; }

 private:
  struct task_node {
    asio::cancellation_signal signal;  // this task's own: the group cancels each separately
    bool cancelled = false;            // by the group: its operation_aborted is not an error
    std::weak_ptr<char> life;          // expired: the task's frame was destroyed unfinished
  };

  struct state {
    explicit state(executor_type ex) : ex_(std::move(ex)) {}

    void finished(const std::shared_ptr<task_node>& node, std::exception_ptr e) {
      running_.erase(std::remove(running_.begin(), running_.end(), node), running_.end());
      if (e && !(node->cancelled && is_abort(e))) {
        errors_.push_back(e);
        if (!owned_) {
          print(e, "a task of a destroyed tactus::task_group failed");
          reported_ = errors_.size();
        } else if (on_error_) {
          reported_ = errors_.size();
          try {
            on_error_(e);
          } catch (...) {
            print(std::current_exception(), "tactus::task_group: the error handler threw");
          }
        }
      }
      notify();
    }

    // Completes what can be completed: waits on an unreported error or on an empty group, stops
    // on an empty group.
    void notify() {
      if (reported_ < errors_.size() && !waiters_.empty()) {
        const auto e = errors_[reported_];
        reported_ = errors_.size();
        waiters_.complete_all({}, e);
      }
      if (!running_.empty()) return;
      std::exception_ptr e;
      if (reported_ < errors_.size() && !(waiters_.empty() && stoppers_.empty())) {
        e = errors_[reported_];
        reported_ = errors_.size();
      }
      waiters_.complete_all({}, e);
      stoppers_.complete_all({}, e);
    }

    void cancel_all() {
      closed_ = true;
      // A copy: emitting may (through a handler of the task's) end a task and erase its node.
      const auto nodes = running_;
      for (auto& n : nodes) {
        if (n->cancelled || n->life.expired()) continue;
        n->cancelled = true;
        n->signal.emit(asio::cancellation_type::terminal);
      }
    }

    void abandon() noexcept {
      owned_ = false;
      on_error_ = nullptr;
      try {
        cancel_all();
      } catch (...) {
      }
      waiters_.complete_all(asio::error::operation_aborted, nullptr);
      stoppers_.complete_all(asio::error::operation_aborted, nullptr);
      for (; reported_ < errors_.size(); ++reported_)
        print(errors_[reported_], "tactus::task_group destroyed with an unreported task error");
    }

    // operation_aborted, or channel_cancelled from an Asio channel's receive.
    static bool is_abort(std::exception_ptr e) noexcept { return detail::is_cancellation(e); }

    static void print(std::exception_ptr e, const char* what) noexcept {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::cerr << what << ": " << x.what() << '\n';
      } catch (...) {
        std::cerr << what << " (not a std::exception)\n";
      }
    }

    executor_type ex_;
    std::vector<std::shared_ptr<task_node>> running_;
    std::vector<std::exception_ptr> errors_;
    std::size_t reported_ = 0;  // errors_[0, reported_) were thrown, handled or printed
    error_handler on_error_;
    detail::waiter_list<std::exception_ptr> waiters_;   // async_wait
    detail::waiter_list<std::exception_ptr> stoppers_;  // async_stop
    std::uint64_t spawned_ = 0;
    bool closed_ = false;
    bool owned_ = true;  // false once the task_group object is gone
  };

  std::shared_ptr<state> s_;
};

}  // namespace tactus
