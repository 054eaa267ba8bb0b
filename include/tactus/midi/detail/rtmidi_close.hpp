// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/rtmidi_close.hpp>

// Transitional: quiesce() is public now, tactus::midi::quiesce in <tactus/midi/rtmidi_close.hpp>.
// This header and the old name remain only until tests/drum_machine_test.cpp (the drum machine's,
// being reworked elsewhere) includes the public header; then delete it.

namespace tactus::midi::detail {
using tactus::midi::quiesce;
}  // namespace tactus::midi::detail
