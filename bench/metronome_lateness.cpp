// SPDX-License-Identifier: BSL-1.0
// metronome_lateness: how late tactus::metronome wakes on a fast grid (1 ms beats by default),
// beside the naive way (sleep_for one period per beat, what users hand-roll) and the floor (a
// clock_nanosleep(TIMER_ABSTIME) loop on the same grid, what cyclictest measures). The three run
// one after the other in the same process, never concurrently. Prints one JSON object on stdout;
// progress and notes go to stderr.
//
//   lateness of beat n   = its wake time - (start + n * period)    (start: the run's anchor)
//   final_drift_us       = median lateness of the last W beats of a run - median lateness of its
//                          first W (W = min(1000, beats / 10)): the error the loop accumulated
//                          over the run. Grid-anchored loops stay near 0; sleep_for loses its
//                          overhead on every beat and ends at about beats * overhead.
//   allocs_per_beat_steady = global operator new calls per delivered beat after the warm-up
//                          beats, with a plain void callback (counted by the replaced operator
//                          new below).
//
// The metronome is measured from inside its callback (steady_clock::now() at entry), so the
// figure includes the coroutine resumption path, as a user's callback sees it. It runs with the
// catch_up overrun policy by default so that every beat is delivered and measured (--policy skip
// for the default policy: skipped beats are then counted, not measured). The probe runs with a
// 1 ns timer slack (see run_probe). --rounds R interleaves the three in R shorter runs each, in
// rotating order, when the machine's load varies too much for back-to-back runs to compare.
//
//   cmake --preset release && cmake --build --preset release --target metronome_lateness
//   build/release/bench/metronome_lateness [--beats N] [--bpm X] [--warmup N] [--rounds R]
//                                          [--policy catch_up|skip] [--probe-slack-ns NS]
//                                          [--histogram FILE]
#include <tactus/metronome.hpp>

#include "support/cli.hpp"
#include "support/json.hpp"
#include "support/load.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <thread>
#include <vector>

// --- Allocation counting: every global operator new goes through here. ----------------------

using tactus_bench::load_1m;

namespace {
// Relaxed: a tally, read on the thread that allocates; no other memory is published through it.
std::atomic<std::uint64_t> g_allocs{0};

void* counted_alloc(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_alloc(std::size_t n, std::align_val_t al) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  return std::aligned_alloc(a, (std::max<std::size_t>(n, 1) + a - 1) / a * a);
}
// Out of line: once std::free is inlined into operator delete, g++ 12 pairs it with the
// `new` expressions of the caller and warns (-Wmismatched-new-delete), wrongly.
[[gnu::noinline]] void counted_free(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t al) {
  if (void* p = counted_alloc(n, al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t al) {
  if (void* p = counted_alloc(n, al)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept { return counted_alloc(n, al); }
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_alloc(n, al);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }

// --- The benchmark. -----------------------------------------------------------------------------

namespace {

using clk = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++, as the probe's clock
using ns = std::chrono::nanoseconds;

struct options {
  std::int64_t beats = 100000;
  double bpm = 60000.0;
  std::int64_t warmup = 1000;
  tactus::overrun_policy policy = tactus::overrun_policy::catch_up;
  std::int64_t rounds = 1;
  long probe_slack_ns = 1;
  std::string histogram;
};

// The exact grid: beat n of a run anchored at t0, computed from the anchor as the metronome's
// timeline does (period in double seconds, rounded to the clock's tick), never accumulated.
clk::time_point grid_time(clk::time_point t0, std::int64_t n, double period_s) {
  return t0 + std::chrono::round<clk::duration>(std::chrono::duration<double>(static_cast<double>(n) * period_s));
}

// One series' samples, over one or more contiguous runs (segments): the beat index and the
// lateness (ns) of every measured beat, in order.
struct run_result {
  std::vector<std::int64_t> index;
  std::vector<std::int64_t> lateness_ns;
  std::vector<std::size_t> segment_starts;  // offset of each contiguous run in the samples
  std::int64_t skipped = 0;
  std::uint64_t allocs_total = 0;
  std::uint64_t allocs_steady = 0;  // metronome: operator new calls after the warm-up beats
  std::int64_t beats_steady = 0;    // metronome: beats delivered after the warm-up beats
  double load_before = -1;
  double load_after = -1;
  double seconds = 0;
  int timer_slack_ns = 0;
  long voluntary_switches = 0;  // the thread's sleeps: one per beat when each wake-up is the last
  // Metronome only: where the lateness arises (timer wake-up vs resumption into the callback).
  std::vector<std::int64_t> fired_ns;   // b.fired - b.scheduled
  std::vector<std::int64_t> resume_ns;  // callback entry - b.fired
  std::int64_t grid_mismatches = 0;     // b.scheduled != our own grid time

  void reserve(std::int64_t n, bool detail) {
    index.reserve(static_cast<std::size_t>(n));
    lateness_ns.reserve(static_cast<std::size_t>(n));
    if (detail) {
      fired_ns.reserve(static_cast<std::size_t>(n));
      resume_ns.reserve(static_cast<std::size_t>(n));
    }
  }
  double allocs_per_beat_steady() const {
    return beats_steady > 0 ? static_cast<double>(allocs_steady) / static_cast<double>(beats_steady) : -1.0;
  }
};

// Brackets one contiguous run: load average, wall time, allocations, timer slack.
class segment {
 public:
  explicit segment(run_result& r) : r_(r), a0_(g_allocs.load(std::memory_order_relaxed)) {
    if (r_.load_before < 0) r_.load_before = load_1m();
    r_.segment_starts.push_back(r_.lateness_ns.size());
    r_.timer_slack_ns = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    nvcsw0_ = voluntary_switches();
  }
  ~segment() {
    r_.voluntary_switches += voluntary_switches() - nvcsw0_;
    r_.seconds += std::chrono::duration<double>(clk::now() - w0_).count();
    r_.allocs_total += g_allocs.load(std::memory_order_relaxed) - a0_;
    r_.load_after = load_1m();
  }
  segment(const segment&) = delete;
  segment& operator=(const segment&) = delete;

 private:
  static long voluntary_switches() {
    rusage u{};
    return getrusage(RUSAGE_THREAD, &u) == 0 ? u.ru_nvcsw : 0;
  }
  run_result& r_;
  std::uint64_t a0_;
  long nvcsw0_ = 0;
  clk::time_point w0_ = clk::now();
};

void run_metronome(const options& o, std::int64_t beats, run_result& r) {
  const double period_s = 60.0 / o.bpm;
  asio::io_context io{1};
  tactus::metronome m{io.get_executor(), tactus::bpm{o.bpm}};
  m.set_overrun_policy(o.policy);

  struct state {
    run_result* r;
    tactus::metronome* m;
    std::int64_t warmup;
    std::int64_t beats;
    double period_s;
    clk::time_point t0{};
    std::uint64_t allocs_at_warmup = 0;
    std::int64_t delivered_at_warmup = -1;
    std::uint64_t allocs_at_end = 0;
    std::int64_t delivered = 0;
  } s{&r, &m, o.warmup, beats, period_s};

  // A plain void callback: records, never allocates (vectors are reserved).
  m.on_tick([st = &s](const tactus::tick& b) {
    const auto now = clk::now();
    if (st->delivered == 0) st->t0 = st->m->timeline().anchor_time();
    const auto grid = grid_time(st->t0, b.index, st->period_s);
    st->r->index.push_back(b.index);
    st->r->lateness_ns.push_back(std::chrono::duration_cast<ns>(now - grid).count());
    st->r->fired_ns.push_back(std::chrono::duration_cast<ns>(b.fired - b.scheduled).count());
    st->r->resume_ns.push_back(std::chrono::duration_cast<ns>(now - b.fired).count());
    if (b.scheduled != grid) ++st->r->grid_mismatches;
    ++st->delivered;
    if (st->delivered_at_warmup < 0 && b.index >= st->warmup) {
      st->allocs_at_warmup = g_allocs.load(std::memory_order_relaxed);
      st->delivered_at_warmup = st->delivered;
    }
    if (b.index + 1 >= st->beats) {
      st->allocs_at_end = g_allocs.load(std::memory_order_relaxed);
      st->m->stop();
    }
  });

  {
    const segment seg(r);
    asio::co_spawn(io, m.run(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    io.run();
  }
  r.skipped += m.skipped_count();
  if (s.delivered_at_warmup >= 0) {
    r.allocs_steady += s.allocs_at_end - s.allocs_at_warmup;
    r.beats_steady += s.delivered - s.delivered_at_warmup;
  }
}

// What users hand-roll: `while True: sleep(60 / bpm); work()`. Beat 0 is the start itself.
void run_naive(const options& o, std::int64_t beats, run_result& r) {
  const double period_s = 60.0 / o.bpm;
  const auto period = std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(period_s));
  const segment seg(r);
  const auto t0 = clk::now();
  for (std::int64_t n = 0;;) {
    const auto now = clk::now();
    r.index.push_back(n);
    r.lateness_ns.push_back(std::chrono::duration_cast<ns>(now - grid_time(t0, n, period_s)).count());
    if (++n == beats) break;
    std::this_thread::sleep_for(period);
  }
}

// The floor: sleep to each absolute grid time with clock_nanosleep(CLOCK_MONOTONIC,
// TIMER_ABSTIME), as cyclictest does. The thread's timer slack (50 us by default for normal
// threads; cyclictest runs real-time, where it is 0) is lowered to 1 ns for the run, so that the
// probe measures the kernel's wake-up latency and not the slack. The metronome waits in
// epoll_wait on a timerfd, which no slack applies to.
void run_probe(const options& o, std::int64_t beats, run_result& r) {
  const double period_s = 60.0 / o.bpm;
  const int saved_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (o.probe_slack_ns > 0) prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(o.probe_slack_ns), 0, 0, 0);
  {
    const segment seg(r);
    const auto t0 = clk::now();
    for (std::int64_t n = 0; n < beats; ++n) {
      const auto due = grid_time(t0, n, period_s);
      const auto since = std::chrono::duration_cast<ns>(due.time_since_epoch()).count();
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(since / 1000000000);
      ts.tv_nsec = static_cast<long>(since % 1000000000);
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
      const auto now = clk::now();
      r.index.push_back(n);
      r.lateness_ns.push_back(std::chrono::duration_cast<ns>(now - due).count());
    }
  }
  if (saved_slack > 0) prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(saved_slack), 0, 0, 0);
}

// Nearest-rank percentile of a sorted sample, in microseconds.
double pct_us(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  k = std::clamp<std::size_t>(k, 1, sorted.size());
  return static_cast<double>(sorted[k - 1]) / 1000.0;
}

double median_us(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return pct_us(v, 0.5);
}

std::size_t drift_window(std::size_t n) { return std::clamp<std::size_t>(n / 10, 1, 1000); }

// Median of the last W beats minus median of the first W, per contiguous run; the mean over runs.
double final_drift_us(const run_result& r) {
  double sum = 0;
  std::size_t runs = 0;
  for (std::size_t k = 0; k < r.segment_starts.size(); ++k) {
    const auto b = r.lateness_ns.begin() + static_cast<std::ptrdiff_t>(r.segment_starts[k]);
    const auto e = k + 1 < r.segment_starts.size()
                       ? r.lateness_ns.begin() + static_cast<std::ptrdiff_t>(r.segment_starts[k + 1])
                       : r.lateness_ns.end();
    if (b == e) continue;
    const auto w = static_cast<std::ptrdiff_t>(drift_window(static_cast<std::size_t>(e - b)));
    sum += median_us(std::vector<std::int64_t>(e - w, e)) - median_us(std::vector<std::int64_t>(b, b + w));
    ++runs;
  }
  return runs ? sum / static_cast<double>(runs) : 0.0;
}

struct summary {
  double p50, p99, max, mean, drift;
};

summary summarize(const std::vector<std::int64_t>& lat, const run_result* r = nullptr) {
  std::vector<std::int64_t> s = lat;
  std::sort(s.begin(), s.end());
  double sum = 0;
  for (auto x : s) sum += static_cast<double>(x);
  return {pct_us(s, 0.5), pct_us(s, 0.99), s.empty() ? 0 : static_cast<double>(s.back()) / 1000.0,
          s.empty() ? 0 : sum / static_cast<double>(s.size()) / 1000.0, r ? final_drift_us(*r) : 0.0};
}

double fmt(double x) { return tactus_bench::rounded(x, 3); }

tactus_bench::json series_json(const run_result& r, const summary& s) {
  return {{"measured", r.lateness_ns.size()},
          {"p50_us", fmt(s.p50)},
          {"p99_us", fmt(s.p99)},
          {"max_us", fmt(s.max)},
          {"mean_us", fmt(s.mean)},
          {"final_drift_us", fmt(s.drift)},
          {"seconds", fmt(r.seconds)},
          {"loadavg_1m_before", fmt(r.load_before)},
          {"loadavg_1m_after", fmt(r.load_after)},
          {"timer_slack_ns", r.timer_slack_ns},
          {"sleeps_per_beat", fmt(r.lateness_ns.empty() ? 0.0
                                                        : static_cast<double>(r.voluntary_switches) /
                                                              static_cast<double>(r.lateness_ns.size()))},
          {"allocs_total", r.allocs_total}};
}

// Log-spaced bins, 10 per decade from 1 us to 10 s; bin 0 holds lateness below 1 us.
constexpr int bins_per_decade = 10;
constexpr int decades = 7;
constexpr int n_bins = 1 + bins_per_decade * decades;

double bin_low_us(int b) { return b == 0 ? 0.0 : std::pow(10.0, (b - 1) / static_cast<double>(bins_per_decade)); }

int bin_of(std::int64_t lateness_ns) {
  const double us = static_cast<double>(lateness_ns) / 1000.0;
  if (us < 1.0) return 0;
  const int b = 1 + static_cast<int>(std::floor(std::log10(us) * bins_per_decade));
  return std::min(b, n_bins - 1);
}

// Gnuplot data: block 0 (`index 0`) is the histogram, one row per bin: low edge (us), high edge,
// then the count for metronome, naive_sleep_for, clock_nanosleep_floor. Block 1 (`index 1`) is
// lateness along the run: per chunk of beats, the first beat index and the median lateness (us)
// of each series, which shows accumulated drift as a slope.
bool write_histogram(const std::string& path, const run_result* const (&rs)[3]) {
  std::ofstream f(path);
  if (!f) return false;
  f << "# metronome_lateness: lateness = wake time - grid time\n"
    << "# index 0: bin_low_us bin_high_us metronome naive_sleep_for clock_nanosleep_floor\n";
  std::vector<std::int64_t> counts[3];
  for (int k = 0; k < 3; ++k) {
    counts[k].assign(n_bins, 0);
    for (auto x : rs[k]->lateness_ns) ++counts[k][static_cast<std::size_t>(bin_of(x))];
  }
  for (int b = 0; b < n_bins; ++b) {
    f << bin_low_us(b) << ' ' << bin_low_us(b + 1);
    for (auto& c : counts) f << ' ' << c[static_cast<std::size_t>(b)];
    f << '\n';
  }
  f << "\n\n# index 1: first_beat median_lateness_us for metronome naive_sleep_for clock_nanosleep_floor\n";
  std::size_t n = 0;
  for (auto* r : rs) n = std::max(n, r->lateness_ns.size());
  const std::size_t chunk = std::max<std::size_t>(1, n / 500);
  for (std::size_t i = 0; i < n; i += chunk) {
    f << i;
    for (auto* r : rs) {
      // Chunks by position in the sample; under the skip policy the metronome has fewer samples.
      if (i >= r->lateness_ns.size()) {
        f << " NaN";
        continue;
      }
      const auto end = std::min(i + chunk, r->lateness_ns.size());
      f << ' '
        << median_us(std::vector<std::int64_t>(r->lateness_ns.begin() + static_cast<std::ptrdiff_t>(i),
                                               r->lateness_ns.begin() + static_cast<std::ptrdiff_t>(end)));
    }
    f << '\n';
  }
  return static_cast<bool>(f);
}

options parse(int argc, char** argv) {
  options o;
  CLI::App app{
      "metronome_lateness: how late tactus::metronome wakes on a fast grid, beside sleep_for and the "
      "clock_nanosleep floor; prints one JSON object",
      "metronome_lateness"};
  app.add_option("--beats", o.beats, "beats per series (the series run one after another)")
      ->check(tactus_bench::range(std::int64_t{2}, std::int64_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--bpm", o.bpm, "tempo (60000: a 1 ms beat)")
      ->check(tactus_bench::range(tactus::bpm::min_value, tactus::bpm::max_value))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "beats of each metronome run excluded from allocs_per_beat_steady")
      ->check(tactus_bench::range(std::int64_t{0}, std::int64_t{1'000'000'000}))
      ->capture_default_str();
  std::string policy = "catch_up";
  app.add_option("--policy", policy, "the metronome's overrun policy (catch_up: every beat measured)")
      ->check(CLI::IsMember({"catch_up", "skip"}))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds,
                 "split each series into R runs of N/R beats, interleaved in rotating order, so that a load "
                 "change hits the three alike (1: one contiguous run each)")
      ->check(tactus_bench::range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--probe-slack-ns", o.probe_slack_ns,
                 "timer slack of the clock_nanosleep probe (0 keeps the thread's, 50000 for a normal thread)")
      ->check(tactus_bench::range(0L, 1'000'000'000L))
      ->capture_default_str();
  app.add_option("--histogram", o.histogram, "write lateness histograms and drift curves for gnuplot to FILE");
  tactus_bench::parse(app, argc, argv);
  o.policy = policy == "skip" ? tactus::overrun_policy::skip : tactus::overrun_policy::catch_up;
  // Constraints between options: CLI11 checks each option alone.
  if (o.beats < 2 * o.rounds || o.beats % o.rounds != 0 || o.warmup >= o.beats / o.rounds) {
    std::fprintf(stderr,
                 "metronome_lateness: --rounds must divide --beats with --beats / --rounds >= 2 and --warmup < "
                 "--beats / --rounds (try --help)\n");
    std::exit(2);
  }
  return o;
}

std::string series_name(int k) {
  static const char* const names[] = {"metronome", "naive_sleep_for", "clock_nanosleep_floor"};
  return names[k];
}

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  const double period_us = 60e6 / o.bpm;
  const std::int64_t per_run = o.beats / o.rounds;
  std::fprintf(stderr,
               "metronome_lateness: 3 series x %lld beats of %.1f us, in %lld round(s), one after another "
               "(~%.0f s)\n",
               static_cast<long long>(o.beats), period_us, static_cast<long long>(o.rounds),
               3.0 * static_cast<double>(o.beats) * period_us / 1e6);

  run_result rs[3];
  rs[0].reserve(o.beats, true);
  rs[1].reserve(o.beats, false);
  rs[2].reserve(o.beats, false);
  for (std::int64_t round = 0; round < o.rounds; ++round) {
    for (int j = 0; j < 3; ++j) {
      const int k = static_cast<int>((round + j) % 3);  // rotate the order from round to round
      std::fprintf(stderr, "  round %lld/%lld: %s (load %.2f)\n", static_cast<long long>(round + 1),
                   static_cast<long long>(o.rounds), series_name(k).c_str(), load_1m());
      if (k == 0) run_metronome(o, per_run, rs[0]);
      else if (k == 1) run_naive(o, per_run, rs[1]);
      else run_probe(o, per_run, rs[2]);
    }
  }
  const run_result& met = rs[0];
  if (met.grid_mismatches)
    std::fprintf(stderr, "  warning: %lld metronome beats scheduled off our grid\n",
                 static_cast<long long>(met.grid_mismatches));

  summary sum[3];
  for (int k = 0; k < 3; ++k) sum[k] = summarize(rs[k].lateness_ns, &rs[k]);
  const summary& sm = sum[0];
  const summary& sp = sum[2];
  const summary fired = summarize(met.fired_ns), resume = summarize(met.resume_ns);

  const bool p99_ok = sm.p99 <= 1.5 * sp.p99;
  const bool drift_ok = std::abs(sm.drift) <= sm.p99;
  const bool allocs_ok = met.allocs_per_beat_steady() == 0.0;

  tactus_bench::json j;
  j["bench"] = "metronome_lateness";
  j["beats"] = o.beats;
  j["bpm"] = fmt(o.bpm);
  j["period_us"] = fmt(period_us);
  j["rounds"] = o.rounds;
  j["hardware_threads"] = std::thread::hardware_concurrency();
  j["definitions"] = {
      {"lateness", "wake time - (start + n * period); for the metronome, taken inside its callback"},
      {"final_drift_us", "median lateness of the last " +
                             std::to_string(drift_window(static_cast<std::size_t>(per_run))) +
                             " beats of a run - median lateness of its first as many (mean over rounds)"},
      {"allocs_per_beat_steady", "operator new calls per delivered beat after the first " + std::to_string(o.warmup) +
                                     " beats of a run, plain void callback"},
      {"goals",
       "metronome p99 <= 1.5 x floor p99; |metronome final_drift_us| <= metronome p99_us; allocs_per_beat_steady == "
       "0"}};
  auto m = series_json(met, sm);
  m["overrun_policy"] = o.policy == tactus::overrun_policy::catch_up ? "catch_up" : "skip";
  m["skipped"] = met.skipped;
  m["allocs_per_beat_steady"] = fmt(met.allocs_per_beat_steady());
  m["timer_wake_p50_us"] = fmt(fired.p50);
  m["timer_wake_p99_us"] = fmt(fired.p99);
  m["resume_to_callback_p50_us"] = fmt(resume.p50);
  m["resume_to_callback_p99_us"] = fmt(resume.p99);
  m["resume_to_callback_max_us"] = fmt(resume.max);
  j["metronome"] = m;
  j["naive_sleep_for"] = series_json(rs[1], sum[1]);
  j["clock_nanosleep_floor"] = series_json(rs[2], sp);
  j["goals"] = {{"p99_within_1_5x_floor", p99_ok},
                {"p99_ratio_to_floor", fmt(sp.p99 > 0 ? sm.p99 / sp.p99 : 0)},
                {"drift_within_one_beat_lateness", drift_ok},
                {"zero_allocs_per_beat", allocs_ok}};

  if (!o.histogram.empty()) {
    const run_result* const ptrs[3] = {&rs[0], &rs[1], &rs[2]};
    if (!write_histogram(o.histogram, ptrs)) {
      std::fprintf(stderr, "metronome_lateness: cannot write %s\n", o.histogram.c_str());
      return 1;
    }
    std::fprintf(stderr, "  histogram written to %s\n", o.histogram.c_str());
  }
  tactus_bench::print(j);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "metronome_lateness: %s\n", e.what());
  return 1;
}
