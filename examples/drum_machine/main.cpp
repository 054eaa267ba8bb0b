// SPDX-License-Identifier: BSL-1.0
// drum_machine: a drum machine and a bass line on tactus's metronome, following its own tempo
// or an external MIDI clock (a Novation Circuit, a DAW, any clock master). With no MIDI at
// all it still plays: a step grid in the terminal and a MIDI file. See --help and README.md.
//
//   drum_machine                                  8 bars to the terminal and drum_machine.mid
//   drum_machine --pattern electro --swing 0.2    virtual ports: connect them to a synth
//   drum_machine --clock midi --clock-port circuit --drums-port circuit --bass-port circuit
//
// Files: pattern.hpp (patterns and their text format), player.hpp (what each 16th plays),
// sound.hpp (MIDI outputs and the recording), grid_display.hpp (the terminal).
#include <tactus/metronome.hpp>
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/input.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/midi/ports.hpp>

#include "grid_display.hpp"
#include "pattern.hpp"
#include "player.hpp"
#include "sound.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace dm = drum_machine;
namespace midi = tactus::midi;

namespace {

constexpr const char* usage = R"(usage: drum_machine [options]

Clock
  --clock internal|midi   internal (default) or follow an external 24 ppqn MIDI clock
  --bpm N                 internal tempo, default 120
  --clock-port NAME       MIDI input with the clock (default: a virtual input to connect to)
Sound
  --drums-port NAME       MIDI output for the drums, by any part of its name (case ignored)
  --bass-port NAME        MIDI output for the bass (may be the same port)
                          Without a port: virtual outputs drum_machine_drums:out and
                          drum_machine_bass:out (JACK or ALSA) for any synth to connect to.
  --drums-channel N       1..16, default 10 (General MIDI drums)
  --bass-channel N        1..16, default 1
  --drum-key NAME=KEY     play row NAME on another key, e.g. --drum-key kick=60 (repeatable)
  --record FILE           also record to a Standard MIDI File
Pattern
  --pattern NAME          four-on-the-floor (default), breakbeat, electro, acid
  --pattern-file FILE     a pattern in the text format (see patterns/*.txt)
  --swing F               delay every other 16th by F of a 16th, 0..0.5 (default 0)
Ending
  --bars N                play N bars and exit; 0 = until Ctrl-C (a MIDI STOP pauses, it
                          does not end the program).
                          Default 0, or 8 when no MIDI backend is reachable.
  --list                  list the patterns and MIDI ports, then exit

With no MIDI backend (no JACK server, no ALSA sequencer) it plays to the terminal grid and
records to drum_machine.mid (or --record FILE). Ctrl-C ends it at once, every note ended.
)";

struct options {
  std::string clock = "internal";
  double bpm = 120;
  std::optional<std::string> clock_port, drums_port, bass_port, record, pattern_file;
  std::string pattern = "four-on-the-floor";
  int drums_channel = 10, bass_channel = 1;
  std::vector<std::pair<std::string, int>> drum_keys;
  double swing = 0;
  std::optional<long> bars;
  bool list = false;
};

int to_int(const std::string& opt, const std::string& v, int lo, int hi) {
  std::size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || n < lo || n > hi)
    throw std::invalid_argument(opt + " wants a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                                ", not \"" + v + "\"");
  return n;
}

double to_double(const std::string& opt, const std::string& v, double lo, double hi) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || !(x >= lo && x <= hi)) {
    char range[64];
    std::snprintf(range, sizeof range, " wants a number from %g to %g, not \"", lo, hi);
    throw std::invalid_argument(opt + range + v + "\"");
  }
  return x;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value (try --help)");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    } else if (arg == "--clock") {
      o.clock = value();
      if (o.clock != "internal" && o.clock != "midi") throw std::invalid_argument("--clock is internal or midi");
    } else if (arg == "--bpm") o.bpm = to_double(arg, value(), 20, 400);
    else if (arg == "--clock-port") o.clock_port = value();
    else if (arg == "--drums-port") o.drums_port = value();
    else if (arg == "--bass-port") o.bass_port = value();
    else if (arg == "--drums-channel") o.drums_channel = to_int(arg, value(), 1, 16);
    else if (arg == "--bass-channel") o.bass_channel = to_int(arg, value(), 1, 16);
    else if (arg == "--drum-key") {
      const auto v = value();
      const auto eq = v.find('=');
      if (eq == std::string::npos) throw std::invalid_argument("--drum-key wants NAME=KEY, e.g. kick=60");
      o.drum_keys.emplace_back(v.substr(0, eq), to_int(arg, v.substr(eq + 1), 0, 127));
    } else if (arg == "--record") o.record = value();
    else if (arg == "--pattern") o.pattern = value();
    else if (arg == "--pattern-file") o.pattern_file = value();
    else if (arg == "--swing") o.swing = to_double(arg, value(), 0, 0.5);
    else if (arg == "--bars") o.bars = to_int(arg, value(), 0, 1'000'000);
    else if (arg == "--list") o.list = true;
    else throw std::invalid_argument("unknown option " + arg + " (try --help)");
  }
  return o;
}

dm::pattern load_pattern(const options& o) {
  dm::pattern p;
  if (o.pattern_file) {
    std::ifstream in(*o.pattern_file);
    if (!in) throw std::runtime_error("cannot open pattern file " + *o.pattern_file);
    p = dm::parse_pattern(in, *o.pattern_file);
    if (p.name.empty()) p.name = *o.pattern_file;
  } else {
    p = dm::builtin_pattern(o.pattern);
  }
  for (const auto& remap : o.drum_keys) {
    auto row = std::find_if(p.drums.begin(), p.drums.end(), [&](auto& d) { return d.name == remap.first; });
    if (row == p.drums.end())
      throw std::invalid_argument("--drum-key " + remap.first + ": the pattern has no row " + remap.first);
    row->key = remap.second;
  }
  return p;
}

int list(const options&) {
  std::puts("patterns:");
  for (auto& b : dm::builtins) std::printf("  %s\n", std::string(b.name).c_str());
  try {
    std::printf("MIDI output ports (%s):\n", std::string(midi::to_string(midi::available_api())).c_str());
    for (auto& name : midi::output_ports()) std::printf("  %s\n", name.c_str());
    std::puts("MIDI input ports:");
    for (auto& name : midi::input_ports()) std::printf("  %s\n", name.c_str());
  } catch (const midi::backend_unavailable&) {
    std::puts("no MIDI backend: no JACK server running and no ALSA sequencer");
  }
  return 0;
}

// Whether a MIDI backend works here. libjack prints half a screen to stderr when no JACK server
// runs; the answer is all we need, so stderr is muted while we ask.
bool midi_reachable() {
  std::fflush(stderr);
  struct muted {
    int saved = ::dup(2);
    muted() {
      if (const int null = ::open("/dev/null", O_WRONLY); null >= 0) ::dup2(null, 2), ::close(null);
    }
    ~muted() {
      if (saved >= 0) ::dup2(saved, 2), ::close(saved);
    }
  } quiet;
  try {
    (void)midi::available_api();
    return true;
  } catch (const midi::backend_unavailable&) {
    return false;
  }
}

// The outputs of both parts: a port by name, or a virtual port. Parts naming the same port share it.
std::pair<dm::note_sink::route, dm::note_sink::route> open_outputs(asio::any_io_executor ex, const options& o) {
  auto open = [&](const std::optional<std::string>& port, const char* part) {
    midi::output_options opts;
    opts.client_name = std::string("drum_machine_") + part;
    if (port) return std::make_shared<midi::output>(ex, *port, opts);
    opts.port_name = "out";
    return std::make_shared<midi::output>(ex, midi::virtual_port, opts);
  };
  auto drums = open(o.drums_port, "drums");
  auto bass = o.bass_port && o.drums_port && midi::find_output_port(*o.bass_port) == drums->port_name()
                  ? drums
                  : open(o.bass_port, "bass");
  return {{drums, o.drums_channel - 1}, {bass, o.bass_channel - 1}};
}

}  // namespace

int main(int argc, char** argv) try {
  const auto opt = parse(argc, argv);
  if (opt.list) return list(opt);
  const auto pat = load_pattern(opt);

  // Is there MIDI here? Without it, play to the terminal and to a file.
  const bool have_midi = midi_reachable();
  if (!have_midi && opt.clock == "midi")
    throw std::runtime_error(
        "--clock midi needs a MIDI backend, and there is none (no JACK server, no ALSA sequencer)");
  const auto record = opt.record  ? opt.record
                      : have_midi ? std::nullopt
                                  : std::optional<std::string>("drum_machine.mid");
  const long bars = opt.bars.value_or(have_midi ? 0 : 8);
  if (!have_midi)
    std::printf("No MIDI backend (no JACK server, no ALSA sequencer): playing %ld bar%s here, recording to %s\n", bars,
                bars == 1 ? "" : "s", record->c_str());

  asio::io_context io;
  const auto ex = io.get_executor();
  tactus::metronome metro{ex, tactus::bpm{opt.bpm}, tactus::meter{4}, tactus::subdivision{dm::steps_per_beat}};

  dm::note_sink::route drums{nullptr, opt.drums_channel - 1}, bass{nullptr, opt.bass_channel - 1};
  if (have_midi) std::tie(drums, bass) = open_outputs(ex, opt);
  dm::note_sink sink(drums, bass, record, tactus::bpm{opt.bpm});
  dm::player player(pat, sink, opt.swing, metro);
  dm::grid_display grid(pat, opt.clock == "midi" ? "MIDI clock" : "internal clock");
  auto where = [](const dm::note_sink::route& r, const std::optional<std::string>& named, const char* part) {
    return named ? r.out->port_name() : "virtual port drum_machine_" + std::string(part) + ":out";
  };
  if (drums.out)
    std::printf("drums: %s channel %d, bass: %s channel %d\n", where(drums, opt.drums_port, "drums").c_str(),
                opt.drums_channel, where(bass, opt.bass_port, "bass").c_str(), opt.bass_channel);

  // Every way out comes through here: every note ended, panic sent, the recording written.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::optional<midi::input> clock_in;
  std::function<void()> stop_clock;
  bool finished = false;
  int exit_code = 0;
  long steps = 0;
  auto finish = [&](const std::string& why) {
    if (finished) return;
    finished = true;
    player.silence();
    metro.stop();
    if (stop_clock) stop_clock();
    if (clock_in) clock_in->close();
    signals.cancel();
    grid.finish();
    const auto file = sink.close();
    std::printf("%s%s after %ld steps, %ld notes, every one ended.%s%s\n", grid.is_tty() ? "\r" : "", why.c_str(),
                steps, sink.notes_played(), file ? " Recorded to " : "", file ? file->c_str() : "");
    std::fflush(stdout);
  };

  metro.on_tick([&](const tactus::tick& b) -> asio::awaitable<void> {
    player.end_notes(b);
    if (bars > 0 && steps >= bars * pat.steps()) {
      finish("Played " + std::to_string(bars) + (bars == 1 ? " bar" : " bars"));
      co_return;
    }
    ++steps;
    if (b.is_beat()) sink.tempo(b.tempo, b.scheduled);  // a followed clock changes it
    const int step = player.step_at(b);
    grid.show(step, b);
    co_await player.play(step, b);
  });
  metro.set_error_handler([&](std::exception_ptr e, const tactus::tick&) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "drum_machine: %s\n", x.what());
    }
    exit_code = 1;
    finish("Stopped by an error");
  });

  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) finish("Interrupted");
  });

  auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  if (opt.clock == "midi") {
    midi::input_options in_opts;
    in_opts.client_name = "drum_machine_clock";
    clock_in.emplace(opt.clock_port ? midi::input(ex, *opt.clock_port, in_opts)
                                    : midi::input(ex, midi::virtual_port, in_opts));
    auto follower = std::make_shared<midi::clock_follower>(*clock_in, metro);
    stop_clock = [follower] { follower->stop(); };
    follower->on_state_change([&](midi::transport_state s) {
      if (s != midi::transport_state::playing) player.silence();  // STOP or lost clock: no note hangs
      grid.status(s == midi::transport_state::playing ? "playing"
                  : s == midi::transport_state::lost  ? "clock lost: waiting for it"
                                                      : "stopped: waiting for START or CONTINUE");
    });
    grid.status("on " + clock_in->port_name() + ": waiting for START");
    asio::co_spawn(io, follower->run(), rethrow);
    asio::co_spawn(io, metro.run({.paused = true}), rethrow);
  } else {
    asio::co_spawn(io, metro.run(), rethrow);
  }
  io.run();
  return exit_code;
} catch (const std::exception& e) {
  std::fprintf(stderr, "drum_machine: %s\n", e.what());
  return 1;
}
