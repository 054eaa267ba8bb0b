// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/io_error.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/midi/output_concept.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/post.hpp>

#include <stdexcept>
#include <system_error>
#include <type_traits>
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
//
// A length is a length: beats{1, 2} on an unsubdivided metronome ends half a beat later, between
// its ticks. A note ending where the next one of the same key begins ends first (position waits
// complete before that tick's callbacks), so repeated notes are never cut to nothing.
//
// When the metronome pauses (a MIDI STOP or a lost clock under a clock follower) the sounding
// notes end there, by default: on_pause::end. Pass on_pause::hold for a note that should sound
// through the pause until its position is reached after the music resumes. A stop() of the
// metronome ends them too (operation_aborted).

namespace tactus::midi {

namespace detail {

// Starts `m`'s wait for the note's end, for `handler` (void(std::error_code)): `length` beats
// from now (async_wait_after), or at position `end` (async_wait_until).
struct note_end {
  beats value;
  bool absolute = false;  // value is a position, not a length
};

template <class Clock, class Handler>
void wait_note_end(basic_metronome<Clock>& m, note_end end, on_pause when_paused, const asio::any_io_executor& ex,
                   Handler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto hex = asio::get_associated_executor(handler, ex);
  auto done = asio::bind_cancellation_slot(
      slot, asio::bind_executor(hex, [h = std::move(handler)](std::error_code ec, auto) mutable { std::move(h)(ec); }));
  if (end.absolute) m.async_wait_until(end.value, when_paused, std::move(done));
  else m.async_wait_after(end.value, when_paused, std::move(done));
}

inline void check_length(beats length) {
  if (!(length > beats{0})) throw std::invalid_argument("tactus::midi::async_note: length must be > 0 beats");
}

template <class Out, class Clock, class CompletionToken>
auto play_note(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, note_end end,
               on_pause when_paused, CompletionToken&& token) {
  if constexpr (std::is_same_v<Out, output>) {
    return out.async_note_with(
        channel, key, velocity,
        [&m, end, when_paused](const auto& ex, auto handler) {
          detail::wait_note_end(m, end, when_paused, ex, std::move(handler));
        },
        std::forward<CompletionToken>(token));
  } else {
    const auto on = message::note_on(channel, key, velocity);  // validates the arguments
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [&out, &m, channel, key, on, end, when_paused](auto handler) {
          auto hex = asio::get_associated_executor(handler, m.get_executor());
          auto slot = asio::get_associated_cancellation_slot(handler);
          try {
            out.send(on);
          } catch (const std::exception&) {
            asio::post(hex,
                       [h = std::move(handler)]() mutable { std::move(h)(make_error_code(io_errc::backend_error)); });
            return;
          }
          detail::wait_note_end(
              m, end, when_paused, m.get_executor(),
              asio::bind_cancellation_slot(slot, asio::bind_executor(hex, [&out, channel, key, h = std::move(handler)](
                                                                              std::error_code ec) mutable {
                                             try {
                                               if (out.open_count(channel, key) > 0)
                                                 out.send(message::note_off(channel, key));
                                             } catch (const std::exception&) {
                                               if (!ec) ec = make_error_code(io_errc::backend_error);
                                             }
                                             std::move(h)(ec);
                                           })));
        },
        token);
  }
}

}  // namespace detail

/// Plays one note on `out`: note-on now, note-off exactly `length` beats later on `m`'s
/// timeline (a position, so it follows tempo changes), counted from the tick being delivered
/// when called from `m`'s callbacks, else from the position now. Signature void(std::error_code).
/// Completes on the handler's associated executor. Cancellation (terminal/partial/total) ends
/// the wait: the note-off is still sent, then it completes with asio::error::operation_aborted;
/// so does the metronome stopping. A pause of `m` ends the note there and completes without
/// error (on_pause::end), or holds it until its position (on_pause::hold). The note-off is sent
/// only while the note is open (a panic() in between ended it already). A send that throws
/// completes with io_errc::backend_error. Thread-safe: no (call on the metronome's executor).
/// Throws std::invalid_argument at once for out-of-range note arguments or a length <= 0.
///
/// `out` is a tactus::midi::output (kept alive by the operation) or any note_output, which must
/// then outlive the operation (a testing::recording_output, an application's own sink).
template <class Out, class Clock, class CompletionToken>
requires note_output<Out>
auto async_note(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats length,
                on_pause when_paused, CompletionToken&& token) {
  detail::check_length(length);
  return detail::play_note(out, m, channel, key, velocity, detail::note_end{length}, when_paused,
                           std::forward<CompletionToken>(token));
}

/// As above, the note ending when `m` pauses (on_pause::end).
template <class Out, class Clock, class CompletionToken>
requires note_output<Out>
auto async_note(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats length,
                CompletionToken&& token) {
  return async_note(out, m, channel, key, velocity, length, on_pause::end, std::forward<CompletionToken>(token));
}

/// As async_note, but the note ends at position `end` of `m` rather than after a length: a note
/// that starts late (a swung step) and ends on the grid. An `end` already reached ends the note
/// at once.
template <class Out, class Clock, class CompletionToken>
requires note_output<Out>
auto async_note_until(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats end,
                      on_pause when_paused, CompletionToken&& token) {
  return detail::play_note(out, m, channel, key, velocity, detail::note_end{end, true}, when_paused,
                           std::forward<CompletionToken>(token));
}

/// As above, the note ending when `m` pauses (on_pause::end).
template <class Out, class Clock, class CompletionToken>
requires note_output<Out>
auto async_note_until(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, beats end,
                      CompletionToken&& token) {
  return async_note_until(out, m, channel, key, velocity, end, on_pause::end, std::forward<CompletionToken>(token));
}

}  // namespace tactus::midi
