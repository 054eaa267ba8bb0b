// SPDX-License-Identifier: BSL-1.0
// hello_metronome: prints every beat with bar:beat, tempo and how late it woke.
//
//     hello_metronome [--bpm 120] [--beats 16] [--meter 4]
//
// --beats 0 plays until Ctrl-C. Ctrl-C (SIGINT) or SIGTERM stops it at once (tactus::shutdown),
// exit status 0; a bad option gets one line on stderr and exit status 2, --help the usage on stdout.
#include <tactus/tactus.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) try {
  CLI::App app{"hello_metronome: prints every beat with bar:beat, tempo and how late it woke", "hello_metronome"};
  double bpm = 120;
  long beats = 16;
  int meter = 4;
  app.add_option("--bpm", bpm, "tempo in beats per minute")
      ->check(examples::finite_range(1, 1000))
      ->capture_default_str();
  app.add_option("--beats", beats, "beats to play, 0 = until Ctrl-C")
      ->check(examples::whole_range(0, 1'000'000'000))
      ->capture_default_str();
  app.add_option("--meter", meter, "beats per bar")->check(examples::whole_range(1, 64))->capture_default_str();
  if (auto status = examples::parse(app, argc, argv)) return *status;

  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  tactus::metronome m{io.get_executor(), tactus::bpm{bpm}, tactus::meter{meter}};

  m.on_beat([&](const tactus::tick& b) {
    const auto late_us = std::chrono::duration_cast<std::chrono::microseconds>(b.lateness()).count();
    std::printf("%4lld:%d  %6.1f bpm  late %5lld us%s\n", static_cast<long long>(b.bar) + 1, b.beat_in_bar + 1,
                b.tempo.value(), static_cast<long long>(late_us), b.is_downbeat() ? "  *" : "");
    std::fflush(stdout);
    if (beats && b.index + 1 >= beats) m.stop();
  });

  asio::co_spawn(io, sd.run(m.run()), tactus::rethrow);  // until the beats are played or Ctrl-C
  io.run();
  return sd.status();
} catch (const std::exception& e) {
  std::fprintf(stderr, "hello_metronome: %s\n", e.what());
  return 1;
}
