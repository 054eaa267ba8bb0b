// SPDX-License-Identifier: BSL-1.0
// soak_realtime: the real-time soak of issue 12. A 1 ms beat for 60 s (60,000 beats) under CPU
// load (stress-ng --cpu 2, started and stopped by this program), three ways one after the other:
// tactus::metronome as users run it (default skip policy), the naive loop (sleep_for one period
// a beat, what users hand-roll) and the floor (clock_nanosleep(TIMER_ABSTIME) to each grid time).
// Prints one JSON object. Not run by CI (real time, minutes): scripts/bench runs it.
//
//   lateness of beat n = its wake time - (t0 + n * period)       (t0: the run's first beat)
//   worst_wake_us      = the worst single wake-up: how much later than its own sleep asked for
//                        one beat woke (the grid time for the metronome and the floor; the
//                        previous beat + one period for sleep_for)
//   drift_us           = median lateness of the last 1000 beats - that of the first 1000: what
//                        the loop accumulated. drift_bounded says |drift| <= worst_wake_us: a loop
//                        that schedules from its anchor never drifts further than one late
//                        wake-up; sleep_for adds its overhead every beat, and drifts past it.
//
//   build/release/bench/soak_realtime [--seconds 60] [--bpm 60000] [--stress-cpu 2]
#include <tactus/metronome.hpp>

#include "support/cli.hpp"
#include "support/json.hpp"
#include "support/load.hpp"
#include "support/stats.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

using tactus_bench::load_1m;

namespace {

using clk = std::chrono::steady_clock;

struct series {
  std::vector<double> lateness_us;  // in beat order, delivered beats only
  std::int64_t beats = 0;           // grid beats the run covered
  std::int64_t skipped = 0;
  double worst_wake_us = 0;  // sleep_for's (see the header)
  bool grid_based = true;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

tactus_bench::json summary(const series& s) {
  const auto p = tactus_bench::summarise(s.lateness_us);
  const std::size_t w = std::min<std::size_t>(1000, s.lateness_us.size() / 10);
  const double first = median({s.lateness_us.begin(), s.lateness_us.begin() + std::ptrdiff_t(w)});
  const double last = median({s.lateness_us.end() - std::ptrdiff_t(w), s.lateness_us.end()});
  const double drift = last - first;
  // The grid loops ask for the grid time: their worst wake-up is their worst lateness.
  const double worst = s.grid_based ? p.max : s.worst_wake_us;
  return {{"beats", s.beats},
          {"delivered", s.lateness_us.size()},
          {"skipped", s.skipped},
          {"p50_us", tactus_bench::rounded(p.p50, 1)},
          {"p99_us", tactus_bench::rounded(p.p99, 1)},
          {"max_us", tactus_bench::rounded(p.max, 1)},
          {"worst_wake_us", tactus_bench::rounded(worst, 1)},
          {"drift_us", tactus_bench::rounded(drift, 1)},
          {"drift_bounded", std::abs(drift) <= worst}};
}

series run_metronome(std::int64_t beats, double bpm) {
  series s;
  s.lateness_us.reserve(std::size_t(beats));
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{bpm}};
  std::optional<clk::time_point> t0;
  const auto period = std::chrono::duration<double>(60.0 / bpm);
  m.on_tick([&](const tactus::tick& t) {
    const auto now = clk::now();
    if (!t0) t0 = t.scheduled;
    const auto grid = *t0 + std::chrono::round<clk::duration>(period * double(t.index));
    s.lateness_us.push_back(std::chrono::duration<double, std::micro>(now - grid).count());
    s.skipped += t.skipped;
    if (t.index + 1 >= beats) m.stop();
  });
  asio::co_spawn(io, m.run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  s.beats = beats;
  return s;
}

series run_naive(std::int64_t beats, double bpm) {
  series s;
  s.lateness_us.reserve(std::size_t(beats));
  const auto period = std::chrono::duration<double>(60.0 / bpm);
  const auto t0 = clk::now();
  s.grid_based = false;
  std::optional<clk::time_point> asked;  // when the last sleep was to end
  for (std::int64_t n = 0; n < beats; ++n) {
    const auto now = clk::now();
    const auto grid = t0 + std::chrono::round<clk::duration>(period * double(n));
    s.lateness_us.push_back(std::chrono::duration<double, std::micro>(now - grid).count());
    if (asked)
      s.worst_wake_us = std::max(s.worst_wake_us, std::chrono::duration<double, std::micro>(now - *asked).count());
    asked = now + std::chrono::duration_cast<clk::duration>(period);
    std::this_thread::sleep_for(period);
  }
  s.beats = beats;
  return s;
}

series run_floor(std::int64_t beats, double bpm) {
  series s;
  s.lateness_us.reserve(std::size_t(beats));
  const auto period = std::chrono::duration<double>(60.0 / bpm);
  const auto t0 = clk::now();
  for (std::int64_t n = 0; n < beats; ++n) {
    const auto grid = t0 + std::chrono::round<clk::duration>(period * double(n));
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(grid.time_since_epoch()).count();
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    s.lateness_us.push_back(std::chrono::duration<double, std::micro>(clk::now() - grid).count());
  }
  s.beats = beats;
  return s;
}

// stress-ng --cpu N for the whole run, in its own process group; nullopt when it cannot start.
std::optional<pid_t> start_stress(int cpus, double seconds) {
  if (cpus <= 0) return std::nullopt;
  std::vector<std::string> args{
      "stress-ng", "--cpu", std::to_string(cpus), "--timeout", std::to_string(int(seconds) + 30) + "s", "--quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawn_file_actions_t fa;  // its notes (a warning when stopped early) are not ours
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "stress-ng", &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return std::nullopt;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // its workers running
  return pid;
}

void stop_stress(std::optional<pid_t> pid) {
  if (!pid) return;
  ::kill(-*pid, SIGTERM);  // the group: stress-ng and its workers
  ::waitpid(*pid, nullptr, 0);
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"soak_realtime: a fast beat for a long time under CPU load, three ways", "soak_realtime"};
  double seconds = 60, bpm = 60000;
  int stress_cpu = 2;
  app.add_option("--seconds", seconds, "length of each run")
      ->check(tactus_bench::range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--bpm", bpm, "beats per minute (60000: 1 ms)")
      ->check(tactus_bench::range(1.0, 600000.0))
      ->capture_default_str();
  app.add_option("--stress-cpu", stress_cpu, "stress-ng --cpu workers during the runs (0: none)")
      ->check(tactus_bench::range(0, 64))
      ->capture_default_str();
  tactus_bench::parse(app, argc, argv);
  const auto beats = static_cast<std::int64_t>(seconds * bpm / 60.0);

  const auto stress = start_stress(stress_cpu, 3 * seconds);
  if (stress_cpu > 0 && !stress) std::fprintf(stderr, "soak_realtime: stress-ng did not start: no load\n");
  const double load_before = load_1m();
  std::fprintf(stderr, "soak_realtime: metronome, %lld beats\n", static_cast<long long>(beats));
  const auto ours = run_metronome(beats, bpm);
  std::fprintf(stderr, "soak_realtime: naive sleep_for\n");
  const auto naive = run_naive(beats, bpm);
  std::fprintf(stderr, "soak_realtime: clock_nanosleep floor\n");
  const auto floor = run_floor(beats, bpm);
  const double load_after = load_1m();
  stop_stress(stress);

  tactus_bench::print({{"benchmark", "soak_realtime"},
                       {"seconds", seconds},
                       {"period_us", tactus_bench::rounded(60e6 / bpm, 3)},
                       {"stress_ng_cpu", stress ? stress_cpu : 0},
                       {"load_1m_before", load_before},
                       {"load_1m_after", load_after},
                       {"metronome", summary(ours)},
                       {"naive_sleep_for", summary(naive)},
                       {"clock_nanosleep_floor", summary(floor)}});
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "soak_realtime: %s\n", e.what());
  return 1;
}
