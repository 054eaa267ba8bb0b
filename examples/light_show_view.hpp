// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/led.hpp>
#include <tactus/sinks/recording_driver.hpp>
#include <tactus/sinks/servo.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// The light show's terminal view and plot: a bar per servo and a dot per LED, redrawn on one
// line on a terminal (one line per beat otherwise, for logs and tests); and, with --plot, the
// servos' recorded trajectories against the beat grid, drawn by gnuplot.

namespace light_show {

using clock = std::chrono::steady_clock;

/// A servo's driver in the show: the hardware's (if any) and a recording of what was sent.
struct recorded {
  std::function<void(double)> hardware;  // empty: no hardware, the recording only
  tactus::sinks::recording_driver<clock>* rec;
  void set(double angle) {
    if (hardware) hardware(angle);
    rec->set(angle);
  }
};

/// "bar 3 beat 2  [=====|     ] [   |=======]  * . * ."
inline std::string view_line(long long bar, int beat, const std::vector<std::unique_ptr<tactus::servo>>& servos,
                             const std::vector<std::unique_ptr<tactus::led>>& leds) {
  std::string s = "bar " + std::to_string(bar + 1) + " beat " + std::to_string(beat + 1) + " ";
  for (const auto& sv : servos) {
    const int w = 20, at = static_cast<int>((sv->get() - sv->min()) / (sv->max() - sv->min()) * w + 0.5);
    std::string b(w + 1, ' ');
    for (int i = 0; i < at; ++i) b[i] = '=';
    b[at] = '|';
    char deg[16];
    std::snprintf(deg, sizeof deg, "%5.1f", sv->get());
    s += " [" + b + "] " + deg;
  }
  s += "  ";
  for (const auto& l : leds) s += l->level() >= 0.5 ? "* " : l->level() > 0 ? "o " : ". ";
  return s;
}

/// Writes the servos' trajectories and the beat grid to `png` through gnuplot. Returns false
/// (having said why on stderr) when gnuplot fails.
inline bool plot(const std::string& png, const std::vector<tactus::sinks::recording_driver<clock>>& recs,
                 const std::vector<std::pair<clock::time_point, bool>>& beats, clock::time_point t0) {
  auto sec = [t0](clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); };
  FILE* g = ::popen("gnuplot", "w");
  if (!g) return false;
  std::fprintf(g, "set terminal pngcairo noenhanced size 1200,500\nset output '%s'\n", png.c_str());
  std::fprintf(g, "set xlabel 'time (s)'\nset ylabel 'angle (degrees)'\nset yrange [0:180]\nset key outside\n");
  std::fprintf(g, "set title 'light_show: servo trajectories on the beat grid (thin: beats, thick: bars)'\n");
  std::fprintf(g,
               "plot '-' using 1:2 with impulses lc rgb '#dddddd' notitle, '-' using 1:2 with impulses lw 3 lc rgb "
               "'#999999' notitle");
  for (std::size_t i = 0; i < recs.size(); ++i) std::fprintf(g, ", '-' using 1:2 with lines lw 2 title 'servo %zu'", i);
  std::fprintf(g, "\n");
  for (bool bars : {false, true}) {
    for (const auto& [t, downbeat] : beats)
      if (downbeat == bars) std::fprintf(g, "%.6f 180\n", sec(t));
    std::fprintf(g, "e\n");
  }
  for (const auto& r : recs) {
    for (const auto& e : r.events()) std::fprintf(g, "%.6f %.3f\n", sec(e.time), e.value);
    std::fprintf(g, "e\n");
  }
  return ::pclose(g) == 0;
}

}  // namespace light_show
