// SPDX-License-Identifier: BSL-1.0
// The README's plumbing section, whole, and the usage comments of poll.hpp, periodic.hpp and
// with_timeout.hpp: a lab-hardware daemon in miniature (a state loop with a busy and an idle rate,
// a wait for the device with a deadline, a reading with a timeout, a graceful end). About 0.3 s.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <asio/experimental/channel.hpp>
#include <chrono>
#include <cstdio>
#include <system_error>

using namespace std::chrono_literals;
using readings = asio::experimental::channel<void(std::error_code, double)>;

// Stands in for a driver: ready 100 ms after start; a measurement takes 50 ms and arrives on `in`.
struct device_state { bool moving = false; };
struct pretend_device {
  asio::io_context& io;
  readings& in;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  asio::steady_timer measuring{io};
  bool ready() const { return std::chrono::steady_clock::now() - t0 >= 100ms; }
  device_state read_state() const { return {measuring.expiry() > std::chrono::steady_clock::now()}; }
  void start_measurement() {
    measuring.expires_after(50ms);
    measuring.async_wait([this](std::error_code ec) { if (!ec) in.try_send(std::error_code{}, 21.5); });
  }
  void park() { std::puts("device parked"); }
};

int main() {
  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};                      // Ctrl-C, SIGTERM: a graceful end
  readings in{io, 1};
  pretend_device device{io, in};
  device_state state;
  tactus::task_group tasks{io.get_executor()};

  tactus::periodic state_loop{io.get_executor(), 100ms, 1s};   // busy every 100 ms, idle every 1 s
  tasks.spawn(state_loop.run([&] {
    state = device.read_state();
    state_loop.set_busy(state.moving);                         // the rate follows the state
  }));

  auto measure = [&]() -> asio::awaitable<void> {
    bool ready = co_await tactus::poll_until([&] { return device.ready(); }, 50ms, 2s);
    if (!ready) std::puts("not ready after 2 s");
    device.start_measurement();
    try {
      double reading = co_await tactus::with_timeout(in.async_receive(asio::use_awaitable), 2s);
      std::printf("%.1f\n", reading);
    } catch (const std::system_error& e) {
      if (e.code() != asio::error::timed_out) throw;  // "tactus::with_timeout: nothing within 2000 ms"
      std::puts("no reading within 2 s");
    }
    sd.request();                                              // done: end as Ctrl-C would
  };
  tasks.spawn(measure());

  sd.on_cleanup("park the device", [&] { device.park(); }, 500ms);
  asio::co_spawn(io, sd.run(tasks), tactus::rethrow);         // until a signal or request()
  io.run();
  return sd.status();                                          // 0: every task stopped, every cleanup done
}
