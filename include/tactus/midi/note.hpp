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

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
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
// On a scheduled output (midi::output, testing::recording_output: see output_concept.hpp) the
// note-off is handed to send_at a lookahead before the end, for the exact time of its position
// (on the native JACK backend, its frame); async_note_at places the note-on at a position too:
//
//     m.on_beat([&](const tactus::tick& b) -> asio::awaitable<void> {   // the next beat, exactly
//       co_await tactus::midi::async_note_at(out, m, b.position + tactus::beats{1}, 9, 36, 110, tactus::beats{1, 4}, asio::use_awaitable);
//     });
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

inline void check_length(beats length) {
  if (!(length > beats{0})) throw std::invalid_argument("tactus::midi::async_note: length must be > 0 beats");
}

// What a note needs of its output: a user's note_output by reference (it must outlive the
// note), a midi::output by its shared state (kept alive; nothing is sent once it is closed).
template <class Out>
struct note_sink {
  Out* out;
  explicit note_sink(Out& o) : out(&o) {}
  void send(const message& m) { out->send(m); }
  bool open(int channel, int key) const { return out->open_count(channel, key) > 0; }
  template <class TimePoint>
  void send_at(const message& m, TimePoint t) {
    out->send_at(m, t);
  }
  auto lookahead() const { return lookahead_of(*out); }
};

template <>
struct note_sink<output> {
  std::shared_ptr<output_impl> impl;
  explicit note_sink(output& o) : impl(output_access::impl(o)) {}
  void send(const message& m) { impl->send(m); }
  bool open(int channel, int key) const {
    impl->forget_notes_if_lost();
    return impl->is_open() && impl->notes_.open_count(channel, key) > 0;
  }
  void send_at(const message& m, std::chrono::steady_clock::time_point t) { impl->send_at(m, t); }
  auto lookahead() const { return std::chrono::nanoseconds(impl->opts_.lookahead); }
};

// Binds a function to `handler`'s cancellation slot and executor, both read before the handler
// moves into that function: `auto bind = binder(handler, ex); wait(bind([h = std::move(handler)] ...));`
template <class Handler, class Executor>
auto binder(const Handler& handler, const Executor& ex) {
  return [slot = asio::get_associated_cancellation_slot(handler), hex = asio::get_associated_executor(handler, ex)](
             auto f) { return asio::bind_cancellation_slot(slot, asio::bind_executor(hex, std::move(f))); };
}

// Waits on `m` until `lookahead` before position `p` (a position wait, lookahead earlier at the
// tempo of now: it follows tempo changes and pauses until then), then calls
// `done(ec, time)` with the time of `p` on the timeline of that moment; `time` is empty when the
// wait ended without reaching it (a pause under on_pause::end). `done` is bound to the
// cancellation slot and executor the caller gives.
template <class Clock, class Done>
void wait_before(basic_metronome<Clock>& m, beats p, std::chrono::nanoseconds lookahead, on_pause when_paused,
                 Done done) {
  using time_point = typename Clock::time_point;
  const auto ahead = std::chrono::duration_cast<typename Clock::duration>(lookahead);
  const beats wake = std::min(p, m.position(m.time_at(p) - ahead));
  // The wait carries done's slot: from a metronome callback's coroutine, it releases the grid.
  auto bind = binder(done, m.get_executor());
  m.async_wait_until(wake, when_paused,
                     bind([&m, p, wake, d = std::move(done)](std::error_code ec, auto moment) mutable {
                       if (ec) return d(ec, std::optional<time_point>());
                       if (moment.position < wake) return d(ec, std::optional<time_point>());  // paused first
                       d(ec, std::optional<time_point>(m.time_at(p)));
                     }));
}

// The note-off: at the exact time of its end on a scheduled output (handed over `lookahead`
// before it), else when the wait for the end completes; at once when the wait ends early
// (cancellation, the metronome stopping or pausing). Only while the note is open.
template <class Out, class Clock, class Handler>
void end_note(note_sink<Out> sink, basic_metronome<Clock>& m, int channel, int key, note_end end, on_pause when_paused,
              Handler handler) {
  const beats at = end.absolute ? end.value : m.current_position() + end.value;
  auto ex = m.get_executor();
  if constexpr (scheduled_output<Out, typename Clock::time_point>) {
    const auto la = sink.lookahead();
    auto bind = binder(handler, ex);
    wait_before(m, at, la, when_paused,
                bind([sink, channel, key, h = std::move(handler)](std::error_code ec, auto t) mutable {
                  const auto e = output_error([&] {
                    if (!sink.open(channel, key)) return;
                    if (t) sink.send_at(message::note_off(channel, key), *t);
                    else sink.send(message::note_off(channel, key));
                  });
                  if (!ec) ec = e;
                  std::move(h)(ec);
                }));
  } else {
    auto bind = binder(handler, ex);
    m.async_wait_until(at, when_paused,
                       bind([sink, channel, key, h = std::move(handler)](std::error_code ec, auto) mutable {
                         const auto e = output_error([&] {
                           if (sink.open(channel, key)) sink.send(message::note_off(channel, key));
                         });
                         if (!ec) ec = e;
                         std::move(h)(ec);
                       }));
  }
}

template <class Out, class Clock, class CompletionToken>
auto play_note(Out& out, basic_metronome<Clock>& m, int channel, int key, int velocity, note_end end,
               on_pause when_paused, CompletionToken&& token) {
  const auto on = message::note_on(channel, key, velocity);  // validates the arguments
  return asio::async_initiate<CompletionToken, void(std::error_code)>(
      [&m, channel, key, on, end, when_paused](auto handler, note_sink<Out> sink) {
        const auto e = output_error([&] { sink.send(on); });
        if (e) {
          auto hex = asio::get_associated_executor(handler, m.get_executor());
          asio::post(hex, [h = std::move(handler), e]() mutable { std::move(h)(e); });
          return;
        }
        end_note(std::move(sink), m, channel, key, end, when_paused, std::move(handler));
      },
      token, note_sink<Out>(out));
}

// A note at a position: the note-on handed over `lookahead` before `start` for its exact time,
// then the note-off likewise for `start + length`. Cancelled before the note-on went: nothing
// sent; after: the note-off at once.
template <class Out, class Clock, class CompletionToken>
auto play_note_at(Out& out, basic_metronome<Clock>& m, beats start, int channel, int key, int velocity, beats length,
                  on_pause when_paused, CompletionToken&& token) {
  const auto on = message::note_on(channel, key, velocity);  // validates the arguments
  check_length(length);
  return asio::async_initiate<CompletionToken, void(std::error_code)>(
      [&m, start, length, channel, key, on, when_paused](auto handler, note_sink<Out> sink) {
        auto ex = m.get_executor();
        const auto la = sink.lookahead();
        auto bind = binder(handler, ex);
        wait_before(
            m, start, la, on_pause::hold,
            bind([&m, sink, start, length, channel, key, on, when_paused, h = std::move(handler)](std::error_code ec,
                                                                                                  auto t) mutable {
              if (!ec) ec = output_error([&] { sink.send_at(on, *t); });
              if (ec) return std::move(h)(ec);
              end_note(std::move(sink), m, channel, key, note_end{start + length, true}, when_paused, std::move(h));
            }));
      },
      token, note_sink<Out>(out));
}

}  // namespace detail

/// Sends `msg` at the exact time of beat position `position` of `m` on a scheduled output (for
/// midi::output on the native JACK backend: at the frame of that time). It waits (a position
/// wait: tempo changes, sync and relocation until then are followed; a pause holds it) until the
/// output's lookahead (output_options::lookahead, 5 ms by default) before the position, then
/// calls out.send_at(msg, m.time_at(position)): a tempo change within that last lookahead no
/// longer moves it. The lookahead is measured at the tempo in force when the call is made (it is
/// a position wait): a tempo twice as fast by then halves it, half as fast doubles it. A position already within the lookahead, or passed, is handed over at once
/// (past: sent at once and counted late). Signature void(std::error_code): what send_at threw
/// (io_errc::server_lost, ...). Completes on the handler's associated executor. Cancellation
/// (terminal/partial/total) or the metronome stopping before the hand-over: nothing is sent,
/// asio::error::operation_aborted. `out` must outlive the operation. Thread-safe: no (call on
/// the metronome's executor).
template <class Out, class Clock, class CompletionToken>
requires scheduled_output<Out, typename Clock::time_point>
auto async_send_at(Out& out, basic_metronome<Clock>& m, beats position, const message& msg, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code)>(
      [&out, &m, position, msg](auto handler) {
        auto bind = detail::binder(handler, m.get_executor());
        detail::wait_before(m, position, detail::lookahead_of(out), on_pause::hold,
                            bind([&out, msg, h = std::move(handler)](std::error_code ec, auto t) mutable {
                              if (!ec) ec = detail::output_error([&] { out.send_at(msg, *t); });
                              std::move(h)(ec);
                            }));
      },
      token);
}

/// Plays one note at beat position `start` of `m`, `length` beats long, in one call: the note-on
/// at the exact time of `start`, the note-off at the exact time of `start + length`, each handed
/// to out.send_at a lookahead ahead (see async_send_at). Signature void(std::error_code),
/// completing after the note-off was handed over. Cancellation, or the metronome stopping, before
/// the note-on was handed over: nothing sounds, operation_aborted; after: the note-off goes at
/// once, then operation_aborted. A pause holds the note-on and ends a sounding note there
/// (on_pause::end, the default) or holds it (on_pause::hold). Throws std::invalid_argument at
/// once for out-of-range note arguments or a length <= 0. `out` is a tactus::midi::output (kept
/// alive by the operation) or any scheduled note_output, which must then outlive it.
template <class Out, class Clock, class CompletionToken>
requires note_output<Out> && scheduled_output<Out, typename Clock::time_point>
auto async_note_at(Out& out, basic_metronome<Clock>& m, beats start, int channel, int key, int velocity, beats length,
                   on_pause when_paused, CompletionToken&& token) {
  return detail::play_note_at(out, m, start, channel, key, velocity, length, when_paused,
                              std::forward<CompletionToken>(token));
}

/// As above, a sounding note ending when `m` pauses (on_pause::end).
template <class Out, class Clock, class CompletionToken>
requires note_output<Out> && scheduled_output<Out, typename Clock::time_point>
auto async_note_at(Out& out, basic_metronome<Clock>& m, beats start, int channel, int key, int velocity, beats length,
                   CompletionToken&& token) {
  return async_note_at(out, m, start, channel, key, velocity, length, on_pause::end,
                       std::forward<CompletionToken>(token));
}

/// Plays one note on `out`: note-on now, note-off exactly `length` beats later on `m`'s
/// timeline (a position, so it follows tempo changes), counted from the tick being delivered
/// when called from `m`'s callbacks, else from the position now. On a scheduled output the
/// note-off is handed to send_at the output's lookahead before that position, for its exact time
/// (tempo changes within that last lookahead no longer move it). Signature void(std::error_code).
/// Completes on the handler's associated executor. Cancellation (terminal/partial/total) ends
/// the wait: the note-off is still sent, then it completes with asio::error::operation_aborted;
/// so does the metronome stopping. A pause of `m` ends the note there and completes without
/// error (on_pause::end), or holds it until its position (on_pause::hold). The note-off is sent
/// only while the note is open (a panic() in between ended it already). A send that throws
/// completes with its std::system_error's code (io_errc::server_lost, ...), else
/// io_errc::backend_error. Thread-safe: no (call on the metronome's executor).
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
