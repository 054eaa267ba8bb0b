// SPDX-License-Identifier: BSL-1.0
// drum_machine: a drum machine and a bass line on tactus's metronome, following its own tempo or
// an external MIDI clock (a Novation Circuit, a DAW, any clock master). With no MIDI at all it
// still plays: a step grid in the terminal and a MIDI file. See --help and README.md.
//
//   drum_machine                                  virtual ports (or, without MIDI, 8 bars to a file)
//   drum_machine --pattern electro --swing 0.2    ... connect them to a synth
//   drum_machine --clock midi --clock-port circuit --drums-port circuit --bass-port circuit
//
// It reads top to bottom like the talk it reproduces: open the ports, follow the clock, run the
// metronome, play the pattern, stop cleanly. Beside it: options.hpp (the command line),
// pattern.hpp (patterns and their text format), ports.hpp (MIDI ports), player.hpp (what each 16th
// plays), sound.hpp (the parts' outputs and the recording), grid_display.hpp (the terminal).
#include <tactus/metronome.hpp>
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/input.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/shutdown.hpp>

#include "../server_lost.hpp"
#include "grid_display.hpp"
#include "options.hpp"
#include "player.hpp"
#include "ports.hpp"
#include "sound.hpp"
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

namespace dm = drum_machine;
namespace midi = tactus::midi;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) try {
  const auto opt = dm::parse_options(argc, argv);
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};   // from here on, Ctrl-C ends it cleanly,
  auto held = sd.hold_signals();            // once the ports are open (see shutdown.hpp)
  midi::set_jack_message_handler(nullptr);  // libjack's lines: our own message says it once
  if (opt.list) return dm::list_patterns_and_ports();
  const auto pat = dm::load_pattern(opt);

  // The JACK server gone: said once, below (a cleanup's failed note-off is no news then).
  sd.on_report(examples::report_unless_server_lost);

  // Is there MIDI here? Without it, play to the terminal and to a file.
  const bool have_midi = dm::midi_reachable();
  if (!have_midi && (opt.clock == "midi" || opt.names_a_port()))
    throw std::runtime_error(std::string("no MIDI backend (no JACK server, no ALSA sequencer) for ") +
                             (opt.clock == "midi" ? "--clock midi" : "the port asked for"));
  const auto record = opt.record  ? opt.record
                      : have_midi ? std::nullopt
                                  : std::optional<std::string>("drum_machine.mid");
  if (record) dm::check_writable(*record);
  const long bars = opt.bars.value_or(have_midi ? 0 : 8);
  if (!have_midi)
    std::printf("No MIDI backend: playing %ld bar%s here, recording to %s\n", bars, bars == 1 ? "" : "s",
                record->c_str());

  // 1. Open the ports: one output a part (one for both when they name the same port).
  const auto ex = io.get_executor();
  std::shared_ptr<midi::output> drums_out, bass_out;
  if (have_midi) {
    drums_out = dm::open_output(ex, opt.drums_port, "drums");
    const bool shared =
        opt.bass_port && opt.drums_port && midi::find_output_port(*opt.bass_port) == drums_out->port_name();
    bass_out = shared ? drums_out : dm::open_output(ex, opt.bass_port, "bass");
    std::printf("drums: %s channel %d, bass: %s channel %d\n", drums_out->port_name().c_str(), opt.drums_channel,
                bass_out->port_name().c_str(), opt.bass_channel);
  }

  // 2. The metronome: 16ths, on its own tempo or following a MIDI clock.
  tactus::metronome metro{ex, tactus::bpm{opt.bpm}, tactus::meter{4}, tactus::subdivision{dm::steps_per_beat}};
  std::optional<midi::input> clock_in;
  std::optional<midi::clock_follower> follower;
  if (opt.clock == "midi") {
    const midi::input_options o{.client_name = "drum_machine_clock"};
    clock_in.emplace(opt.clock_port ? midi::input(ex, *opt.clock_port, o) : midi::input(ex, midi::virtual_port, o));
    follower.emplace(*clock_in, metro);
  }

  // 3. The pattern, to the ports, the recording and the terminal.
  dm::sound<clock_type> sound{
      metro,    dm::to_port(drums_out), opt.drums_channel - 1, dm::to_port(bass_out), opt.bass_channel - 1, record,
      opt.swing};
  dm::player<clock_type> player{metro, pat, sound, opt.swing};
  dm::grid_display grid{pat, follower ? "MIDI clock" : "internal clock"};
  long steps = 0;
  player.on_step([&](int step, const tactus::tick& t) {
    ++steps;
    if (t.is_beat()) sound.tempo(t.tempo, t.position);  // a followed clock changes it
    grid.show(step, t);
  });
  if (follower) {
    grid.status("on " + clock_in->port_name() + ": waiting for START");
    follower->on_state_change([&](midi::transport_state s) {
      if (s != midi::transport_state::playing) player.stop_sounding();  // STOP or a lost clock: every note ends
      grid.status(s == midi::transport_state::playing ? "playing"
                  : s == midi::transport_state::lost  ? "clock lost: waiting for it"
                                                      : "stopped: waiting for START or CONTINUE");
    });
  }

  // 4. Play until the bars are played or the clock's input closes, whichever ends first, or until
  // Ctrl-C. Then every note ends (the MIDI panic) and the recording is written.
  std::string ending = "Interrupted";
  auto clocked = [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    if (follower) co_await (metro.run({.paused = true}) || follower->run());
    else co_await metro.run();
  };
  auto play = [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    const auto why = co_await (player.run(bars) || clocked());
    if (player.error()) ending = "Stopped by an error";
    else if (!sd.requested())
      ending = why.index() == 0 ? "Played " + std::to_string(bars) + (bars == 1 ? " bar" : " bars")
                                : "The clock's input closed";
  };
  sd.on_cleanup("close the clock's input", [&] {
    if (clock_in) clock_in->close();
  });
  sd.on_cleanup("every note ended", [&] { player.stop_sounding(); });
  asio::co_spawn(io, sd.run(play()), tactus::rethrow);
  io.run();
  grid.finish();
  const auto file = sound.close();
  std::printf("%s%s after %ld steps, %ld notes, every one ended.%s%s\n", grid.is_tty() ? "\r" : "", ending.c_str(),
              steps, sound.notes_played(), file ? " Recorded to " : "", file ? file->c_str() : "");
  if (const auto e = player.error()) return std::fprintf(stderr, "drum_machine: %s\n", e.message().c_str()), 1;
  return sd.status();
} catch (const std::system_error& e) {
  if (examples::is_server_lost(e)) return examples::say_server_lost("drum_machine");
  std::fprintf(stderr, "drum_machine: %s\n", e.what());
  return 1;
} catch (const dm::usage_error& e) {
  std::fprintf(stderr, "drum_machine: %s (try --help)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "drum_machine: %s\n", e.what());
  return 1;
}
