// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/detail/waiter_list.hpp>
#include <tactus/tick.hpp>

#include <cstdint>

// What a metronome's pending grid waits wait for (the next tick, beat, bar, or the first tick at
// or after a position) and the rule that says whether a delivered tick satisfies one; and what its
// position waits wait for.

namespace tactus::detail {

enum class grid_wait { tick, beat, bar, tick_at };

struct grid_target {
  grid_wait kind = grid_wait::tick;
  beats position{};
  /// The index of the tick being (or last) delivered when the wait began: only a later tick
  /// completes it, so a wait begun inside a tick's callback waits for the next one.
  std::int64_t after_index = -1;

  template <class Clock>
  bool matches(const basic_tick<Clock>& t) const noexcept {
    if (t.index <= after_index) return false;
    switch (kind) {
      case grid_wait::tick: return true;
      case grid_wait::beat: return t.is_beat();
      case grid_wait::bar: return t.is_downbeat();
      case grid_wait::tick_at: return t.position >= position;
    }
    return true;
  }
};

/// What a position wait (async_wait_until) waits for.
struct position_key {
  beats position{};
  bool ends_at_pause = false;  // on_pause::end
};

template <class Clock>
using grid_waiters = waiter_list<basic_tick<Clock>, grid_target>;

}  // namespace tactus::detail
