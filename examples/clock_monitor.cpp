// SPDX-License-Identifier: BSL-1.0
// clock_monitor: follows a MIDI clock and shows tempo, position and transport, beat by beat.
//
//     clock_monitor --port NAME | --virtual  [--json] [--seconds N] [--latency-us 1333]
//
// --port NAME follows the first input port whose name contains NAME; --virtual opens
// "tactus-clock:in" for a clock source to connect to. --json prints one JSON object per beat
// and one at every transport change; without it, one live line. --latency-us: the mean delay of
// the timestamps, half the audio period under JACK (1333 us at 128 frames / 48 kHz).
// Ctrl-C (or --seconds) ends it cleanly. The beats come from the same metronome on_beat code an
// app would use with its internal clock.
#include <tactus/midi/clock_follower.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace midi = tactus::midi;

namespace {

struct options {
  std::string port;  // empty: virtual
  bool json = false;
  double seconds = 0;  // 0: until Ctrl-C
  long latency_us = 0;
};

options parse(int argc, char** argv) {
  options o;
  bool chosen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--port") o.port = value(), chosen = true;
    else if (arg == "--virtual") chosen = true;
    else if (arg == "--json") o.json = true;
    else if (arg == "--seconds") o.seconds = std::stod(value());
    else if (arg == "--latency-us") o.latency_us = std::stol(value());
    else if (arg == "--help" || arg == "-h") {
      std::puts("usage: clock_monitor --port NAME | --virtual  [--json] [--seconds N] [--latency-us 1333]");
      std::exit(0);
    } else throw std::invalid_argument("unknown option " + arg + " (try --help)");
  }
  if (!chosen) throw std::invalid_argument("give --port NAME or --virtual (try --help)");
  return o;
}

const char* name(midi::transport_state s) {
  switch (s) {
    case midi::transport_state::playing: return "playing";
    case midi::transport_state::lost: return "lost";
    default: return "stopped";
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const auto opt = parse(argc, argv);
  asio::io_context io;
  midi::input_options in_options;
  in_options.client_name = "tactus-clock";
  midi::input in = opt.port.empty() ? midi::input(io.get_executor(), midi::virtual_port, in_options)
                                    : midi::input(io.get_executor(), opt.port, in_options);
  std::fprintf(stderr, "following %s%s (Ctrl-C to stop)\n", opt.port.empty() ? "virtual port " : "",
               in.port_name().c_str());

  tactus::metronome m{io.get_executor(), tactus::bpm{120}};
  midi::clock_follower_options fo;
  fo.transport.estimator.latency = std::chrono::microseconds(opt.latency_us);
  midi::clock_follower follow{in, m, fo};
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto tempo = [&] { return follow.tempo() ? follow.tempo()->value() : 0.0; };

  // The app's beat code: the same whatever drives the metronome.
  m.on_beat([&](const tactus::tick& b) {
    if (opt.json)
      std::printf(
          "{\"t\":%.4f,\"beat\":%lld,\"bar\":%lld,\"beat_in_bar\":%d,\"bpm\":%.3f,\"state\":\"%s\",\"late_us\":%lld}\n",
          seconds(), static_cast<long long>(b.position.whole()), static_cast<long long>(b.bar), b.beat_in_bar, tempo(),
          name(follow.state()),
          static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(b.lateness()).count()));
    else
      std::printf("\r%5lld:%d  %7.2f BPM  %-8s%s", static_cast<long long>(b.bar) + 1, b.beat_in_bar + 1, tempo(),
                  name(follow.state()), b.is_downbeat() ? " *" : "  ");
    std::fflush(stdout);
  });
  follow.on_state_change([&](midi::transport_state s) {
    const auto p = follow.position();
    if (opt.json)
      std::printf("{\"t\":%.4f,\"event\":\"transport\",\"state\":\"%s\",\"bpm\":%.3f,\"position\":\"%lld:%d:%d\"}\n",
                  seconds(), name(s), tempo(), static_cast<long long>(p.bar), p.beat, p.pulse);
    else
      std::printf("\r%5lld:%d  %7.2f BPM  %-8s  \n", static_cast<long long>(p.bar) + 1, p.beat + 1, tempo(), name(s));
    std::fflush(stdout);
  });

  auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(io, m.run({.paused = true}), rethrow);

  // While stopped no beat comes, but most sources keep sending clock: the live line shows the
  // source's tempo twice a second while messages arrive.
  asio::steady_timer idle(io);
  std::uint64_t seen = 0;
  std::function<void()> show_idle = [&] {
    idle.expires_after(std::chrono::milliseconds(500));
    idle.async_wait([&](std::error_code ec) {
      if (ec) return;
      const bool arriving = in.received() >= seen + 6;  // pulses: 6 in 500 ms is 30 BPM
      seen = in.received();
      if (!opt.json && arriving && follow.state() != midi::transport_state::playing && follow.tempo()) {
        std::printf("\r          %7.2f BPM  %-8s (clock arriving)   ", tempo(), name(follow.state()));
        std::fflush(stdout);
      }
      show_idle();
    });
  };
  show_idle();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);
  auto finish = [&] {
    follow.stop();
    signals.cancel();
    deadline.cancel();
    idle.cancel();
  };
  asio::co_spawn(io, follow.run(), [&](std::exception_ptr e) {
    m.stop();  // the follower returned (Ctrl-C, --seconds, the port closed): nothing more to follow
    finish();
    rethrow(e);
  });
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) finish();
  });
  if (opt.seconds > 0) {
    deadline.expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(opt.seconds)));
    deadline.async_wait([&](std::error_code ec) {
      if (!ec) finish();
    });
  }
  io.run();
  if (!opt.json) std::puts("");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "clock_monitor: %s\n", e.what());
  return 1;
}
