// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/metronome.hpp>
#include <tactus/midi/message.hpp>  // message, pulses_per_beat
#include <tactus/midi/output.hpp>
#include <tactus/midi/output_concept.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>

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

namespace tactus::midi {

/// How run() begins.
enum class clock_master_start {
  start,      ///< START: the song from its beginning (pulse 0)
  continue_,  ///< CONTINUE from position() (preceded by a Song Position Pointer after set_song_position)
};

/// Sends MIDI clock to an `Output`: a tactus::midi::output, or any message_output (a
/// testing::recording_output on testing::manual_clock, to test in virtual time).
///
/// Thread-safe: no; every member on the executor. Realtime-safe: no.
template <class Clock = std::chrono::steady_clock, message_output Output = output>
class basic_clock_master {
 public:
  using metronome_type = basic_metronome<Clock>;
  using time_point = typename Clock::time_point;

  /// A master at `tempo` sending to `out` (which must outlive it). Nothing is sent before run().
  basic_clock_master(asio::any_io_executor ex, Output& out, bpm tempo)
      : out_(out), metro_(std::move(ex), tempo, meter{4}, subdivision{pulses_per_beat}) {
    // A clock pulse is never dropped: a late one is sent late, the next ones on time again.
    metro_.set_overrun_policy(overrun_policy::catch_up);
    metro_.on_tick([this](const typename metronome_type::tick_type&) {
      out_.send(message::clock());
      ++position_;
      ++sent_;
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
      bool returned = false;
      ~send_stop() {
        if (!returned || !*alive) return;
        try {
          out.send(message::stop());
        } catch (...) {  // closed output: nothing to stop
        }
      }
    };
    if (how == clock_master_start::start) {
      position_ = 0;
      song_position_pending_ = false;
      out_.send(message::start());
    } else {
      if (song_position_pending_) out_.send(message::song_position(int(position_ / 6)));
      song_position_pending_ = false;
      out_.send(message::continue_());
    }
    send_stop guard{out_, alive_};
    try {
      co_await metro_.run();
    } catch (...) {
      guard.returned = true;
      throw;
    }
    guard.returned = true;
  }

  /// Makes run() return before the next pulse (it then sends STOP). Executor only.
  void stop() { metro_.stop(); }

  /// Changes the tempo from now on: the timeline is re-anchored here, so the pulse grid bends
  /// without a jump. Executor only.
  void set_tempo(bpm t) { metro_.set_tempo(t); }
  bpm tempo() const noexcept { return metro_.tempo(); }

  /// While stopped: the song position (in sixteenths, 0..16383) the next
  /// run(clock_master_start::continue_) moves to with a Song Position Pointer before CONTINUE.
  void set_song_position(int sixteenths) {
    (void)message::song_position(sixteenths);  // validates
    position_ = std::int64_t(sixteenths) * 6;
    song_position_pending_ = true;
  }

  /// The song position in pulses: the index of the next CLOCK to send.
  std::int64_t position() const noexcept { return position_; }
  /// CLOCK messages sent so far.
  std::int64_t pulses_sent() const noexcept { return sent_; }
  bool running() const noexcept { return metro_.running(); }

  /// The 24 ppqn metronome behind the clock (each tick is a CLOCK, sent by the first callback;
  /// a callback added here runs just after that CLOCK left). Tick 0 of each run() is pulse
  /// position() at the time run() began.
  metronome_type& metronome() noexcept { return metro_; }

 private:
  Output& out_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  metronome_type metro_;
  std::int64_t position_ = 0;
  std::int64_t sent_ = 0;
  bool song_position_pending_ = false;
};

/// The clock master on steady_clock and a tactus::midi::output.
class clock_master : public basic_clock_master<> {
 public:
  clock_master(asio::any_io_executor ex, output& out, bpm tempo) : basic_clock_master(std::move(ex), out, tempo) {}
};

}  // namespace tactus::midi
