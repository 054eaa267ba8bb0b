// SPDX-License-Identifier: BSL-1.0
// Notes measured in beats, in virtual time: a real RtMidi output port (JACK fixture) driven by a
// metronome on the manual clock, so every note-off's moment is exact.
#include <tactus/midi/note.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <optional>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tactus::beats;

TEST_CASE("a note lasts its length in beats on the metronome's grid") {
  mc::reset();
  asio::io_context io;
  tactus::midi::output out(io.get_executor(), tactus::midi::virtual_port,
                           tactus::midi::output_options{.backend = tactus::midi::api::jack, .port_name = "note-test"});
  tactus::basic_metronome<mc> m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}, tactus::subdivision{4}};
  asio::co_spawn(io, m.run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.poll();  // tick 0 at t = 0; a tick is 125 ms
  std::optional<std::error_code> done;

  SECTION("half a beat from a grid point ends two ticks later, exactly") {
    tactus::midi::async_note(out, m, 9, 36, 100, beats{0.5}, [&](std::error_code ec) { done = ec; });
    CHECK(out.open_count(9, 36) == 1);
    tactus::testing::advance(io, 249ms);
    CHECK(out.open_count(9, 36) == 1);
    CHECK_FALSE(done);
    tactus::testing::advance(io, 1ms);
    CHECK(out.open_count(9, 36) == 0);
    REQUIRE(done);
    CHECK_FALSE(*done);
  }
  SECTION("cancelled, the note-off is still sent") {
    asio::cancellation_signal sig;
    tactus::midi::async_note(out, m, 0, 60, 90, beats{4},
                             asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec) { done = ec; }));
    tactus::testing::advance(io, 300ms);
    CHECK(out.open_count(0, 60) == 1);
    sig.emit(asio::cancellation_type::terminal);
    io.poll();
    CHECK(out.open_count(0, 60) == 0);
    REQUIRE(done);
    CHECK(*done == asio::error::operation_aborted);
  }
  SECTION("the metronome stopping ends the note") {
    tactus::midi::async_note(out, m, 0, 61, 90, beats{8}, [&](std::error_code ec) { done = ec; });
    tactus::testing::advance(io, 100ms);
    m.stop();
    io.poll();
    CHECK(out.open_count(0, 61) == 0);
    REQUIRE(done);
    CHECK(*done == asio::error::operation_aborted);
  }
  SECTION("bad lengths are refused at once") {
    CHECK_THROWS_AS(tactus::midi::async_note(out, m, 0, 60, 90, beats{0}, [](std::error_code) {}),
                    std::invalid_argument);
    CHECK(out.open_count(0, 60) == 0);
  }
  m.stop();
  io.poll();
}

namespace {
// A 16th-note metronome on the manual clock and a virtual JACK output, fresh for each case.
struct note_rig {
  asio::io_context io;
  tactus::midi::output out{io.get_executor(), tactus::midi::virtual_port,
                           tactus::midi::output_options{.backend = tactus::midi::api::jack, .port_name = "note-rig"}};
  std::unique_ptr<tactus::basic_metronome<mc>> m;
  note_rig() {
    mc::reset();
    m = std::make_unique<tactus::basic_metronome<mc>>(io.get_executor(), tactus::bpm{120}, tactus::meter{4},
                                                      tactus::subdivision{4});
    asio::co_spawn(io, m->run(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.poll();
  }
  ~note_rig() {
    if (m) m->stop();
    tactus_test::poll(io);
  }
};
}  // namespace

TEST_CASE("async_note works with every completion token and every cancellation, and the note always ends") {
  auto start = [](note_rig& r, auto&& token) {
    return tactus::midi::async_note(r.out, *r.m, 9, 38, 100, beats{1, 2}, std::forward<decltype(token)>(token));
  };
  auto drive = [](note_rig& r) { tactus::testing::advance(r.io, 1s); };
  tactus_test::completes_with_every_token<note_rig>(start, drive, [](note_rig& r) {
    CHECK(mc::now() >= mc::time_point(250ms));
    CHECK(r.out.open_count(9, 38) == 0);
  });
  tactus_test::aborts_on_every_cancellation<note_rig>(
      start, [](note_rig& r) { tactus::testing::advance(r.io, 100ms); }, drive, [](note_rig& r) { r.m->stop(); });
}

TEST_CASE("notes awaited in the metronome's own callback overlap as written, and the grid never stalls") {
  // note.hpp's own example: before, awaiting a note inside on_tick stalled the metronome (on a
  // 16th grid for 3 s: 1 callback, 1 delivery).
  note_rig r;
  int played = 0, ended = 0;
  std::vector<std::int64_t> open_at_tick;
  r.m->on_tick([&](const tactus::basic_tick<mc>& t) -> asio::awaitable<void> {
    open_at_tick.push_back(static_cast<std::int64_t>(r.out.open_count(9, 36)));
    ++played;
    co_await tactus::midi::async_note(r.out, *r.m, 9, 36, 110, beats{1, 2}, asio::use_awaitable);  // two ticks
    ++ended;
    CHECK(mc::now() == r.m->time_at(t.position + beats{1, 2}));  // exactly half a beat later
  });
  tactus::testing::advance(r.io, 3s);
  CHECK(played == 24);  // ticks 1..24 of 3 s (tick 0 fired before the callback existed)
  CHECK(r.m->skipped_count() == 0);
  CHECK(ended == 22);  // all but the two still sounding at 3 s
  REQUIRE(open_at_tick.size() == 24);
  CHECK(open_at_tick[0] == 0);
  CHECK(open_at_tick[1] == 1);  // the previous note still sounds: notes overlap
  // From then on exactly one sounds when a tick's callback runs: the note that ends on that tick
  // has ended before it (offs before ons), the one from the tick before still sounds.
  for (std::size_t i = 2; i < open_at_tick.size(); ++i) CHECK(open_at_tick[i] == 1);
  r.m->stop();
  tactus_test::poll(r.io);
  CHECK(r.out.open_count(9, 36) == 0);  // the two left sounding were ended by the stop
}

TEST_CASE("a note ending on a tick ends before that tick plays the same key again") {
  // Repeated notes a tick long: were the note-off sent after the tick's callbacks, each new note
  // would be cut at once by the old note's off.
  note_rig r;
  std::vector<int> open_when_played;
  r.m->on_tick([&](const tactus::basic_tick<mc>&) -> asio::awaitable<void> {
    open_when_played.push_back(r.out.open_count(9, 42));
    co_await tactus::midi::async_note(r.out, *r.m, 9, 42, 100, beats{1, 4}, asio::use_awaitable);
  });
  tactus::testing::advance(r.io, 2s);
  REQUIRE(open_when_played.size() == 16);
  for (int n : open_when_played) CHECK(n == 0);
  CHECK(r.out.open_count(9, 42) == 1);  // the last one, still sounding
}
