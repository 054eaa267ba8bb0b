// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/asio_compat.hpp>
#include <tactus/task_group.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

// A graceful end for a program: on SIGINT or SIGTERM (or request()), stop the work, then run the
// registered cleanups (all notes off, servos to rest, LEDs off) in reverse order of registration,
// each under its own deadline, and give main() its exit status.
//
//   asio::io_context io;
//   tactus::shutdown sd{io.get_executor()};  // first thing in main: from here a signal ends it cleanly
//   auto held = sd.hold_signals();           // while opening ports (libjack): see hold_signals()
//   ...
//   sd.on_cleanup("all notes off", [&] { out.panic(); });
//   asio::co_spawn(io, sd.run(work()), tactus::rethrow);
//   io.run();                                // run() lets the held signals through first
//   return sd.status();                      // 0 after a graceful shutdown
//
// A second signal during the shutdown hurries it: the stop of the work and every cleanup not yet
// done get at most hurry_deadline() more each (default 100 ms), and the shutdown goes on. A
// third exits at once with status 128 + the signal, the remaining cleanups skipped (on_force()
// changes that).

namespace tactus {

/// What happened during a shutdown, step by step; see basic_shutdown::on_report.
struct shutdown_report {
  enum class kind {
    begun,              ///< the shutdown began: `name` says why (SIGINT, SIGTERM, request, the work ended)
    work_stopped,       ///< the work ended after being cancelled, `took` after
    work_abandoned,     ///< the work still ran at its deadline: left cancelled, not awaited
    cleanup_done,       ///< cleanup `name` completed in `took`
    cleanup_failed,     ///< cleanup `name` threw `error`
    cleanup_timed_out,  ///< cleanup `name` (a coroutine) was still running at its deadline: cancelled, not awaited
    cleanup_overran,    ///< cleanup `name` (a plain function, which cannot be cut off) took longer than its deadline
    hurried,            ///< a second signal: the deadlines still to come are shortened
  };
  kind what = kind::begun;
  std::string name;
  std::chrono::nanoseconds took{};      ///< how long the step took (stops and cleanups)
  std::chrono::nanoseconds deadline{};  ///< the deadline it had (stops and cleanups)
  std::exception_ptr error;             ///< cleanup_failed: what it threw

  /// Whether this step makes the shutdown less than graceful (status 1).
  bool is_problem() const noexcept {
    return what == kind::work_abandoned || what == kind::cleanup_failed || what == kind::cleanup_timed_out ||
           what == kind::cleanup_overran;
  }

  /// One line: "shutdown: cleanup 'servos to rest' cut off at its 500 ms deadline".
  std::string to_string() const {
    const auto ms = [](std::chrono::nanoseconds d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
    };
    switch (what) {
      case kind::begun: return "shutdown: " + name;
      case kind::work_stopped: return "shutdown: work stopped in " + ms(took);
      case kind::work_abandoned: return "shutdown: work still running at its " + ms(deadline) + " deadline: abandoned";
      case kind::cleanup_done: return "shutdown: cleanup '" + name + "' done in " + ms(took);
      case kind::cleanup_failed: return "shutdown: cleanup '" + name + "' failed: " + message(error);
      case kind::cleanup_timed_out:
        return "shutdown: cleanup '" + name + "' cut off at its " + ms(deadline) + " deadline";
      case kind::cleanup_overran:
        return "shutdown: cleanup '" + name + "' took " + ms(took) + ", past its " + ms(deadline) + " deadline";
      case kind::hurried: return "shutdown: " + name + " again: hurrying, at most " + ms(deadline) + " a step";
    }
    return "shutdown";
  }

  static std::string message(std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return x.what();
    } catch (...) {
      return "an exception that is not a std::exception";
    }
    return "no exception";
  }
};

/// A signal's name for messages: "SIGINT", "SIGTERM", else "signal N".
inline std::string signal_name(int sig) {
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  if (sig == SIGHUP) return "SIGHUP";
  if (sig == SIGQUIT) return "SIGQUIT";
  return "signal " + std::to_string(sig);
}

namespace detail {
// The signals held back by a signal_hold, and on which thread (a signal mask is per thread).
struct signal_hold_state {
  std::mutex mutex;
  sigset_t set;  // only the signals the hold blocked itself (not those blocked before)
  pthread_t thread{};
  bool active = false;

  void release_here() noexcept {
    std::lock_guard lock(mutex);
    if (active && pthread_equal(thread, pthread_self())) {
      pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
      active = false;
    }
  }
};
}  // namespace detail

/// Holds the shutdown's signals back on the thread that made it; see basic_shutdown::hold_signals.
class signal_hold {
 public:
  signal_hold(signal_hold&& o) noexcept : s_(std::move(o.s_)) {}
  signal_hold& operator=(signal_hold&&) = delete;
  signal_hold(const signal_hold&) = delete;
  ~signal_hold() { release(); }

  /// Lets the signals through (a pending one is delivered now, to the shutdown). Call it on the
  /// thread that holds them. Idempotent; the shutdown's run() does it too.
  void release() noexcept {
    if (s_) s_->release_here();
    s_.reset();
  }

 private:
  template <class>
  friend class basic_shutdown;
  explicit signal_hold(std::shared_ptr<detail::signal_hold_state> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::signal_hold_state> s_;
};

/// A graceful shutdown on `Clock` (std::chrono::steady_clock, or testing::manual_clock: every
/// deadline is then virtual).
///
/// Construct it first in main(): its asio::signal_set catches SIGINT and SIGTERM from then on
/// (a signal before run() is kept and starts the shutdown as soon as run() begins). run()
/// races the work against the signals and request(); whichever comes first, then:
///   1. the work is cancelled (terminal cancellation) and awaited for at most stop_deadline()
///      (default 500 ms); a work that is still running then is abandoned (reported, left
///      cancelled: its frames go with the io_context);
///   2. the cleanups run one at a time, last registered first, each under its own deadline: a
///      coroutine cleanup still running at its deadline is cancelled and left behind; a plain
///      function cannot be cut off and is reported when it overran; an exception is reported;
///      the next cleanup runs in every case;
///   3. run() returns the exit status: 0 when every step went well (a graceful shutdown), 1
///      when a step was a problem (shutdown_report::is_problem). If the work failed (threw, or a
///      task of the group did, without an error handler), run() rethrows that exception once the
///      cleanups have run.
/// A second signal hurries it (see the header comment); a third calls the force handler.
///
/// Lifetime: the io_context must outlive it (it owns a signal_set and a timer). Destroying it
/// while run() is suspended is not supported.
///
/// Thread-safe: request() from any thread; hold_signals() and signal_hold::release() on the
/// thread whose signals they hold; everything else on the executor. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock>
class basic_shutdown {
 public:
  using clock_type = Clock;
  using duration = typename Clock::duration;
  using time_point = typename Clock::time_point;
  using executor_type = asio::any_io_executor;
  using report_handler = std::function<void(const shutdown_report&)>;

  /// Exit statuses run() returns.
  static constexpr int graceful = 0;
  static constexpr int not_graceful = 1;

  /// Installs the signal_set for SIGINT and SIGTERM on `ex`'s execution context.
  explicit basic_shutdown(executor_type ex) : basic_shutdown(std::move(ex), {SIGINT, SIGTERM}) {}
  /// ... for the signals given (none: only request() starts the shutdown).
  ///
  /// Interrupted calls are restarted: Asio (1.22 at least) installs its handler without
  /// SA_RESTART, so a signal arriving while some thread of this process that has it unblocked
  /// sits in a blocking call (a read of libjack's socket while it opens a port) made that call
  /// fail with EINTR, and the library with it ("JACK error creating port"). Right after the
  /// signal_set adds a signal, its handler is installed again, the same, with SA_RESTART added
  /// (sigaction read, modify, write); the signal still reaches the shutdown as before.
  basic_shutdown(executor_type ex, std::initializer_list<int> signals) : s_(std::make_shared<state>(std::move(ex))) {
    for (int sig : signals) {
      s_->signals_.add(sig);
      restart_interrupted_calls(sig);
    }
    s_->handled_ = std::vector<int>(signals);
  }

  ~basic_shutdown() { s_->close(); }
  basic_shutdown(const basic_shutdown&) = delete;
  basic_shutdown& operator=(const basic_shutdown&) = delete;

  executor_type get_executor() const noexcept { return s_->ex_; }

  /// Registers a cleanup: `fn` is `void()` or `asio::awaitable<void>()`, called on the executor
  /// during the shutdown (after the work has stopped), in reverse order of registration, under
  /// `deadline` (measured on Clock; default 500 ms). `name` appears in the reports. Throws
  /// std::logic_error once the cleanups have begun.
  template <class F, class Rep = std::int64_t, class Period = std::milli>
  void on_cleanup(std::string name, F fn,
                  std::chrono::duration<Rep, Period> deadline = std::chrono::duration<Rep, Period>(500)) {
    using result = std::invoke_result_t<F&>;
    static_assert(std::is_void_v<result> || std::is_same_v<result, asio::awaitable<void>>,
                  "tactus::shutdown: a cleanup is void() or asio::awaitable<void>()");
    if (s_->cleaning_) throw std::logic_error("tactus::shutdown: on_cleanup() after the cleanups began");
    cleanup c;
    c.name = std::move(name);
    c.deadline = std::chrono::duration_cast<duration>(deadline);
    if constexpr (std::is_void_v<result>) c.sync = std::move(fn);
    else c.async = std::move(fn);
    s_->cleanups_.push_back(std::move(c));
  }

  /// Runs until every task of `work` has ended (or one failed, without an error handler), a
  /// signal comes, or request() is called; then shuts down (see the class comment) and returns
  /// the exit status. `work` is stopped and closed by then. Resumes on the executor. Cancelling
  /// run() itself starts the shutdown as request() does. Throws std::logic_error if called twice.
  asio::awaitable<int> run(task_group& work) { return run_group(s_, work); }

  /// As run(task_group&), for one coroutine: it runs as the only task of a group of run()'s own.
  asio::awaitable<int> run(asio::awaitable<void> work) { return run_one(s_, std::move(work)); }

  /// Starts the shutdown, as a signal does (nothing more once it has begun). Thread-safe: yes
  /// (posts to the executor).
  void request() {
    asio::post(s_->ex_, [s = s_] { s->trigger("requested", 0); });
  }

  /// Starts the shutdown `d` from now (on Clock), as request() does: a program's --seconds. Its
  /// report reads "time limit reached". A later call replaces the earlier limit; run()'s end
  /// cancels it, so it keeps no io_context running. Executor only.
  template <class Rep, class Period>
  void request_after(std::chrono::duration<Rep, Period> d) {
    s_->limit_.expires_after(std::chrono::duration_cast<duration>(d));
    s_->limit_.async_wait([s = s_](std::error_code ec) {
      if (!ec) s->trigger("time limit reached", 0);
    });
  }

  /// Holds this shutdown's signals back on the calling thread until the guard is released,
  /// destroyed, or run() begins on this thread. Threads started meanwhile (libjack's, RtMidi's)
  /// inherit the blocked mask and never take the signals. For the span where a signal would
  /// interrupt a system call of a library that does not retry it (libjack opening a port: "Cannot
  /// read socket ... Interrupted system call"), so that a Ctrl-C at any moment of the program's
  /// life, start-up included, ends it as cleanly as one later on. A signal sent meanwhile is
  /// delivered at the release and starts the shutdown.
  [[nodiscard]] signal_hold hold_signals() {
    auto h = std::make_shared<detail::signal_hold_state>();
    sigset_t wanted, before;
    sigemptyset(&wanted);
    for (int sig : s_->handled_) sigaddset(&wanted, sig);
    pthread_sigmask(SIG_BLOCK, &wanted, &before);
    sigemptyset(&h->set);
    for (int sig : s_->handled_)
      if (!sigismember(&before, sig)) sigaddset(&h->set, sig);
    h->thread = pthread_self();
    h->active = true;
    s_->hold_ = h;
    return signal_hold(std::move(h));
  }

  /// The deadline for the work to end once cancelled (default 500 ms).
  template <class Rep, class Period>
  void set_stop_deadline(std::chrono::duration<Rep, Period> d) {
    s_->stop_deadline_ = std::chrono::duration_cast<duration>(d);
  }
  duration stop_deadline() const noexcept { return s_->stop_deadline_; }
  /// What a second signal leaves each remaining step at most (default 100 ms).
  template <class Rep, class Period>
  void set_hurry_deadline(std::chrono::duration<Rep, Period> d) {
    s_->hurry_ = std::chrono::duration_cast<duration>(d);
  }
  duration hurry_deadline() const noexcept { return s_->hurry_; }

  /// Where the steps are reported, as they happen, on the executor. Default: the problems (and a
  /// hurry) as one line each on stderr, nothing when all goes well.
  void on_report(report_handler h) { s_->on_report_ = std::move(h); }
  /// What a third signal does. Default: std::_Exit(128 + sig) (the remaining cleanups skipped).
  void on_force(std::function<void(int sig)> f) { s_->on_force_ = std::move(f); }

  /// Whether the shutdown has begun (a signal, request(), or the work ended). Executor only.
  bool requested() const noexcept { return s_->triggered_; }
  /// The signal that began the shutdown, 0 if none did.
  int signal_number() const noexcept { return s_->signal_; }
  /// Every step reported so far.
  const std::vector<shutdown_report>& reports() const noexcept { return s_->reports_; }
  /// What run() returned (1 if it threw the work's exception); -1 before run() ended.
  int status() const noexcept { return s_->status_; }

 private:
  // See the constructor. Only a handler that is installed (not SIG_DFL or SIG_IGN) is touched.
  static void restart_interrupted_calls(int sig) noexcept {
    struct sigaction now {};
    if (::sigaction(sig, nullptr, &now) != 0) return;
    if ((now.sa_flags & SA_SIGINFO) == 0 && (now.sa_handler == SIG_DFL || now.sa_handler == SIG_IGN)) return;
    if (now.sa_flags & SA_RESTART) return;
    now.sa_flags |= SA_RESTART;
    ::sigaction(sig, &now, nullptr);
  }

  static std::chrono::nanoseconds ns(duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d); }

  struct cleanup {
    std::string name;
    duration deadline{};
    std::function<void()> sync;
    std::function<asio::awaitable<void>()> async;
  };

  // A coroutine cleanup in progress: its own cancellation signal, and an event for its end.
  struct cleanup_run {
    explicit cleanup_run(const executor_type& ex) : done(ex, 1) {}
    asio::cancellation_signal signal;
    detail::channel<void(std::error_code, int)> done;
    std::exception_ptr error;
  };

  struct state : std::enable_shared_from_this<state> {
    explicit state(executor_type ex)
        : ex_(std::move(ex)), signals_(ex_), timer_(ex_), limit_(ex_), trigger_(ex_, 1), hurry_event_(ex_, 1) {}

    void trigger(const std::string& why, int sig) {
      if (triggered_ || closed_) return;
      triggered_ = true;
      signal_ = sig;
      why_ = why;
      trigger_.try_send(std::error_code{}, sig);
    }

    void listen() {
      signals_.async_wait([s = this->shared_from_this()](std::error_code ec, int sig) {
        if (ec || !s->listening_) return;
        s->on_signal(sig);
        s->listen();
      });
    }

    void on_signal(int sig) {
      if (!triggered_) return trigger(signal_name(sig), sig);
      if (!hurried_) {
        hurried_ = true;
        report({shutdown_report::kind::hurried, signal_name(sig), {}, ns(hurry_), nullptr});
        hurry_event_.try_send(std::error_code{}, sig);
        return;
      }
      if (on_force_) on_force_(sig);
      else std::_Exit(128 + sig);
    }

    void report(shutdown_report r) {
      reports_.push_back(r);
      try {
        if (on_report_) on_report_(r);
        else if (r.is_problem() || r.what == shutdown_report::kind::hurried)
          std::cerr << "tactus: " << r.to_string() << '\n';
      } catch (...) {
        std::cerr << "tactus: the shutdown's report handler threw\n";
      }
    }

    duration capped(duration d) const { return hurried_ ? std::min(d, hurry_) : d; }

    void close() noexcept {
      closed_ = true;
      listening_ = false;
      std::error_code ignored;
      signals_.cancel(ignored);
      timer_.cancel();
      limit_.cancel();
    }

    executor_type ex_;
    asio::signal_set signals_;
    asio::basic_waitable_timer<Clock> timer_;  // the deadline of the step in progress
    asio::basic_waitable_timer<Clock> limit_;  // request_after()
    // Events as one-slot channels (the int carries the signal number; see the metronome's).
    detail::channel<void(std::error_code, int)> trigger_;      // the shutdown begins
    detail::channel<void(std::error_code, int)> hurry_event_;  // a second signal
    std::vector<int> handled_;
    std::vector<cleanup> cleanups_;
    std::vector<shutdown_report> reports_;
    report_handler on_report_;
    std::function<void(int)> on_force_;
    std::shared_ptr<detail::signal_hold_state> hold_;
    duration stop_deadline_ = std::chrono::duration_cast<duration>(std::chrono::milliseconds(500));
    duration hurry_ = std::chrono::duration_cast<duration>(std::chrono::milliseconds(100));
    std::string why_;
    int signal_ = 0;
    int status_ = -1;
    bool running_ = false;
    bool listening_ = false;
    bool triggered_ = false;
    bool hurried_ = false;
    bool cleaning_ = false;
    bool closed_ = false;
  };

  // Waits for `make()` (an awaitable that never throws) until `deadline`, which a second signal
  // brings forward; nullopt at the deadline.
  template <class Make>
  static auto until(std::shared_ptr<state> s, Make make, time_point deadline)
      -> asio::awaitable<std::optional<typename decltype(make())::value_type>> {
    using namespace detail::awaitable_operators;
    for (;;) {
      if (Clock::now() >= deadline) co_return std::nullopt;
      s->timer_.expires_at(deadline);
      auto r = co_await (make() || s->timer_.async_wait(detail::as_tuple(asio::use_awaitable)) ||
                         s->hurry_event_.async_receive(detail::as_tuple(asio::use_awaitable)));
      if (r.index() == 0) co_return std::move(std::get<0>(r));
      if (r.index() == 2) deadline = std::min(deadline, Clock::now() + s->hurry_);
    }
  }

  static asio::awaitable<int> run_one(std::shared_ptr<state> s, asio::awaitable<void> work) {
    task_group group{s->ex_};
    group.spawn(std::move(work));
    co_return co_await run_group(s, group);
  }

  static asio::awaitable<int> run_group(std::shared_ptr<state> s, task_group& work) {
    if (s->running_) throw std::logic_error("tactus::shutdown: run() called twice");
    s->running_ = true;
    if (s->hold_) s->hold_->release_here();
    s->listening_ = true;
    s->listen();
    std::exception_ptr failure;
    bool problem = false;

    // 1. The work, until it ends or the shutdown is asked for.
    if (!s->triggered_) {
      using namespace detail::awaitable_operators;
      auto r = co_await (work.async_wait(detail::as_tuple(asio::use_awaitable)) ||
                         s->trigger_.async_receive(detail::as_tuple(asio::use_awaitable)));
      if (r.index() == 0) {
        auto [ec, e] = std::get<0>(r);
        if (ec) s->trigger("cancelled", 0);  // run() itself was cancelled: shut down as asked
        else s->trigger(e ? "the work failed" : "the work ended", 0);
        failure = e;
      }
    }
    // Cancelling run() starts the shutdown; the steps below must still be able to wait.
    co_await asio::this_coro::reset_cancellation_state();
    s->report({shutdown_report::kind::begun, s->why_, {}, {}, nullptr});

    // 2. Stop the work.
    const bool was_running = !work.empty();
    const auto stop_deadline = s->capped(s->stop_deadline_);
    const auto stop_start = Clock::now();
    work.cancel();
    auto stopped = was_running ? co_await until(
                                     s, [&] { return work.async_stop(detail::as_tuple(asio::use_awaitable)); },
                                     stop_start + stop_deadline)
                               : co_await work.async_stop(detail::as_tuple(asio::use_awaitable));
    if (stopped) {
      auto [ec, e] = *stopped;
      if (!failure) failure = e;
      if (was_running)
        s->report({shutdown_report::kind::work_stopped, {}, ns(Clock::now() - stop_start), ns(stop_deadline), nullptr});
    } else {
      problem = true;
      s->report({shutdown_report::kind::work_abandoned, {}, ns(Clock::now() - stop_start), ns(stop_deadline), nullptr});
    }

    // 3. The cleanups, last registered first.
    s->cleaning_ = true;
    for (auto it = s->cleanups_.rbegin(); it != s->cleanups_.rend(); ++it) {
      const auto deadline = s->capped(it->deadline);
      const auto start = Clock::now();
      shutdown_report r{shutdown_report::kind::cleanup_done, it->name, {}, ns(deadline), nullptr};
      if (it->sync) {
        try {
          it->sync();
        } catch (...) {
          r.what = shutdown_report::kind::cleanup_failed;
          r.error = std::current_exception();
        }
        if (!r.error && Clock::now() - start > deadline) r.what = shutdown_report::kind::cleanup_overran;
      } else {
        auto run = std::make_shared<cleanup_run>(s->ex_);
        try {
          asio::co_spawn(s->ex_, it->async(),
                         asio::bind_cancellation_slot(run->signal.slot(), [run](std::exception_ptr e) {
                           run->error = e;
                           run->done.try_send(std::error_code{}, 0);
                         }));
          auto ended = co_await until(
              s, [&] { return run->done.async_receive(detail::as_tuple(asio::use_awaitable)); }, start + deadline);
          if (!ended) {
            run->signal.emit(asio::cancellation_type::terminal);
            // Its first reaction to the cancellation (a catch block) runs before the next step.
            co_await asio::post(s->ex_, asio::use_awaitable);
            r.what = shutdown_report::kind::cleanup_timed_out;
          } else if (run->error) {
            r.what = shutdown_report::kind::cleanup_failed;
            r.error = run->error;
          }
        } catch (...) {  // the cleanup's coroutine function itself threw
          r.what = shutdown_report::kind::cleanup_failed;
          r.error = std::current_exception();
        }
      }
      r.took = ns(Clock::now() - start);
      problem = problem || r.is_problem();
      s->report(std::move(r));
    }

    // 4. Done: signals from now on are kept by the signal_set, unheard (main is returning).
    s->listening_ = false;
    std::error_code ignored;
    s->signals_.cancel(ignored);
    s->limit_.cancel();
    s->status_ = problem || failure ? not_graceful : graceful;
    if (failure) std::rethrow_exception(failure);
    co_return s->status_;
  }

  std::shared_ptr<state> s_;
};

using shutdown = basic_shutdown<>;

}  // namespace tactus
