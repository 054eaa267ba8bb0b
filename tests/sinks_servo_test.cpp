// SPDX-License-Identifier: BSL-1.0
// Servos in virtual time: the exact value at every update of a move in time, at a speed and in
// beats (across a tempo change), easing, limits, the lead, latest-wins, cancellation of every
// kind and through every completion token, driver errors, the safe state, and the batch: one
// timer for all the servos of a rate, nothing when none moves.
#include <tactus/metronome.hpp>
#include <tactus/sinks/recording_driver.hpp>
#include <tactus/sinks/servo.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tp = mc::time_point;
using servo = tactus::basic_servo<mc>;
using metronome = tactus::basic_metronome<mc>;
using recorder = tactus::sinks::recording_driver<mc>;
using tactus::beats;
using tactus::bpm;
using tactus::move_result;

namespace {

using tactus_test::poll;

tp at(std::chrono::nanoseconds d) { return tp(d); }

struct result {
  int calls = 0;
  std::error_code ec;
  move_result r;
  auto handler() {
    return [this](std::error_code e, move_result m) {
      ++calls;
      ec = e;
      r = m;
    };
  }
};

// The events of `rec` from `from` on, as (time, value) pairs.
std::vector<std::pair<tp, double>> trace(const recorder& rec, std::size_t from = 0) {
  std::vector<std::pair<tp, double>> out;
  for (std::size_t i = from; i < rec.events().size(); ++i)
    out.emplace_back(rec.events()[i].time, rec.events()[i].value);
  return out;
}

struct fixture {
  asio::io_context io;
  recorder rec;
  fixture() { mc::reset(); }
};

}  // namespace

TEST_CASE("a timed move sends its trajectory at every update of the rate and its target exactly at its end") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec)};
  REQUIRE(f.rec.events().size() == 1);  // the rest position, at construction
  CHECK(f.rec.events()[0].value == 90);
  result res;
  SECTION("from a grid point") {
    s.async_move_to(120, 100ms, res.handler());
    tactus::testing::advance(f.io, 1s);
    const auto t = trace(f.rec, 1);
    REQUIRE(t.size() == 5);  // 20, 40, 60, 80 ms, and the end at 100 ms
    for (int k = 1; k <= 5; ++k) {
      CHECK(t[k - 1].first == at(20ms * k));
      CHECK(t[k - 1].second == Catch::Approx(90 + 30 * (20.0 * k / 100)).margin(1e-9));
    }
  }
  SECTION("from between grid points: updates stay on the shared grid, the end on its own time") {
    tactus::testing::advance(f.io, 5ms);
    s.async_move_to(120, 100ms, res.handler());
    tactus::testing::advance(f.io, 1s);
    const auto t = trace(f.rec, 1);
    REQUIRE(t.size() == 6);  // 20 .. 100 ms, then 105 ms
    for (int k = 1; k <= 5; ++k) {
      CHECK(t[k - 1].first == at(20ms * k));
      CHECK(t[k - 1].second == Catch::Approx(90 + 30 * ((20.0 * k - 5) / 100)).margin(1e-9));
    }
    CHECK(t[5].first == at(105ms));
    CHECK(t[5].second == 120);
  }
  CHECK(res.calls == 1);
  CHECK_FALSE(res.ec);
  CHECK(res.r.target == 120);
  CHECK_FALSE(res.r.clamped());
  CHECK(s.get() == 120);
  CHECK_FALSE(s.moving());
}

TEST_CASE("a move at a speed takes the time its distance needs") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec)};
  result res;
  s.async_move_to(30, tactus::speed{120}, res.handler());  // 60 degrees at 120/s: 500 ms
  tactus::testing::advance(f.io, 499ms);
  CHECK(res.calls == 0);
  tactus::testing::advance(f.io, 1ms);
  poll(f.io);
  CHECK(res.calls == 1);
  CHECK(f.rec.events().back().time == at(500ms));
  CHECK(f.rec.events().back().value == 30);
  CHECK(f.rec.events()[f.rec.events().size() - 2].value == Catch::Approx(90 - 60 * 480.0 / 500).margin(1e-9));
  CHECK_THROWS_AS(s.async_move_to(90, tactus::speed{0}, res.handler()), std::invalid_argument);
  CHECK_THROWS_AS(s.async_move_to(std::nan(""), 1s, res.handler()), std::invalid_argument);
}

TEST_CASE("easing shapes the trajectory: ease in-out and a user function") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec), {.min = 0, .max = 180, .rest = 0}};
  result res;
  SECTION("ease in-out") {
    s.async_move_to(100, 200ms, tactus::ease::in_out, res.handler());
    tactus::testing::advance(f.io, 1s);
    const auto t = trace(f.rec, 1);
    REQUIRE(t.size() == 10);
    for (int k = 1; k < 10; ++k)
      CHECK(t[k - 1].second == Catch::Approx(100 * tactus::ease::in_out(k / 10.0)).margin(1e-9));
    CHECK(t[4].second == Catch::Approx(50));  // half-way at half time
    CHECK(t[0].second < 100 * 0.1);           // slower than linear at the start
  }
  SECTION("a user function; one that overshoots stays within the limits") {
    s.async_move_to(
        180, 100ms, [](double x) { return 1.5 * x; }, res.handler());
    tactus::testing::advance(f.io, 1s);
    const auto t = trace(f.rec, 1);
    REQUIRE(t.size() == 5);
    CHECK(t[0].second == Catch::Approx(180 * 1.5 * 0.2));
    CHECK(t[3].second == 180);  // 1.5 * 0.8 * 180 = 216, held at the limit
    for (const auto& e : f.rec.events()) CHECK(e.value <= 180);
  }
  SECTION("an easing that returns nan ends the move with bad_easing, sending nothing") {
    s.async_move_to(
        180, 100ms, [](double) { return std::nan(""); }, res.handler());
    tactus::testing::advance(f.io, 1s);
    CHECK(res.ec == tactus::sinks::errc::bad_easing);
    CHECK(f.rec.events().size() == 1);
    CHECK(s.error_count() == 1);
  }
  CHECK(res.calls == 1);
}

TEST_CASE("an out-of-range target is clamped, reported and never sent") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec), {.min = 20, .max = 160, .rest = 90}};
  result res;
  s.async_move_to(200, 100ms, res.handler());
  tactus::testing::advance(f.io, 1s);
  CHECK(res.r.target == 160);
  CHECK(res.r.requested == 200);
  CHECK(res.r.clamped());
  CHECK(s.clamped_count() == 1);
  for (const auto& e : f.rec.events()) CHECK((e.value >= 20 && e.value <= 160));
  CHECK(f.rec.events().back().value == 160);
  const auto r = s.set(-5);
  CHECK(r.clamped());
  CHECK(f.rec.events().back().value == 20);
  CHECK(s.clamped_count() == 2);
  CHECK_THROWS_AS(servo(f.io.get_executor(), std::ref(f.rec), {.min = 10, .max = 5}), std::invalid_argument);
  CHECK_THROWS_AS(servo(f.io.get_executor(), std::ref(f.rec), {.rest = 200}), std::invalid_argument);
  CHECK_THROWS_AS(servo(f.io.get_executor(), std::ref(f.rec), {.rate_hz = 0}), std::invalid_argument);
}

TEST_CASE("latest wins: a new move on the same servo aborts the running one and starts from where it is") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec)};
  result first, second;
  s.async_move_to(180, 200ms, first.handler());
  tactus::testing::advance(f.io, 100ms);  // at 135
  CHECK(s.get() == Catch::Approx(135));
  s.async_move_to(0, 100ms, second.handler());
  poll(f.io);
  CHECK(first.calls == 1);
  CHECK(first.ec == asio::error::operation_aborted);
  tactus::testing::advance(f.io, 1s);
  CHECK(second.calls == 1);
  CHECK_FALSE(second.ec);
  const auto t = trace(f.rec, 1);
  // 20..100 ms of the first (up to 135), then 120..200 ms of the second from 135 down to 0.
  REQUIRE(t.size() == 10);
  CHECK(t[5].first == at(120ms));
  CHECK(t[5].second == Catch::Approx(135 - 135 * 0.2));
  CHECK(t[9].first == at(200ms));
  CHECK(t[9].second == 0);
  SECTION("set() too") {
    s.async_move_to(90, 1s, first.handler());
    s.set(45);
    poll(f.io);
    CHECK(first.calls == 2);
    CHECK(first.ec == asio::error::operation_aborted);
    CHECK(s.get() == 45);
  }
}

TEST_CASE("a cancelled move stops where it is, whatever the cancellation type") {
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    fixture f;
    servo s{f.io.get_executor(), std::ref(f.rec)};
    asio::cancellation_signal sig;
    result res;
    s.async_move_to(180, 200ms, asio::bind_cancellation_slot(sig.slot(), res.handler()));
    tactus::testing::advance(f.io, 50ms);
    sig.emit(type);
    poll(f.io);
    CHECK(res.calls == 1);
    CHECK(res.ec == asio::error::operation_aborted);
    const auto n = f.rec.events().size();
    tactus::testing::advance(f.io, 1s);
    CHECK(f.rec.events().size() == n);  // no more updates
    CHECK(s.get() == Catch::Approx(90 + 90 * 40.0 / 200));
  }
}

namespace {
struct token_fixture {
  asio::io_context io;
  recorder rec;
  std::optional<servo> s;
  token_fixture() {
    mc::reset();
    s.emplace(io.get_executor(), std::ref(rec));
  }
};
}  // namespace

TEST_CASE("a move completes with every completion token and aborts on every cancellation") {
  auto start = [](token_fixture& f, auto&& token) {
    return f.s->async_move_to(120, 100ms, std::forward<decltype(token)>(token));
  };
  auto drive = [](token_fixture& f) { tactus::testing::advance(f.io, 200ms); };
  tactus_test::completes_with_every_token<token_fixture>(start, drive, [](token_fixture& f, auto... v) {
    CHECK(f.s->get() == 120);
    if constexpr (sizeof...(v) == 1) CHECK(((v.target == 120) && ...));
  });
  tactus_test::aborts_on_every_cancellation<token_fixture>(
      start, [](token_fixture& f) { tactus::testing::advance(f.io, 30ms); }, drive,
      [](token_fixture& f) { f.s.reset(); });
}

TEST_CASE("a move in beats follows a tempo change made while it runs and ends exactly on its beat") {
  fixture f;
  metronome m{f.io.get_executor(), bpm{120}};
  asio::co_spawn(f.io, m.run(), tactus::rethrow);
  poll(f.io);
  servo s{f.io.get_executor(), std::ref(f.rec), {.rest = 0}};
  result res;
  s.async_move_to(160, m, beats{4}, res.handler());  // beats 0 to 4: 2 s at 120 BPM
  tactus::testing::advance(f.io, 1s);                // beat 2
  CHECK(s.get() == Catch::Approx(80));
  m.set_tempo(bpm{60});  // the last 2 beats take 2 s
  tactus::testing::advance(f.io, 3s);
  REQUIRE(res.calls == 1);
  CHECK_FALSE(res.ec);
  const auto t = trace(f.rec, 1);
  // Every update's value is the position at its time, 40 deg per beat: 2 beats a second up to
  // the change at 1 s (beat 2), 1 beat a second after it.
  auto position = [](tp time) {
    const double s = std::chrono::duration<double>(time.time_since_epoch()).count();
    return s <= 1 ? 2 * s : 2 + (s - 1);
  };
  for (const auto& [time, v] : t) CHECK(v == Catch::Approx(40 * position(time)).margin(1e-6));
  CHECK(t.back().first == at(3s));  // exactly on beat 4, under the new tempo
  CHECK(t.back().second == 160);
  CHECK(t[t.size() - 2].first == at(2980ms));
  CHECK(t.size() == 150);  // 50 updates at 120 BPM, 99 at 60 BPM, the end
  m.stop();
  poll(f.io);
}

TEST_CASE("a move in beats from a callback counts from that tick, and ends when its metronome stops") {
  fixture f;
  metronome m{f.io.get_executor(), bpm{120}};
  servo s{f.io.get_executor(), std::ref(f.rec), {.rest = 0}};
  result res;
  m.on_beat([&](const metronome::tick_type& t) {
    if (t.index == 2) s.async_move_to(100, m, beats{1, 2}, res.handler());
  });
  asio::co_spawn(f.io, m.run(), tactus::rethrow);
  tactus::testing::advance(f.io, 2s);
  REQUIRE(res.calls == 1);
  CHECK(f.rec.events().back().time == at(1250ms));  // beat 2 plus half a beat
  CHECK(f.rec.events().back().value == 100);
  SECTION("stop") {
    s.async_move_to(0, m, beats{4}, res.handler());
    tactus::testing::advance(f.io, 500ms);
    m.stop();
    tactus::testing::advance(f.io, 10ms);
    CHECK(res.calls == 2);
    CHECK(res.ec == asio::error::operation_aborted);
  }
  m.stop();
  poll(f.io);
}

TEST_CASE("a lead moves everything timed to a position earlier by exactly the lead") {
  fixture f;
  metronome m{f.io.get_executor(), bpm{120}};
  asio::co_spawn(f.io, m.run(), tactus::rethrow);
  poll(f.io);
  // 50 ms is a tenth of a beat at 120 BPM, an exact position (see the lead's comment in servo.hpp).
  servo s{f.io.get_executor(), std::ref(f.rec), {.rest = 0, .lead = 50ms}};
  CHECK(s.lead() == 50ms);
  result res;
  SECTION("move_between: leaves lead before `from`, arrives lead before `to`, sampled lead ahead") {
    s.async_move_between(100, m, beats{1}, beats{2}, res.handler());  // 500 .. 1000 ms
    tactus::testing::advance(f.io, 449ms);
    CHECK(s.get() == 0);  // holds still until its start
    tactus::testing::advance(f.io, 2s);
    REQUIRE(res.calls == 1);
    const auto t = trace(f.rec, 1);
    // Updates on the grid from 460 ms, each sampled at t + 50 ms: position (t + 50 ms) - 1 beat.
    CHECK(t.front().first == at(460ms));
    CHECK(t.front().second == Catch::Approx(100 * (510.0 - 500) / 500));
    for (std::size_t i = 0; i + 1 < t.size(); ++i) {
      const double x =
          (std::chrono::duration<double, std::milli>(t[i].first.time_since_epoch()).count() + 50 - 500) / 500;
      CHECK(t[i].second == Catch::Approx(100 * x).margin(1e-6));
    }
    CHECK(t.back().first == at(950ms));
    CHECK(t.back().second == 100);
  }
  SECTION("back to back, the moves join seamlessly") {
    result second;
    s.async_move_between(100, m, beats{1}, beats{2}, res.handler());
    tactus::testing::advance(f.io, 950ms);
    s.async_move_between(0, m, beats{2}, beats{3}, second.handler());
    tactus::testing::advance(f.io, 1s);
    CHECK(res.calls == 1);
    CHECK_FALSE(res.ec);
    CHECK(second.calls == 1);
    CHECK(f.rec.events().back().time == at(1450ms));
  }
  SECTION("a timed move: sampled lead ahead, done lead early") {
    s.async_move_to(100, 200ms, res.handler());
    tactus::testing::advance(f.io, 1s);
    const auto t = trace(f.rec, 1);
    CHECK(t.front().second == Catch::Approx(100 * 70.0 / 200));
    CHECK(t.back().first == at(150ms));
    CHECK(t.back().second == 100);
  }
  SECTION("the driver's declared delay is the default lead") {
    recorder slow;
    slow.set_lead_time(25ms);
    servo s2{f.io.get_executor(), std::ref(slow)};
    CHECK(s2.lead() == 25ms);
  }
  m.stop();
  poll(f.io);
}

TEST_CASE("a driver that fails ends the move with its error, counted") {
  fixture f;
  servo s{f.io.get_executor(), std::ref(f.rec)};
  result res;
  s.async_move_to(180, 100ms, res.handler());
  tactus::testing::advance(f.io, 30ms);
  f.rec.fail_sets(true);
  tactus::testing::advance(f.io, 100ms);
  CHECK(res.calls == 1);
  CHECK(res.ec == std::errc::io_error);
  CHECK(s.error_count() == 1);
  CHECK(s.get() == Catch::Approx(90 + 90 * 0.2));  // the last value that was sent
  CHECK_THROWS_AS(s.set(10), std::system_error);
}

TEST_CASE("destroying a servo aborts its move and sends it to rest") {
  fixture f;
  result res;
  {
    servo s{f.io.get_executor(), std::ref(f.rec), {.rest = 45}};
    s.async_move_to(180, 1s, res.handler());
    tactus::testing::advance(f.io, 100ms);
  }
  poll(f.io);
  CHECK(res.calls == 1);
  CHECK(res.ec == asio::error::operation_aborted);
  CHECK(f.rec.events().back().value == 45);
  const auto n = f.rec.events().size();
  tactus::testing::advance(f.io, 1s);
  CHECK(f.rec.events().size() == n);
  SECTION("or leaves it where it is, when asked") {
    { servo s{f.io.get_executor(), std::ref(f.rec), {.rest_at_start = false, .rest_at_close = false}}; }
    CHECK(f.rec.events().size() == n);
  }
}

TEST_CASE("servos of one rate move in one batch on one timer; a servo at rest costs nothing") {
  fixture f;
  constexpr int n = 200;
  std::vector<recorder> recs(n);
  std::vector<std::unique_ptr<servo>> servos;
  for (int i = 0; i < n; ++i) servos.push_back(std::make_unique<servo>(f.io.get_executor(), std::ref(recs[i])));
  servo other_rate{f.io.get_executor(), std::ref(f.rec), {.rate_hz = 40}};
  auto batch = tactus::sinks::detail::batch_for<mc>(f.io.get_executor(), 20ms);
  const auto wakeups = batch->wakeups();
  int done = 0;
  for (int i = 0; i < n; ++i)
    servos[i]->async_move_to(i % 180, 1s, [&](std::error_code ec, move_result) { done += !ec; });
  other_rate.async_move_to(0, 1s, [&](std::error_code ec, move_result) { done += !ec; });
  CHECK(batch->size() == n);  // the 40 Hz servo is in a batch of its own
  tactus::testing::advance(f.io, 2s);
  CHECK(done == n + 1);
  CHECK(batch->wakeups() - wakeups == 50);  // one per grid point for all of them; the ends fall on the grid
  for (int i = 0; i < n; ++i) {
    REQUIRE(recs[i].events().size() == 51);
    CHECK(recs[i].events()[25].time == at(500ms));  // every servo updated at the same grid time
  }
  CHECK(f.rec.events()[1].time == at(25ms));
  const auto idle = batch->wakeups();
  tactus::testing::advance(f.io, 10s);
  CHECK(batch->wakeups() == idle);  // nothing moves: no wake-up at all
  CHECK(batch->size() == 0);
}

TEST_CASE("a move awaited in a metronome callback lets the grid go on, and stays cancellable") {
  fixture f;
  metronome m{f.io.get_executor(), bpm{120}, tactus::meter{4}};
  servo s{f.io.get_executor(), std::ref(f.rec)};
  std::vector<std::int64_t> beats_heard;
  std::vector<double> arrived;
  m.on_beat([&](const metronome::tick_type& t) { beats_heard.push_back(t.index); });
  m.on_bar([&](const metronome::tick_type& t) -> asio::awaitable<void> {
    try {
      const auto r = co_await s.move_to(t.bar % 2 ? 30 : 150, m, beats{4});  // a whole bar
      arrived.push_back(r.target);
    } catch (const std::system_error&) {  // replaced by the section's move (latest wins)
    }
  });
  asio::co_spawn(f.io, m.run(), tactus::rethrow);
  tactus::testing::advance(f.io, 6s);  // three bars
  CHECK(beats_heard.size() == 13);     // 0 .. 12: none held up or skipped by the awaiting callbacks
  CHECK(m.skipped_count() == 0);
  REQUIRE(arrived.size() == 3);
  CHECK(arrived[0] == 150);
  CHECK(arrived[1] == 30);
  CHECK(f.rec.events()[100].time == at(2s));  // the first arrived exactly on the bar line
  CHECK(f.rec.events()[100].value == 150);
  SECTION("cancellation through the callback's own slot still reaches the move") {
    asio::cancellation_signal sig;
    result res;
    s.async_move_to(90, m, beats{8}, asio::bind_cancellation_slot(sig.slot(), res.handler()));
    tactus::testing::advance(f.io, 1s);
    sig.emit(asio::cancellation_type::terminal);
    poll(f.io);
    CHECK(res.calls == 1);
    CHECK(res.ec == asio::error::operation_aborted);
  }
  m.stop();
  poll(f.io);
}
