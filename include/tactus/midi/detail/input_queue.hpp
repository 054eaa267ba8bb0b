// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/detail/handoff_queue.hpp>
#include <tactus/midi/message.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

// The queue between RtMidi's callback thread and the executor, used by midi::input: the core's
// hand-off queue (tactus/detail/handoff_queue.hpp, shared with tactus::thread_channel) of MIDI
// slots, dropping the newest message when full. A slot is filled in place: a short message is
// copied into it and never allocates; a sysex goes into the slot's own buffer, which grows the
// first time a longer one passes through that slot and keeps its capacity, so a steady stream of
// sysex stops allocating. The total those buffers keep is bounded by input_handoff (the budget,
// input_options::max_queued_sysex_bytes): the consumer frees a buffer it has emptied when they
// hold more than the budget.

namespace tactus::midi::detail {

/// One queued MIDI message, as RtMidi's thread left it.
struct input_slot {
  std::array<std::uint8_t, 3> inline_bytes{};
  std::uint8_t size = 0;        // 0: the message is in long_bytes
  bool unstored = false;        // a sysex for which long_bytes could not grow (bad_alloc): dropped
  std::size_t sysex_bytes = 0;  // the bytes of the budget this sysex holds (0: a short message)
  std::vector<std::uint8_t> long_bytes;
  std::chrono::steady_clock::time_point time{};
  double delta = 0;
  std::int64_t frame = -1;  // the JACK frame (native JACK backend), else -1

  /// Whether `n` bytes fit a slot under the sysex limit (the producer refuses the others).
  static bool fits(std::size_t n, std::size_t max_sysex_bytes) noexcept {
    return n <= std::tuple_size_v<decltype(inline_bytes)> || n <= max_sysex_bytes;
  }

  static bool is_long(std::size_t n) noexcept { return n > std::tuple_size_v<decltype(inline_bytes)>; }

  /// Producer: copies `bytes` in. Allocates only to grow long_bytes (see above). Returns by how
  /// many bytes the buffer's capacity grew.
  std::size_t store(std::span<const std::uint8_t> bytes, std::chrono::steady_clock::time_point t, double d,
                    std::int64_t f = -1) noexcept {
    time = t;
    delta = d;
    frame = f;
    unstored = false;
    if (!is_long(bytes.size())) {
      size = std::uint8_t(bytes.size());
      sysex_bytes = 0;
      std::copy(bytes.begin(), bytes.end(), inline_bytes.begin());
      return 0;
    }
    size = 0;
    sysex_bytes = bytes.size();
    const auto before = long_bytes.capacity();
    try {
      long_bytes.assign(bytes.begin(), bytes.end());
    } catch (...) {  // bad_alloc: counted by the consumer as a sysex too long to keep
      unstored = true;
    }
    return long_bytes.capacity() - before;
  }

  /// Consumer: frees the sysex buffer; returns the capacity freed.
  std::size_t release() noexcept {
    const auto cap = long_bytes.capacity();
    std::vector<std::uint8_t>().swap(long_bytes);
    return cap;
  }

  /// Consumer: the message, or nullopt when the bytes are not one (allocates only for sysex).
  std::optional<message> to_message() const {
    return size ? message::from_bytes(std::span<const std::uint8_t>(inline_bytes.data(), size))
                : message::from_bytes(long_bytes);
  }
};

using input_queue = tactus::detail::handoff_queue<input_slot>;

}  // namespace tactus::midi::detail
