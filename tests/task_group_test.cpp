// SPDX-License-Identifier: BSL-1.0
// task_group in virtual time: wait() for all, stop() cancels all and waits (a task that ignores
// cancellation for a while included), exceptions reported and never swallowed (rethrown by the
// next wait/stop, or to the error handler, or printed when nobody can hear them), spawning after
// stop refused, destruction with tasks running, and async_wait/async_stop with every token and
// every cancellation type.
#include <tactus/task_group.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include "support/spawned.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using clock_type = tactus::testing::manual_clock;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using tactus::testing::advance;
using tactus_test::spawn;

namespace {

clock_type::time_point at(clock_type::duration d) { return clock_type::time_point(d); }

struct journal {
  std::vector<std::string> lines;
  void add(const std::string& what) {
    lines.push_back(
        what + " at " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now().time_since_epoch()).count()));
  }
};

// Sleeps `d`, notes its end, or its cancellation.
asio::awaitable<void> task(std::string name, clock_type::duration d, journal& j) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  try {
    co_await t.async_wait(asio::use_awaitable);
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) j.add(name + " cancelled");
    throw;
  }
  j.add(name + " ended");
}

asio::awaitable<void> failing(std::string what, clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
  throw std::runtime_error(what);
}

// On cancellation it tidies up for `tidy` more (its wait no longer cancellable), then ends.
asio::awaitable<void> slow_to_stop(clock_type::duration tidy, journal& j) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(1h);
  try {
    co_await t.async_wait(asio::use_awaitable);
  } catch (const std::system_error&) {
    j.add("tidying");
  }
  co_await asio::this_coro::reset_cancellation_state();  // else its next co_await throws at once
  t.expires_after(tidy);
  co_await t.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  j.add("tidied");
}

std::string what(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

// std::cerr into a string for the scope.
struct capture_cerr {
  std::ostringstream text;
  std::streambuf* old = std::cerr.rdbuf(text.rdbuf());
  ~capture_cerr() { std::cerr.rdbuf(old); }
};

}  // namespace

TEST_CASE("task_group: wait() returns when every task has ended, without cancelling any") {
  clock_type::reset();
  asio::io_context io;
  tactus::task_group tasks{io.get_executor()};
  journal j;
  tasks.spawn(task("a", 1s, j));
  tasks.spawn(task("b", 3s, j));
  tasks.spawn(task("c", 2s, j));
  CHECK(tasks.size() == 3);
  auto r = spawn<clock_type>(io, tasks.wait());
  advance(io, 10s);
  REQUIRE(r->done);
  CHECK_FALSE(r->error);
  CHECK(r->at == at(3s));
  CHECK(j.lines == std::vector<std::string>{"a ended at 1000", "c ended at 2000", "b ended at 3000"});
  CHECK(tasks.empty());
  CHECK(tasks.spawned() == 3);
  CHECK_FALSE(tasks.closed());
  tasks.spawn(task("d", 1s, j));  // wait() does not close the group
  auto again = spawn<clock_type>(io, tasks.wait());
  advance(io, 2s);
  CHECK(again->at == at(11s));
}

TEST_CASE("task_group: stop() cancels every task and returns once all have ended") {
  clock_type::reset();
  asio::io_context io;
  tactus::task_group tasks{io.get_executor()};
  journal j;
  tasks.spawn(task("a", 1h, j));
  tasks.spawn(task("b", 1h, j));
  advance(io, 5s);
  SECTION("tasks that end at once") {
    auto r = spawn<clock_type>(io, tasks.stop());
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK_FALSE(r->error);  // a cancelled task's operation_aborted is not an error
    CHECK(r->at == at(5s));
    CHECK(j.lines == std::vector<std::string>{"a cancelled at 5000", "b cancelled at 5000"});
    CHECK(tasks.errors().empty());
  }
  SECTION("a task that ignores cancellation for 300 ms: stop waits for it") {
    tasks.spawn(slow_to_stop(300ms, j));
    tactus_test::settle(io);
    auto r = spawn<clock_type>(io, tasks.stop());
    advance(io, 299ms);
    CHECK_FALSE(r->done);
    CHECK(tasks.size() == 1);
    advance(io, 1s);
    REQUIRE(r->done);
    CHECK_FALSE(r->error);
    CHECK(r->at == at(5300ms));
    CHECK(j.lines ==
          std::vector<std::string>{"a cancelled at 5000", "b cancelled at 5000", "tidying at 5000", "tidied at 5300"});
  }
  SECTION("a task stopped before it began never runs; that is not an error") {
    tasks.spawn(task("never", 1s, j));
    tasks.cancel();  // before it had a chance to run
    auto r = spawn<clock_type>(io, tasks.stop());
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK_FALSE(r->error);
    CHECK(j.lines == std::vector<std::string>{"a cancelled at 5000", "b cancelled at 5000"});
    CHECK(tasks.errors().empty());
  }
  CHECK(tasks.empty());
  CHECK(tasks.closed());
}

TEST_CASE("task_group: a task awaiting an Asio channel, stopped, ends without an error") {
  // A cancelled channel receive throws channel_cancelled, not operation_aborted: the same
  // cancellation, asked for by the group (a new user's Ctrl-C in the README's plumbing program).
  clock_type::reset();
  asio::io_context io;
  tactus::task_group tasks{io.get_executor()};
  asio::experimental::channel<void(std::error_code, int)> ch{io, 1};
  bool threw_cancelled = false;
  // Named: a coroutine lambda's captures live in the lambda object, which must outlive the task.
  auto receive = [&]() -> asio::awaitable<void> {
    try {
      co_await ch.async_receive(asio::use_awaitable);
    } catch (const std::system_error& e) {
      threw_cancelled = e.code() == asio::experimental::error::channel_cancelled;
      throw;
    }
  };
  tasks.spawn(receive());
  tactus_test::settle(io);
  auto r = spawn<clock_type>(io, tasks.stop());
  tactus_test::settle(io);
  REQUIRE(r->done);
  CHECK(threw_cancelled);
  CHECK_FALSE(r->error);
  CHECK(tasks.errors().empty());
}

TEST_CASE("task_group: spawning during or after stop is refused with a clear error") {
  clock_type::reset();
  asio::io_context io;
  tactus::task_group tasks{io.get_executor()};
  journal j;
  tasks.spawn(slow_to_stop(300ms, j));
  tactus_test::settle(io);
  auto r = spawn<clock_type>(io, tasks.stop());
  advance(io, 100ms);
  REQUIRE_FALSE(r->done);
  try {
    tasks.spawn(task("late", 1s, j));
    FAIL("spawn() during stop() was accepted");
  } catch (const std::logic_error& e) {
    CHECK_THAT(std::string(e.what()), ContainsSubstring("the group is closed"));
  }
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK_THROWS_AS(tasks.spawn(task("later", 1s, j)), std::logic_error);
  CHECK(tasks.spawned() == 1);
  SECTION("cancel() closes it too") {
    tactus::task_group other{io.get_executor()};
    other.cancel();
    CHECK_THROWS_AS(other.spawn(task("x", 1s, j)), std::logic_error);
  }
}

TEST_CASE("task_group: a task's exception is never swallowed") {
  clock_type::reset();
  asio::io_context io;
  tactus::task_group tasks{io.get_executor()};
  journal j;
  SECTION("wait() throws it when it happens; the other tasks go on") {
    tasks.spawn(task("a", 5s, j));
    tasks.spawn(failing("sensor gone", 1s));
    auto r = spawn<clock_type>(io, tasks.wait());
    advance(io, 2s);
    REQUIRE(r->done);
    CHECK(r->what() == "sensor gone");
    CHECK(r->at == at(1s));
    CHECK(tasks.size() == 1);
    REQUIRE(tasks.errors().size() == 1);
    CHECK(what(tasks.errors()[0]) == "sensor gone");
    auto s = spawn<clock_type>(io, tasks.stop());  // reported once: stop() does not throw it again
    tactus_test::settle(io);
    REQUIRE(s->done);
    CHECK_FALSE(s->error);
  }
  SECTION("with nobody waiting, the next stop() throws it") {
    tasks.spawn(task("a", 1h, j));
    tasks.spawn(failing("first", 1s));
    tasks.spawn(failing("second", 2s));
    advance(io, 3s);
    auto s = spawn<clock_type>(io, tasks.stop());
    tactus_test::settle(io);
    REQUIRE(s->done);
    CHECK(s->what() == "first");  // the earliest; every error so far counts as reported
    CHECK(tasks.errors().size() == 2);
    auto w = spawn<clock_type>(io, tasks.wait());
    tactus_test::settle(io);
    REQUIRE(w->done);
    CHECK_FALSE(w->error);
  }
  SECTION("an error that happens during stop() is thrown by it") {
    auto fails_when_cancelled = []() -> asio::awaitable<void> {
      asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
      t.expires_after(1h);
      try {
        co_await t.async_wait(asio::use_awaitable);
      } catch (const std::system_error&) {
      }
      throw std::runtime_error("could not park the arm");
    };
    tasks.spawn(fails_when_cancelled());
    tactus_test::settle(io);
    auto s = spawn<clock_type>(io, tasks.stop());
    tactus_test::settle(io);
    REQUIRE(s->done);
    CHECK(s->what() == "could not park the arm");
  }
  SECTION("operation_aborted from a task the group did not cancel is an error") {
    tasks.spawn([]() -> asio::awaitable<void> {
      throw std::system_error(asio::error::operation_aborted, "aborted by itself");
      co_return;
    }());
    auto r = spawn<clock_type>(io, tasks.wait());
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::operation_aborted);
  }
  SECTION("with an error handler, each error goes there as it happens, and nothing is thrown") {
    std::vector<std::string> handled;
    tasks.on_error([&](std::exception_ptr e) {
      handled.push_back(what(e) + " at " + std::to_string(clock_type::now().time_since_epoch().count() / 1'000'000));
    });
    tasks.spawn(failing("first", 1s));
    tasks.spawn(failing("second", 2s));
    tasks.spawn(task("a", 3s, j));
    auto r = spawn<clock_type>(io, tasks.wait());
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK_FALSE(r->error);
    CHECK(r->at == at(3s));
    CHECK(handled == std::vector<std::string>{"first at 1000", "second at 2000"});
    CHECK(tasks.errors().size() == 2);
  }
  SECTION("fail-fast, asyncio.TaskGroup's way: the handler cancels the group") {
    tasks.on_error([&](std::exception_ptr) { tasks.cancel(); });
    tasks.spawn(task("a", 1h, j));
    tasks.spawn(failing("broken", 1s));
    auto r = spawn<clock_type>(io, tasks.wait());
    advance(io, 2s);
    REQUIRE(r->done);
    CHECK(r->at == at(1s));
    CHECK(j.lines == std::vector<std::string>{"a cancelled at 1000"});
  }
  SECTION("a group destroyed with an unreported error prints it") {
    capture_cerr err;
    {
      tactus::task_group doomed{io.get_executor()};
      doomed.spawn(failing("nobody heard", 1s));
      advance(io, 2s);
    }
    CHECK_THAT(err.text.str(), ContainsSubstring("unreported task error: nobody heard"));
  }
  SECTION("a task failing after its group is gone is printed") {
    capture_cerr err;
    {
      tactus::task_group doomed{io.get_executor()};
      doomed.spawn([]() -> asio::awaitable<void> {
        asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
        t.expires_after(1h);
        try {
          co_await t.async_wait(asio::use_awaitable);
        } catch (const std::system_error&) {
        }
        throw std::runtime_error("failed while cancelled");
      }());
      tactus_test::settle(io);
    }
    tactus_test::settle(io);
    CHECK_THAT(err.text.str(), ContainsSubstring("destroyed tactus::task_group failed: failed while cancelled"));
  }
}

TEST_CASE("task_group: destroyed with tasks running, they are cancelled and end without it") {
  clock_type::reset();
  journal j;
  SECTION("the io_context goes on") {
    asio::io_context io;
    auto tasks = std::make_unique<tactus::task_group>(io.get_executor());
    tasks->spawn(task("a", 1h, j));
    tasks->spawn(slow_to_stop(300ms, j));
    auto r = spawn<clock_type>(io, tasks->wait());
    advance(io, 1s);
    tasks.reset();
    advance(io, 1s);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::operation_aborted);
    CHECK(j.lines == std::vector<std::string>{"a cancelled at 1000", "tidying at 1000", "tidied at 1300"});
  }
  SECTION("the io_context is destroyed with the tasks suspended (LeakSanitizer watches)") {
    auto io = std::make_unique<asio::io_context>();
    auto tasks = std::make_unique<tactus::task_group>(io->get_executor());
    tasks->spawn(task("a", 1h, j));
    advance(*io, 1s);
    io.reset();
    tasks.reset();
    CHECK(j.lines.empty());
  }
  SECTION("the group goes first, then the io_context, tasks never resumed") {
    auto io = std::make_unique<asio::io_context>();
    auto tasks = std::make_unique<tactus::task_group>(io->get_executor());
    tasks->spawn(slow_to_stop(300ms, j));
    advance(*io, 1s);
    tasks.reset();
    io.reset();
    CHECK(j.lines.empty());
  }
}

namespace {
bool no_error(std::exception_ptr e) { return !e; }

// For every_token.hpp: a group with one task ending at 1 s.
struct wait_fixture {
  asio::io_context io;
  std::optional<tactus::task_group> group;
  journal j;
  wait_fixture() {
    clock_type::reset();
    group.emplace(io.get_executor());
    group->spawn(task("t", 1s, j));
    tactus_test::settle(io);  // started
  }
};
}  // namespace

TEST_CASE("task_group: async_wait and async_stop with every completion token and every cancellation") {
  using tactus_test::completes_with_every_token;
  SECTION("async_wait") {
    completes_with_every_token<wait_fixture>(
        [](wait_fixture& f, auto&& token) { return f.group->async_wait(std::forward<decltype(token)>(token)); },
        [](wait_fixture& f) { advance(f.io, 2s); },
        [](wait_fixture& f, auto... e) {
          CHECK(f.group->empty());
          CHECK(no_error(e...));
        });
    tactus_test::aborts_on_every_cancellation<wait_fixture>(
        [](wait_fixture& f, auto&& token) { return f.group->async_wait(std::forward<decltype(token)>(token)); },
        [](wait_fixture& f) { advance(f.io, 500ms); }, [](wait_fixture& f) { advance(f.io, 2s); },
        [](wait_fixture& f) { f.group.reset(); });
  }
  SECTION("async_stop") {
    completes_with_every_token<wait_fixture>(
        [](wait_fixture& f, auto&& token) { return f.group->async_stop(std::forward<decltype(token)>(token)); },
        [](wait_fixture& f) { tactus_test::settle(f.io); },
        [](wait_fixture& f, auto... e) {
          CHECK(f.group->empty());
          CHECK(f.j.lines == std::vector<std::string>{"t cancelled at 0"});
          CHECK(no_error(e...));
        });
  }
  SECTION("a cancelled wait leaves the tasks alone") {
    wait_fixture f;
    asio::cancellation_signal sig;
    auto r = spawn<clock_type>(f.io, f.group->wait(), sig.slot());
    advance(f.io, 500ms);
    sig.emit(asio::cancellation_type::terminal);
    tactus_test::settle(f.io);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::operation_aborted);
    advance(f.io, 1s);
    CHECK(f.j.lines == std::vector<std::string>{"t ended at 1000"});
  }
}
