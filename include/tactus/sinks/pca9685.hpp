// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/i2c.hpp>
#include <tactus/sinks/pulse_map.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

// The PCA9685, the 16-channel 12-bit PWM board of most Raspberry Pi robot kits, over I2C. The
// board is set up once (NXP's datasheet, section 7.3: MODE1 to sleep, PRE_SCALE for the
// frequency, wake, restart with auto-increment) and each channel is a level sink for a servo or
// an LED, one 5-byte write of LEDn_ON/LEDn_OFF per set():
//
//   tactus::sinks::linux_i2c bus{"/dev/i2c-1"};
//   tactus::sinks::pca9685 board{bus};                         // address 0x40, 50 Hz
//   tactus::servo pan{io.get_executor(), board.channel(0)};    // 0..180 deg: 500..2500 us
//   tactus::led eye{io.get_executor(), board.led(15)};         // 0..1: duty cycle
//
// The bus and the board must outlive the servos and LEDs on them.

namespace tactus::sinks {

/// The board's address and PWM frequency.
struct pca9685_options {
  /// 0x40 with no address jumper soldered.
  std::uint8_t address = 0x40;
  /// The output frequency, 24 to 1526 Hz (PRE_SCALE 255 to 3): 50 Hz for servos.
  double frequency_hz = 50;
  /// The internal oscillator, nominally 25 MHz (individual boards are off by a few percent:
  /// measure one and set it here for exact pulses).
  double oscillator_hz = 25e6;
  /// Outputs as open drain instead of totem pole (MODE2 OUTDRV cleared).
  bool open_drain = false;
};

/// One PCA9685 on a bus `Bus` (linux_i2c, recording_i2c, your own i2c_bus). Thread-safe: no.
template <i2c_bus Bus>
class pca9685 {
 public:
  // Registers and bits, datasheet section 7.3.
  static constexpr std::uint8_t mode1 = 0x00, mode2 = 0x01, led0_on_l = 0x06, all_led_off_h = 0xFD, pre_scale = 0xFE;
  static constexpr std::uint8_t restart = 0x80, auto_increment = 0x20, sleep_bit = 0x10, outdrv = 0x04;
  static constexpr std::uint8_t full = 0x10;  // bit 4 of LEDn_ON_H / LEDn_OFF_H: fully on / fully off

  /// Sets the board up: every output fully off, the frequency, totem-pole outputs, awake with
  /// auto-increment. Waits 500 µs for the oscillator (on the calling thread). Throws
  /// std::invalid_argument for a frequency out of range, and what the bus throws (the board is
  /// then asked to sleep again, its outputs off: nothing is left half set up, as far as the bus
  /// still answers).
  explicit pca9685(Bus& bus, pca9685_options o = {}) : bus_(bus), o_(o) {
    const double p = std::round(o.oscillator_hz / (4096.0 * o.frequency_hz)) - 1;
    if (!(p >= 3 && p <= 255))
      throw std::invalid_argument("tactus::sinks::pca9685: a frequency of " + std::to_string(o.frequency_hz) +
                                  " Hz needs PRE_SCALE " + std::to_string(p) + ", outside 3..255 (24 to 1526 Hz)");
    prescale_ = static_cast<std::uint8_t>(p);
    try {
      write_reg(mode1, sleep_bit | auto_increment);  // oscillator off: PRE_SCALE is writable only asleep
      write_reg(all_led_off_h, full);
      write_reg(pre_scale, prescale_);
      write_reg(mode2, o.open_drain ? 0 : outdrv);
      write_reg(mode1, auto_increment);  // awake
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      write_reg(mode1, restart | auto_increment);
    } catch (...) {
      try {
        write_reg(mode1, sleep_bit | auto_increment);
      } catch (...) {
      }
      throw;
    }
  }

  pca9685(const pca9685&) = delete;
  pca9685& operator=(const pca9685&) = delete;

  std::uint8_t address() const noexcept { return o_.address; }
  std::uint8_t prescale() const noexcept { return prescale_; }
  /// One step of the 12-bit counter, and the period it makes (4096 steps), from PRE_SCALE.
  double step_seconds() const noexcept { return (prescale_ + 1) / o_.oscillator_hz; }
  std::chrono::nanoseconds period() const noexcept {
    return std::chrono::nanoseconds(std::llround(4096 * step_seconds() * 1e9));
  }
  Bus& bus() noexcept { return bus_; }

  /// Channel `ch` (0..15) on for `on` counts and off at `off` counts of each period (0..4095).
  void set_counts(int ch, std::uint16_t on, std::uint16_t off) {
    check(ch);
    write_led(ch, on & 0x0FFF, off & 0x0FFF);
  }
  /// A pulse of `width` from the start of each period: fully off at 0, fully on from a period.
  void set_pulse(int ch, std::chrono::nanoseconds width) {
    check(ch);
    const auto counts = std::llround(std::chrono::duration<double>(width).count() / step_seconds());
    if (counts <= 0) return write_led(ch, 0, full << 8);
    if (counts >= 4096) return write_led(ch, full << 8, 0);
    write_led(ch, 0, static_cast<std::uint16_t>(counts));
  }
  /// Every output fully off (ALL_LED_OFF_H).
  void all_off() { write_reg(all_led_off_h, full); }

  /// A channel as a level sink: values through `map` to pulse widths.
  class channel_driver {
   public:
    channel_driver(pca9685& board, int ch, pulse_map map) : board_(&board), ch_(ch), map_(map) {
      map_.check("tactus::sinks::pca9685");
      board.check(ch);
    }
    void set(double v) { board_->set_pulse(ch_, map_.pulse(v)); }
    int channel() const noexcept { return ch_; }

   private:
    pca9685* board_;
    int ch_;
    pulse_map map_;
  };

  /// Channel `ch` for a servo: angles through `map` (default 0..180 deg to 500..2500 us).
  channel_driver channel(int ch, pulse_map map = {}) { return channel_driver(*this, ch, map); }
  /// Channel `ch` for an LED: levels 0..1 to a duty cycle of the board's period.
  channel_driver led(int ch) { return channel_driver(*this, ch, pulse_map::level(period())); }

 private:
  void check(int ch) const {
    if (ch < 0 || ch > 15)
      throw std::invalid_argument("tactus::sinks::pca9685: channels are 0 to 15, not " + std::to_string(ch));
  }
  void write_reg(std::uint8_t reg, std::uint8_t value) {
    const std::array<std::uint8_t, 2> b{reg, value};
    bus_.write(o_.address, b);
  }
  // LEDn_ON_L, LEDn_ON_H, LEDn_OFF_L, LEDn_OFF_H in one auto-incremented write.
  void write_led(int ch, unsigned on, unsigned off) {
    const std::array<std::uint8_t, 5> b{static_cast<std::uint8_t>(led0_on_l + 4 * ch), static_cast<std::uint8_t>(on),
                                        static_cast<std::uint8_t>(on >> 8), static_cast<std::uint8_t>(off),
                                        static_cast<std::uint8_t>(off >> 8)};
    bus_.write(o_.address, b);
  }

  Bus& bus_;
  pca9685_options o_;
  std::uint8_t prescale_ = 121;
};

}  // namespace tactus::sinks
