// SPDX-License-Identifier: BSL-1.0
// README "Beyond one machine: Ableton Link" and the usage comments of tactus/link/session.hpp
// and tactus/link/follower.hpp: a metronome in a Link session. The suite runs it in a private
// network namespace (tests/CMakeLists.txt), never on the machine's network.
#include <tactus/link/follower.hpp>
#include <tactus/metronome.hpp>
#include <tactus/rethrow.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <iostream>

int main() {
  asio::io_context io;
  tactus::link::session link{io.get_executor(), tactus::bpm{120}};
  tactus::metronome m{io.get_executor(), tactus::bpm{120}};
  tactus::link::follower follow{link, m, {.quantum = tactus::beats{4}}};
  m.on_beat([](const tactus::tick& t) { std::cout << t.bar << ':' << t.beat_in_bar << '\n'; });
  asio::co_spawn(io, m.run({.paused = true}), tactus::rethrow);
  asio::co_spawn(io, follow.run(), tactus::rethrow);
  follow.set_tempo(tactus::bpm{128});   // the whole session plays at 128

  io.run_for(std::chrono::milliseconds(1500));
  follow.stop();
  m.stop();
  io.run();
  return link.tempo() == tactus::bpm{128} ? 0 : 1;
}
