// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beat.hpp>
#include <tactus/metronome.hpp>
#include <tactus/tempo.hpp>
#include <tactus/timeline.hpp>

// The core of tactus, everything that needs only Asio: tempo and beat value types, the tempo
// timeline, and the metronome. The MIDI layer is <tactus/midi/...> (target tactus::midi);
// virtual time for tests is <tactus/testing/manual_clock.hpp>.
