// SPDX-License-Identifier: BSL-1.0
// The MIDI layer's logic without a port, in virtual time: note tracking, async_note on a
// recording output (exact times, offs before ons, pauses), the clock master's pulses, and notes
// under a clock follower's STOP. What only a real server shows stays in the JACK tests.
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/clock_master.hpp>
#include <tactus/midi/note.hpp>
#include <tactus/midi/note_tracker.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/testing/recording_output.hpp>

#include "support/catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tactus::beats;
using tactus::midi::message;
using recorder = tactus::testing::recording_output<mc>;

static_assert(tactus::midi::note_output<tactus::midi::output>);
static_assert(tactus::midi::note_output<recorder>);
static_assert(!tactus::midi::note_output<int>);

namespace Catch {
template <>
struct StringMaker<mc::time_point> {
  static std::string convert(mc::time_point t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count()) + " us";
  }
};
}  // namespace Catch

namespace {

// A hand-over time: the lookahead is a beat position, rounded to the nearest unit of tactus::beats.
bool near(mc::time_point t, mc::duration want) {
  const auto d = t - mc::time_point(want);
  return d < 1us && d > -1us;
}

// "t=250ms 89 2a 00" lines: what was sent and when, in virtual time.
std::vector<std::string> timeline_of(const recorder& out) {
  std::vector<std::string> lines;
  for (const auto& e : out.events()) {
    const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(e.time.time_since_epoch()).count() / 1000.0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "t=%g ", ms);
    lines.push_back(buf + e.msg.to_string());
  }
  return lines;
}

struct rig {
  asio::io_context io;
  recorder out;
  tactus::basic_metronome<mc> m;
  explicit rig(int subdivision = 1)
      : m(io.get_executor(), tactus::bpm{120}, tactus::meter{4}, tactus::subdivision{subdivision}) {
    mc::reset();
    asio::co_spawn(io, m.run(), tactus::rethrow);
    io.poll();  // tick 0 at t = 0; a beat is 500 ms
  }
  ~rig() {
    m.stop();
    io.restart();
    io.poll();
  }
};

}  // namespace

TEST_CASE("note_tracker counts note-ons per key and end_all ends each once, then the channel") {
  tactus::midi::note_tracker notes;
  notes.track(message::note_on(9, 36, 100));
  notes.track(message::note_on(9, 36, 100));
  notes.track(message::note_off(9, 36));
  notes.track(message::note_on(0, 60, 90));
  notes.track(message::note_on(0, 61, 0));  // velocity 0: a note-off, of a key not sounding
  notes.track(message::clock());            // not a channel message
  CHECK(notes.open_count(9, 36) == 1);
  CHECK(notes.open_count(0, 60) == 1);
  CHECK(notes.open_count(0, 61) == 0);
  CHECK(notes.open_count(16, 0) == 0);  // out of range: nothing, no crash
  CHECK(notes.open_notes() == 2);
  CHECK(notes.channel_used(0));
  CHECK_FALSE(notes.channel_used(1));
  std::vector<std::string> sent;
  notes.end_all([&](const message& m) { sent.push_back(m.to_string()); });
  CHECK(sent == std::vector<std::string>{
                    message::note_off(0, 60).to_string(), message::control_change(0, 123, 0).to_string(),
                    message::control_change(0, 64, 0).to_string(), message::note_off(9, 36).to_string(),
                    message::control_change(9, 123, 0).to_string(), message::control_change(9, 64, 0).to_string()});
  CHECK(notes.open_notes() == 0);
  sent.clear();
  notes.end_all([&](const message& m) { sent.push_back(m.to_string()); });
  CHECK(sent.empty());  // nothing used since
}

TEST_CASE("a length is a length: half a beat on an unsubdivided metronome ends between its ticks") {
  rig r;
  std::optional<std::error_code> done;
  tactus::midi::async_note(r.out, r.m, 0, 60, 100, beats{0.5}, [&](std::error_code ec) { done = ec; });
  tactus::testing::advance(r.io, 2s);
  REQUIRE(done);
  CHECK_FALSE(*done);
  CHECK(timeline_of(r.out) == std::vector<std::string>{"t=0 " + message::note_on(0, 60, 100).to_string(),
                                                       "t=250 " + message::note_off(0, 60).to_string()});
}

TEST_CASE("repeated notes of one key: the off due at a grid point goes out before that point's on") {
  rig r;  // a note a beat long on every beat, the same key
  r.m.on_beat([&](const tactus::basic_tick<mc>&) -> asio::awaitable<void> {
    co_await tactus::midi::async_note(r.out, r.m, 9, 42, 100, beats{1}, asio::use_awaitable);
  });
  tactus::testing::advance(r.io, 1600ms);  // beats 1, 2, 3 play (beat 0 fired before the callback)
  const auto on = message::note_on(9, 42, 100).to_string(), off = message::note_off(9, 42).to_string();
  CHECK(timeline_of(r.out) ==
        std::vector<std::string>{"t=500 " + on, "t=1000 " + off, "t=1000 " + on, "t=1500 " + off, "t=1500 " + on});
  CHECK(r.out.open_count(9, 42) == 1);  // the last, still sounding
}

TEST_CASE("a pause ends sounding notes by default, on_pause::hold keeps them to their position") {
  rig r;
  std::optional<std::error_code> ended, held;
  tactus::midi::async_note(r.out, r.m, 0, 60, 100, beats{2}, [&](std::error_code ec) { ended = ec; });
  tactus::midi::async_note(r.out, r.m, 0, 64, 100, beats{2}, tactus::on_pause::hold,
                           [&](std::error_code ec) { held = ec; });
  tactus::testing::advance(r.io, 300ms);
  r.m.pause();  // a MIDI STOP under a clock follower
  r.io.poll();
  REQUIRE(ended);
  CHECK_FALSE(*ended);  // ended by the pause: not an error
  CHECK(r.out.open_count(0, 60) == 0);
  CHECK(r.out.events().back().time == mc::time_point(300ms));
  CHECK_FALSE(held);
  CHECK(r.out.open_count(0, 64) == 1);
  // A note started while paused ends at once.
  std::optional<std::error_code> late;
  tactus::midi::async_note(r.out, r.m, 0, 67, 100, beats{1}, [&](std::error_code ec) { late = ec; });
  r.io.poll();
  REQUIRE(late);
  CHECK(r.out.open_count(0, 67) == 0);
  tactus::testing::advance(r.io, 5s);
  CHECK_FALSE(held);  // still paused: position 2 is not reached
  r.m.resume();       // from position 10.6: past the note's end, which completes at once
  tactus::testing::advance(r.io, 10ms);
  REQUIRE(held);
  CHECK(r.out.open_count(0, 64) == 0);
  CHECK(r.out.open_notes() == 0);
}

TEST_CASE("a send that fails completes the note with backend_error, and nothing stays open") {
  rig r;
  std::optional<std::error_code> done;
  r.out.fail_sends(true);
  tactus::midi::async_note(r.out, r.m, 0, 60, 100, beats{1}, [&](std::error_code ec) { done = ec; });
  r.io.poll();
  REQUIRE(done);
  CHECK(*done == tactus::midi::io_errc::backend_error);
  CHECK(r.out.open_notes() == 0);
}

// A message_output that only sends now: the clock master's unscheduled path.
struct immediate_only {
  recorder& r;
  void send(const message& m) { r.send(m); }
};
static_assert(!tactus::midi::scheduled_output<immediate_only, mc::time_point>);
static_assert(tactus::midi::scheduled_output<recorder, mc::time_point>);
static_assert(tactus::midi::scheduled_output<tactus::midi::output>);

TEST_CASE("the clock master on the manual clock: START, then a pulse every 24th of a beat, then STOP") {
  mc::reset();
  asio::io_context io;
  recorder rec;
  immediate_only out{rec};
  tactus::midi::basic_clock_master<mc, immediate_only> master{io.get_executor(), out, tactus::bpm{125}};
  bool returned = false;
  asio::co_spawn(io, master.run(), [&](std::exception_ptr e) {
    returned = true;
    if (e) std::rethrow_exception(e);
  });
  tactus::testing::advance(io, 960ms);  // two beats at 125 BPM: pulses 0..48, 20 ms apart
  master.set_tempo(tactus::bpm{250});   // from here on 10 ms apart
  tactus::testing::advance(io, 100ms);
  master.stop();
  io.restart();
  io.poll();
  REQUIRE(returned);
  const auto& ev = rec.events();
  REQUIRE(ev.size() >= 3);
  CHECK(ev.front().msg.type() == tactus::midi::message_type::start);
  CHECK(ev.back().msg.type() == tactus::midi::message_type::stop);
  std::vector<mc::time_point> pulses;
  for (const auto& e : ev)
    if (e.msg.type() == tactus::midi::message_type::clock) pulses.push_back(e.time);
  REQUIRE(pulses.size() == 49 + 10);  // 0..960 ms every 20 ms, then 970..1060 every 10 ms
  for (std::size_t i = 0; i < pulses.size(); ++i)
    CHECK(pulses[i] == mc::time_point(i <= 48 ? 20ms * i : 960ms + 10ms * (i - 48)));
  CHECK(master.pulses_sent() == 59);
}

TEST_CASE("the clock master on a scheduled output: every pulse handed over a pulse ahead for its grid time") {
  mc::reset();
  asio::io_context io;
  recorder out;
  tactus::midi::basic_clock_master<mc, recorder> master{io.get_executor(), out, tactus::bpm{125}};
  STATIC_REQUIRE(decltype(master)::scheduled);
  bool returned = false;
  asio::co_spawn(io, master.run(), [&](std::exception_ptr e) {
    returned = true;
    if (e) std::rethrow_exception(e);
  });
  tactus::testing::advance(io, 960ms);  // pulses 0..48 20 ms apart; pulse 49 (980 ms) handed over
  master.set_tempo(tactus::bpm{250});   // from pulse 49 on: 10 ms apart
  tactus::testing::advance(io, 100ms);  // at 1060 ms the pulse of 1070 ms is handed over
  master.stop();
  io.restart();
  io.poll();
  REQUIRE(returned);
  const auto ev = out.events_by_time();
  CHECK(ev.front().msg.type() == tactus::midi::message_type::start);
  std::vector<mc::time_point> pulses;
  for (const auto& e : ev) {
    if (e.msg.type() != tactus::midi::message_type::clock) continue;
    pulses.push_back(e.time);
    if (e.scheduled) CHECK(e.queued + 20ms >= e.time);  // handed over at most a pulse ahead
  }
  REQUIRE(pulses.size() == 50 + 9);
  for (std::size_t i = 0; i < pulses.size(); ++i) {
    INFO(i);
    CHECK(pulses[i] == mc::time_point(i <= 49 ? 20ms * i : 980ms + 10ms * (i - 49)));
  }
  // STOP at the time of the last pulse handed over, right after it.
  CHECK(ev.back().msg.type() == tactus::midi::message_type::stop);
  CHECK(ev.back().time == mc::time_point(1070ms));
  CHECK(master.pulses_sent() == 59);
  CHECK(master.position() == 59);
  CHECK(out.late() == 0);

  SECTION("CONTINUE comes after the STOP, and the pulses go on from there") {
    out.clear();
    returned = false;
    asio::co_spawn(io, master.run(tactus::midi::clock_master_start::continue_), [&](std::exception_ptr e) {
      returned = true;
      if (e) std::rethrow_exception(e);
    });
    tactus::testing::advance(io, 30ms);  // to 1090 ms
    master.stop();
    io.restart();
    io.poll();
    REQUIRE(returned);
    std::vector<std::string> got;
    for (const auto& e : out.events_by_time())
      got.push_back(
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count()) +
          " " + e.msg.to_string());
    const auto clk = message::clock().to_string();
    CHECK(got == std::vector<std::string>{"1070 " + message::continue_().to_string(), "1070 " + clk, "1080 " + clk,
                                          "1090 " + clk, "1100 " + clk, "1100 " + message::stop().to_string()});
    CHECK(master.position() == 59 + 4);
  }
}

// Both paths: the unscheduled one (immediate_only) and the scheduled one (recorder).
template <class Output>
void master_whose_sends_fail() {
  mc::reset();
  asio::io_context io;
  recorder rec;
  Output out{rec};
  tactus::midi::basic_clock_master<mc, Output> master{io.get_executor(), out, tactus::bpm{125}};
  int reported = 0;  // what reaches the metronome's error handler: nothing, the master ends instead
  master.metronome().set_error_handler([&](std::exception_ptr, const auto&) { ++reported; });
  std::exception_ptr ended;
  bool returned = false;
  asio::co_spawn(io, master.run(), [&](std::exception_ptr e) { returned = true, ended = e; });
  tactus::testing::advance(io, 100ms);  // pulses at 0, 20, ..., 100 ms
  const auto sent = master.pulses_sent();
  CHECK(sent >= 5);
  rec.fail_sends(true);  // the port goes away
  tactus::testing::advance(io, 1s);
  REQUIRE(returned);  // at the first pulse that failed
  REQUIRE(ended);
  CHECK_THROWS_WITH(std::rethrow_exception(ended), Catch::Matchers::ContainsSubstring("send failed"));
  CHECK(reported == 0);
  CHECK(master.pulses_sent() == sent);
  CHECK_FALSE(master.running());

  // The port back: it runs again, from where it stopped.
  rec.fail_sends(false);
  rec.clear();
  returned = false, ended = nullptr;
  asio::co_spawn(io, master.run(tactus::midi::clock_master_start::continue_),
                 [&](std::exception_ptr e) { returned = true, ended = e; });
  tactus::testing::advance(io, 100ms);
  master.stop();
  tactus::testing::advance(io, 100ms);
  REQUIRE(returned);
  CHECK_FALSE(ended);
  CHECK(rec.events().front().msg.type() == tactus::midi::message_type::continue_);
  CHECK(rec.events_by_time().back().msg.type() == tactus::midi::message_type::stop);
}

struct scheduled_passthrough {  // a recorder by reference, scheduled: as `recorder` itself
  recorder& r;
  void send(const message& m) { r.send(m); }
  void send_at(const message& m, mc::time_point t) { r.send_at(m, t); }
  mc::duration lookahead() const noexcept { return r.lookahead(); }
};

TEST_CASE("the clock master: a send that fails ends run() with its exception, once, not a report per pulse") {
  SECTION("sending now") { master_whose_sends_fail<immediate_only>(); }
  SECTION("scheduled ahead") {
    STATIC_REQUIRE(tactus::midi::scheduled_output<scheduled_passthrough, mc::time_point>);
    master_whose_sends_fail<scheduled_passthrough>();
  }
}

TEST_CASE("async_send_at hands a message over a lookahead before its beat position, for its exact time") {
  rig r;  // 120 BPM: a beat is 500 ms; the recorder's lookahead is 5 ms
  std::optional<std::error_code> done;
  tactus::midi::async_send_at(r.out, r.m, beats{3}, message::control_change(0, 7, 100),
                              [&](std::error_code ec) { done = ec; });
  tactus::testing::advance(r.io, 1000ms);
  r.m.set_tempo(tactus::bpm{60});  // position 2 at 1000 ms; position 3 now at 2000 ms
  // The wait is for the position 5 ms before beat 3 at 120 BPM (beat 2.99): at 60 BPM, 10 ms.
  tactus::testing::advance(r.io, 989ms);
  CHECK_FALSE(done);
  tactus::testing::advance(r.io, 2ms);
  REQUIRE(done);
  CHECK_FALSE(*done);
  REQUIRE(r.out.events().size() == 1);
  CHECK(r.out.events()[0].time == mc::time_point(2000ms));
  CHECK(near(r.out.events()[0].queued, 1990ms));
  CHECK(r.out.late() == 0);

  SECTION("cancelled before the hand-over: nothing is sent") {
    asio::cancellation_signal cancel;
    std::optional<std::error_code> aborted;
    tactus::midi::async_send_at(r.out, r.m, beats{6}, message::control_change(0, 7, 1),
                                asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { aborted = ec; }));
    tactus::testing::advance(r.io, 100ms);
    cancel.emit(asio::cancellation_type::terminal);
    r.io.poll();
    REQUIRE(aborted);
    CHECK(*aborted == asio::error::operation_aborted);
    CHECK(r.out.events().size() == 1);
  }
  SECTION("a position already passed goes at once and counts late") {
    std::optional<std::error_code> past;
    tactus::midi::async_send_at(r.out, r.m, beats{1}, message::control_change(0, 7, 2),
                                [&](std::error_code ec) { past = ec; });
    r.io.poll();
    REQUIRE(past);
    CHECK(r.out.late() == 1);
    CHECK(r.out.events().back().time == mc::now());
  }
}

TEST_CASE("async_note_at places the note-on and the note-off at the exact times of their positions") {
  rig r;
  std::optional<std::error_code> done;
  tactus::midi::async_note_at(r.out, r.m, beats{2}, 9, 36, 110, beats{1, 4}, [&](std::error_code ec) { done = ec; });
  tactus::testing::advance(r.io, 2s);
  REQUIRE(done);
  CHECK_FALSE(*done);
  const auto ev = r.out.events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].msg == message::note_on(9, 36, 110));
  CHECK(ev[0].time == mc::time_point(1000ms));
  CHECK(near(ev[0].queued, 995ms));
  CHECK(ev[1].msg == message::note_off(9, 36));
  CHECK(ev[1].time == mc::time_point(1125ms));
  CHECK(near(ev[1].queued, 1120ms));
  CHECK(r.out.open_notes() == 0);

  SECTION("async_note from a tick: the note-off is scheduled for its exact time") {
    r.out.clear();
    std::optional<std::error_code> played;
    tactus::midi::async_note(r.out, r.m, 0, 60, 100, beats{1, 2}, [&](std::error_code ec) { played = ec; });
    tactus::testing::advance(r.io, 300ms);  // from 2000 ms: the note ends at 2250 ms
    REQUIRE(played);
    REQUIRE(r.out.events().size() == 2);
    CHECK_FALSE(r.out.events()[0].scheduled);  // the note-on now
    CHECK(r.out.events()[1].scheduled);
    CHECK(r.out.events()[1].time == mc::time_point(2250ms));
    CHECK(near(r.out.events()[1].queued, 2245ms));
  }
  SECTION("cancelled while sounding: the note-off goes at once") {
    r.out.clear();
    asio::cancellation_signal cancel;
    std::optional<std::error_code> aborted;
    tactus::midi::async_note_at(r.out, r.m, beats{5}, 0, 61, 100, beats{4},
                                asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { aborted = ec; }));
    tactus::testing::advance(r.io, 600ms);  // 2600 ms: the note sounds from 2500 ms
    CHECK(r.out.open_notes() == 1);
    cancel.emit(asio::cancellation_type::terminal);
    r.io.poll();
    REQUIRE(aborted);
    CHECK(*aborted == asio::error::operation_aborted);
    CHECK(r.out.open_notes() == 0);
    CHECK(r.out.events().back().time == mc::time_point(2600ms));
  }
}

TEST_CASE("a clock follower's STOP ends the notes of async_note, and CONTINUE plays on the source's grid") {
  mc::reset();
  asio::io_context io;
  recorder out;
  tactus::basic_metronome<mc> m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};
  tactus::midi::basic_clock_follower<mc> follow{m};
  asio::co_spawn(io, m.run({.paused = true}), tactus::rethrow);
  io.poll();
  std::vector<beats> played;
  m.on_beat([&](const tactus::basic_tick<mc>& t) -> asio::awaitable<void> {
    played.push_back(t.position);
    co_await tactus::midi::async_note(out, m, 9, 36, 100, beats{4}, asio::use_awaitable);  // longer than a beat
  });
  // The source: 120 BPM, a pulse every 500/24 ms.
  const auto pulse = std::chrono::duration_cast<mc::duration>(std::chrono::microseconds(500'000 / 24));
  auto feed = [&](const message& msg) {
    follow.on_message(msg, mc::now());
    io.restart();
    io.poll();
  };
  feed(message::start());
  for (int i = 0; i < 24 * 3; ++i) {
    feed(message::clock());
    tactus::testing::advance(io, pulse);
  }
  // Pulses 0..71 came; the follower plays beat 3 where pulse 72 is due (it schedules ahead).
  CHECK(played == std::vector<beats>{beats{0}, beats{1}, beats{2}, beats{3}});
  CHECK(out.open_count(9, 36) == 4);  // notes four beats long overlap
  feed(message::stop());
  CHECK(out.open_count(9, 36) == 0);  // STOP: every note ended at once, no panic() needed
  CHECK(out.events().back().time == mc::now());
  tactus::testing::advance(io, 2s);
  feed(message::continue_());
  for (int i = 0; i < 24 + 1; ++i) {
    feed(message::clock());
    tactus::testing::advance(io, pulse);
  }
  CHECK(played.back() == beats{4});  // pulses 72..96: beats 3 (again: CONTINUE plays from pulse 72) and 4
  follow.shutdown();
  m.stop();
  io.restart();
  io.poll();
  CHECK(out.open_notes() == 0);
}
