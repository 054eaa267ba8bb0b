// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/ports.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

// What an input delivers (timed_message) and how it is opened (input_options): the public types
// of the input bridge, apart from the bridge (input.hpp) so that its internals
// (detail/input_impl.hpp, detail/input_handoff.hpp) can use them.

namespace tactus::midi {

/// A received message with its time.
struct timed_message {
  message msg;
  /// Native JACK backend: the time of the message's frame (`frame` converted to steady_clock,
  /// which on Linux is JACK's clock), whenever in the period it was sent. RtMidi backends:
  /// steady_clock::now() taken in RtMidi's callback, as early as we can see the message (for
  /// RtMidi's JACK client, when its process callback ran: a period's resolution).
  std::chrono::steady_clock::time_point time;
  /// The time since the previous message of this port, in seconds (0 for the first).
  double delta_seconds = 0;
  /// Native JACK backend: the JACK frame of the message (the cycle's jack_last_frame_time plus
  /// its offset in the cycle, widened to 64 bits). -1 on the other backends.
  std::int64_t frame = -1;
};

struct input_options {
  api backend = api::automatic;
  std::string client_name = "tactus";  // our MIDI client (JACK: the part before ':')
  std::string port_name = "in";        // our own port; for a virtual port the name others see
  std::size_t capacity = 1024;         // queued messages before the newest are dropped
  /// Longer sysex are dropped (and counted in dropped()). A slot's buffer grows once to the
  /// longest sysex it has carried; that growth is the only allocation in RtMidi's thread.
  std::size_t max_sysex_bytes = 64 * 1024;
  /// The most bytes of sysex queued at once (at least max_sysex_bytes): a sysex that does not fit
  /// is dropped, counted in dropped() and reported as io_errc::queue_overflow (a reader behind,
  /// as when the queue is full). It also bounds what the slots' sysex buffers keep: about twice
  /// this, however many slots have carried a long sysex (1024 of 64 KiB could keep 64 MiB).
  std::size_t max_queued_sysex_bytes = std::size_t(1) << 20;
  bool receive_sysex = true;
  bool receive_timing = true;           // clock (0xF8) and MTC quarter frame (0xF1), as RtMidi
                                        // defines it; start, stop, continue always pass
  bool receive_active_sensing = false;  // 0xFE every 300 ms from many devices: off by default
  /// How often a port opened by name is looked for (a port_watcher listing the ports) while
  /// someone receives; zero disables it. An input nobody receives from lists nothing.
  std::chrono::milliseconds rescan_interval{500};
};

}  // namespace tactus::midi
