// SPDX-License-Identifier: BSL-1.0
// clock_master: sends MIDI clock (24 ppqn) with START at the beginning and STOP at the end.
//
//     clock_master [--port NAME] [--bpm 120] [--seconds N]
//
// --port NAME sends to the first destination (a MIDI input port) whose name contains NAME;
// without it, a virtual port "tactus-master:out" for followers to connect to. Runs until Ctrl-C
// (SIGINT), SIGTERM or --seconds (tactus::shutdown); STOP is sent either way, exit status 0.
// Every option is checked before a port is opened: a bad one gets one line on stderr and exit
// status 2 (--help: usage on stdout); no MIDI backend or no such port: one line, exit status 1.
// The JACK server going away while it plays: one line saying so, exit status 1 at once.
#include <tactus/midi/clock_master.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>

#include "cli.hpp"
#include "server_lost.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

namespace midi = tactus::midi;

int main(int argc, char** argv) try {
  CLI::App app{"clock_master: sends 24 ppqn MIDI clock with START and STOP", "clock_master"};
  std::string port;
  double bpm = 120, seconds = 0;
  app.add_option("--port", port,
                 "send to the first destination (a MIDI input port) whose name contains NAME (default: a virtual port)")
      ->type_name("NAME");
  app.add_option("--bpm", bpm, "tempo in beats per minute")
      ->check(examples::finite_range(1, 1000))
      ->capture_default_str();
  app.add_option("--seconds", seconds, "stop after this long, 0 = until Ctrl-C")
      ->check(examples::finite_range(0, 1e6))
      ->capture_default_str();
  if (auto status = examples::parse(app, argc, argv)) return *status;
  const tactus::bpm tempo{bpm};  // checked above; before any port is opened

  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own error message says it once
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  auto held = sd.hold_signals();           // until run(): a signal would interrupt libjack opening the port
  midi::output_options out_options;
  out_options.client_name = "tactus-master";
  midi::output out = port.empty() ? midi::output(io.get_executor(), midi::virtual_port, out_options)
                                  : midi::output(io.get_executor(), port, out_options);
  midi::clock_master master{io.get_executor(), out, tempo};
  std::fprintf(stderr, "clock at %.2f BPM to %s%s (Ctrl-C to stop)\n", bpm, port.empty() ? "virtual port " : "",
               out.port_name().c_str());

  // Ctrl-C and --seconds cancel run(), which then sends STOP and returns. A send that fails (the
  // JACK server went away) ends run() with its error, which io.run() rethrows: see the catch.
  if (seconds > 0) sd.request_after(std::chrono::duration<double>(seconds));
  asio::co_spawn(io, sd.run(master.run()), tactus::rethrow);
  io.run();
  std::fprintf(stderr, "stopped after %lld pulses\n", static_cast<long long>(master.pulses_sent()));
  return sd.status();
} catch (const std::system_error& e) {
  // The JACK server went away (killed, crashed): one line, status 1 (see the README's "What
  // happens when...").
  if (examples::is_server_lost(e)) return examples::say_server_lost("clock_master");
  std::fprintf(stderr, "clock_master: %s\n", e.what());
  return 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "clock_master: %s\n", e.what());
  return 1;
}
