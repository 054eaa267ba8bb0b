// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/message.hpp>  // message, pulses_per_beat
#include <tactus/midi/output.hpp>
#include <tactus/midi/output_concept.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>

// A MIDI clock master: 24 ppqn CLOCK from a drift-free timeline (its own metronome at
// subdivision 24, every tick a CLOCK), with START / STOP / CONTINUE and Song Position Pointer:
//
//     tactus::midi::output out{ex, "synth"};
//     tactus::midi::clock_master master{ex, out, tactus::bpm{120}};
//     asio::co_spawn(ex, master.run(), tactus::rethrow);   // START, then CLOCK until stop() or cancel: STOP
//     master.set_tempo(tactus::bpm{128});           // from now on, no jump in the position
//
// After run() returns, run(clock_master_start::continue_) sends CONTINUE and carries on from
// where it stopped; set_song_position() first moves there with a Song Position Pointer.
//
// On a scheduled output (midi::output, testing::recording_output: see output_concept.hpp) each
// pulse is handed to send_at one pulse ahead, for its exact grid time: on the native JACK
// backend every CLOCK lands on the frame of its time, whatever the executor's wake-up latency.
// A tempo change takes effect from the pulse already handed over; stop() lets that pulse go and
// sends STOP at its time, right after it (so position() counts it); a later run() starts after it.

namespace tactus::midi {

/// How run() begins.
enum class clock_master_start {
  start,      ///< START: the song from its beginning (pulse 0)
  continue_,  ///< CONTINUE from position() (preceded by a Song Position Pointer after set_song_position)
};

/// Sends MIDI clock to an `Output`: a tactus::midi::output, or any message_output (a
/// testing::recording_output on testing::manual_clock, to test in virtual time); scheduled ahead
/// on a scheduled_output (see above).
///
/// Thread-safe: no; every member on the executor. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock, message_output Output = output>
class basic_clock_master {
 public:
  using metronome_type = basic_metronome<Clock>;
  using time_point = typename Clock::time_point;
  /// Whether pulses are scheduled ahead at their grid times (Output is a scheduled_output).
  static constexpr bool scheduled = scheduled_output<Output, time_point>;

  /// A master at `tempo` sending to `out` (which must outlive it). Nothing is sent before run().
  basic_clock_master(asio::any_io_executor ex, Output& out, bpm tempo)
      : out_(out), metro_(std::move(ex), tempo, meter{4}, subdivision{pulses_per_beat}) {
    // A clock pulse is never dropped: a late one is sent late, the next ones on time again.
    metro_.set_overrun_policy(overrun_policy::catch_up);
    metro_.on_tick([this](const typename metronome_type::tick_type& t) {
      // A send that fails (the port or the server gone) ends run() with its exception, once:
      // never a failed pulse after pulse (the metronome would report each and carry on).
      if (error_) return;
      try {
        pulse(t);
      } catch (...) {
        error_ = std::current_exception();
        metro_.stop();
      }
    });
  }

  /// Stops the clock; safe while run() is suspended (it then returns without sending STOP, or is
  /// destroyed with its io_context).
  ~basic_clock_master() { *alive_ = false; }

  basic_clock_master(const basic_clock_master&) = delete;
  basic_clock_master& operator=(const basic_clock_master&) = delete;

  /// Sends START (or CONTINUE, see clock_master_start), then a CLOCK on every 24th of a beat,
  /// the first at once, until stop() or the cancellation of this coroutine; then STOP, always
  /// (cancelled, or unwinding from an exception too). Returns cleanly on stop() and on
  /// cancellation. Send errors of the output propagate as exceptions (after the STOP attempt).
  /// Throws std::logic_error if already running.
  asio::awaitable<void> run(clock_master_start how = clock_master_start::start) {
    if (metro_.running()) throw std::logic_error("tactus::midi::clock_master: run() while running");
    // STOP on every way out while the master lives; not when an io_context destroys this frame,
    // nor after the master (and so perhaps the output) is gone.
    struct send_stop {
      Output& out;
      std::shared_ptr<const bool> alive;
      basic_clock_master& master;
      bool returned = false;
      ~send_stop() {
        if (!returned || !*alive) return;
        try {
          master.send_after_ahead(message::stop());
        } catch (...) {  // closed output: nothing to stop
        }
        master.ahead_ = false;
      }
    };
    if constexpr (scheduled) {
      // What an earlier run handed over (its last pulse, its STOP) goes out before we start.
      if (last_scheduled_ > Clock::now()) {
        asio::basic_waitable_timer<Clock> wait(metro_.get_executor(), last_scheduled_);
        std::error_code ec;
        co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;  // cancelled before it began: nothing sent
      }
    }
    if (how == clock_master_start::start) {
      position_ = 0;
      song_position_pending_ = false;
      out_.send(message::start());
    } else {
      if (song_position_pending_) out_.send(message::song_position(int(position_ / 6)));
      song_position_pending_ = false;
      out_.send(message::continue_());
    }
    error_ = nullptr;
    send_stop guard{out_, alive_, *this};
    try {
      co_await metro_.run();
    } catch (...) {
      guard.returned = true;
      throw;
    }
    guard.returned = true;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));  // after the STOP attempt
  }

  /// Makes run() return before the next pulse (it then sends STOP). Executor only.
  void stop() { metro_.stop(); }

  /// Changes the tempo from now on: the timeline is re-anchored here, so the pulse grid bends
  /// without a jump. On a scheduled output, from the pulse already handed over (its time stays).
  /// Executor only.
  void set_tempo(bpm t) {
    if constexpr (scheduled) {
      if (ahead_ && metro_.running()) {
        metro_.sync(typename metronome_type::timeline_type(t, ahead_time_, ahead_position_));
        return;
      }
    }
    metro_.set_tempo(t);
  }
  bpm tempo() const noexcept { return metro_.tempo(); }

  /// While stopped: the song position (in sixteenths, 0..16383) the next
  /// run(clock_master_start::continue_) moves to with a Song Position Pointer before CONTINUE.
  void set_song_position(int sixteenths) {
    (void)message::song_position(sixteenths);  // validates
    position_ = std::int64_t(sixteenths) * 6;
    song_position_pending_ = true;
  }

  /// The song position in pulses: the index of the next CLOCK to send (on a scheduled output,
  /// the next to hand over: the one handed over ahead counts as sent).
  std::int64_t position() const noexcept { return position_; }
  /// CLOCK messages sent so far.
  std::int64_t pulses_sent() const noexcept { return sent_; }
  bool running() const noexcept { return metro_.running(); }

  /// The 24 ppqn metronome behind the clock (each tick is a CLOCK, sent by the first callback;
  /// a callback added here runs just after that CLOCK left). Tick 0 of each run() is pulse
  /// position() at the time run() began.
  metronome_type& metronome() noexcept { return metro_; }

 private:
  // The tick's CLOCK: now, or on a scheduled output the next one handed over for its time.
  void pulse(const typename metronome_type::tick_type& t) {
    if constexpr (scheduled) {
      // Pulse n went out one pulse ahead (pulse 0: now); hand over pulse n + 1 for its time.
      if (t.index == 0) send_pulse_now();
      ahead_position_ = t.position + metro_.subdivision().tick_length();
      ahead_time_ = metro_.time_at(ahead_position_);
      out_.send_at(message::clock(), ahead_time_);
      ahead_ = true;
      ++position_;
      ++sent_;
    } else {
      send_pulse_now();
    }
  }

  void send_pulse_now() {
    out_.send(message::clock());
    ++position_;
    ++sent_;
  }

  // STOP after the pulse handed over ahead (at its time), else now.
  void send_after_ahead(const message& m) {
    if constexpr (scheduled) {
      if (ahead_ && ahead_time_ > Clock::now()) {
        out_.send_at(m, ahead_time_);
        last_scheduled_ = ahead_time_;
        return;
      }
    }
    out_.send(m);
  }

  Output& out_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::exception_ptr error_;  // the send that failed, for run() to rethrow
  metronome_type metro_;
  std::int64_t position_ = 0;
  std::int64_t sent_ = 0;
  bool song_position_pending_ = false;
  // Scheduled outputs: the pulse handed over ahead, and the latest time handed over at all.
  bool ahead_ = false;
  beats ahead_position_{};
  time_point ahead_time_{};
  time_point last_scheduled_{};
};

/// The clock master on steady_clock and a tactus::midi::output.
class clock_master : public basic_clock_master<> {
 public:
  clock_master(asio::any_io_executor ex, output& out, bpm tempo) : basic_clock_master(std::move(ex), out, tempo) {}
};

}  // namespace tactus::midi
