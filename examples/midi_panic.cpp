// SPDX-License-Identifier: BSL-1.0
// midi_panic: ends every note a synth may still be playing: a note-off for every key, then All
// Notes Off (CC 123) and Sustain off (CC 64 = 0), on all 16 channels.
//
//     midi_panic --port NAME
//
// For after a program was killed with SIGKILL (or crashed, or lost power): the one case no
// program can clean up after itself. Sends 16 x 128 + 32 = 2080 messages to the first
// destination (a synth's MIDI input port) whose name contains NAME, 16 at a time a few
// milliseconds apart (a JACK cycle holds only so many events: sent at once, most would be lost),
// in about half a second. Exit status 0 once sent; Ctrl-C (SIGINT) or SIGTERM meanwhile skips
// the rest of the note-offs but still sends All Notes Off and Sustain off on every channel,
// status 0. A bad option: one line on stderr, exit status 2; no MIDI backend, no such port, or
// the JACK server gone: one line, exit status 1.
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

namespace midi = tactus::midi;

namespace {
constexpr int channels = 16;
constexpr int keys = 128;
constexpr int per_batch = 16;  // messages sent at once: one batch fits a JACK cycle of 64 frames
constexpr auto between_batches = std::chrono::milliseconds(4);
}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"midi_panic: note-off for every key, All Notes Off and Sustain off, on all 16 channels", "midi_panic"};
  std::string port;
  app.add_option("--port", port, "send to the first destination (a synth's MIDI input port) whose name contains NAME")
      ->type_name("NAME")
      ->required();
  if (auto status = examples::parse(app, argc, argv)) return *status;

  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own error message says it once
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  auto held = sd.hold_signals();           // until run(): a signal would interrupt libjack opening the port
  midi::output_options o;
  o.client_name = "midi_panic";
  midi::output out(io.get_executor(), port, o);

  // Key by key, each on all 16 channels: the first batch (key 0) marks every channel as used, so
  // that the output's panic() (the cleanup below) sends CC 123 and CC 64 on all of them, also
  // when a signal ends the note-offs early.
  long sent = 0;
  auto send_batch = [&](int first) {
    for (int i = first; i < first + per_batch && i < channels * keys; ++i, ++sent)
      out.note_off(i % channels, i / channels);
  };
  send_batch(0);
  auto note_offs = [&]() -> asio::awaitable<void> {
    asio::steady_timer pause(io);
    for (int first = per_batch; first < channels * keys; first += per_batch) {
      pause.expires_after(between_batches);  // after the previous batch, never bunched after a stall
      co_await pause.async_wait(asio::use_awaitable);
      send_batch(first);
    }
  };
  // A cycle of its own for these 32: right after a batch they would overflow a small one.
  sd.on_cleanup("All Notes Off and Sustain off", [&]() -> asio::awaitable<void> {
    asio::steady_timer pause(io, between_batches);
    co_await pause.async_wait(asio::use_awaitable);
    out.panic();  // CC 123 and CC 64 = 0 on every channel used: all 16
    sent += 2 * channels;
  });
  asio::co_spawn(io, sd.run(note_offs()), tactus::rethrow);
  io.run();
  std::fprintf(stderr, "midi_panic: %ld messages to %s%s\n", sent, out.port_name().c_str(),
               sd.requested() && sd.signal_number() ? " (interrupted: note-offs cut short)" : "");
  return sd.status();
} catch (const std::system_error& e) {
  if (e.code() == midi::io_errc::server_lost) return std::fprintf(stderr, "midi_panic: the JACK server went away\n"), 1;
  return std::fprintf(stderr, "midi_panic: %s\n", e.what()), 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "midi_panic: %s\n", e.what());
  return 1;
}
