// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/message.hpp>  // pulses_per_beat
#include <tactus/tempo.hpp>
#include <tactus/timeline.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>

// Tempo and phase of a 24 ppqn MIDI clock, estimated from the arrival times of its pulses.
// Feed it every CLOCK (0xF8) with its timestamp; ask it for the tempo, for the time of any pulse
// or beat (past or predicted), or for a tactus::basic_timeline to hand to a metronome:
//
//     tactus::midi::clock_estimator<> est{{.latency = 1333us}};   // half a JACK period
//     est.on_start();                      // START: the next pulse is pulse 0 of beat 0
//     est.on_pulse(stamp);                 // for every CLOCK, stamped on arrival
//     if (est.locked()) schedule(est.beat_time(est.pulse_count() / 24 + 1));
//
// Method: least-squares line through (pulse index, arrival time) over a sliding window of the
// newest pulses (192 by default, eight beats). For a steady clock that line is exact, and it
// averages away both timestamp jitter and the quantization to the audio period that JACK
// imposes (2.7 ms at 128 frames / 48 kHz, against a pulse period of 14..42 ms). On top of it:
//  - outliers: a pulse further from the predicted line than `outlier_sigmas` times the
//    residual deviation (and than `min_outlier`) is kept out of the fit;
//  - tempo changes: `step_run` outliers in a row on the same side mean the tempo changed; the
//    window is cut back to the pulse before them, so the new tempo is acquired in a few pulses
//    instead of a whole window;
//  - dropouts: the pulse index advances by round(interval / period), so up to `max_dropout`
//    missing pulses leave the phase intact (when the position on the line agrees); three long
//    intervals in a row are a tempo drop by more than 1.5x, and are re-counted as consecutive;
//  - gaps: a longer silence restarts the fit (the index advances by one: a clock that pauses
//    pauses the music); telling a lost clock from a paused one is the transport's job;
//  - repeats: a pulse stamped exactly like the previous one is not counted when the fit rules a
//    pulse out there (locked, jitter under a sixth of the period, and counting it would put the
//    count more than half a period ahead of the line): JACK2 replays a late client's cycle with
//    its stamp. Pulses bunched by a stall are counted while the count is behind the line, so
//    after a short stall the count follows the time that passed. Without a locked fit a repeat
//    cannot be told from a bunched pulse and is counted.
// The fit is recomputed from the stored pulses on every pulse (centred sums, relative to the
// newest pulse), so nothing accumulates. No allocation: the window is a fixed ring.

namespace tactus::midi {

/// Tuning of a clock_estimator. The defaults suit USB/DIN gear and JACK at periods up to ~6 ms.
struct clock_estimator_config {
  /// Pulses in the regression window, 8..clock_estimator::capacity. Longer: steadier tempo and
  /// phase; shorter: faster through tempo ramps (steps are caught by `step_run` anyway).
  std::size_t window = 192;
  /// Pulses in the fit before locked() reports true (after start, a gap or a tempo change).
  std::size_t lock_pulses = 12;
  /// A pulse is an outlier when its distance to the predicted line exceeds this many standard
  /// deviations of the residuals (prediction uncertainty included)...
  double outlier_sigmas = 4.0;
  /// ...and exceeds this much.
  std::chrono::nanoseconds min_outlier{std::chrono::milliseconds(2)};
  /// This many outliers in a row on the same side (early, or late) are a tempo change.
  std::size_t step_run = 3;
  /// Up to this many consecutive missing pulses are dropouts; a longer silence is a gap.
  std::size_t max_dropout = 8;
  /// Subtracted from every timestamp: the mean delay between a pulse leaving the source and its
  /// timestamp (for JACK, half the period, since events are stamped when the period is processed).
  std::chrono::nanoseconds latency{0};
  /// The fastest tempo taken for one. A fit faster than this (or not positive) is no tempo:
  /// tempo() and timeline() are nullopt. Pulses bunched by a stalled system (a JACK client
  /// descheduled for a second delivers its pulses in one burst) otherwise read as thousands
  /// of BPM, and a metronome following that would fire a burst of beats.
  double max_bpm = 1000.0;
};

/// What on_pulse made of a pulse.
enum class pulse_kind : std::uint8_t {
  first,         ///< the first pulse of a fit (after construction, reset or a gap)
  normal,        ///< on the predicted line, used in the fit
  outlier,       ///< off the line, kept out of the fit
  dropout,       ///< pulses were missing before this one; the index skipped them
  tempo_change,  ///< the tempo changed: the fit restarted from the pulses before this one
  gap,           ///< silence longer than max_dropout pulses: the fit restarted here
  repeat,        ///< the previous pulse again (same stamp, no room for a pulse): not counted
};

/// Result of on_pulse: the pulse index given to the pulse and what it was taken for.
struct pulse_info {
  std::int64_t index;
  pulse_kind kind;
};

/// Estimates tempo and phase of a 24 ppqn MIDI clock. `Clock` supplies the time_point type
/// (std::chrono::steady_clock by default; tactus::testing::manual_clock or any Clock in tests);
/// now() is never called, the estimator sees time only through the timestamps it is given.
///
/// Thread-safe: no; one thread feeds and queries it (or guard it). Realtime-safe: yes: no
/// allocation, no lock, no system call; on_pulse is O(window) arithmetic (a few microseconds at
/// most), so it may run inside an RtMidi/JACK callback.
template <class Clock = std::chrono::steady_clock>
class clock_estimator {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// Largest supported window, in pulses (eight beats).
  static constexpr std::size_t capacity = 192;

  clock_estimator() noexcept : clock_estimator(clock_estimator_config{}) {}
  /// `config.window` is clamped to 8..capacity, `step_run` to >= 2.
  explicit clock_estimator(clock_estimator_config config) noexcept : config_(config) {
    config_.window = std::clamp<std::size_t>(config_.window, 8, capacity);
    config_.step_run = std::max<std::size_t>(config_.step_run, 2);
    config_.lock_pulses = std::clamp<std::size_t>(config_.lock_pulses, 2, config_.window);
  }

  const clock_estimator_config& config() const noexcept { return config_; }

  /// Forgets everything: no tempo, no pulses; the next pulse is pulse 0.
  void reset() noexcept {
    size_ = 0;
    next_index_ = 0;
    sigma_prior_ = 0.0;
    clear_runs();
    skip_run_ = 0;
    fit_ = {};
  }

  /// MIDI START: the next pulse is pulse 0 (the downbeat of beat 0). The tempo fit is kept,
  /// since most sources keep the clock running while stopped.
  void on_start() noexcept { set_next_pulse(0); }

  /// The next pulse gets index `index` (CONTINUE after a Song Position Pointer: sixteenths * 6).
  /// The fit is kept; the indices of past pulses are shifted to match.
  void set_next_pulse(std::int64_t index) noexcept {
    const std::int64_t shift = index - next_index_;
    for (std::size_t i = 0; i < size_; ++i) at(i).index += shift;
    if (fit_.valid) fit_.index += shift;
    next_index_ = index;
  }

  /// One CLOCK pulse that arrived at `t` (timestamps must not go backwards; equal ones are
  /// fine). Returns the index it was given and how it was classified. A pulse_kind::repeat is
  /// not counted and leaves the estimator as it was; its index is the pulse it repeats.
  pulse_info on_pulse(time_point t) noexcept {
    t -= std::chrono::duration_cast<duration>(config_.latency);
    if (size_ == 0) return start_fit(t, pulse_kind::first);

    const entry& last = at(size_ - 1);
    if (t == last.time && no_room_for_pulse(last.index + 1, t)) return {last.index, pulse_kind::repeat};
    // Missing pulses: the interval since the last pulse says how many, and so must the
    // position on the fitted line, clearly (one jittery interval alone misleads at high jitter,
    // and the position alone drifts after a tempo drop). Only an established fit that the
    // previous pulse agreed with may say so: a young one (just after a tempo change) has too
    // rough a period, and an outlier before suggests a tempo drop. Anything else is
    // judged as a pulse in sequence: if it is not one, the outlier run below sorts it out.
    std::int64_t step = 1;
    if (fit_.valid) {
      const double by_interval = ns(t - last.time) / fit_.slope;
      const double position =
          fit_.xbar + (ns(t - fit_.time) - fit_.ybar) / fit_.slope + double(fit_.index - last.index);
      if (by_interval > 1.5 + double(config_.max_dropout)) {
        step = std::llround(by_interval);  // a gap, whatever the fit
      } else if (by_interval > 1.5 && fit_.n >= min_detect && any_run_ == 0 &&
                 std::llround(by_interval) == std::llround(position) &&
                 std::abs(position - std::round(position)) < 0.3) {
        step = std::llround(by_interval);
      }
    }
    if (step - 1 > static_cast<std::int64_t>(config_.max_dropout)) {
      clear_runs();
      skip_run_ = 0;
      size_ = 0;
      return start_fit(t, pulse_kind::gap);
    }
    if (step > 1 && skip_run_ >= 2 && even_intervals(t)) return recount_as_slowdown(t);

    const std::int64_t index = last.index + step;
    pulse_kind kind = step > 1 ? pulse_kind::dropout : pulse_kind::normal;
    skip_run_ = step > 1 ? skip_run_ + 1 : 0;

    bool outlier = false;
    int side = 0;
    if (fit_.valid && fit_.n >= 3 && sigma_prior_ > 0.0) {
      const double r = ns(t - fit_.time) - predict(index);
      const double dx = double(index - fit_.index) - fit_.xbar;
      // Capped at a tenth of the period: beyond that the fit is polluted, not the clock noisy,
      // and a threshold that grows with the pollution would never let go of it.
      const double sigma = std::min(fit_.sigma, 0.1 * fit_.slope);
      const double spread = sigma * std::sqrt(1.0 + 1.0 / double(fit_.n) + dx * dx / fit_.sxx);
      const double threshold = std::max(config_.outlier_sigmas * spread, ns(config_.min_outlier));
      if (std::abs(r) > threshold) {
        outlier = true;
        side = r > 0 ? 1 : -1;
      }
    }
    push({index, t, outlier, step > 1});
    next_index_ = index + 1;  // restart_from may re-count it below

    if (!outlier) {
      clear_runs();
    } else {
      if (side == run_side_) ++same_run_;
      else run_side_ = side, same_run_ = 1;
      ++any_run_;
      if (same_run_ >= config_.step_run || any_run_ >= 2 * config_.step_run) {
        // One side: the tempo changed. Both sides for a while: the noise grew. Either way the
        // old line is wrong; refit on the pulses since the run began.
        std::size_t keep = (same_run_ >= config_.step_run ? same_run_ : any_run_) + 1;
        // Dropouts seen shortly before the run were most likely the tempo change too (a drop
        // makes long intervals): re-count from before them.
        const std::size_t look = std::min(size_, keep + 2 * config_.step_run + 6);
        for (std::size_t back = 1; back <= look; ++back)
          if (at(size_ - back).skipped) keep = std::max(keep, std::min(size_, back + 1));
        restart_from(keep);
        skip_run_ = 0;
        kind = pulse_kind::tempo_change;
      } else if (kind == pulse_kind::normal) {
        kind = pulse_kind::outlier;
      }
    }
    refit();
    return {next_index_ - 1, kind};
  }

  /// The estimated tempo, or nullopt before two pulses of a fit and while the fit is no
  /// plausible tempo (see clock_estimator_config::max_bpm).
  std::optional<bpm> tempo() const noexcept {
    if (!fit_.valid) return std::nullopt;
    const double v = 60e9 / (fit_.slope * pulses_per_beat);
    if (!(v >= bpm::min_value && v <= config_.max_bpm && v <= bpm::max_value))
      return std::nullopt;  // bunched: not a tempo
    return bpm(v);
  }

  /// The estimated pulse period (1/24 beat), or nullopt before two pulses of a fit.
  std::optional<std::chrono::duration<double>> pulse_period() const noexcept {
    if (!fit_.valid) return std::nullopt;
    return std::chrono::duration<double>(fit_.slope * 1e-9);
  }

  /// The estimated time of pulse `index` on the fitted grid (past, present or future), latency
  /// removed: where the source's pulse `index` was (or will be) sent. nullopt without a fit.
  std::optional<time_point> pulse_time(std::int64_t index) const noexcept {
    if (!fit_.valid) return std::nullopt;
    return fit_.time + std::chrono::round<duration>(std::chrono::duration<double, std::nano>(predict(index)));
  }

  /// The estimated time of beat `beat` (pulse 24 * beat).
  std::optional<time_point> beat_time(std::int64_t beat) const noexcept { return pulse_time(beat * pulses_per_beat); }

  /// The fractional pulse position at time `t` on the fitted grid (the inverse of pulse_time).
  std::optional<double> pulse_position(time_point t) const noexcept {
    if (!fit_.valid) return std::nullopt;
    return double(fit_.index) + fit_.xbar + (ns(t - fit_.time) - fit_.ybar) / fit_.slope;
  }

  /// The fitted grid as a timeline (beat 0 = pulse 0), for a metronome to follow. Anchored at
  /// the newest pulse, so that the beat position stays continuous when the next fit is handed
  /// over with the newer anchor.
  std::optional<basic_timeline<Clock>> timeline() const noexcept {
    const auto t = pulse_time(fit_.index);
    const auto v = tempo();
    if (!t || !v) return std::nullopt;
    return basic_timeline<Clock>(*v, *t, beats(fit_.index, pulses_per_beat));
  }

  /// The index the next pulse will get if it comes on time: pulses counted since on_start,
  /// dropouts included (so pulse_count() / 24 is the current beat).
  std::int64_t pulse_count() const noexcept { return next_index_; }

  /// True when the fit holds at least `lock_pulses` pulses and is a plausible tempo: tempo and
  /// phase are trustworthy (tempo() and timeline() then have a value).
  bool locked() const noexcept { return fit_.valid && fit_.n >= config_.lock_pulses && tempo().has_value(); }

  /// Pulses in the current fit (outliers excluded).
  std::size_t fit_size() const noexcept { return fit_.valid ? fit_.n : 0; }

  /// The standard deviation of the arrival times around the fitted line (jitter plus
  /// quantization), once the fit has 8 pulses; zero before.
  std::chrono::duration<double> jitter() const noexcept { return std::chrono::duration<double>(sigma_prior_ * 1e-9); }

 private:
  struct entry {
    std::int64_t index;
    time_point time;
    bool outlier;  // kept out of the fit
    bool skipped;  // taken to follow missing pulses
  };
  // The fitted line, in ns relative to the newest pulse (index, time):
  // time(n) = time + ybar + slope * (n - index - xbar).
  struct fit {
    bool valid = false;
    std::size_t n = 0;
    std::int64_t index = 0;
    time_point time{};
    double xbar = 0, ybar = 0, slope = 0, sxx = 1, sigma = 0;
  };
  static constexpr std::size_t min_detect = 8;        // fit size before outliers are judged
  static constexpr double repeat_jitter_ratio = 6.0;  // period / jitter before repeats are judged

  static double ns(duration d) noexcept { return std::chrono::duration<double, std::nano>(d).count(); }
  double predict(std::int64_t index) const noexcept {
    return fit_.ybar + fit_.slope * (double(index - fit_.index) - fit_.xbar);
  }

  entry& at(std::size_t i) noexcept { return ring_[(head_ + i) % capacity]; }
  const entry& at(std::size_t i) const noexcept { return ring_[(head_ + i) % capacity]; }
  void push(entry e) noexcept {
    if (size_ == capacity) {
      ring_[head_] = e;
      head_ = (head_ + 1) % capacity;
    } else {
      at(size_++) = e;
    }
  }
  // Keeps only the newest `keep` pulses, all of them in the fit, counted as consecutive: the
  // dropouts seen among them were judged against the old tempo, and a dropout right at a tempo
  // change is far less likely than a misjudged interval.
  void restart_from(std::size_t keep) noexcept {
    keep = std::min(keep, size_);
    head_ = (head_ + (size_ - keep)) % capacity;
    size_ = keep;
    for (std::size_t i = 0; i < size_; ++i) {
      at(i).outlier = at(i).skipped = false;
      at(i).index = at(0).index + std::int64_t(i);
    }
    next_index_ = at(size_ - 1).index + 1;
    clear_runs();
  }
  void clear_runs() noexcept {
    run_side_ = 0;
    same_run_ = any_run_ = 0;
  }

  pulse_info start_fit(time_point t, pulse_kind kind) noexcept {
    const std::int64_t index = next_index_++;
    push({index, t, false, false});
    refit();
    return {index, kind};
  }

  // A repeat is told from a pulse by timing alone, so only where the timing is clear: a locked
  // fit whose jitter (quantization included) is under a sixth of the period, on which pulse
  // `index` at `t` would be more than half a period early. A pulse that early is then a
  // 3-sigma event at the very least (at JACK's 2.7 ms period and 120 BPM, 25 sigma).
  bool no_room_for_pulse(std::int64_t index, time_point t) const noexcept {
    if (!locked() || fit_.n < min_detect || !(fit_.slope > repeat_jitter_ratio * sigma_prior_)) return false;
    const double position = double(fit_.index) + fit_.xbar + (ns(t - fit_.time) - fit_.ybar) / fit_.slope;
    return double(index) - position > 0.5;
  }

  // Dropouts in a row are rare, and they rarely leave equal intervals: three long intervals in a
  // row, within 15 % of each other, are a tempo drop by more than 1.5x.
  bool even_intervals(time_point t) const noexcept {
    if (size_ < 3) return false;
    const double a = ns(at(size_ - 2).time - at(size_ - 3).time), b = ns(at(size_ - 1).time - at(size_ - 2).time),
                 c = ns(t - at(size_ - 1).time);
    const double lo = std::min({a, b, c}), hi = std::max({a, b, c});
    return lo > 0 && hi < 1.15 * lo;
  }
  // Re-count them as consecutive pulses. Re-count the pulses since the first long interval as consecutive
  // and refit on them alone.
  pulse_info recount_as_slowdown(time_point t) noexcept {
    restart_from(std::min<std::size_t>(std::size_t(skip_run_), size_ - 1) + 1);
    const std::int64_t index = at(size_ - 1).index + 1;
    push({index, t, false, false});
    next_index_ = index + 1;
    skip_run_ = 0;
    refit();
    return {index, pulse_kind::tempo_change};
  }

  // Least squares over the newest `window` inliers, recomputed from scratch (two passes over
  // centred values relative to the newest pulse: exact for integers, nothing accumulates).
  void refit() noexcept {
    const entry& last = at(size_ - 1);
    const std::size_t first = size_ > config_.window ? size_ - config_.window : 0;
    double sx = 0, sy = 0;
    std::size_t n = 0;
    for (std::size_t i = first; i < size_; ++i) {
      const entry& e = at(i);
      if (e.outlier) continue;
      sx += double(e.index - last.index);
      sy += ns(e.time - last.time);
      ++n;
    }
    if (n < 2) {
      fit_.valid = false;
      return;
    }
    const double xbar = sx / n, ybar = sy / n;
    double sxx = 0, sxy = 0, syy = 0;
    for (std::size_t i = first; i < size_; ++i) {
      const entry& e = at(i);
      if (e.outlier) continue;
      const double x = double(e.index - last.index) - xbar, y = ns(e.time - last.time) - ybar;
      sxx += x * x;
      sxy += x * y;
      syy += y * y;
    }
    const double slope = sxy / sxx;
    if (!(slope > 0.0)) {  // equal timestamps only: no tempo yet
      fit_.valid = false;
      return;
    }
    fit_ = {true, n, last.index, last.time, xbar, ybar, slope, sxx, fit_.sigma};
    if (n >= 8) sigma_prior_ = std::sqrt(std::max(0.0, syy - slope * sxy) / double(n - 2));
    fit_.sigma = sigma_prior_;
  }

  clock_estimator_config config_;
  std::array<entry, capacity> ring_{};
  std::size_t head_ = 0, size_ = 0;
  std::int64_t next_index_ = 0;
  fit fit_{};
  double sigma_prior_ = 0;  // ns; survives restarts so a short fit still judges outliers
  int run_side_ = 0;
  std::size_t same_run_ = 0, any_run_ = 0;
  std::int64_t skip_run_ = 0;  // consecutive intervals taken for dropouts, up to the newest pulse
};

}  // namespace tactus::midi
