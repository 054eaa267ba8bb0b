// SPDX-License-Identifier: BSL-1.0
// The metronome in virtual time: every timing assertion is exact, and an hour runs in a blink.
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/virtual_metronome.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using beat = metronome::tick_type;
using Catch::Approx;

TEST_CASE("the metronome fires on the grid, with positions") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}, tactus::meter{3}, tactus::subdivision{2}};
  std::vector<beat> seen;
  m.on_tick([&](const beat& b) { seen.push_back(b); });
  runner r;
  r.start(io, m);
  REQUIRE(seen.size() == 1);  // tick 0 fires at once
  for (int i = 0; i < 12; ++i) step(io, m);
  REQUIRE(seen.size() == 13);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& b = seen[i];
    CHECK(b.index == static_cast<std::int64_t>(i));
    CHECK(b.scheduled == tp(250ms * i));
    CHECK(b.fired == b.scheduled);
    CHECK(b.tick_in_beat == static_cast<int>(i % 2));
    CHECK(b.beat_in_bar == static_cast<int>((i / 2) % 3));
    CHECK(b.bar == static_cast<std::int64_t>(i / 6));
    CHECK(b.position == beats(i * 0.5));
    CHECK(b.skipped == 0);
  }
  CHECK(seen[6].is_downbeat());
  CHECK_FALSE(seen[7].is_beat());
  CHECK(m.late_count() == 0);
  m.stop();
  io.poll();
  CHECK(r.done);
  CHECK_FALSE(r.error);
}

TEST_CASE("a million beats through tempo changes: every deadline within 1 us of exact") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{97.3}};
  const double tempos[] = {97.3, 120, 133, 174, 60.7, 88.8, 200.1};
  long double exact_ns = 0;  // exact time of the current beat
  long double period_ns = 60e9L / 97.3L;
  double worst_ns = 0;
  std::int64_t count = 0;
  m.on_tick([&](const beat& b) {
    REQUIRE(b.index == count);
    const double err = std::fabs(static_cast<double>(b.scheduled.time_since_epoch().count() - exact_ns));
    worst_ns = std::max(worst_ns, err);
    ++count;
    if (count % 1000 == 0) {  // beat n+1 is the first at the new tempo
      const double t = tempos[(count / 1000) % 7];
      m.set_tempo(bpm{t});
      period_ns = 60e9L / t;
    }
    exact_ns += period_ns;
  });
  runner r;
  r.start(io, m);
  while (count < 1'000'000) step(io, m);
  CHECK(worst_ns <= 1000.0);
  CHECK(m.delivered_count() == 1'000'000);
  CHECK(m.late_count() == 0);
  CHECK(m.skipped_count() == 0);
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("tempo changes") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<beat> seen;
  std::function<void(const beat&)> hook;
  m.on_tick([&](const beat& b) {
    seen.push_back(b);
    if (hook) hook(b);
  });
  runner r;

  SECTION("called during beat n's callback, beat n+1 falls 60/new after beat n") {
    hook = [&](const beat& b) {
      if (b.index == 2) m.set_tempo(bpm{60});
    };
    r.start(io, m);
    for (int i = 0; i < 4; ++i) step(io, m);
    CHECK(seen[2].scheduled == tp(1s));
    CHECK(seen[3].scheduled == tp(2s));
    CHECK(seen[4].scheduled == tp(3s));
    CHECK(seen[3].tempo == bpm{60});
    CHECK(seen[2].tempo == bpm{120});
  }
  SECTION("called between beats, the position stays continuous") {
    r.start(io, m);
    step(io, m);         // beat 1 at 500 ms
    mc::advance(250ms);  // beat position 1.5
    io.poll();
    m.set_tempo(bpm{60});
    CHECK(m.position() == beats{3, 2});  // exact
    // The rest of beat 1 (half a beat) at 60 BPM takes 500 ms.
    CHECK(m.next_deadline() == tp(1250ms));
    step(io, m);
    CHECK(seen.back().scheduled == tp(1250ms));
    CHECK(seen.back().position == beats{2});
    step(io, m);
    CHECK(seen.back().scheduled == tp(2250ms));
  }
  SECTION("applied at the next bar line") {
    hook = [&](const beat& b) {
      if (b.index == 1) m.set_tempo(bpm{60}, tactus::tempo_change::next_bar);
    };
    r.start(io, m);
    for (int i = 0; i < 6; ++i) step(io, m);
    // Beats 2 and 3 keep 120 BPM; bar 1 (beat 4) lands at 2 s on the old grid, then 1 s beats.
    CHECK(seen[2].scheduled == tp(1000ms));
    CHECK(seen[3].scheduled == tp(1500ms));
    CHECK(seen[3].tempo == bpm{120});
    CHECK(seen[4].scheduled == tp(2000ms));
    CHECK(seen[4].tempo == bpm{60});
    CHECK(seen[5].scheduled == tp(3000ms));
    CHECK(seen[6].scheduled == tp(4000ms));
  }
  SECTION("before run() sets the starting tempo") {
    m.set_tempo(bpm{240});
    r.start(io, m);
    step(io, m);
    CHECK(seen[1].scheduled == tp(250ms));
  }
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("overrun policies") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};  // 500 ms beats, skip threshold 125 ms
  std::vector<beat> seen;
  m.on_tick([&](const beat& b) {
    seen.push_back(b);
    if (b.index == 2) mc::advance(800ms);  // a callback that takes 1.6 beats
  });
  runner r;

  SECTION("skip (default): missed grid points are dropped, the next one is on time") {
    r.start(io, m);
    while (seen.size() < 5) step(io, m);
    REQUIRE(seen[2].index == 2);
    CHECK(seen[3].index == 4);  // beat 3 (due 1.5 s, woke 1.8 s) skipped
    CHECK(seen[3].skipped == 1);
    CHECK(seen[3].scheduled == tp(2s));
    CHECK(seen[3].fired == tp(2s));
    CHECK(seen[4].index == 5);
    CHECK(seen[4].skipped == 0);
    CHECK(m.skipped_count() == 1);
    CHECK(m.late_count() == 0);
  }
  SECTION("skip: a small lateness is delivered late, not skipped") {
    m.set_skip_threshold(0.7);  // 350 ms; beat 3 is 300 ms late
    r.start(io, m);
    while (seen.size() < 5) step(io, m);
    CHECK(seen[3].index == 3);
    CHECK(seen[3].lateness() == 300ms);
    CHECK(seen[4].scheduled == tp(2s));
    CHECK(m.late_count() == 1);
    CHECK(m.skipped_count() == 0);
  }
  SECTION("catch-up: every missed grid point is delivered, then back on the grid") {
    m.set_overrun_policy(tactus::overrun_policy::catch_up);
    r.start(io, m);
    while (seen.size() < 5) step(io, m);
    CHECK(seen[3].index == 3);
    CHECK(seen[3].scheduled == tp(1500ms));
    CHECK(seen[3].fired == tp(1800ms));
    CHECK(seen[4].scheduled == tp(2000ms));
    CHECK(seen[4].fired == tp(2000ms));
    CHECK(m.late_count() == 1);
    CHECK(m.skipped_count() == 0);
  }
  SECTION("catch-up after a long stall delivers a burst in order") {
    m.set_overrun_policy(tactus::overrun_policy::catch_up);
    r.start(io, m);
    step(io, m);
    mc::advance(2100ms);  // a stalled executor: beats 2..5 all due
    io.restart();
    io.poll();
    REQUIRE(seen.size() >= 6);
    for (int i = 2; i <= 5; ++i) CHECK(seen[i].scheduled == tp(500ms * i));
  }
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("a callback that throws does not stop the metronome") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<std::int64_t> first, second;
  std::vector<std::string> errors;
  m.on_tick([&](const beat& b) {
    first.push_back(b.index);
    if (b.index == 1) throw std::runtime_error("boom");
  });
  m.on_tick([&](const beat& b) { second.push_back(b.index); });
  m.set_error_handler([&](std::exception_ptr e, const beat& b) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      errors.push_back(std::to_string(b.index) + ":" + x.what());
    }
  });
  runner r;
  r.start(io, m);
  step(io, m);
  step(io, m);
  CHECK(errors == std::vector<std::string>{"1:boom"});
  CHECK(first == std::vector<std::int64_t>{0, 1, 2});
  CHECK(second == std::vector<std::int64_t>{0, 1, 2});
  m.stop();
  io.poll();
  CHECK(r.done);
  CHECK_FALSE(r.error);
}

TEST_CASE("stop and cancellation end run() cleanly") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  int beats_seen = 0;
  m.on_tick([&](const beat&) { ++beats_seen; });
  runner r;

  SECTION("stop() from a callback: no further beat") {
    m.on_tick([&](const beat& b) {
      if (b.index == 2) m.stop();
    });
    r.start(io, m);
    step(io, m);
    step(io, m);
    CHECK(r.done);
    CHECK_FALSE(r.error);
    mc::advance(10s);
    io.restart();
    io.poll();
    CHECK(beats_seen == 3);
    CHECK_FALSE(m.running());
  }
  SECTION("stop() between beats aborts pending waits") {
    r.start(io, m);
    std::optional<std::error_code> wait_result;
    m.async_wait_bar([&](std::error_code ec, beat) { wait_result = ec; });
    step(io, m);
    m.stop();
    io.poll();
    CHECK(r.done);
    REQUIRE(wait_result);
    CHECK(*wait_result == asio::error::operation_aborted);
  }
  SECTION("terminal cancellation through the co_spawn slot") {
    r.start_cancellable(io, m);
    step(io, m);
    r.cancel.emit(asio::cancellation_type::terminal);
    io.poll();
    CHECK(r.done);
    CHECK_FALSE(r.error);
    CHECK(beats_seen == 2);
  }
  SECTION("it can run again after stopping") {
    r.start(io, m);
    m.stop();
    io.poll();
    REQUIRE(r.done);
    runner again;
    again.start(io, m);
    CHECK(beats_seen == 2);
    m.stop();
    io.poll();
    CHECK(again.done);
  }
  SECTION("run() twice at once is an error") {
    r.start(io, m);
    runner twice;
    twice.start(io, m);
    CHECK(twice.done);
    CHECK(twice.error);
    m.stop();
    io.poll();
  }
}

TEST_CASE("awaitable callbacks are awaited, in registration order") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<std::string> log;
  m.on_tick([&](const beat& b) -> asio::awaitable<void> {
    log.push_back("a" + std::to_string(b.index) + " start");
    asio::basic_waitable_timer<mc> t(co_await asio::this_coro::executor);
    t.expires_after(100ms);
    co_await t.async_wait(asio::use_awaitable);
    log.push_back("a" + std::to_string(b.index) + " end");
  });
  m.on_tick([&](const beat& b) { log.push_back("b" + std::to_string(b.index)); });
  runner r;
  r.start(io, m);
  tactus::testing::advance(io, 600ms);
  CHECK(log == std::vector<std::string>{"a0 start", "a0 end", "b0", "a1 start", "a1 end", "b1"});
  m.stop();
  tactus::testing::advance(io, 200ms);
  CHECK(r.done);
}

TEST_CASE("stop() and cancellation reach a callback that is awaiting") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<std::string> log;
  std::vector<std::string> errors;
  m.set_error_handler([&](std::exception_ptr, const beat&) { errors.push_back("reported"); });
  // A callback that awaits a long timer (ten seconds of virtual time) on every beat.
  m.on_tick([&](const beat& b) -> asio::awaitable<void> {
    log.push_back("start " + std::to_string(b.index));
    asio::basic_waitable_timer<mc> t(co_await asio::this_coro::executor);
    t.expires_after(10s);
    try {
      co_await t.async_wait(asio::use_awaitable);
      log.push_back("end " + std::to_string(b.index));
    } catch (const std::system_error& e) {
      log.push_back(e.code() == asio::error::operation_aborted ? "aborted" : "error");
      throw;
    }
  });
  m.on_tick([&](const beat& b) { log.push_back("after " + std::to_string(b.index)); });

  SECTION("stop(): the callback's wait completes with operation_aborted at once, nothing else runs") {
    runner r;
    r.start(io, m);
    REQUIRE(log == std::vector<std::string>{"start 0"});
    tactus::testing::advance(io, 1s);  // well inside the ten seconds
    m.stop();
    io.restart();
    io.poll();
    CHECK(r.done);
    CHECK_FALSE(r.error);
    CHECK(log == std::vector<std::string>{"start 0", "aborted"});
    CHECK(errors.empty());  // the abort stop() caused is not an error
    CHECK(mc::now() == tp{} + 1s);
  }
  SECTION("terminal cancellation of run(): the same") {
    runner r;
    r.start_cancellable(io, m);
    tactus::testing::advance(io, 1s);
    r.cancel.emit(asio::cancellation_type::terminal);
    io.poll();
    CHECK(r.done);
    CHECK_FALSE(r.error);
    CHECK(log == std::vector<std::string>{"start 0", "aborted"});
    CHECK(errors.empty());
  }
  SECTION("after a stop, run() starts afresh and awaits callbacks again") {
    runner r;
    r.start(io, m);
    m.stop();
    io.poll();
    REQUIRE(r.done);
    log.clear();
    runner again;
    again.start(io, m);
    tactus::testing::advance(io, 10s);
    // The ten-second callback overran 19 grid points: skipped (the default policy); the next
    // one is on the grid at 10 s, beat index 20.
    CHECK(log == std::vector<std::string>{"start 0", "end 0", "after 0", "start 20"});
    m.stop();
    io.poll();
    CHECK(again.done);
  }
}

TEST_CASE("stop() from a callback: the callbacks after it on that grid point are not called") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<std::string> log;
  m.on_tick([&](const beat& b) {
    log.push_back("first " + std::to_string(b.index));
    if (b.index == 1) m.stop();
  });
  m.on_tick([&](const beat& b) { log.push_back("second " + std::to_string(b.index)); });
  std::optional<std::error_code> waited;
  runner r;
  r.start(io, m);
  m.async_wait_beat([&](std::error_code ec, beat) { waited = ec; });
  step(io, m);
  io.poll();
  CHECK(r.done);
  CHECK(log == std::vector<std::string>{"first 0", "second 0", "first 1"});
  REQUIRE(waited);  // a wait for the next beat, registered during beat 0, hears beat 1
  CHECK_FALSE(*waited);
}

TEST_CASE("any coroutine can await the grid") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};  // 4/4
  runner r;
  r.start(io, m);  // beat 0 fired at t = 0

  SECTION("next beat, next bar, a given position, with use_awaitable") {
    std::vector<std::pair<std::string, beat>> got;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          got.emplace_back("beat", co_await m.next_beat());
          got.emplace_back("bar", co_await m.next_bar());
          got.emplace_back("at", co_await m.tick_at(beats{6}));
          got.emplace_back("past", co_await m.tick_at(beats{1}));
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.poll();
    for (int i = 0; i < 8; ++i) step(io, m);
    REQUIRE(got.size() == 4);
    CHECK(got[0].second.position == beats{1});
    CHECK(got[1].second.position == beats{4});
    CHECK(got[1].second.is_downbeat());
    CHECK(got[2].second.position == beats{6});
    CHECK(got[3].second.position == beats{7});  // the past resolves at the next grid point
  }
  SECTION("plain callback handlers resume on the executor, after the beat's callbacks") {
    std::vector<std::string> log;
    m.on_tick([&](const beat& b) { log.push_back("cb" + std::to_string(b.index)); });
    m.async_wait_beat([&](std::error_code ec, beat b) {
      CHECK_FALSE(ec);
      log.push_back("wait" + std::to_string(b.index));
    });
    CHECK(log.empty());
    step(io, m);
    CHECK(log == std::vector<std::string>{"cb1", "wait1"});
  }
  SECTION("a wait is cancelled through its slot") {
    asio::cancellation_signal sig;
    std::optional<std::error_code> result;
    m.async_wait_bar(asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, beat) { result = ec; }));
    step(io, m);
    CHECK_FALSE(result);
    sig.emit(asio::cancellation_type::terminal);
    io.poll();
    REQUIRE(result);
    CHECK(*result == asio::error::operation_aborted);
    for (int i = 0; i < 4; ++i) step(io, m);  // the bar comes; nothing more happens
  }
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("quantized start") {
  mc::reset(tp(300ms));
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<beat> seen;
  m.on_tick([&](const beat& b) { seen.push_back(b); });
  runner r;
  SECTION("on the next bar of a grid from the clock's epoch") {
    r.start(io, m, {.quantum = beats{4}});
    CHECK(seen.empty());
    CHECK(m.next_deadline() == tp(2s));
    step(io, m);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].index == 0);
    CHECK(seen[0].scheduled == tp(2s));
  }
  SECTION("relative to an origin") {
    r.start(io, m, {.quantum = beats{1}, .origin = tp(1100ms)});
    CHECK(m.next_deadline() == tp(600ms));  // 1100 - 500
  }
  SECTION("exactly on a grid point starts there") {
    r.start(io, m, {.quantum = beats{0.5}, .origin = tp(50ms)});
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].scheduled == tp(300ms));
  }
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("external sources: sync, relocate, pause and resume") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  std::vector<beat> seen;
  m.on_tick([&](const beat& b) { seen.push_back(b); });
  runner r;

  SECTION("start paused, resume at a position") {
    r.start(io, m, {.paused = true});
    CHECK(seen.empty());
    CHECK(m.next_deadline() == tp::max());
    mc::advance(1s);
    io.poll();
    CHECK(seen.empty());
    m.relocate(metronome::timeline_type(bpm{100}, mc::now(), beats{8}));
    m.resume();
    io.poll();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].position == beats{8});
    CHECK(seen[0].bar == 2);
    step(io, m);
    CHECK(seen[1].scheduled == tp(1600ms));
  }
  SECTION("relocate from a moment in the past delivers that grid point at once") {
    r.start(io, m, {.paused = true});
    mc::advance(1s);
    const auto pulse_time = mc::now() - 3ms;  // the pulse that caused the jump arrived 3 ms ago
    m.relocate(metronome::timeline_type(bpm{120}, pulse_time, beats{0}), pulse_time);
    m.resume(pulse_time);
    io.poll();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].position == beats{0});
    CHECK(seen[0].scheduled == pulse_time);
    CHECK(seen[0].lateness() == 3ms);
    step(io, m);
    CHECK(seen[1].scheduled == pulse_time + 500ms);
  }
  SECTION("sync adjusts phase and tempo without skipping or repeating a grid point") {
    r.start(io, m);
    step(io, m);  // beat 1 at 500 ms
    // The source says beat 1 really was at 510 ms and the tempo is 119.
    m.sync(metronome::timeline_type(bpm{119}, tp(510ms), beats{1}));
    step(io, m);
    CHECK(seen.back().position == beats{2});
    CHECK(seen.back().scheduled ==
          tp(510ms) + std::chrono::round<mc::duration>(std::chrono::duration<double>(60.0 / 119)));
  }
  SECTION("pause stops delivery, resume continues from now") {
    r.start(io, m);
    step(io, m);
    m.pause();
    mc::advance(2s);
    io.poll();
    CHECK(seen.size() == 2);
    m.resume();
    io.poll();
    step(io, m);
    CHECK(seen.back().scheduled == tp(3000ms));
  }
  m.stop();
  io.poll();
  CHECK(r.done);
}

TEST_CASE("callbacks can be added and removed while running") {
  mc::reset();
  asio::io_context io;
  metronome m{io.get_executor(), bpm{120}};
  int late_calls = 0;
  metronome::callback_id id{};
  auto first = m.on_tick([&](const beat& b) {
    if (b.index == 1) id = m.on_tick([&](const beat&) { ++late_calls; });
  });
  runner r;
  r.start(io, m);
  step(io, m);
  step(io, m);
  CHECK(late_calls == 2);  // registered during beat 1: called from beat 1 on
  m.remove(id);
  m.remove(first);
  step(io, m);
  CHECK(late_calls == 2);
  m.stop();
  io.poll();
}
