// SPDX-License-Identifier: BSL-1.0
#include <tactus/link/follower.hpp>
#include <tactus/tactus.hpp>

#include <asio.hpp>  // first, as an application would: tactus::link must cope with any order

#include <cstdio>

// The package test's Link consumer: links tactus::link (so the package must bring Ableton Link
// along, with the flags its headers need) and runs a session of one, disabled: no network.

int main() {
  asio::io_context io;
  tactus::link::session link{io.get_executor(), tactus::bpm{123}, {.enabled = false}};
  tactus::metronome m{io.get_executor(), tactus::bpm{120}};
  tactus::link::follower follow{link, m, {.quantum = tactus::beats{4}}};
  if (link.tempo().value() != 123.0 || link.peers() != 0) {
    std::fprintf(stderr, "consumer_link: a session of one at 123 BPM says %g BPM, %zu peers\n", link.tempo().value(),
                 link.peers());
    return 1;
  }
  std::printf("consumer_link: tactus::link usable, a session of one at %g BPM\n", link.tempo().value());
  return 0;
}
