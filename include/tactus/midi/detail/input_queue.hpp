// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <vector>

// The bounded single-producer single-consumer queue between RtMidi's callback thread and the
// executor, used by midi::input. Slots are preallocated: a short message is copied into a slot
// and never allocates. A sysex grows its slot's buffer the first time a longer one passes
// through that slot (the capacity is kept, so a steady stream of sysex stops allocating).

namespace tactus::midi::detail {

class input_queue {
 public:
  enum class push_result { ok, full, too_long };

  struct popped {
    std::optional<message> msg;  // nullopt: the bytes were not one valid message
    std::chrono::steady_clock::time_point time;
    double delta_seconds;
  };

  input_queue(std::size_t capacity, std::size_t max_sysex_bytes)
      : slots_(capacity == 0 ? 1 : capacity), max_sysex_(max_sysex_bytes) {}

  std::size_t capacity() const noexcept { return slots_.size(); }

  /// Producer only (one thread at a time). Never blocks; allocates only for sysex (see above).
  push_result try_push(std::span<const std::uint8_t> bytes, std::chrono::steady_clock::time_point time, double delta) {
    const auto t = tail_.load(std::memory_order_relaxed);  // only the producer writes tail_
    // acquire: the consumer's reads of the slot we are about to reuse happened before.
    if (t - head_.load(std::memory_order_acquire) == slots_.size()) return push_result::full;
    auto& s = slots_[t % slots_.size()];
    if (bytes.size() <= s.inline_bytes.size()) {
      s.size = std::uint8_t(bytes.size());
      std::copy(bytes.begin(), bytes.end(), s.inline_bytes.begin());
    } else {
      if (bytes.size() > max_sysex_) return push_result::too_long;
      s.size = 0;
      s.long_bytes.assign(bytes.begin(), bytes.end());
    }
    s.time = time;
    s.delta = delta;
    // release: publishes the slot's contents to the consumer that acquires tail_.
    tail_.store(t + 1, std::memory_order_release);
    return push_result::ok;
  }

  /// Consumer only. Converts the oldest slot into a message (allocates only for sysex).
  std::optional<popped> try_pop() {
    const auto h = head_.load(std::memory_order_relaxed);  // only the consumer writes head_
    // acquire: pairs with the producer's release of tail_, so the slot contents are visible.
    if (h == tail_.load(std::memory_order_acquire)) return std::nullopt;
    auto& s = slots_[h % slots_.size()];
    popped p{s.size ? message::from_bytes(std::span<const std::uint8_t>(s.inline_bytes.data(), s.size))
                    : message::from_bytes(s.long_bytes),
             s.time, s.delta};
    // release: our reads of the slot happen before the producer reuses it.
    head_.store(h + 1, std::memory_order_release);
    return p;
  }

  /// Consumer only: true when nothing is queued (may turn false at any moment).
  bool empty() const noexcept {
    // acquire: as in try_pop, a non-empty answer must come with the slot's contents.
    return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_acquire);
  }

 private:
  struct slot {
    std::array<std::uint8_t, 3> inline_bytes{};
    std::uint8_t size = 0;  // 0: the message is in long_bytes
    std::vector<std::uint8_t> long_bytes;
    std::chrono::steady_clock::time_point time{};
    double delta = 0;
  };

  // Separate cache lines: the producer writes tail_, the consumer head_.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  alignas(64) std::vector<slot> slots_;
  std::size_t max_sysex_;
};

}  // namespace tactus::midi::detail
