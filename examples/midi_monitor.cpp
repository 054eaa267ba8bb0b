// SPDX-License-Identifier: BSL-1.0
// midi_monitor: lists the MIDI ports, or prints incoming messages with their time, like aseqdump.
//
//   midi_monitor                list input and output ports
//   midi_monitor --port NAME    print what arrives on the first input port whose name contains NAME
//   midi_monitor --virtual      open a virtual input "tactus-monitor:in" for others to connect to
//
// Ctrl-C ends it: a signal_set cancels the receiving coroutine, which then closes the input.
#include <tactus/midi/input.hpp>
#include <tactus/midi/ports.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

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
  std::cout << "MIDI input ports (" << midi::to_string(midi::available_api()) << "):\n";
  for (auto& name : midi::input_ports()) std::cout << "  " << name << '\n';
  std::cout << "MIDI output ports:\n";
  for (auto& name : midi::output_ports()) std::cout << "  " << name << '\n';
  return 0;
}

int main(int argc, char** argv) try {
  const std::string_view arg = argc > 1 ? argv[1] : "";
  if (argc == 1) return list_ports();
  if (!((arg == "--port" && argc == 3) || (arg == "--virtual" && argc == 2))) {
    std::cerr << "usage: midi_monitor [--port NAME | --virtual]\n";
    return 2;
  }

  asio::io_context ctx;
  midi::input_options options;
  options.client_name = "tactus-monitor";
  midi::input in = arg == "--virtual" ? midi::input(ctx.get_executor(), midi::virtual_port, options)
                                      : midi::input(ctx.get_executor(), argv[2], options);
  std::cout << "listening on " << (arg == "--virtual" ? "virtual port " + options.client_name + ":" : "")
            << in.port_name() << " (Ctrl-C to stop)\n";
  in.on_error([](std::error_code ec, const std::string& what) { std::cerr << ec.message() << ": " << what << '\n'; });

  asio::cancellation_signal stop;
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) stop.emit(asio::cancellation_type::terminal);
  });
  asio::co_spawn(ctx, print_messages(in), asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                   signals.cancel();
                   in.close();  // stops the port re-scan, so run() returns
                   try {
                     if (e) std::rethrow_exception(e);
                   } catch (const std::system_error& se) {
                     if (se.code() != asio::error::operation_aborted) throw;  // Ctrl-C is not an error
                   }
                 }));
  ctx.run();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "midi_monitor: " << e.what() << '\n';
  return 1;
}
