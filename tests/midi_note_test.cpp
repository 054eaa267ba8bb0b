// SPDX-License-Identifier: BSL-1.0
// Notes measured in beats, in virtual time: a real RtMidi output port (JACK fixture) driven by a
// metronome on the manual clock, so every note-off's moment is exact.
#include <tactus/midi/note.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "support/catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <optional>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tactus::beats;

TEST_CASE("a note lasts its length in beats on the metronome's grid") {
  mc::reset();
  asio::io_context io;
  tactus::midi::output out(io.get_executor(), tactus::midi::virtual_port,
                           tactus::midi::output_options{.backend = tactus::midi::api::jack, .port_name = "note-test"});
  tactus::basic_metronome<mc> m{io.get_executor(), tactus::bpm{120}, tactus::meter{4}, tactus::subdivision{4}};
  asio::co_spawn(io, m.run(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.poll();  // tick 0 at t = 0; a tick is 125 ms
  std::optional<std::error_code> done;

  SECTION("half a beat from a grid point ends two ticks later, exactly") {
    tactus::midi::async_note(out, m, 9, 36, 100, beats{0.5}, [&](std::error_code ec) { done = ec; });
    CHECK(out.open_count(9, 36) == 1);
    tactus::testing::advance(io, 249ms);
    CHECK(out.open_count(9, 36) == 1);
    CHECK_FALSE(done);
    tactus::testing::advance(io, 1ms);
    CHECK(out.open_count(9, 36) == 0);
    REQUIRE(done);
    CHECK_FALSE(*done);
  }
  SECTION("cancelled, the note-off is still sent") {
    asio::cancellation_signal sig;
    tactus::midi::async_note(out, m, 0, 60, 90, beats{4},
                             asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec) { done = ec; }));
    tactus::testing::advance(io, 300ms);
    CHECK(out.open_count(0, 60) == 1);
    sig.emit(asio::cancellation_type::terminal);
    io.poll();
    CHECK(out.open_count(0, 60) == 0);
    REQUIRE(done);
    CHECK(*done == asio::error::operation_aborted);
  }
  SECTION("the metronome stopping ends the note") {
    tactus::midi::async_note(out, m, 0, 61, 90, beats{8}, [&](std::error_code ec) { done = ec; });
    tactus::testing::advance(io, 100ms);
    m.stop();
    io.poll();
    CHECK(out.open_count(0, 61) == 0);
    REQUIRE(done);
    CHECK(*done == asio::error::operation_aborted);
  }
  SECTION("bad lengths are refused at once") {
    CHECK_THROWS_AS(tactus::midi::async_note(out, m, 0, 60, 90, beats{0}, [](std::error_code) {}),
                    std::invalid_argument);
    CHECK(out.open_count(0, 60) == 0);
  }
  m.stop();
  io.poll();
}
