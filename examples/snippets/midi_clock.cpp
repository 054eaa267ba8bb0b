// SPDX-License-Identifier: BSL-1.0
// The usage comments of clock_master.hpp, clock_follower.hpp and note.hpp, whole, on a JACK
// server (the test suite's own). A stand-in sequencer "circuit" sends clock at 120 BPM; we follow
// it, play a 16th-note kick on every beat, and send our own clock to a stand-in "synth". Exits 1
// if the follower played no beat or a note was left sounding.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/clock_master.hpp>
#include <tactus/midi/note.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>

namespace midi = tactus::midi;
using namespace std::chrono_literals;

int beats_played = 0;
void play(const tactus::tick&) { ++beats_played; }

int main() {
  asio::io_context io;
  auto ex = io.get_executor();
  midi::output circuit{ex, midi::virtual_port, {.backend = midi::api::jack, .client_name = "circuit"}};
  midi::input synth{ex, midi::virtual_port, {.backend = midi::api::jack, .client_name = "synth"}};
  midi::clock_master circuit_clock{ex, circuit, tactus::bpm{120}};

  tactus::midi::output out{ex, "synth"};
  tactus::midi::clock_master master{ex, out, tactus::bpm{120}};
  asio::co_spawn(ex, master.run(), tactus::rethrow);   // START, then CLOCK until stop() or cancel: STOP
  master.set_tempo(tactus::bpm{128});           // from now on, no jump in the position

  tactus::metronome m{ex, tactus::bpm{120}};
  m.on_tick([](const tactus::tick& b) { play(b); });
  m.on_tick([&](const tactus::tick&) -> asio::awaitable<void> {
    co_await tactus::midi::async_note(out, m, 9, 36, 110, tactus::beats{1, 4}, asio::use_awaitable);
  });
  tactus::midi::input in{ex, "circuit"};
  tactus::midi::clock_follower follow{in, m};
  follow.on_state_change([&](auto s) { if (s != tactus::midi::transport_state::playing) out.panic(); });
  asio::co_spawn(ex, m.run({.paused = true}), tactus::rethrow);
  asio::co_spawn(ex, follow.run(), tactus::rethrow);

  asio::steady_timer press_play(io, 1s);  // once our input's connection is live, not before
  press_play.async_wait([&](std::error_code) { asio::co_spawn(ex, circuit_clock.run(), tactus::rethrow); });
  asio::steady_timer end(io, 4s);
  end.async_wait([&](std::error_code) {
    circuit_clock.stop();  // STOP: the follower stops, out.panic() ends what sounds
    master.stop();
    follow.stop();
    m.stop();
  });
  io.run();
  const bool ended = out.open_count(9, 36) == 0;
  std::printf("%d beats played, every note ended: %s\n", beats_played, ended ? "yes" : "no");
  return beats_played >= 3 && ended ? 0 : 1;
}
