// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/clock_estimator.hpp>

#if defined(CLOCK_FOLLOW_JACK)
#include "clock_follow_jack.hpp"
#endif

#include "support/cli.hpp"
#include "support/json.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <random>
#include <string>
#include <vector>

// How well the MIDI clock estimator follows a 24 ppqn clock, next to the naive ways: tempo from
// the last pulse interval ("last_delta") and from the mean of the last 24 intervals ("mean24"),
// both counting received pulses. Synthetic pulses: a tempo map, Gaussian jitter on every pulse,
// then quantization to a JACK period (128 frames at 48 kHz, stamped at the end of the period);
// every estimator gets the same timestamps and the same latency compensation (half a period).
// Prints one JSON object: per jitter level and estimator, the p99 tempo error from the third
// beat of each tempo on, the settling time after each tempo step (to 1 and to 0.1 BPM; median and
// worst over steps and runs), the p99 error of the predicted time of the next beat, and the
// same tempo and phase figures for a steady clock with dropouts of 1..3 pulses.
//
//     cmake --build build/rel --target clock_follow && build/rel/bench/clock_follow
//
// --jack: on a real JACK server instead (it starts none; scripts/bench gives it a private dummy
// server), jack_midi_clock (Debian: jack-midi-clock) is the master at an odd tempo with its
// artificial jitter (-J, 5 %), and our clock_follower follows it through each backend at once,
// the native one (frame stamps) and RtMidi's JACK client (stamped when its callback runs, half a
// period of latency compensation), each on its own input and metronome. An independent capture
// client (tests/support/jack_capture.hpp) stamps the master's pulses with their frames: a
// straight line through them, scaled by the server's frame rate measured on the steady clock over
// the run, is the master's tempo in wall-clock time and its beat grid. Per backend: the
// metronome's tempo error at each beat from the third on (median, worst) and the phase error of
// its beats against the master's grid (p50/p99/max):
//
//     JACK_DEFAULT_SERVER=bench-jack build/release/bench/clock_follow --jack --seconds 60

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr int ppq = tactus::midi::pulses_per_beat;
constexpr double audio_period_ns = 128.0 / 48000.0 * 1e9;
constexpr int default_runs = 20;
constexpr double t0_ns = 1e9;  // true time of pulse 0

struct segment {
  double bpm;
  int beats;
};

struct pulse {
  std::int64_t index;  // true pulse index
  double true_ns;      // when the source sent it
  clk::time_point stamp;
  std::size_t seg;         // segment it belongs to
  std::int64_t seg_pulse;  // pulse index within the segment
};

// Pulses of a tempo map; `drop_p` is the chance that a run of 1..3 pulses starts missing at a
// pulse (never in the first two beats of a segment, nor in the last beat).
std::vector<pulse> make_pulses(const std::vector<segment>& map, double jitter_ns, double drop_p, std::mt19937_64& rng) {
  std::normal_distribution<double> jitter(0.0, jitter_ns);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const double grid = uni(rng) * audio_period_ns;
  std::vector<pulse> out;
  double seg_start = t0_ns;
  std::int64_t index = 0;
  int dropping = 0;
  for (std::size_t s = 0; s < map.size(); ++s) {
    const double period = 60e9 / (map[s].bpm * ppq);
    const std::int64_t n = std::int64_t(map[s].beats) * ppq;
    for (std::int64_t k = 0; k < n; ++k, ++index) {
      const double t = seg_start + double(k) * period;  // from the segment anchor, no accumulation
      if (dropping > 0) {
        --dropping;
        continue;
      }
      if (drop_p > 0 && k >= 2 * ppq && k < n - ppq && uni(rng) < drop_p) {
        dropping = int(uni(rng) * 3);  // this one and 0..2 more
        continue;
      }
      const double seen = std::ceil((t + jitter(rng) - grid) / audio_period_ns) * audio_period_ns + grid;
      out.push_back({index, t, clk::time_point(std::chrono::nanoseconds(std::llround(seen))), s, k});
    }
    seg_start += double(n) * period;
  }
  return out;
}

// The naive followers: count the pulses they receive, tempo from received intervals.
struct naive {
  std::size_t span = 1;  // intervals averaged: 1 = last delta, 24 = mean of a beat
  std::deque<clk::time_point> times;
  std::int64_t count = -1;
  void on_pulse(clk::time_point t) {
    times.push_back(t);
    if (times.size() > span + 1) times.pop_front();
    ++count;
  }
  double period_ns() const {
    return times.size() < 2 ? 0.0 : double((times.back() - times.front()).count()) / double(times.size() - 1);
  }
  std::optional<double> bpm() const {
    const double p = period_ns();
    return p > 0 ? std::optional<double>(60e9 / (p * ppq)) : std::nullopt;
  }
  std::optional<double> pulse_time_ns(std::int64_t n) const {
    const double p = period_ns();
    if (p <= 0) return std::nullopt;
    return double(times.back().time_since_epoch().count()) - audio_period_ns / 2 + double(n - count) * p;
  }
};

struct adaptor {
  std::string name;
  tactus::midi::clock_estimator<> ours{{.latency = std::chrono::nanoseconds(std::llround(audio_period_ns / 2))}};
  naive plain{};
  bool is_ours = false;

  static adaptor make(std::string name) {
    adaptor a;
    a.name = name;
    a.is_ours = name == "tactus";
    a.plain.span = name == "last_delta" ? 1 : 24;
    a.ours.on_start();
    return a;
  }
  void on_pulse(clk::time_point t) {
    if (is_ours) ours.on_pulse(t);
    else plain.on_pulse(t);
  }
  std::optional<double> bpm() const {
    if (!is_ours) return plain.bpm();
    const auto b = ours.tempo();
    return b ? std::optional<double>(b->value()) : std::nullopt;
  }
  // The estimate of where pulse `n` (by the estimator's own count) is.
  std::optional<double> pulse_time_ns(std::int64_t n) const {
    if (!is_ours) return plain.pulse_time_ns(n);
    const auto t = ours.pulse_time(n);
    return t ? std::optional<double>(double(t->time_since_epoch().count())) : std::nullopt;
  }
  // The estimator's own index of the pulse it has just received.
  std::int64_t last_index() const { return is_ours ? ours.pulse_count() - 1 : plain.count; }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto i = std::min(v.size() - 1, std::size_t(std::ceil(p * double(v.size())) - 1));
  return v[i];
}

struct stats {
  std::vector<double> tempo_err, phase_err, settle1_ms, settle01_ms, settle1_beats, settle01_beats;
  std::vector<double> drop_tempo_err, drop_phase_err;
  int unsettled1 = 0, unsettled01 = 0;
};

// Runs one estimator over the pulses; fills tempo/phase errors (steady parts) and settling times.
void run(adaptor& a, const std::vector<pulse>& pulses, const std::vector<segment>& map, bool dropouts, stats& st) {
  // Per segment after the first: the last pulse at which the estimate was out of tolerance.
  std::vector<double> last_out1(map.size(), -1), last_out01(map.size(), -1);
  std::vector<double> seg_start(map.size(), t0_ns);
  for (std::size_t s = 1; s < map.size(); ++s)
    seg_start[s] = seg_start[s - 1] + map[s - 1].beats * 60e9 / map[s - 1].bpm;
  for (const auto& p : pulses) {
    a.on_pulse(p.stamp);
    const auto& seg = map[p.seg];
    const auto b = a.bpm();
    const double err = b ? std::abs(*b - seg.bpm) : 1e9;
    if (err > 1.0) last_out1[p.seg] = p.true_ns;
    if (err > 0.1) last_out01[p.seg] = p.true_ns;
    if (p.seg_pulse < 2 * ppq) continue;  // steady figures from the third beat of each tempo
    // Predicted time of the next beat, if it is still in this segment.
    const std::int64_t seg_pulses = std::int64_t(seg.beats) * ppq;
    const std::int64_t to_beat = ppq - p.seg_pulse % ppq;
    if (p.seg_pulse + to_beat >= seg_pulses) continue;
    const double true_next = p.true_ns + double(to_beat) * 60e9 / (seg.bpm * ppq);
    const auto est = a.pulse_time_ns(a.last_index() + to_beat);
    const double perr = est ? std::abs(*est - true_next) / 1e6 : 1e9;
    (dropouts ? st.drop_tempo_err : st.tempo_err).push_back(err);
    (dropouts ? st.drop_phase_err : st.phase_err).push_back(perr);
  }
  if (dropouts) return;
  for (std::size_t s = 1; s < map.size(); ++s) {
    const double beat_ns = 60e9 / map[s].bpm;
    const double end = seg_start[s] + map[s].beats * beat_ns;
    auto settle = [&](double last_out, std::vector<double>& ms, std::vector<double>& bt, int& unsettled) {
      // settled at the first pulse after the last one out of tolerance; a step still out of
      // tolerance in the last beat of its tempo never settled, and is only counted
      const double t = last_out < 0 ? seg_start[s] : last_out + beat_ns / ppq;
      if (t >= end - beat_ns) {
        ++unsettled;
        return;
      }
      ms.push_back((t - seg_start[s]) / 1e6);
      bt.push_back((t - seg_start[s]) / beat_ns);
    };
    settle(last_out1[s], st.settle1_ms, st.settle1_beats, st.unsettled1);
    settle(last_out01[s], st.settle01_ms, st.settle01_beats, st.unsettled01);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int runs = default_runs;
  bool jack = false;
  double seconds = 60, master_bpm = 97.3, jitter_percent = 5;
  CLI::App app{
      "clock_follow: how well the MIDI clock estimator follows a jittered 24 ppqn clock, beside the naive "
      "ways; prints one JSON object",
      "clock_follow"};
  app.add_option("--runs", runs, "runs per jitter level (each a tempo map and a steady clock with dropouts)")
      ->check(tactus_bench::range(1, 10'000))
      ->capture_default_str();
  app.add_flag("--jack", jack, "on a JACK server: jack_midi_clock as the master, both backends following");
  app.add_option("--seconds", seconds, "--jack: seconds of clock")
      ->check(tactus_bench::range(5.0, 3600.0))
      ->capture_default_str();
  app.add_option("--bpm", master_bpm, "--jack: the master's tempo")
      ->check(tactus_bench::range(30.0, 300.0))
      ->capture_default_str();
  app.add_option("--jitter", jitter_percent, "--jack: the master's artificial jitter (jack_midi_clock -J), percent")
      ->check(tactus_bench::range(0.0, 20.0))
      ->capture_default_str();
  tactus_bench::parse(app, argc, argv);
  if (jack) {
#if defined(CLOCK_FOLLOW_JACK)
    try {
      tactus_bench::print(clock_follow_jack::run(seconds, master_bpm, jitter_percent));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "clock_follow: %s\n", e.what());
      return 1;
    }
#else
    std::fprintf(stderr, "clock_follow: built without MIDI and JACK: no --jack\n");
    return 2;
#endif
  }

  const std::vector<segment> steps{{120, 16}, {140, 16}, {97.3, 16}, {133, 16}, {60, 16}, {174, 16}};
  const std::vector<segment> steady{{120, 64}};
  const std::vector<double> jitters_ms{0.1, 0.5, 1.0, 2.0};
  const char* names[] = {"tactus", "last_delta", "mean24"};
  using tactus_bench::json;
  using tactus_bench::rounded;

  json j{{"bench", "clock_follow"},
         {"ppqn", 24},
         {"audio_period_ms", rounded(audio_period_ns / 1e6, 3)},
         {"latency_compensation_ms", rounded(audio_period_ns / 2e6, 3)},
         {"window_pulses", tactus::midi::clock_estimator_config{}.window},
         {"runs", runs},
         {"tempo_map_bpm", {120, 140, 97.3, 133, 60, 174}},
         {"beats_per_tempo", 16},
         {"dropout_run", "120 BPM, 64 beats, 1..3 pulses missing about every 2 beats"},
         {"results", json::array()}};
  for (std::size_t k = 0; k < jitters_ms.size(); ++k) {
    stats st[3];
    std::mt19937_64 rng(0x7ac7u + k);
    for (int r = 0; r < runs; ++r) {
      const auto p1 = make_pulses(steps, jitters_ms[k] * 1e6, 0.0, rng);
      const auto p2 = make_pulses(steady, jitters_ms[k] * 1e6, 1.0 / 48, rng);
      for (int e = 0; e < 3; ++e) {
        auto a = adaptor::make(names[e]);
        run(a, p1, steps, false, st[e]);
        auto b = adaptor::make(names[e]);
        run(b, p2, steady, true, st[e]);
      }
    }
    json estimators = json::object();
    for (int e = 0; e < 3; ++e) {
      const auto& s = st[e];
      auto p50_max = [](const std::vector<double>& v, int decimals) {
        return json{{"p50", rounded(percentile(v, 0.5), decimals)}, {"max", rounded(percentile(v, 1.0), decimals)}};
      };
      estimators[names[e]] = {{"tempo_err_p99_bpm", rounded(percentile(s.tempo_err, 0.99), 3)},
                              {"phase_err_p99_ms", rounded(percentile(s.phase_err, 0.99), 3)},
                              {"settle_1bpm_ms", p50_max(s.settle1_ms, 0)},
                              {"settle_1bpm_beats", p50_max(s.settle1_beats, 2)},
                              {"steps_never_within_1bpm", s.unsettled1},
                              {"settle_0.1bpm_ms", p50_max(s.settle01_ms, 0)},
                              {"settle_0.1bpm_beats", p50_max(s.settle01_beats, 2)},
                              {"steps_never_within_0.1bpm", s.unsettled01},
                              {"dropouts",
                               {{"tempo_err_p99_bpm", rounded(percentile(s.drop_tempo_err, 0.99), 3)},
                                {"phase_err_p99_ms", rounded(percentile(s.drop_phase_err, 0.99), 3)}}}};
    }
    j["results"].push_back({{"jitter_ms", rounded(jitters_ms[k], 1)}, {"estimators", estimators}});
  }
  tactus_bench::print(j);
}
