// SPDX-License-Identifier: BSL-1.0
// Faults injected into midi::input on the `jack` fixture's server (issue 12), in this process: a
// raw RtMidi sender streams numbered messages while the fault happens. Each case is bounded in
// time and checks that nothing crashes or hangs and that the input's accounting stays exact
// (received + dropped == arrived, in order, nothing twice); what JACK itself lost before our
// callback (sent - arrived) is printed as a figure, never asserted.
#include <tactus/midi/input.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "support/catch.hpp"
#include "support/jack_link.hpp"
#include "support/rtmidi_sender.hpp"
#include "support/sanitizers.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <RtMidi.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using sender = tactus_tests::rtmidi_sender;

// Message number n as a note-on: (n / 128) % 16 on the channel, n % 128 the key, velocity 1 +
// (n / 2048) % 127; numbers are recovered modulo 16 * 128 * 127.
message numbered(std::uint64_t n) {
  return message::note_on(int((n / 128) % 16), int(n % 128), 1 + int((n / 2048) % 127));
}
std::uint64_t number_of(const message& m) {
  return std::uint64_t(m.velocity() - 1) * 2048 + std::uint64_t(m.channel()) * 128 + std::uint64_t(m.key());
}

input_options opts(std::size_t capacity, std::string client = "fault-in") {
  input_options o;
  o.client_name = std::move(client);
  o.capacity = capacity;
  return o;
}

// Runs `ctx` in slices until `pred` holds or `timeout` passes.
template <class Pred>
bool run_until(asio::io_context& ctx, Pred pred, clock_type::duration timeout = 10s) {
  const auto end = clock_type::now() + timeout;
  while (!pred() && clock_type::now() < end) {
    ctx.restart();
    ctx.run_for(5ms);
  }
  return pred();
}

}  // namespace

// Under ThreadSanitizer a raw RtMidi sender in this process delivers nothing of a fast stream
// (seen: 0 of 1600 after a successful probe handshake) and JACK runs 512-frame cycles: the two
// streaming cases say so and skip; the destruction rounds, TSan's real subject, run.
#if defined(TACTUS_TEST_TSAN)
#define TACTUS_FAULT_STREAMING_SKIP() \
  TACTUS_SKIP("ThreadSanitizer: an in-process RtMidi sender's fast stream does not reach the input")
#else
#define TACTUS_FAULT_STREAMING_SKIP() (void)0
#endif

TEST_CASE("fault: the sending port vanishes mid-stream and comes back") {
  TACTUS_FAULT_STREAMING_SKIP();
  asio::io_context ctx;
  auto o = opts(1024);
  o.rescan_interval = 20ms;
  auto tx = std::make_unique<sender>("vanishing");
  input in(ctx.get_executor(), "vanishing:src", o);
  std::vector<std::error_code> events;
  in.on_error([&](std::error_code ec, const std::string&) {
    if (ec == io_errc::port_vanished || ec == io_errc::port_reconnected) events.push_back(ec);  // not xruns
  });
  std::vector<std::uint64_t> got;
  in.on_message([&](const timed_message& m) {
    if (m.msg.is_note_on()) got.push_back(number_of(m.msg));
  });
  std::uint64_t next = 0;
  // Streams numbered messages for `d`, 8 every millisecond, running the input meanwhile.
  auto stream = [&](clock_type::duration d) {
    const auto end = clock_type::now() + d;
    while (clock_type::now() < end) {
      for (int i = 0; i < 8; ++i) tx->send(numbered(next++));
      ctx.restart();
      ctx.run_for(1ms);
    }
  };
  REQUIRE(run_until(ctx, [&] { return in.connected(); }));
  stream(300ms);
  tx.reset();  // the port vanishes in the middle of the stream
  REQUIRE(run_until(ctx, [&] { return !in.connected(); }));
  tx = std::make_unique<sender>("vanishing");
  REQUIRE(run_until(ctx, [&] { return in.connected(); }));
  const auto before_return = got.size();
  stream(300ms);
  REQUIRE(run_until(
      ctx, [&] { return got.size() > before_return; }, 5s));  // it hears the new port
  run_until(
      ctx, [] { return false; }, 100ms);  // what is in flight
  tx.reset();
  run_until(
      ctx, [] { return false; }, 50ms);

  CHECK(in.received() + in.dropped() == in.arrived());
  REQUIRE(events.size() >= 2);
  CHECK(events[0] == io_errc::port_vanished);
  CHECK(events[1] == io_errc::port_reconnected);
  // In order and never twice, across the loss: JACK may lose some (a port going), never reorder.
  std::size_t out_of_order = 0;
  for (std::size_t i = 1; i < got.size(); ++i) out_of_order += got[i] <= got[i - 1];
  CHECK(out_of_order == 0);
  std::printf("figure: port vanished mid-stream: %zu of %llu sent were received, %llu dropped by the input\n",
              got.size(), static_cast<unsigned long long>(next), static_cast<unsigned long long>(in.dropped()));
  in.close();
}

TEST_CASE("fault: an input flooded at 100 times its capacity accounts for every message") {
  TACTUS_FAULT_STREAMING_SKIP();
  asio::io_context ctx;
  constexpr std::size_t capacity = 16;
  constexpr std::uint64_t sent = 100 * capacity;
  sender tx("flooder");
  input in(ctx.get_executor(), "flooder:src", opts(capacity));
  // The connection takes effect some cycles later (seconds under TSan): a probe handshake first.
  const auto base = tactus_tests::link(tx, in).arrived;
  std::uint64_t reports = 0;
  in.on_error([&](std::error_code ec, const std::string&) { reports += ec == io_errc::queue_overflow; });
  // Nobody reads while the flood comes, in bursts of a JACK cycle's worth, as fast as it goes.
  for (std::uint64_t i = 0; i < sent; ++i) {
    tx.send(numbered(i));
    if (i % 32 == 31) std::this_thread::sleep_for(200us);
  }
  // Until JACK has delivered what it will.
  for (auto before = in.arrived(); std::this_thread::sleep_for(100ms), in.arrived() != before;) before = in.arrived();
  std::vector<std::uint64_t> got;
  while (auto m = in.try_receive()) got.push_back(number_of(m->msg));
  const auto arrived = in.arrived() - base;
  INFO(arrived << " of " << sent << " arrived");
  REQUIRE(arrived > capacity);  // it was flooded
  CHECK(got.size() <= capacity);
  CHECK(in.received() + in.dropped() == in.arrived());  // exact, whatever JACK did
  ctx.restart();
  ctx.poll();
  CHECK(reports >= 1);  // the overflow was reported
  for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i] > got[i - 1]);
  std::printf(
      "figure: flood of %llu at capacity %zu: %llu arrived (JACK lost %llu before our callback), %zu kept, "
      "%llu dropped\n",
      static_cast<unsigned long long>(sent), capacity, static_cast<unsigned long long>(arrived),
      static_cast<unsigned long long>(sent - arrived), got.size(), static_cast<unsigned long long>(in.dropped()));
}

TEST_CASE("fault: the io_context and the input destroyed while the backend delivers, round after round") {
  sender tx("deliverer");
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    std::uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      tx.send(numbered(i++));
      if (i % 8 == 0) std::this_thread::sleep_for(100us);
    }
  });
  // Each round opens a JACK client and waits for its connection (about 0.1 s): 60 rounds in CI;
  // TACTUS_FAULT_ROUNDS=N for more.
  const char* env = std::getenv("TACTUS_FAULT_ROUNDS");
  const int rounds = env ? std::atoi(env) : 60;
  std::uint64_t total = 0;
  int with_messages = 0;
  for (int round = 0; round < rounds; ++round) {
    std::uint64_t got = 0;
    {
      auto ctx = std::make_unique<asio::io_context>();
      // A coroutine owns the input in its frame and waits in async_receive: destroying the
      // io_context destroys the frame, and the input with it, while RtMidi's thread delivers.
      auto reader = [&got](asio::io_context& c, int capacity) -> asio::awaitable<void> {
        input in(c.get_executor(), "deliverer:src", opts(std::size_t(capacity), "destroyed"));
        for (;;) {
          co_await in.async_receive(asio::use_awaitable);
          ++got;
        }
      };
      asio::co_spawn(*ctx, reader(*ctx, 4 + round % 60), [](std::exception_ptr) {});
      // Until the connection carries messages (some cycles after it is made; longer under the
      // sanitizers), then a few milliseconds more: destroyed in the middle of the delivery.
      const auto until = clock_type::now() + 500ms;
      while (got == 0 && clock_type::now() < until) ctx->run_for(2ms);
      ctx->run_for(std::chrono::milliseconds(round % 7));
      if (round % 3 == 0) ctx->stop();
    }  // the io_context goes, with the suspended frame and its input
    total += got;
    with_messages += got > 0;
  }
  stop = true;
  flood.join();
  std::printf("figure: %d rounds, %d received messages before their io_context went, %llu in all\n", rounds,
              with_messages, static_cast<unsigned long long>(total));
  CHECK(with_messages >= rounds / 2);  // most rounds were destroyed while messages flowed
}
