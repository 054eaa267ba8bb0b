// SPDX-License-Identifier: BSL-1.0
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;

TEST_CASE("manual_clock moves only when told") {
  mc::reset();
  CHECK(mc::now() == mc::time_point{});
  mc::advance(1500ms);
  CHECK(mc::now() == mc::time_point(1500ms));
  mc::advance(-1s);  // steady: ignored
  CHECK(mc::now() == mc::time_point(1500ms));
  mc::advance_to(mc::time_point(1s));  // the past: ignored
  CHECK(mc::now() == mc::time_point(1500ms));
  mc::advance_to(mc::time_point(2s));
  CHECK(mc::now() == mc::time_point(2s));
  mc::reset(mc::time_point(10s));
  CHECK(mc::now() == mc::time_point(10s));
  static_assert(mc::is_steady);
}

TEST_CASE("Asio timers on manual_clock fire as virtual time passes") {
  mc::reset();
  asio::io_context io;
  std::vector<std::pair<int, mc::time_point>> fired;
  asio::basic_waitable_timer<mc> a(io), b(io);
  a.expires_at(mc::time_point(300ms));
  b.expires_at(mc::time_point(100ms));
  a.async_wait([&](std::error_code ec) {
    if (!ec) fired.emplace_back(1, mc::now());
  });
  b.async_wait([&](std::error_code ec) {
    if (!ec) fired.emplace_back(2, mc::now());
  });

  SECTION("nothing fires before its deadline") {
    io.poll();
    mc::advance(99ms);
    io.poll();
    CHECK(fired.empty());
  }
  SECTION("advance() stops on every deadline: timers fire exactly on time") {
    tactus::testing::advance(io, 1s);
    REQUIRE(fired.size() == 2);
    CHECK(fired[0] == std::pair{2, mc::time_point(100ms)});
    CHECK(fired[1] == std::pair{1, mc::time_point(300ms)});
    CHECK(mc::now() == mc::time_point(1s));
  }
  SECTION("advance() with a maximum step stops at least that often") {
    tactus::testing::advance(io, 250ms, 40ms);
    REQUIRE(fired.size() == 1);
    CHECK(fired[0] == std::pair{2, mc::time_point(100ms)});
    CHECK(mc::now() == mc::time_point(250ms));
  }
  SECTION("a virtual hour of 100 ms timers runs in real milliseconds") {
    int count = 0;
    asio::basic_waitable_timer<mc> t(io);
    std::function<void(std::error_code)> again = [&](std::error_code ec) {
      if (ec) return;
      ++count;
      t.expires_at(t.expiry() + 100ms);
      t.async_wait(again);
    };
    t.expires_at(mc::time_point(100ms));
    t.async_wait(again);
    const auto start = std::chrono::steady_clock::now();
    tactus::testing::advance(io, 1h);
    CHECK(count == 36'000);
    CHECK(std::chrono::steady_clock::now() - start < 30s);  // typically well under a second
    t.cancel();
    io.poll();
  }
}
