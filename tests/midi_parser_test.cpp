// SPDX-License-Identifier: BSL-1.0
#include <tactus/midi/parser.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

// tactus::midi::parser: running status, realtime interleaving, sysex reassembly, every kind of
// drop and its counter, and a deterministic fuzz loop checking invariants over 10^6 bytes.

using tactus::midi::message;
using tactus::midi::parser;
using bytes = std::vector<std::uint8_t>;

namespace {

struct run {
  std::vector<bytes> out;
  parser::stats stats;
};

// Feeds `in` in one call (chunk == 0) or in chunks of `chunk` bytes.
run parse(const bytes& in, std::size_t chunk = 0, std::size_t max_sysex = parser::default_max_sysex_size) {
  parser p{max_sysex};
  run r;
  auto collect = [&](const message& m) { r.out.emplace_back(m.bytes().begin(), m.bytes().end()); };
  if (chunk == 0) {
    p.feed(in, collect);
  } else {
    for (std::size_t i = 0; i < in.size(); i += chunk)
      p.feed(std::span<const std::uint8_t>(in).subspan(i, std::min(chunk, in.size() - i)), collect);
  }
  r.stats = p.statistics();
  return r;
}

std::vector<bytes> msgs(std::initializer_list<bytes> l) { return std::vector<bytes>(l); }

}  // namespace

TEST_CASE("parser emits complete messages", "[midi][parser]") {
  SECTION("every short message kind") {
    const auto r = parse({0x90, 60, 100, 0xC1, 5, 0xE2, 0, 0x40, 0xF1, 0x12, 0xF2, 1, 2, 0xF3, 4, 0xF6, 0xF8});
    CHECK(r.out ==
          msgs({{0x90, 60, 100}, {0xC1, 5}, {0xE2, 0, 0x40}, {0xF1, 0x12}, {0xF2, 1, 2}, {0xF3, 4}, {0xF6}, {0xF8}}));
    CHECK(r.stats.messages == 8);
    CHECK(r.stats.dropped() == 0);
  }
  SECTION("sysex, empty sysex") {
    const auto r = parse({0xF0, 0x7E, 0x01, 0xF7, 0xF0, 0xF7});
    CHECK(r.out == msgs({{0xF0, 0x7E, 0x01, 0xF7}, {0xF0, 0xF7}}));
  }
  SECTION("a message split across feeds completes on the last byte") {
    parser p;
    std::vector<message> out;
    auto collect = [&](const message& m) { out.push_back(m); };
    p.feed(std::uint8_t{0x90}, collect);
    p.feed(std::uint8_t{60}, collect);
    CHECK(out.empty());
    CHECK(p.in_progress());
    p.feed(std::uint8_t{100}, collect);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == message::note_on(0, 60, 100));
    CHECK_FALSE(p.in_progress());
  }
}

TEST_CASE("parser resolves running status", "[midi][parser]") {
  SECTION("three-byte messages") {
    const auto r = parse({0x90, 60, 100, 62, 100, 64, 0});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0x90, 62, 100}, {0x90, 64, 0}}));
  }
  SECTION("two-byte messages") {
    const auto r = parse({0xC0, 1, 2, 3});
    CHECK(r.out == msgs({{0xC0, 1}, {0xC0, 2}, {0xC0, 3}}));
  }
  SECTION("a new channel status replaces it") {
    const auto r = parse({0x90, 60, 100, 0xB3, 7, 1, 10, 2});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xB3, 7, 1}, {0xB3, 10, 2}}));
  }
  SECTION("realtime does not cancel it") {
    const auto r = parse({0x90, 60, 100, 0xF8, 62, 0xFA, 100});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF8}, {0xFA}, {0x90, 62, 100}}));
    CHECK(r.stats.dropped() == 0);
  }
  SECTION("system common cancels it") {
    const auto r = parse({0x90, 60, 100, 0xF3, 1, 62, 100});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF3, 1}}));
    CHECK(r.stats.stray_data == 2);
  }
  SECTION("tune request cancels it") {
    const auto r = parse({0x90, 60, 100, 0xF6, 62, 100});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF6}}));
    CHECK(r.stats.stray_data == 2);
  }
  SECTION("sysex cancels it") {
    const auto r = parse({0x90, 60, 100, 0xF0, 1, 0xF7, 62, 100});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF0, 1, 0xF7}}));
    CHECK(r.stats.stray_data == 2);
  }
  SECTION("system common messages never set it") {
    const auto r = parse({0xF2, 1, 2, 3, 4});
    CHECK(r.out == msgs({{0xF2, 1, 2}}));
    CHECK(r.stats.stray_data == 2);
  }
  SECTION("observable through running_status()") {
    parser p;
    auto ignore = [](const message&) {};
    CHECK(p.running_status() == 0);
    p.feed(bytes{0x95, 1, 2}, ignore);
    CHECK(p.running_status() == 0x95);
    p.feed(bytes{0xF8}, ignore);
    CHECK(p.running_status() == 0x95);
    p.feed(bytes{0xF6}, ignore);
    CHECK(p.running_status() == 0);
  }
}

TEST_CASE("parser passes realtime through from anywhere", "[midi][parser]") {
  SECTION("between the bytes of a note") {
    const auto r = parse({0x90, 0xF8, 60, 0xFE, 100});
    CHECK(r.out == msgs({{0xF8}, {0xFE}, {0x90, 60, 100}}));
    CHECK(r.stats.dropped() == 0);
  }
  SECTION("inside a sysex") {
    const auto r = parse({0xF0, 1, 0xF8, 2, 0xFA, 0xFC, 3, 0xFF, 0xF7});
    CHECK(r.out == msgs({{0xF8}, {0xFA}, {0xFC}, {0xFF}, {0xF0, 1, 2, 3, 0xF7}}));
    CHECK(r.stats.dropped() == 0);
  }
  SECTION("0xFD is counted as undefined and interrupts nothing") {
    const auto r = parse({0x90, 0xFD, 60, 100, 0xF0, 1, 0xFD, 0xF7});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF0, 1, 0xF7}}));
    CHECK(r.stats.undefined_status == 2);
    CHECK(r.stats.dropped() == 2);
  }
}

TEST_CASE("parser reassembles sysex across chunks", "[midi][parser]") {
  bytes in{0xF0};
  std::vector<bytes> expected_realtime;
  bytes expected_sysex{0xF0};
  for (int i = 0; i < 5000; ++i) {
    in.push_back(std::uint8_t(i % 128));
    expected_sysex.push_back(std::uint8_t(i % 128));
    if (i % 97 == 0) {
      in.push_back(0xF8);
      expected_realtime.push_back({0xF8});
    }
  }
  in.push_back(0xF7);
  expected_sysex.push_back(0xF7);
  auto expected = expected_realtime;
  expected.push_back(expected_sysex);

  for (const std::size_t chunk :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{64}, std::size_t{4999}, std::size_t{0}}) {
    INFO("chunk " << chunk);
    const auto r = parse(in, chunk);
    CHECK(r.out == expected);
    CHECK(r.stats.dropped() == 0);
  }
}

TEST_CASE("parser drops and counts malformed input", "[midi][parser]") {
  SECTION("stray data bytes, one count per byte") {
    const auto r = parse({1, 2, 3, 0x90, 60, 100});
    CHECK(r.out == msgs({{0x90, 60, 100}}));
    CHECK(r.stats.stray_data == 3);
    CHECK(r.stats.dropped() == 3);
  }
  SECTION("undefined status bytes, and the data after them") {
    const auto r = parse({0x90, 60, 100, 0xF4, 1, 0xF5, 2, 0xF7, 3});
    CHECK(r.out == msgs({{0x90, 60, 100}}));
    CHECK(r.stats.undefined_status == 3);
    CHECK(r.stats.stray_data == 3);  // 0xF4/0xF5/0xF7 cancel running status
    CHECK(r.stats.truncated == 0);
  }
  SECTION("a short message cut short by a new status") {
    const auto r = parse({0x90, 60, 0x80, 60, 64, 0xC0, 0xF6, 0xB0, 7, 0xF2, 1, 0xF0, 0xF7});
    CHECK(r.out == msgs({{0x80, 60, 64}, {0xF6}, {0xF0, 0xF7}}));
    CHECK(r.stats.truncated == 4);  // 90 3C, C0, B0 07, F2 01
    CHECK(r.stats.dropped() == 4);
  }
  SECTION("a running-status message cut short") {
    const auto r = parse({0x90, 60, 100, 62, 0x80, 62, 0});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0x80, 62, 0}}));
    CHECK(r.stats.truncated == 1);
  }
  SECTION("a status byte right after a complete message truncates nothing") {
    const auto r = parse({0x90, 60, 100, 0x80, 60, 0});
    CHECK(r.stats.truncated == 0);
  }
  SECTION("a sysex cut short by a status") {
    const auto r = parse({0xF0, 1, 2, 0x90, 60, 100, 0xF0, 3, 0xF0, 4, 0xF7});
    CHECK(r.out == msgs({{0x90, 60, 100}, {0xF0, 4, 0xF7}}));
    CHECK(r.stats.truncated == 2);
  }
  SECTION("a truncated message followed by a stray 0xF7 counts both") {
    const auto r = parse({0x90, 60, 0xF7});
    CHECK(r.out.empty());
    CHECK(r.stats.truncated == 1);
    CHECK(r.stats.undefined_status == 1);
  }
}

TEST_CASE("parser bounds sysex length", "[midi][parser]") {
  SECTION("a sysex of exactly the maximum passes, one byte more is dropped") {
    const auto r = parse({0xF0, 1, 2, 3, 4, 5, 6, 0xF7, 0xF0, 1, 2, 3, 4, 5, 6, 7, 0xF7, 0x90, 60, 100}, 0, 8);
    CHECK(r.out == msgs({{0xF0, 1, 2, 3, 4, 5, 6, 0xF7}, {0x90, 60, 100}}));
    CHECK(r.stats.sysex_overflow == 1);
    CHECK(r.stats.dropped() == 1);
  }
  SECTION("an overflowed sysex is skipped to its end, realtime still passes") {
    bytes in{0xF0};
    for (int i = 0; i < 100'000; ++i) in.push_back(std::uint8_t(i & 0x7F));
    in.push_back(0xF8);
    in.push_back(0x01);
    in.push_back(0xF7);
    in.insert(in.end(), {0xF0, 0x42, 0xF7});
    const auto r = parse(in, 7, 1024);
    CHECK(r.out == msgs({{0xF8}, {0xF0, 0x42, 0xF7}}));
    CHECK(r.stats.sysex_overflow == 1);
    CHECK(r.stats.dropped() == 1);
  }
  SECTION("an overflowed sysex ended by a status is not also truncated") {
    const auto r = parse({0xF0, 1, 2, 3, 4, 0x90, 60, 100}, 0, 4);
    CHECK(r.out == msgs({{0x90, 60, 100}}));
    CHECK(r.stats.sysex_overflow == 1);
    CHECK(r.stats.truncated == 0);
  }
  SECTION("the bound is at least an empty sysex") {
    parser p{0};
    CHECK(p.max_sysex_size() == 2);
    const auto r = parse({0xF0, 0xF7, 0xF0, 1, 0xF7}, 0, 0);
    CHECK(r.out == msgs({{0xF0, 0xF7}}));
    CHECK(r.stats.sysex_overflow == 1);
  }
}

TEST_CASE("parser reset", "[midi][parser]") {
  parser p;
  std::vector<bytes> out;
  auto collect = [&](const message& m) { out.emplace_back(m.bytes().begin(), m.bytes().end()); };
  p.feed(bytes{0x90, 60, 100, 62}, collect);
  CHECK(p.in_progress());

  SECTION("reset() drops the message in progress and running status, keeps counters") {
    p.reset();
    CHECK_FALSE(p.in_progress());
    CHECK(p.running_status() == 0);
    p.feed(bytes{100, 0x80, 1, 2}, collect);
    CHECK(out == msgs({{0x90, 60, 100}, {0x80, 1, 2}}));
    CHECK(p.statistics().truncated == 0);
    CHECK(p.statistics().stray_data == 1);
    CHECK(p.statistics().messages == 2);
  }
  SECTION("reset() inside a sysex") {
    p.feed(bytes{0xF0, 1, 2}, collect);
    p.reset();
    p.feed(bytes{3, 0xF7}, collect);
    CHECK(p.statistics().stray_data == 1);
    CHECK(p.statistics().undefined_status == 1);
    CHECK(out.size() == 1);
  }
  SECTION("reset_stats() zeroes the counters only") {
    p.reset_stats();
    CHECK(p.statistics() == parser::stats{});
    p.feed(std::uint8_t{100}, collect);
    CHECK(out.size() == 2);
    CHECK(p.statistics().messages == 1);
  }
}

TEST_CASE("parser stays consistent when the callback throws", "[midi][parser]") {
  parser p;
  std::vector<bytes> out;
  int calls = 0;
  auto throwing = [&](const message& m) {
    if (++calls == 1) throw std::runtime_error("handler failed");
    out.emplace_back(m.bytes().begin(), m.bytes().end());
  };
  const bytes in{0x90, 60, 100, 62, 100};
  CHECK_THROWS_AS(p.feed(in, throwing), std::runtime_error);
  // The note that threw was consumed; resume after it.
  p.feed(std::span<const std::uint8_t>(in).subspan(3), throwing);
  CHECK(out == msgs({{0x90, 62, 100}}));
  CHECK(p.statistics().messages == 2);
  CHECK(p.statistics().dropped() == 0);

  STATIC_REQUIRE(noexcept(p.feed(in, [](const message&) noexcept {})));
  STATIC_REQUIRE_FALSE(noexcept(p.feed(in, [](const message&) {})));
}

namespace {

// Random bytes biased towards what makes parsers interesting: many data bytes, every status,
// long-ish sysex runs.
bytes random_stream(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> pick(0, 99), any(0, 255), data(0, 127), len(0, 300);
  static constexpr std::uint8_t statuses[] = {0x80, 0x9F, 0xA3, 0xB0, 0xC5, 0xD0, 0xEF, 0xF0, 0xF1, 0xF2,
                                              0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xFA, 0xFD, 0xFE, 0xFF};
  bytes out;
  out.reserve(n + 300);
  while (out.size() < n) {
    const auto p = pick(rng);
    if (p < 55) {
      out.push_back(std::uint8_t(data(rng)));
    } else if (p < 80) {
      out.push_back(statuses[std::size_t(any(rng)) % std::size(statuses)]);
    } else if (p < 97) {
      out.push_back(std::uint8_t(any(rng)));
    } else {  // a sysex run, often terminated, sometimes with realtime inside
      out.push_back(0xF0);
      for (int i = len(rng); i > 0; --i) out.push_back(pick(rng) < 3 ? 0xF8 : std::uint8_t(data(rng)));
      if (pick(rng) < 80) out.push_back(0xF7);
    }
  }
  out.resize(n);
  return out;
}

}  // namespace

TEST_CASE("parser survives adversarial streams with its invariants", "[midi][parser][fuzz]") {
  const std::size_t max_sysex = GENERATE(std::size_t{2}, std::size_t{64}, parser::default_max_sysex_size);
  const auto seed = GENERATE(1u, 2u);
  INFO("max_sysex " << max_sysex << " seed " << seed);
  const auto in = random_stream(1'000'000, seed);
  const auto whole = parse(in, 0, max_sysex);

  SECTION("every message is valid and counted, drops happen") {
    CHECK(whole.stats.messages == whole.out.size());
    bool all_valid = true, all_bounded = true;
    std::size_t sysex = 0;
    for (const auto& m : whole.out) {
      sysex += m[0] == 0xF0;
      const auto v = message::from_bytes(m);
      all_valid = all_valid && v.has_value();
      all_bounded = all_bounded && (m[0] != 0xF0 || m.size() <= max_sysex);
    }
    CHECK(all_valid);
    CHECK(all_bounded);
    CHECK(whole.stats.stray_data > 0);
    CHECK(whole.stats.undefined_status > 0);
    CHECK(whole.stats.truncated > 0);
    if (max_sysex >= 64) CHECK(sysex > 100);
    if (max_sysex <= 64) CHECK(whole.stats.sysex_overflow > 100);
    CHECK(whole.out.size() > 50'000);
  }
  SECTION("byte at a time and random chunks give the same result as one shot") {
    const auto bytewise = parse(in, 1, max_sysex);
    CHECK(bytewise.out == whole.out);
    CHECK(bytewise.stats == whole.stats);

    parser p{max_sysex};
    std::vector<bytes> out;
    auto collect = [&](const message& m) { out.emplace_back(m.bytes().begin(), m.bytes().end()); };
    std::mt19937 rng{seed + 100};
    std::uniform_int_distribution<std::size_t> size(0, 700);
    for (std::size_t i = 0; i < in.size();) {
      const auto n = std::min(size(rng), in.size() - i);
      p.feed(std::span<const std::uint8_t>(in).subspan(i, n), collect);
      i += n;
    }
    CHECK(out == whole.out);
    CHECK(p.statistics() == whole.stats);
  }
  SECTION("realtime bytes come out exactly as they went in, and are transparent") {
    bytes realtime_in, stripped;
    for (const auto b : in) (tactus::midi::is_realtime_status(b) ? realtime_in : stripped).push_back(b);
    bytes realtime_out;
    std::vector<bytes> others;
    for (const auto& m : whole.out) {
      if (m.size() == 1 && tactus::midi::is_realtime_status(m[0])) {
        realtime_out.push_back(m[0]);
      } else {
        others.push_back(m);
      }
    }
    CHECK(realtime_out == realtime_in);

    // Removing every realtime byte changes nothing else.
    const auto without = parse(stripped, 0, max_sysex);
    CHECK(without.out == others);
    auto expected = whole.stats;
    expected.messages -= realtime_in.size();
    CHECK(without.stats == expected);
  }
  SECTION("re-encoding the output without running status parses back to itself, no drops") {
    bytes again;
    for (const auto& m : whole.out) again.insert(again.end(), m.begin(), m.end());
    const auto r = parse(again, 0, max_sysex);
    CHECK(r.out == whole.out);
    CHECK(r.stats.dropped() == 0);
  }
}
