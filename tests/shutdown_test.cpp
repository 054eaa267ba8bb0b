// SPDX-License-Identifier: BSL-1.0
// shutdown: the work stopped, then the cleanups in reverse order of registration, each under its
// own deadline (a hanging one cut off exactly there and reported, the next one still run), the
// exit status; exceptions from the work and from cleanups; work that will not stop; SIGINT and
// SIGTERM raised in-process (::raise), before run() too, and held back while "ports open"; a
// second signal hurrying the rest and a third forcing the exit; run() itself cancelled. All in
// virtual time except the last test, which checks on the steady clock what a user's main() sees.
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/task_group.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/spawned.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using clock_type = tactus::testing::manual_clock;
using virtual_shutdown = tactus::basic_shutdown<clock_type>;  // (::shutdown is POSIX's socket call)
using kind = tactus::shutdown_report::kind;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using tactus::testing::advance;
using tactus_test::spawn;

namespace {

clock_type::time_point at(clock_type::duration d) { return clock_type::time_point(d); }
long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now().time_since_epoch()).count();
}

struct journal {
  std::vector<std::string> lines;
  void add(const std::string& what) { lines.push_back(what + " at " + std::to_string(now_ms())); }
};

asio::awaitable<void> sleep_for(clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

// Waits `d`; notes its end, or its cancellation (then rethrows).
asio::awaitable<void> sleeper(std::string name, clock_type::duration d, journal& j) {
  try {
    co_await sleep_for(d);
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) j.add(name + " cancelled");
    throw;
  }
  j.add(name + " ended");
}

// Cannot be cancelled: its wait has no slot.
asio::awaitable<void> stubborn(std::string name, clock_type::duration d, journal& j) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  j.add(name + " ended");
}

std::vector<kind> kinds(const virtual_shutdown& sd) {
  std::vector<kind> out;
  for (auto& r : sd.reports()) out.push_back(r.what);
  return out;
}

// Runs what is ready after a signal was raised in this thread, without moving the clock.
void deliver(asio::io_context& io) { tactus_test::settle(io); }

}  // namespace

TEST_CASE("shutdown: request() stops the work, then runs the cleanups in reverse order of registration") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  tactus::task_group tasks{io.get_executor()};
  tasks.spawn(sleeper("poll", 1h, j));
  tasks.spawn(sleeper("report", 1h, j));
  sd.on_cleanup("LEDs off", [&] { j.add("LEDs off"); });
  sd.on_cleanup("servos to rest", [&]() -> asio::awaitable<void> {
    co_await sleep_for(50ms);
    j.add("servos at rest");
  });
  sd.on_cleanup(
      "all notes off", [&] { j.add("all notes off"); }, 100ms);
  auto r = spawn<clock_type>(io, sd.run(tasks));
  advance(io, 1s);
  CHECK_FALSE(sd.requested());
  sd.request();
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK_FALSE(r->error);
  CHECK(r->value == 0);
  CHECK(sd.status() == 0);
  CHECK(r->at == at(1050ms));
  CHECK(j.lines == std::vector<std::string>{"poll cancelled at 1000", "report cancelled at 1000",
                                            "all notes off at 1000", "servos at rest at 1050", "LEDs off at 1050"});
  CHECK(kinds(sd) ==
        std::vector{kind::begun, kind::work_stopped, kind::cleanup_done, kind::cleanup_done, kind::cleanup_done});
  CHECK(sd.reports()[0].to_string() == "shutdown: requested");
  CHECK(sd.reports()[2].to_string() == "shutdown: cleanup 'all notes off' done in 0 ms");
  CHECK(sd.reports()[3].to_string() == "shutdown: cleanup 'servos to rest' done in 50 ms");
  CHECK(sd.reports()[3].deadline == 500ms);  // the default
  CHECK(sd.reports()[2].deadline == 100ms);
  CHECK(sd.signal_number() == 0);
  CHECK(tasks.closed());
}

TEST_CASE("shutdown: a hanging cleanup is cut off exactly at its deadline and reported, the next one still runs") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  std::vector<std::string> printed;
  sd.on_report([&](const tactus::shutdown_report& r) { printed.push_back(r.to_string()); });
  sd.on_cleanup("last", [&] { j.add("last"); });
  sd.on_cleanup(
      "ignores cancellation", [&] { return stubborn("stubborn", 10s, j); }, 300ms);
  sd.on_cleanup(
      "hangs", [&] { return sleeper("hanging", 1h, j); }, 200ms);
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
  sd.request();
  advance(io, 2s);
  REQUIRE(r->done);
  CHECK(r->value == 1);  // not graceful: two cleanups overran
  CHECK(r->at == at(500ms));
  CHECK(j.lines == std::vector<std::string>{"work cancelled at 0", "hanging cancelled at 200", "last at 500"});
  CHECK(kinds(sd) == std::vector{kind::begun, kind::work_stopped, kind::cleanup_timed_out, kind::cleanup_timed_out,
                                 kind::cleanup_done});
  CHECK(sd.reports()[2].took == 200ms);
  CHECK(sd.reports()[3].took == 300ms);
  CHECK(printed.at(2) == "shutdown: cleanup 'hangs' cut off at its 200 ms deadline");
  CHECK(printed.at(3) == "shutdown: cleanup 'ignores cancellation' cut off at its 300 ms deadline");
  advance(io, 20s);  // the abandoned cleanup ends on its own, touching nothing gone
  CHECK(j.lines.back() == "stubborn ended at 10200");
}

TEST_CASE("shutdown: a cleanup that throws, and a plain one past its deadline, are reported, the others run") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  sd.on_cleanup("first", [&] { j.add("first"); });
  sd.on_cleanup(
      "slow plain", [&] { clock_type::advance(700ms); }, 500ms);  // a blocking call, in virtual time
  sd.on_cleanup("async throws", [&]() -> asio::awaitable<void> {
    co_await sleep_for(10ms);
    throw std::runtime_error("servo bus error");
  });
  sd.on_cleanup("plain throws", [&] { throw std::runtime_error("port gone"); });
  auto r = spawn<clock_type>(io, sd.run([]() -> asio::awaitable<void> { co_return; }()));
  advance(io, 2s);
  REQUIRE(r->done);
  CHECK(r->value == 1);
  CHECK(j.lines == std::vector<std::string>{"first at 710"});
  CHECK(kinds(sd) == std::vector{kind::begun, kind::cleanup_failed, kind::cleanup_failed, kind::cleanup_overran,
                                 kind::cleanup_done});
  CHECK(sd.reports()[0].to_string() == "shutdown: the work ended");
  CHECK(sd.reports()[1].to_string() == "shutdown: cleanup 'plain throws' failed: port gone");
  CHECK(sd.reports()[2].to_string() == "shutdown: cleanup 'async throws' failed: servo bus error");
  CHECK(sd.reports()[3].to_string() == "shutdown: cleanup 'slow plain' took 700 ms, past its 500 ms deadline");
}

TEST_CASE("shutdown: the work ending by itself runs the cleanups too, status 0") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  sd.on_cleanup("tidy", [&] { j.add("tidy"); });
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 2s, j)));
  advance(io, 5s);
  REQUIRE(r->done);
  CHECK(r->value == 0);
  CHECK(r->at == at(2s));
  CHECK(j.lines == std::vector<std::string>{"work ended at 2000", "tidy at 2000"});
  CHECK(kinds(sd) == std::vector{kind::begun, kind::cleanup_done});
  CHECK_FALSE(sd.requested() == false);
}

TEST_CASE("shutdown: the work's exception is rethrown by run() after the cleanups") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  sd.on_cleanup("tidy", [&] { j.add("tidy"); });
  SECTION("one coroutine") {
    auto r = spawn<clock_type>(io, sd.run([]() -> asio::awaitable<void> {
      co_await sleep_for(1s);
      throw std::runtime_error("driver crashed");
    }()));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->what() == "driver crashed");
    CHECK(r->at == at(1s));
    CHECK(j.lines == std::vector<std::string>{"tidy at 1000"});
  }
  SECTION("a group: a failed task ends the work, the others are stopped") {
    tactus::task_group tasks{io.get_executor()};
    tasks.spawn(sleeper("other", 1h, j));
    tasks.spawn([]() -> asio::awaitable<void> {
      co_await sleep_for(1s);
      throw std::runtime_error("driver crashed");
    }());
    auto r = spawn<clock_type>(io, sd.run(tasks));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->what() == "driver crashed");
    CHECK(j.lines == std::vector<std::string>{"other cancelled at 1000", "tidy at 1000"});
    CHECK(sd.reports()[0].to_string() == "shutdown: the work failed");
  }
  CHECK(sd.status() == 1);
}

TEST_CASE("shutdown: work that ignores cancellation is abandoned at the stop deadline, the cleanups still run") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  sd.set_stop_deadline(300ms);
  journal j;
  sd.on_cleanup("tidy", [&] { j.add("tidy"); });
  auto r = spawn<clock_type>(io, sd.run(stubborn("work", 10s, j)));
  advance(io, 1s);
  sd.request();
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK(r->value == 1);
  CHECK(r->at == at(1300ms));
  CHECK(j.lines == std::vector<std::string>{"tidy at 1300"});
  CHECK(kinds(sd) == std::vector{kind::begun, kind::work_abandoned, kind::cleanup_done});
  CHECK(sd.reports()[1].to_string() == "shutdown: work still running at its 300 ms deadline: abandoned");
}

TEST_CASE("shutdown: request_after() begins it at the time limit, once run() ends, nothing is left pending") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  sd.request_after(3s);
  SECTION("the limit comes first") {
    auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->at == at(3s));
    CHECK(sd.reports()[0].to_string() == "shutdown: time limit reached");
    CHECK(j.lines == std::vector<std::string>{"work cancelled at 3000"});
  }
  SECTION("the work ends first") {
    auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1s, j)));
    advance(io, 2s);
    REQUIRE(r->done);
    CHECK(sd.reports()[0].to_string() == "shutdown: the work ended");
  }
  tactus_test::settle(io);
  CHECK(io.stopped());  // no timer left: io.run() would return
}

TEST_CASE("shutdown: SIGINT or SIGTERM, raised in-process, starts a graceful shutdown") {
  for (int sig : {SIGINT, SIGTERM}) {
    INFO(tactus::signal_name(sig));
    clock_type::reset();
    asio::io_context io;
    virtual_shutdown sd{io.get_executor()};
    journal j;
    sd.on_cleanup("tidy", [&] { j.add("tidy"); });
    auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
    advance(io, 2s);
    ::raise(sig);
    deliver(io);
    REQUIRE(r->done);
    CHECK(r->value == 0);
    CHECK(r->at == at(2s));
    CHECK(sd.signal_number() == sig);
    CHECK(sd.reports()[0].to_string() == "shutdown: " + tactus::signal_name(sig));
    CHECK(j.lines == std::vector<std::string>{"work cancelled at 2000", "tidy at 2000"});
  }
}

TEST_CASE("shutdown: a signal that came before run() starts the shutdown as soon as run() begins") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor()};
  journal j;
  ::raise(SIGTERM);  // kept by the signal_set
  deliver(io);
  advance(io, 1s);
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
  deliver(io);
  REQUIRE(r->done);
  CHECK(r->value == 0);
  CHECK(sd.signal_number() == SIGTERM);
  CHECK(r->at == at(1s));
}

TEST_CASE("shutdown: a second signal hurries the remaining steps, a third forces the exit") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor()};
  journal j;
  std::vector<int> forced;
  sd.on_force([&](int sig) { forced.push_back(sig); });  // default: std::_Exit(128 + sig)
  sd.on_report([](const tactus::shutdown_report&) {});
  sd.on_cleanup(
      "last", [&] { j.add("last"); }, 10s);
  sd.on_cleanup(
      "second", [&] { return sleeper("second", 1h, j); }, 10s);
  sd.on_cleanup(
      "first", [&] { return sleeper("first", 1h, j); }, 10s);
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
  ::raise(SIGINT);
  deliver(io);
  advance(io, 1s);  // "first" runs, 9 s of its deadline left
  ::raise(SIGINT);
  deliver(io);
  advance(io, 150ms);  // "first" cut off at 1.1 s, "second" has 100 ms from there
  SECTION("second signal: hurried") {
    advance(io, 1s);
    REQUIRE(r->done);
    CHECK(r->value == 1);
    CHECK(r->at == at(1200ms));
    CHECK(j.lines == std::vector<std::string>{"work cancelled at 0", "first cancelled at 1100",
                                              "second cancelled at 1200", "last at 1200"});
    CHECK(kinds(sd) == std::vector{kind::begun, kind::work_stopped, kind::hurried, kind::cleanup_timed_out,
                                   kind::cleanup_timed_out, kind::cleanup_done});
    CHECK(sd.reports()[2].to_string() == "shutdown: SIGINT again: hurrying, at most 100 ms a step");
    CHECK(sd.reports()[4].took == 100ms);
    CHECK(forced.empty());
  }
  SECTION("third signal: the force handler") {
    ::raise(SIGTERM);
    deliver(io);
    CHECK(forced == std::vector{SIGTERM});
    advance(io, 1s);
    CHECK(r->done);
  }
}

TEST_CASE("shutdown: hold_signals keeps a signal back while ports open, run() lets it through") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor()};
  journal j;
  auto pending = [] {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, SIGINT) == 1;
  };
  SECTION("released by run()") {
    auto held = sd.hold_signals();
    ::raise(SIGINT);  // a Ctrl-C while libjack opens a port
    deliver(io);
    CHECK(pending());
    CHECK_FALSE(sd.requested());
    auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
    deliver(io);
    CHECK_FALSE(pending());
    REQUIRE(r->done);
    CHECK(r->value == 0);
    CHECK(sd.signal_number() == SIGINT);
  }
  SECTION("released by the guard") {
    {
      auto held = sd.hold_signals();
      ::raise(SIGINT);
      CHECK(pending());
    }
    CHECK_FALSE(pending());
    deliver(io);
    auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
    deliver(io);
    REQUIRE(r->done);
    CHECK(sd.signal_number() == SIGINT);
  }
  SECTION("a signal blocked before the hold stays blocked after it") {
    sigset_t int_only, before;
    sigemptyset(&int_only);
    sigaddset(&int_only, SIGINT);
    pthread_sigmask(SIG_BLOCK, &int_only, &before);
    { auto held = sd.hold_signals(); }
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    CHECK(sigismember(&now, SIGINT) == 1);
    CHECK(sigismember(&now, SIGTERM) == 0);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
}

TEST_CASE("shutdown: cancelling run() itself shuts down as a request does") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  journal j;
  sd.on_cleanup("tidy", [&]() -> asio::awaitable<void> {
    co_await sleep_for(20ms);
    j.add("tidy");
  });
  asio::cancellation_signal sig;
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)), sig.slot());
  advance(io, 1s);
  sig.emit(asio::cancellation_type::terminal);
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK(r->value == 0);
  CHECK(sd.reports()[0].to_string() == "shutdown: cancelled");
  CHECK(j.lines == std::vector<std::string>{"work cancelled at 1000", "tidy at 1020"});
}

TEST_CASE("shutdown: on_cleanup() once the cleanups began, and a second run(), are refused") {
  clock_type::reset();
  asio::io_context io;
  virtual_shutdown sd{io.get_executor(), {}};
  bool refused = false;
  sd.on_cleanup("registers another", [&] {
    try {
      sd.on_cleanup("too late", [] {});
    } catch (const std::logic_error&) {
      refused = true;
    }
  });
  auto r = spawn<clock_type>(io, sd.run([]() -> asio::awaitable<void> { co_return; }()));
  auto second = spawn<clock_type>(io, sd.run([]() -> asio::awaitable<void> { co_return; }()));
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK(refused);
  REQUIRE(second->done);
  CHECK_THROWS_AS(std::rethrow_exception(second->error), std::logic_error);
}

TEST_CASE("shutdown: on the steady clock, SIGTERM during io.run() ends it with every cleanup run and status 0") {
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};
  std::vector<std::string> done;
  sd.on_cleanup("first registered", [&] { done.push_back("first registered"); });
  sd.on_cleanup("second registered", [&]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
    co_await t.async_wait(asio::use_awaitable);
    done.push_back("second registered");
  });
  tactus::task_group tasks{io.get_executor()};
  for (int i = 0; i < 3; ++i)
    tasks.spawn([]() -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::use_awaitable);
    }());
  asio::co_spawn(io, sd.run(tasks), tactus::rethrow);
  asio::steady_timer kick(io, 20ms);
  kick.async_wait([](std::error_code) { ::raise(SIGTERM); });
  const auto t0 = std::chrono::steady_clock::now();
  io.run();  // returns: nothing is left waiting
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(sd.status() == 0);
  CHECK(done == std::vector<std::string>{"second registered", "first registered"});
  CHECK(tasks.empty());
  std::printf("figure: SIGTERM to io.run() returning: %.2f ms (20 ms of it before the signal)\n",
              std::chrono::duration<double, std::milli>(took).count());
}

// Issue 12, item 2: Asio 1.22's signal_set installs its handler without SA_RESTART, so a Ctrl-C
// made a blocking call in progress fail with EINTR: libjack, opening a port, then reported
// "JACK error creating port". The shutdown adds SA_RESTART to the handler it installs.
TEST_CASE("shutdown: a signal does not interrupt a blocking call in progress") {
  asio::io_context io;
  virtual_shutdown sd{io.get_executor()};
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction now {};
    REQUIRE(::sigaction(sig, nullptr, &now) == 0);
    CHECK((now.sa_flags & SA_RESTART) != 0);
    CHECK(now.sa_handler != SIG_DFL);
  }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pthread_t reader = pthread_self();
  std::thread other([&] {
    std::this_thread::sleep_for(30ms);
    pthread_kill(reader, SIGINT);  // while the read below blocks
    std::this_thread::sleep_for(30ms);
    const char c = 'x';
    CHECK(::write(fds[1], &c, 1) == 1);
  });
  char got = 0;
  const auto n = ::read(fds[0], &got, 1);  // restarted after the handler: no EINTR
  const int err = errno;
  other.join();
  ::close(fds[0]);
  ::close(fds[1]);
  INFO("read: " << n << ", errno " << err);
  CHECK(n == 1);
  CHECK(got == 'x');
  // The signal was heard all the same: the shutdown begins as soon as run() does.
  journal j;
  auto r = spawn<clock_type>(io, sd.run(sleeper("work", 1h, j)));
  deliver(io);
  REQUIRE(r->done);
  CHECK(sd.signal_number() == SIGINT);
}
