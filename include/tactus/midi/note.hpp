// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/output.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>

#include <system_error>
#include <utility>

// Notes whose length is musical: "play this for half a beat" of a metronome, with the same
// guarantee as output::async_note: the note-off is sent even when the wait is cancelled.
//
//     m.on_tick([&](const tactus::tick&) -> asio::awaitable<void> {
//       co_await tactus::midi::async_note(out, m, 9, 36, 110, tactus::beats{1, 4}, asio::use_awaitable);
//     });
//
// Awaited from the metronome's own callback, the note lets the grid move on at once (see
// basic_metronome::on_tick): notes longer than a tick overlap as they should.

namespace tactus::midi {

/// Plays one note on `out`: note-on now, note-off exactly `length` beats later on `m`'s
/// timeline (a position, so it follows tempo changes), counted from the tick being delivered
/// when called from `m`'s callbacks, else from the position now. Signature void(std::error_code).
/// Completes on the handler's associated executor. Cancellation (terminal/partial/total) ends
/// the wait: the note-off is still sent, then it completes with asio::error::operation_aborted;
/// so does the metronome stopping. Thread-safe: no (call on the metronome's executor). Throws
/// std::invalid_argument at once for out-of-range note arguments or a length <= 0.
template <class Clock, class CompletionToken>
auto async_note(output& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats length,
                CompletionToken&& token) {
  if (!(length > beats{0})) throw std::invalid_argument("tactus::midi::async_note: length must be > 0 beats");
  return out.async_note_with(
      channel, key, velocity,
      [&m, length](const auto& ex, auto handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto hex = asio::get_associated_executor(handler, ex);
        m.async_wait_after(
            length, asio::bind_cancellation_slot(
                        slot, asio::bind_executor(hex, [h = std::move(handler)](std::error_code ec, auto) mutable {
                          std::move(h)(ec);
                        })));
      },
      std::forward<CompletionToken>(token));
}

}  // namespace tactus::midi
