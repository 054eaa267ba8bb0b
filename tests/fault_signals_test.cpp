// SPDX-License-Identifier: BSL-1.0
// Issue 12, item 2: a signal at any moment of a program's life ends it cleanly. Each example runs
// on the `jack` fixture's server and gets SIGINT or SIGTERM at a random moment of its start-up,
// play or end (every other run in its first 150 ms, the others in its first 700 ms); it must end
// within a second with status 0 (or be killed by the signal's default action when the signal came
// before main() installed its handler: the first milliseconds, while the dynamic loader and the
// option parsing run; or, for midi_panic, which ends by itself, after it printed its last line),
// never say "JACK error creating port" (an interrupted libjack call), and leave no note sounding
// in a raw capture port of this test (the drum machine plays into it), nor a START without STOP
// (clock_master). Seeded: TACTUS_FAULT_SEED=N replays a run; the seed is printed.
#include "support/catch.hpp"
#include "support/fault_injection.hpp"
#include "support/jack_capture.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if !defined(DRUM_MACHINE_EXE) || !defined(CLOCK_MASTER_EXE) || !defined(CLOCK_MONITOR_EXE) || \
    !defined(MIDI_MONITOR_EXE) || !defined(HELLO_METRONOME_EXE) || !defined(MIDI_PANIC_EXE)
#error "the examples' paths (see tests/CMakeLists.txt)"
#endif

using namespace std::chrono_literals;
using tactus::midi::message_type;
using tactus_tests::example;
using tactus_tests::fault_clock;

namespace {

std::mt19937& rng() {
  static std::mt19937 r = [] {
    const char* env = std::getenv("TACTUS_FAULT_SEED");
    const unsigned seed = env ? unsigned(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("figure: fault_signals seed %u (TACTUS_FAULT_SEED=%u replays it)\n", seed, seed);
    return std::mt19937(seed);
  }();
  return r;
}

// A signal before the handler is in place kills by default: only in the program's first moments.
constexpr auto before_handler = 40ms;

// What a program that ends by itself (midi_panic) prints once its work is done: a signal after
// that line finds the handler gone with the shutdown (main() is returning; under ASan the leak
// check at exit takes a while) and kills by default, status 128 + the signal, its work complete.
struct ends_with {
  const char* line = nullptr;  // a substring of its last line on stderr; nullptr: runs until stopped
};

struct outcome {
  int status = -1;
  double after = 0;           // when the signal was sent, seconds after the start
  double took = 0;            // seconds from the signal to the end
  bool ended_itself = false;  // the signal came as it exited, its work done (see ends_with)
};

// Runs `args` and sends `sig` `delay` after the start; returns how it ended.
outcome signal_at(const std::vector<std::string>& args, int sig, fault_clock::duration delay, ends_with end = {}) {
  example e(args);
  const auto start = fault_clock::now();
  std::this_thread::sleep_until(start + delay);
  e.signal(sig);
  const auto sent = fault_clock::now();
  auto status = e.wait(1s);
  outcome o;
  o.after = std::chrono::duration<double>(sent - start).count();
  o.took = std::chrono::duration<double>(fault_clock::now() - sent).count();
  INFO(args[0] << (sig == SIGINT ? ": SIGINT " : ": SIGTERM ") << o.after << " s after the start");
  INFO("stdout: " << e.out() << "stderr: " << e.err() << "took " << o.took << " s");
  if (!status) status = e.wait(5s);  // reaped either way; the checks below fail
  REQUIRE(status.has_value());
  o.status = *status;
  CHECK(o.took < 1.0);
  const bool had_ended = end.line && tactus_tests::lines_with(e.err(), end.line) > 0;
  if (sent - start < before_handler || had_ended) CHECK((o.status == 0 || o.status == 128 + sig));
  else CHECK(o.status == 0);
  o.ended_itself = had_ended && o.status == 128 + sig;
  CHECK(tactus_tests::lines_with(e.err(), "error creating port") == 0);
  CHECK(tactus_tests::lines_with(e.err(), "Interrupted system call") == 0);
  return o;
}

// `runs` runs of `args`, SIGINT and SIGTERM in turn, each at a random moment: every other run in
// the start-up (the first 150 ms: the ports opening), the others anywhere in the first `span`;
// `after_each(outcome)` checks what the capture heard.
template <class Check>
void at_random_moments(const std::vector<std::string>& args, int runs, fault_clock::duration span, Check&& after_each,
                       ends_with end = {}) {
  const auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  std::uniform_int_distribution<long long> starting(0, us(150ms)), anywhere(0, us(span));
  for (int i = 0; i < runs; ++i) {
    const int sig = (i / 2) % 2 ? SIGTERM : SIGINT;
    const auto o = signal_at(args, sig, std::chrono::microseconds(i % 2 ? anywhere(rng()) : starting(rng())), end);
    after_each(o);
  }
}

}  // namespace

TEST_CASE("fault: signals at random moments of the drum machine's life end it with every note ended") {
  tactus_tests::capture cap("fault-sig");
  std::size_t notes = 0, runs_with_notes = 0;
  at_random_moments({DRUM_MACHINE_EXE, "--bpm", "300", "--drums-port", "fault-sig", "--bass-port", "fault-sig"}, 10,
                    700ms, [&](const outcome&) {
                      std::this_thread::sleep_for(30ms);  // the last messages' cycle
                      const auto got = cap.take();
                      CHECK(tactus_tests::notes_left_sounding(got) == 0);
                      std::size_t n = 0;
                      for (const auto& m : got) n += m.is_note_on();
                      notes += n;
                      runs_with_notes += n > 0;
                    });
  std::printf("figure: %zu notes heard, in %zu of the 10 runs\n", notes, runs_with_notes);
  CHECK(runs_with_notes > 0);  // it played: some runs were stopped mid-play
}

TEST_CASE("fault: signals at random moments of clock_master's life leave no START without STOP") {
  tactus_tests::capture cap("fault-sig");
  int runs_started = 0;
  at_random_moments({CLOCK_MASTER_EXE, "--port", "fault-sig", "--bpm", "300"}, 8, 700ms, [&](const outcome&) {
    std::this_thread::sleep_for(30ms);
    const auto got = cap.take();
    int started = 0;
    for (const auto& m : got) {
      if (m.type() == message_type::start) started = 1, ++runs_started;
      if (m.type() == message_type::stop) started = 0;
    }
    CHECK(started == 0);
  });
  CHECK(runs_started > 0);
}

TEST_CASE("fault: signals at random moments of the monitors' and the metronome's lives") {
  at_random_moments({CLOCK_MONITOR_EXE, "--virtual"}, 6, 600ms, [](const outcome&) {});
  at_random_moments({MIDI_MONITOR_EXE, "--virtual"}, 6, 600ms, [](const outcome&) {});
  at_random_moments({HELLO_METRONOME_EXE, "--beats", "0"}, 4, 300ms, [](const outcome&) {});
}

TEST_CASE("fault: signals at random moments of midi_panic's life still end every channel") {
  tactus_tests::jack_capture cap("fault-sig");  // plain libjack: it also hears the server's xruns
  // It ends by itself after about 0.6 s: a signal at a later moment comes as it exits.
  at_random_moments(
      {MIDI_PANIC_EXE, "--port", "fault-sig"}, 6, 700ms,
      [&, xruns = cap.xruns()](const outcome& o) mutable {
        int cc123 = 0, heard = 0;
        for (const auto& e : cap.drain()) {
          const auto m = e.msg();
          heard += bool(m);
          cc123 += m && m->type() == message_type::control_change && m->data1() == 123;
        }
        // Every channel's All Notes Off, unless the server reported an xrun meanwhile (JACK may
        // then drop a late client's events): a figure then.
        const bool trouble = cap.xruns() != xruns;
        xruns = cap.xruns();
        if ((o.status == 0 || o.ended_itself) && heard > 0 && !trouble) CHECK(cc123 == 16);
        if (trouble) std::printf("figure: midi_panic: CC 123 on %d of 16 channels heard, with an xrun\n", cc123);
        if (o.ended_itself) std::printf("figure: a signal as midi_panic exited, its work done: status %d\n", o.status);
      },
      ends_with{"messages to"});
}
