// SPDX-License-Identifier: BSL-1.0
// Two real Link peers in one process, on the loopback of a private network namespace (never on
// the machine's network: tests/support/private_network.hpp; skipped, saying why, where the
// namespace cannot be made). Real time, so only structural facts are asserted: a tempo and a
// start/stop reach the other peer (within a generous bound), and the beats of metronomes
// following the two peers fall within 1 ms of each other on loopback. The offsets are printed as
// `figure:` lines.
#include <tactus/link/follower.hpp>

#include "support/catch.hpp"
#include "support/private_network.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;
using tactus::bpm;
using clk = std::chrono::steady_clock;

namespace {

// Runs `io` until `done()` or `limit` (real time); says whether done() became true.
bool run_until(asio::io_context& io, std::function<bool()> done, clk::duration limit = 5s) {
  const auto end = clk::now() + limit;
  while (!done() && clk::now() < end) {
    io.restart();
    io.run_for(10ms);
  }
  return done();
}

struct peers {
  explicit peers(tactus::link::session_options o = {})
      : a(io.get_executor(), bpm{120}, o), b(io.get_executor(), bpm{90}, o) {}
  bool connect() {
    return run_until(io, [&] { return a.peers() == 1 && b.peers() == 1; });
  }
  asio::io_context io;
  tactus::link::session a;
  tactus::link::session b;
};

// The same tempo, as Link reports it at two peers: a peer's tempo reaches the other through their
// clocks' measured relation (Link's ghost time), so it differs in the fifth decimal (133 arrives
// as 132.99995). 0.01 BPM is far below what a musician hears and far above that.
bool same_tempo(bpm x, bpm y) { return std::abs(x.value() - y.value()) < 0.01; }

void set_tempo(tactus::link::session& s, double tempo) {
  auto st = s.capture();
  st.setTempo(tempo, tactus::link::to_link_time<clk>(clk::now()));
  s.commit(st);
}

}  // namespace

TEST_CASE("two Link peers on loopback share a tempo both ways") {
  if (const auto why = tactus_tests::enter_private_network(); !why.empty()) TACTUS_SKIP(why);
  peers p;
  REQUIRE(p.connect());
  // Joining: one session, one tempo.
  REQUIRE(run_until(p.io, [&] { return same_tempo(p.a.tempo(), p.b.tempo()); }));
  set_tempo(p.a, 133);
  CHECK(run_until(p.io, [&] { return same_tempo(p.b.tempo(), bpm{133}); }));
  set_tempo(p.b, 77);
  CHECK(run_until(p.io, [&] { return same_tempo(p.a.tempo(), bpm{77}); }));
}

TEST_CASE("two Link peers with start and stop sync share a start and a stop both ways") {
  if (const auto why = tactus_tests::enter_private_network(); !why.empty()) TACTUS_SKIP(why);
  peers p({.start_stop_sync = true});
  REQUIRE(p.connect());
  auto st = p.a.capture();
  st.setIsPlaying(true, tactus::link::to_link_time<clk>(clk::now()));
  p.a.commit(st);
  CHECK(run_until(p.io, [&] { return p.b.capture().isPlaying(); }));
  st = p.b.capture();
  st.setIsPlaying(false, tactus::link::to_link_time<clk>(clk::now()));
  p.b.commit(st);
  CHECK(run_until(p.io, [&] { return !p.a.capture().isPlaying(); }));
}

TEST_CASE("metronomes following two Link peers start together and beat within 1 ms of each other") {
  if (const auto why = tactus_tests::enter_private_network(); !why.empty()) TACTUS_SKIP(why);
  peers p({.start_stop_sync = true});
  REQUIRE(p.connect());
  REQUIRE(run_until(p.io, [&] { return same_tempo(p.a.tempo(), p.b.tempo()); }));
  set_tempo(p.a, 240);  // short beats: more of them in a short test
  REQUIRE(run_until(p.io, [&] { return same_tempo(p.b.tempo(), bpm{240}); }));

  tactus::metronome ma{p.io.get_executor(), bpm{240}, tactus::meter{4}};
  tactus::metronome mb{p.io.get_executor(), bpm{240}, tactus::meter{4}};
  std::vector<tactus::tick> ta, tb;
  ma.on_beat([&](const tactus::tick& t) { ta.push_back(t); });
  mb.on_beat([&](const tactus::tick& t) { tb.push_back(t); });
  tactus::link::follower fa{p.a, ma, {.quantum = beats{4}, .start_stop = true}};
  tactus::link::follower fb{p.b, mb, {.quantum = beats{4}, .start_stop = true}};
  std::exception_ptr error;
  auto keep = [&](std::exception_ptr e) {
    if (e) error = e;
  };
  asio::co_spawn(p.io, ma.run({.paused = true}), keep);
  asio::co_spawn(p.io, mb.run({.paused = true}), keep);
  asio::co_spawn(p.io, fa.run(), keep);
  asio::co_spawn(p.io, fb.run(), keep);
  run_until(
      p.io, [] { return false; }, 200ms);
  CHECK(ta.empty());  // stopped: nothing plays
  CHECK(tb.empty());

  // A starts: with a peer, beat 0 is the next bar line of the session (a quantized start), and B
  // starts there too.
  const auto asked = clk::now();
  fa.start_playing();
  REQUIRE(run_until(
      p.io, [&] { return ta.size() >= 12 && tb.size() >= 12; }, 10s));
  fa.stop();
  fb.stop();
  ma.stop();
  mb.stop();
  p.io.restart();
  p.io.run_for(50ms);
  REQUIRE_FALSE(error);

  REQUIRE_FALSE(ta.empty());
  REQUIRE_FALSE(tb.empty());
  CHECK(ta.front().position == beats{0});
  CHECK(tb.front().position == beats{0});
  CHECK(ta.front().scheduled >= asked);  // quantized: not before it was asked for
  // Pair each beat of A with B's beat of the same position (both count from the start).
  clk::duration worst{0};
  int paired = 0;
  for (const auto& x : ta) {
    const auto y = std::find_if(tb.begin(), tb.end(), [&](const tactus::tick& t) { return t.position == x.position; });
    if (y == tb.end()) continue;
    ++paired;
    CHECK(x.beat_in_bar == y->beat_in_bar);
    worst = std::max(worst, x.scheduled > y->scheduled ? x.scheduled - y->scheduled : y->scheduled - x.scheduled);
  }
  CHECK(paired >= 10);
  std::printf("figure: link beats of two peers on loopback, worst offset %.1f us over %d beats at 240 BPM\n",
              std::chrono::duration<double, std::micro>(worst).count(), paired);
  CHECK(worst < 1ms);
}
