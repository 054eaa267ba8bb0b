// SPDX-License-Identifier: BSL-1.0
// The note-safe output over real RtMidi ports on the JACK server of the `jack` CTest fixture: a raw
// RtMidiIn in the test captures what tactus::midi::output sent. Every connection is linked (see
// support/jack_link.hpp) before the test sends; the probes are no notes and the capture forgets them.
#include <tactus/midi/output.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "support/catch.hpp"
#include "support/every_token.hpp"
#include "support/jack_link.hpp"
#include "support/message_printer.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <csignal>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

using namespace tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A raw RtMidi receiver: a virtual JACK input port "capture:in" that the output connects to.
class capture {
 public:
  capture() : in_(RtMidi::UNIX_JACK, "capture") {  // NOLINT: in_ is declared last on purpose
    in_.ignoreTypes(false, false, false);
    in_.setCallback(&capture::callback, this);
    in_.openVirtualPort("in");
  }
  ~capture() { tactus::midi::quiesce(in_); }  // RtMidi's own close can crash libjack

  /// Waits until `n` messages arrived, then a little longer to catch any extra one.
  std::vector<message> wait_for(std::size_t n, clock_type::duration timeout = 10s) {
    const auto end = clock_type::now() + timeout;
    while (size() < n && clock_type::now() < end) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(30ms);
    std::lock_guard lock(mutex_);
    return got_;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return got_.size();
  }
  /// What arrived so far, forgotten here (for tactus_tests::link).
  std::vector<message> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(got_, {});
  }

 private:
  static void callback(double, std::vector<unsigned char>* b, void* self) {
    auto* me = static_cast<capture*>(self);
    auto m = message::from_bytes(*b);
    std::lock_guard lock(me->mutex_);
    me->got_.push_back(m ? *m : message{});
  }
  std::mutex mutex_;
  std::vector<message> got_;
  RtMidiIn in_;  // last: destroyed (stopping its callback) before what the callback uses
};

output_options opts() {
  output_options o;
  o.client_name = "output-test";
  return o;
}

// Per (channel, key): note-ons minus note-offs, over the whole capture, clamped at zero the way
// a synth sees it (a note-off for a silent key does nothing).
std::map<std::pair<int, int>, int> sounding(const std::vector<message>& got) {
  std::map<std::pair<int, int>, int> s;
  for (auto& m : got) {
    if (m.is_note_on()) ++s[{m.channel(), m.key()}];
    if (m.is_note_off()) s[{m.channel(), m.key()}] = 0;  // one note-off silences the key
  }
  std::erase_if(s, [](auto& kv) { return kv.second == 0; });
  return s;
}

bool has_cc(const std::vector<message>& got, int ch, int cc, int value) {
  return std::find(got.begin(), got.end(), message::control_change(ch, cc, value)) != got.end();
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("the output sends any message") {
  asio::io_context ctx;
  capture cap;
  output out(ctx.get_executor(), "CAPTURE:in", opts());
  tactus_tests::link(out, cap);
  const std::vector<std::uint8_t> sx{0xF0, 0x7D, 0x10, 0x20, 0xF7};
  const std::vector<message> sent{message::note_on(0, 60, 100),
                                  message::control_change(2, 1, 64),
                                  message::program_change(3, 5),
                                  message::pitch_bend(4, 8191),
                                  message::clock(),
                                  message::sysex(sx),
                                  message::note_off(0, 60)};
  for (auto& m : sent) out.send(m);
  CHECK(cap.wait_for(sent.size()) == sent);
  CHECK(out.open_notes() == 0);
}

TEST_CASE("open notes end with their own note-off, then CC 123 and CC 64") {
  asio::io_context ctx;
  capture cap;
  std::optional<output> out;
  out.emplace(ctx.get_executor(), "capture:in", opts());
  tactus_tests::link(*out, cap);
  out->note_on(0, 60, 100);
  out->note_on(0, 60, 90);  // twice: counted
  out->note_off(0, 60);     // once: still open
  out->note_on(5, 64, 100);
  out->note_on(5, 67, 100);
  out->note_off(5, 67);
  CHECK(out->open_count(0, 60) == 1);
  CHECK(out->open_notes() == 2);

  auto check_ending = [&](const std::vector<message>& got, std::size_t before) {
    REQUIRE(got.size() == before + 2 + 4);
    const std::vector<message> tail(got.begin() + long(before), got.end());
    // note-offs first, one per open (channel, key), then the controllers per channel
    CHECK(tail[0] == message::note_off(0, 60));
    CHECK(tail[1] == message::control_change(0, 123, 0));
    CHECK(tail[2] == message::control_change(0, 64, 0));
    CHECK(tail[3] == message::note_off(5, 64));
    CHECK(tail[4] == message::control_change(5, 123, 0));
    CHECK(tail[5] == message::control_change(5, 64, 0));
    CHECK(sounding(got).empty());
  };

  SECTION("panic()") {
    out->panic();
    check_ending(cap.wait_for(12), 6);
    CHECK(out->open_notes() == 0);
    out->panic();  // nothing open, no channel used: sends nothing
    CHECK(cap.wait_for(13, 100ms).size() == 12);
  }
  SECTION("close()") {
    out->close();
    CHECK_FALSE(out->is_open());
    check_ending(cap.wait_for(12), 6);
    CHECK_THROWS(out->note_on(0, 1, 1));
  }
  SECTION("destruction") {
    out.reset();
    check_ending(cap.wait_for(12), 6);
  }
}

TEST_CASE("async_note plays a note and always sends its note-off") {
  asio::io_context ctx;
  capture cap;
  output out(ctx.get_executor(), "capture:in", opts());
  tactus_tests::link(out, cap);

  SECTION("to its end") {
    const auto t0 = clock_type::now();
    std::error_code result = asio::error::would_block;
    out.async_note(1, 62, 80, 30ms, [&](std::error_code ec) { result = ec; });
    ctx.run();
    CHECK(clock_type::now() - t0 >= 30ms);
    CHECK_FALSE(result);
    CHECK(cap.wait_for(2) == std::vector<message>{message::note_on(1, 62, 80), message::note_off(1, 62)});
    CHECK(out.open_notes() == 0);
  }
  SECTION("cancelled: note-off, then operation_aborted") {
    asio::cancellation_signal cancel;
    std::error_code result;
    const auto t0 = clock_type::now();
    out.async_note(1, 62, 80, 10s,
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { result = ec; }));
    asio::steady_timer t(ctx, 20ms);
    t.async_wait([&](std::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    ctx.run();
    CHECK(clock_type::now() - t0 < 5s);
    CHECK(result == asio::error::operation_aborted);
    CHECK(cap.wait_for(2) == std::vector<message>{message::note_on(1, 62, 80), message::note_off(1, 62)});
  }
  SECTION("in a coroutine, panic in between: no second note-off") {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer t(ctx, 10ms);
          t.async_wait([&](std::error_code) { out.panic(); });
          co_await out.async_note(2, 70, 90, 40ms, asio::use_awaitable);
        },
        rethrow);
    ctx.run();
    const auto got = cap.wait_for(4);
    CHECK(got == std::vector<message>{message::note_on(2, 70, 90), message::note_off(2, 70),
                                      message::control_change(2, 123, 0), message::control_change(2, 64, 0)});
  }
  SECTION("an exception in the coroutine: the output's destructor ends the notes") {
    bool thrown = false;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          output local(ctx.get_executor(), "capture:in", opts());
          tactus_tests::link(local, cap);  // blocks the executor briefly: nothing else runs on it yet
          local.note_on(3, 40, 100);
          throw std::runtime_error("boom");
          co_return;
        },
        [&](std::exception_ptr e) { thrown = e != nullptr; });
    ctx.run();
    CHECK(thrown);
    const auto got = cap.wait_for(4);
    CHECK(sounding(got).empty());
    CHECK(has_cc(got, 3, 123, 0));
    CHECK(has_cc(got, 3, 64, 0));
  }
  SECTION("out-of-range arguments throw at once") {
    CHECK_THROWS_AS(out.async_note(16, 60, 100, 1ms, [](std::error_code) {}), std::invalid_argument);
    CHECK(out.open_notes() == 0);
  }
}

TEST_CASE("Ctrl-C: a signal_set cancels the player, and every note ends") {
  asio::io_context ctx;
  capture cap;
  std::exception_ptr outcome;
  bool done = false;
  {
    output out(ctx.get_executor(), "capture:in", opts());
    tactus_tests::link(out, cap);
    // The application pattern: SIGINT cancels the playing coroutine; the output ends the notes.
    asio::cancellation_signal stop_playing;
    asio::signal_set signals(ctx, SIGINT);
    signals.async_wait([&](std::error_code ec, int) {
      if (!ec) stop_playing.emit(asio::cancellation_type::terminal);
    });
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          out.note_on(9, 36, 127);  // a held drone, ended only by the sink
          for (;;) co_await out.async_note(9, 42, 100, 10s, asio::use_awaitable);
        },
        asio::bind_cancellation_slot(stop_playing.slot(), [&](std::exception_ptr e) {
          outcome = e;
          done = true;
        }));
    asio::steady_timer raise_later(ctx, 30ms);
    raise_later.async_wait([](std::error_code) { std::raise(SIGINT); });
    ctx.run();
  }  // ~output: note-offs, CC 123, CC 64
  REQUIRE(done);
  REQUIRE(outcome);
  try {
    std::rethrow_exception(outcome);
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  const auto got = cap.wait_for(6);
  CHECK(got.size() == 6);
  CHECK(sounding(got).empty());
  CHECK(has_cc(got, 9, 123, 0));
  CHECK(has_cc(got, 9, 64, 0));
}

namespace {
struct output_rig {
  asio::io_context io;
  output out{io.get_executor(), virtual_port, output_options{.backend = api::jack, .port_name = "token-rig"}};
  ~output_rig() { tactus_test::poll(io); }
};
}  // namespace

TEST_CASE("async_note (a duration) works with every completion token and every cancellation") {
  auto start = [](output_rig& r, auto&& token) {
    return r.out.async_note(0, 64, 100, 30ms, std::forward<decltype(token)>(token));
  };
  auto drive = [](output_rig& r) {
    r.io.restart();
    r.io.run_for(2s);  // real time: the note lasts 30 ms; run() returns when it has ended
  };
  tactus_test::completes_with_every_token<output_rig>(start, drive,
                                                      [](output_rig& r) { CHECK(r.out.open_count(0, 64) == 0); });
  tactus_test::aborts_on_every_cancellation<output_rig>(
      start, [](output_rig& r) { tactus_test::poll(r.io); }, drive, [](output_rig& r) { r.out.close(); });
}
