// SPDX-License-Identifier: BSL-1.0
// An LED on a recording driver: three blinks, a fade to half, two flashes on the bar line (off a
// tenth of a beat later). What <tactus/sinks/led.hpp> shows.
#include <tactus/metronome.hpp>
#include <tactus/sinks/led.hpp>
#include <tactus/sinks/recording_driver.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <functional>

using namespace std::chrono_literals;

int main() {
  asio::io_context io;
  tactus::metronome m{io.get_executor(), tactus::bpm{480}, tactus::meter{4}};
  tactus::sinks::recording_driver<> driver;
  tactus::led lamp{io.get_executor(), std::ref(driver)};
  auto show = [&]() -> asio::awaitable<void> {
    co_await lamp.blink(3, 200ms);
    co_await lamp.fade_to(0.5, 1s);
    co_await lamp.flash_every(m, {.every = tactus::beats{4}, .length = tactus::beats{1, 10}, .count = 2});
    m.stop();
  };
  asio::co_spawn(io, m.run(), tactus::rethrow);
  asio::co_spawn(io, show(), tactus::rethrow);
  io.run();
  std::printf("%zu levels sent, the last %.1f\n", driver.events().size(), driver.events().back().value);
  return driver.events().back().value == 0 ? 0 : 1;
}
