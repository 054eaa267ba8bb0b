// SPDX-License-Identifier: BSL-1.0
// The README's servo and LED: an arm that sways a bar each way, arriving on the downbeat, and a
// lamp flashing on every beat, for two bars. Recording drivers stand in for the hardware.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/sinks.hpp>
#include <tactus/tactus.hpp>
#include <asio.hpp>
#include <cstdio>

int main() {
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}};
  tactus::sinks::recording_driver<> arm_out, lamp_out;  // or sysfs_pwm, a pca9685 channel, a gpio_line
  tactus::servo arm{io.get_executor(), std::ref(arm_out), {.min = 20, .max = 160, .rest = 90}};
  tactus::led lamp{io.get_executor(), std::ref(lamp_out)};

  m.on_bar([&](const tactus::tick& t) -> asio::awaitable<void> {
    if (t.bar == 2) { m.stop(); co_return; }
    co_await arm.move_to(t.bar == 0 ? 150 : 30, m, tactus::beats{4}, tactus::ease::in_out);  // on the next downbeat
  });
  lamp.async_flash_every(m, {.every = tactus::beats{1}, .length = tactus::beats{1, 8}}, [](std::error_code) {});
  asio::co_spawn(io, m.run(), tactus::rethrow);
  io.run();
  std::printf("arm: %zu updates, now at %.0f; lamp: %zu switches\n", arm_out.events().size(), arm.get(),
              lamp_out.events().size());
  return arm.get() == 30 && lamp_out.events().size() >= 16 ? 0 : 1;
}
