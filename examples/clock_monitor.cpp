// SPDX-License-Identifier: BSL-1.0
// clock_monitor: follows a MIDI clock and shows tempo, position and transport, beat by beat.
//
//     clock_monitor --port NAME | --virtual  [--json] [--seconds N] [--latency-us 1333]
//
// --port NAME follows the first input port whose name contains NAME; --virtual opens
// "tactus-clock:in" for a clock source to connect to. --json prints one JSON object per beat
// and one at every transport change; without it, one live line. --latency-us: the mean delay of
// the timestamps, half the audio period under JACK (1333 us at 128 frames / 48 kHz).
// Ctrl-C (SIGINT), SIGTERM or --seconds ends it cleanly (tactus::shutdown), exit status 0, also
// with --port (the input is closed, which stops its port rescan). A bad option: one line on stderr, exit status 2
// (--help: usage on stdout); no MIDI backend or no such port: one line, exit status 1; the JACK
// server going away: one line saying so, exit status 1 within a second. The beats
// come from the same metronome on_beat code an app would use with its internal clock.
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/task_group.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <unistd.h>
#include <utility>

namespace midi = tactus::midi;

namespace {

struct options {
  std::string port;  // empty: virtual
  bool json = false;
  double seconds = 0;  // 0: until Ctrl-C
  long latency_us = 0;
};

// One JSON object per line: keys in the order written (ordered_json), t rounded to 0.1 ms and bpm
// to 0.001, as the lines have always shown them.
void print_json(const nlohmann::ordered_json& j) { std::printf("%s\n", j.dump().c_str()); }
double rounded(double x, double unit) { return std::round(x / unit) * unit; }

const char* name(midi::transport_state s) {
  switch (s) {
    case midi::transport_state::playing: return "playing";
    case midi::transport_state::lost: return "lost";
    default: return "stopped";
  }
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"clock_monitor: follows a MIDI clock and shows tempo, position and transport", "clock_monitor"};
  options opt;
  bool open_virtual = false;
  auto* by_name =
      app.add_option("--port", opt.port, "follow the first input port whose name contains NAME")->type_name("NAME");
  auto* virt = app.add_flag("--virtual", open_virtual, "open tactus-clock:in for a clock source to connect to")
                   ->excludes(by_name);
  app.add_flag("--json", opt.json, "one JSON object per beat and per transport change");
  app.add_option("--seconds", opt.seconds, "stop after this long, 0 = until Ctrl-C")
      ->check(examples::finite_range(0, 1e6))
      ->capture_default_str();
  app.add_option("--latency-us", opt.latency_us, "mean delay of the timestamps (JACK: half the period)")
      ->check(examples::whole_range(0, 1'000'000))
      ->capture_default_str();
  if (auto status = examples::parse(app, argc, argv)) return *status;
  if (!by_name->count() && !virt->count()) {
    std::fprintf(stderr, "clock_monitor: give --port NAME or --virtual (try --help)\n");
    return examples::usage_error;
  }

  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own error message says it once
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  auto held = sd.hold_signals();           // until run(): a signal would interrupt libjack opening the port
  midi::input_options in_options;
  in_options.client_name = "tactus-clock";
  midi::input in = open_virtual ? midi::input(io.get_executor(), midi::virtual_port, in_options)
                                : midi::input(io.get_executor(), opt.port, in_options);
  std::fprintf(stderr, "following %s%s (Ctrl-C to stop)\n", open_virtual ? "virtual port " : "",
               in.port_name().c_str());

  tactus::metronome m{io.get_executor(), tactus::bpm{120}};
  midi::clock_follower_options fo;
  fo.transport.estimator.latency = std::chrono::microseconds(opt.latency_us);
  midi::clock_follower follow{in, m, fo};
  // The JACK server went away: say it once, end with status 1 (the receive fails too: the
  // follower returns, and the shutdown ends the rest).
  bool server_lost = false;
  in.on_error([&](std::error_code ec, const std::string& what) {
    if (ec == midi::io_errc::server_lost) {
      if (!std::exchange(server_lost, true)) std::fprintf(stderr, "clock_monitor: the JACK server went away\n");
      sd.request();
    } else {
      std::fprintf(stderr, "clock_monitor: %s: %s\n", ec.message().c_str(), what.c_str());
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  // The source's estimated tempo; before the estimate has two pulses, the metronome's own.
  auto tempo = [&] { return follow.tempo() ? follow.tempo()->value() : m.tempo().value(); };
  // On a terminal one live line rewritten in place; into a pipe or a file, a line each.
  const bool tty = ::isatty(::fileno(stdout)) != 0;
  const char* cr = tty ? "\r" : "";
  const char* eol = tty ? "" : "\n";

  // The app's beat code: the same whatever drives the metronome.
  m.on_beat([&](const tactus::tick& b) {
    if (opt.json)
      print_json({{"t", rounded(seconds(), 1e-4)},
                  {"beat", b.position.whole()},
                  {"bar", b.bar},
                  {"beat_in_bar", b.beat_in_bar},
                  {"bpm", rounded(tempo(), 1e-3)},
                  {"state", name(follow.state())},
                  {"late_us", std::chrono::duration_cast<std::chrono::microseconds>(b.lateness()).count()}});
    else
      std::printf("%s%5lld:%d  %7.2f BPM  %-8s%s%s", cr, static_cast<long long>(b.bar) + 1, b.beat_in_bar + 1, tempo(),
                  name(follow.state()), b.is_downbeat() ? " *" : "  ", eol);
    std::fflush(stdout);
  });
  follow.on_state_change([&](midi::transport_state s) {
    const auto p = follow.position();
    if (opt.json)
      print_json({{"t", rounded(seconds(), 1e-4)},
                  {"event", "transport"},
                  {"state", name(s)},
                  {"bpm", rounded(tempo(), 1e-3)},
                  {"position", std::to_string(p.bar) + ":" + std::to_string(p.beat) + ":" + std::to_string(p.pulse)}});
    else
      std::printf("%s%5lld:%d  %7.2f BPM  %-8s  \n", cr, static_cast<long long>(p.bar) + 1, p.beat + 1, tempo(),
                  name(s));
    std::fflush(stdout);
  });

  // While stopped no beat comes, but most sources keep sending clock: the live line shows the
  // source's tempo twice a second while messages arrive.
  auto show_idle = [&]() -> asio::awaitable<void> {
    asio::steady_timer idle(io);
    for (std::uint64_t seen = 0;;) {
      idle.expires_after(std::chrono::milliseconds(500));
      co_await idle.async_wait(asio::use_awaitable);
      const bool arriving = in.received() >= seen + 6;  // pulses: 6 in 500 ms is 30 BPM
      seen = in.received();
      if (!opt.json && arriving && follow.state() != midi::transport_state::playing && follow.tempo()) {
        std::printf("%s          %7.2f BPM  %-8s (clock arriving)   %s", cr, tempo(), name(follow.state()), eol);
        std::fflush(stdout);
      }
    }
  };
  // The follower returns when the input closes: nothing more to follow, the program ends.
  auto follow_until_closed = [&]() -> asio::awaitable<void> {
    co_await follow.run();
    sd.request();
  };
  tactus::task_group tasks{io.get_executor()};
  tasks.spawn(m.run({.paused = true}));
  tasks.spawn(follow_until_closed());
  tasks.spawn(show_idle());
  if (opt.seconds > 0) sd.request_after(std::chrono::duration<double>(opt.seconds));
  sd.on_cleanup("close the input", [&] { in.close(); });  // a port opened by name is rescanned while open
  asio::co_spawn(io, sd.run(tasks), tactus::rethrow);     // until Ctrl-C, --seconds or the input closes
  io.run();
  if (!opt.json) std::puts("");
  return server_lost ? 1 : sd.status();
} catch (const std::exception& e) {
  std::fprintf(stderr, "clock_monitor: %s\n", e.what());
  return 1;
}
