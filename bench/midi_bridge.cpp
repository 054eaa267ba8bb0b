// SPDX-License-Identifier: BSL-1.0
// midi_bridge: how long a MIDI message takes from the backend's thread to the coroutine that
// receives it through tactus::midi::input, through the native JACK backend (from the message's
// frame time: the start of its JACK cycle, so how late the server ran the cycle is in it) and
// through RtMidi's JACK client (from steady_clock::now() in RtMidi's callback: the bridge alone),
// beside the floor (a bare asio::post from a foreign thread), and how much a flood loses. Prints
// one JSON object on stdout.
//
// Uses the JACK server named by JACK_DEFAULT_SERVER; when none answers, starts a private
// `jackd -d dummy` for the run and stops it at exit. Build in Release:
//   cmake --preset release && cmake --build --preset release --target midi_bridge
//   build/release/bench/midi_bridge
#include <tactus/midi/input.hpp>
#include <tactus/midi/ports.hpp>
#include <tactus/midi/rtmidi_close.hpp>

#include "support/cli.hpp"
#include "support/json.hpp"
#include "support/stats.hpp"
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <future>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace midi = tactus::midi;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double us(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

using tactus_bench::percentiles;
using tactus_bench::summarise;

// A private JACK server for when the environment names none that answers.
class private_jack {
 public:
  private_jack() {
    name_ = "tactus-bench-" + std::to_string(::getpid());
    ::setenv("JACK_DEFAULT_SERVER", name_.c_str(), 1);
    ::setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
    ::setenv("JACK_NO_START_SERVER", "1", 1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> args{"jackd", "-n", name_, "-d", "dummy", "-r", "48000", "-p", "128"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, "jackd", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start jackd (install the jackd2 package)");
    for (int i = 0; i < 100; ++i) {
      try {
        (void)midi::available_api(midi::api::jack);
        return;
      } catch (const midi::backend_unavailable&) {
        std::this_thread::sleep_for(100ms);
      }
    }
    stop();
    throw std::runtime_error("jackd did not come up within 10 s");
  }
  ~private_jack() { stop(); }
  const std::string& name() const { return name_; }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(100ms);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  std::string name_;
  pid_t pid_ = -1;
};

// The raw RtMidi sender: a virtual JACK output port the bridge connects to.
struct sender {
  sender() : out(RtMidi::UNIX_JACK, "bench-sender") { out.openVirtualPort("src"); }
  ~sender() { midi::quiesce(out); }  // RtMidi's own close can crash libjack
  void send(int i) {
    const unsigned char b[3] = {0x90, static_cast<unsigned char>(i % 128),
                                static_cast<unsigned char>(1 + (i / 128) % 127)};
    out.sendMessage(b, 3);
  }
  // A probe: Song Select `n % 128`, no note, which the bridge's consumer never counts.
  void probe(std::uint64_t n) {
    const unsigned char b[2] = {0xF3, static_cast<unsigned char>(n % 128)};
    out.sendMessage(b, 2);
  }
  RtMidiOut out;
};

struct run_result {
  std::vector<double> latency_us;
  std::uint64_t arrived = 0, received = 0, dropped = 0;
  clock_type::time_point last_receive{};
  clock_type::duration elapsed{};  // first send to last receive
};

// The consuming coroutine: receives until `expected` messages are accounted for or the deadline.
asio::awaitable<void> consume(midi::input& in, std::uint64_t expected, clock_type::time_point deadline,
                              std::vector<double>& latency, clock_type::time_point& last) {
  asio::cancellation_signal timeout;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  timer.async_wait([&](std::error_code ec) {
    if (!ec) timeout.emit(asio::cancellation_type::terminal);
  });
  try {
    while (in.received() + in.dropped() < expected) {
      auto m = co_await in.async_receive(asio::bind_cancellation_slot(timeout.slot(), asio::use_awaitable));
      latency.push_back(us(clock_type::now() - m.time));
      while (auto more = in.try_receive()) latency.push_back(us(clock_type::now() - more->time));
      last = clock_type::now();
    }
  } catch (const std::system_error&) {  // deadline: report what arrived
  }
  timer.cancel();
}

// Waits until the fresh connection from `tx` to `in` delivers: sends probes (Song Select, value
// = probe number mod 128) until one arrives, then until the last one sent has arrived (JACK
// delivers in order, so no probe is in flight any more), taking them out of the input. A fixed
// sleep instead lets JACK lose the first messages of a slow-to-connect run, which then count as
// sent but neither received nor dropped.
void link(asio::io_context& ctx, sender& tx, midi::input& in) {
  const auto deadline = clock_type::now() + 10s;
  std::uint64_t sent = 0;
  int last_seen = -1;
  auto drain = [&] {  // on the executor: in.try_receive is executor-only
    std::promise<int> got;
    asio::post(ctx, [&] {
      int v = -1;
      while (auto m = in.try_receive()) {
        if (m->msg.type() != midi::message_type::song_select)
          throw std::logic_error("midi_bridge: " + m->msg.to_string() + " arrived during the handshake");
        v = m->msg.data1();
      }
      got.set_value(v);
    });
    const int v = got.get_future().get();
    if (v >= 0) last_seen = v;
    return v >= 0;
  };
  auto wait_for = [&](auto done, clock_type::duration patience) {
    const auto until = std::min(clock_type::now() + patience, deadline);
    while (!done() && clock_type::now() < until) std::this_thread::sleep_for(1ms);
    if (!done() && clock_type::now() >= deadline)
      throw std::runtime_error("the connection to the bridge delivered nothing within 10 s");
  };
  bool any = false;
  while (!any) {
    tx.probe(sent++);
    wait_for([&] { return any = any || drain(); }, 20ms);
  }
  for (auto patience = clock_type::duration(500ms);; patience *= 2) {
    const int last = int((sent - 1) % 128);
    wait_for([&] { return drain(), last_seen == last; }, patience);
    if (last_seen == last) return;
    tx.probe(sent++);  // perhaps dropped: await a newer one
  }
}

// Sends `n` messages at `rate` per second (0: as fast as RtMidi takes them) into a fresh bridge.
run_result bridge_run(asio::io_context& ctx, sender& tx, int n, double rate, std::size_t capacity,
                      midi::api backend = midi::api::automatic) {
  midi::input_options o;
  o.backend = backend;
  o.client_name = "bench-bridge";
  o.capacity = capacity;
  o.rescan_interval = 0ms;
  std::promise<midi::input*> opened;
  std::unique_ptr<midi::input> in;
  asio::post(ctx, [&] {  // the input lives on the executor's thread
    in = std::make_unique<midi::input>(ctx.get_executor(), "bench-sender:src", o);
    opened.set_value(in.get());
  });
  opened.get_future().get();
  link(ctx, tx, *in);  // the connection carries messages: from here on, nothing is lost unseen

  // What the handshake left in the counters; the run's own messages come on top.
  // (RtMidi's callback counts a message in arrived() just after queueing it: wait for the count.)
  std::array<std::uint64_t, 3> base{};
  for (;;) {
    std::promise<std::array<std::uint64_t, 3>> before;
    asio::post(ctx, [&] { before.set_value({in->arrived(), in->received(), in->dropped()}); });
    base = before.get_future().get();
    if (base[0] == base[1] + base[2]) break;
    std::this_thread::sleep_for(1ms);
  }

  run_result r;
  r.latency_us.reserve(std::size_t(n));
  std::promise<void> done;
  const auto t0 = clock_type::now();
  const auto send_time = rate > 0 ? std::chrono::duration<double>(n / rate) : std::chrono::duration<double>(1.0);
  asio::co_spawn(
      ctx,
      consume(*in, base[1] + base[2] + std::uint64_t(n),
              t0 + std::chrono::duration_cast<clock_type::duration>(send_time) + 2s, r.latency_us, r.last_receive),
      [&](std::exception_ptr) { done.set_value(); });
  for (int i = 0; i < n; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(i / rate)));
    tx.send(i);
  }
  done.get_future().get();
  r.elapsed = r.last_receive - t0;
  std::promise<void> closed;
  asio::post(ctx, [&] {
    r.arrived = in->arrived() - base[0];
    r.received = in->received() - base[1];
    r.dropped = in->dropped() - base[2];
    in.reset();
    closed.set_value();
  });
  closed.get_future().get();
  return r;
}

// The floor: a bare asio::post from a foreign thread, stamped just before posting.
std::vector<double> post_run(asio::io_context& ctx, int n, double rate) {
  std::vector<double> latency;
  latency.reserve(std::size_t(n));
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(i / rate)));
    const auto stamp = clock_type::now();
    asio::post(ctx, [&latency, stamp] { latency.push_back(us(clock_type::now() - stamp)); });
  }
  std::promise<void> done;
  asio::post(ctx, [&] { done.set_value(); });
  done.get_future().get();
  return latency;
}

}  // namespace

int main(int argc, char** argv) try {
  int n = 3000;
  double rate = 1000;
  std::size_t capacity = 1024;
  int flood_n = 100000;
  CLI::App app{
      "midi_bridge: latency of tactus::midi::input from the backend's stamp to a coroutine (native JACK and "
      "RtMidi's JACK client), beside a bare asio::post, and what a flood loses; prints one JSON object",
      "midi_bridge"};
  app.add_option("--messages", n, "messages of the paced run")
      ->check(tactus_bench::range(1, 10'000'000))
      ->capture_default_str();
  app.add_option("--rate", rate, "messages per second of the paced run and of the asio::post floor")
      ->check(tactus_bench::range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--capacity", capacity, "the input's queue capacity (messages)")
      ->check(tactus_bench::range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--flood-messages", flood_n, "messages sent as fast as RtMidi takes them")
      ->check(tactus_bench::range(1, 100'000'000))
      ->capture_default_str();
  tactus_bench::parse(app, argc, argv);

  std::unique_ptr<private_jack> own;
  const char* env_server = std::getenv("JACK_DEFAULT_SERVER");
  try {
    (void)midi::available_api(midi::api::jack);
  } catch (const midi::backend_unavailable&) {
    own = std::make_unique<private_jack>();
  }

  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  sender tx;

  const auto bridge = bridge_run(ctx, tx, n, rate, capacity);
  const auto bl = summarise(bridge.latency_us);
  // The same run through RtMidi's JACK client (api::jack_rtmidi), stamped with steady_clock::now()
  // in RtMidi's callback: the bridge's own part alone. The native stamp is the message's frame
  // time, the start of JACK's cycle, so its figures also hold how late the server's cycle ran.
  const auto via_rtmidi = bridge_run(ctx, tx, n, rate, capacity, midi::api::jack_rtmidi);
  const auto rl = summarise(via_rtmidi.latency_us);
  const auto pl = summarise(post_run(ctx, n, rate));

  // Zero-loss throughput: the highest paced rate at which every message got through.
  double zero_loss_rate = 0;
  for (double r : {2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0, 200000.0}) {
    const int count = int(r * 0.5);
    const auto res = bridge_run(ctx, tx, count, r, capacity);
    if (res.received == std::uint64_t(count)) zero_loss_rate = r;
  }
  // Flood: as fast as RtMidi's sendMessage returns. Loss is split between JACK (never reached the
  // callback: RtMidi's output ring or the JACK port buffer was full) and our bounded queue.
  const auto flood = bridge_run(ctx, tx, flood_n, 0, capacity);

  work.reset();
  ctx.stop();
  runner.join();

  // The connection was live before the first message (link), so every message of the paced run
  // is accounted for: received or dropped by the bridge, never lost unseen.
  const auto exact_run = [n](const run_result& r) {
    return r.received + r.dropped == std::uint64_t(n) && r.arrived == std::uint64_t(n);
  };
  const bool exact = exact_run(bridge) && exact_run(via_rtmidi);
  for (const auto* r : {&bridge, &via_rtmidi})
    std::fprintf(stderr,
                 "midi_bridge: paced run (%s): sent %d, arrived %llu, received %llu + dropped %llu = %llu (%s)\n",
                 r == &bridge ? "native" : "rtmidi", n, (unsigned long long)r->arrived, (unsigned long long)r->received,
                 (unsigned long long)r->dropped, (unsigned long long)(r->received + r->dropped),
                 exact_run(*r) ? "exact" : "MISMATCH");

  tactus_bench::json j;
  j["benchmark"] = "midi_bridge";
  j["jack_server"] = own ? own->name() : (env_server ? env_server : "default");
  j["own_server"] = bool(own);
  j["rate_hz"] = std::llround(rate);
  j["sent"] = n;
  j["received"] = bridge.received;
  j["dropped"] = bridge.dropped;
  j["p50_us"] = tactus_bench::rounded(bl.p50, 1);
  j["p99_us"] = tactus_bench::rounded(bl.p99, 1);
  j["max_us"] = tactus_bench::rounded(bl.max, 1);
  j["stamp"] = "the message's frame time (native JACK backend)";
  j["rtmidi_received"] = via_rtmidi.received;
  j["rtmidi_dropped"] = via_rtmidi.dropped;
  j["rtmidi_p50_us"] = tactus_bench::rounded(rl.p50, 1);
  j["rtmidi_p99_us"] = tactus_bench::rounded(rl.p99, 1);
  j["rtmidi_max_us"] = tactus_bench::rounded(rl.max, 1);
  j["rtmidi_stamp"] = "steady_clock::now() in RtMidi's callback (api::jack_rtmidi)";
  j["post_p50_us"] = tactus_bench::rounded(pl.p50, 1);
  j["post_p99_us"] = tactus_bench::rounded(pl.p99, 1);
  j["post_max_us"] = tactus_bench::rounded(pl.max, 1);
  j["zero_loss_msgs_per_s"] = std::llround(zero_loss_rate);
  j["flood_sent"] = flood_n;
  j["flood_arrived"] = flood.arrived;
  j["flood_received"] = flood.received;
  j["flood_dropped_queue"] = flood.dropped;
  j["flood_lost_before_callback"] = std::uint64_t(flood_n) - flood.arrived;
  j["flood_msgs_per_s"] = std::llround(double(flood.received) / std::chrono::duration<double>(flood.elapsed).count());
  j["flood_p99_us"] = tactus_bench::rounded(summarise(flood.latency_us).p99, 1);
  tactus_bench::print(j);
  return exact ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "midi_bridge: %s\n", e.what());
  return 1;
}
