// SPDX-License-Identifier: BSL-1.0
// midi_monitor: lists the MIDI ports, or prints incoming messages with their time, like aseqdump.
//
//   midi_monitor                list input and output ports
//   midi_monitor --port NAME    print what arrives on the first input port whose name contains NAME
//   midi_monitor --virtual      open a virtual input "tactus-monitor:in" for others to connect to
//
// Ctrl-C (SIGINT) or SIGTERM ends it, exit status 0: tactus::shutdown cancels the receiving
// coroutine, then closes the input. A bad option: one line on stderr, exit status 2 (--help: usage on
// stdout). No MIDI backend or no such port: one line on stderr, exit status 1 (libjack's own
// messages are silenced: tactus's line says what went wrong).
#include <tactus/midi/input.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/ports.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace midi = tactus::midi;

static asio::awaitable<void> print_messages(midi::input& in) {
  std::optional<std::chrono::steady_clock::time_point> start;
  for (;;) {
    const auto m = co_await in.async_receive(asio::use_awaitable);
    if (!start) start = m.time;
    const double t = std::chrono::duration<double>(m.time - *start).count();
    std::printf("%12.6f  ", t);
    for (auto b : m.msg.bytes().first(std::min<std::size_t>(m.msg.size(), 8))) std::printf("%02X ", b);
    std::printf("%s %s\n", m.msg.size() > 8 ? "..." : "", m.msg.to_string().c_str());
    std::fflush(stdout);
  }
}

static int list_ports() {
  // Everything is asked before anything is printed: a backend error is then the only line.
  const auto backend = midi::available_api();
  const auto inputs = midi::input_ports(backend);
  const auto outputs = midi::output_ports(backend);
  const auto show = [](const std::vector<std::string>& names) {
    if (names.empty()) std::cout << "  (none)\n";
    for (auto& name : names) std::cout << "  " << name << '\n';
  };
  std::cout << "MIDI input ports (" << midi::to_string(backend) << "):\n";
  show(inputs);
  std::cout << "MIDI output ports:\n";
  show(outputs);
  return 0;
}

int main(int argc, char** argv) try {
  CLI::App app{"midi_monitor: lists the MIDI ports, or prints incoming messages with their time", "midi_monitor"};
  std::string port;
  bool virtual_port = false;
  auto* by_name = app.add_option("--port", port, "print what arrives on the first input port whose name contains NAME")
                      ->type_name("NAME");
  app.add_flag("--virtual", virtual_port, "open a virtual input tactus-monitor:in for others to connect to")
      ->excludes(by_name);
  if (auto status = examples::parse(app, argc, argv)) return *status;

  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own error message says it once
  if (!by_name->count() && !virtual_port) return list_ports();

  asio::io_context ctx;
  tactus::shutdown sd{ctx.get_executor()};  // first: a signal from now on ends it cleanly
  auto held = sd.hold_signals();            // until run(): a signal would interrupt libjack opening the port
  midi::input_options options;
  options.client_name = "tactus-monitor";
  midi::input in = virtual_port ? midi::input(ctx.get_executor(), midi::virtual_port, options)
                                : midi::input(ctx.get_executor(), port, options);
  std::cout << "listening on " << (virtual_port ? "virtual port " : "") << in.port_name() << " (Ctrl-C to stop)"
            << std::endl;
  in.on_error([](std::error_code ec, const std::string& what) {
    if (ec == midi::io_errc::server_lost) return;  // the receive fails with it too: said once, below
    std::cerr << ec.message() << ": " << what << '\n';
  });

  sd.on_cleanup("close the input", [&] { in.close(); });  // stops the port re-scan, so run() returns
  asio::co_spawn(ctx, sd.run(print_messages(in)), tactus::rethrow);
  ctx.run();
  return sd.status();
} catch (const std::system_error& e) {
  // The JACK server went away (killed, crashed): one line, status 1.
  if (e.code() == midi::io_errc::server_lost)
    return std::fprintf(stderr, "midi_monitor: the JACK server went away\n"), 1;
  std::cerr << "midi_monitor: " << e.what() << '\n';
  return 1;
} catch (const std::exception& e) {
  std::cerr << "midi_monitor: " << e.what() << '\n';
  return 1;
}
