// SPDX-License-Identifier: BSL-1.0
#pragma once
// The metronome tests' harness in virtual time: a runner that records how run() ended (and can
// cancel it), and step(), which moves virtual time exactly to the next tick.
#include <tactus/metronome.hpp>
#include <tactus/testing/manual_clock.hpp>

#include "catch.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <exception>

using mc = tactus::testing::manual_clock;
using metronome = tactus::basic_metronome<mc>;
using tp = mc::time_point;

namespace {

// Runs the metronome coroutine; records how it ended. start_cancellable binds the coroutine to
// `cancel`, so that a test can cancel it.
struct runner {
  bool done = false;
  std::exception_ptr error;
  asio::cancellation_signal cancel;
  void start(asio::io_context& io, metronome& m, metronome::start_options o = {}) {
    asio::co_spawn(io, m.run(o), [this](std::exception_ptr e) { finished(e); });
    io.restart();
    io.poll();
  }
  void start_cancellable(asio::io_context& io, metronome& m) {
    asio::co_spawn(io, m.run(),
                   asio::bind_cancellation_slot(cancel.slot(), [this](std::exception_ptr e) { finished(e); }));
    io.restart();
    io.poll();
  }
  void finished(std::exception_ptr e) {
    done = true;
    error = e;
  }
};

// Moves virtual time exactly to the metronome's next deadline and runs what is ready.
[[maybe_unused]] void step(asio::io_context& io, metronome& m) {
  const auto next = m.next_deadline();
  REQUIRE(next != tp::max());
  mc::advance_to(next);
  io.restart();
  io.poll();
}

}  // namespace
