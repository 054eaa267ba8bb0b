// SPDX-License-Identifier: BSL-1.0
// The Link follower in virtual time: a Link session on testing::manual_clock (Link reads the
// virtual clock through link_clock), disabled, so a session of one without any network traffic,
// drives basic_metronome<manual_clock>. Link's own SessionState does the beat/time arithmetic,
// so every tick is checked against where Link puts that beat, exactly (to Link's microsecond).
// Changes a peer would make are committed to the session directly. The process still enters a
// private network namespace first when it can (nothing here should touch a network, and then
// nothing can).
#include <tactus/link/follower.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/private_network.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using mc = tactus::testing::manual_clock;
using session = tactus::link::basic_session<mc>;
using follower = tactus::link::basic_follower<mc>;
using metronome = tactus::basic_metronome<mc>;
using tick = metronome::tick_type;
using tactus::link::from_link_time;
using tactus::link::to_link_time;

namespace {

const mc::time_point origin = mc::time_point(1000s);

// A session of one in virtual time, a metronome and its follower, running.
struct rig {
  explicit rig(tactus::link::follower_options o = {}) {
    m.on_tick([this](const tick& t) { ticks.push_back(t); });
    follow.emplace(link, m, o);
    asio::co_spawn(io, m.run({.paused = true}), [this](std::exception_ptr e) { metronome_ended(e); });
    asio::co_spawn(io, follow->run(), [this](std::exception_ptr e) { follower_ended(e); });
  }
  ~rig() {
    follow->stop();
    m.stop();
    tactus::testing::advance(io, 1ms);
  }
  void metronome_ended(std::exception_ptr e) {
    if (e) error = e;
  }
  void follower_ended(std::exception_ptr e) {
    if (e) error = e;
    follower_done = true;
  }
  // Where Link puts beat `b` of the session now, against quantum 4, on the manual clock.
  mc::time_point link_time_of(beats b, double quantum = 4) const {
    return from_link_time<mc>(link.capture().timeAtBeat(b.count(), quantum));
  }

  // First: the session stamps its state with the clock's time when it is made (a start/stop
  // committed with an older stamp than the state's would be refused).
  struct virtual_start {
    virtual_start() {
      (void)tactus_tests::enter_private_network();  // belt and braces: the session is disabled
      mc::reset(origin);
    }
  } start_;
  asio::io_context io;
  session link{io.get_executor(), bpm{120}, {.enabled = false}};
  metronome m{io.get_executor(), bpm{120}, tactus::meter{4}};
  std::optional<follower> follow;
  std::vector<tick> ticks;
  std::exception_ptr error;
  bool follower_done = false;
};

}  // namespace

TEST_CASE("a Link follower fires each beat at the time Link gives that beat, exactly") {
  rig r;
  tactus::testing::advance(r.io, 5s);
  REQUIRE_FALSE(r.error);
  // 120 BPM: a beat every 500 ms from the first at or after the start, on Link's own beat times.
  REQUIRE(r.ticks.size() >= 10);
  REQUIRE(r.ticks.size() <= 11);
  for (const auto& t : r.ticks) {
    CHECK(t.position.units() % beats::per_beat == 0);
    CHECK(t.scheduled == r.link_time_of(t.position));
  }
  // The bar lines are the session's phase 0 against the quantum.
  for (const auto& t : r.ticks)
    if (t.beat_in_bar == 0) CHECK(r.link.capture().phaseAtTime(to_link_time<mc>(t.scheduled), 4.0) == 0.0);
  CHECK(r.follow->following());
}

TEST_CASE("a tempo a peer commits to the session moves the metronome onto the session's new timeline") {
  rig r;
  tactus::testing::advance(r.io, 2s + 250ms);
  const auto changed_at = mc::now();
  auto st = r.link.capture();
  st.setTempo(90, to_link_time<mc>(changed_at));  // as a peer's change reaches the session
  r.link.commit(st);
  const auto before = r.ticks.size();
  tactus::testing::advance(r.io, 4s);
  REQUIRE_FALSE(r.error);
  CHECK(r.m.tempo() == bpm{90});
  REQUIRE(r.ticks.size() > before + 4);
  // The beat after the change and every one after it: at Link's time for it, within Link's
  // resolution (a beat at 90 BPM is 666666.67 µs: Link rounds times to whole microseconds and
  // beats to micro-beats, 0.67 µs here; ours are nanoseconds).
  for (auto i = before; i < r.ticks.size(); ++i) {
    const auto off = r.ticks[i].scheduled - r.link_time_of(r.ticks[i].position);
    CHECK(std::chrono::abs(off) <= 2us);
  }
  // No beat lost nor repeated across the change.
  for (std::size_t i = 1; i < r.ticks.size(); ++i) CHECK(r.ticks[i].position - r.ticks[i - 1].position == beats{1});
}

TEST_CASE("set_tempo on a Link follower commits the tempo to the session and the metronome follows at once") {
  rig r;
  tactus::testing::advance(r.io, 1s + 100ms);
  const auto pos = r.m.position();
  r.follow->set_tempo(bpm{100});
  CHECK(r.link.tempo() == bpm{100});
  CHECK(r.m.tempo() == bpm{100});
  CHECK(r.m.position() == pos);  // continuous: the same instant, the same beat (virtual time stands)
  const auto before = r.ticks.size();
  tactus::testing::advance(r.io, 3s);
  REQUIRE(r.ticks.size() == before + 5);  // 100 BPM: 600 ms a beat
  for (auto i = before; i < r.ticks.size(); ++i) CHECK(r.ticks[i].scheduled == r.link_time_of(r.ticks[i].position));
}

TEST_CASE("with start_stop a Link follower waits for the session to play and starts at beat 0") {
  rig r({.start_stop = true});
  tactus::testing::advance(r.io, 1s);
  CHECK(r.ticks.empty());
  CHECK_FALSE(r.follow->following());

  SECTION("started here: beat 0 now (alone in the session), stopped here: no more beats") {
    tactus::testing::advance(r.io, 123'456us);
    const auto t0 = mc::now();
    r.follow->start_playing();
    tactus::testing::advance(r.io, 2s);
    CHECK(r.link.capture().isPlaying());
    REQUIRE(r.ticks.size() == 5);
    CHECK(r.ticks[0].position == beats{0});
    CHECK(r.ticks[0].scheduled == t0);
    CHECK(r.ticks[4].scheduled == t0 + 2s);
    r.follow->stop_playing();
    CHECK_FALSE(r.link.capture().isPlaying());
    tactus::testing::advance(r.io, 2s);
    CHECK(r.ticks.size() == 5);
    CHECK(r.m.paused());
  }
  SECTION("started by a peer at a time to come: beat 0 then") {
    const auto t1 = mc::now() + 700ms;
    auto st = r.link.capture();
    st.setIsPlaying(true, to_link_time<mc>(t1));
    r.link.commit(st);
    tactus::testing::advance(r.io, 1s);
    REQUIRE(r.ticks.size() == 1);
    CHECK(r.ticks[0].position == beats{0});
    CHECK(r.ticks[0].scheduled == t1);
    CHECK(r.ticks[0].fired == t1);
  }
}

TEST_CASE("request_beat_at on a Link follower moves the beats, alone at once") {
  rig r;
  tactus::testing::advance(r.io, 1s + 200ms);
  const auto at = mc::now() + 300ms;
  r.follow->request_beat_at(beats{16}, at);
  tactus::testing::advance(r.io, 1s);
  REQUIRE_FALSE(r.ticks.empty());
  bool found = false;
  for (const auto& t : r.ticks)
    if (t.position == beats{16}) {
      found = true;
      CHECK(t.scheduled == at);
    }
  CHECK(found);
  CHECK(r.ticks.back().position == beats{17});
}

TEST_CASE("a Link follower's run returns on stop and on cancellation, the metronome paused") {
  rig r;
  tactus::testing::advance(r.io, 1s);
  SECTION("stop") { r.follow->stop(); }
  SECTION("terminal cancellation") {
    // A second follower on the same metronome, cancelled through its co_spawn slot.
    asio::cancellation_signal sig;  // outlives `other`'s run()
    follower other{r.link, r.m};
    bool done = false;
    asio::co_spawn(r.io, other.run(), asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e) {
                     CHECK_FALSE(e);
                     done = true;
                   }));
    tactus::testing::advance(r.io, 100ms);
    sig.emit(asio::cancellation_type::terminal);
    tactus::testing::advance(r.io, 1ms);
    CHECK(done);
    CHECK(r.m.paused());
    r.follow->stop();
  }
  tactus::testing::advance(r.io, 1ms);
  CHECK(r.follower_done);
  CHECK(r.m.paused());
  const auto n = r.ticks.size();
  tactus::testing::advance(r.io, 2s);
  CHECK(r.ticks.size() == n);
}

TEST_CASE("async_wait_change hears a committed tempo from Link's thread, and is cancellable") {
  (void)tactus_tests::enter_private_network();
  asio::io_context io;
  tactus::link::session link{io.get_executor(), bpm{120}, {.enabled = false}};
  std::optional<tactus::link::session_event> heard;
  std::optional<std::error_code> cancelled_ec;
  asio::cancellation_signal sig;
  link.async_wait_change([&](std::error_code ec, tactus::link::session_event e) {
    CHECK_FALSE(ec);
    heard = e;
  });
  link.async_wait_change(asio::bind_cancellation_slot(
      sig.slot(), [&](std::error_code ec, tactus::link::session_event) { cancelled_ec = ec; }));
  sig.emit(asio::cancellation_type::total);
  auto st = link.capture();
  st.setTempo(140, link.native().clock().micros());
  link.commit(st);
  // Link's thread reports it; wait for it in real time, at most 5 s (a structural bound).
  for (int i = 0; i < 500 && !heard; ++i) {
    io.restart();
    io.poll();
    if (!heard) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(heard);
  CHECK(*heard == tactus::link::session_event::tempo);
  REQUIRE(cancelled_ec);
  CHECK(*cancelled_ec == asio::error::operation_aborted);
}
