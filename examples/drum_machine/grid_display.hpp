// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/tick.hpp>

#include "pattern.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

// The terminal view: on a TTY, the pattern as a step grid redrawn in place at every step, the
// current step highlighted, with bar:beat, tempo and transport state above it. Otherwise (a
// pipe, a log file) one plain line a bar. Runs on the executor; writes are small and buffered.
//
//   four-on-the-floor   bar 3:2   120.0 BPM   internal clock
//   kick   X...x...X...x...
//   snare  ....X.......X...
//   bass   o.o.o.o.o.o.o.o.  C2

namespace drum_machine {

/// "C2" for 36.
inline std::string note_name(int key) {
  static constexpr const char* names[] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
  return names[key % 12] + std::to_string(key / 12 - 1);
}

class grid_display {
 public:
  grid_display(const pattern& p, std::string source, std::FILE* out = stdout)
      : pattern_(p), source_(std::move(source)), out_(out), tty_(::isatty(::fileno(out)) != 0) {}
  grid_display(const grid_display&) = delete;
  grid_display& operator=(const grid_display&) = delete;
  ~grid_display() { finish(); }

  bool is_tty() const noexcept { return tty_; }

  /// Shows step `step` of the pattern, played at grid point `b` (a tactus::basic_tick).
  template <class Tick>
  void show(int step, const Tick& b) {
    step_ = step;
    bar_ = b.bar;
    beat_ = b.beat_in_bar;
    tempo_ = b.tempo.value();
    if (tty_) return redraw();
    if (b.is_downbeat())
      std::fprintf(out_, "bar %lld  %.1f BPM  %s\n", static_cast<long long>(b.bar) + 1, tempo_, source_.c_str());
    std::fflush(out_);
  }

  /// Transport state shown in the header ("waiting for START", "stopped", "clock lost", ...).
  void status(std::string s) {
    if (s == status_) return;
    status_ = std::move(s);
    if (tty_) return redraw();
    std::fprintf(out_, "%s\n", status_.c_str());
    std::fflush(out_);
  }

  /// Leaves the terminal as it was (cursor shown, below the grid). Idempotent.
  void finish() {
    if (tty_ && drawn_) std::fputs("\x1b[?25h", out_);
    drawn_ = false;
    std::fflush(out_);
  }

 private:
  void redraw() {
    std::string s;
    if (drawn_) s += "\x1b[" + std::to_string(lines_) + "F";  // back to the first line
    else s += "\x1b[?25l";                                    // hide the cursor
    drawn_ = true;
    char head[256];
    std::snprintf(head, sizeof head, "\x1b[2K\x1b[1m%s\x1b[0m   bar %lld:%d   %.1f BPM   %s   %s\n",
                  pattern_.name.c_str(), static_cast<long long>(bar_) + 1, beat_ + 1, tempo_, source_.c_str(),
                  status_.c_str());
    s += head;
    lines_ = 1;
    for (auto& d : pattern_.drums) {
      row(s, d.name, [&](int i) { return d.steps[i] == 0 ? '.' : d.steps[i] >= accent_velocity ? 'X' : 'x'; });
      s += "\n";
    }
    if (!pattern_.bass.empty()) {
      row(s, "bass", [&](int i) {
        const auto& n = pattern_.bass[i];
        return n.key < 0 ? '.' : n.length == 0 ? '-' : n.velocity >= accent_velocity ? 'O' : 'o';
      });
      const auto& now = pattern_.bass[step_];
      s += "  " + (now.key < 0 ? std::string("  ") : note_name(now.key)) + "   \n";
    }
    std::fputs(s.c_str(), out_);
    std::fflush(out_);
  }

  // One row: the name, then a character a step, a blank between beats, the current step in
  // reverse video.
  template <class Glyph>
  void row(std::string& s, const std::string& name, Glyph glyph) {
    char label[16];
    std::snprintf(label, sizeof label, "\x1b[2K%-6.6s ", name.c_str());
    s += label;
    for (int i = 0; i < pattern_.steps(); ++i) {
      if (i && i % steps_per_beat == 0) s += ' ';
      if (i == step_) s += "\x1b[7m";
      s += glyph(i);
      if (i == step_) s += "\x1b[0m";
    }
    ++lines_;
  }

  const pattern& pattern_;
  std::string source_;
  std::FILE* out_;
  bool tty_;
  bool drawn_ = false;
  int lines_ = 0;
  int step_ = 0;
  long long bar_ = 0;
  int beat_ = 0;
  double tempo_ = 0;
  std::string status_;
};

}  // namespace drum_machine
