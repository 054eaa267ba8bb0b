// SPDX-License-Identifier: BSL-1.0
// The libgpiod line (tactus::gpiod, built with libgpiod 1.6 or 2.x): with no GPIO hardware to
// hand, the errors a user meets first: a missing chip, a file that is no GPIO chip, each one
// message naming it; and the type is a switch sink, so an LED on it fades by software PWM.
#include <tactus/sinks/gpiod.hpp>
#include <tactus/sinks/led.hpp>
#include <tactus/sinks/sink.hpp>

#include "support/catch.hpp"

#include <filesystem>
#include <system_error>

using Catch::Matchers::ContainsSubstring;

static_assert(tactus::sinks::switch_sink<tactus::sinks::gpio_line>);

TEST_CASE("gpio_line: a missing chip gives one message naming it") {
  for (const char* name : {"/dev/gpiochip97", "gpiochip97", "97"}) {
    INFO(name);
    try {
      tactus::sinks::gpio_line line{name, 17};
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_such_file_or_directory);
      CHECK_THAT(e.what(), ContainsSubstring("/dev/gpiochip97"));
    }
  }
}

TEST_CASE("gpio_line: a file that is no GPIO chip is refused, naming it") {
  try {
    tactus::sinks::gpio_line line{"/dev/null", 0};
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() != 0);
    CHECK_THAT(e.what(), ContainsSubstring("/dev/null"));
  }
}

TEST_CASE("gpio_line: a real chip, when this machine has one") {
  if (!std::filesystem::exists("/dev/gpiochip0")) TACTUS_SKIP("no /dev/gpiochip0 on this machine");
  try {
    tactus::sinks::gpio_line line{"gpiochip0", 100000};
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), ContainsSubstring("lines, so no line 100000"));
  } catch (const std::system_error& e) {
    CHECK_THAT(e.what(), ContainsSubstring("/dev/gpiochip0"));  // not permitted here
  }
}
