// SPDX-License-Identifier: BSL-1.0
// The native JACK backend's arithmetic and realtime schedule, without a server: which frame a
// time falls on, which cycle writes a scheduled message and at which offset, late and immediate
// messages, a cancel (panic), a full port buffer, repeated cycles and the 32-bit frame counter.
#include <tactus/midi/jack/cycle.hpp>
#include <tactus/midi/jack/schedule.hpp>
#include <tactus/midi/message.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using jack::cycle;
using jack::rt_event;
using jack::rt_schedule;

namespace {

// 128 frames at 48 kHz: 2666.67 us; JACK's DLL reports whole microseconds.
cycle cycle_at(std::int64_t k) {
  const std::int64_t start = 1'000'000 + k * 2667;
  return cycle{1'000 + k * 128, 128, start, start + 2667};
}

cycle::time_point us(std::int64_t u) { return cycle::from_usecs(u); }

rt_event event_at(const message& m, cycle::time_point t, std::uint64_t seq) {
  rt_event e;
  e.what = rt_event::kind::at;
  e.time_ns = cycle::to_nanos(t);
  e.seq = seq;
  const auto b = m.bytes();
  e.size = std::uint16_t(b.size());
  std::copy(b.begin(), b.end(), e.bytes.begin());
  return e;
}

// Sent at once, at `sent`.
rt_event event_now(const message& m, cycle::time_point sent, std::uint64_t seq) {
  auto e = event_at(m, sent, seq);
  e.what = rt_event::kind::now;
  return e;
}

struct written {
  std::uint32_t offset;
  message msg;
  bool operator==(const written&) const = default;
};

// One cycle of `s`, capturing what it writes; `room` writes succeed, then the buffer is full.
std::vector<written> run(rt_schedule& s, const cycle& c, std::size_t room = 1000) {
  std::vector<written> out;
  s.run_cycle(c, [&](std::uint32_t offset, std::span<const std::uint8_t> b) {
    if (out.size() == room) return false;
    out.push_back({offset, *message::from_bytes(b)});
    return true;
  });
  return out;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<written> {
  static std::string convert(const written& w) { return std::to_string(w.offset) + ": " + w.msg.to_string(); }
};
}  // namespace Catch

TEST_CASE("a time falls on the frame of the cycle that covers it") {
  const auto c = cycle_at(0);  // frames 1000..1127, times [1'000'000 us, 1'002'667 us)
  CHECK(c.offset_of(c.start()) == 0);
  CHECK(c.place(c.start()) == cycle::placement::inside);
  CHECK(c.place(c.start() - 1ns) == cycle::placement::past);
  CHECK(c.place(c.end()) == cycle::placement::future);
  CHECK(c.offset_of(c.end() - 1ns) == 127);
  // floor((t - start) * 128 / 2667 us): 1000 us -> 47.99 -> 47; 1001 us -> 48.04 -> 48.
  CHECK(c.offset_of(us(1'001'000)) == 47);
  CHECK(c.offset_of(us(1'001'001)) == 48);
  CHECK(c.offset_of(c.start() - 1s) == 0);
  // Every offset's own time falls on that offset, and the time just before it on the previous.
  for (std::uint32_t f = 0; f < 128; ++f) {
    INFO(f);
    CHECK(c.offset_of(c.time_of_offset(f)) == f);
    if (f) CHECK(c.offset_of(c.time_of_offset(f) - 1ns) == f - 1);
  }
  CHECK(c.time_of_frame(1000) == c.start());
  CHECK(c.time_of_frame(1128) == c.end());
  CHECK(c.time_of_frame(1064) == us(1'000'000) + 1'333'500ns);
  CHECK_FALSE(cycle{}.valid());
  CHECK(cycle{}.offset_of(us(5)) == 0);
}

TEST_CASE("frame counters widen across the 32-bit wrap, and a repeated cycle is told") {
  jack::frame_widener widen;
  CHECK(widen(0xFFFFFF00u) == 0xFFFFFF00ll);
  CHECK(widen(0xFFFFFF80u) == 0xFFFFFF80ll);
  CHECK(widen(0x00000000u) == 0x100000000ll);
  CHECK(widen(0x00000080u) == 0x100000080ll);
  CHECK(widen(0x00000080u) == 0x100000080ll);  // the same cycle again: no wrap

  jack::repeat_detector r;
  CHECK_FALSE(r.repeated(1000));
  CHECK_FALSE(r.repeated(1128));
  CHECK(r.repeated(1128));
  CHECK_FALSE(r.repeated(1256));
}

TEST_CASE("scheduled messages are written at the frame where their time falls") {
  rt_schedule s(16);
  const auto c0 = cycle_at(0), c1 = cycle_at(1), c2 = cycle_at(2);
  const auto on = message::note_on(0, 60, 100), off = message::note_off(0, 60), clk = message::clock();
  // Given out of order: the schedule sorts them by time.
  s.take(event_at(off, c1.time_of_offset(100), 1));
  s.take(event_at(on, c0.time_of_offset(5), 2));
  s.take(event_at(clk, c1.time_of_offset(3), 3));
  s.take(event_at(clk, c2.end() + 1ms, 4));
  CHECK(s.size() == 4);
  CHECK(run(s, c0) == std::vector<written>{{5, on}});
  CHECK(run(s, c1) == std::vector<written>{{3, clk}, {100, off}});
  CHECK(run(s, c2).empty());
  CHECK(s.size() == 1);
  CHECK(s.late() == 0);
  CHECK(s.retired() == 3);

  SECTION("same time: the order sent") {
    rt_schedule t(4);
    t.take(event_at(on, c0.time_of_offset(7), 2));
    t.take(event_at(clk, c0.time_of_offset(7), 1));
    CHECK(run(t, c0) == std::vector<written>{{7, clk}, {7, on}});
  }
}

TEST_CASE("late messages go at frame 0 and are counted, messages sent at once are not, and none overtakes") {
  rt_schedule s(16);
  const auto c = cycle_at(10);
  const auto a = message::control_change(0, 1, 1), b = message::control_change(0, 1, 2);
  const auto n1 = message::note_on(1, 40, 90), n2 = message::note_on(1, 41, 90), in = message::clock();
  s.take(event_now(n1, c.start() - 5ms, 1));  // sent before the cycle: frame 0
  s.take(event_at(in, c.time_of_offset(64), 2));
  s.take(event_at(b, c.start() - 1ms, 3));        // past
  s.take(event_at(a, c.start() - 20ms, 4));       // further past: first
  s.take(event_now(n2, c.time_of_offset(9), 5));  // sent while this cycle was not yet written
  CHECK(run(s, c) == std::vector<written>{{0, a}, {0, n1}, {0, b}, {9, n2}, {64, in}});
  CHECK(s.late() == 2);
  CHECK(s.dropped() == 0);
  CHECK(s.retired() == 5);
  CHECK(s.size() == 0);

  SECTION("a note ending at an instant, struck again at that instant: the note-off first") {
    const auto off = message::note_off(1, 40), on = message::note_on(1, 40, 90);
    const auto c1 = cycle_at(11);
    s.take(event_at(off, c1.time_of_offset(30), 6));  // queued ahead, for its exact time
    s.take(event_now(on, c1.time_of_offset(31), 7));  // sent when that time had come
    CHECK(run(s, c1) == std::vector<written>{{30, off}, {31, on}});
    CHECK(s.late() == 2);
  }
}

TEST_CASE("a full port buffer keeps the rest for the next cycle, where they are late") {
  rt_schedule s(16);
  const auto c0 = cycle_at(0), c1 = cycle_at(1);
  std::vector<written> want0, want1;
  for (int i = 0; i < 6; ++i) {
    const auto m = message::note_on(0, 60 + i, 100);
    s.take(event_at(m, c0.time_of_offset(std::uint32_t(10 * i)), std::uint64_t(i)));
    if (i < 4) want0.push_back({std::uint32_t(10 * i), m});
    else want1.push_back({0, m});
  }
  CHECK(run(s, c0, 4) == want0);
  CHECK(s.late() == 0);
  CHECK(run(s, c1) == want1);
  CHECK(s.late() == 2);
  CHECK(s.retired() == 6);
}

TEST_CASE("a cancel drops the scheduled messages but sends the scheduled note-offs at once") {
  rt_schedule s(16);
  const auto c0 = cycle_at(0), c5 = cycle_at(5);
  const auto on = message::note_on(2, 50, 100), off = message::note_off(2, 50), off0 = message::note_on(2, 51, 0);
  s.take(event_at(on, c5.time_of_offset(1), 1));
  s.take(event_at(off, c5.time_of_offset(2), 2));
  s.take(event_at(off0, c5.time_of_offset(3), 3));
  s.take(event_at(message::clock(), c5.time_of_offset(4), 4));
  rt_event cancel;
  cancel.what = rt_event::kind::cancel;
  cancel.time_ns = jack::cycle::to_nanos(c0.start() - 1ms);
  s.take(cancel);
  s.take(event_now(message::control_change(2, 123, 0), c0.start() - 1ms, 5));
  CHECK(run(s, c0) == std::vector<written>{{0, off}, {0, off0}, {0, message::control_change(2, 123, 0)}});
  CHECK(s.dropped() == 2);
  CHECK(s.late() == 0);
  CHECK(s.retired() == 5);
  CHECK(run(s, c5).empty());

  SECTION("what a close keeps: the messages due within its window, but no note-on") {
    const auto c1 = cycle_at(1);
    s.take(event_at(message::stop(), c1.time_of_offset(20), 6));
    s.take(event_at(on, c1.time_of_offset(21), 7));
    s.take(event_at(message::start(), c5.time_of_offset(0), 8));
    rt_event close;
    close.what = rt_event::kind::cancel;
    close.time_ns = jack::cycle::to_nanos(c1.start());
    close.keep_until = jack::cycle::to_nanos(c1.end());
    s.take(close);
    CHECK(run(s, c1) == std::vector<written>{{20, message::stop()}});
    CHECK(s.dropped() == 4);
    CHECK(s.size() == 0);
  }
}

TEST_CASE("a full schedule drops and counts, and the ring holds its capacity in order") {
  rt_schedule s(2);
  const auto c = cycle_at(0);
  s.take(event_now(message::clock(), c.start(), 1));
  s.take(event_now(message::clock(), c.start(), 2));
  s.take(event_now(message::stop(), c.start(), 3));
  CHECK(s.dropped() == 1);
  CHECK(s.retired() == 1);
  CHECK(run(s, c).size() == 2);
  CHECK(s.retired() == 3);

  jack::spsc_ring<int> ring(3);
  CHECK(ring.capacity() == 3);
  for (int i = 0; i < 3; ++i) CHECK(ring.try_push(i));
  CHECK_FALSE(ring.try_push(9));
  int v = -1;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ring.try_pop(v));
    CHECK(v == i);
  }
  CHECK_FALSE(ring.try_pop(v));
  CHECK(ring.try_push(4));
  REQUIRE(ring.try_pop(v));
  CHECK(v == 4);
}
