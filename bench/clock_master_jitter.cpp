// SPDX-License-Identifier: BSL-1.0
// clock_master_jitter: how evenly tactus's clock master spaces its 24 ppqn pulses on a JACK
// server, seen by an independent frame-stamped capture client (tests/support/jack_capture.hpp):
// through the native JACK backend (api::jack, each pulse written at the frame of its grid time),
// through RtMidi's JACK client (api::jack_rtmidi, written at the start of the period after it was
// sent) and, as the floor, a plain libjack client writing the ideal pulse frames. Per tempo and
// path: the pulse-interval jitter (interval - ideal interval, in microseconds, from the frame
// stamps; the first interval of a run apart) p50/p99/max of its magnitude, the most frequent
// intervals in frames, the pulses seen.
// Prints one JSON object.
//
// Needs a running JACK server (JACK_DEFAULT_SERVER, else the default one); it starts none
// (scripts/bench starts a private dummy server at 128 frames / 48 kHz when none is given):
//   cmake --preset release && cmake --build --preset release --target clock_master_jitter
//   cmake/jack-server.sh start bench-jack /tmp/bench-jack
//   JACK_DEFAULT_SERVER=bench-jack build/release/bench/clock_master_jitter --seconds 30
#include <tactus/midi/clock_master.hpp>
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/rethrow.hpp>

#include "jack_capture.hpp"
#include "jack_link.hpp"
#include "support/cli.hpp"
#include "support/jack_floor.hpp"
#include "support/json.hpp"
#include "support/load.hpp"
#include "support/stats.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace midi = tactus::midi;
using namespace std::chrono_literals;
using tactus_bench::json;
using tactus_bench::rounded;

using tactus_bench::loadavg;

namespace {

// The clock master through a tactus output on `backend`, for `seconds`: its pulses' frames.
std::vector<std::int64_t> run_tactus(midi::api backend, const std::string& client, double bpm, double seconds,
                                     tactus_tests::jack_capture& cap, json& extra) {
  (void)cap.drain();  // what the previous path's output sent as it closed
  asio::io_context io;
  std::vector<std::int64_t> frames;
  {
    midi::output out(io.get_executor(), cap.port_name(), {.backend = backend, .client_name = client});
    auto rx = tactus_tests::as_messages(cap);
    tactus_tests::link(out, rx);
    midi::clock_master master(io.get_executor(), out, tactus::bpm{bpm});
    asio::steady_timer stop(
        io, std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)));
    stop.async_wait([&](std::error_code) { master.stop(); });
    asio::co_spawn(io, master.run(), tactus::rethrow);
    io.run();
    for (const auto& e : cap.drain())
      if (e.status() == 0xF8) frames.push_back(e.frame);
    extra["pulses_sent"] = master.pulses_sent();
    // What the output saw: pulses whose time had passed when handed over (sent at once), xruns.
    extra["output_late"] = out.late();
    extra["output_xruns"] = out.xruns();
  }
  return frames;
}

// The floor: the ideal pulse frames written by a plain libjack client.
std::vector<std::int64_t> run_floor(tactus_bench::jack_floor& floor, double bpm, double seconds,
                                    tactus_tests::jack_capture& cap) {
  const double frames_per_pulse = cap.sample_rate() * 60.0 / (bpm * midi::pulses_per_beat);
  const auto n = std::int64_t(seconds * bpm * midi::pulses_per_beat / 60.0);
  std::vector<tactus_bench::jack_floor::event> ev;
  for (std::int64_t k = 0; k < n; ++k) ev.push_back({std::llround(double(k) * frames_per_pulse), {0xF8, 0, 0}, 1});
  cap.take();
  floor.start(std::move(ev));
  while (!floor.done()) std::this_thread::sleep_for(10ms);
  std::vector<std::int64_t> frames;
  for (const auto& e : cap.drain())
    if (e.status() == 0xF8) frames.push_back(e.frame);
  return frames;
}

// The intervals between the pulses, from their frames, but the first (the first pulse of a run is
// sent as it begins, late by the wake-up: nothing could schedule it ahead; shown apart). Jitter:
// |interval - ideal|; beside it |interval - the run's mean interval|, without the difference
// between the server's frame rate and the steady clock the master counts on (rate_error_ppm).
json summary(const std::vector<std::int64_t>& frames, double bpm, std::uint32_t rate) {
  const double ideal_us = 60e6 / (bpm * midi::pulses_per_beat);
  if (frames.size() < 3) return {{"pulses_seen", frames.size()}};
  const double mean_us = double(frames.back() - frames[1]) * 1e6 / rate / double(frames.size() - 2);
  std::vector<double> jitter, around_mean;
  std::map<std::int64_t, std::int64_t> gaps;
  for (std::size_t i = 2; i < frames.size(); ++i) {
    const std::int64_t gap = frames[i] - frames[i - 1];
    ++gaps[gap];
    jitter.push_back(std::abs(double(gap) * 1e6 / rate - ideal_us));
    around_mean.push_back(std::abs(double(gap) * 1e6 / rate - mean_us));
  }
  const auto p = tactus_bench::summarise(jitter);
  const auto m = tactus_bench::summarise(around_mean);
  std::vector<std::pair<std::int64_t, std::int64_t>> by_count(gaps.begin(), gaps.end());
  std::sort(by_count.begin(), by_count.end(), [](auto& a, auto& b) { return a.second > b.second; });
  json top = json::object();
  for (std::size_t i = 0; i < std::min<std::size_t>(4, by_count.size()); ++i)
    top[std::to_string(by_count[i].first)] = by_count[i].second;
  return {{"pulses_seen", frames.size()},
          {"jitter_p50_us", rounded(p.p50, 1)},
          {"jitter_p99_us", rounded(p.p99, 1)},
          {"jitter_max_us", rounded(p.max, 1)},
          {"jitter_around_mean_p99_us", rounded(m.p99, 1)},
          {"rate_error_ppm", rounded((mean_us / ideal_us - 1) * 1e6, 1)},
          {"first_interval_error_us", rounded(double(frames[1] - frames[0]) * 1e6 / rate - ideal_us, 1)},
          {"most_frequent_intervals_frames", top}};
}

}  // namespace

int main(int argc, char** argv) try {
  double seconds = 30;
  CLI::App app{
      "clock_master_jitter: pulse-interval jitter of the clock master on JACK, native backend beside RtMidi's JACK "
      "client and a plain libjack floor, captured with frame stamps; prints one JSON object",
      "clock_master_jitter"};
  app.add_option("--seconds", seconds, "seconds per tempo and path")
      ->check(tactus_bench::range(1.0, 3600.0))
      ->capture_default_str();
  tactus_bench::parse(app, argc, argv);

  const std::string load_before = loadavg();
  midi::set_jack_message_handler(nullptr);  // libjack's lines: the capture's own error says it once
  tactus_tests::jack_capture cap("cmj-capture");
  tactus_bench::jack_floor floor("cmj-floor");
  floor.connect(cap.port_name());
  const std::uint32_t rate = cap.sample_rate(), period = cap.period();
  const char* server = std::getenv("JACK_DEFAULT_SERVER");

  json results = json::array();
  for (const double bpm : {120.0, 133.3}) {
    json paths = json::object();
    std::fprintf(stderr, "clock_master_jitter: %g BPM, native\n", bpm);
    json native_extra = json::object();
    paths["native"] = summary(run_tactus(midi::api::jack, "cmj-native", bpm, seconds, cap, native_extra), bpm, rate);
    paths["native"].update(native_extra);
    std::fprintf(stderr, "clock_master_jitter: %g BPM, jack_rtmidi\n", bpm);
    json rtmidi_extra = json::object();
    paths["jack_rtmidi"] =
        summary(run_tactus(midi::api::jack_rtmidi, "cmj-rtmidi", bpm, seconds, cap, rtmidi_extra), bpm, rate);
    paths["jack_rtmidi"].update(rtmidi_extra);
    std::fprintf(stderr, "clock_master_jitter: %g BPM, floor\n", bpm);
    paths["floor"] = summary(run_floor(floor, bpm, seconds, cap), bpm, rate);
    results.push_back(
        {{"bpm", bpm}, {"ideal_interval_us", rounded(60e6 / (bpm * midi::pulses_per_beat), 1)}, {"paths", paths}});
  }

  json j{{"bench", "clock_master_jitter"},
         {"jack_server", server ? server : "default"},
         {"sample_rate", rate},
         {"period_frames", period},
         {"period_us", rounded(period * 1e6 / rate, 1)},
         {"frame_us", rounded(1e6 / rate, 2)},
         {"seconds_per_run", seconds},
         {"results", results},
         {"capture",
          {{"xruns", cap.xruns()},
           {"overflow", cap.overflow()},
           {"lost_in_backend", cap.lost_in_backend()},
           {"repeated_cycles", cap.repeated_cycles()}}},
         {"load_before", load_before},
         {"load_after", loadavg()}};
  tactus_bench::print(j);
} catch (const std::exception& e) {
  std::fprintf(stderr, "clock_master_jitter: %s\n", e.what());
  return 1;
}
