// SPDX-License-Identifier: BSL-1.0
// MIDI clock over real RtMidi ports on the JACK server of the `jack` CTest fixture (dummy
// backend, 128 frames at 48 kHz: one period is 2.67 ms): our master drives our follower, Debian's
// jack_midi_clock drives our follower, and Debian's jack_mclk_dump follows our master.
//
// Real-clock assertions allow for a loaded 2-core machine: JACK stamps every MIDI event at the
// period it is processed in (up to one period late), and a busy machine wakes threads late by a
// few more (tens, rarely) now and then. So beats vs pulses: the median within one period; every
// beat's grid time within one period plus 6 ms of margin; tempo within 0.1 BPM (the fit averages
// the noise away). The exact timing of the same logic is asserted in virtual time in
// midi_clock_follower_test.cpp.
#include <tactus/midi/clock_follower.hpp>
#include <tactus/midi/clock_master.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/jack_period.hpp"
#include "support/sanitizers.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

// ThreadSanitizer's suppressions for libjack are in tests/tsan.supp (the tsan preset uses them).
// Real clock on a real JACK server: what a shared 2-core VM guarantees is that following works
// (it reaches `playing`, has a tempo, delivers beats in order, goes `lost`): RT_REQUIRE asserts
// that. The figures (tempo to 0.1 BPM, offsets to a JACK period, positions at transport changes)
// depend on the host's scheduling: RT_CHECK reports a miss (WARN) with its values and the test
// prints the measurements; the same behaviour is asserted exactly in virtual time, in
// midi_clock_follower_test. Under ThreadSanitizer (every thread several times slower) even the
// transitions are only reported.
#define RT_CHECK(...)                                                    \
  do {                                                                   \
    if (!(__VA_ARGS__)) WARN("real-clock figure missed: " #__VA_ARGS__); \
  } while (0)
// Transitions and beat order are structural: RT_CHECK_STRUCT asserts them (reports under TSan).
#if defined(TACTUS_TEST_TSAN)
#define RT_CHECK_STRUCT(...) RT_CHECK(__VA_ARGS__)
#define RT_REQUIRE(...)                               \
  do {                                                \
    if (!(__VA_ARGS__)) {                             \
      WARN("not asserted under TSan: " #__VA_ARGS__); \
      return;                                         \
    }                                                 \
  } while (0)
#else
#define RT_CHECK_STRUCT(...) CHECK(__VA_ARGS__)
#define RT_REQUIRE(...) REQUIRE(__VA_ARGS__)
#endif

extern char** environ;

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using Catch::Approx;
using tactus::beats;
using tactus::bpm;

namespace {

const double period_ms = tactus_tests::jack_period_seconds() * 1e3;  // the fixture's JACK period
constexpr double margin_ms = 6.0;                                    // scheduling on a loaded 2-core machine

// A co_spawn completion handler that keeps the first exception instead of throwing it out of
// io_context::run(): thrown, it would unwind the objects the context's other coroutines still
// use while their frames live on in the context, to be destroyed (touching those objects) later.
auto keep_error(std::exception_ptr& first, std::function<void()> then = {}) {
  return [&first, then](std::exception_ptr e) {
    if (!e) return;
    if (!first) first = e;
    if (then) then();
  };
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool wait_until(const std::function<bool()>& pred, clock_type::duration timeout = 10s) {
  const auto end = clock_type::now() + timeout;
  while (!pred()) {
    if (clock_type::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

clock_follower_options follower_options() {
  clock_follower_options o;
  o.transport.estimator.latency =
      std::chrono::microseconds(std::llround(tactus_tests::jack_period_seconds() * 5e5));  // half a JACK period
  return o;
}

// The follower side, on the test's thread: a virtual input "clk-follow:in", a metronome and
// the follower, recording beats and state changes.
struct follower_side {
  asio::io_context ctx;
  input in;
  tactus::metronome m;
  clock_follower f;
  std::vector<tactus::tick> beats_seen;
  std::vector<std::pair<clock_type::time_point, transport_state>> changes;
  std::vector<song_position> position_at_change;
  std::vector<std::optional<bpm>> tempo_at_beat;
  std::exception_ptr error;  // the first exception of m.run() or f.run()
  bool finished = false;

  // Reads from a virtual port "clk-follow:in", or from the port named `port`.
  explicit follower_side(std::string_view port = {})
      : in(port.empty() ? input(ctx.get_executor(), virtual_port, options())
                        : input(ctx.get_executor(), port, options())),
        m(ctx.get_executor(), bpm{100}),
        f(in, m, follower_options()) {
    m.on_tick([this](const tactus::tick& b) {
      beats_seen.push_back(b);
      tempo_at_beat.push_back(f.tempo());
    });
    f.on_state_change([this](transport_state s) {
      changes.emplace_back(clock_type::now(), s);
      position_at_change.push_back(f.position());
    });
    asio::co_spawn(ctx, m.run({.paused = true}), keep_error(error));
    asio::co_spawn(ctx, f.run(), keep_error(error));
  }
  static input_options options() {
    input_options o;
    o.client_name = "clk-follow";
    o.rescan_interval = 0ms;
    return o;
  }
  ~follower_side() { end(); }  // also on an early return: no coroutine outlives m and f
  // Ends following; checks that both coroutines ended cleanly.
  void finish() {
    if (finished) return;
    end();
    CHECK(ctx.stopped());  // nothing left pending: no frame outlives m and f
    if (error) std::rethrow_exception(error);
  }
  void end() noexcept {
    if (finished) return;
    finished = true;
    f.stop();
    m.stop();
    in.close();
    ctx.restart();
    ctx.run_for(1s);
  }
};

// A master beat pulse: its song position in beats, when it was due on the master's grid, and
// when it was sent.
struct sent_beat {
  std::int64_t beat;
  clock_type::time_point scheduled;
  clock_type::time_point sent;
};

// Records the master's beat pulses (every 24th CLOCK), just after each left.
void record_beats(clock_master& master, std::vector<sent_beat>& out) {
  master.metronome().on_tick([&master, &out](const tactus::tick& b) {
    const auto pulse = master.position() - 1;
    if (pulse % pulses_per_beat == 0) out.push_back({pulse / pulses_per_beat, b.scheduled, clock_type::now()});
  });
}

// A child process (jack_midi_clock, jack_mclk_dump), stdout to a file; stopped with TERM.
class child {
 public:
  explicit child(std::vector<std::string> args, const std::string& out_file = "/dev/null")
      : process_(std::move(args), {.stdout_file = out_file}) {}
  void kill(int sig) { process_.stop(sig); }

 private:
  tactus_tests::child_process process_;
};

void transport(const char* command) {  // jackd2's jack_transport reads commands on stdin
  FILE* p = ::popen("jack_transport >/dev/null 2>&1", "w");
  RT_REQUIRE(p);
  std::fprintf(p, "%s\n", command);
  ::pclose(p);
}

// A new connection takes a few JACK cycles to reach the graph (many under TSan, with jackd
// --no-realtime): what is sent before is lost, START included.
// (Under TSan the first connection of a process delivered nothing at all even after 1.5 s: open.)
void settle() { std::this_thread::sleep_for(200ms); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

// Runs the follower's context until the master's thread is done, for at most a minute: a JACK
// server that stalls a client must fail the test, not hang it until ctest's timeout. The
// master's thread holds references into this test's frame, so it cannot be abandoned: a thread
// still stuck after a minute aborts the process (the crash reporter prints every thread's stack).
void wait_for_master(asio::io_context& ctx, const std::atomic<bool>& done, std::thread& master) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done && std::chrono::steady_clock::now() < deadline) ctx.run_for(std::chrono::milliseconds(50));
  if (!done) {
    std::fprintf(stderr, "midi_clock_test: the master's thread did not finish within 60 s (a stalled JACK client?)\n");
    std::abort();
  }
  master.join();
}

// Runs a clock master at `tempo` on a thread of its own (its own io_context, an output connected
// to the follower's port), while the follower's context runs here. `script(ctx, out, master,
// on_error)` sets the master up and spawns what drives it, with `on_error` as the completion
// handler of every coroutine: it keeps the first exception and stops the master. That exception
// is rethrown here once the master's thread has ended.
template <class Script>
void run_master(follower_side& fol, double tempo, Script script) {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  std::thread thread([&] {
    try {
      asio::io_context ctx;
      output_options oo;
      oo.client_name = "clk-master";
      output out(ctx.get_executor(), "clk-follow:in", oo);
      settle();
      clock_master master(ctx.get_executor(), out, bpm{tempo});
      script(ctx, out, master, keep_error(error, [&] { master.stop(); }));
      ctx.run();
    } catch (...) {  // from the constructors: nothing was spawned
      if (!error) error = std::current_exception();
    }
    done = true;
  });
  wait_for_master(fol.ctx, done, thread);
  if (error) std::rethrow_exception(error);
}

TEST_CASE("our master drives our follower: tempo, beats on the pulses, tempo change, stop and continue") {
#if defined(TACTUS_TEST_TSAN)
  // Under ThreadSanitizer the run is about races, not timing, and each tempo takes minutes on
  // a loaded machine: one tempo.
  const double tempo = GENERATE(97.3);
#else
  const double tempo = GENERATE(60.0, 97.3, 133.0, 174.0);
#endif
  // +5 %: none of these tempos has a pulse period within 1 % of a whole number of JACK periods.
  // One that has aliases with the period stamping (174 * 1.08 = 187.92 BPM is 4.99 periods a
  // pulse: the stamps show exactly 5, 187.5 BPM, until the phase slips a period ~4 beats later).
  const double changed = tempo * 1.05;
  INFO(tempo << " BPM, then " << changed);
  follower_side fol;

  std::vector<sent_beat> sent;
  std::int64_t stopped_at = -1;
  run_master(fol, tempo, [&](asio::io_context& mctx, output&, clock_master& master, auto on_error) {
    record_beats(master, sent);
    asio::co_spawn(
        mctx,
        [&, on_error]() -> asio::awaitable<void> {
          auto& metro = master.metronome();
          asio::co_spawn(mctx, master.run(), on_error);
          co_await metro.async_wait_tick_at(beats{6}, asio::use_awaitable);
          master.set_tempo(bpm{changed});
          co_await metro.async_wait_tick_at(beats{11.5}, asio::use_awaitable);  // stop in mid-beat
          master.stop();
          asio::steady_timer pause(mctx, 300ms);
          co_await pause.async_wait(asio::use_awaitable);
          stopped_at = master.position();
          asio::co_spawn(mctx, master.run(clock_master_start::continue_), on_error);
          co_await metro.async_wait_tick_at(beats{1.6}, asio::use_awaitable);
          master.stop();
        },
        on_error);
  });
  fol.ctx.run_for(300ms);
  fol.finish();

  // Transport: playing, stopped (at the master's position), playing (CONTINUE), stopped.
  RT_REQUIRE(fol.changes.size() == 4);
  RT_CHECK_STRUCT(fol.changes[0].second == transport_state::playing);
  RT_CHECK_STRUCT(fol.changes[1].second == transport_state::stopped);
  RT_CHECK_STRUCT(fol.changes[2].second == transport_state::playing);
  RT_CHECK_STRUCT(fol.changes[3].second == transport_state::stopped);
  const std::int64_t per_bar = 4 * pulses_per_beat;
  RT_CHECK(fol.position_at_change[1] == song_position{stopped_at / per_bar, int(stopped_at % per_bar) / pulses_per_beat,
                                                      int(stopped_at % pulses_per_beat)});

  // Beats: every beat the master sent, once, in order: none repeated or skipped over the stop.
  std::vector<std::int64_t> master_beats, follower_beats;
  for (auto& s : sent) master_beats.push_back(s.beat);
  for (auto& b : fol.beats_seen) follower_beats.push_back(std::llround(b.position.count()));
  RT_CHECK(follower_beats == master_beats);
  // The first beat after CONTINUE is the next whole beat after where the master stopped.
  const auto resumed = std::find_if(fol.beats_seen.begin(), fol.beats_seen.end(),
                                    [&](auto& b) { return b.fired > fol.changes[2].first; });
  RT_REQUIRE(resumed != fol.beats_seen.end());
  RT_CHECK(resumed->position.count() == std::ceil(double(stopped_at) / pulses_per_beat));

  // Tempo within 0.1 BPM after settling: five beats in, and four beats after the change. (Five:
  // 133 BPM is 7.05 JACK periods a pulse, so the stamps slip a period only every 20 pulses; the
  // fit needs a few slips to see past the quantization.)
  for (std::size_t i = 0; i < fol.beats_seen.size(); ++i) {
    const double p = fol.beats_seen[i].position.count();
    if (p != 5 && p != 10) continue;
    INFO("beat " << p);
    RT_REQUIRE(fol.tempo_at_beat[i]);
    // Four beats after a step, on a noisy real clock, the fit has not always shed every slip of
    // the JACK quantization (0.24 BPM seen once at 182.7): 0.25 here; the tighter bound after a
    // step is asserted in virtual time (midi_clock_follower_test).
    RT_CHECK(fol.tempo_at_beat[i]->value() == Approx(p == 5 ? tempo : changed).margin(p == 5 ? 0.1 : 0.25));
  }

  // Each beat against the master's beat pulse. End to end (the follower's beat fired vs the
  // master's CLOCK sent): the median within a period. Beat by beat, the grid the follower
  // computed vs the master's grid, which a thread that wakes late on a loaded machine (either
  // one: 28 ms once under ASan) does not move: within a period plus margin. Beat 0, and the
  // first beat after CONTINUE, fire when their pulse arrives, up to a period after it was sent.
  std::vector<double> offsets;
  double worst = 0;
  for (std::size_t i = 0; i < fol.beats_seen.size() && i < sent.size(); ++i) {
    const auto& b = fol.beats_seen[i];
    const double end_to_end = ms(b.fired - sent[i].sent), grid = ms(b.scheduled - sent[i].scheduled);
    INFO("beat " << b.position.count() << ": fired " << end_to_end << " ms after the pulse was sent, grid off by "
                 << grid << " ms");
    if (i == 0 || &b == &*resumed) {
      // Anchored on the pulse's stamp less the half-period latency correction: up to half a
      // period early on the master's grid, or up to a period late.
      RT_CHECK(grid > -period_ms / 2 - 1.0);
      RT_CHECK(grid < period_ms + margin_ms);
    } else {
      RT_CHECK(std::abs(grid) < period_ms + margin_ms);
      offsets.push_back(std::abs(end_to_end));
      worst = std::max(worst, std::abs(end_to_end));
    }
  }
  std::printf(
      "midi_clock: %.1f BPM: follower beats fired vs master beat pulses sent: median |offset| %.3f ms, worst %.3f ms; "
      "tempo at beat 5 %.3f, at beat 10 %.3f (%.3f)\n",
      tempo, median(offsets), worst,
      fol.tempo_at_beat.size() > 5 && fol.tempo_at_beat[5] ? fol.tempo_at_beat[5]->value() : 0.0,
      fol.tempo_at_beat.size() > 10 && fol.tempo_at_beat[10] ? fol.tempo_at_beat[10]->value() : 0.0, changed);
  RT_CHECK(median(offsets) < period_ms);
}

TEST_CASE("a master that vanishes without STOP: the follower goes lost within the timeout") {
  follower_side fol;
  clock_type::time_point last_pulse{};
  run_master(fol, 150, [&](asio::io_context& mctx, output& out, clock_master& master, auto on_error) {
    master.metronome().on_tick([&](const tactus::tick&) { last_pulse = clock_type::now(); });
    asio::co_spawn(
        mctx,
        [&, on_error]() -> asio::awaitable<void> {
          asio::co_spawn(mctx, master.run(), on_error);
          co_await master.metronome().async_wait_tick_at(beats{3}, asio::use_awaitable);
          out.close();  // the port goes away: the STOP that run() sends on its way out goes nowhere
          master.stop();
        },
        on_error);
  });
  fol.ctx.run_for(1500ms);  // the timeout is two beats at 150 BPM: 800 ms
  fol.finish();
  for (auto& c : fol.changes)
    std::printf("midi_clock: lost test: state %d at %.1f ms\n", int(c.second), ms(c.first - last_pulse));
  RT_REQUIRE(fol.changes.size() == 2);
  RT_CHECK_STRUCT(fol.changes[0].second == transport_state::playing);
  RT_CHECK_STRUCT(fol.changes[1].second == transport_state::lost);
  const double after = ms(fol.changes[1].first - last_pulse);
  std::printf("midi_clock: lost %.1f ms after the last pulse (timeout 800 ms)\n", after);
  RT_CHECK(after > 800.0 - period_ms);  // never early
  RT_CHECK(after < 800.0 + 200.0);      // and on time, give or take a loaded machine
  // No beat played ahead of the vanished source.
  RT_REQUIRE(!fol.beats_seen.empty());
  RT_CHECK(fol.beats_seen.back().position.count() == 3);
}

TEST_CASE("jack_midi_clock drives our follower: tempo, stop, continue, and lost when killed") {
  child source({"jack_midi_clock", "-b", "120"});
  RT_REQUIRE(wait_until([] {
    try {
      return !find_input_port("jack_midi_clock:mclk_out").empty();
    } catch (const std::exception&) {
      return false;
    }
  }));
  follower_side fol("jack_midi_clock:mclk_out");
  auto run_for = [&](auto d) { fol.ctx.run_for(d); };
  transport("locate 0");
  transport("play");
  run_for(3s);
  RT_REQUIRE(!fol.changes.empty());
  RT_CHECK_STRUCT(fol.changes.back().second == transport_state::playing);
  RT_REQUIRE(fol.f.tempo());
  // jack_midi_clock counts JACK frames, and the dummy backend's frame clock runs off the wall
  // clock on a loaded VM (118 BPM for "120" seen here, with 2 ms jitter); our stamps are
  // steady_clock. So: the source is sane (within 5 % of 120), and the follower matches the tempo
  // the source really delivered, measured here from the beats over the whole run. The
  // estimator's ±0.1 BPM against an exact source is asserted in virtual time and master -> follower.
  const auto n = fol.beats_seen.size();
  RT_REQUIRE(n >= 4);
  const double delivered = 60.0 * double(n - 2) / (ms(fol.beats_seen[n - 1].fired - fol.beats_seen[1].fired) / 1e3);
  std::printf("midi_clock: jack_midi_clock -b 120: delivered %.3f BPM, follower tempo %.4f, jitter %.3f ms\n",
              delivered, fol.f.tempo()->value(), fol.f.transport().estimator().jitter().count() * 1e3);
  RT_CHECK(delivered == Approx(120).epsilon(0.05));
  RT_CHECK(fol.f.tempo()->value() == Approx(delivered).epsilon(0.005));
  // Beats on a straight line at the delivered tempo.
  for (std::size_t i = 1; i < n; ++i) {
    RT_CHECK_STRUCT(fol.beats_seen[i].position.count() == fol.beats_seen[i - 1].position.count() + 1);
    if (i >= 2)
      RT_CHECK(std::abs(ms(fol.beats_seen[i].fired - fol.beats_seen[i - 1].fired) - 60000.0 / delivered) <
               period_ms + margin_ms);
  }

  transport("stop");
  run_for(500ms);
  RT_CHECK_STRUCT(fol.changes.back().second == transport_state::stopped);
  const auto beats_while_stopped = fol.beats_seen.size();
  run_for(500ms);
  RT_CHECK(fol.beats_seen.size() == beats_while_stopped);

  transport("play");  // CONTINUE from where the transport stands
  run_for(1500ms);
  RT_CHECK_STRUCT(fol.changes.back().second == transport_state::playing);
  RT_CHECK(fol.beats_seen.size() >= beats_while_stopped + 2);
  for (std::size_t i = 1; i < fol.beats_seen.size(); ++i)
    RT_CHECK_STRUCT(fol.beats_seen[i].position.count() == fol.beats_seen[i - 1].position.count() + 1);

  source.kill(SIGKILL);  // no STOP
  const auto killed = clock_type::now();
  run_for(1500ms);
  RT_CHECK_STRUCT(fol.changes.back().second == transport_state::lost);
  RT_CHECK(ms(fol.changes.back().first - killed) < 1000.0 + 200.0);
  fol.finish();
  transport("stop");
  transport("locate 0");
}

TEST_CASE("jack_mclk_dump follows our master") {
  const std::string dump_file = "midi_clock_test_mclk_dump.txt";
  child dump({"jack_mclk_dump", "-n"}, dump_file);
  RT_REQUIRE(wait_until([] {
    try {
      return !find_output_port("jack_mclk_dump:mclk_in").empty();
    } catch (const std::exception&) {
      return false;
    }
  }));
  const double tempo = 133.0;
  std::int64_t pulses = 0;
  {
    asio::io_context ctx;
    output_options oo;
    oo.client_name = "clk-master";
    output out(ctx.get_executor(), "jack_mclk_dump:mclk_in", oo);
    settle();
    clock_master master(ctx.get_executor(), out, bpm{tempo});
    std::exception_ptr error;
    asio::co_spawn(ctx, master.run(), keep_error(error));
    ctx.run_for(4s);
    master.stop();
    ctx.run_for(200ms);
    REQUIRE(!master.running());
    pulses = master.pulses_sent();
    if (error) std::rethrow_exception(error);
  }
  std::this_thread::sleep_for(100ms);
  dump.kill(SIGTERM);
  // Lines like "CLK cur:  133.93[BPM] flt:  133.00[BPM]  dt:  896[sm]    1|2|0 @ 27648": the
  // tempo of each interval, its DLL-filtered tempo, and the frame time of the pulse. Its filter
  // settles over seconds; the frame times are what it received: fit a line through them.
  std::ifstream f(dump_file);
  std::string line;
  std::vector<double> frames, filtered;
  bool saw_start = false, saw_stop = false;
  std::int64_t clocks = 0;
  while (std::getline(f, line)) {
    clocks += line.rfind("CLK", 0) == 0;  // the first has no tempo yet ("??")
    saw_start |= line.find("start") != std::string::npos;
    saw_stop |= line.find("stop") != std::string::npos;
    const auto k = line.find("flt:"), at = line.rfind('@');
    if (k == std::string::npos || at == std::string::npos) continue;
    double v = 0, frame = 0;
    if (std::sscanf(line.c_str() + k, "flt: %lf", &v) == 1 && std::sscanf(line.c_str() + at, "@ %lf", &frame) == 1) {
      filtered.push_back(v);
      frames.push_back(frame);
    }
  }
  RT_CHECK(saw_start);
  RT_CHECK(saw_stop);
  RT_REQUIRE(frames.size() > 24 * 6);
  // Least squares: frames per pulse.
  const double n = double(frames.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const double x = double(i), y = frames[i] - frames[0];
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double measured = 60.0 * 48000.0 / (slope * pulses_per_beat);
  std::printf(
      "midi_clock: jack_mclk_dump receives our %.1f BPM master at %.3f BPM (fit of its %zu frame stamps); "
      "its DLL reads %.2f at the end\n",
      tempo, measured, frames.size(), filtered.back());
  RT_CHECK(clocks == pulses);  // every pulse, none twice
  // In JACK frame time, which the dummy backend lets slip behind the wall clock when the machine
  // is loaded (0.95 % in one loaded run, 0.000 % on a quiet one): 1.5 %.
  RT_CHECK(measured == Approx(tempo).epsilon(0.015));
}
