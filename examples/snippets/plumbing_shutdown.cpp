// SPDX-License-Identifier: BSL-1.0
// shutdown.hpp's usage comment, whole: signals held while "ports open", the work (four fast
// beats) ends, the cleanup runs, status 0.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <cstdio>

struct synth_output {  // stands in for a MIDI output
  void panic() { std::puts("all notes off"); }
};

int main() {
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first thing in main: from here a signal ends it cleanly
  auto held = sd.hold_signals();           // while opening ports (libjack): see hold_signals()
  synth_output out;                        // opened with SIGINT and SIGTERM held back
  tactus::metronome m{io.get_executor(), tactus::bpm{600}};
  m.on_beat([&](const tactus::tick& t) { if (t.index == 3) m.stop(); });
  auto work = [&] { return m.run(); };
  sd.on_cleanup("all notes off", [&] { out.panic(); });
  asio::co_spawn(io, sd.run(work()), tactus::rethrow);
  io.run();                                // run() lets the held signals through first
  return sd.status();                      // 0 after a graceful shutdown
}
