// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/midi/input.hpp>
#include <tactus/midi/message.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Test support: wait until a fresh JACK connection carries messages before a test sends any.
//
// Opening a port by name makes the connection at once in JACK's graph, but it takes effect some
// process cycles later; whatever the sender writes before then is lost. On an idle machine that
// is a millisecond, under ThreadSanitizer on a loaded one it can be seconds, so a test that sends
// right after connecting loses its first messages. After making a connection, link the two ends:
//
//   sender tx("in-sender");                            // anything with send(const message&)
//   tactus::midi::input in(ex, "in-sender:src", o);    // connects tx's port to ours
//   const auto probes = tactus_tests::link(tx, in);    // on the thread that runs in's executor,
//                                                      // while it is not running; before on_error
//   ... send; assert in.received() == probes.received + n, and so on
//
//   capture cap;                                       // anything with take() -> vector<message>
//   tactus::midi::output out(ex, "capture:in", o);
//   tactus_tests::link(out, cap);                      // the capture holds nothing afterwards
//
// The handshake sends probes (Song Select, value = probe number mod 128) until the receiver has
// seen one, then waits until it has seen the LAST probe sent: JACK delivers in order, so from then
// on no probe is in flight and every message the test sends arrives (or is dropped by the
// receiver itself, visibly). The probes are taken out of the receiver, so the test sees none.
// Song Select because it passes every RtMidi filter (sysex, timing, active sensing) and nothing in
// tactus acts on it, and it is no note, so an output's note tracking never sees it. A test of Song
// Select itself must link first (afterwards no probe remains). The sending side must be under the
// test's control (a child process cannot be linked this way).
//
// Reusable by every test on the `jack` fixture: midi_input, midi_output, the clock and the drum
// machine tests.

namespace tactus_tests {

struct link_options {
  /// Probes are sent this often until one arrives.
  std::chrono::milliseconds interval{20};
  /// When the last probe has not arrived after this long (the receiver may have dropped it),
  /// another one is sent and awaited instead, waiting twice as long each time (a slow link
  /// still converges).
  std::chrono::milliseconds resend{500};
  /// The whole handshake fails (std::runtime_error) after this long.
  std::chrono::milliseconds timeout{10'000};
};

/// The probe number `n`.
inline tactus::midi::message link_probe(std::uint64_t n) { return tactus::midi::message::song_select(int(n % 128)); }

/// The handshake over any link: `send(m)` sends from one end, `take()` returns (and removes) what
/// the other end received since the previous call. Returns how many probes arrived. Throws
/// std::runtime_error on timeout and std::logic_error if anything but a probe arrives.
/// Thread: the caller's; it blocks (sleeping 1 ms at a time) for the whole handshake.
template <class Send, class Take>
std::uint64_t establish_link(Send&& send, Take&& take, link_options o = {}) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + o.timeout;
  std::uint64_t sent = 0, seen = 0;
  int last_value = -1;  // the value of the last probe seen
  auto absorb = [&] {
    for (const tactus::midi::message& m : take()) {
      if (m.type() != tactus::midi::message_type::song_select)
        throw std::logic_error("jack_link: " + m.to_string() + " arrived during the handshake");
      ++seen;
      last_value = m.data1();
    }
  };
  auto send_probe = [&] { send(link_probe(sent++)); };
  auto wait = [&](auto until, auto done) {
    while (!done() && clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      absorb();
    }
    if (!done() && clock::now() >= deadline)
      throw std::runtime_error("jack_link: no probe arrived within " + std::to_string(o.timeout.count()) + " ms (" +
                               std::to_string(sent) + " sent, " + std::to_string(seen) + " seen)");
  };
  // 1. Until the connection carries anything.
  while (seen == 0) {
    send_probe();
    wait(std::min(clock::now() + o.interval, deadline), [&] { return seen != 0; });
  }
  // 2. Until the last probe sent has arrived: then every earlier one has arrived or is lost.
  // A probe arriving later than its own number would need 128 probes in flight at once (2.5 s of
  // them): values repeat only modulo 128.
  for (auto patience = clock::duration(o.resend);; patience *= 2) {
    const int last = int((sent - 1) % 128);
    wait(std::min(clock::now() + patience, deadline), [&] { return last_value == last; });
    if (last_value == last) return seen;
    send_probe();  // perhaps dropped (a tiny queue overflowing): await a newer one
  }
}

/// What a handshake added to an input's counters: the test's own messages come on top.
struct probe_counts {
  std::uint64_t arrived = 0;
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;
};

/// Links `tx` (anything with send(const tactus::midi::message&)) to the input `in` that has just
/// connected to it, taking the probes out of `in` with try_receive(). Call it on the thread that
/// runs `in`'s executor, while that is not running (try_receive is executor-only), and before
/// installing on_message or on_error (probes dropped by a small queue are then not reported).
/// Returns the input's counters after the handshake, which holds none of its messages any more.
template <class Sender>
requires requires(Sender& s, const tactus::midi::message& m) { s.send(m); }
probe_counts link(Sender& tx, tactus::midi::input& in, link_options o = {}) {
  establish_link([&](const tactus::midi::message& m) { tx.send(m); },
                 [&] {
                   std::vector<tactus::midi::message> got;
                   while (auto m = in.try_receive()) got.push_back(std::move(m->msg));
                   return got;
                 },
                 o);
  // RtMidi's callback counts a message in arrived() just after queueing it: wait for the count.
  const auto end = std::chrono::steady_clock::now() + o.timeout;
  while (in.arrived() != in.received() + in.dropped() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (in.arrived() != in.received() + in.dropped()) throw std::runtime_error("jack_link: arrived() never settled");
  return {in.arrived(), in.received(), in.dropped()};
}

/// Links `tx` to a raw receiver `rx` (anything with take() returning the messages it received
/// and forgetting them), e.g. a test's RtMidiIn capture. Returns how many probes arrived.
template <class Sender, class Receiver>
requires requires(Sender& s, Receiver& r, const tactus::midi::message& m) {
  s.send(m);
  { r.take() } -> std::convertible_to<std::vector<tactus::midi::message>>;
}
std::uint64_t link(Sender& tx, Receiver& rx, link_options o = {}) {
  return establish_link([&](const tactus::midi::message& m) { tx.send(m); }, [&] { return rx.take(); }, o);
}

}  // namespace tactus_tests
