// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/beats.hpp>
#include <tactus/metronome.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>

#include <system_error>
#include <utility>

// Waiting for a position of a metronome, `lead` early: the wait is for the position that falls
// `lead` before `p` on the timeline as it is now, and when it comes, for more if the tempo has
// slowed meanwhile (so the deadline is never early); a tempo rise during the last `lead` makes
// it late by at most what that rise took off the lead. With no lead it is the metronome's own
// position wait, exact through any tempo change. The metronome pausing holds the wait.

namespace tactus::sinks::detail {

template <class Clock, class Handler>
void wait_position(basic_metronome<Clock>& m, beats p, typename Clock::duration lead, asio::cancellation_slot slot,
                   Handler handler) {
  using moment = typename basic_metronome<Clock>::moment_type;
  if (lead <= Clock::duration::zero()) {
    m.async_wait_until(p, on_pause::hold,
                       asio::bind_cancellation_slot(
                           slot, [h = std::move(handler)](std::error_code ec, moment) mutable { std::move(h)(ec); }));
    return;
  }
  const auto due = m.time_at(p) - lead;
  auto q = m.position(due);
  if (m.time_at(q) < due) q += beats::from_units(1);  // never early
  m.async_wait_until(q, on_pause::hold,
                     asio::bind_cancellation_slot(
                         slot, [&m, p, lead, slot, h = std::move(handler)](std::error_code ec, moment) mutable {
                           if (!ec && Clock::now() < m.time_at(p) - lead)  // slowed down meanwhile
                             return wait_position(m, p, lead, slot, std::move(h));
                           std::move(h)(ec);
                         }));
}

}  // namespace tactus::sinks::detail
