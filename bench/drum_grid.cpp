// SPDX-License-Identifier: BSL-1.0
// drum_grid: how exactly the drum machine (examples/drum_machine: its player and sound, in this
// process) puts its notes on the grid, on its internal clock, seen by an independent
// frame-stamped capture client (tests/support/jack_capture.hpp): through the native JACK
// backend (api::jack), through RtMidi's JACK client (api::jack_rtmidi) and, as the floor, a
// plain libjack client writing the ideal frames. A hat on every 16th and a kick on the beats,
// odd 16ths swung. The grid offset of a note is its captured time (from its frame) minus its
// ideal grid time, after a straight line (phase and rate) is fitted through all of a path's notes
// but the first step's (played as the run begins): the constant latency drops out, what is left
// is jitter.
// Prints one JSON object: per path, the grid offset p50/p99/max of its magnitude in
// microseconds, the notes seen and expected.
//
// Needs a running JACK server (JACK_DEFAULT_SERVER, else the default one); it starts none
// (scripts/bench starts a private dummy server at 128 frames / 48 kHz when none is given):
//   JACK_DEFAULT_SERVER=bench-jack build/release/bench/drum_grid --seconds 20
#include <tactus/metronome.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/rethrow.hpp>

#include "../examples/drum_machine/pattern.hpp"
#include "../examples/drum_machine/player.hpp"
#include "../examples/drum_machine/ports.hpp"
#include "../examples/drum_machine/sound.hpp"
#include "jack_capture.hpp"
#include "jack_link.hpp"
#include "support/cli.hpp"
#include "support/jack_floor.hpp"
#include "support/json.hpp"
#include "support/load.hpp"
#include "support/stats.hpp"
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace midi = tactus::midi;
namespace dm = drum_machine;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using tactus_bench::json;
using tactus_bench::rounded;

using tactus_bench::loadavg;

namespace {

// output_options::lookahead of the tactus outputs (--lookahead).
std::chrono::milliseconds lookahead = midi::output_options{}.lookahead;

constexpr const char* grid_pattern = R"(
kick:  X...X...X...X...
hat:   xxxxxxxxxxxxxxxx
)";
constexpr int drums_channel = 9;

// The times of the Note Ons captured (microseconds of the steady clock, from their frames: see
// jack_capture; times rather than frames, whose count jumps after an xrun).
std::vector<std::int64_t> note_on_times(const std::vector<tactus_tests::captured_event>& events) {
  std::vector<std::int64_t> times;
  for (const auto& e : events)
    if (e.size == 3 && (e.bytes[0] & 0xF0) == 0x90 && e.bytes[2] > 0) times.push_back(e.steady_usecs);
  return times;
}

// The drum machine's player and sound, to an output on `backend`, for `bars` bars.
std::vector<std::int64_t> run_drum_machine(midi::api backend, const std::string& client, double bpm, double swing,
                                           long bars, tactus_tests::jack_capture& cap, json& extra) {
  (void)cap.drain();  // what the previous path's output sent as it closed
  asio::io_context io;
  const auto ex = io.get_executor();
  auto out = std::make_shared<midi::output>(
      ex, cap.port_name(), midi::output_options{.backend = backend, .client_name = client, .lookahead = lookahead});
  auto rx = tactus_tests::as_messages(cap);
  tactus_tests::link(*out, rx);
  const auto pat = dm::parse_pattern(grid_pattern, "grid");
  tactus::metronome metro{ex, tactus::bpm{bpm}, tactus::meter{4}, tactus::subdivision{dm::steps_per_beat}};
  dm::sound<clk> sound{metro, dm::to_port(out), drums_channel, {}, 0, std::nullopt, swing};
  dm::player<clk> player{metro, pat, sound, swing};
  auto play = [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    co_await (player.run(bars) || metro.run());
  };
  asio::co_spawn(io, play(), tactus::rethrow);
  io.run();
  sound.close();
  extra["notes_played"] = sound.notes_played();
  // What the output saw: messages whose time had passed when handed over (sent at once), xruns.
  extra["output_late"] = out->late();
  extra["output_xruns"] = out->xruns();
  extra["output_dropped"] = out->dropped();
  if (player.error()) extra["error"] = player.error().message();
  const auto frames = note_on_times(cap.drain());
  return frames;
}

// The floor: the ideal frames of the same notes, by a plain libjack client.
std::vector<std::int64_t> run_floor(tactus_bench::jack_floor& floor, double bpm, double swing, long bars,
                                    tactus_tests::jack_capture& cap) {
  const auto pat = dm::parse_pattern(grid_pattern, "grid");
  const double frames_per_step = cap.sample_rate() * 60.0 / (bpm * dm::steps_per_beat);
  std::vector<tactus_bench::jack_floor::event> ev;
  const long steps = bars * 4 * dm::steps_per_beat;
  for (long n = 0; n < steps; ++n) {
    const int step = int(n % pat.steps());
    const double x = double(n) + (n % 2 ? swing : 0.0);
    const auto at = std::llround(x * frames_per_step);
    for (const auto& d : pat.drums)
      if (const int v = d.steps[step]) {
        ev.push_back({at, {std::uint8_t(0x90 | drums_channel), std::uint8_t(d.key), std::uint8_t(v)}, 3});
        ev.push_back({std::llround((double(n) + 1) * frames_per_step),
                      {std::uint8_t(0x80 | drums_channel), std::uint8_t(d.key), 0},
                      3});
      }
  }
  std::stable_sort(ev.begin(), ev.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  cap.take();
  floor.start(std::move(ev));
  while (!floor.done()) std::this_thread::sleep_for(10ms);
  return note_on_times(cap.drain());
}

// Grid offsets: each note's time against the straight line through all of them over its grid
// position in steps (odd steps + swing). The first note is step 0; each note's step is the
// nearest one at the nominal tempo (a note off by half a step would be taken for its neighbour:
// max_us says so). The first step is played as the run begins, late by the wake-up (nothing
// could schedule it ahead): it is left out, and shown as first_step_late_us.
json summary(const std::vector<std::int64_t>& times, double bpm, double swing, long expected) {
  if (times.size() < 2) return {{"notes_seen", times.size()}, {"notes_expected", expected}};
  const double us_per_step = 60e6 / (bpm * dm::steps_per_beat);
  std::vector<double> x, y;
  for (const auto t : times) {
    const double s = double(t - times[0]) / us_per_step;
    const auto n = std::int64_t(std::floor(s));  // step n, or n swung
    // Between step n (at n, or n + swing when odd) and step n + 1 (n + 1 + swing, or n + 1): the
    // midpoint is n + (1 + swing) / 2 either way.
    const std::int64_t step = s - double(n) < (1 + swing) / 2 ? n : n + 1;
    if (step == 0) continue;
    x.push_back(double(step) + (step % 2 ? swing : 0.0));
    y.push_back(double(t - times[0]));
  }
  const double n = double(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
  mx /= n;
  my /= n;
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  const double b = sxy / sxx, a = my - b * mx;
  std::vector<double> off;
  for (std::size_t i = 0; i < x.size(); ++i) off.push_back(std::abs(y[i] - (a + b * x[i])));
  const auto p = tactus_bench::summarise(off);
  return {{"notes_seen", times.size()},
          {"notes_expected", expected},
          {"grid_offset_p50_us", rounded(p.p50, 1)},
          {"grid_offset_p99_us", rounded(p.p99, 1)},
          {"grid_offset_max_us", rounded(p.max, 1)},
          {"first_step_late_us", rounded(-a, 1)},
          {"fitted_step_us", rounded(b, 3)},
          {"nominal_step_us", rounded(us_per_step, 3)}};
}

}  // namespace

int main(int argc, char** argv) try {
  double seconds = 20, bpm = 120, swing = 0.2;
  CLI::App app{
      "drum_grid: how exactly the drum machine's notes land on its grid on JACK, native backend beside RtMidi's JACK "
      "client and a plain libjack floor, captured with frame stamps; prints one JSON object",
      "drum_grid"};
  app.add_option("--seconds", seconds, "seconds per path (rounded to whole bars)")
      ->check(tactus_bench::range(2.0, 3600.0))
      ->capture_default_str();
  app.add_option("--bpm", bpm, "tempo")->check(tactus_bench::range(30.0, 300.0))->capture_default_str();
  app.add_option("--swing", swing, "swing of the odd 16ths, in steps")
      ->check(tactus_bench::range(0.0, 0.45))
      ->capture_default_str();
  int lookahead_ms = int(lookahead.count());
  app.add_option("--lookahead", lookahead_ms, "ms: how far ahead the tactus outputs get each message (output_options)")
      ->check(tactus_bench::range(1, 1000))
      ->capture_default_str();
  tactus_bench::parse(app, argc, argv);
  lookahead = std::chrono::milliseconds(lookahead_ms);

  const std::string load_before = loadavg();
  const long bars = std::max(1L, std::lround(seconds * bpm / 60.0 / 4.0));
  const auto pat = dm::parse_pattern(grid_pattern, "grid");
  long per_bar = 0;
  for (const auto& d : pat.drums)
    for (int s = 0; s < pat.steps(); ++s) per_bar += d.steps[std::size_t(s)] ? 1 : 0;
  const long expected = per_bar * bars;

  midi::set_jack_message_handler(nullptr);  // libjack's lines: the capture's own error says it once
  tactus_tests::jack_capture cap("dgrid-capture");
  tactus_bench::jack_floor floor("dgrid-floor");
  floor.connect(cap.port_name());
  const std::uint32_t rate = cap.sample_rate(), period = cap.period();
  const char* server = std::getenv("JACK_DEFAULT_SERVER");

  json paths = json::object();
  for (const auto& [name, backend] :
       {std::pair{"native", midi::api::jack}, std::pair{"jack_rtmidi", midi::api::jack_rtmidi}}) {
    std::fprintf(stderr, "drum_grid: %s, %ld bars\n", name, bars);
    json extra = json::object();
    paths[name] = summary(run_drum_machine(backend, std::string("dgrid-") + name, bpm, swing, bars, cap, extra), bpm,
                          swing, expected);
    paths[name].update(extra);
  }
  std::fprintf(stderr, "drum_grid: floor\n");
  paths["floor"] = summary(run_floor(floor, bpm, swing, bars, cap), bpm, swing, expected);

  json j{
      {"bench", "drum_grid"},
      {"jack_server", server ? server : "default"},
      {"sample_rate", rate},
      {"period_frames", period},
      {"lookahead_ms", lookahead.count()},
      {"period_us", rounded(period * 1e6 / rate, 1)},
      {"bpm", bpm},
      {"swing_steps", swing},
      {"bars", bars},
      {"pattern", "hat on every 16th, kick on the beats, odd 16ths swung"},
      {"paths", paths},
      {"capture", {{"xruns", cap.xruns()}, {"overflow", cap.overflow()}, {"lost_in_backend", cap.lost_in_backend()}}},
      {"load_before", load_before},
      {"load_after", loadavg()}};
  tactus_bench::print(j);
} catch (const std::exception& e) {
  std::fprintf(stderr, "drum_grid: %s\n", e.what());
  return 1;
}
