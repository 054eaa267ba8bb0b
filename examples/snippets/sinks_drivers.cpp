// SPDX-License-Identifier: BSL-1.0
// The drivers' set-up: pulse maps, a PCA9685 on a recording bus (its registers as set up), and
// one on /dev/i2c-1 where there is one. What <tactus/sinks/pulse_map.hpp>, i2c.hpp and
// pca9685.hpp show.
// Laid out as the documentation shows it (tests/snippets_test.cpp compares), so not formatted:
// clang-format off
#include <tactus/sinks.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

using namespace std::chrono_literals;

int main() {
  const auto arm = tactus::sinks::pulse_map{};                         // 0..180 deg: 500..2500 us, 50 Hz
  const auto sg90 = tactus::sinks::pulse_map::servo(0, 180, 1000us, 2000us);  // a narrower servo
  const auto lamp = tactus::sinks::pulse_map::level(1ms);                  // 1 kHz, duty = level
  std::printf("90 deg: %lld us, on an SG90 %lld us; a lamp at 0.25: %lld us on\n",
              static_cast<long long>(arm.pulse(90).count() / 1000), static_cast<long long>(sg90.pulse(90).count() / 1000),
              static_cast<long long>(lamp.pulse(0.25).count() / 1000));
  {
    tactus::sinks::recording_i2c bus;
    tactus::sinks::pca9685 board{bus};      // 0x40, 50 Hz: MODE1, PRE_SCALE, MODE2, ...
    std::printf("PRE_SCALE = %d\n", bus.reg(0x40, 0xFE));   // 121
    if (bus.reg(0x40, 0xFE) != 121) return 1;
  }
  asio::io_context io;
  try {  // a Raspberry Pi with I2C enabled and a PCA9685 board at 0x40
    tactus::sinks::linux_i2c bus{"/dev/i2c-1"};
    tactus::sinks::pca9685 board{bus};                         // address 0x40, 50 Hz
    tactus::servo pan{io.get_executor(), board.channel(0)};    // 0..180 deg: 500..2500 us
    tactus::led eye{io.get_executor(), board.led(15)};         // 0..1: duty cycle
  } catch (const std::exception& e) {
    std::printf("no PCA9685 here: %s\n", e.what());
  }
  return 0;
}
