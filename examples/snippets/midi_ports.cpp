// SPDX-License-Identifier: BSL-1.0
// The usage comments of ports.hpp, port_watcher.hpp, rtmidi_close.hpp, input.hpp, io_error.hpp
// and output.hpp, whole, on a JACK server (the test suite's own; run it beside `jackd -d dummy`).
// Two virtual ports stand in for the gear the comments name: "circuit" (a sequencer to read) and
// "synth" (a synth to play). Exits 1 if a message went missing.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/midi/input.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/midi/port_watcher.hpp>
#include <tactus/midi/ports.hpp>
#include <tactus/midi/rtmidi_close.hpp>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace midi = tactus::midi;
using namespace std::chrono_literals;

int main() {
  asio::io_context ctx;
  auto& io = ctx;
  auto ignore_abort = [](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::system_error& x) {
      if (x.code() != asio::error::operation_aborted) throw;
    }
  };
  midi::output circuit{ctx.get_executor(), midi::virtual_port, {.backend = midi::api::jack, .client_name = "circuit"}};
  midi::input synth{ctx.get_executor(), midi::virtual_port, {.backend = midi::api::jack, .client_name = "synth"}};
  int appeared = 0, received = 0, errors = 0;
  bool ended = false;

  for (auto& name : tactus::midi::input_ports()) std::cout << name << '\n';

  asio::cancellation_signal stop_watching, stop_reading;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    tactus::midi::port_watcher watch{io.get_executor(), tactus::midi::port_direction::input};
    for (;;) {
      auto change = co_await watch.async_wait_change(asio::use_awaitable);
      for (auto& name : change.appeared) std::printf("+ %s\n", name.c_str());
      for (auto& name : change.vanished) std::printf("- %s\n", name.c_str());
      appeared += static_cast<int>(change.appeared.size());
    }
  }, asio::bind_cancellation_slot(stop_watching.slot(), ignore_abort));

  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    tactus::midi::input in(ctx.get_executor(), "circuit");        // port by name, any case
    in.on_error([](std::error_code ec, const std::string& what) {
      if (ec == tactus::midi::io_errc::queue_overflow) std::fprintf(stderr, "lost: %s\n", what.c_str());
    });
    for (;;) {
      auto m = co_await in.async_receive(asio::use_awaitable);    // tactus::midi::timed_message
      std::cout << m.msg.to_string() << '\n';
      ++received;
    }
  }, asio::bind_cancellation_slot(stop_reading.slot(), ignore_abort));

  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io);
    {
      RtMidiOut out(RtMidi::UNIX_JACK, "mine");
      out.openVirtualPort("out");
      t.expires_after(1500ms);  // the watcher lists every 500 ms
      co_await t.async_wait(asio::use_awaitable);
      tactus::midi::quiesce(out);   // last, just before `out` is destroyed
    }
    stop_watching.emit(asio::cancellation_type::terminal);
    // A new JACK connection takes a moment to carry data (seconds on a loaded machine): send
    // until three have come through.
    for (int i = 0; received < 3 && i < 200; ++i) {
      circuit.send(midi::message::note_on(0, 60 + i % 12, 90));
      t.expires_after(50ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    stop_reading.emit(asio::cancellation_type::terminal);

    auto& in = synth;
    in.on_message([](const tactus::midi::timed_message& m) { std::cout << m.msg.to_string() << '\n'; });
    tactus::midi::output out(ctx.get_executor(), "synth");
    co_await out.async_note(0, 60, 100, 250ms, asio::use_awaitable);
    ended = out.open_count(0, 60) == 0;
    in.close();
    circuit.close();
  }, [&](std::exception_ptr e) {
    if (e) ++errors;
    ignore_abort(e);
  });

  io.run();
  std::printf("%d port(s) appeared, %d message(s) received, note ended: %s\n", appeared, received, ended ? "yes" : "no");
  return appeared >= 1 && received >= 3 && ended && errors == 0 ? 0 : 1;
}
