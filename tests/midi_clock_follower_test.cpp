// SPDX-License-Identifier: BSL-1.0
// The clock follower in virtual time: a simulated 24 ppqn source whose pulses are stamped as
// JACK stamps them (at the end of the 128-frame period they fall in, 2.67 ms at 48 kHz) drives
// basic_clock_follower<manual_clock> and its metronome; every timing assertion is exact and
// deterministic.
#include <tactus/midi/clock_follower.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace Catch {
template <>
struct StringMaker<tactus::midi::song_position> {
  static std::string convert(const tactus::midi::song_position& p) {
    return std::to_string(p.bar) + ':' + std::to_string(p.beat) + ':' + std::to_string(p.pulse);
  }
};
}  // namespace Catch

using namespace std::chrono_literals;
using namespace tactus::midi;
using tactus::beats;
using tactus::bpm;
using mc = tactus::testing::manual_clock;
using metronome = tactus::basic_metronome<mc>;
using follower = basic_clock_follower<mc>;
using tp = mc::time_point;
using Catch::Approx;

namespace {

constexpr double period_ns = 128.0 / 48000.0 * 1e9;  // the JACK period being simulated

// A clock source: messages at exact send times, delivered at their JACK-quantized stamps.
class source {
 public:
  struct event {
    tp sent;
    message msg;
    bool lost = false;
  };
  explicit source(asio::io_context& io) : timer_(io) {}

  // `n` pulses at `tempo` from `start` (pulse i at start + i * period, from the anchor); returns
  // the time the next pulse would be sent. `sent` collects the send times.
  tp clock(tp start, bpm tempo, int n) {
    const double p = 60e9 / (tempo.value() * pulses_per_beat);
    for (int i = 0; i < n; ++i) {
      const tp t = start + std::chrono::nanoseconds(std::llround(i * p));
      pulse_event_.push_back(events_.size());
      events_.push_back({t, message::clock()});
      pulse_sent.push_back(t);
    }
    return start + std::chrono::nanoseconds(std::llround(n * p));
  }
  void send(tp t, message m) { events_.push_back({t, m}); }
  // JACK2 under load: the whole cycle holding what was sent at `sent` is delivered twice.
  void replay_cycle(tp sent) { replayed_.push_back(stamp(sent)); }
  // A capture that loses pulse `i` (its send time stays in pulse_sent).
  void lose(std::size_t i) { events_[pulse_event_[i]].lost = true; }

  std::size_t delivered_twice = 0;  // messages delivered a second time

  void play(follower& f) {
    f_ = &f;
    next_ = 0;
    schedule();
  }

  static tp stamp(tp sent) {
    const double ns = double(sent.time_since_epoch().count());
    return tp(std::chrono::nanoseconds(std::llround(std::ceil(ns / period_ns) * period_ns)));
  }

  std::vector<tp> pulse_sent;  // send times of every CLOCK, in order

 private:
  void schedule() {
    if (next_ >= events_.size()) return;
    timer_.expires_at(stamp(events_[next_].sent));
    timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      // Every event of this period, in order, stamped with the period's end.
      const tp now = mc::now();
      const std::size_t first = next_;
      while (next_ < events_.size() && stamp(events_[next_].sent) <= now)
        if (!events_[next_++].lost) f_->on_message(events_[next_ - 1].msg, now);
      if (std::find(replayed_.begin(), replayed_.end(), now) != replayed_.end())
        for (std::size_t i = first; i < next_; ++i)
          if (!events_[i].lost) f_->on_message(events_[i].msg, now), ++delivered_twice;
      schedule();
    });
  }

  asio::basic_waitable_timer<mc> timer_;
  std::vector<event> events_;
  std::vector<std::size_t> pulse_event_;  // index in events_ of each pulse
  std::vector<tp> replayed_;              // stamps of the cycles delivered twice
  std::size_t next_ = 0;
  follower* f_ = nullptr;
};

struct rig {
  asio::io_context io;
  metronome m;
  follower f;
  source src;
  std::vector<metronome::tick_type> seen;
  std::vector<transport_state> changes;
  bool done = false;

  explicit rig(tactus::subdivision s = tactus::subdivision{1}, bpm initial = bpm{120})
      : m(io.get_executor(), initial, tactus::meter{4}, s), f(m, options()), src(io) {
    m.on_tick([this](const metronome::tick_type& b) { seen.push_back(b); });
    f.on_state_change([this](transport_state s) { changes.push_back(s); });
    asio::co_spawn(io, m.run({.paused = true}), [this](std::exception_ptr e) {
      done = true;
      if (e) std::rethrow_exception(e);
    });
    io.poll();
  }
  ~rig() {
    f.shutdown();
    m.stop();
    io.restart();
    io.poll();
  }
  static clock_follower_options options() {
    clock_follower_options o;
    o.transport.estimator.latency = std::chrono::nanoseconds(std::llround(period_ns / 2));
    return o;
  }
  void run_for(mc::duration d) { tactus::testing::advance(io, d); }

  // The beats (tick 0) the metronome fired at or after position `from`.
  std::vector<metronome::tick_type> beats_from(double from) const {
    std::vector<metronome::tick_type> out;
    for (auto& b : seen)
      if (b.is_beat() && b.position >= beats{from}) out.push_back(b);
    return out;
  }
};

double ms(mc::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

TEST_CASE("beats land on the source's beat pulses, beat 0 on the first pulse") {
  mc::reset(tp(1s));
  const double tempo = GENERATE(60.0, 97.3, 133.0, 174.0);
  INFO(tempo << " BPM");
  rig r(tactus::subdivision{4}, bpm{120});  // the metronome's own tempo is only a first guess
  const tp t0 = tp(1s) + 123456ns;          // off the period grid
  r.src.send(t0, message::start());
  const tp end = r.src.clock(t0 + 1ms, bpm{tempo}, 24 * 8 + 1);
  r.src.send(end, message::stop());
  r.src.play(r.f);
  r.run_for(std::chrono::duration_cast<mc::duration>(8s * 60 / tempo + 1s));

  CHECK(r.changes == std::vector<transport_state>{transport_state::playing, transport_state::stopped});
  REQUIRE(r.f.tempo());
  CHECK(r.f.tempo()->value() == Approx(tempo).margin(0.01));
  CHECK(r.f.position() == song_position{2, 0, 1});  // after STOP: where CONTINUE resumes
  // Every sixteenth once, in order, from beat 0 on the first pulse.
  REQUIRE(r.seen.size() == 8 * 4 + 1);
  for (std::size_t i = 0; i < r.seen.size(); ++i) CHECK(r.seen[i].position.count() == Approx(i / 4.0));
  // Beat 0 is anchored on its pulse's own stamp (latency removed) and delivered at once: late by
  // the time the pulse took to reach us, which is all the follower can know of it.
  const auto latency = std::chrono::nanoseconds(std::llround(period_ns / 2));
  CHECK(r.seen[0].scheduled == source::stamp(r.src.pulse_sent[0]) - latency);
  CHECK(r.seen[0].fired >= source::stamp(r.src.pulse_sent[0]));
  // Each beat within one JACK period of its pulse's send time, from beat 1 on (the fit is locked
  // half a beat after START); from beat 2 on, a fraction of it.
  double worst = 0;
  for (auto& b : r.beats_from(1)) {
    const auto pulse = r.src.pulse_sent[std::size_t(std::llround(b.position.count() * 24))];
    const double off = ms(b.scheduled - pulse);
    INFO("beat " << b.position.count() << " off by " << off << " ms");
    CHECK(std::abs(off) < period_ns / 1e6);
    if (b.position.count() >= 2) worst = std::max(worst, std::abs(off));
  }
  CHECK(worst < 0.5);
  CHECK(r.m.late_count() <= 1);  // beat 0 only (see above)
}

TEST_CASE("a tempo change is followed within a beat or two") {
  mc::reset(tp(1s));
  rig r;
  const tp t0 = tp(1s);
  r.src.send(t0, message::start());
  const tp t1 = r.src.clock(t0 + 1ms, bpm{120}, 24 * 6);
  r.src.clock(t1, bpm{140}, 24 * 6 + 1);
  r.src.play(r.f);
  r.run_for(7s);
  REQUIRE(r.f.tempo());
  CHECK(r.f.tempo()->value() == Approx(140).margin(0.05));
  REQUIRE(r.seen.size() == 13);
  for (std::size_t i = 0; i < r.seen.size(); ++i) CHECK(r.seen[i].position.count() == i);
  for (auto& b : r.beats_from(8)) {  // from the second beat at the new tempo on
    const auto pulse = r.src.pulse_sent[std::size_t(b.position.count() * 24)];
    INFO("beat " << b.position.count());
    CHECK(std::abs(ms(b.scheduled - pulse)) < period_ns / 1e6);
  }
}

TEST_CASE("STOP pauses, CONTINUE resumes at the position, Song Position Pointer moves it") {
  mc::reset(tp(1s));
  rig r;
  const bool spp = GENERATE(false, true);
  const tp t0 = tp(1s);
  r.src.send(t0, message::start());
  tp t = r.src.clock(t0 + 1ms, bpm{120}, 24 * 3 + 12);  // stops in the middle of beat 3
  r.src.send(t, message::stop());
  // The source keeps its clock running while stopped (as most hardware does).
  t = r.src.clock(t + 10ms, bpm{120}, 24 * 2);
  if (spp) r.src.send(t, message::song_position(4 * 4 * 2));  // bar 2
  r.src.send(t + 1ms, message::continue_());
  r.src.clock(t + 2ms, bpm{120}, 24 * 3 + 1);
  r.src.play(r.f);
  r.run_for(5s);

  CHECK(r.changes ==
        std::vector<transport_state>{transport_state::playing, transport_state::stopped, transport_state::playing});
  const double resume_at = spp ? 8.0 : 3.5;
  std::vector<double> positions;
  for (auto& b : r.seen) positions.push_back(b.position.count());
  const std::vector<double> expected =
      spp ? std::vector<double>{0, 1, 2, 3, 8, 9, 10, 11} : std::vector<double>{0, 1, 2, 3, 4, 5, 6};
  CHECK(positions == expected);
  // No beat during the stop: the first one after CONTINUE is on the first CLOCK (SPP: a whole
  // beat) or half a beat later (CONTINUE in the middle of beat 3).
  const std::size_t resume_index = 4;
  const auto first_pulse_after = r.src.pulse_sent[24 * 3 + 12 + 24 * 2];
  const auto& b = r.seen[resume_index];
  if (spp) {
    CHECK(b.scheduled == source::stamp(first_pulse_after) - std::chrono::nanoseconds(std::llround(period_ns / 2)));
  } else {
    CHECK(std::abs(ms(b.scheduled - r.src.pulse_sent[24 * 3 + 12 + 24 * 2 + 12])) < period_ns / 1e6);
  }
  CHECK(r.f.position() == song_position{std::int64_t(resume_at + 3) / 4, int(resume_at + 3) % 4, spp ? 0 : 12});
}

TEST_CASE("the clock is lost after two beats without a pulse, and comes back") {
  mc::reset(tp(1s));
  rig r;
  const tp t0 = tp(1s);
  r.src.send(t0, message::start());
  const tp end = r.src.clock(t0 + 1ms, bpm{120}, 24 * 2 + 1);  // beats 0, 1, 2; then nothing
  const tp last_stamp = source::stamp(r.src.pulse_sent.back());
  r.src.clock(end + 3s, bpm{120}, 24 * 2);  // it comes back 3 s later
  std::vector<std::pair<tp, transport_state>> timed;
  r.f.on_state_change([&](transport_state s) { timed.emplace_back(mc::now(), s); });
  r.src.play(r.f);
  r.run_for(end - mc::now() + 2s);

  REQUIRE(timed.size() == 2);
  CHECK(timed[1].second == transport_state::lost);
  CHECK(r.f.state() == transport_state::lost);
  // Lost exactly when two beats at the estimated tempo have passed since the last pulse.
  CHECK(std::abs(ms(timed[1].first - last_stamp) - 1000.0) < 1.0);
  CHECK(r.seen.size() == 3);  // the metronome paused: no beat while lost

  r.run_for(2500ms);
  REQUIRE(timed.size() == 3);
  CHECK(timed[2].second == transport_state::playing);
  // The song goes on from the pulse after the last one (a clock that pauses pauses the music).
  REQUIRE(r.seen.size() >= 5);
  CHECK(r.seen[3].position.count() == 3);
  CHECK(std::abs(ms(r.seen[3].scheduled - r.src.pulse_sent[24 * 2 + 1 + 23])) < period_ns / 1e6);
}

TEST_CASE("pulses bunched by a stalled system are no tempo: no burst of beats, no spin") {
  // A JACK client descheduled for a while delivers the pulses it missed in one cycle, all with
  // one stamp: a fit through them is thousands of BPM (or none). Seen under ThreadSanitizer on
  // a loaded machine, where the follower then handed the metronome a garbage tempo and its grid
  // loop spun for good.
  mc::reset(tp(1s));
  rig r;
  const double p = 60e9 / (120.0 * pulses_per_beat);
  tp t = tp(1s);
  auto deliver = [&](tp at, const message& m, int n = 1) {
    tactus::testing::advance(r.io, at - mc::now());
    for (int i = 0; i < n; ++i) r.f.on_message(m, at);
    r.io.restart();
    r.io.poll();
  };
  deliver(t, message::start());
  for (int i = 0; i < 48; ++i) deliver(t + std::chrono::nanoseconds(std::llround((i + 1) * p)), message::clock());
  t += std::chrono::nanoseconds(std::llround(49 * p));
  deliver(t + 300ms, message::clock(), 48);  // a 300 ms stall, then two beats of pulses at once
  CHECK_FALSE(r.f.tempo());                  // no tempo from that
  for (const auto& b : r.seen) CHECK(b.tempo.value() <= 1000.0);
  // Then the clock runs on: the follower finds 120 BPM again.
  t += 300ms;
  for (int i = 0; i < 96; ++i) deliver(t + std::chrono::nanoseconds(std::llround((i + 1) * p)), message::clock());
  r.run_for(100ms);
  REQUIRE(r.f.tempo());
  CHECK(r.f.tempo()->value() == Approx(120).margin(0.5));
  // 192 pulses are 8 beats: beats were skipped over the stall, never fired in a burst.
  CHECK(r.seen.size() <= 9);
  for (std::size_t i = 1; i < r.seen.size(); ++i) CHECK(r.seen[i].scheduled > r.seen[i - 1].scheduled);
}

TEST_CASE("a source that goes quiet after STOP is stopped, not lost") {
  mc::reset(tp(1s));
  rig r;
  r.src.send(tp(1s), message::start());
  const tp t = r.src.clock(tp(1s) + 1ms, bpm{120}, 24 * 2);
  r.src.send(t, message::stop());
  r.src.play(r.f);
  r.run_for(5s);
  CHECK(r.changes == std::vector<transport_state>{transport_state::playing, transport_state::stopped});
}

TEST_CASE("coroutines await pulses and state changes") {
  mc::reset(tp(1s));
  rig r;
  std::vector<std::int64_t> pulses;
  std::vector<transport_state> states;
  bool aborted = false;
  asio::co_spawn(
      r.io,
      [&]() -> asio::awaitable<void> {
        states.push_back(co_await r.f.async_wait_state(asio::use_awaitable));
        for (int i = 0; i < 3; ++i) pulses.push_back(co_await r.f.async_wait_pulse(asio::use_awaitable));
        states.push_back(co_await r.f.async_wait_state(asio::use_awaitable));
        try {
          co_await r.f.async_wait_pulse(asio::use_awaitable);
        } catch (const std::system_error& e) {
          aborted = e.code() == asio::error::operation_aborted;
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  r.src.send(tp(1s), message::start());
  const tp t = r.src.clock(tp(1s) + 1ms, bpm{120}, 24);
  r.src.send(t, message::stop());
  r.src.play(r.f);
  r.run_for(2s);
  CHECK(states == std::vector<transport_state>{transport_state::playing, transport_state::stopped});
  CHECK(pulses == std::vector<std::int64_t>{0, 1, 2});
  r.f.shutdown();
  r.io.poll();
  CHECK(aborted);
}

// Asio's universal model for the follower's waits: every token, every cancellation, shutdown().
namespace {
struct playing_rig : rig {
  playing_rig() { mc::reset(tp(1s)); }
  void start_clock() {
    src.send(tp(1s), message::start());
    src.clock(tp(1s) + 1ms, bpm{120}, 24);
    src.play(f);
    run_for(2s);
  }
};
}  // namespace

TEST_CASE("the follower's waits work with every completion token and every cancellation") {
  auto drive = [](playing_rig& r) { r.start_clock(); };
  auto before = [](playing_rig& r) { r.run_for(500ms); };  // no message yet
  auto end = [](playing_rig& r) { r.f.shutdown(); };
  SECTION("async_wait_pulse") {
    auto start = [](playing_rig& r, auto&& token) {
      return r.f.async_wait_pulse(std::forward<decltype(token)>(token));
    };
    tactus_test::completes_with_every_token<playing_rig>(start, drive,
                                                         [](playing_rig&, std::int64_t pulse) { CHECK(pulse == 0); });
    tactus_test::aborts_on_every_cancellation<playing_rig>(start, before, drive, end);
  }
  SECTION("async_wait_state") {
    auto start = [](playing_rig& r, auto&& token) {
      return r.f.async_wait_state(std::forward<decltype(token)>(token));
    };
    tactus_test::completes_with_every_token<playing_rig>(
        start, drive, [](playing_rig&, transport_state s) { CHECK(s == transport_state::playing); });
    tactus_test::aborts_on_every_cancellation<playing_rig>(start, before, drive, end);
  }
}

// Repeated and missing pulses: JACK2 delivers a late client's whole cycle twice with its stamp,
// a capture can lose a CLOCK. Each run is compared with the same source delivered cleanly.
namespace {
struct outcome {
  std::vector<metronome::tick_type> seen;
  std::vector<transport_state> changes;
  song_position position;
  std::optional<bpm> tempo;
  std::uint64_t repeats = 0, inferred = 0;
  std::size_t delivered_twice = 0;
  std::vector<tp> pulse_sent;
};

// Runs the source that `script` sets up for `d` of virtual time.
template <class Script>
outcome follow(Script script, mc::duration d) {
  mc::reset(tp(1s));
  rig r;
  script(r.src);
  r.src.play(r.f);
  r.run_for(d);
  return {r.seen,
          r.changes,
          r.f.position(),
          r.f.tempo(),
          r.f.transport().repeats(),
          r.f.transport().inferred(),
          r.src.delivered_twice,
          r.src.pulse_sent};
}

// START in the period of pulse 0, `n` pulses at 120 BPM, STOP in the period of the last pulse.
tp start_play_stop(source& s, int n) {
  const tp t0 = tp(1s);
  s.send(t0 + 900us, message::start());
  s.clock(t0 + 1ms, bpm{120}, n);
  const tp stop = s.pulse_sent.back() + 100us;
  s.send(stop, message::stop());
  return stop;
}

std::vector<double> positions(const std::vector<metronome::tick_type>& seen) {
  std::vector<double> out;
  for (auto& b : seen) out.push_back(b.position.count());
  return out;
}
}  // namespace

TEST_CASE("a cycle delivered twice moves nothing: the beats of a clean run, none twice") {
  auto script = [](bool twice) {
    return [twice](source& s) {
      const tp stop = start_play_stop(s, 24 * 4 + 1);
      REQUIRE(source::stamp(s.pulse_sent[0]) == source::stamp(tp(1s) + 900us));
      REQUIRE(source::stamp(s.pulse_sent.back()) == source::stamp(stop));
      if (!twice) return;
      s.replay_cycle(s.pulse_sent[0]);                                              // [START, CLOCK]
      for (int i : {30, 47, 48, 72}) s.replay_cycle(s.pulse_sent[std::size_t(i)]);  // 48: beat 2's pulse
      s.replay_cycle(stop);                                                         // [CLOCK, STOP]
    };
  };
  const auto clean = follow(script(false), 4s);
  const auto twice = follow(script(true), 4s);
  CHECK(twice.delivered_twice == 2 + 4 + 2);
  CHECK(twice.repeats == twice.delivered_twice);
  CHECK(clean.repeats == 0);
  CHECK(twice.inferred == 0);
  CHECK(twice.changes == clean.changes);
  CHECK(twice.position == clean.position);
  CHECK(twice.position == song_position{1, 0, 1});
  REQUIRE(twice.tempo);
  CHECK(twice.tempo->value() == clean.tempo->value());
  // The same beats at the same times: the follower did nothing with the repeats.
  CHECK(positions(twice.seen) == std::vector<double>{0, 1, 2, 3, 4});
  REQUIRE(twice.seen.size() == clean.seen.size());
  for (std::size_t i = 0; i < twice.seen.size(); ++i) CHECK(twice.seen[i].scheduled == clean.seen[i].scheduled);
}

TEST_CASE("a replayed cycle of three messages, Song Position Pointer, CONTINUE and CLOCK, resumes once") {
  auto script = [](bool twice) {
    return [twice](source& s) {
      const tp stop = start_play_stop(s, 24 * 3 + 12);
      const tp t = s.clock(stop + 10ms, bpm{120}, 24 * 2);   // the clock runs on while stopped
      s.send(t - 200us, message::song_position(4 * 4 * 2));  // bar 2
      s.send(t - 100us, message::continue_());
      s.clock(t, bpm{120}, 24 * 3 + 1);  // and ends without STOP: lost at the end
      REQUIRE(source::stamp(t - 200us) == source::stamp(t));
      if (!twice) return;
      s.replay_cycle(stop);  // [CLOCK, STOP]
      s.replay_cycle(t);     // [SPP, CONTINUE, CLOCK]
    };
  };
  const auto clean = follow(script(false), 6s);
  const auto twice = follow(script(true), 6s);
  CHECK(twice.delivered_twice == 5);
  CHECK(twice.repeats == 5);
  CHECK(twice.changes == clean.changes);
  CHECK(twice.changes == std::vector<transport_state>{transport_state::playing, transport_state::stopped,
                                                      transport_state::playing, transport_state::lost});
  CHECK(positions(twice.seen) == std::vector<double>{0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(twice.position == song_position{2, 3, 0});
  REQUIRE(twice.seen.size() == clean.seen.size());
  for (std::size_t i = 0; i < twice.seen.size(); ++i) CHECK(twice.seen[i].scheduled == clean.seen[i].scheduled);
}

TEST_CASE("a lost CLOCK on a locked fit is counted: the same beats, on time, none skipped") {
  const int lost = GENERATE(30, 47, 48, 60);  // 48 is beat 2's own pulse
  INFO("pulse " << lost << " lost");
  auto script = [](int lose) {
    return [lose](source& s) {
      start_play_stop(s, 24 * 4 + 1);
      if (lose >= 0) s.lose(std::size_t(lose));
    };
  };
  const auto clean = follow(script(-1), 4s);
  const auto gap = follow(script(lost), 4s);
  CHECK(gap.inferred == 1);
  CHECK(gap.repeats == 0);
  CHECK(gap.changes == clean.changes);  // no hold, no lost state
  CHECK(gap.position == clean.position);
  CHECK(positions(gap.seen) == std::vector<double>{0, 1, 2, 3, 4});
  REQUIRE(gap.seen.size() == clean.seen.size());
  for (std::size_t i = 1; i < gap.seen.size(); ++i) {
    const auto& b = gap.seen[i];
    INFO("beat " << i);
    // Where the clean run put it, within a tenth of a millisecond, and within one JACK period of
    // its pulse's send time (lost or not).
    CHECK(std::abs(ms(b.scheduled - clean.seen[i].scheduled)) < 0.1);
    CHECK(std::abs(ms(b.scheduled - gap.pulse_sent[i * 24])) < period_ns / 1e6);
  }
}

TEST_CASE("before the fit is locked a repeat or a loss cannot be told: the position moves a pulse") {
  // Pinned behaviour, not a wish: a repeated CLOCK three pulses after START from silence reads
  // as pulses bunched by a stall (counted), a lost one as a slow first interval (not counted).
  SECTION("a repeated CLOCK is counted: one pulse ahead of the source") {
    const auto r = follow(
        [](source& s) {
          start_play_stop(s, 24 * 4 + 1);
          s.replay_cycle(s.pulse_sent[2]);
        },
        4s);
    CHECK(r.delivered_twice == 1);
    CHECK(r.repeats == 0);
    CHECK(r.position == song_position{1, 0, 2});  // a clean run: 1:0:1
    CHECK(positions(r.seen) == std::vector<double>{0, 1, 2, 3, 4});
    for (std::size_t i = 1; i < r.seen.size(); ++i) {  // each beat on the pulse before its own
      INFO("beat " << i);
      CHECK(std::abs(ms(r.seen[i].scheduled - r.pulse_sent[i * 24 - 1])) < period_ns / 1e6);
    }
  }
  SECTION("a lost CLOCK is not counted: one pulse behind the source") {
    const auto r = follow(
        [](source& s) {
          start_play_stop(s, 24 * 4 + 1);
          s.lose(3);
        },
        4s);
    CHECK(r.inferred == 0);
    CHECK(r.position == song_position{1, 0, 0});
    CHECK(positions(r.seen) == std::vector<double>{0, 1, 2, 3});  // beat 4 is the pulse after the last
    for (std::size_t i = 2; i < r.seen.size(); ++i) {             // each beat on the pulse after its own
      INFO("beat " << i);
      CHECK(std::abs(ms(r.seen[i].scheduled - r.pulse_sent[i * 24 + 1])) < period_ns / 1e6);
    }
  }
}

// Issue 12, item 3: after stop, nothing is followed, printed or timed. A clock message arriving
// after shutdown() (the receive that completed as the program stopped), or the lost-clock
// timer's handler already queued when shutdown() cancelled it, used to re-arm the timer: the
// program printed "clock lost" after its summary and its io_context ran a second longer.
TEST_CASE("after shutdown nothing is followed or reported and no timer is left") {
  mc::reset(tp(1s));
  rig r;
  r.src.send(tp(1s), message::start());
  const tp end = r.src.clock(tp(1s) + 1ms, bpm{120}, 24 * 2 + 1);
  SECTION("a clock message after shutdown") {
    r.src.play(r.f);
    r.run_for(end - mc::now() + 10ms);
    REQUIRE(r.changes == std::vector<transport_state>{transport_state::playing});
    const auto ticks = r.seen.size();
    const auto position = r.f.position();
    r.f.shutdown();
    r.f.on_message(message::clock(), mc::now());
    r.f.on_message(message::start(), mc::now());
    r.f.on_message(message::clock(), mc::now());
    r.run_for(5s);
    CHECK(r.changes == std::vector<transport_state>{transport_state::playing});  // never lost
    CHECK(r.seen.size() == ticks);                                               // no beat
    CHECK(r.f.position() == position);                                           // nothing followed
    r.io.restart();
    CHECK(r.io.poll() == 0);  // no timer left behind
  }
  SECTION("the lost-clock timer's handler queued when shutdown cancels it") {
    r.src.play(r.f);
    // The source went quiet: the metronome holds, only the lost-clock timer is pending.
    r.run_for(end - mc::now() + 400ms);
    REQUIRE(r.changes == std::vector<transport_state>{transport_state::playing});
    const tp lost_at = mc::next_deadline();
    REQUIRE(lost_at > mc::now());
    // A timer due just before it runs first in the poll that dequeues both: it stops the follower
    // after the lost-clock handler was taken off the timer queue (cancel() can no longer reach it).
    asio::basic_waitable_timer<mc> stopper(r.io);
    stopper.expires_at(lost_at - 1ns);
    stopper.async_wait([&](std::error_code) { r.f.shutdown(); });
    mc::advance_to(lost_at);
    r.io.restart();
    r.io.poll();
    r.run_for(5s);
    CHECK(r.changes == std::vector<transport_state>{transport_state::playing});
    r.io.restart();
    CHECK(r.io.poll() == 0);
  }
}
