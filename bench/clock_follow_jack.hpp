// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/input.hpp>
#include <tactus/rethrow.hpp>

#include "jack_capture.hpp"
#include "support/json.hpp"
#include "support/stats.hpp"
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <jack/transport.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

// bench/clock_follow --jack (see clock_follow.cpp): jack_midi_clock as the master on a real JACK
// server, our clock_follower on the native backend and on RtMidi's JACK client at once.

extern char** environ;

namespace clock_follow_jack {

namespace midi = tactus::midi;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;
using tactus_bench::json;
using tactus_bench::rounded;

inline std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// jack_midi_clock as a child process on our server, ended with SIGINT (its documented way).
class master_process {
 public:
  master_process(double bpm, double jitter_percent) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    // -B: its own tempo (no timecode master); -P: no Song Position Pointer (START at bar 1).
    std::vector<std::string> args{"jack_midi_clock", "-B", "-b", std::to_string(bpm), "-P"};
    if (jitter_percent > 0) args.insert(args.end(), {"-J", std::to_string(jitter_percent)});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, "jack_midi_clock", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start jack_midi_clock (Debian: apt-get install jack-midi-clock)");
  }
  master_process(const master_process&) = delete;
  master_process& operator=(const master_process&) = delete;
  ~master_process() {
    ::kill(pid_, SIGINT);
    int status = 0;
    for (int i = 0; i < 30 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(100ms);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  bool alive() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

// The output port of the jack_midi_clock on the server, connected to the capture (waits up to 10 s
// for it: a port is listed before its client is active, and cannot be connected until then).
inline std::string connect_master(tactus_tests::jack_capture& cap, const master_process& m) {
  const auto deadline = clk::now() + 10s;
  while (clk::now() < deadline && m.alive()) {
    if (const char** ports =
            jack_get_ports(cap.client(), "^jack_midi_clock", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput)) {
      std::string p = ports[0];
      jack_free(ports);
      try {
        cap.connect(p);
        return p;
      } catch (const std::runtime_error&) {  // not active yet
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("jack_midi_clock's port did not appear within 10 s");
}

// Waits until no jack_midi_clock port is left on the server (a previous run's master going away).
inline void wait_no_master(jack_client_t* c) {
  const auto deadline = clk::now() + 5s;
  for (;;) {
    const char** ports = jack_get_ports(c, "^jack_midi_clock", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput);
    if (!ports) return;
    jack_free(ports);
    if (clk::now() > deadline) throw std::runtime_error("a jack_midi_clock is already running on this server");
    std::this_thread::sleep_for(20ms);
  }
}

// One follower: an input on `backend`, its metronome (beats), the follower; the beats it plays.
struct follower {
  struct beat {
    std::int64_t position;
    clk::time_point scheduled;
    double bpm;
  };
  follower(asio::any_io_executor ex, const std::string& port, midi::api backend, std::string client,
           std::chrono::nanoseconds latency)
      : in(ex, port, {.backend = backend, .client_name = std::move(client)}),
        metro(ex, tactus::bpm{120}),
        follow(in, metro, [&] {
          midi::clock_follower_options o;
          o.transport.estimator.latency = latency;
          return o;
        }()) {
    metro.on_tick([this](const tactus::tick& t) {
      if (t.is_beat()) beats.push_back({floor_div(t.position, tactus::beats{1}), t.scheduled, t.tempo.value()});
    });
  }
  asio::awaitable<void> run() {
    using namespace asio::experimental::awaitable_operators;
    co_await (metro.run({.paused = true}) || follow.run());
  }
  midi::input in;
  tactus::metronome metro;
  midi::clock_follower follow;
  std::vector<beat> beats;
};

inline json run_one(tactus_tests::jack_capture& cap, double seconds, double bpm, double jitter_percent) {
  wait_no_master(cap.client());
  master_process master(bpm, jitter_percent);
  const std::string port = connect_master(cap, master);
  const std::uint32_t rate = cap.sample_rate(), period = cap.period();
  const auto half_period = std::chrono::nanoseconds(std::llround(period * 0.5e9 / rate));

  asio::io_context io;
  const auto ex = io.get_executor();
  follower native(ex, port, midi::api::jack, "cfj-native", 0ns);
  follower rtmidi(ex, port, midi::api::jack_rtmidi, "cfj-rtmidi", half_period);
  auto run_native = [&]() { return native.run(); };
  auto run_rtmidi = [&]() { return rtmidi.run(); };
  asio::co_spawn(io, run_native(), tactus::rethrow);
  asio::co_spawn(io, run_rtmidi(), tactus::rethrow);

  // The connections take effect some cycles after they are made: START half a second later.
  asio::steady_timer timer(io, 500ms);
  auto script = [&]() -> asio::awaitable<void> {
    co_await timer.async_wait(asio::use_awaitable);
    jack_transport_locate(cap.client(), 0);
    cap.take();
    jack_transport_start(cap.client());
    timer.expires_after(std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds)));
    co_await timer.async_wait(asio::use_awaitable);
    jack_transport_stop(cap.client());
    timer.expires_after(300ms);  // STOP reaches the followers
    co_await timer.async_wait(asio::use_awaitable);
    native.follow.stop();
    rtmidi.follow.stop();
  };
  asio::co_spawn(io, script(), tactus::rethrow);
  io.run();

  // The master's pulses from START on, in microseconds of the steady clock, and the
  // straight line t = a + b k through them. (Their times rather than their frames: after an xrun
  // the frame counter jumps, while jack_midi_clock counts the frames it processed.)
  std::vector<std::int64_t> pulses;
  bool started = false;
  for (const auto& e : cap.take()) {
    if (e.status() == 0xFA || e.status() == 0xFB)
      started = true;  // START, or CONTINUE (without a timecode master it sends that)
    else if (e.status() == 0xFC && started) break;
    else if (e.status() == 0xF8 && started) pulses.push_back(e.steady_usecs);
  }
  if (pulses.size() < std::size_t(4 * midi::pulses_per_beat))
    throw std::runtime_error("jack_midi_clock sent " + std::to_string(pulses.size()) + " pulses (transport rolling?)");
  const double n = double(pulses.size()), kmean = (n - 1) / 2;
  double fmean = 0;
  for (auto f : pulses) fmean += double(f - pulses[0]);
  fmean /= n;
  double sxy = 0, sxx = 0;
  for (std::size_t k = 0; k < pulses.size(); ++k) {
    sxy += (double(k) - kmean) * (double(pulses[k] - pulses[0]) - fmean);
    sxx += (double(k) - kmean) * (double(k) - kmean);
  }
  const double b = sxy / sxx, a = double(pulses[0]) + fmean - b * kmean;
  // Frames per second of the server on the steady clock, over the run.
  const double master_bpm = 60e6 / (b * midi::pulses_per_beat);
  std::vector<double> pulse_jitter;
  for (std::size_t k = 0; k < pulses.size(); ++k)
    pulse_jitter.push_back(std::abs(double(pulses[k]) - (a + b * double(k))));
  // Frame to steady clock, through the run's two anchors.
  const auto steady = [](double us) {
    return clk::time_point(std::chrono::duration_cast<clk::duration>(std::chrono::duration<double, std::micro>(us)));
  };
  const auto beat_line = [&](std::int64_t beat) { return steady(a + b * double(beat * midi::pulses_per_beat)); };
  const auto beat_pulse = [&](std::int64_t beat) {
    return steady(double(pulses[std::size_t(beat * midi::pulses_per_beat)]));
  };
  const std::int64_t last_beat = std::int64_t(pulses.size() - 1) / midi::pulses_per_beat;

  auto figures = [&](const follower& f) {
    std::vector<double> tempo_err, phase_err, line_err, signed_err;
    const auto ms = [](clk::duration d) { return std::abs(std::chrono::duration<double, std::milli>(d).count()); };
    for (const auto& bt : f.beats) {
      if (bt.position < 2 || bt.position > last_beat) continue;  // from the third beat on
      tempo_err.push_back(std::abs(bt.bpm - master_bpm));
      phase_err.push_back(ms(bt.scheduled - beat_pulse(bt.position)));
      signed_err.push_back(std::chrono::duration<double, std::milli>(bt.scheduled - beat_pulse(bt.position)).count());
      line_err.push_back(ms(bt.scheduled - beat_line(bt.position)));
    }
    std::vector<double> sorted = tempo_err;
    std::sort(sorted.begin(), sorted.end());
    const auto ph = tactus_bench::summarise(phase_err);
    const auto li = tactus_bench::summarise(line_err);
    return json{{"beats", f.beats.size()},
                {"beats_measured", tempo_err.size()},
                {"tempo_err_median_bpm", rounded(sorted.empty() ? NAN : sorted[sorted.size() / 2], 4)},
                {"tempo_err_worst_bpm", rounded(sorted.empty() ? NAN : sorted.back(), 4)},
                {"phase_err_p50_ms", rounded(ph.p50, 3)},
                {"phase_err_p99_ms", rounded(ph.p99, 3)},
                {"phase_err_max_ms", rounded(ph.max, 3)},
                {"phase_err_signed_median_ms", rounded(tactus_bench::summarise(signed_err).p50, 3)},
                {"phase_err_to_mean_grid_p99_ms", rounded(li.p99, 3)},
                {"input_dropped", f.in.dropped()}};
  };
  const auto pj = tactus_bench::summarise(pulse_jitter);
  return json{{"master", "jack_midi_clock -B -b " + std::to_string(bpm) + " -P -J " + std::to_string(jitter_percent)},
              {"master_bpm_asked", bpm},
              {"master_bpm_wall_clock", rounded(master_bpm, 4)},
              {"master_pulses", pulses.size()},
              {"master_pulse_offset_from_line_us",
               {{"p50", rounded(pj.p50, 1)}, {"p99", rounded(pj.p99, 1)}, {"max", rounded(pj.max, 1)}}},
              {"native", figures(native)},
              {"jack_rtmidi", figures(rtmidi)}};
}

/// The --jack mode: one run per jitter level (the one asked for, then none), in one JSON object.
inline json run(double seconds, double bpm, double jitter_percent) {
  const std::string load_before = loadavg();
  tactus_tests::jack_capture cap("cfj-capture");
  json runs = json::array();
  for (const double j : {jitter_percent, 0.0}) {
    std::fprintf(stderr, "clock_follow --jack: %g BPM, jitter %g %%, %g s\n", bpm, j, seconds);
    runs.push_back(run_one(cap, seconds, bpm, j));
    if (jitter_percent == 0) break;
  }
  const std::uint32_t rate = cap.sample_rate(), period = cap.period();
  return json{{"bench", "clock_follow"},
              {"mode", "jack"},
              {"sample_rate", rate},
              {"period_frames", period},
              {"seconds_per_run", seconds},
              {"measured_from_beat", 3},
              {"phase_reference",
               "phase_err: the master's beat pulse as captured; to_mean_grid: the line through all its pulses"},
              {"rtmidi_latency_compensation_ms", rounded(period * 500.0 / rate, 3)},
              {"runs", runs},
              {"capture", {{"xruns", cap.xruns()}, {"overflow", cap.overflow()}}},
              {"load_before", load_before},
              {"load_after", loadavg()}};
}

}  // namespace clock_follow_jack
