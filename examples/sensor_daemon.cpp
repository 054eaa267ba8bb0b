// SPDX-License-Identifier: BSL-1.0
// sensor_daemon: a lab-hardware daemon on tactus's plumbing, in the shape of the Python services
// it replaces. Nothing here needs hardware: the stage and its sensor are simulated, blocking
// calls included.
//
//     sensor_daemon [--seconds N] [--bpm 120] [--measure-every-ms 500]
//
//   - a state-polling loop (tactus::periodic): every 100 ms while the stage moves, every 1 s idle;
//   - a measurement that calls the blocking driver through tactus::offload, on a thread pool, under
//     tactus::with_timeout (the loop never freezes; a driver that hangs is given up on);
//   - a producer thread (the sensor's own, as a vendor SDK has) feeding a reading every 20 ms
//     through a tactus::thread_channel: it never blocks, and what it drops is counted;
//   - a report paced by a metronome, on every bar;
//   - Ctrl-C (SIGINT), SIGTERM or --seconds: tactus::shutdown stops the tasks, then stops the
//     producer thread, parks the stage and writes the summary, printing each step; exit status 0.
// A bad option: one line on stderr, exit status 2 (--help: usage on stdout).
#include <tactus/metronome.hpp>
#include <tactus/offload.hpp>
#include <tactus/periodic.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/task_group.hpp>
#include <tactus/thread_channel.hpp>
#include <tactus/with_timeout.hpp>

#include "cli.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stop_token>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// The simulated hardware. Its calls block, as a vendor driver's do; any thread may make them.
class stage_driver {
 public:
  /// Moving for 2 s out of every 5 s (a scan), idle otherwise: a period no usual bar divides, so
  /// the bar's report sees both states (at 120 BPM, every 2 s: two reports in five say moving).
  bool moving() const { return std::fmod(seconds(), 5.0) >= 3.0; }
  /// A measurement: blocks 30 ms, as a serial round trip does.
  double measure() const {
    std::this_thread::sleep_for(30ms);
    return 20.0 + 0.1 * std::sin(seconds());
  }
  /// Parks the stage: blocks 50 ms.
  void park() { std::this_thread::sleep_for(50ms); }
  /// The sensor's own sample, for the producer thread.
  double sample() const { return 1.0 + 0.01 * std::cos(seconds() * 7); }

 private:
  double seconds() const { return std::chrono::duration<double>(steady::now() - t0_).count(); }
  steady::time_point t0_ = steady::now();
};

struct reading {
  std::uint64_t seq = 0;
  double value = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"sensor_daemon: a simulated lab-hardware daemon on tactus's plumbing", "sensor_daemon"};
  double seconds = 0, bpm = 120;
  long measure_ms = 500;
  app.add_option("--seconds", seconds, "stop after this long, 0 = until Ctrl-C")
      ->check(examples::finite_range(0, 1e6))
      ->capture_default_str();
  app.add_option("--bpm", bpm, "the report's tempo: one report a bar of 4 beats")
      ->check(examples::finite_range(1, 1000))
      ->capture_default_str();
  app.add_option("--measure-every-ms", measure_ms, "how often to measure")
      ->check(examples::whole_range(10, 60'000))
      ->capture_default_str();
  if (auto status = examples::parse(app, argc, argv)) return *status;

  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from now on ends it cleanly
  sd.on_report([](const tactus::shutdown_report& r) {
    std::printf("%s\n", r.to_string().c_str());
    std::fflush(stdout);
  });
  // Until run(): the producer thread started below inherits this thread's mask, so SIGINT and
  // SIGTERM always reach main()'s thread, where the shutdown hears them, and never interrupt the
  // sensor's timing (Asio's thread_pool blocks them in its threads by itself).
  auto held = sd.hold_signals();
  const auto ex = io.get_executor();
  stage_driver stage;
  asio::thread_pool pool{1};  // the driver's blocking calls; joined before `stage` goes

  // The producer: the sensor's own thread, a reading every 20 ms (deadlines from its start).
  tactus::thread_channel<reading> readings{ex, 64, tactus::overflow_policy::drop_oldest};
  std::jthread producer([&](std::stop_token stop) {
    const auto start = steady::now();
    for (std::uint64_t k = 0; !stop.stop_requested(); ++k) {
      std::this_thread::sleep_until(start + k * 20ms);
      readings.try_send(reading{k, stage.sample()});  // never blocks; a drop is counted
    }
  });

  // The work: four tasks that run until the shutdown cancels them.
  bool moving = false;
  std::uint64_t consumed = 0, measurements = 0, timeouts = 0;
  double last_reading = 0, last_measurement = 0;
  tactus::task_group tasks{ex};

  tactus::periodic state_loop{ex, 100ms, 1s};  // update_state: fast while the stage moves
  tasks.spawn(state_loop.run([&] {
    moving = stage.moving();
    state_loop.set_busy(moving);
  }));

  auto consume = [&]() -> asio::awaitable<void> {
    for (;;) {
      const auto r = co_await readings.receive();
      last_reading = r.value;
      ++consumed;
    }
  };
  tasks.spawn(consume());

  tactus::periodic measure_loop{ex, std::chrono::milliseconds(measure_ms)};
  tasks.spawn(measure_loop.run([&]() -> asio::awaitable<void> {
    try {
      last_measurement =
          co_await tactus::with_timeout(tactus::offload(pool, [&stage] { return stage.measure(); }), 200ms);
      ++measurements;
    } catch (const std::system_error& e) {
      if (e.code() != asio::error::timed_out) throw;
      ++timeouts;  // the driver hung: given up on, the loop goes on
    }
  }));

  tactus::metronome metro{ex, tactus::bpm{bpm}, tactus::meter{4}};
  metro.on_bar([&](const tactus::tick& t) {
    std::printf("bar %lld: stage %s, %llu readings (%llu dropped), last %.3f; %llu measurements, last %.2f\n",
                static_cast<long long>(t.bar) + 1, moving ? "moving" : "idle",
                static_cast<unsigned long long>(consumed), static_cast<unsigned long long>(readings.dropped()),
                last_reading, static_cast<unsigned long long>(measurements), last_measurement);
    std::fflush(stdout);
  });
  tasks.spawn(metro.run());

  // The cleanups, run last registered first once the tasks have stopped.
  sd.on_cleanup("write the summary", [&] {
    std::printf(
        "readings: %llu sent, %llu received, %llu dropped, %zu left in the queue; %llu measurements, "
        "%llu timed out\n",
        static_cast<unsigned long long>(readings.sent()), static_cast<unsigned long long>(readings.received()),
        static_cast<unsigned long long>(readings.dropped()), readings.size(),
        static_cast<unsigned long long>(measurements), static_cast<unsigned long long>(timeouts));
  });
  sd.on_cleanup(
      "park the stage", [&] { return tactus::offload(pool, [&stage] { stage.park(); }); }, 300ms);
  sd.on_cleanup("stop the producer thread", [&] {
    producer.request_stop();
    producer.join();  // at most one 20 ms sleep
    readings.close();
  });

  if (seconds > 0) sd.request_after(std::chrono::duration<double>(seconds));
  std::printf("sensor_daemon running (Ctrl-C to stop)\n");
  std::fflush(stdout);
  asio::co_spawn(io, sd.run(tasks), tactus::rethrow);
  io.run();
  return sd.status();
} catch (const std::exception& e) {
  std::fprintf(stderr, "sensor_daemon: %s\n", e.what());
  return 1;
}
