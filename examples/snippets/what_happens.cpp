// SPDX-License-Identifier: BSL-1.0
// The README's "What happens when..." section: a program's answer to the JACK server going away
// (one line, a graceful shutdown, status 1), the bounds of an input's sysex memory, and
// smf_read's bound. Runs without a server: the loss is reported to the handler by hand here, as
// an input's on_error or a failed send would report it.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <tactus/midi/input_options.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/smf.hpp>
#include <asio.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

int main() {
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};
  tactus::metronome m{io.get_executor(), tactus::bpm{120}};
  bool server_lost = false;
  auto on_error = [&](std::error_code ec, const std::string& what) {  // in.on_error(on_error)
    if (ec == tactus::midi::io_errc::server_lost) {                  // also what send() throws
      if (!std::exchange(server_lost, true)) std::fprintf(stderr, "the JACK server went away\n");
      sd.request();                                                  // stop the work, run the cleanups
    } else {
      std::fprintf(stderr, "%s: %s\n", ec.message().c_str(), what.c_str());
    }
  };
  // ... asio::co_spawn(io, sd.run(work()), tactus::rethrow); io.run();
  // return server_lost ? 1 : sd.status();

  tactus::midi::input_options o;
  o.max_sysex_bytes = 64 * 1024;        // a longer sysex: dropped, counted, io_errc::sysex_too_long
  o.max_queued_sysex_bytes = 1 << 20;   // more sysex queued at once: dropped, counted, io_errc::queue_overflow

  try {
    auto song = tactus::midi::smf_read("/dev/zero");  // reads what the chunks declare, at most 64 MiB
  } catch (const tactus::midi::smf_error& e) {        // smf_too_large names the limit
    std::fprintf(stderr, "%s\n", e.what());
  }

  // The snippet's own check: the loss ends the work, and is said once.
  asio::co_spawn(io, sd.run(m.run()), tactus::rethrow);
  asio::post(io, [&] {
    on_error(tactus::midi::io_errc::server_lost, "");
    on_error(tactus::midi::io_errc::server_lost, "");
  });
  io.run();
  return server_lost && sd.status() == 0 && o.max_queued_sysex_bytes >= o.max_sysex_bytes ? 0 : 1;
}
