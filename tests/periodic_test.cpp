// SPDX-License-Identifier: BSL-1.0
// periodic in virtual time: every tick on the grid from the anchor (no drift, a body's time
// included), busy/idle rates switched from the body and from outside (re-anchored at the last
// tick), overruns skipped and counted, cancellation, destruction while running, bad periods.
#include <tactus/periodic.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/spawned.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

using clock_type = tactus::testing::manual_clock;
using periodic = tactus::basic_periodic<clock_type>;
using tick = tactus::basic_periodic_tick<clock_type>;
using namespace std::chrono_literals;
using tactus::testing::advance;
using tactus_test::spawn;

namespace {

clock_type::time_point at(clock_type::duration d) { return clock_type::time_point(d); }

asio::awaitable<void> sleep_for(clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

std::vector<clock_type::time_point> fired(const std::vector<tick>& ticks) {
  std::vector<clock_type::time_point> out;
  for (auto& t : ticks) out.push_back(t.fired);
  return out;
}

}  // namespace

TEST_CASE("periodic: every tick exactly on the grid, a body's own time included (no drift)") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 7ms};
  std::vector<tick> ticks;
  SECTION("a plain body") {
    auto r = spawn<clock_type>(io, p.run([&](const tick& t) { ticks.push_back(t); }));
    advance(io, 7s - 1ms);
    CHECK_FALSE(r->done);
  }
  SECTION("an awaitable body taking 3 of the 7 ms (sleep(period) after it would drift 3 ms a tick)") {
    auto r = spawn<clock_type>(io, p.run([&](const tick& t) -> asio::awaitable<void> {
      ticks.push_back(t);
      co_await sleep_for(3ms);
    }));
    advance(io, 7s - 1ms);
    CHECK_FALSE(r->done);
  }
  REQUIRE(ticks.size() == 1000);
  for (std::size_t k = 0; k < ticks.size(); ++k) {
    CHECK(ticks[k].index == std::int64_t(k));
    CHECK(ticks[k].scheduled == at(7ms * k));
    CHECK(ticks[k].fired == ticks[k].scheduled);
    CHECK(ticks[k].skipped == 0);
  }
  CHECK(p.delivered() == 1000);
  CHECK(p.skipped() == 0);
}

TEST_CASE("periodic: busy and idle rates, switched from the body, re-anchored at the last tick") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 100ms, 1s};
  std::vector<tick> ticks;
  // Busy from the tick at 2 s to the tick at 2.5 s: the update_state loop of a device that moves.
  auto r = spawn<clock_type>(io, p.run([&](const tick& t) {
    ticks.push_back(t);
    if (t.fired == at(2s)) p.set_busy(true);
    if (t.fired == at(2500ms)) p.set_busy(false);
  }));
  advance(io, 4s);
  CHECK_FALSE(r->done);
  CHECK(fired(ticks) ==
        std::vector{at(0s), at(1s), at(2s), at(2100ms), at(2200ms), at(2300ms), at(2400ms), at(2500ms), at(3500ms)});
  for (auto& t : ticks) CHECK(t.fired == t.scheduled);
  CHECK(ticks[3].busy);
  CHECK_FALSE(ticks[8].busy);
  CHECK(ticks[8].index == 8);  // indices go on across rate changes
  CHECK(p.skipped() == 0);
}

TEST_CASE("periodic: going busy from outside during a long idle wait does not wait it out") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 100ms, 1s};
  std::vector<tick> ticks;
  auto r = spawn<clock_type>(io, p.run([&](const tick& t) { ticks.push_back(t); }));
  SECTION("when the first busy tick's time (last tick + 100 ms) has passed: at once, and on from there") {
    advance(io, 1350ms);  // ticks at 0 and 1 s
    p.set_busy(true);     // 1.1 s has passed
    CHECK(p.busy());
    advance(io, 300ms);
    CHECK(fired(ticks) == std::vector{at(0s), at(1s), at(1350ms), at(1450ms), at(1550ms), at(1650ms)});
    CHECK(ticks[2].fired == ticks[2].scheduled);  // not late: the grid starts there
    CHECK(p.skipped() == 0);
  }
  SECTION("when it has not: one busy period after the last tick") {
    advance(io, 1050ms);
    p.set_busy(true);
    advance(io, 200ms);
    CHECK(fired(ticks) == std::vector{at(0s), at(1s), at(1100ms), at(1200ms)});
  }
  SECTION("and back to idle: one idle period after the last busy tick") {
    advance(io, 1050ms);
    p.set_busy(true);
    advance(io, 170ms);  // 1.1, 1.2 s
    p.set_busy(false);
    advance(io, 2s);
    CHECK(fired(ticks) == std::vector{at(0s), at(1s), at(1100ms), at(1200ms), at(2200ms), at(3200ms)});
  }
  CHECK_FALSE(r->done);
}

TEST_CASE("periodic: a body that overruns skips the missed ticks, counted; never a burst") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 100ms};
  std::vector<tick> ticks;
  auto r = spawn<clock_type>(io, p.run([&](const tick& t) -> asio::awaitable<void> {
    ticks.push_back(t);
    if (t.index == 1) co_await sleep_for(250ms);  // from 100 to 350 ms: ticks 2 and 3 are due by then
  }));
  advance(io, 550ms);
  REQUIRE(ticks.size() == 5);
  CHECK(ticks[2].index == 3);  // the latest due at 350 ms, late by 50 ms; tick 2 skipped
  CHECK(ticks[2].scheduled == at(300ms));
  CHECK(ticks[2].fired == at(350ms));
  CHECK(ticks[2].skipped == 1);
  CHECK(ticks[3].index == 4);  // back on the grid
  CHECK(ticks[3].fired == at(400ms));
  CHECK(ticks[4].fired == at(500ms));
  CHECK(p.skipped() == 1);
  CHECK(p.delivered() == 5);
  CHECK_FALSE(r->done);
}

TEST_CASE("periodic: a stalled executor delivers the latest due tick, late by less than a period") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 100ms};
  std::vector<tick> ticks;
  auto r = spawn<clock_type>(io, p.run([&](const tick& t) { ticks.push_back(t); }));
  tactus_test::settle(io);
  clock_type::advance(1030ms);  // nothing ran for 1.03 s
  tactus_test::settle(io);
  REQUIRE(ticks.size() == 2);
  CHECK(ticks[1].index == 10);
  CHECK(ticks[1].scheduled == at(1s));
  CHECK(ticks[1].fired == at(1030ms));
  CHECK(ticks[1].skipped == 9);
  advance(io, 100ms);
  CHECK(ticks.back().fired == at(1100ms));
  CHECK_FALSE(r->done);
}

TEST_CASE("periodic: cancellation and destruction end run() with operation_aborted") {
  clock_type::reset();
  asio::io_context io;
  SECTION("cancelled while waiting: terminal, or any type where the caller accepts it") {
    for (auto type :
         {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
      INFO("cancellation type " << int(type));
      periodic p{io.get_executor(), 100ms};
      asio::cancellation_signal sig;
      int calls = 0;
      auto r = spawn<clock_type>(io, tactus_test::accepting_every_cancellation(p.run([&] { ++calls; })), sig.slot());
      advance(io, 250ms);
      sig.emit(type);
      tactus_test::settle(io);
      REQUIRE(r->done);
      CHECK(r->code() == asio::error::operation_aborted);
      CHECK(calls == 3);
      advance(io, 1s);
      CHECK(calls == 3);
    }
  }
  SECTION("cancelled while the body awaits: the body's await throws") {
    periodic p{io.get_executor(), 100ms};
    asio::cancellation_signal sig;
    bool body_aborted = false;
    auto r = spawn<clock_type>(io, p.run([&]() -> asio::awaitable<void> {
      try {
        co_await sleep_for(50ms);
      } catch (const std::system_error& e) {
        body_aborted = e.code() == asio::error::operation_aborted;
        throw;
      }
    }),
                               sig.slot());
    advance(io, 120ms);
    sig.emit(asio::cancellation_type::terminal);
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK(body_aborted);
    CHECK(r->code() == asio::error::operation_aborted);
  }
  SECTION("destroyed while run() waits") {
    auto p = std::make_unique<periodic>(io.get_executor(), 100ms);
    int calls = 0;
    auto r = spawn<clock_type>(io, p->run([&] { ++calls; }));
    advance(io, 150ms);
    p.reset();
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::operation_aborted);
    CHECK(calls == 2);
  }
}

TEST_CASE("periodic: a body's exception ends run() with it; bad periods and a second run() are refused") {
  clock_type::reset();
  asio::io_context io;
  periodic p{io.get_executor(), 10ms};
  auto r = spawn<clock_type>(io, p.run([&](const tick& t) {
    if (t.index == 4) throw std::runtime_error("sensor gone");
  }));
  auto second = spawn<clock_type>(io, p.run([] {}));
  advance(io, 1s);
  REQUIRE(r->done);
  CHECK(r->what() == "sensor gone");
  CHECK(r->at == at(40ms));
  REQUIRE(second->done);
  CHECK_THROWS_AS(std::rethrow_exception(second->error), std::logic_error);
  CHECK_THROWS_AS(periodic(io.get_executor(), 0ms), std::invalid_argument);
  CHECK_THROWS_AS(periodic(io.get_executor(), 10ms, -1s), std::invalid_argument);
}
