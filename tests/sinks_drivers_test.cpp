// SPDX-License-Identifier: BSL-1.0
// The drivers, without hardware: sysfs PWM against a fake sysfs tree in a temporary directory
// (a thread plays the kernel: it creates pwmN when a number is written to `export` and removes
// it on `unexport`), the PCA9685 against a recording bus checked register by register, and the
// errors: a missing chip or device, a channel the chip does not have, a write the kernel
// refuses, each one message naming the path, nothing left exported behind.
#include <tactus/sinks/i2c.hpp>
#include <tactus/sinks/pca9685.hpp>
#include <tactus/sinks/pulse_map.hpp>
#include <tactus/sinks/servo.hpp>
#include <tactus/sinks/sysfs_pwm.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include <asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Catch::Matchers::ContainsSubstring;
using tactus::sinks::pulse_map;

namespace {

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

void put(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// /tmp/…/pwmchip0 with `npwm` channels, and a thread that answers export/unexport as the
// kernel does (creating pwmN with period, duty_cycle, enable and polarity at 0).
class fake_pwmchip {
 public:
  explicit fake_pwmchip(int npwm = 2)
      : root_(fs::temp_directory_path() /
              ("tactus-sysfs-" + std::to_string(::getpid()) + "-" + std::to_string(++count_))),
        chip_(root_ / "pwmchip0") {
    fs::create_directories(chip_);
    put(chip_ / "npwm", std::to_string(npwm) + "\n");
    put(chip_ / "export", "");
    put(chip_ / "unexport", "");
    kernel_ = std::thread([this] {
      while (!stop_) {
        if (auto n = first_line(chip_ / "export"); !n.empty()) {
          ++exports;  // counted before the directory appears, which is what the driver waits for
          // Made whole beside the chip, then renamed into place (atomic): the driver, which waits
          // for the directory, never finds a file missing or not yet refusing.
          const auto d = root_ / ("staging-pwm" + n);
          fs::create_directories(d);
          for (auto f : {"period", "duty_cycle", "enable"}) put(d / f, "0\n");
          // A refused write (EINVAL or EBUSY in real life): /dev/full answers ENOSPC to every one.
          for (auto [f, refuse] :
               {std::pair{"period", refuse_period.load()}, std::pair{"duty_cycle", refuse_duty.load()}})
            if (refuse) {
              fs::remove(d / f);
              fs::create_symlink("/dev/full", d / f);
            }
          put(d / "polarity", "normal\n");
          fs::rename(d, chip_ / ("pwm" + n));
          put(chip_ / "export", "");
        }
        if (auto n = first_line(chip_ / "unexport"); !n.empty()) {
          fs::remove_all(chip_ / ("pwm" + n));
          put(chip_ / "unexport", "");
          ++unexports;
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  ~fake_pwmchip() {
    stop_ = true;
    kernel_.join();
    fs::remove_all(root_);
  }
  const fs::path& chip() const { return chip_; }
  fs::path channel(int n) const { return chip_ / ("pwm" + std::to_string(n)); }
  // Waits (a little) for the fake kernel to have handled `n` unexports.
  bool unexported(int n) const {
    for (int i = 0; i < 2000 && unexports < n; ++i) std::this_thread::sleep_for(1ms);
    return unexports >= n;
  }
  std::atomic<int> exports{0};
  std::atomic<int> unexports{0};
  std::atomic<bool> refuse_period{false};
  std::atomic<bool> refuse_duty{false};

 private:
  static inline int count_ = 0;
  fs::path root_;
  fs::path chip_;
  std::atomic<bool> stop_{false};
  std::thread kernel_;
};

}  // namespace

TEST_CASE("pulse_map: angles to 500..2500 us at 50 Hz by default, levels to a duty cycle") {
  const pulse_map servo;
  CHECK(servo.pulse(0) == 500us);
  CHECK(servo.pulse(90) == 1500us);
  CHECK(servo.pulse(180) == 2500us);
  CHECK(servo.pulse(200) == 2500us);                                    // held within its range
  CHECK(pulse_map::servo(0, 180, 2000us, 1000us).pulse(45) == 1750us);  // a servo turning the other way
  CHECK(pulse_map::level(1ms).pulse(0.25) == 250us);
  CHECK_THROWS_AS(pulse_map::servo(0, 180, 500us, 30ms).check("test"), std::invalid_argument);
  CHECK_THROWS_AS(pulse_map::servo(10, 10).check("test"), std::invalid_argument);
}

TEST_CASE("sysfs_pwm exports its channel, sets the period, writes pulse widths, and unexports on close") {
  fake_pwmchip fake;
  {
    tactus::sinks::sysfs_pwm pwm{fake.chip(), 1};
    CHECK(fake.exports == 1);
    CHECK(pwm.path() == fake.channel(1));
    CHECK(first_line(fake.channel(1) / "period") == "20000000");
    CHECK(first_line(fake.channel(1) / "enable") == "0");  // not before the first pulse
    pwm.set(90);
    CHECK(first_line(fake.channel(1) / "duty_cycle") == "1500000");
    CHECK(first_line(fake.channel(1) / "enable") == "1");
    pwm.set(0);
    CHECK(first_line(fake.channel(1) / "duty_cycle") == "500000");

    SECTION("as a servo's driver, owned by the servo") {
      tactus::testing::manual_clock::reset();
      asio::io_context io;
      {
        tactus::basic_servo<tactus::testing::manual_clock> s{io.get_executor(),
                                                             tactus::sinks::sysfs_pwm{fake.chip(), 0}};
        CHECK(first_line(fake.channel(0) / "duty_cycle") == "1500000");  // rest: 90 degrees
        s.async_move_to(180, 100ms, [](std::error_code, tactus::move_result) {});
        tactus::testing::advance(io, 1s);
        CHECK(first_line(fake.channel(0) / "duty_cycle") == "2500000");
      }
      CHECK(fake.unexported(1));  // the servo's driver went with it
      CHECK_FALSE(fs::exists(fake.channel(0)));
    }
  }
  CHECK(fake.unexported(fake.exports));
  CHECK_FALSE(fs::exists(fake.channel(1)));
  SECTION("a channel exported before is left exported") {
    fs::create_directories(fake.channel(0));
    for (auto f : {"period", "duty_cycle", "enable"}) put(fake.channel(0) / f, "0\n");
    const int before = fake.unexports;
    { tactus::sinks::sysfs_pwm pwm{fake.chip(), 0}; }
    CHECK(fs::exists(fake.channel(0)));
    CHECK(fake.unexports == before);
  }
}

TEST_CASE("sysfs_pwm: a missing chip, a missing channel and a refused write each give one message naming the path") {
  fake_pwmchip fake;
  SECTION("no chip") {
    try {
      tactus::sinks::sysfs_pwm pwm{fake.chip().parent_path() / "pwmchip7", 0};
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_such_file_or_directory);
      CHECK_THAT(e.what(), ContainsSubstring("pwmchip7"));
    }
  }
  SECTION("a channel the chip does not have") {
    CHECK_THROWS_WITH(tactus::sinks::sysfs_pwm(fake.chip(), 2), ContainsSubstring("has 2 channels"));
    CHECK(fake.exports == 0);
  }
  SECTION("a write the kernel refuses, at set(): the servo's move ends with its error") {
    fake.refuse_duty = true;
    tactus::sinks::sysfs_pwm pwm{fake.chip(), 0};
    try {
      pwm.set(90);
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_space_on_device);
      CHECK_THAT(e.what(), ContainsSubstring((fake.channel(0) / "duty_cycle").string()));
    }
    tactus::testing::manual_clock::reset();
    asio::io_context io;
    tactus::basic_servo<tactus::testing::manual_clock> s{io.get_executor(), std::move(pwm), {.rest_at_start = false}};
    std::error_code got;
    s.async_move_to(180, 100ms, [&](std::error_code ec, tactus::move_result) { got = ec; });
    tactus::testing::advance(io, 1s);
    CHECK(got == std::errc::no_space_on_device);
    CHECK(s.error_count() == 1);
  }
  SECTION("a write refused while opening: what was exported is unexported") {
    fake.refuse_period = true;
    try {
      tactus::sinks::sysfs_pwm pwm{fake.chip(), 1};
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK_THAT(e.what(), ContainsSubstring((fake.channel(1) / "period").string()));
    }
    CHECK(fake.exports == 1);
    CHECK(fake.unexported(1));
    CHECK_FALSE(fs::exists(fake.channel(1)));
  }
  SECTION("no permission") {
    if (::geteuid() == 0) TACTUS_SKIP("running as root: file permissions do not apply");
    fs::permissions(fake.chip() / "export", fs::perms::owner_read);
    CHECK_THROWS_WITH(tactus::sinks::sysfs_pwm(fake.chip(), 0), ContainsSubstring("export"));
  }
}

TEST_CASE("pca9685: set up register by register per the datasheet, then one write per channel update") {
  tactus::sinks::recording_i2c bus;
  tactus::sinks::pca9685 board{bus};
  const auto& w = bus.writes();
  REQUIRE(w.size() == 6);
  for (const auto& t : w) CHECK(t.address == 0x40);
  using v = std::vector<std::uint8_t>;
  CHECK(w[0].bytes == v{0x00, 0x30});  // MODE1: SLEEP | AI (oscillator off)
  CHECK(w[1].bytes == v{0xFD, 0x10});  // ALL_LED_OFF_H: every output fully off
  CHECK(w[2].bytes == v{0xFE, 121});   // PRE_SCALE: round(25 MHz / (4096 * 50 Hz)) - 1
  CHECK(w[3].bytes == v{0x01, 0x04});  // MODE2: OUTDRV (totem pole)
  CHECK(w[4].bytes == v{0x00, 0x20});  // MODE1: awake, AI
  CHECK(w[5].bytes == v{0x00, 0xA0});  // MODE1: RESTART | AI
  CHECK(board.prescale() == 121);
  CHECK(board.period() == std::chrono::nanoseconds(19'988'480));  // 4096 * 122 / 25 MHz
  bus.clear();

  auto servo = board.channel(3);
  servo.set(90);  // 1500 us / 4.88 us = 307 counts
  REQUIRE(bus.writes().size() == 1);
  CHECK(bus.writes()[0].bytes == v{0x06 + 12, 0, 0, 307 & 0xFF, 307 >> 8});
  CHECK(bus.reg(0x40, 0x06 + 12 + 2) == (307 & 0xFF));  // LED3_OFF_L in the register image
  CHECK(bus.reg(0x40, 0x06 + 12 + 3) == (307 >> 8));

  auto lamp = board.led(15);
  lamp.set(0);
  CHECK(bus.writes().back().bytes == v{0x06 + 60, 0, 0, 0, 0x10});  // fully off
  lamp.set(1);
  CHECK(bus.writes().back().bytes == v{0x06 + 60, 0, 0x10, 0, 0});  // fully on
  lamp.set(0.5);
  CHECK(bus.writes().back().bytes == v{0x06 + 60, 0, 0, 0x00, 0x08});  // 2048 counts
  board.all_off();
  CHECK(bus.writes().back().bytes == v{0xFD, 0x10});

  SECTION("another address and frequency") {
    tactus::sinks::recording_i2c bus2;
    tactus::sinks::pca9685 b2{bus2, {.address = 0x41, .frequency_hz = 1000}};
    CHECK(bus2.writes()[2].bytes == v{0xFE, 5});  // round(6.1) - 1
    CHECK(bus2.writes()[2].address == 0x41);
  }
  CHECK_THROWS_AS(board.channel(16), std::invalid_argument);
  CHECK_THROWS_AS(tactus::sinks::pca9685(bus, {.frequency_hz = 5000}), std::invalid_argument);
}

TEST_CASE("pca9685: a bus that fails while setting up leaves the board asleep and says so") {
  tactus::sinks::recording_i2c bus;
  bus.fail_writes(true);
  try {
    tactus::sinks::pca9685 board{bus};
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK_THAT(e.what(), ContainsSubstring("0x40"));
  }
}

TEST_CASE("linux_i2c: a missing bus gives one message naming it") {
  try {
    tactus::sinks::linux_i2c bus{"/dev/i2c-99"};
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK_THAT(e.what(), ContainsSubstring("/dev/i2c-99"));
  }
  SECTION("a file that is no I2C bus refuses the address") {
    tactus::sinks::linux_i2c bus{"/dev/null"};
    const std::uint8_t b[2] = {0, 0};
    CHECK_THROWS_WITH(bus.write(0x40, b), ContainsSubstring("0x40") && ContainsSubstring("/dev/null"));
  }
}
