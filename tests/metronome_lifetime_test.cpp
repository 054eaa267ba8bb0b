// SPDX-License-Identifier: BSL-1.0
// The metronome's lifetime: destroyed while run() and its callbacks are suspended (the README's
// own snippet declared io first and crashed under ASan), and stop() that returns at once even
// when a callback awaits work that ignores cancellation.
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/virtual_metronome.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <system_error>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;

TEST_CASE("a metronome may be destroyed while its coroutines are suspended, in any order") {
  mc::reset();
  int ticks = 0;
  std::optional<std::error_code> waited;
  SECTION("io declared first: the metronome goes first, its io_context then destroys the frames") {
    // The README's "Testing your own tempo code" order, with an async callback and a wait pending.
    asio::io_context io;
    metronome m{io.get_executor(), bpm{120}};
    m.on_tick([&](const metronome::tick_type&) -> asio::awaitable<void> {
      ++ticks;
      asio::basic_waitable_timer<mc> t(io, 10h);
      co_await t.async_wait(asio::use_awaitable);  // suspended for good
    });
    asio::co_spawn(io, m.run(), [](std::exception_ptr) {});
    m.async_wait_until(beats{1000}, [&](std::error_code ec, auto) { waited = ec; });
    tactus::testing::advance(io, 10s);
    CHECK(ticks == 1);  // the callback holds the grid (it awaits something else): documented
  }
  SECTION("the metronome destroyed while io keeps running: run() returns, waits abort") {
    asio::io_context io;
    auto m = std::make_unique<metronome>(io.get_executor(), bpm{120});
    m->on_tick([&](const metronome::tick_type&) { ++ticks; });
    runner r;
    r.start(io, *m);
    m->async_wait_until(beats{1000}, [&](std::error_code ec, auto) { waited = ec; });
    tactus::testing::advance(io, 10s);
    m.reset();
    tactus::testing::advance(io, 10s);
    CHECK(r.done);
    CHECK_FALSE(r.error);
    CHECK(ticks == 21);
    REQUIRE(waited);
    CHECK(*waited == asio::error::operation_aborted);
  }
  SECTION("destroyed from inside its own callback") {
    asio::io_context io;
    auto m = std::make_unique<metronome>(io.get_executor(), bpm{120});
    m->on_tick([&](const metronome::tick_type& t) {
      ++ticks;
      if (t.index == 3) m.reset();
    });
    runner r;
    r.start(io, *m);
    tactus::testing::advance(io, 10s);
    CHECK(r.done);
    CHECK(ticks == 4);
  }
}

TEST_CASE("stop() returns at once even when a callback awaits work that ignores cancellation") {
  // Before: a callback awaiting 2 s of blocking work on a thread pool kept run() alive until the
  // work ended. Now run() returns at once; the work finishes unobserved.
  asio::io_context io;
  asio::thread_pool pool(1);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> work_done{false};
  bool after_work = false, after_next_wait = false;
  std::optional<std::exception_ptr> error_reported;
  tactus::metronome m{io.get_executor(), bpm{600}};
  m.set_error_handler([&](std::exception_ptr e, const tactus::tick&) { error_reported = e; });
  m.on_tick([&](const tactus::tick&) -> asio::awaitable<void> {
    // The empty slot keeps the callback's cancellation out of the pool's thread: Asio 1.22's
    // co_spawn forwards it there unsynchronized (a data race; later Asio dispatches it).
    co_await asio::co_spawn(
        pool,
        [&]() -> asio::awaitable<void> {
          released.wait();  // blocks its thread: no cancellation could reach it anyway
          work_done = true;
          co_return;
        },
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    after_work = true;
    co_await m.next_tick();  // the metronome has stopped: this throws operation_aborted
    after_next_wait = true;
  });
  bool run_done = false;
  asio::co_spawn(io, m.run(), [&](std::exception_ptr e) {
    run_done = true;
    CHECK_FALSE(e);
  });
  asio::steady_timer stop_timer(io, 50ms);
  stop_timer.async_wait([&](std::error_code) { m.stop(); });
  const auto give_up = std::chrono::steady_clock::now() + 30s;  // a hang fails, never blocks CI
  while (!run_done && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
  CHECK(run_done);
  CHECK_FALSE(work_done);  // run() returned while the work was still blocked
  CHECK_FALSE(m.running());
  release.set_value();
  io.restart();
  io.run_for(10s);  // the work ends, the callback resumes and meets the stopped metronome
  pool.join();
  CHECK(work_done);
  CHECK(after_work);
  CHECK_FALSE(after_next_wait);
  CHECK_FALSE(error_reported);  // the abort after stop() is not an error
}
