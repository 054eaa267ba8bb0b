// SPDX-License-Identifier: BSL-1.0
// The port watcher: its timing and its asynchronous model in virtual time over a listing the test
// controls (how often it lists, and that it lists nothing while nobody waits, are exact there),
// then real ports appearing and vanishing on the JACK server of the `jack` CTest fixture.
#include <tactus/detail/asio_compat.hpp>
#include <tactus/midi/port_watcher.hpp>
#include <tactus/midi/rtmidi_close.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include "support/future_error.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <RtMidi.h>
#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using namespace tactus::midi;
using mc = tactus::testing::manual_clock;
using watcher = basic_port_watcher<mc>;
using names = std::vector<std::string>;

namespace {

// What the watcher lists in virtual time: the test edits `ports`, and sees every listing.
struct fake_ports {
  names ports{"a:out", "b:out"};
  int listings = 0;
  bool fail = false;
  watcher::lister lister() {
    return [this] {
      ++listings;
      if (fail) throw std::runtime_error("the backend went away");
      return ports;
    };
  }
};

constexpr auto interval = 100ms;

struct result {
  std::optional<std::error_code> ec;
  port_change change;
  auto handler() {
    return [this](std::error_code e, port_change c) {
      ec = e;
      change = std::move(c);
    };
  }
};

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("a watcher lists only while someone waits, and reports what appeared and vanished") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  watcher w(io.get_executor(), fake.lister(), interval);
  CHECK(fake.listings == 1);  // the constructor's
  CHECK(w.ports() == names{"a:out", "b:out"});

  tactus::testing::advance(io, 10s);
  CHECK(fake.listings == 1);  // nobody waits: nothing listed

  result r;
  w.async_wait_change(r.handler());
  CHECK(fake.listings == 1);  // never inside the initiating function
  tactus::testing::advance(io, 0ms);
  CHECK(fake.listings == 2);  // at once: the last listing is long ago
  tactus::testing::advance(io, 10 * interval);
  CHECK(fake.listings == 12);  // then every interval
  CHECK_FALSE(r.ec);           // nothing changed
  CHECK(w.waiting() == 1);

  fake.ports = {"b:out", "c:out", "d:out"};
  tactus::testing::advance(io, interval);
  REQUIRE(r.ec);
  CHECK(*r.ec == std::error_code{});
  CHECK(r.change.appeared == names{"c:out", "d:out"});
  CHECK(r.change.vanished == names{"a:out"});
  CHECK(r.change.ports == names{"b:out", "c:out", "d:out"});
  CHECK(w.ports() == names{"b:out", "c:out", "d:out"});
  CHECK(w.waiting() == 0);

  const int after = fake.listings;
  tactus::testing::advance(io, 10s);
  CHECK(fake.listings == after);  // the wait is over: no more listings
  io.restart();
  io.run_for(1s);
  CHECK(io.stopped());  // and no work left: run() returns

  SECTION("the same names in another order are no change") {
    fake.ports = {"d:out", "c:out", "b:out"};
    result again;
    w.async_wait_change(again.handler());
    tactus::testing::advance(io, 5 * interval);
    CHECK_FALSE(again.ec);
    w.close();
    io.restart();
    io.poll();
    CHECK(again.ec == std::error_code(asio::error::operation_aborted));
  }
  SECTION("a change while nobody waits goes to the next wait, at the next listing") {
    fake.ports = {"e:out"};
    tactus::testing::advance(io, 10s);
    CHECK(fake.listings == after);
    result next;
    w.async_wait_change(next.handler());
    tactus::testing::advance(io, 1ms);  // the interval since the last listing is over: at once
    REQUIRE(next.ec);
    CHECK(next.change.appeared == names{"e:out"});
    CHECK(next.change.vanished == names{"b:out", "c:out", "d:out"});
  }
}

TEST_CASE("every pending wait gets the change") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  watcher w(io.get_executor(), fake.lister(), interval);
  result r1, r2, r3;
  w.async_wait_change(r1.handler());
  w.async_wait_change(r2.handler());
  tactus::testing::advance(io, interval / 2);
  w.async_wait_change(r3.handler());
  tactus::testing::advance(io, 3 * interval);
  CHECK(fake.listings == 4);  // one timer for all of them
  fake.ports.push_back("z:out");
  tactus::testing::advance(io, interval);
  for (auto* r : {&r1, &r2, &r3}) {
    REQUIRE(r->ec);
    CHECK_FALSE(*r->ec);
    CHECK(r->change.appeared == names{"z:out"});
  }
}

TEST_CASE("async_wait_change works with every completion token") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  watcher w(io.get_executor(), fake.lister(), interval);
  auto change_ports = [&] {
    tactus::testing::advance(io, interval);
    fake.ports = {"new:out"};
    tactus::testing::advance(io, interval);
  };

  SECTION("a callback") {
    result r;
    w.async_wait_change(r.handler());
    change_ports();
    REQUIRE(r.ec);
    CHECK(r.change.appeared == names{"new:out"});
  }
  SECTION("deferred: nothing starts before the operation is launched") {
    auto op = w.async_wait_change(tactus::detail::deferred);
    tactus::testing::advance(io, 10 * interval);
    CHECK(w.waiting() == 0);
    CHECK(fake.listings == 1);
    result r;
    std::move(op)(r.handler());
    CHECK(w.waiting() == 1);
    change_ports();
    REQUIRE(r.ec);
    CHECK(r.change.vanished == names{"a:out", "b:out"});
  }
  SECTION("use_future") {
    std::future<port_change> f = w.async_wait_change(asio::use_future);
    change_ports();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);  // set on Asio's system executor
    CHECK(f.get().appeared == names{"new:out"});
  }
  SECTION("use_future, cancelled: the future throws operation_aborted") {
    asio::cancellation_signal cancel;
    auto f = w.async_wait_change(asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
    tactus::testing::advance(io, interval);
    cancel.emit(asio::cancellation_type::total);
    tactus::testing::advance(io, interval);
    CHECK(tactus_tests::future_error(f) == asio::error::operation_aborted);
  }
  SECTION("use_awaitable") {
    std::optional<port_change> got;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { got = co_await w.async_wait_change(asio::use_awaitable); }, rethrow);
    change_ports();
    REQUIRE(got);
    CHECK(got->appeared == names{"new:out"});
  }
  SECTION("use_awaitable, beaten by a timer in an awaitable operator: the wait is cancelled") {
    using namespace tactus::detail::awaitable_operators;
    std::optional<std::size_t> winner;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::basic_waitable_timer<mc> timer(io, 3 * interval);
          auto r = co_await (w.async_wait_change(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
          winner = r.index();
        },
        rethrow);
    tactus::testing::advance(io, 5 * interval);
    REQUIRE(winner);
    CHECK(*winner == 1);
    CHECK(w.waiting() == 0);
    const int listed = fake.listings;
    tactus::testing::advance(io, 10s);
    CHECK(fake.listings == listed);  // the cancelled wait took the timer with it
  }
}

TEST_CASE("cancelling a wait completes it with operation_aborted and loses no change") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  watcher w(io.get_executor(), fake.lister(), interval);
  const auto type =
      GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total);
  INFO("cancellation type " << int(type));
  asio::cancellation_signal cancel;
  result cancelled, other;
  w.async_wait_change(asio::bind_cancellation_slot(cancel.slot(), cancelled.handler()));
  tactus::testing::advance(io, 2 * interval);
  const int before = fake.listings;
  CHECK(before == 3);

  SECTION("the last wait: the timer stops, and run() returns") {
    cancel.emit(type);
    tactus::testing::advance(io, 0ms);
    REQUIRE(cancelled.ec);
    CHECK(*cancelled.ec == asio::error::operation_aborted);
    CHECK(cancelled.change.ports.empty());
    // The timer stops at once, not at its next expiry: one left pending would keep run_for
    // spinning for the whole 200 ms (manual-clock timers do not expire in real time).
    io.restart();
    io.run_for(200ms);
    CHECK(io.stopped());
    tactus::testing::advance(io, 10s);
    CHECK(fake.listings == before);
  }
  SECTION("another wait goes on") {
    w.async_wait_change(other.handler());
    cancel.emit(type);
    tactus::testing::advance(io, interval);
    CHECK(cancelled.ec == std::error_code(asio::error::operation_aborted));
    CHECK_FALSE(other.ec);
    fake.ports.push_back("x:out");
    tactus::testing::advance(io, interval);
    REQUIRE(other.ec);
    CHECK(other.change.appeared == names{"x:out"});
  }
  SECTION("a change made before the cancellation goes to the next wait") {
    fake.ports.push_back("y:out");
    cancel.emit(type);  // before the next listing
    tactus::testing::advance(io, 10s);
    CHECK(fake.listings == before);
    result next;
    w.async_wait_change(next.handler());
    tactus::testing::advance(io, interval);
    REQUIRE(next.ec);
    CHECK(next.change.appeared == names{"y:out"});
  }
  SECTION("cancelled and waited again before the timer's abort ran: the listing goes on") {
    cancel.emit(type);
    w.async_wait_change(other.handler());  // the cancelled timer's handler has not run yet
    tactus::testing::advance(io, 3 * interval);
    CHECK(fake.listings == before + 3);
    CHECK_FALSE(other.ec);
  }
}

TEST_CASE("a listing that fails completes the waits with backend_error, and the next wait lists again") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  watcher w(io.get_executor(), fake.lister(), interval);
  result r;
  w.async_wait_change(r.handler());
  fake.fail = true;
  tactus::testing::advance(io, interval);
  REQUIRE(r.ec);
  CHECK(*r.ec == io_errc::backend_error);
  CHECK(w.ports() == names{"a:out", "b:out"});

  fake.fail = false;
  fake.ports = {"a:out"};
  result again;
  w.async_wait_change(again.handler());
  tactus::testing::advance(io, interval);
  REQUIRE(again.ec);
  CHECK_FALSE(*again.ec);
  CHECK(again.change.vanished == names{"b:out"});
}

TEST_CASE("close() and destruction abort the waits") {
  mc::reset();
  asio::io_context io;
  fake_ports fake;
  auto w = std::make_unique<watcher>(io.get_executor(), fake.lister(), interval);
  result r1, r2;
  w->async_wait_change(r1.handler());
  SECTION("close()") {
    w->close();
    w->async_wait_change(r2.handler());
    io.poll();
    CHECK(r1.ec == std::error_code(asio::error::operation_aborted));
    CHECK(r2.ec == std::error_code(asio::error::operation_aborted));
  }
  SECTION("destruction, and a deferred wait launched afterwards") {
    auto op = w->async_wait_change(tactus::detail::deferred);
    w.reset();
    std::move(op)(r2.handler());
    io.poll();
    CHECK(r1.ec == std::error_code(asio::error::operation_aborted));
    CHECK(r2.ec == std::error_code(asio::error::operation_aborted));
  }
  const int listed = fake.listings;
  tactus::testing::advance(io, 10s);
  CHECK(fake.listings == listed);
}

TEST_CASE("an interval that is not positive is rejected") {
  asio::io_context io;
  fake_ports fake;
  CHECK_THROWS_AS(watcher(io.get_executor(), fake.lister(), 0ms), std::invalid_argument);
}

// --- real ports on the JACK server ----------------------------------------------------------

namespace {

// Runs `io` until `done` holds (at most 10 s); returns whether it does.
template <class Done>
bool run_until(asio::io_context& io, Done done) {
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

template <class RtMidiT>
struct raw_port : RtMidiT {
  explicit raw_port(const std::string& client) : RtMidiT(RtMidi::UNIX_JACK, client) { this->openVirtualPort("p"); }
  ~raw_port() { quiesce(*this); }  // RtMidi's own close can crash libjack
};

port_watcher_options jack_options() {
  port_watcher_options o;
  o.backend = api::jack;
  o.interval = 20ms;
  return o;
}

}  // namespace

TEST_CASE("a watcher on the JACK server sees an output port appear and vanish among the inputs") {
  asio::io_context io;
  port_watcher w(io.get_executor(), port_direction::input, jack_options());
  CHECK(std::find(w.ports().begin(), w.ports().end(), "pw-source:p") == w.ports().end());

  std::vector<port_change> changes;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) changes.push_back(co_await w.async_wait_change(asio::use_awaitable));
      },
      rethrow);
  io.poll();
  auto source = std::make_unique<raw_port<RtMidiOut>>("pw-source");
  REQUIRE(run_until(io, [&] { return changes.size() == 1; }));
  CHECK(changes[0].appeared == names{"pw-source:p"});
  CHECK(changes[0].vanished.empty());
  CHECK(w.ports() == changes[0].ports);

  source.reset();
  REQUIRE(run_until(io, [&] { return changes.size() == 2; }));
  CHECK(changes[1].vanished == names{"pw-source:p"});
  CHECK(changes[1].appeared.empty());
  io.restart();
  io.run_for(1s);
  CHECK(io.stopped());  // nobody waits any more
}

TEST_CASE("a watcher on the JACK server sees an input port appear among the outputs") {
  asio::io_context io;
  port_watcher w(io.get_executor(), port_direction::output, jack_options());
  std::optional<port_change> change;
  w.async_wait_change([&](std::error_code ec, port_change c) {
    REQUIRE_FALSE(ec);
    change = std::move(c);
  });
  raw_port<RtMidiIn> sink("pw-sink");
  REQUIRE(run_until(io, [&] { return change.has_value(); }));
  CHECK(change->appeared == names{"pw-sink:p"});
}
