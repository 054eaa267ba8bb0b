// SPDX-License-Identifier: BSL-1.0
// handoff: a producer thread hands items to a coroutine on an io_context three ways, side by side
// in one run, and prints one JSON object on stdout:
//
//   channel       tactus::thread_channel (drop_oldest, --capacity slots): try_send on the thread,
//                 `co_await next()` on the loop (ours)
//   asio_post     asio::post(io, handler) per item: Asio's own cross-thread hand-off, unbounded,
//                 a lock and an allocation per item (the floor)
//   blocking_get  a mutex + condition_variable queue whose get() the loop calls, blocking, then
//                 yields (the naive way: a queue.Queue read on the loop, "fixed" with sleep(0))
//
// through four phases: the loop idle (a baseline for its heartbeat), --frames items every
// --frame-ms (a microphone's 20 ms frames, 640 bytes each), a flood of small items back to back
// for --flood-ms, and --stall-items sent while the loop is stalled for --stall-ms. For each:
// latency from the producer's stamp to the consumer (p50/p99/max), the lateness of a 1 ms
// heartbeat timer on the loop, how long each producer call took, and sent/received/dropped
// (lost_uncounted = sent - received - dropped must be 0). In the flood, asio_post and
// blocking_get would queue without bound: their producer waits while --backlog items are
// outstanding (counted as producer_waits); the channel's never waits, it drops the oldest.
// The frames phase interleaves the three methods in --rounds rounds, so that the machine's load
// hits them alike.
//
//   cmake --preset release && cmake --build --preset release --target handoff
//   build/release/bench/handoff                 # ~15 s
//   build/release/bench/handoff --frames 50 --flood-ms 300 --stall-items 20000 --idle-ms 300   # --quick
#include <tactus/thread_channel.hpp>
#include <tactus/yield.hpp>

#include "support/cli.hpp"
#include "support/json.hpp"
#include "support/stats.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double us(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double loadavg() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

using tactus_bench::percentiles;
using tactus_bench::summarise;

// At most this many samples per series are kept (a flood may pass tens of millions of items);
// the maximum is tracked over all of them.
constexpr std::size_t max_samples = 2'000'000;
void sample(std::vector<double>& v, double x) {
  if (v.size() < max_samples) v.push_back(x);
}

// A 20 ms frame of 16 kHz mono audio, and a small item for the floods.
struct frame {
  clock_type::time_point stamp{};
  std::int64_t seq = 0;  // -1: the end of the stream (blocking_get's sentinel)
  std::array<std::int16_t, 320> samples{};
};
struct small {
  clock_type::time_point stamp{};
  std::int64_t seq = 0;
};

// What one run of one method measured.
struct series {
  std::vector<double> latency_us, heartbeat_us, call_us;
  double max_call_us = 0, max_latency_us = 0;
  std::uint64_t sent = 0, received = 0, dropped = 0, producer_waits = 0;
  void append(const series& o) {
    latency_us.insert(latency_us.end(), o.latency_us.begin(), o.latency_us.end());
    heartbeat_us.insert(heartbeat_us.end(), o.heartbeat_us.begin(), o.heartbeat_us.end());
    call_us.insert(call_us.end(), o.call_us.begin(), o.call_us.end());
    max_call_us = std::max(max_call_us, o.max_call_us);
    max_latency_us = std::max(max_latency_us, o.max_latency_us);
    sent += o.sent;
    received += o.received;
    dropped += o.dropped;
    producer_waits += o.producer_waits;
  }
  void got(clock_type::time_point stamp) {
    const double l = us(clock_type::now() - stamp);
    sample(latency_us, l);
    max_latency_us = std::max(max_latency_us, l);
  }
};

// How the producer paces its items.
struct schedule {
  std::int64_t items = 0;         // how many (frames, stalled); 0: as many as `length` allows
  clock_type::duration period{};  // zero: back to back
  clock_type::duration stall{};   // the loop is blocked this long while the producer starts
  clock_type::duration length{};  // a flood: back to back until then
  std::uint64_t backlog = 0;      // unbounded methods only: the producer waits while this many
                                  // items are outstanding (else their queue grows without bound)
};

enum class method { channel, asio_post, blocking_get };
const char* name(method m) {
  switch (m) {
    case method::channel: return "channel";
    case method::asio_post: return "asio_post";
    case method::blocking_get: return "blocking_get";
  }
  return "?";
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// A timer every millisecond on the loop; its lateness is how long the loop kept it waiting.
// Missed ticks are skipped: one late wake-up is one sample.
asio::awaitable<void> heartbeat(asio::io_context& io, const bool& stop, std::vector<double>& late) {
  asio::steady_timer t{io};
  auto next = clock_type::now() + 1ms;
  while (!stop) {
    t.expires_at(next);
    co_await t.async_wait(asio::use_awaitable);
    const auto now = clock_type::now();
    late.push_back(us(now - next));
    while (next <= now) next += 1ms;
  }
}

// The producer's loop: stamps each item, times the call that hands it over. `consumed` counts
// what the consumer took, for the backlog limit.
template <class Item, class Send>
void produce(const schedule& s, std::atomic<bool>& go, const std::atomic<std::uint64_t>& consumed, series& r,
             Send&& send) {
  while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  r.call_us.reserve(std::min<std::size_t>(max_samples, s.items ? std::size_t(s.items) : max_samples));
  const auto start = clock_type::now();
  const auto end = start + s.length;
  std::int64_t i = 0;
  for (;; ++i) {
    if (s.items ? i >= s.items : clock_type::now() >= end) break;
    if (s.period != clock_type::duration::zero()) std::this_thread::sleep_until(start + i * s.period);
    if (s.backlog) {
      if (std::uint64_t(i) - consumed.load(std::memory_order_relaxed) >= s.backlog) ++r.producer_waits;
      while (std::uint64_t(i) - consumed.load(std::memory_order_relaxed) >= s.backlog) std::this_thread::yield();
    }
    Item it;
    it.seq = i;
    it.stamp = clock_type::now();
    send(std::move(it));
    const double c = us(clock_type::now() - it.stamp);
    sample(r.call_us, c);
    r.max_call_us = std::max(r.max_call_us, c);
  }
  r.sent = std::uint64_t(i);
}

// Room for every latency sample before the run: a vector growing on the loop (copying megabytes)
// would show in the heartbeat as the loop's own stall.
void reserve(series& r, const schedule& s) {
  r.latency_us.reserve(s.items ? std::min<std::size_t>(max_samples, std::size_t(s.items)) : max_samples);
  r.heartbeat_us.reserve(100'000);
}

template <class Item>
series run_channel(const schedule& s, std::size_t capacity) {
  series r;
  reserve(r, s);
  asio::io_context io;
  tactus::thread_channel<Item> ch{io.get_executor(), capacity};
  bool stop = false;
  std::atomic<bool> go{false};
  asio::co_spawn(io, heartbeat(io, stop, r.heartbeat_us), rethrow);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        go.store(true, std::memory_order_release);
        if (s.stall != clock_type::duration::zero()) std::this_thread::sleep_for(s.stall);  // the loop stalls
        while (auto it = co_await ch.next()) r.got(it->stamp);
        stop = true;
      },
      rethrow);
  series prod;
  const std::atomic<std::uint64_t> unused{0};  // the channel never makes its producer wait
  std::thread producer([&] {
    produce<Item>(schedule{s.items, s.period, s.stall, s.length, 0}, go, unused, prod,
                  [&](Item&& it) { ch.try_send(std::move(it)); });
    ch.close();
  });
  io.run();
  producer.join();
  r.call_us = std::move(prod.call_us);
  r.max_call_us = prod.max_call_us;
  r.sent = ch.sent();
  r.received = ch.received();
  r.dropped = ch.dropped();
  return r;
}

template <class Item>
series run_post(const schedule& s) {
  series r;
  reserve(r, s);
  asio::io_context io;
  bool stop = false;
  std::atomic<bool> go{false};
  auto work = asio::make_work_guard(io);  // until the producer's last post
  asio::co_spawn(io, heartbeat(io, stop, r.heartbeat_us), rethrow);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        go.store(true, std::memory_order_release);
        if (s.stall != clock_type::duration::zero()) std::this_thread::sleep_for(s.stall);
        co_return;
      },
      rethrow);
  series prod;
  std::atomic<std::uint64_t> consumed{0};
  std::thread producer([&] {
    produce<Item>(s, go, consumed, prod, [&](Item&& it) {
      asio::post(io, [&r, &consumed, it = std::move(it)] {
        r.got(it.stamp);
        ++r.received;
        consumed.store(r.received, std::memory_order_relaxed);
      });
    });
    asio::post(io, [&] {
      stop = true;
      work.reset();
    });
  });
  io.run();
  producer.join();
  r.call_us = std::move(prod.call_us);
  r.max_call_us = prod.max_call_us;
  r.producer_waits = prod.producer_waits;
  r.sent = prod.sent;
  return r;
}

// The naive way: an unbounded queue with a blocking get().
template <class Item>
class blocking_queue {
 public:
  void put(Item it) {
    {
      std::lock_guard<std::mutex> l(m_);
      q_.push_back(std::move(it));
    }
    cv_.notify_one();
  }
  Item get() {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return !q_.empty(); });
    Item it = std::move(q_.front());
    q_.pop_front();
    return it;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Item> q_;
};

template <class Item>
series run_blocking_get(const schedule& s) {
  series r;
  reserve(r, s);
  asio::io_context io;
  blocking_queue<Item> q;
  std::atomic<std::uint64_t> consumed{0};
  bool stop = false;
  std::atomic<bool> go{false};
  asio::co_spawn(io, heartbeat(io, stop, r.heartbeat_us), rethrow);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        go.store(true, std::memory_order_release);
        if (s.stall != clock_type::duration::zero()) std::this_thread::sleep_for(s.stall);
        for (;;) {
          Item it = q.get();  // blocks the loop until an item comes
          if (it.seq < 0) break;
          r.got(it.stamp);
          ++r.received;
          consumed.store(r.received, std::memory_order_relaxed);
          co_await tactus::yield();  // the sleep(0) that lets the loop breathe between items
        }
        stop = true;
      },
      rethrow);
  series prod;
  std::thread producer([&] {
    produce<Item>(s, go, consumed, prod, [&](Item&& it) { q.put(std::move(it)); });
    Item end;
    end.seq = -1;
    q.put(std::move(end));
  });
  io.run();
  producer.join();
  r.call_us = std::move(prod.call_us);
  r.max_call_us = prod.max_call_us;
  r.producer_waits = prod.producer_waits;
  r.sent = prod.sent;
  return r;
}

template <class Item>
series run(method m, const schedule& s, std::size_t capacity) {
  switch (m) {
    case method::channel: return run_channel<Item>(s, capacity);
    case method::asio_post: return run_post<Item>(s);
    case method::blocking_get: return run_blocking_get<Item>(s);
  }
  return {};
}

tactus_bench::json figures(const std::vector<double>& v, double max = -1) {
  const auto p = summarise(v);
  return {{"p50", tactus_bench::rounded(p.p50, 1)},
          {"p99", tactus_bench::rounded(p.p99, 1)},
          {"max", tactus_bench::rounded(std::max(p.max, max), 1)}};
}

tactus_bench::json report(const series& r) {
  return {{"latency_us", figures(r.latency_us, r.max_latency_us)},
          {"heartbeat_late_us", figures(r.heartbeat_us)},
          {"heartbeats", r.heartbeat_us.size()},
          {"producer_call_us", figures(r.call_us, r.max_call_us)},
          {"producer_waits", r.producer_waits},
          {"sent", r.sent},
          {"received", r.received},
          {"dropped", r.dropped},
          {"lost_uncounted", std::int64_t(r.sent) - std::int64_t(r.received) - std::int64_t(r.dropped)}};
}

double ratio(double a, double b) { return b > 0 ? tactus_bench::rounded(a / b, 2) : 0.0; }

}  // namespace

int main(int argc, char** argv) try {
  int frames = 200, rounds = 5, frame_ms = 20, flood_ms = 1000, backlog = 100000, stall_items = 100000;
  int stall_ms = 200, capacity = 1024, idle_ms = 1000;
  CLI::App app{"handoff: a producer thread to a coroutine, three ways, side by side", "handoff"};
  app.add_option("--frames", frames, "frames per method in the frames phase")->check(tactus_bench::range(1, 1'000'000));
  app.add_option("--rounds", rounds, "interleaved rounds of the frames phase")->check(tactus_bench::range(1, 1000));
  app.add_option("--frame-ms", frame_ms, "period of the frames, ms")->check(tactus_bench::range(1, 1000));
  app.add_option("--flood-ms", flood_ms, "length of the flood per method, ms")->check(tactus_bench::range(10, 60'000));
  app.add_option("--backlog", backlog, "asio_post and blocking_get: most items outstanding in a flood")
      ->check(tactus_bench::range(1, 10'000'000));
  app.add_option("--stall-items", stall_items, "items per method sent while the loop stalls")
      ->check(tactus_bench::range(1, 10'000'000));
  app.add_option("--stall-ms", stall_ms, "how long the loop stalls, ms")->check(tactus_bench::range(1, 10'000));
  app.add_option("--capacity", capacity, "the channel's slots")->check(tactus_bench::range(1, 1 << 24));
  app.add_option("--idle-ms", idle_ms, "length of the idle heartbeat baseline, ms")
      ->check(tactus_bench::range(10, 60'000));
  tactus_bench::parse(app, argc, argv);

  const auto cap = std::size_t(capacity);
  const method methods[] = {method::channel, method::asio_post, method::blocking_get};
  const double load_before = loadavg();

  // The loop idle: the heartbeat alone.
  std::vector<double> idle;
  {
    asio::io_context io;
    bool stop = false;
    asio::co_spawn(io, heartbeat(io, stop, idle), rethrow);
    asio::steady_timer end{io, std::chrono::milliseconds(idle_ms)};
    end.async_wait([&](std::error_code) { stop = true; });
    io.run();
  }

  // Frames, the three methods taking turns.
  std::vector<series> framed(3);
  for (int round = 0; round < rounds; ++round) {
    const auto n = frames / rounds + (round < frames % rounds ? 1 : 0);
    for (int k = 0; k < 3; ++k)
      framed[k].append(run<frame>(methods[k], schedule{n, std::chrono::milliseconds(frame_ms), {}}, cap));
  }
  // A flood, and a flood into a stalled loop.
  std::vector<series> flooded, stalled;
  for (auto m : methods)
    flooded.push_back(
        run<small>(m, schedule{0, {}, {}, std::chrono::milliseconds(flood_ms), std::uint64_t(backlog)}, cap));
  for (auto m : methods)
    stalled.push_back(run<small>(m, schedule{stall_items, {}, std::chrono::milliseconds(stall_ms)}, cap));
  const double load_after = loadavg();

  tactus_bench::json j;
  j["benchmark"] = "handoff";
  j["capacity"] = capacity;
  j["policy"] = "drop_oldest";
  j["idle_heartbeat_late_us"] = figures(idle);
  auto phase = [&](const char* key, const std::vector<series>& s, tactus_bench::json params) {
    for (int k = 0; k < 3; ++k) params[name(methods[k])] = report(s[k]);
    j[key] = params;
  };
  phase("frames", framed,
        {{"frames", frames}, {"frame_ms", frame_ms}, {"frame_bytes", sizeof(frame::samples)}, {"rounds", rounds}});
  phase("flood", flooded, {{"flood_ms", flood_ms}, {"backlog", backlog}});
  phase("stalled", stalled, {{"items", stall_items}, {"stall_ms", stall_ms}});

  // The goals, computed from the figures above.
  const auto frames_p99 = [&](int k) { return summarise(framed[k].latency_us).p99; };
  std::int64_t lost = 0;
  double max_call = 0;
  for (const auto* s : {&framed, &flooded, &stalled}) {
    const auto& c = (*s)[0];
    lost += std::int64_t(c.sent) - std::int64_t(c.received) - std::int64_t(c.dropped);
    max_call = std::max(max_call, c.max_call_us);
  }
  j["goals"] = {{"frames_p99_channel_over_post", ratio(frames_p99(0), frames_p99(1))},  // goal: <= 2
                {"flood_heartbeat_p99_channel_over_idle",
                 ratio(summarise(flooded[0].heartbeat_us).p99, summarise(idle).p99)},  // goal: <= 1.5
                {"channel_lost_uncounted", lost},                                      // goal: 0
                {"channel_max_producer_call_us", tactus_bench::rounded(max_call, 1)},  // goal: a few us
                {"channel_p99_producer_call_us_stalled", tactus_bench::rounded(summarise(stalled[0].call_us).p99, 2)}};
  j["loadavg_1m_before"] = load_before;
  j["loadavg_1m_after"] = load_after;
  tactus_bench::print(j);
  return lost == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "handoff: %s\n", e.what());
  return 1;
}
