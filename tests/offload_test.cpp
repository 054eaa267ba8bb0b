// SPDX-License-Identifier: BSL-1.0
// tactus::offload and async_offload: the result, an exception, void, on a pool or any executor;
// where fn runs and where the caller resumes; the loop running meanwhile; cancellation, which
// drops the result while fn runs to its end; and every completion token. Deadlines race in
// virtual time; the pool's threads are real, so those parts assert order and counts only.
#include <tactus/detail/asio_compat.hpp>
#include <tactus/offload.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// Waits (really) until `flag` is set; false after 10 s.
bool wait_for(const std::atomic<bool>& flag) {
  const auto end = clock_type::now() + 10s;
  while (!flag.load()) {
    if (clock_type::now() > end) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// A blocking call the test releases by hand; shared with fn, which outlives a cancelled await.
struct blocking_call {
  std::atomic<bool> started{false}, release{false}, finished{false};
  std::weak_ptr<int> result;  // what fn returned, written on the pool before `finished`

  std::shared_ptr<int> run() {
    started = true;
    const auto end = clock_type::now() + 10s;
    while (!release && clock_type::now() < end) std::this_thread::sleep_for(100us);
    auto r = std::make_shared<int>(5);
    result = r;
    finished = true;
    return r;
  }
};

std::error_code error_in(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::system_error& s) {
    return s.code();
  } catch (...) {
  }
  return {};
}

}  // namespace

TEST_CASE("offload runs fn on the pool and resumes the caller on its own executor with the result") {
  asio::io_context io;
  asio::thread_pool pool{2};
  std::optional<int> got;
  bool fn_on_pool = false, fn_off_loop = false, resumed_on_loop = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        got = co_await tactus::offload(pool, [&] {
          fn_on_pool = pool.get_executor().running_in_this_thread();
          fn_off_loop = !io.get_executor().running_in_this_thread();
          return 42;
        });
        resumed_on_loop = io.get_executor().running_in_this_thread();
      },
      rethrow);
  io.run();  // returns once the call is done: a pending offload is work
  CHECK(got == 42);
  CHECK(fn_on_pool);
  CHECK(fn_off_loop);
  CHECK(resumed_on_loop);
}

TEST_CASE("offload rethrows fn's exception in the awaiting coroutine") {
  asio::io_context io;
  asio::thread_pool pool{1};
  std::string what;
  bool resumed_on_loop = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await tactus::offload(pool, []() -> int { throw std::runtime_error("sensor unplugged"); });
        } catch (const std::runtime_error& e) {
          what = e.what();
          resumed_on_loop = io.get_executor().running_in_this_thread();
        }
      },
      rethrow);
  io.run();
  CHECK(what == "sensor unplugged");
  CHECK(resumed_on_loop);
}

TEST_CASE("offload of a void fn resumes after it ran, and rethrows what it threw") {
  asio::io_context io;
  asio::thread_pool pool{1};
  std::atomic<int> ran{0};
  std::string what;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await tactus::offload(pool, [&] { ++ran; });
        CHECK(ran == 1);
        try {
          co_await tactus::offload(pool, [&] {
            ++ran;
            throw std::logic_error("void and failing");
          });
        } catch (const std::logic_error& e) {
          what = e.what();
        }
      },
      rethrow);
  io.run();
  CHECK(ran == 2);
  CHECK(what == "void and failing");
}

TEST_CASE("offload takes any executor: a strand of the pool, another io_context") {
  asio::io_context io;
  SECTION("a strand") {
    asio::thread_pool pool{2};
    auto strand = asio::make_strand(pool);
    bool on_strand = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          on_strand = co_await tactus::offload(strand, [&] { return strand.running_in_this_thread(); });
        },
        rethrow);
    io.run();
    CHECK(on_strand);
  }
  SECTION("an io_context run by a thread of its own") {
    asio::io_context worker;
    auto guard = asio::make_work_guard(worker);
    std::thread t([&] { worker.run(); });
    const auto worker_id = t.get_id();
    std::thread::id ran_on;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          ran_on = co_await tactus::offload(worker.get_executor(), [] { return std::this_thread::get_id(); });
        },
        rethrow);
    io.run();
    guard.reset();
    t.join();
    CHECK(ran_on == worker_id);
  }
}

TEST_CASE("the loop keeps running while fn blocks") {
  asio::io_context io;
  asio::thread_pool pool{1};
  std::atomic<int> ticks{0};
  bool stop = false;
  std::optional<bool> fn_saw_ticks;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t{io};
        while (!stop) {
          t.expires_after(1ms);
          co_await t.async_wait(asio::use_awaitable);
          ++ticks;
        }
      },
      rethrow);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // fn blocks until the loop has ticked three times: it returns false only if the loop was
        // frozen for 10 s.
        fn_saw_ticks = co_await tactus::offload(pool, [&ticks] {
          const auto end = clock_type::now() + 10s;
          while (ticks < 3 && clock_type::now() < end) std::this_thread::sleep_for(100us);
          return ticks >= 3;
        });
        stop = true;
      },
      rethrow);
  io.run();
  REQUIRE(fn_saw_ticks);
  CHECK(*fn_saw_ticks);
}

TEST_CASE("cancelling the await drops the result while the call runs to its end (virtual time)") {
  using namespace tactus::detail::awaitable_operators;
  using clock = tactus::testing::manual_clock;
  clock::reset();
  asio::io_context io;
  asio::thread_pool pool{1};
  auto call = std::make_shared<blocking_call>();
  std::optional<std::size_t> winner;
  bool finished_when_resumed = true;
  clock::time_point resumed_at{};
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::basic_waitable_timer<clock> deadline{io, 10ms};
        // Named, not written inside the co_await: GCC 12 destroys the captures of a lambda
        // created in a co_await expression twice (see offload.hpp).
        auto run = [call] { return call->run(); };
        auto r = co_await (tactus::offload(pool, std::move(run)) || deadline.async_wait(asio::use_awaitable));
        winner = r.index();
        finished_when_resumed = call->finished;
        resumed_at = clock::now();
      },
      rethrow);
  tactus::testing::advance(io, 0ms);  // the coroutine starts and offloads the call
  REQUIRE(wait_for(call->started));
  tactus::testing::advance(io, 10ms);  // the deadline: the await is cancelled, the coroutine moves on
  REQUIRE(winner);
  CHECK(*winner == 1);
  CHECK_FALSE(finished_when_resumed);  // it did not wait for the blocking call
  CHECK(resumed_at == clock::time_point(10ms));
  call->release = true;
  pool.join();  // the call runs to its end
  CHECK(call->finished);
  CHECK(call->result.expired());  // and its result was dropped
  io.restart();
  CHECK(io.poll() == 0);  // nothing completes a second time
}

TEST_CASE("async_offload is aborted by every cancellation type, once") {
  const auto type =
      GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total);
  INFO("cancellation type " << int(type));
  asio::io_context io;
  asio::thread_pool pool{1};
  auto call = std::make_shared<blocking_call>();
  asio::cancellation_signal cancel;
  int calls = 0;
  std::exception_ptr got;
  std::shared_ptr<int> value;
  tactus::async_offload(
      pool, [call] { return call->run(); },
      asio::bind_cancellation_slot(cancel.slot(),
                                   asio::bind_executor(io, [&](std::exception_ptr e, std::shared_ptr<int> v) {
                                     ++calls;
                                     got = e;
                                     value = v;
                                     CHECK(io.get_executor().running_in_this_thread());
                                   })));
  REQUIRE(wait_for(call->started));
  io.poll();
  CHECK(calls == 0);
  cancel.emit(type);
  CHECK(calls == 0);  // never inside the emit
  io.poll();
  CHECK(calls == 1);
  CHECK(error_in(got) == asio::error::operation_aborted);
  CHECK_FALSE(value);  // R{}
  call->release = true;
  pool.join();
  CHECK(call->finished);
  io.restart();
  io.poll();
  CHECK(calls == 1);  // and never again
  CHECK(call->result.expired());
}

TEST_CASE("async_offload works with every completion token") {
  // The io_context first: the pool is destroyed (joined) before it, as a pool thread may still
  // be inside the post of a completion when the io_context's run() has returned.
  asio::io_context io;
  asio::thread_pool pool{2};
  SECTION("a plain callback runs on the pool (it has no executor of its own)") {
    std::promise<std::pair<int, bool>> p;
    tactus::async_offload(
        pool, [] { return 42; },
        [&](std::exception_ptr e, int v) {
          CHECK_FALSE(e);
          p.set_value({v, pool.get_executor().running_in_this_thread()});
        });
    auto f = p.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    const auto [v, on_pool] = f.get();
    CHECK(v == 42);
    CHECK(on_pool);
  }
  SECTION("a callback bound to an executor runs there, never inside the call") {
    int calls = 0;
    tactus::async_offload(
        pool, [] { return 42; }, asio::bind_executor(io, [&](std::exception_ptr e, int v) {
          CHECK_FALSE(e);
          CHECK(v == 42);
          CHECK(io.get_executor().running_in_this_thread());
          ++calls;
        }));
    CHECK(calls == 0);
    io.run();
    CHECK(calls == 1);
  }
  SECTION("deferred") {
    int calls = 0;
    auto op = tactus::async_offload(
        pool, [] { return 42; }, tactus::detail::deferred);
    std::move(op)(asio::bind_executor(io, [&](std::exception_ptr e, int v) {
      CHECK_FALSE(e);
      CHECK(v == 42);
      ++calls;
    }));
    io.run();
    CHECK(calls == 1);
  }
  SECTION("use_future: the value, fn's exception, void") {
    auto f = tactus::async_offload(
        pool, [] { return 42; }, asio::use_future);
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == 42);
    auto g = tactus::async_offload(
        pool, []() -> int { throw std::runtime_error("no"); }, asio::use_future);
    REQUIRE(g.wait_for(10s) == std::future_status::ready);
    CHECK_THROWS_AS(g.get(), std::runtime_error);
    std::atomic<bool> ran{false};
    auto h = tactus::async_offload(
        pool, [&] { ran = true; }, asio::use_future);
    REQUIRE(h.wait_for(10s) == std::future_status::ready);
    h.get();
    CHECK(ran);
  }
  SECTION("use_awaitable, on the thread pool as an execution context") {
    std::optional<int> got;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          got = co_await tactus::async_offload(
              pool, [] { return 42; }, asio::use_awaitable);
        },
        rethrow);
    io.run();
    CHECK(got == 42);
  }
}
