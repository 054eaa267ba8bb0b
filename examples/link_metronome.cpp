// SPDX-License-Identifier: BSL-1.0
// link_metronome: a metronome in an Ableton Link session, printing each beat.
//
//     link_metronome [--bpm 120] [--quantum 4] [--json] [--start-stop] [--seconds N]
//
// Joins the Link session on the local network (or starts one at --bpm) and follows its tempo
// and phase: the bar lines (--quantum beats long) fall on the session's. A tempo changed at
// another peer changes here; --start-stop follows the session's start and stop (and starts it
// when alone in it: press play in another app to stop it). Each beat prints a live line, or with
// --json one object: {"beat": the session's beat at the moment the beat fired, "bpm", "peers"}.
// Ctrl-C (SIGINT), SIGTERM or --seconds end it (tactus::shutdown), exit status 0; a bad option:
// one line on stderr, exit status 2.
//
// Link is GPL-2.0-or-later: this program, built on tactus::link, is too.
#include <tactus/link/follower.hpp>
#include <tactus/metronome.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace {

// The metronome and its follower, until the shutdown cancels both.
asio::awaitable<void> play(tactus::metronome& m, tactus::link::follower& follow) {
  using namespace tactus::detail::awaitable_operators;
  co_await (m.run({.paused = true}) && follow.run());
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"link_metronome: a metronome in an Ableton Link session", "link_metronome"};
  double bpm = 120, seconds = 0;
  int quantum = 4;
  bool json = false, start_stop = false;
  app.add_option("--bpm", bpm, "tempo when this program starts the session")
      ->check(examples::finite_range(20, 999))
      ->capture_default_str();
  app.add_option("--quantum", quantum, "beats of the session's phase, and of a bar")
      ->check(examples::whole_range(1, 16))
      ->capture_default_str();
  app.add_flag("--json", json, "one JSON object per beat");
  app.add_flag("--start-stop", start_stop, "follow the session's start and stop (Link start/stop sync)");
  app.add_option("--seconds", seconds, "stop after this long, 0 = until Ctrl-C")
      ->check(examples::finite_range(0, 1e6))
      ->capture_default_str();
  if (auto status = examples::parse(app, argc, argv)) return *status;

  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  tactus::link::session link{io.get_executor(), tactus::bpm{bpm}, {.start_stop_sync = start_stop}};
  tactus::metronome m{io.get_executor(), tactus::bpm{bpm}, tactus::meter{quantum}};
  tactus::link::follower follow{link, m, {.quantum = tactus::beats{quantum}, .start_stop = start_stop}};

  m.on_beat([&](const tactus::tick& t) {
    // The session's beat now, as Link counts it: where this beat fired on the session's grid.
    const double beat = link.capture().beatAtTime(link.native().clock().micros(), quantum);
    if (json) {
      const nlohmann::json line{{"beat", beat}, {"bpm", t.tempo.value()}, {"peers", link.peers()}};
      std::printf("%s\n", line.dump().c_str());
    } else {
      std::printf("%6lld:%d  %6.2f BPM  %zu peer%s%s\n", static_cast<long long>(t.bar) + 1, t.beat_in_bar + 1,
                  t.tempo.value(), link.peers(), link.peers() == 1 ? "" : "s", t.is_downbeat() ? "  *" : "");
    }
    std::fflush(stdout);
  });
  if (!json)
    std::fprintf(stderr, "in a Link session at %.2f BPM, quantum %d (Ctrl-C to stop)\n", link.tempo().value(), quantum);
  // Alone with --start-stop: start the session, as pressing play would (a peer may stop it).
  if (start_stop && !link.capture().isPlaying()) asio::post(io, [&] { follow.start_playing(); });

  if (seconds > 0) sd.request_after(std::chrono::duration<double>(seconds));
  asio::co_spawn(io, sd.run(play(m, follow)), tactus::rethrow);
  io.run();
  return sd.status();
} catch (const std::exception& e) {
  std::fprintf(stderr, "link_metronome: %s\n", e.what());
  return 1;
}
