// SPDX-License-Identifier: BSL-1.0
// A servo on sysfs PWM (where the machine has a PWM chip), then one on a driver of our own that
// prints each angle: moves over a time with easing, then over beats of a metronome. What
// <tactus/sinks/sink.hpp>, easing.hpp, servo.hpp and sysfs_pwm.hpp show.
#include <tactus/metronome.hpp>
#include <tactus/sinks.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <exception>

using namespace std::chrono_literals;

struct printer {
  void set(double angle) { std::printf("%.1f\n", angle); }
};
static_assert(tactus::sinks::level_sink<printer>);

int main() {
  asio::io_context io;
  try {  // a Raspberry Pi with dtoverlay=pwm-2chan has one; this machine may not
    tactus::servo arm{io.get_executor(), tactus::sinks::sysfs_pwm{"/sys/class/pwm/pwmchip0", 0}};
  } catch (const std::exception& e) {
    std::printf("no servo on sysfs here: %s\n", e.what());
  }

  tactus::metronome m{io.get_executor(), tactus::bpm{240}};
  tactus::servo arm{io.get_executor(), printer{}};
  auto sway = [&]() -> asio::awaitable<void> {
    co_await arm.move_to(150, 800ms, tactus::ease::in_out);
    co_await arm.move_to(30, 800ms, [](double x) { return x * x * x; });
    co_await arm.move_to(90, m, tactus::beats{2});
    m.stop();
  };
  asio::co_spawn(io, m.run(), tactus::rethrow);
  asio::co_spawn(io, sway(), tactus::rethrow);
  io.run();
  return arm.get() == 90 ? 0 : 1;
}
