// SPDX-License-Identifier: BSL-1.0
// The input bridge over real RtMidi ports on the JACK server of the `jack` CTest fixture: a raw
// RtMidiOut in the test sends, tactus::midi::input receives. Every connection is linked (see
// support/jack_link.hpp) before the test sends: the probes are counted apart, so the counts
// asserted here stay exact.
#include <tactus/midi/input.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "support/jack_link.hpp"
#include "support/message_printer.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A raw RtMidi sender: a virtual JACK output port "<client>:src" that the input connects to.
struct sender {
  explicit sender(const std::string& client) : out(RtMidi::UNIX_JACK, client) { out.openVirtualPort("src"); }
  ~sender() { tactus::midi::quiesce(out); }  // RtMidi's own close can crash libjack
  void send(const message& m) { out.sendMessage(m.bytes().data(), m.bytes().size()); }
  RtMidiOut out;
};

bool wait_until(const std::function<bool()>& pred, clock_type::duration timeout = 10s) {
  const auto end = clock_type::now() + timeout;
  while (!pred()) {
    if (clock_type::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

std::vector<message> some_messages() {
  const std::vector<std::uint8_t> sx{0xF0, 0x7D, 0x01, 0x02, 0x03, 0xF7};
  return {message::note_on(0, 60, 100),
          message::control_change(3, 7, 90),
          message::pitch_bend(15, -8192),
          message::program_change(9, 12),
          message::clock(),
          message::start(),
          message::sysex(sx),
          message::stop(),
          message::note_off(0, 60, 0)};
}

input_options opts(std::size_t capacity = 1024) {
  input_options o;
  o.client_name = "input-test";
  o.capacity = capacity;
  return o;
}

}  // namespace

TEST_CASE("messages arrive complete, in order, with their time") {
  asio::io_context ctx;
  sender tx("in-sender");
  input in(ctx.get_executor(), "IN-SENDER:src", opts());
  CHECK(in.connected());
  const auto probes = tactus_tests::link(tx, in);
  const auto sent = some_messages();

  SECTION("through async_receive in a coroutine") {
    std::vector<timed_message> got;
    const auto t0 = clock_type::now();
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < sent.size(); ++i) got.push_back(co_await in.async_receive(asio::use_awaitable));
          in.close();  // stops the re-scan timer so that run() returns
        },
        rethrow);
    std::thread t([&] {
      for (auto& m : sent) {
        tx.send(m);
        std::this_thread::sleep_for(2ms);
      }
    });
    ctx.run();
    t.join();
    const auto t1 = clock_type::now();
    REQUIRE(got.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      INFO(i << ": " << got[i].msg.to_string());
      CHECK(got[i].msg == sent[i]);
      CHECK(got[i].time >= t0);
      CHECK(got[i].time <= t1);
      CHECK(got[i].delta_seconds >= 0.0);
      CHECK(got[i].delta_seconds < 5.0);
      if (i) CHECK(got[i].time >= got[i - 1].time);
    }
    CHECK(in.received() == probes.received + sent.size());
    CHECK(in.dropped() == probes.dropped);
  }
  SECTION("through an on_message handler") {
    std::vector<message> got;
    in.on_message([&](const timed_message& m) {
      got.push_back(m.msg);
      if (got.size() == sent.size()) in.close();
    });
    for (auto& m : sent) tx.send(m);
    ctx.run_for(10s);
    CHECK(got == sent);
  }
  SECTION("timing and sysex can be filtered out") {
    auto o = opts();
    o.receive_timing = false;
    o.receive_sysex = false;
    input filtered(ctx.get_executor(), "in-sender:src", o);
    in.close();
    const auto filtered_probes = tactus_tests::link(tx, filtered);  // Song Select passes the filters
    std::vector<message> got;
    filtered.on_message([&](const timed_message& m) { got.push_back(m.msg); });
    for (auto& m : sent) tx.send(m);
    wait_until([&] { return filtered.arrived() >= filtered_probes.arrived + 7; });
    ctx.run_for(50ms);
    // RtMidi's "time" filter covers clock (0xF8) and MTC (0xF1); start and stop pass.
    CHECK(got == std::vector<message>{sent[0], sent[1], sent[2], sent[3], sent[5], sent[7], sent[8]});
  }
}

TEST_CASE("overflow drops the newest and accounts for every message") {
  asio::io_context ctx;
  sender tx("ovf-sender");
  input in(ctx.get_executor(), "ovf-sender:src", opts(4));
  const auto probes = tactus_tests::link(tx, in);  // before on_error: a dropped probe is no error
  std::vector<std::error_code> errors;
  std::string detail;
  in.on_error([&](std::error_code ec, const std::string& what) {
    errors.push_back(ec);
    detail = what;
  });

  constexpr int sent = 300;
  for (int i = 0; i < sent; ++i) {  // paced, so that JACK itself loses nothing
    tx.send(message::note_on(0, i % 128, 1 + i / 128));
    if (i % 20 == 19) std::this_thread::sleep_for(3ms);
  }
  // Until JACK has delivered everything, or stops delivering (see below).
  wait_until([&] { return in.arrived() >= probes.arrived + sent; }, 5s);
  for (auto before = in.arrived(); std::this_thread::sleep_for(100ms), in.arrived() != before;) before = in.arrived();
  ctx.poll();  // the posted overflow report
  std::vector<message> got;
  while (auto m = in.try_receive()) got.push_back(m->msg);
  const auto arrived = in.arrived() - probes.arrived;
  INFO(arrived << " of " << sent << " arrived");
  REQUIRE(arrived >= 4);

  // The bridge's part, always exact: the queue kept its capacity, dropped the rest, and
  // accounted for every message that reached its callback.
  CHECK(got.size() == 4);
  CHECK(in.received() - probes.received == 4);
  CHECK(in.dropped() - probes.dropped == arrived - 4);
  CHECK(in.received() + in.dropped() == in.arrived());
  REQUIRE_FALSE(errors.empty());
  CHECK(errors.front() == io_errc::queue_overflow);
  CHECK_THAT(detail, Catch::Contains("dropped"));

  // JACK's part. A JACK server that misses cycles on a loaded machine (xruns: its log says
  // "client ... was not finished") loses a late client's events or hands the same cycle's
  // events over twice (four copies of the first note were seen once). On a clean delivery,
  // every message arrived once and the oldest four stayed in the queue.
  const bool repeated = std::adjacent_find(got.begin(), got.end()) != got.end();
  if (arrived == sent && !repeated) {
    for (int i = 0; i < int(got.size()); ++i) CHECK(got[i] == message::note_on(0, i, 1));  // the oldest stayed
  } else {
    WARN("JACK did not deliver the stream cleanly (an xrun?): "
         << arrived << " of " << sent << " arrived; the queue kept " << Catch::Detail::stringify(got));
  }
}

TEST_CASE("cancelling a receive loses nothing") {
  asio::io_context ctx;
  sender tx("cancel-sender");
  input in(ctx.get_executor(), "cancel-sender:src", opts());
  tactus_tests::link(tx, in);
  asio::cancellation_signal cancel;
  std::error_code first;
  in.async_receive(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, timed_message) { first = ec; }));
  ctx.poll();
  cancel.emit(asio::cancellation_type::terminal);
  ctx.poll();
  CHECK(first == asio::error::operation_aborted);

  tx.send(message::note_on(1, 2, 3));
  std::optional<timed_message> second;
  in.async_receive([&](std::error_code ec, timed_message m) {
    if (!ec) second = m;
    in.close();
  });
  ctx.run_for(10s);
  REQUIRE(second);
  CHECK(second->msg == message::note_on(1, 2, 3));
}

TEST_CASE("closing or destroying the input while messages flow is safe") {
  sender tx("flood-sender");
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    int i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      tx.send(message::note_on(0, i++ % 128, 100));
      if (i % 16 == 0) std::this_thread::sleep_for(200us);
    }
  });
  std::uint64_t total = 0;
  for (int round = 0; round < 20; ++round) {
    asio::io_context ctx;
    std::uint64_t got = 0;
    {
      input in(ctx.get_executor(), "flood-sender:src", opts(64));
      in.on_message([&](const timed_message&) { ++got; });
      ctx.run_for(std::chrono::milliseconds(5 + round % 7));
      if (round % 2) in.close();  // explicit close, then destruction
      CHECK(in.received() + in.dropped() <= in.arrived());
    }
    ctx.run_for(1ms);  // posted wake-ups of a closed input do nothing
    total += got;
  }
  stop = true;
  flood.join();
  CHECK(total > 0);
}

TEST_CASE("a vanished port is reported and reconnected by name") {
  asio::io_context ctx;
  auto tx = std::make_unique<sender>("vanish-sender");
  auto o = opts();
  o.rescan_interval = 20ms;
  input in(ctx.get_executor(), "vanish-sender:src", o);
  std::vector<std::error_code> events;
  in.on_error([&](std::error_code ec, const std::string&) { events.push_back(ec); });
  auto run_until = [&](auto pred) {
    const auto end = clock_type::now() + 10s;
    while (!pred() && clock_type::now() < end) ctx.run_for(5ms);
    return pred();
  };

  tx.reset();
  REQUIRE(run_until([&] { return !in.connected(); }));
  CHECK(events.back() == io_errc::port_vanished);

  tx = std::make_unique<sender>("vanish-sender");
  REQUIRE(run_until([&] { return in.connected(); }));
  CHECK(events.back() == io_errc::port_reconnected);
  tactus_tests::link(*tx, in);  // the reconnection, too, takes effect late

  std::optional<message> got;
  in.async_receive([&](std::error_code ec, timed_message m) {
    if (!ec) got = m.msg;
  });
  tx->send(message::control_change(0, 1, 2));
  REQUIRE(run_until([&] { return got.has_value(); }));
  CHECK(*got == message::control_change(0, 1, 2));
}
