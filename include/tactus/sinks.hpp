// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/easing.hpp>
#include <tactus/sinks/error.hpp>
#include <tactus/sinks/i2c.hpp>
#include <tactus/sinks/led.hpp>
#include <tactus/sinks/pca9685.hpp>
#include <tactus/sinks/pulse_map.hpp>
#include <tactus/sinks/recording_driver.hpp>
#include <tactus/sinks/servo.hpp>
#include <tactus/sinks/sink.hpp>
#include <tactus/sinks/sysfs_pwm.hpp>

// Servos and LEDs that move and blink in time (tactus::servo, tactus::led), and their drivers:
// Linux sysfs PWM, the PCA9685 16-channel PWM board over I2C, and a recording driver for tests
// and plots. Core only (Asio and Linux headers). GPIO lines through libgpiod are
// <tactus/sinks/gpiod.hpp>, target tactus::gpiod, built when libgpiod is found.
