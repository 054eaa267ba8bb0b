// SPDX-License-Identifier: BSL-1.0
// Waits on a metronome in virtual time: exact positions between ticks, relative waits, waits from
// the metronome's own callbacks (which must never stall the grid), every completion token, and
// every kind of cancellation.
#include <tactus/detail/asio_compat.hpp>
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include "support/virtual_metronome.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using tick = metronome::tick_type;
using moment = metronome::moment_type;

namespace {

using tactus_test::poll;

// At 120 BPM from time 0 a beat lasts 500 ms: position p falls at p * 500 ms.
tp at_120(beats p) {
  return tp(std::chrono::nanoseconds((p.units() * 500'000'000 + beats::per_beat / 2) / beats::per_beat));
}

// A metronome at 120 BPM, in beats, running from virtual time 0.
struct running_at_120 {
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  runner r;
  running_at_120() {
    mc::reset();
    r.start(io, m);
  }
};

}  // namespace

TEST_CASE("a position wait completes exactly at its position, between ticks") {
  running_at_120 f;
  auto& io = f.io;
  auto& m = f.m;
  std::vector<moment> got;
  for (auto p : {beats{1, 10}, beats{3, 4}, beats{2, 3}, beats{5}})
    m.async_wait_until(p, [&](std::error_code ec, moment mo) {
      REQUIRE_FALSE(ec);
      got.push_back(mo);
    });
  tactus::testing::advance(io, 3s);
  REQUIRE(got.size() == 4);
  CHECK(got[0].position == beats{1, 10});  // in the order their positions come
  CHECK(got[1].position == beats{2, 3});
  CHECK(got[2].position == beats{3, 4});
  CHECK(got[3].position == beats{5});
  for (const auto& mo : got) {
    CHECK(mo.scheduled == at_120(mo.position));
    CHECK(mo.fired == mo.scheduled);  // virtual time: exactly on time, never early
    CHECK(mo.tempo == bpm{120});
  }
  m.stop();
  poll(io);
  CHECK(f.r.done);
}

TEST_CASE("a position wait follows tempo changes made while it waits") {
  running_at_120 f;
  auto& io = f.io;
  auto& m = f.m;
  std::optional<moment> got;
  m.async_wait_until(beats{3, 2} + beats{4}, [&](std::error_code ec, moment mo) {
    REQUIRE_FALSE(ec);
    got = mo;
  });
  SECTION("a change now, between ticks") {
    tactus::testing::advance(io, 1250ms);  // beat 2.5
    m.set_tempo(bpm{60});                  // 3 beats to go, at 1 s each
    tactus::testing::advance(io, 2999ms);
    CHECK_FALSE(got);
    tactus::testing::advance(io, 1ms);
    REQUIRE(got);
    CHECK(got->fired == tp(4250ms));
    CHECK(got->scheduled == tp(4250ms));
    CHECK(got->tempo == bpm{60});
  }
  SECTION("a change at the next bar line lands exactly on it") {
    m.set_tempo(bpm{240}, tactus::tempo_change::next_bar);  // bar line at beat 4 = 2 s
    tactus::testing::advance(io, 3s);
    REQUIRE(got);
    CHECK(got->scheduled == tp(2s + 375ms));  // 1.5 beats at 250 ms after the bar line
    CHECK(got->fired == got->scheduled);
  }
  SECTION("a relocation past it completes it at once; a pause holds it") {
    m.pause();
    tactus::testing::advance(io, 10s);
    CHECK_FALSE(got);
    m.relocate(tactus::basic_timeline<mc>(bpm{120}, mc::now(), beats{8}));
    m.resume();
    poll(io);
    REQUIRE(got);
    CHECK(got->fired == tp(10s));
  }
  m.stop();
  poll(io);
}

TEST_CASE("relative waits count from the tick being delivered, or from now") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}, tactus::meter{4}, tactus::subdivision{4}};
  std::vector<std::pair<beats, beats>> offs;  // tick position, note-off position
  m.on_tick([&](const tick& t) -> asio::awaitable<void> {
    if (t.index >= 6) co_return;
    const auto mo = co_await m.after(beats{3, 8});  // longer than a tick: the grid must not wait
    offs.emplace_back(t.position, mo.position);
    CHECK(mo.fired == mo.scheduled);
  });
  runner r;
  r.start(io, m);
  tactus::testing::advance(io, 2s);
  CHECK(m.skipped_count() == 0);
  REQUIRE(offs.size() == 6);
  for (const auto& [on, off] : offs) CHECK(off == on + beats{3, 8});
  SECTION("between ticks, from the position now") {
    std::optional<moment> got;
    mc::advance(100ms);
    m.async_wait_after(beats{1, 5}, [&](std::error_code ec, moment mo) {
      REQUIRE_FALSE(ec);
      got = mo;
    });
    tactus::testing::advance(io, 1s);
    REQUIRE(got);
    CHECK(got->scheduled == tp(2100ms + 100ms));
  }
  m.stop();
  poll(io);
}

TEST_CASE("a callback that awaits its own metronome never stalls it") {
  // Before: on a 16th grid for 3 s, a callback awaiting m.next_beat() got 1 callback and 1
  // delivery, then silence.
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}, tactus::meter{4}, tactus::subdivision{4}};
  int ticks = 0, resumed = 0, expected_resumed = 0;
  std::vector<std::string> log;
  SECTION("waiting for the next beat") {
    m.on_tick([&](const tick& t) -> asio::awaitable<void> {
      ++ticks;
      const auto next = co_await m.next_beat();
      CHECK(next.position == beats{t.position.whole() + 1});  // the next beat after this tick, not this one
      ++resumed;
    });
    expected_resumed = 24;  // all but the tick at 3 s, whose next beat is not reached
  }
  SECTION("waiting for the next tick, the next bar and a position") {
    m.on_tick([&](const tick& t) -> asio::awaitable<void> {
      ++ticks;
      const auto n = co_await m.next_tick();
      CHECK(n.index == t.index + 1);
      co_await m.next_bar();
      co_await m.at(t.position + beats{5});
      ++resumed;
    });
    expected_resumed = 5;  // the ticks of beats 0 to 1, whose position + 5 beats is reached by 3 s
  }
  SECTION("a later callback on the same tick still runs, in order, when an earlier one lets go") {
    m.on_tick([&](const tick& t) -> asio::awaitable<void> {
      ++ticks;
      log.push_back("a" + std::to_string(t.index));
      co_await m.next_tick();
      log.push_back("a'" + std::to_string(t.index));
      ++resumed;
    });
    m.on_tick([&](const tick& t) { log.push_back("b" + std::to_string(t.index)); });
    expected_resumed = 24;
  }
  runner r;
  r.start(io, m);
  tactus::testing::advance(io, 3s);
  CHECK(ticks == 25);  // every 16th of 3 s, 0 to 3 s inclusive
  CHECK(m.delivered_count() == 25);
  CHECK(m.skipped_count() == 0);
  CHECK(resumed == expected_resumed);
  if (!log.empty()) {
    REQUIRE(log.size() >= 5);
    CHECK(std::vector<std::string>(log.begin(), log.begin() + 5) ==
          std::vector<std::string>{"a0", "b0", "a1", "b1", "a'0"});
  }
  m.stop();
  poll(io);
  CHECK(r.done);
}

TEST_CASE("a callback awaiting something else is awaited: the overrun policy applies") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  asio::basic_waitable_timer<mc> slow(io);
  m.on_tick([&](const tick&) -> asio::awaitable<void> {
    slow.expires_after(600ms);  // longer than a beat
    co_await slow.async_wait(asio::use_awaitable);
  });
  runner r;
  r.start(io, m);
  tactus::testing::advance(io, 2100ms);
  CHECK(m.skipped_count() > 0);  // it held the grid, as documented
  m.stop();
  poll(io);
  CHECK(r.done);
}

// Every wait of the metronome, each on a fresh metronome at 120 BPM in 8ths (tick 0 delivered at
// time 0), through every completion token Asio users reach for, and every way to cancel it.
namespace {

struct fresh {
  asio::io_context io;
  std::unique_ptr<metronome> m;
  runner r;
  fresh() {
    mc::reset();
    m = std::make_unique<metronome>(io.get_executor(), bpm{120}, tactus::meter{4}, tactus::subdivision{2});
    r.start(io, *m);
  }
  ~fresh() {
    if (m) m->stop();
    poll(io);
  }
};

#define TACTUS_FWD(x) std::forward<decltype(x)>(x)

// Calls test(start, expected) for each wait: start(metronome&, token) initiates it,
// `expected` is the position it completes at.
template <class Test>
void for_each_wait(Test&& test) {
  auto with = [&](const char* name, auto start, beats expected) {
    INFO("wait: " << name);
    test(start, expected);
  };
  with(
      "tick", [](metronome& m, auto&& tok) { return m.async_wait_tick(TACTUS_FWD(tok)); }, beats{1, 2});
  with(
      "beat", [](metronome& m, auto&& tok) { return m.async_wait_beat(TACTUS_FWD(tok)); }, beats{1});
  with(
      "bar", [](metronome& m, auto&& tok) { return m.async_wait_bar(TACTUS_FWD(tok)); }, beats{4});
  with(
      "tick_at 5/4",
      [](metronome& m, auto&& tok) {
        return m.async_wait_tick_at(beats{5, 4}, TACTUS_FWD(tok));
      },
      beats{3, 2});
  with(
      "until 5/4",
      [](metronome& m, auto&& tok) {
        return m.async_wait_until(beats{5, 4}, TACTUS_FWD(tok));
      },
      beats{5, 4});
  with(
      "after 1/3",
      [](metronome& m, auto&& tok) {
        return m.async_wait_after(beats{1, 3}, TACTUS_FWD(tok));
      },
      beats{1, 3});
}

}  // namespace

TEST_CASE("every wait works with every completion token") {
  for_each_wait([](auto start, beats expected) {
    tactus_test::completes_with_every_token<fresh>(
        [&](fresh& f, auto&& token) { return start(*f.m, TACTUS_FWD(token)); },
        [](fresh& f) { tactus::testing::advance(f.io, 3s); },
        [&](fresh&, const auto& v) {
          CHECK(v.position == expected);
          CHECK(v.fired == at_120(expected));  // on time in virtual time, never early
        });
  });
}

TEST_CASE("every wait is aborted by terminal, partial and total cancellation, by stop() and by destruction") {
  auto before_due = [](fresh& f) { tactus::testing::advance(f.io, 100ms); };  // the earliest is at 166 ms
  auto drive = [](fresh& f) { tactus::testing::advance(f.io, 3s); };
  for_each_wait([&](auto start, beats) {
    auto on = [&](fresh& f, auto&& token) { return start(*f.m, TACTUS_FWD(token)); };
    tactus_test::aborts_on_every_cancellation<fresh>(on, before_due, drive, [](fresh& f) { f.m->stop(); });
    tactus_test::aborts_on_every_cancellation<fresh>(on, before_due, drive, [](fresh& f) { f.m.reset(); });
  });
}

TEST_CASE("a position wait on a tick completes before that tick's callbacks") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}, tactus::meter{4}, tactus::subdivision{4}};
  std::vector<std::string> log;
  m.on_tick([&](const tick& t) -> asio::awaitable<void> {
    log.push_back("tick " + std::to_string(t.index));
    if (t.index < 4) {
      co_await m.after(beats{1, 4});  // exactly the next tick
      log.push_back("end " + std::to_string(t.index));
    }
  });
  runner r;
  r.start(io, m);
  tactus::testing::advance(io, 600ms);
  CHECK(log ==
        std::vector<std::string>{"tick 0", "end 0", "tick 1", "end 1", "tick 2", "end 2", "tick 3", "end 3", "tick 4"});
  m.stop();
  poll(io);
}

TEST_CASE("a next-bar tempo change leaves the positions before the bar line on the old tempo") {
  // The grid schedules the bar line's tick while the last beat of the bar plays: a wait for a
  // position inside that beat (a swung 16th, a note's end) must still fall on the old tempo.
  running_at_120 f;
  auto& m = f.m;
  std::optional<moment> swung, after_bar;
  m.set_tempo(bpm{150}, tactus::tempo_change::next_bar);  // at beat 4, t = 2 s; then 400 ms a beat
  tactus::testing::advance(f.io, 1600ms);                 // beat 3.2: the tick at 4 is scheduled
  m.async_wait_until(beats{3.75}, [&](std::error_code, moment mo) { swung = mo; });
  m.async_wait_until(beats{4.5}, [&](std::error_code, moment mo) { after_bar = mo; });
  tactus::testing::advance(f.io, 1s);
  REQUIRE(swung);
  CHECK(swung->scheduled == tp(1875ms));
  CHECK(swung->fired == tp(1875ms));
  REQUIRE(after_bar);
  CHECK(after_bar->scheduled == tp(2200ms));
  CHECK(m.position(tp(1900ms)) == beats{3.8});
  CHECK(m.time_at(beats{3.5}) == tp(1750ms));
}
