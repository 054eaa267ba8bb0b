// SPDX-License-Identifier: BSL-1.0
// hello_metronome: prints every beat with bar:beat, tempo and how late it woke.
//
//     hello_metronome [--bpm 120] [--beats 16] [--meter 4]
//
// Ctrl-C stops it cleanly.
#include <tactus/tactus.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace {

struct options {
  double bpm = 120;
  long beats = 16;  // 0: until Ctrl-C
  int meter = 4;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--bpm") o.bpm = std::stod(value());
    else if (arg == "--beats") o.beats = std::stol(value());
    else if (arg == "--meter") o.meter = std::stoi(value());
    else if (arg == "--help" || arg == "-h") {
      std::puts("usage: hello_metronome [--bpm 120] [--beats 16 (0 = until Ctrl-C)] [--meter 4]");
      std::exit(0);
    } else throw std::invalid_argument("unknown option " + arg + " (try --help)");
  }
  if (o.beats < 0) throw std::invalid_argument("--beats must be >= 0");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const auto opt = parse(argc, argv);
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{opt.bpm}, tactus::meter{opt.meter}};

  m.on_beat([&](const tactus::tick& b) {
    const auto late_us = std::chrono::duration_cast<std::chrono::microseconds>(b.lateness()).count();
    std::printf("%4lld:%d  %6.1f bpm  late %5lld us%s\n", static_cast<long long>(b.bar) + 1, b.beat_in_bar + 1,
                b.tempo.value(), static_cast<long long>(late_us), b.is_downbeat() ? "  *" : "");
    std::fflush(stdout);
    if (opt.beats && b.index + 1 >= opt.beats) m.stop();
  });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) m.stop();
  });

  asio::co_spawn(io, m.run(), [&](std::exception_ptr e) {
    signals.cancel();
    if (e) std::rethrow_exception(e);
  });
  io.run();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "hello_metronome: %s\n", e.what());
  return 1;
}
