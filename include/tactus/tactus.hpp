// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/meter.hpp>
#include <tactus/metronome.hpp>
#include <tactus/moment.hpp>
#include <tactus/rethrow.hpp>
#include <tactus/tempo.hpp>
#include <tactus/tick.hpp>
#include <tactus/timeline.hpp>

// The core of tactus, everything that needs only Asio: exact beat positions, tempo, meter and
// subdivision, the tempo timeline, and the metronome with its ticks and waits. The MIDI layer is
// <tactus/midi/...> (target tactus::midi); virtual time for tests is
// <tactus/testing/manual_clock.hpp>.

// Plumbing for hardware programs (polling, periodic tasks, timeouts, task groups, graceful
// shutdown): one header each, all in the core.
#include <tactus/periodic.hpp>
#include <tactus/poll.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/task_group.hpp>
#include <tactus/with_timeout.hpp>
