// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/output.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>

#include <cmath>
#include <system_error>
#include <utility>

// Notes whose length is musical: "play this for half a beat" on a metronome's grid, with the
// same guarantee as output::async_note: the note-off is sent even when the wait is cancelled.
//
//     m.on_beat([&](const tactus::beat& b) -> asio::awaitable<void> {
//       co_await tactus::midi::async_note(out, m, 9, 36, 110, tactus::beats{0.25}, asio::use_awaitable);
//     });

namespace tactus::midi {

/// Plays one note on `out`: note-on now, note-off on the grid point of `m` nearest to
/// (now + `length` beats), and never before the next grid point. With a tick of a quarter beat
/// and length 0.25 called from a tick's callback, the note-off falls exactly on the next tick.
/// Signature void(std::error_code). Completes on the handler's associated executor.
/// Cancellation (terminal/partial/total) ends the wait: the note-off is still sent, then it
/// completes with asio::error::operation_aborted; so does the metronome stopping.
/// Thread-safe: no (call on the metronome's executor). Throws std::invalid_argument at once for
/// out-of-range note arguments or a length <= 0.
template <class Clock, class CompletionToken>
auto async_note(output& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats length,
                CompletionToken&& token) {
  if (!(length.count() > 0)) throw std::invalid_argument("tactus::midi::async_note: length must be > 0 beats");
  const double ticks_per_beat = m.ticks().ticks_per_beat();
  const double now_ticks = m.position().count() * ticks_per_beat;
  double end_ticks = std::round(now_ticks + length.count() * ticks_per_beat);
  if (end_ticks <= now_ticks + 1e-6) end_ticks = std::floor(now_ticks + 1e-6) + 1;  // the next grid point
  const beats until(end_ticks / ticks_per_beat);
  return out.async_note_with(
      channel, key, velocity,
      [&m, until](const auto& ex, auto handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto hex = asio::get_associated_executor(handler, ex);
        m.async_wait_until(
            until, asio::bind_cancellation_slot(
                       slot, asio::bind_executor(hex, [h = std::move(handler)](std::error_code ec, auto) mutable {
                         std::move(h)(ec);
                       })));
      },
      std::forward<CompletionToken>(token));
}

}  // namespace tactus::midi
