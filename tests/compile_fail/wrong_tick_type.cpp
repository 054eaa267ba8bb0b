// SPDX-License-Identifier: BSL-1.0
// Must NOT compile: a callback taking tactus::tick (a steady_clock tick) on a metronome of the
// manual clock. The error must name the expected type in a line or two, not a page of templates.
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include <asio/io_context.hpp>

int main() {
  asio::io_context io;
  tactus::basic_metronome<tactus::testing::manual_clock> m{io.get_executor(), tactus::bpm{120}};
  m.on_beat([](const tactus::tick&) {});
}
