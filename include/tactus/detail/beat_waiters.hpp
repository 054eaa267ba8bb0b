// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beat.hpp>
#include <tactus/detail/waiter_list.hpp>

// What a metronome's pending waits wait for (the next tick, beat, bar, or a position) and the
// rule that says whether a delivered grid point satisfies one.

namespace tactus::detail {

enum class wait_kind { tick, beat, bar, position };

struct wait_target {
  wait_kind kind = wait_kind::tick;
  beats position{};

  template <class Clock>
  bool matches(const basic_beat<Clock>& b) const noexcept {
    switch (kind) {
      case wait_kind::tick: return true;
      case wait_kind::beat: return b.is_beat();
      case wait_kind::bar: return b.is_downbeat();
      case wait_kind::position: return b.position.count() >= position.count() - 1e-9;
    }
    return true;
  }
};

template <class Clock>
using beat_waiters = waiter_list<basic_beat<Clock>, wait_target>;

}  // namespace tactus::detail
