// SPDX-License-Identifier: BSL-1.0
// An LED on a GPIO line through libgpiod (target tactus::gpiod), where the machine has the chip.
// What <tactus/sinks/gpiod.hpp> shows.
#include <tactus/sinks/gpiod.hpp>
#include <tactus/sinks/led.hpp>

#include <asio/io_context.hpp>

#include <cstdio>
#include <exception>

int main() {
  asio::io_context io;
  try {  // a Raspberry Pi: GPIO 17 is line 17 of gpiochip0 (gpiochip4 on a Pi 5)
    tactus::led lamp{io.get_executor(), tactus::sinks::gpio_line{"gpiochip0", 17}};
    lamp.on();
  } catch (const std::exception& e) {
    std::printf("no GPIO line here: %s\n", e.what());
  }
  return 0;
}
