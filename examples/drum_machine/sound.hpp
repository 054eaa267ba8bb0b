// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/midi/smf.hpp>
#include <tactus/tempo.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

// Where the notes go: a MIDI output for the drums and one for the bass (the same one if both
// parts share a port, none without a MIDI backend), and a Standard MIDI File recording, with the
// tempo changes of a followed clock. Every note passes through one note_sink, so the recording
// holds exactly the events sent live, and the sink knows which notes sound: silence() ends each
// of them, then sends panic (CC 123 All Notes Off, CC 64 Sustain off) on the channels used.
// close() and the destructor do both, so every way out of the program leaves no note hanging.

namespace drum_machine {

enum class part { drums, bass };

class note_sink {
 public:
  using clock = std::chrono::steady_clock;

  struct route {
    std::shared_ptr<tactus::midi::output> out;  // null: recording and grid only
    int channel = 0;                            // 0-based
  };

  /// `record`: the file written by close(), or none. `tempo`: the tempo the file starts at.
  note_sink(route drums, route bass, std::optional<std::filesystem::path> record, tactus::bpm tempo)
      : routes_{std::move(drums), std::move(bass)},
        record_(std::move(record)),
        smf_(480, std::chrono::round<std::chrono::microseconds>(tempo.period())),
        tempo_(tempo) {
    smf_.set_track_name(0, "drums");
    smf_.set_track_name(1, "bass");
    smf_.set_time_signature(4, 4);
  }
  note_sink(const note_sink&) = delete;
  note_sink& operator=(const note_sink&) = delete;
  ~note_sink() {
    try {
      close();
    } catch (...) {  // outputs silence themselves on destruction
    }
  }

  /// Sends a note-on now and records it at `when` (its musical time). A key still sounding
  /// on that part is ended first.
  void note_on(part p, int key, int velocity, clock::time_point when) {
    if (open_[index(p)][key]) note_off(p, key, when);
    send(p, tactus::midi::message::note_on(routes_[index(p)].channel, key, velocity), when);
    open_[index(p)][key] = true;
  }

  /// Sends a note-off now, if the key sounds, and records it at `when`.
  void note_off(part p, int key, clock::time_point when) {
    if (!open_[index(p)][key]) return;
    open_[index(p)][key] = false;
    send(p, tactus::midi::message::note_off(routes_[index(p)].channel, key), when);
  }

  /// Ends every sounding note, then panic on each output (CC 123 and CC 64 on its channels).
  void silence(clock::time_point when = clock::now()) {
    for (auto p : {part::drums, part::bass})
      for (int key = 0; key < 128; ++key) note_off(p, key, when);
    for (auto& r : routes_)
      if (r.out && r.out->is_open()) r.out->panic();
  }

  /// silence(), closes the outputs and writes the recording. Idempotent. Returns the file
  /// written, if any.
  std::optional<std::filesystem::path> close() {
    if (closed_) return std::nullopt;
    closed_ = true;
    silence();
    for (auto& r : routes_)
      if (r.out) r.out->close();
    if (!record_) return std::nullopt;
    smf_.write(*record_);
    return record_;
  }

  /// Records a tempo change in the file at `when` (call once a beat), if the tempo moved more
  /// than 0.05 BPM from the last one recorded: a followed clock's estimate jitters by less.
  void tempo(tactus::bpm t, clock::time_point when) {
    if (std::abs(t.value() - tempo_.value()) <= 0.05) return;
    tempo_ = t;
    smf_.set_tempo(since_start(when), t);  // before the first note: the tempo at the start
  }

  /// Note-ons and note-offs sent, for the summary line.
  long notes_played() const noexcept { return notes_; }

 private:
  static std::size_t index(part p) noexcept { return p == part::drums ? 0 : 1; }

  clock::duration since_start(clock::time_point when) const {
    return start_ ? std::max(when - *start_, clock::duration::zero()) : clock::duration::zero();
  }

  void send(part p, const tactus::midi::message& m, clock::time_point when) {
    auto& r = routes_[index(p)];
    if (r.out && r.out->is_open()) r.out->send(m);
    if (!start_) start_ = when;  // the recording starts at the first note
    smf_.add(since_start(when), m, static_cast<int>(index(p)));
    if (m.is_note_on()) ++notes_;
  }

  std::array<route, 2> routes_;
  std::array<std::array<bool, 128>, 2> open_{};
  std::optional<std::filesystem::path> record_;
  tactus::midi::smf_writer smf_;
  tactus::bpm tempo_;  // the last one recorded
  std::optional<clock::time_point> start_;
  long notes_ = 0;
  bool closed_ = false;
};

}  // namespace drum_machine
