// SPDX-License-Identifier: BSL-1.0
// LEDs in virtual time: on/off/toggle, blinks and fades at their exact times, software PWM on a
// driver that only switches, flashes at a position and on every beat or bar with the lead,
// following a tempo change, latest-wins, every completion token and cancellation, and the LED
// going off when it is destroyed.
#include <tactus/metronome.hpp>
#include <tactus/sinks/led.hpp>
#include <tactus/sinks/recording_driver.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tp = mc::time_point;
using led = tactus::basic_led<mc>;
using metronome = tactus::basic_metronome<mc>;
using levels = tactus::sinks::recording_driver<mc>;
using switches = tactus::sinks::recording_driver<mc, bool>;
using tactus::beats;
using tactus::bpm;

namespace {

using tactus_test::poll;

tp at(std::chrono::nanoseconds d) { return tp(d); }

struct done {
  int calls = 0;
  std::error_code ec;
  auto handler() {
    return [this](std::error_code e) {
      ++calls;
      ec = e;
    };
  }
};

// (time, on) of a switch driver's events from `from` on.
template <class Rec>
std::vector<std::pair<tp, double>> trace(const Rec& rec, std::size_t from = 1) {
  std::vector<std::pair<tp, double>> out;
  for (std::size_t i = from; i < rec.events().size(); ++i)
    out.emplace_back(rec.events()[i].time, static_cast<double>(rec.events()[i].value));
  return out;
}

struct fixture {
  asio::io_context io;
  levels rec;
  switches sw;
  fixture() { mc::reset(); }
};

struct with_metronome : fixture {
  metronome m{io.get_executor(), bpm{120}, tactus::meter{4}};
  with_metronome() {
    asio::co_spawn(io, m.run(), tactus::rethrow);
    poll(io);
  }
  ~with_metronome() {
    m.stop();
    poll(io);
  }
};

}  // namespace

TEST_CASE("on, off, toggle and set are immediate and clamp a level out of 0..1") {
  fixture f;
  led l{f.io.get_executor(), std::ref(f.rec)};
  CHECK(f.rec.events().size() == 1);  // off, at construction
  l.on();
  CHECK(l.is_on());
  l.toggle();
  CHECK(l.level() == 0);
  l.toggle();
  CHECK(l.level() == 1);
  l.set(0.3);
  CHECK(l.level() == 0.3);
  l.set(7);
  CHECK(l.level() == 1);
  CHECK(l.clamped_count() == 1);
  const auto t = trace(f.rec);
  REQUIRE(t.size() == 5);
  CHECK(t[0].second == 1);
  CHECK(t[1].second == 0);
  CHECK(t[3].second == 0.3);
  CHECK(t[4].second == 1);
  CHECK_FALSE(l.software_pwm());
}

TEST_CASE("a blink goes on and off at exact times from its start") {
  fixture f;
  led l{f.io.get_executor(), std::ref(f.sw)};
  done d;
  tactus::testing::advance(f.io, 7ms);
  l.async_blink(3, 200ms, d.handler());
  tactus::testing::advance(f.io, 1s);
  CHECK(d.calls == 1);
  CHECK_FALSE(d.ec);
  const auto t = trace(f.sw);
  REQUIRE(t.size() == 6);
  for (int k = 0; k < 3; ++k) {
    CHECK(t[2 * k].first == at(7ms + 200ms * k));
    CHECK(t[2 * k].second == 1);
    CHECK(t[2 * k + 1].first == at(107ms + 200ms * k));
    CHECK(t[2 * k + 1].second == 0);
  }
  CHECK_THROWS_AS(l.async_blink(0, 1s, d.handler()), std::invalid_argument);
}

TEST_CASE("a fade on a level driver sends its trajectory at every update") {
  fixture f;
  led l{f.io.get_executor(), std::ref(f.rec)};
  done d;
  l.async_fade_to(1, 100ms, d.handler());
  tactus::testing::advance(f.io, 1s);
  CHECK(d.calls == 1);
  const auto t = trace(f.rec);
  REQUIRE(t.size() == 5);
  for (int k = 1; k <= 5; ++k) {
    CHECK(t[k - 1].first == at(20ms * k));
    CHECK(t[k - 1].second == Catch::Approx(0.2 * k));
  }
}

TEST_CASE("on a driver that only switches, a level between 0 and 1 is software PWM") {
  fixture f;
  led l{f.io.get_executor(), std::ref(f.sw), {.pwm_hz = 100}};
  CHECK(l.software_pwm());
  SECTION("a steady level: on for that fraction of each 10 ms cycle") {
    l.set(0.25);
    tactus::testing::advance(f.io, 29ms);
    l.off();
    const auto t = trace(f.sw);
    REQUIRE(t.size() == 7);
    for (int k = 0; k < 3; ++k) {
      CHECK(t[2 * k].first == at(10ms * k));
      CHECK(t[2 * k].second == 1);
      CHECK(t[2 * k + 1].first == at(10ms * k + 2500us));
      CHECK(t[2 * k + 1].second == 0);
    }
    CHECK(t[6].first == at(29ms));
    const auto n = f.sw.events().size();
    tactus::testing::advance(f.io, 1s);
    CHECK(f.sw.events().size() == n);  // off: the PWM timer has stopped
  }
  SECTION("a fade: each cycle's on-time follows the level") {
    done d;
    l.async_fade_to(1, 100ms, d.handler());
    tactus::testing::advance(f.io, 200ms);
    CHECK(d.calls == 1);
    CHECK(l.level() == 1);
    // The PWM starts at the first update (20 ms, level 0.2): on 2 ms of each 10 ms cycle until
    // the level rises to 0.4 at 40 ms, and so on; at 100 ms the LED is fully on.
    const auto t = trace(f.sw);
    CHECK(t[0].first == at(20ms));
    CHECK(t[1].first == at(22ms));
    CHECK(t[3].first == at(32ms));
    CHECK(t[5].first == at(44ms));
    CHECK(t.back().first == at(100ms));
    CHECK(t.back().second == 1);
  }
}

TEST_CASE("a flash at a position goes on and off lead early, exactly") {
  with_metronome f;
  led l{f.io.get_executor(), std::ref(f.sw), {.lead = 50ms}};  // a tenth of a beat at 120 BPM
  done d;
  l.async_flash(f.m, beats{2}, beats{1, 2}, d.handler());  // beat 2 = 1 s, off at 1.25 s
  tactus::testing::advance(f.io, 2s);
  CHECK(d.calls == 1);
  const auto t = trace(f.sw);
  REQUIRE(t.size() == 2);
  CHECK(t[0].first == at(950ms));
  CHECK(t[0].second == 1);
  CHECK(t[1].first == at(1200ms));
  CHECK(t[1].second == 0);
}

TEST_CASE("flashes on every bar, off a tenth of a beat after the downbeat, following a tempo change") {
  with_metronome f;
  led l{f.io.get_executor(), std::ref(f.sw)};
  done d;
  l.async_flash_every(f.m, {.every = beats{4}, .length = beats{1, 10}, .count = 3}, d.handler());
  tactus::testing::advance(f.io, 1s);
  f.m.set_tempo(bpm{60}, tactus::tempo_change::next_bar);  // from the bar line at 2 s
  tactus::testing::advance(f.io, 20s);
  CHECK(d.calls == 1);
  CHECK_FALSE(d.ec);
  const auto t = trace(f.sw);
  REQUIRE(t.size() == 6);
  CHECK(t[0].first == at(0ms));  // bar 0: the pattern starts on the position it is called at
  CHECK(t[1].first == at(50ms));
  CHECK(t[2].first == at(2s));  // bar 1, at 60 BPM from here: a tenth of a beat is 100 ms
  CHECK(t[3].first == at(2100ms));
  CHECK(t[4].first == at(6s));
  CHECK(t[5].first == at(6100ms));
  SECTION("until cancelled, on every beat") {
    asio::cancellation_signal sig;
    l.async_flash_every(f.m, {.every = beats{1}, .length = beats{1, 4}},
                        asio::bind_cancellation_slot(sig.slot(), d.handler()));
    tactus::testing::advance(f.io, 9500ms);  // beats at 21 .. 30 s
    sig.emit(asio::cancellation_type::terminal);
    poll(f.io);
    CHECK(d.calls == 2);
    CHECK(d.ec == asio::error::operation_aborted);
    CHECK(f.sw.events().size() == 1 + 6 + 20);  // 10 flashes, each on and off
  }
}

TEST_CASE("latest wins on an LED: on() ends a blink, a fade ends a flash pattern") {
  with_metronome f;
  led l{f.io.get_executor(), std::ref(f.rec)};
  done blink, flashes;
  l.async_blink(10, 100ms, blink.handler());
  tactus::testing::advance(f.io, 120ms);
  l.on();
  poll(f.io);
  CHECK(blink.calls == 1);
  CHECK(blink.ec == asio::error::operation_aborted);
  const auto n = f.rec.events().size();
  tactus::testing::advance(f.io, 1s);
  CHECK(f.rec.events().size() == n);
  l.async_flash_every(f.m, {}, flashes.handler());
  tactus::testing::advance(f.io, 1s);
  l.async_fade_to(0, 100ms, blink.handler());
  poll(f.io);
  CHECK(flashes.calls == 1);
  CHECK(flashes.ec == asio::error::operation_aborted);
}

TEST_CASE("destroying an LED aborts what runs and switches it off") {
  fixture f;
  done d;
  {
    led l{f.io.get_executor(), std::ref(f.sw)};
    l.set(0.5);  // software PWM running
    l.async_blink(100, 100ms, d.handler());
    tactus::testing::advance(f.io, 20ms);
    CHECK(l.is_on());
  }
  poll(f.io);
  CHECK(d.calls == 1);
  CHECK(d.ec == asio::error::operation_aborted);
  CHECK(f.sw.events().back().value == false);
  const auto n = f.sw.events().size();
  tactus::testing::advance(f.io, 1s);
  CHECK(f.sw.events().size() == n);
}

namespace {
struct token_fixture {
  asio::io_context io;
  switches sw;
  std::optional<led> l;
  token_fixture() {
    mc::reset();
    l.emplace(io.get_executor(), std::ref(sw));
  }
};
}  // namespace

TEST_CASE("a blink completes with every completion token and aborts on every cancellation") {
  auto start = [](token_fixture& f, auto&& token) {
    return f.l->async_blink(2, 100ms, std::forward<decltype(token)>(token));
  };
  auto drive = [](token_fixture& f) { tactus::testing::advance(f.io, 1s); };
  tactus_test::completes_with_every_token<token_fixture>(start, drive,
                                                         [](token_fixture& f) { CHECK(f.sw.events().size() == 5); });
  tactus_test::aborts_on_every_cancellation<token_fixture>(
      start, [](token_fixture& f) { tactus::testing::advance(f.io, 30ms); }, drive,
      [](token_fixture& f) { f.l.reset(); });
}
