// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <cstdlib>
#include <string>

// The JACK period of the `jack` CTest fixture's server, which tests that check timing need:
// 128 frames at 48 kHz (2.7 ms) normally, longer under ThreadSanitizer (the fixture exports it
// as TACTUS_JACK_PERIOD; see cmake/TactusJackFixture.cmake).

namespace tactus_tests {

/// Frames per JACK cycle of the fixture's server.
inline int jack_period_frames() {
  const char* v = std::getenv("TACTUS_JACK_PERIOD");
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : 128;
}

/// One JACK cycle in seconds (the sample rate is 48 kHz).
inline double jack_period_seconds() { return jack_period_frames() / 48000.0; }

}  // namespace tactus_tests
