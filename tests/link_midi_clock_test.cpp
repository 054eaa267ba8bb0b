// SPDX-License-Identifier: BSL-1.0
// The Link <-> MIDI clock bridges in virtual time: a disabled Link session (a session of one, no
// network) on testing::manual_clock, a clock master sending to a testing::recording_output, and a
// clock follower fed exact pulses. Every pulse is checked against where Link puts its beat, and
// every commit against the source's beats, to Link's resolution (whole microseconds, micro-beats).
#include <tactus/link/midi_clock.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/testing/recording_output.hpp>

#include "support/catch.hpp"
#include "support/private_network.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cmath>
#include <exception>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using mc = tactus::testing::manual_clock;
using tactus::link::from_link_time;
using tactus::link::to_link_time;
namespace midi = tactus::midi;

namespace {

const mc::time_point origin = mc::time_point(1000s);

struct virtual_start {
  virtual_start() {
    (void)tactus_tests::enter_private_network();  // belt and braces: the sessions are disabled
    mc::reset(origin);                            // before the session, which stamps its state with the time
  }
};

std::vector<mc::time_point> times_of(const std::vector<tactus::testing::recording_output<mc>::event>& events,
                                     midi::message_type type) {
  std::vector<mc::time_point> out;
  for (const auto& e : events)
    if (e.msg.type() == type) out.push_back(e.time);
  return out;
}

struct out_rig {
  explicit out_rig(tactus::link::midi_clock_out_options o) : bridge(link, master, o) {
    asio::co_spawn(io, bridge.run(), [this](std::exception_ptr e) {
      error = e;
      done = true;
    });
  }
  ~out_rig() {
    bridge.stop();
    tactus::testing::advance(io, 1ms);
  }
  // Where Link puts beat `b` now (quantum 4).
  mc::time_point link_time_of(double b) const { return from_link_time<mc>(link.capture().timeAtBeat(b, 4.0)); }

  virtual_start start_;
  asio::io_context io;
  tactus::link::basic_session<mc> link{io.get_executor(), bpm{120}, {.enabled = false}};
  tactus::testing::recording_output<mc> out;
  midi::basic_clock_master<mc, tactus::testing::recording_output<mc>> master{io.get_executor(), out, bpm{100}};
  tactus::link::basic_midi_clock_out<mc, tactus::testing::recording_output<mc>> bridge;
  std::exception_ptr error;
  bool done = false;
};

}  // namespace

TEST_CASE("midi_clock_out: START at the session's start, a pulse on each 24th of its beats, STOP at its stop") {
  out_rig r({.quantum = beats{4}, .start_stop = true});
  tactus::testing::advance(r.io, 1s);
  CHECK(r.out.events().empty());  // the session is stopped

  const auto t1 = mc::now() + 300ms;
  auto st = r.link.capture();
  st.setIsPlaying(true, to_link_time<mc>(t1));  // as a peer's start reaches the session
  r.link.commit(st);
  tactus::testing::advance(r.io, 2s);
  REQUIRE(r.out.events().size() > 2);
  CHECK(r.out.events()[0].msg == midi::message::start());
  CHECK(r.out.events()[0].time == t1);
  const auto pulses = times_of(r.out.events(), midi::message_type::clock);
  // 120 BPM: 48 pulses a second, the first at the start.
  REQUIRE(pulses.size() >= 80);
  CHECK(pulses[0] == t1);
  for (std::size_t k = 0; k < pulses.size(); ++k) {
    const auto off = pulses[k] - r.link_time_of(double(k) / 24);
    CHECK(std::chrono::abs(off) <= 2us);  // Link's resolution (see link_follower_test)
  }

  SECTION("a tempo changed in the session: the pulses follow from there") {
    const auto changed = mc::now();
    st = r.link.capture();
    st.setTempo(150, to_link_time<mc>(changed));
    r.link.commit(st);
    const auto before = times_of(r.out.events(), midi::message_type::clock).size();
    tactus::testing::advance(r.io, 1s);
    const auto after = times_of(r.out.events(), midi::message_type::clock);
    REQUIRE(after.size() > before + 50);
    // From the first resync on (50 ms), every pulse is on the session's new grid.
    for (std::size_t k = before; k < after.size(); ++k)
      if (after[k] > changed + 50ms) CHECK(std::chrono::abs(after[k] - r.link_time_of(double(k) / 24)) <= 2us);
    CHECK(r.master.tempo() == bpm{150});
  }
  SECTION("the session stops: STOP, and no pulse after it") {
    st = r.link.capture();
    st.setIsPlaying(false, to_link_time<mc>(mc::now()));
    r.link.commit(st);
    tactus::testing::advance(r.io, 1s);
    REQUIRE(r.out.events().back().msg == midi::message::stop());
    const auto n = r.out.events().size();
    tactus::testing::advance(r.io, 1s);
    CHECK(r.out.events().size() == n);
    CHECK_FALSE(r.bridge.clock_running());
  }
  SECTION("the bridge stops: STOP") {
    r.bridge.stop();
    tactus::testing::advance(r.io, 1ms);
    CHECK(r.done);
    CHECK_FALSE(r.error);
    CHECK(r.out.events().back().msg == midi::message::stop());
  }
}

TEST_CASE("midi_clock_out without start_stop starts the clock on the session's next bar line") {
  out_rig r({.quantum = beats{4}, .start_stop = false});
  tactus::testing::advance(r.io, 3s);
  REQUIRE_FALSE(r.out.events().empty());
  CHECK(r.out.events()[0].msg == midi::message::start());
  const auto pulses = times_of(r.out.events(), midi::message_type::clock);
  REQUIRE_FALSE(pulses.empty());
  // The first pulse is at a bar line of the session: phase 0 against the quantum.
  const auto st = r.link.capture();
  const double first_beat = st.beatAtTime(to_link_time<mc>(pulses[0]), 4.0);
  CHECK(std::fmod(first_beat, 4.0) == Catch::Approx(0.0).margin(1e-6));  // Link's micro-beats
  CHECK(r.out.events()[0].time == pulses[0]);                            // START just before it, at the same instant
}

TEST_CASE("midi_clock_in commits the source's tempo, bar lines, START and STOP to the session") {
  virtual_start start_;
  asio::io_context io;
  tactus::link::basic_session<mc> link{io.get_executor(), bpm{120}, {.enabled = false}};
  tactus::basic_metronome<mc> m{io.get_executor(), bpm{120}, tactus::meter{4}};
  midi::basic_clock_follower<mc> follow{m};
  tactus::link::basic_midi_clock_in<mc> bridge{link, follow, m, {.quantum = beats{4}}};
  std::vector<tactus::basic_tick<mc>> beats_seen;
  m.on_beat([&](const tactus::basic_tick<mc>& t) { beats_seen.push_back(t); });
  std::exception_ptr error;
  asio::co_spawn(io, m.run({.paused = true}), [&](std::exception_ptr e) {
    if (e) error = e;
  });
  asio::co_spawn(io, bridge.run(), [&](std::exception_ptr e) {
    if (e) error = e;
  });
  tactus::testing::advance(io, 100ms);

  // A source at 100 BPM: START, then a CLOCK every 25 ms, exactly, for 4 seconds.
  const auto period = std::chrono::nanoseconds(25'000'000);
  follow.on_message(midi::message::start(), mc::now());
  const auto t0 = mc::now() + 10ms;
  int sent = 0;
  for (; sent < 160; ++sent) {
    tactus::testing::advance(io, t0 + period * sent - mc::now());
    follow.on_message(midi::message::clock(), mc::now());
  }
  tactus::testing::advance(io, 10ms);
  REQUIRE_FALSE(error);
  CHECK(bridge.commits() >= 5);
  CHECK(std::abs(link.tempo().value() - 100.0) < 1e-3);
  CHECK(link.capture().isPlaying());
  // Every beat of the source is a beat of the session in the same place of the bar.
  REQUIRE(beats_seen.size() >= 5);
  const auto st = link.capture();
  for (const auto& t : beats_seen) {
    if (t.scheduled < t0 + 1s) continue;  // the estimator's young fit: tempo settling
    CHECK(st.phaseAtTime(to_link_time<mc>(t.scheduled), 4.0) ==
          Catch::Approx(std::fmod(t.position.count(), 4.0)).margin(2e-6));  // Link's micro-beats, µs
  }

  follow.on_message(midi::message::stop(), mc::now());
  tactus::testing::advance(io, 10ms);
  CHECK_FALSE(link.capture().isPlaying());
  bridge.stop();
  m.stop();
  tactus::testing::advance(io, 1ms);
  CHECK_FALSE(error);
}
