// SPDX-License-Identifier: BSL-1.0
// tweens: many servos moving at once. By default 10 000 servos at 50 Hz for 5 s, each swaying
// from move to move (a random target over 0.5 to 2 s, the next move started by the completion of
// the last), on one thread, real clock. Side by side in one run:
//   tactus               basic_servo: every servo of the rate updated in one batch on one timer
//   coroutine_per_servo  the naive C++ way: a coroutine and a timer per servo, set, sleep 1/rate
//   floor                one clock_nanosleep(TIMER_ABSTIME) loop updating plain arrays: the bare cost
//   python_asyncio       the lecture's move() (bench/tweens_asyncio.py, one task per servo), run
//                        as a child process with the same parameters
// Each update's driver takes a time stamp (Clock::now()) and counts it: its lateness is measured
// against the grid it belongs to (the multiples of the period since the clock's epoch, which
// the batch and the other C++ loops all use). cpu_s is the process's CPU time (getrusage) over
// the run. Prints one JSON object; the top-level figures are tactus's.
#include <tactus/sinks/servo.hpp>

#include "support/cli.hpp"
#include "support/json.hpp"
#include "support/load.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <sys/resource.h>
#include <vector>

#ifndef TWEENS_ASYNCIO_PY
#define TWEENS_ASYNCIO_PY "tweens_asyncio.py"
#endif

using clock_type = std::chrono::steady_clock;
using json = tactus_bench::json;

using tactus_bench::loadavg;

namespace {

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](timeval t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Lateness of updates against their grid, in µs, as a histogram (1 µs bins up to 100 ms).
struct lateness {
  std::vector<std::uint64_t> bins = std::vector<std::uint64_t>(100'001);
  std::uint64_t count = 0;
  clock_type::duration period;
  explicit lateness(clock_type::duration p) : period(p) {}
  void add(clock_type::time_point t) {
    const auto since = t.time_since_epoch();
    add_late(since - (since / period) * period);
  }
  void add_late(clock_type::duration late) {
    const auto us = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(late).count());
    ++bins[std::min<std::int64_t>(us, 100'000)];
    ++count;
  }
  double percentile(double q) const {
    const auto want = std::min(count - 1, static_cast<std::uint64_t>(q * static_cast<double>(count)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bins.size(); ++i)
      if ((seen += bins[i]) > want) return static_cast<double>(i);
    return 100'000;
  }
};

// The recording-style driver: a time stamp and a count per update. A move's last update (its
// target) is due at the move's own end, not on the grid: measured against that when known.
struct stamp_driver {
  lateness* l;
  double* last;
  const std::pair<double, clock_type::time_point>* end = nullptr;  // the running move's target and end
  void set(double v) {
    const auto now = clock_type::now();
    if (end && v == end->first) l->add_late(now - end->second);
    else l->add(now);
    *last = v;
  }
};

json figures(const lateness& l, double cpu, double seconds, std::uint64_t updates) {
  return {{"updates", updates},
          {"cpu_s", tactus_bench::rounded(cpu, 3)},
          {"cpu_fraction_of_one_core", tactus_bench::rounded(cpu / seconds, 4)},
          {"updates_per_cpu_s", tactus_bench::rounded(updates / cpu, 0)},
          {"cpu_ns_per_update", tactus_bench::rounded(cpu * 1e9 / static_cast<double>(updates), 1)},
          {"p50_lateness_us", l.percentile(0.5)},
          {"p99_lateness_us", l.percentile(0.99)},
          {"max_lateness_us", l.percentile(1.0)}};
}

// The moves: a target anywhere in 0..180 over 0.5 to 2 s, from a seeded generator, ending on a
// grid point, as the moves of a choreography end together (on a beat); with --off-grid any
// millisecond from now, and each end off the grid is a wake-up of its own (its update measured
// against its own due time, not the grid).
struct mover {
  std::mt19937 rng{1};
  clock_type::duration period;
  bool off_grid = false;
  double target() { return std::uniform_real_distribution<double>(0, 180)(rng); }
  clock_type::duration duration() {
    const auto ms = std::chrono::milliseconds(std::uniform_int_distribution<int>(500, 2000)(rng));
    return off_grid ? clock_type::duration(ms) : period * std::max<std::int64_t>(1, ms / period);
  }
};
bool off_grid = false;

json run_tactus(int n, double rate, double seconds) {
  asio::io_context io;
  lateness l{std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1 / rate))};
  std::vector<double> last(n);
  std::vector<std::pair<double, clock_type::time_point>> ends(n);
  std::vector<std::unique_ptr<tactus::servo>> servos;
  for (int i = 0; i < n; ++i)
    servos.push_back(std::make_unique<tactus::servo>(io.get_executor(), stamp_driver{&l, &last[i], &ends[i]},
                                                     tactus::servo_options{.rate_hz = rate, .rest_at_close = false}));
  l = lateness(l.period);  // not the rest positions sent at construction
  mover mv{std::mt19937{1}, l.period, off_grid};
  std::uint64_t moves = 0;
  bool running = true;
  // Each servo's next move starts from the completion of its last: no coroutine per servo.
  std::function<void(int)> next = [&](int i) {
    ++moves;
    // On the grid: a move that ends on a grid point (how long it takes from now follows), so
    // that the ends of all the servos' moves share the grid's wake-ups.
    const auto now = clock_type::now();
    auto d = mv.duration();
    if (!mv.off_grid) d = ((now + d).time_since_epoch() / l.period + 1) * l.period - now.time_since_epoch();
    ends[i] = {mv.target(), now + d};
    servos[i]->async_move_to(ends[i].first, d, [&, i](std::error_code ec, tactus::move_result) {
      if (!ec && running) next(i);
    });
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) next(i);
  io.run_for(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds)));
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
  running = false;
  auto j = figures(l, cpu, wall, l.count);
  j["moves"] = moves;
  j["batch_wakeups"] = tactus::sinks::detail::batch_for<clock_type>(io.get_executor(), l.period)->wakeups();
  servos.clear();
  return j;
}

json run_coroutine_per_servo(int n, double rate, double seconds) {
  asio::io_context io;
  lateness l{std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1 / rate))};
  std::vector<double> last(n, 90);
  mover mv{std::mt19937{1}, l.period, off_grid};
  const auto end =
      clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  auto servo = [&](int i) -> asio::awaitable<void> {  // the lecture's move(), in C++, one per servo
    asio::steady_timer timer{io};
    auto next = clock_type::time_point((clock_type::now().time_since_epoch() / l.period + 1) * l.period);
    while (next < end) {
      const double from = last[i], to = mv.target();
      const int steps = std::max<int>(1, static_cast<int>(mv.duration() / l.period));
      for (int k = 1; k <= steps && next < end; ++k) {
        timer.expires_at(next);
        co_await timer.async_wait(asio::use_awaitable);
        stamp_driver{&l, &last[i]}.set(from + (to - from) * k / steps);
        next += l.period;
      }
    }
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) asio::co_spawn(io, servo(i), tactus::rethrow);
  io.run();
  const double cpu = cpu_seconds() - cpu0;
  return figures(l, cpu, std::chrono::duration<double>(clock_type::now() - t0).count(), l.count);
}

json run_floor(int n, double rate, double seconds) {
  lateness l{std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1 / rate))};
  std::vector<double> last(n, 90), from(n, 90), to(n), step(n), steps(n);
  mover mv{std::mt19937{1}, l.period, off_grid};
  for (int i = 0; i < n; ++i)
    to[i] = mv.target(), steps[i] = static_cast<double>(mv.duration() / l.period), step[i] = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = clock_type::now();
  auto next = clock_type::time_point((t0.time_since_epoch() / l.period + 1) * l.period);
  const auto end = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  for (; next < end; next += l.period) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(next.time_since_epoch()).count();
    const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
    }
    for (int i = 0; i < n; ++i) {
      if (++step[i] >= steps[i])
        from[i] = to[i], to[i] = mv.target(), steps[i] = static_cast<double>(mv.duration() / l.period), step[i] = 0;
      stamp_driver{&l, &last[i]}.set(from[i] + (to[i] - from[i]) * step[i] / steps[i]);
    }
  }
  const double cpu = cpu_seconds() - cpu0;
  return figures(l, cpu, std::chrono::duration<double>(clock_type::now() - t0).count(), l.count);
}

json run_python(const std::string& script, int n, double rate, double seconds) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) return {{"skipped", "python3 not found"}};
  const std::string cmd = "python3 '" + script + "' --servos " + std::to_string(n) + " --rate " + std::to_string(rate) +
                          " --seconds " + std::to_string(seconds);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {{"skipped", "cannot start " + cmd}};
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  try {
    if (rc == 0) return json::parse(out);
  } catch (...) {
  }
  return {{"skipped", "'" + cmd + "' failed (status " + std::to_string(rc) + ")"}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tweens: many servos moving at once, tactus against the naive ways", "tweens"};
  int servos = 10'000;
  double rate = 50, seconds = 5;
  std::string python = TWEENS_ASYNCIO_PY;
  bool no_python = false;
  app.add_option("--servos", servos, "servos moving at once")
      ->check(tactus_bench::range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--rate", rate, "updates per second")->check(tactus_bench::range(1.0, 1000.0))->capture_default_str();
  app.add_option("--seconds", seconds, "length of each run")
      ->check(tactus_bench::range(0.5, 3600.0))
      ->capture_default_str();
  app.add_option("--python", python, "the asyncio side")->capture_default_str();
  app.add_flag("--no-python", no_python, "skip the asyncio side");
  app.add_flag("--off-grid", off_grid, "moves of any length in ms, ending off the update grid");
  tactus_bench::parse(app, argc, argv);

  json j;
  j["servos"] = servos;
  j["rate_hz"] = rate;
  j["seconds"] = seconds;
  j["move_ends"] = off_grid ? "off the grid" : "on the grid";
  j["load_before"] = loadavg();
  const auto ours = run_tactus(servos, rate, seconds);
  const auto naive = run_coroutine_per_servo(servos, rate, seconds);
  const auto floor = run_floor(servos, rate, seconds);
  const auto py = no_python ? json{{"skipped", "--no-python"}} : run_python(python, servos, rate, seconds);
  j["updates"] = ours["updates"];
  j["cpu_s"] = ours["cpu_s"];
  j["p99_lateness_us"] = ours["p99_lateness_us"];
  j["tactus"] = ours;
  j["coroutine_per_servo"] = naive;
  j["floor"] = floor;
  j["python_asyncio"] = py;
  j["load_after"] = loadavg();
  const double per_cpu = ours["updates_per_cpu_s"].get<double>();
  json goals{{"cpu_under_25_percent_of_a_core", ours["cpu_fraction_of_one_core"].get<double>() < 0.25},
             {"p99_lateness_at_most_1_ms", ours["p99_lateness_us"].get<double>() <= 1000}};
  if (py.contains("updates_per_cpu_s") && py["updates_per_cpu_s"].is_number()) {
    const double ratio = per_cpu / py["updates_per_cpu_s"].get<double>();
    j["updates_per_cpu_s_vs_python"] = tactus_bench::rounded(ratio, 1);
    goals["at_least_50x_python_updates_per_cpu_s"] = ratio >= 50;
  }
  j["goals"] = goals;
  tactus_bench::print(j);
}
