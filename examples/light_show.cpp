// SPDX-License-Identifier: BSL-1.0
// light_show: LEDs flash and servos sway on a metronome. Each servo sways across a bar and back
// across the next, arriving on the downbeat (its lead early); LED 1 flashes on every downbeat,
// the others on their beat of the bar; half-way the tempo rises by half, exactly on a bar line.
//
//     light_show [--bpm 100] [--bars 8] [--servos 2] [--leds 4] [--lead MS] [--plot show.png]
//                [--sysfs pwmchip0:0 ...] [--pca9685 /dev/i2c-1] [--gpio gpiochip0:17 ...]
//
// Without hardware flags the servos and LEDs are recorded and shown in the terminal. --sysfs
// puts a servo on a sysfs PWM channel (one per flag), --pca9685 every servo and LED on a PCA9685
// board (servos from channel 0 up, LEDs from 15 down), --gpio an LED on a GPIO line (one per
// flag). Ctrl-C (SIGINT) or SIGTERM ends the show at once: servos to rest, LEDs off, exit 0. A
// bad option or a device that cannot be opened: one line on stderr, exit status 2.
#include <tactus/metronome.hpp>
#include <tactus/shutdown.hpp>
#include <tactus/sinks.hpp>
#include <tactus/task_group.hpp>
#if TACTUS_WITH_GPIOD_EXAMPLE
#include <tactus/sinks/gpiod.hpp>
#endif

#include "cli.hpp"
#include "light_show_view.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using tactus::beats;

struct options {
  double bpm = 100;
  long bars = 8;
  int servos = 2;
  int leds = 4;
  double lead_ms = 0;
  std::string plot, pca9685;
  std::vector<std::string> sysfs, gpio;
};

// "path:number" -> {path, number}
static std::pair<std::string, unsigned> split(const std::string& s) {
  const auto colon = s.rfind(':');
  return {s.substr(0, colon), static_cast<unsigned>(std::stoul(s.substr(colon + 1)))};
}

// Sways across a bar and back across the next, arriving on each downbeat (its lead early).
static asio::awaitable<void> sway(tactus::servo& s, tactus::metronome& m, bool reversed) {
  for (beats bar{0};; bar += beats{4}) {
    const bool out = (bar.whole() / 4) % 2 == (reversed ? 1 : 0);
    co_await s.move_between(out ? 150 : 30, m, bar, bar + beats{4}, tactus::ease::in_out);
  }
}

// The live view, 25 times a second, on one line of the terminal.
static asio::awaitable<void> live_view(tactus::metronome& m, const std::vector<std::unique_ptr<tactus::servo>>& servos,
                                       const std::vector<std::unique_ptr<tactus::led>>& leds) {
  asio::steady_timer timer{m.get_executor()};
  for (;;) {
    const auto p = m.position();
    std::printf("\r\033[K%s", light_show::view_line(p.whole() / 4, p.whole() % 4, servos, leds).c_str());
    std::fflush(stdout);
    timer.expires_after(40ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

int main(int argc, char** argv) try {
  CLI::App app{"light_show: LEDs flash and servos sway on a metronome", "light_show"};
  options o;
  app.add_option("--bpm", o.bpm, "tempo")->check(examples::finite_range(20, 300))->capture_default_str();
  app.add_option("--bars", o.bars, "bars to play, 0 = until Ctrl-C")
      ->check(examples::whole_range(0, 100000))
      ->capture_default_str();
  app.add_option("--servos", o.servos, "servos (recorded, or on --pca9685)")
      ->check(examples::whole_range(0, 16))
      ->capture_default_str();
  app.add_option("--leds", o.leds, "LEDs (recorded, or on --pca9685)")
      ->check(examples::whole_range(0, 16))
      ->capture_default_str();
  app.add_option("--lead", o.lead_ms, "servo lead in ms (their travel)")
      ->check(examples::finite_range(0, 500))
      ->capture_default_str();
  app.add_option("--plot", o.plot, "draw the servo trajectories to this PNG (gnuplot)")
      ->check(examples::writable_file());
  const auto path_number = CLI::Validator(
      [](std::string& s) -> std::string {
        const auto c = s.rfind(':');
        long long n = 0;
        if (c == std::string::npos || c == 0 || !CLI::detail::lexical_cast(s.substr(c + 1), n) || n < 0 || n > 4095)
          return "wants CHIP:NUMBER, got '" + s + "'";
        return {};
      },
      "CHIP:N");
  app.add_option("--sysfs", o.sysfs, "a servo on a sysfs PWM channel, CHIP:CHANNEL")->check(path_number);
  app.add_option("--pca9685", o.pca9685, "servos and LEDs on a PCA9685 on this I2C bus (0x40)");
  app.add_option("--gpio", o.gpio, "an LED on a GPIO line, CHIP:LINE")->check(path_number);
  if (auto status = examples::parse(app, argc, argv)) return *status;
#if !TACTUS_WITH_GPIOD_EXAMPLE
  if (!o.gpio.empty()) {
    std::fprintf(stderr, "light_show: --gpio: built without libgpiod (apt-get install libgpiod-dev, then rebuild)\n");
    return examples::usage_error;
  }
#endif
  if (!o.plot.empty() && std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "light_show: --plot needs gnuplot (Debian: gnuplot-nox)\n");
    return examples::usage_error;
  }

  asio::io_context io;
  tactus::shutdown sd{io.get_executor()};  // first: a signal from here on ends the show cleanly
  tactus::metronome m{io.get_executor(), tactus::bpm{o.bpm}, tactus::meter{4}};

  // --- the servos and LEDs, on their drivers ---
  std::optional<tactus::sinks::linux_i2c> bus;
  std::optional<tactus::sinks::pca9685<tactus::sinks::linux_i2c>> board;
  std::vector<tactus::sinks::recording_driver<light_show::clock>> recs(o.sysfs.empty() ? o.servos : o.sysfs.size());
  std::vector<tactus::sinks::recording_driver<light_show::clock>> led_recs(o.leds);
  std::vector<std::unique_ptr<tactus::servo>> servos;
  std::vector<std::unique_ptr<tactus::led>> leds;
  const tactus::servo_options so{.lead = std::chrono::microseconds(static_cast<long>(o.lead_ms * 1000))};
  try {
    if (!o.pca9685.empty()) {
      bus.emplace(o.pca9685);
      board.emplace(*bus);
    }
    for (std::size_t i = 0; i < recs.size(); ++i) {
      light_show::recorded d{{}, &recs[i]};
      if (!o.sysfs.empty()) {
        auto [chip, ch] = split(o.sysfs[i]);
        if (chip.find('/') == std::string::npos)  // "pwmchip0" or "0", as --gpio takes "gpiochip0" or "0"
          chip =
              "/sys/class/pwm/" + (chip.find_first_not_of("0123456789") == std::string::npos ? "pwmchip" + chip : chip);
        d.hardware = [p = std::make_shared<tactus::sinks::sysfs_pwm>(chip, ch)](double v) { p->set(v); };
      } else if (board) {
        d.hardware = [c = board->channel(static_cast<int>(i))](double v) mutable { c.set(v); };
      }
      servos.push_back(std::make_unique<tactus::servo>(io.get_executor(), d, so));
    }
#if TACTUS_WITH_GPIOD_EXAMPLE
    for (const auto& g : o.gpio) {
      auto [chip, line] = split(g);
      leds.push_back(std::make_unique<tactus::led>(io.get_executor(), tactus::sinks::gpio_line{chip, line}));
    }
#endif
    for (int i = 0; o.gpio.empty() && i < o.leds; ++i) {
      if (board) leds.push_back(std::make_unique<tactus::led>(io.get_executor(), board->led(15 - i)));
      else leds.push_back(std::make_unique<tactus::led>(io.get_executor(), std::ref(led_recs[i])));
    }
  } catch (const std::exception& e) {  // a missing device, no permission: one line, nothing left open
    std::fprintf(stderr, "light_show: %s\n", e.what());
    return examples::usage_error;
  }

  // --- the show ---
  tactus::task_group show{io.get_executor()};
  show.spawn(m.run());
  for (std::size_t i = 0; i < servos.size(); ++i) show.spawn(sway(*servos[i], m, i % 2 == 1));
  for (std::size_t k = 0; k < leds.size(); ++k)  // LED 1 on the downbeat, the others on beat k + 1
    show.spawn(leds[k]->flash_every(m, {.every = beats{4}, .length = beats{1, 4}, .phase = beats(k % 4)}));

  const bool terminal = ::isatty(STDOUT_FILENO);
  std::vector<std::pair<light_show::clock::time_point, bool>> grid;
  m.on_beat([&](const tactus::tick& t) {
    grid.emplace_back(t.scheduled, t.is_downbeat());
    if (t.bar * 4 + t.beat_in_bar == o.bars * 2) m.set_tempo(tactus::bpm{o.bpm * 1.5}, tactus::tempo_change::next_bar);
    if (o.bars && t.bar == o.bars) return sd.request();  // the last bar has been played
    if (terminal) return;
    std::printf("%s\n", light_show::view_line(t.bar, t.beat_in_bar, servos, leds).c_str());
    std::fflush(stdout);  // a line per beat, as it happens, into a log or a pipe
  });
  if (terminal) show.spawn(live_view(m, servos, leds));

  // --- the end: servos to rest, LEDs off (cleanups run last registered first) ---
  sd.on_cleanup("safe state shown", [&] {
    std::printf("%ssafe state: %s\n", terminal ? "\n" : "", light_show::view_line(0, 0, servos, leds).c_str() + 12);
  });
  sd.on_cleanup("LEDs off", [&] {
    for (auto& l : leds) l->off();
  });
  sd.on_cleanup("servos to rest", [&] {
    for (auto& s : servos) s->rest();
  });
  const auto t0 = light_show::clock::now();
  asio::co_spawn(io, sd.run(show), tactus::rethrow);
  io.run();
  std::fflush(stdout);
  if (!o.plot.empty() && !light_show::plot(o.plot, recs, grid, t0)) {
    std::fprintf(stderr, "light_show: gnuplot could not draw %s\n", o.plot.c_str());
    return 1;
  }
  return sd.status();
} catch (const std::exception& e) {
  std::fprintf(stderr, "light_show: %s\n", e.what());
  return 1;
}
