// SPDX-License-Identifier: BSL-1.0
// link_metronome: a metronome in an Ableton Link session, printing each beat; and the bridges
// between Link and MIDI clock.
//
//     link_metronome [--bpm 120] [--quantum 4] [--json] [--start-stop [--start]] [--seconds N]
//                    [--midi-clock-out PORT | --midi-clock-in PORT]
//
// Joins the Link session on the local network (or starts one at --bpm) and follows its tempo
// and phase: the bar lines (--quantum beats long) fall on the session's. A tempo changed at
// another peer changes here; --start-stop follows the session's start and stop (press play in
// another Link app; --start starts the session from here, quantized to its bar). Each beat prints a live line, or with
// --json one object: {"beat": the session's beat at the moment the beat fired, "bpm", "peers"}.
//
// --midi-clock-out PORT sends 24 ppqn MIDI clock from the session to the first output port whose
// name contains PORT: START on the session's next bar line (with --start-stop: when the session
// starts), STOP when it stops or the program ends. --midi-clock-in PORT brings the MIDI clock
// arriving on that input port into the session: its tempo and bar lines (and START/STOP) become
// the session's, and the beats printed are the source's.
//
// Ctrl-C (SIGINT), SIGTERM or --seconds end it (tactus::shutdown; the MIDI clock gets its STOP),
// exit status 0. A bad option: one line on stderr, exit status 2; no MIDI backend or no such
// port: one line, exit status 1.
//
// Link is GPL-2.0-or-later: this program, built on tactus::link, is too.
#include <tactus/link/follower.hpp>
#include <tactus/link/midi_clock.hpp>
#include <tactus/metronome.hpp>
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/clock_master.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/task_group.hpp>

#include "cli.hpp"
#include "server_lost.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace midi = tactus::midi;

int main(int argc, char** argv) try {
  CLI::App app{"link_metronome: a metronome in an Ableton Link session", "link_metronome"};
  double bpm = 120, seconds = 0;
  int quantum = 4;
  bool json = false, start_stop = false, start = false;
  std::string clock_out, clock_in;
  app.add_option("--bpm", bpm, "tempo when this program starts the session")
      ->check(examples::finite_range(20, 999))
      ->capture_default_str();
  app.add_option("--quantum", quantum, "beats of the session's phase, and of a bar")
      ->check(examples::whole_range(1, 16))
      ->capture_default_str();
  app.add_flag("--json", json, "one JSON object per beat");
  auto* start_stop_opt =
      app.add_flag("--start-stop", start_stop, "follow the session's start and stop (Link start/stop sync)");
  app.add_flag("--start", start, "start the session (quantized to its bar)")->needs(start_stop_opt);
  app.add_option("--seconds", seconds, "stop after this long, 0 = until Ctrl-C")
      ->check(examples::finite_range(0, 1e6))
      ->capture_default_str();
  auto* out_opt =
      app.add_option(
             "--midi-clock-out", clock_out,
             "send MIDI clock from the session to the first destination (a MIDI input port) whose name contains PORT")
          ->type_name("PORT");
  app.add_option("--midi-clock-in", clock_in,
                 "bring the MIDI clock of the first input port whose name contains PORT into the session")
      ->type_name("PORT")
      ->excludes(out_opt);
  if (auto status = examples::parse(app, argc, argv)) return *status;
  const tactus::bpm tempo{bpm};  // checked above
  const tactus::beats bar{quantum};

  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own error message says it once
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  auto held = sd.hold_signals();           // until run(): a signal would interrupt libjack opening a port
  tactus::link::session link{io.get_executor(), tempo, {.start_stop_sync = start_stop}};
  tactus::metronome m{io.get_executor(), tempo, tactus::meter{quantum}};

  // What drives the metronome: the session, or (--midi-clock-in) a MIDI clock that drives the session.
  std::optional<tactus::link::follower> follow;
  std::optional<midi::input> in;
  std::optional<midi::clock_follower> from_midi;
  std::optional<tactus::link::midi_clock_in> into_link;
  if (clock_in.empty()) {
    follow.emplace(link, m, tactus::link::follower_options{.quantum = bar, .start_stop = start_stop});
  } else {
    midi::input_options o;
    o.client_name = "tactus-link";
    in.emplace(io.get_executor(), clock_in, o);
    from_midi.emplace(*in, m);
    into_link.emplace(link, *from_midi, m, tactus::link::midi_clock_in_options{.quantum = bar});
  }
  // --midi-clock-out: a clock master driven by the session.
  std::optional<midi::output> out;
  std::optional<midi::clock_master> master;
  std::optional<tactus::link::midi_clock_out> from_link;
  if (!clock_out.empty()) {
    midi::output_options o;
    o.client_name = "tactus-link";
    // The STOP sent at the end must leave before the port closes, on a loaded machine too.
    o.close_drain = std::chrono::milliseconds(200);
    out.emplace(io.get_executor(), clock_out, o);
    master.emplace(io.get_executor(), *out, tempo);
    from_link.emplace(link, *master, tactus::link::midi_clock_out_options{.quantum = bar, .start_stop = start_stop});
  }
  // The JACK server going away: one line, status 1 (see the README's "What happens when..."). The
  // clock master's failed send ends its run() with the error, which io.run() rethrows (the catch
  // below); an input says it here.
  bool server_lost = false;
  auto lost = [&] {
    if (!std::exchange(server_lost, true)) examples::say_server_lost("link_metronome");
    sd.request();
  };
  if (in)
    in->on_error([&](std::error_code ec, const std::string& what) {
      if (ec == midi::io_errc::server_lost) lost();
      else std::fprintf(stderr, "link_metronome: %s: %s\n", ec.message().c_str(), what.c_str());
    });

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
    std::fprintf(stderr, "in a Link session at %.2f BPM, quantum %d%s%s%s%s (Ctrl-C to stop)\n", link.tempo().value(),
                 quantum, out ? ", MIDI clock to " : "", out ? out->port_name().c_str() : "",
                 in ? ", MIDI clock from " : "", in ? in->port_name().c_str() : "");
  // --start: as pressing play in a Link app (a peer may stop it).
  if (start && follow) asio::post(io, [&] { follow->start_playing(); });

  tactus::task_group tasks{io.get_executor()};
  tasks.spawn(m.run({.paused = true}));
  if (follow) tasks.spawn(follow->run());
  if (from_midi) tasks.spawn(from_midi->run());
  if (into_link) tasks.spawn(into_link->run());
  if (from_link) tasks.spawn(from_link->run());  // STOP when it ends
  if (in) sd.on_cleanup("close the input", [&] { in->close(); });
  if (seconds > 0) sd.request_after(std::chrono::duration<double>(seconds));
  asio::co_spawn(io, sd.run(tasks), tactus::rethrow);
  io.run();
  return server_lost ? 1 : sd.status();
} catch (const std::system_error& e) {
  if (examples::is_server_lost(e)) return examples::say_server_lost("link_metronome");
  std::fprintf(stderr, "link_metronome: %s\n", e.what());
  return 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "link_metronome: %s\n", e.what());
  return 1;
}
