// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/clock_transport.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cstdint>

// The transport state machine in virtual time: a clean 120 BPM clock (20.833 ms a pulse) and
// the realtime messages of a source, stamped by hand.

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;
using Catch::Approx;
using tactus::midi::clock_transport;
using tactus::midi::message;
using tactus::midi::song_position;
using tactus::midi::transport_state;

constexpr auto pulse_period = std::chrono::nanoseconds(20'833'333);  // 120 BPM

struct rig {
  clock_transport<> tr;
  clk::time_point t{std::chrono::seconds(10)};
  explicit rig(tactus::midi::clock_transport_config c = {}) : tr(c) {}
  void clocks(int n) {
    for (int i = 0; i < n; ++i) {
      tr.on_message(message::clock(), t);
      t += pulse_period;
    }
  }
  void send(const message& m) { tr.on_message(m, t); }
};

}  // namespace

TEST_CASE("clock_transport states and positions", "[midi][clock]") {
  rig r;
  REQUIRE(r.tr.state() == transport_state::stopped);

  SECTION("clock while stopped tracks the tempo, not the position") {
    r.clocks(48);
    CHECK(r.tr.state() == transport_state::stopped);
    CHECK(r.tr.pulse() == 0);
    REQUIRE(r.tr.estimator().tempo());
    CHECK(r.tr.estimator().tempo()->value() == Approx(120).epsilon(1e-6));
  }

  SECTION("start: the first clock is the downbeat 0:0:0") {
    r.clocks(30);
    r.send(message::start());
    CHECK(r.tr.state() == transport_state::playing);
    CHECK(r.tr.pulse() == -1);
    r.clocks(1);
    CHECK(r.tr.pulse() == 0);
    CHECK(r.tr.position() == song_position{0, 0, 0});
    r.clocks(24 * 5 + 7);  // pulse 127: bar 1, beat 1, pulse 7
    CHECK(r.tr.position() == song_position{1, 1, 7});
    // The estimator's grid is in song pulses: beat 6 (pulse 144) is 17 pulses ahead.
    const auto expected = r.t + 16 * pulse_period;
    CHECK(std::chrono::abs(*r.tr.estimator().beat_time(6) - expected) < 10us);
  }

  SECTION("stop holds the position, continue resumes it, clocks between do not move it") {
    r.send(message::start());
    r.clocks(50);  // pulses 0..49
    r.send(message::stop());
    CHECK(r.tr.state() == transport_state::stopped);
    CHECK(r.tr.pulse() == 50);
    r.clocks(20);
    CHECK(r.tr.pulse() == 50);
    r.send(message::continue_());
    r.clocks(1);
    CHECK(r.tr.pulse() == 50);
    CHECK(r.tr.state() == transport_state::playing);
  }

  SECTION("song position pointer while stopped, in sixteenths") {
    r.send(message::song_position(17));  // 17 sixteenths = 102 pulses = bar 1, beat 0, pulse 6
    CHECK(r.tr.pulse() == 102);
    r.send(message::continue_());
    r.clocks(1);
    CHECK(r.tr.position() == song_position{1, 0, 6});
  }

  SECTION("song position can be ignored") {
    tactus::midi::clock_transport_config c;
    c.honour_song_position = false;
    rig q(c);
    q.send(message::song_position(17));
    CHECK(q.tr.pulse() == 0);
  }

  SECTION("other messages are ignored") {
    CHECK_FALSE(r.tr.on_message(message::note_on(0, 60, 100), r.t));
    CHECK_FALSE(r.tr.on_message(message::active_sensing(), r.t));
  }

  SECTION("lost after two beats without clock, back on the next clock") {
    r.send(message::start());
    r.clocks(48);
    const auto last = r.t - pulse_period;
    CHECK(std::chrono::abs(r.tr.timeout() - 1s) < 10us);  // two beats at 120 BPM
    CHECK_FALSE(r.tr.check_lost(last + 900ms));
    CHECK(r.tr.state() == transport_state::playing);
    CHECK(r.tr.check_lost(last + 1100ms));
    CHECK(r.tr.state() == transport_state::lost);
    CHECK(r.tr.playing());
    CHECK_FALSE(r.tr.check_lost(last + 1200ms));  // reported once
    r.t = last + 1500ms;
    r.clocks(1);
    CHECK(r.tr.state() == transport_state::playing);
    CHECK(r.tr.pulse() == 48);  // a pause in the clock is a pause in the music
  }

  SECTION("without a tempo the fixed timeout applies; nothing is lost before a clock") {
    CHECK_FALSE(r.tr.check_lost(r.t + 1h));
    r.clocks(1);
    CHECK(r.tr.timeout() == 1s);
    CHECK(r.tr.check_lost(r.t + 2s));
  }
}

// JACK2 delivers a late client's whole cycle twice, stamps and all; a capture can lose a CLOCK.
TEST_CASE("clock_transport ignores a cycle delivered twice and counts a missing clock", "[midi][clock]") {
  rig r;
  // Delivers `msgs` as one cycle stamped r.t, twice if `twice`.
  auto cycle = [&](std::initializer_list<message> msgs, bool twice) {
    for (int k = 0; k < (twice ? 2 : 1); ++k)
      for (const auto& m : msgs) CHECK(r.tr.on_message(m, r.t));
  };

  SECTION("a repeated CLOCK on a locked fit is not a pulse: position and tempo as without it") {
    rig ref;
    r.send(message::start());
    ref.send(message::start());
    r.clocks(30);
    ref.clocks(30);
    r.t -= pulse_period;
    cycle({message::clock()}, false);  // pulse 29 again, same stamp
    r.t += pulse_period;
    CHECK(r.tr.pulse() == 29);
    CHECK(r.tr.repeats() == 1);
    r.clocks(30);
    ref.clocks(30);
    CHECK(r.tr.pulse() == 59);
    CHECK(r.tr.position() == ref.tr.position());
    CHECK(r.tr.estimator().tempo()->value() == ref.tr.estimator().tempo()->value());
    CHECK(*r.tr.estimator().beat_time(3) == *ref.tr.estimator().beat_time(3));
    CHECK(r.tr.inferred() == 0);
  }

  SECTION("a replayed [START, CLOCK] cycle starts once, from silence too") {
    cycle({message::start(), message::clock()}, true);
    CHECK(r.tr.pulse() == 0);
    CHECK(r.tr.repeats() == 2);
    r.t += pulse_period;
    r.clocks(1);
    CHECK(r.tr.pulse() == 1);
  }

  SECTION("a replayed [CLOCK, STOP] cycle stops at the right pulse") {
    r.send(message::start());
    r.clocks(47);
    cycle({message::clock(), message::stop()}, true);  // pulse 47, then STOP
    CHECK(r.tr.state() == transport_state::stopped);
    CHECK(r.tr.pulse() == 48);
    CHECK(r.tr.repeats() == 2);
    r.t += pulse_period;
    r.send(message::continue_());
    r.clocks(1);
    CHECK(r.tr.pulse() == 48);
  }

  SECTION("a replayed [Song Position Pointer, CONTINUE, CLOCK] cycle resumes once, at the pointer") {
    r.clocks(48);  // the source's clock runs while stopped: the fit is locked
    cycle({message::song_position(16), message::continue_(), message::clock()}, true);
    CHECK(r.tr.pulse() == 96);
    CHECK(r.tr.repeats() == 3);
    r.t += pulse_period;
    r.clocks(24);
    CHECK(r.tr.position() == song_position{1, 1, 0});  // pulse 120
  }

  SECTION("a repeated CLOCK before the fit is locked is counted (it cannot be told from a bunched pulse)") {
    r.send(message::start());
    r.clocks(3);
    r.t -= pulse_period;
    cycle({message::clock()}, false);
    r.t += pulse_period;
    CHECK(r.tr.pulse() == 3);  // one ahead of the source
    CHECK(r.tr.repeats() == 0);
  }

  SECTION("pulses bunched by a short stall count up to the time that passed, no further") {
    r.send(message::start());
    r.clocks(30);                   // pulses 0..29, r.t is where pulse 30 is due
    r.t += 3 * pulse_period + 2ms;  // pulses 30..33 delivered together, late
    cycle({message::clock(), message::clock(), message::clock(), message::clock()}, false);
    CHECK(r.tr.pulse() == 33);
    r.t += pulse_period - 2ms;
    r.clocks(1);
    CHECK(r.tr.pulse() == 34);
  }

  SECTION("a missing CLOCK on an established fit is counted: the position stays right") {
    r.send(message::start());
    r.clocks(30);
    r.t += pulse_period;  // pulse 30 lost
    r.clocks(18);
    CHECK(r.tr.pulse() == 48);
    CHECK(r.tr.position() == song_position{0, 2, 0});
    CHECK(r.tr.inferred() == 1);
    CHECK(r.tr.repeats() == 0);
  }

  SECTION("a missing CLOCK in a young fit is not counted: the position falls one behind") {
    r.send(message::start());
    r.clocks(3);
    r.t += pulse_period;  // pulse 3 lost, three pulses after START from silence
    r.clocks(45);
    CHECK(r.tr.pulse() == 47);
    CHECK(r.tr.inferred() == 0);
  }
}
