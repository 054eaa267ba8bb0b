// SPDX-License-Identifier: BSL-1.0
// The realtime half of midi::input without a port (detail/input_handoff.hpp): the budget of
// queued sysex bytes (issue 12, item 6). Before it, each of the 1024 slots kept its largest sysex,
// so a flood of 64 KiB sysex held 64 MiB; now the total is bounded and every drop is counted.
#include <tactus/midi/detail/input_handoff.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using tactus::midi::detail::input_handoff;

namespace {

std::vector<std::uint8_t> sysex(std::size_t n, std::uint8_t fill = 0x11) {
  std::vector<std::uint8_t> b(n, fill);
  b.front() = 0xF0;
  b.back() = 0xF7;
  return b;
}

struct rig {
  input_handoff h;
  std::uint64_t wakes = 0, overflow_reports = 0, malformed = 0;
  rig(std::size_t capacity, std::size_t max_sysex, std::size_t budget) : h(capacity, max_sysex, budget) {}
  void push(const std::vector<std::uint8_t>& b) {
    h.produce(std::chrono::steady_clock::now(), 0, std::span<const std::uint8_t>(b), [&](input_handoff::wake w) {
      if (w == input_handoff::wake::report_overflow) ++overflow_reports;
      else ++wakes;
    });
  }
  std::size_t pop_all() {
    std::size_t n = 0;
    while (h.pop([&] { ++malformed; })) ++n;
    return n;
  }
};

}  // namespace

TEST_CASE("the sysex queued at once are bounded in total and every drop is counted") {
  constexpr std::size_t kib = 1024;
  rig r(1024, 64 * kib, 1024 * kib);
  REQUIRE(r.h.sysex_budget() == 1024 * kib);
  const auto big = sysex(64 * kib);
  // A flood of maximal sysex that nobody reads: 16 fit the 1 MiB budget, the rest are dropped.
  for (int i = 0; i < 1024; ++i) r.push(big);
  CHECK(r.h.arrived() == 1024);
  CHECK(r.h.dropped() == 1024 - 16);
  CHECK(r.h.sysex_queued() == 16 * 64 * kib);
  CHECK(r.h.sysex_held() <= 2 * r.h.sysex_budget() + 64 * kib);
  // Short messages still pass: the budget is for sysex bytes, not for slots.
  const std::vector<std::uint8_t> note{0x90, 60, 100};
  r.push(note);
  CHECK(r.h.dropped() == 1024 - 16);
  const auto o = r.h.take_overflow();
  CHECK(o.over_budget == 1024 - 16);
  CHECK(o.full == 0);
  CHECK(o.too_long == 0);
  CHECK(o.total == r.h.dropped());
  CHECK(r.overflow_reports == 1);  // one report until the consumer takes the counts
  CHECK(r.pop_all() == 17);
  CHECK(r.h.received() + r.h.dropped() == r.h.arrived());
  CHECK(r.h.sysex_queued() == 0);

  SECTION("once read the budget is free again") {
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 16; ++i) r.push(sysex(64 * kib, std::uint8_t(round)));
      CHECK(r.pop_all() == 16);
    }
    CHECK(r.h.dropped() == 1024 - 16);
    CHECK(r.h.received() + r.h.dropped() == r.h.arrived());
  }
  SECTION("the buffers the slots keep stay bounded however many slots carried a sysex") {
    // Each round lands its sysex in other slots of the ring: without freeing, every one of the
    // 1024 slots would keep 64 KiB.
    for (int round = 0; round < 256; ++round) {
      for (int i = 0; i < 7; ++i) r.push(sysex(64 * kib - std::size_t(i)));
      CHECK(r.pop_all() == 7);
      CHECK(r.h.sysex_held() <= 2 * r.h.sysex_budget() + 64 * kib);
    }
    CHECK(r.h.dropped() == 1024 - 16);
  }
  SECTION("a sysex over the size limit is too long, not over the budget") {
    r.push(sysex(64 * kib + 1));
    const auto t = r.h.take_overflow();
    CHECK(t.too_long == 1);
    CHECK(t.over_budget == 0);
  }
}

TEST_CASE("a budget below the size limit is raised to it") {
  rig r(8, 4096, 100);
  CHECK(r.h.sysex_budget() == 4096);
  r.push(sysex(4096));
  r.push(sysex(5));
  CHECK(r.h.dropped() == 1);  // the second does not fit behind a maximal one
  CHECK(r.pop_all() == 1);
  r.push(sysex(5));
  CHECK(r.pop_all() == 1);
  CHECK(r.h.received() + r.h.dropped() == r.h.arrived());
}
