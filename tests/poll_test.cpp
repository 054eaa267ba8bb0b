// SPDX-License-Identifier: BSL-1.0
// poll_until in virtual time: when pred is evaluated (from the anchor, never accumulated), true
// as soon as it holds, false exactly at the deadline, an awaitable pred that overruns, cancellation,
// bad arguments.
#include <tactus/poll.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/spawned.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <vector>

using clock_type = tactus::testing::manual_clock;
using namespace std::chrono_literals;
using tactus::testing::advance;
using tactus_test::spawn;

namespace {

clock_type::time_point at(clock_type::duration d) { return clock_type::time_point(d); }

// Records when it is asked; true from the `true_from`-th question on (never when 0).
struct recorder {
  std::vector<clock_type::time_point> asked;
  int true_from = 0;
  auto pred() {
    return [this] {
      asked.push_back(clock_type::now());
      return true_from != 0 && int(asked.size()) >= true_from;
    };
  }
};

asio::awaitable<void> sleep_for(clock_type::duration d) {
  asio::basic_waitable_timer<clock_type> t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

TEST_CASE("poll_until: pred asked at the start and every interval from it, true as soon as it holds") {
  clock_type::reset();
  asio::io_context io;
  recorder rec;
  rec.true_from = 4;
  auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(rec.pred(), 100ms, 1s));
  advance(io, 2s);
  REQUIRE(r->done);
  CHECK_FALSE(r->error);
  CHECK(r->value == true);
  CHECK(r->at == at(300ms));
  CHECK(rec.asked == std::vector{at(0ms), at(100ms), at(200ms), at(300ms)});
}

TEST_CASE("poll_until: false exactly at the deadline, where pred is asked once more") {
  clock_type::reset();
  asio::io_context io;
  SECTION("a deadline between two grid points") {
    recorder rec;
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(rec.pred(), 300ms, 1s));
    advance(io, 999ms);
    CHECK_FALSE(r->done);
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->value == false);
    CHECK(r->at == at(1s));
    CHECK(rec.asked == std::vector{at(0ms), at(300ms), at(600ms), at(900ms), at(1s)});
  }
  SECTION("a deadline on a grid point: asked there once") {
    recorder rec;
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(rec.pred(), 250ms, 1s));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->value == false);
    CHECK(r->at == at(1s));
    CHECK(rec.asked == std::vector{at(0ms), at(250ms), at(500ms), at(750ms), at(1s)});
  }
  SECTION("true at the deadline itself is true") {
    recorder rec;
    rec.true_from = 5;
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(rec.pred(), 300ms, 1s));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->value == true);
    CHECK(r->at == at(1s));
  }
  SECTION("a zero timeout asks once, at once") {
    recorder rec;
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(rec.pred(), 100ms, 0ms));
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK(r->value == false);
    CHECK(rec.asked == std::vector{at(0ms)});
  }
}

TEST_CASE("poll_until: an awaitable pred is awaited; the grid stays anchored to the start, overrun points skipped") {
  clock_type::reset();
  asio::io_context io;
  std::vector<clock_type::time_point> asked;
  SECTION("a pred shorter than the interval: no drift (a sleep(interval) loop would ask at 0, 13, 26 ms ...)") {
    auto pred = [&]() -> asio::awaitable<bool> {
      asked.push_back(clock_type::now());
      co_await sleep_for(3ms);
      co_return asked.size() == 1000;
    };
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(pred, 10ms, 1h));
    advance(io, 20s);
    REQUIRE(r->done);
    CHECK(r->value == true);
    REQUIRE(asked.size() == 1000);
    for (std::size_t k = 0; k < asked.size(); ++k) CHECK(asked[k] == at(10ms * k));
    CHECK(r->at == at(9993ms));
  }
  SECTION("a pred longer than the interval: the next grid point after it") {
    auto pred = [&]() -> asio::awaitable<bool> {
      asked.push_back(clock_type::now());
      co_await sleep_for(250ms);
      co_return false;
    };
    auto r = spawn<clock_type>(io, tactus::poll_until<clock_type>(pred, 100ms, 1s));
    advance(io, 5s);
    REQUIRE(r->done);
    CHECK(r->value == false);
    // 0 (ends 250) -> 300 (ends 550) -> 600 (ends 850) -> 900 (ends 1150, past the deadline: its answer taken)
    CHECK(asked == std::vector{at(0ms), at(300ms), at(600ms), at(900ms)});
    CHECK(r->at == at(1150ms));
  }
}

TEST_CASE(
    "poll_until: cancellation ends it at once with operation_aborted (terminal, or any type the caller accepts)") {
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    INFO("cancellation type " << int(type));
    clock_type::reset();
    asio::io_context io;
    asio::cancellation_signal sig;
    recorder rec;
    auto r = spawn<clock_type>(
        io, tactus_test::accepting_every_cancellation(tactus::poll_until<clock_type>(rec.pred(), 100ms, 1s)),
        sig.slot());
    advance(io, 150ms);
    sig.emit(type);
    tactus_test::settle(io);
    REQUIRE(r->done);
    CHECK(r->code() == asio::error::operation_aborted);
    CHECK(r->at == at(150ms));
    CHECK(rec.asked.size() == 2);
    advance(io, 2s);
    CHECK(rec.asked.size() == 2);  // never asked again
  }
}

TEST_CASE("poll_until: a bad interval or timeout is refused, an exception from pred comes out") {
  clock_type::reset();
  asio::io_context io;
  auto never = [] { return false; };
  auto zero = spawn<clock_type>(io, tactus::poll_until<clock_type>(never, 0ms, 1s));
  auto negative = spawn<clock_type>(io, tactus::poll_until<clock_type>(never, -5ms, 1s));
  auto past = spawn<clock_type>(io, tactus::poll_until<clock_type>(never, 5ms, -1s));
  int calls = 0;
  auto throws = spawn<clock_type>(io, tactus::poll_until<clock_type>(
                                          [&]() -> bool {
                                            if (++calls == 3) throw std::runtime_error("sensor gone");
                                            return false;
                                          },
                                          10ms, 1s));
  advance(io, 2s);
  for (auto* r : {&zero, &negative, &past}) {
    REQUIRE((*r)->done);
    REQUIRE((*r)->error);
    CHECK_THROWS_AS(std::rethrow_exception((*r)->error), std::invalid_argument);
  }
  CHECK_THAT(zero->what(), Catch::Matchers::ContainsSubstring("interval must be positive"));
  CHECK_THAT(past->what(), Catch::Matchers::ContainsSubstring("timeout must not be negative"));
  REQUIRE(throws->done);
  CHECK(throws->what() == "sensor gone");
  CHECK(throws->at == at(20ms));
}

TEST_CASE("poll_until: on the steady clock, pred is never asked early and the answer never comes before the deadline") {
  asio::io_context io;
  using steady = std::chrono::steady_clock;
  std::vector<steady::time_point> asked;
  const auto t0 = steady::now();
  auto r = spawn<steady>(io, tactus::poll_until(
                                 [&] {
                                   asked.push_back(steady::now());
                                   return false;
                                 },
                                 10ms, 55ms));
  io.run();
  REQUIRE(r->done);
  CHECK(r->value == false);
  // 0, 10, ..., 50, then 55; fewer when a late wake-up skipped grid points (a loaded machine).
  REQUIRE(asked.size() >= 2);
  CHECK(asked.size() <= 7);
  CHECK(std::is_sorted(asked.begin(), asked.end()));
  CHECK(asked[1] - t0 >= 10ms);
  CHECK(asked.back() - t0 >= 55ms);
  CHECK(r->at - t0 >= 55ms);
  std::printf("figure: poll_until on the steady clock asked %zu times, answered %.2f ms after the start\n",
              asked.size(), std::chrono::duration<double, std::milli>(r->at - t0).count());
}
