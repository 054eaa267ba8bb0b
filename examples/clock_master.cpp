// SPDX-License-Identifier: BSL-1.0
// clock_master: sends MIDI clock (24 ppqn) with START at the beginning and STOP at the end.
//
//     clock_master [--port NAME] [--bpm 120] [--seconds N]
//
// --port NAME sends to the first output port whose name contains NAME; without it, a virtual
// port "tactus-master:out" for followers to connect to. Runs until Ctrl-C or --seconds; STOP is
// sent either way.
#include <tactus/midi/clock_master.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace midi = tactus::midi;

int main(int argc, char** argv) try {
  std::string port;
  double bpm = 120, seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--port") port = value();
    else if (arg == "--bpm") bpm = std::stod(value());
    else if (arg == "--seconds") seconds = std::stod(value());
    else if (arg == "--help" || arg == "-h") {
      std::puts("usage: clock_master [--port NAME] [--bpm 120] [--seconds N (0 = until Ctrl-C)]");
      return 0;
    } else throw std::invalid_argument("unknown option " + arg + " (try --help)");
  }

  asio::io_context io;
  midi::output_options out_options;
  out_options.client_name = "tactus-master";
  midi::output out = port.empty() ? midi::output(io.get_executor(), midi::virtual_port, out_options)
                                  : midi::output(io.get_executor(), port, out_options);
  midi::clock_master master{io.get_executor(), out, tactus::bpm{bpm}};
  std::fprintf(stderr, "clock at %.2f BPM to %s%s (Ctrl-C to stop)\n", bpm, port.empty() ? "virtual port " : "",
               out.port_name().c_str());

  // Ctrl-C and --seconds cancel run(), which then sends STOP and returns.
  asio::cancellation_signal cancel;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);
  asio::co_spawn(io, master.run(), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                   signals.cancel();
                   deadline.cancel();
                   if (e) std::rethrow_exception(e);
                 }));
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) cancel.emit(asio::cancellation_type::terminal);
  });
  if (seconds > 0) {
    deadline.expires_after(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)));
    deadline.async_wait([&](std::error_code ec) {
      if (!ec) cancel.emit(asio::cancellation_type::terminal);
    });
  }
  io.run();
  std::fprintf(stderr, "stopped after %lld pulses\n", static_cast<long long>(master.pulses_sent()));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "clock_master: %s\n", e.what());
  return 1;
}
