// SPDX-License-Identifier: BSL-1.0
// The drum machine whole, in virtual time: its player and sound (examples/drum_machine) on a
// metronome on the manual clock, playing into recording outputs. On the internal clock every
// note must sound at its exact grid time (swing and a tempo change included) and end at its
// exact end; following a simulated 24 ppqn clock (jitter, STOP/CONTINUE, a lost clock, a Song
// Position Pointer) every note lands on the source's grid within a stated bound, and none is
// ever left sounding. The JACK test (drum_machine_test) keeps what only a real server shows.
#include <tactus/midi/clock_follower.hpp>
#include <tactus/testing/manual_clock.hpp>
#include <tactus/testing/recording_output.hpp>

#include "../examples/drum_machine/pattern.hpp"
#include "../examples/drum_machine/player.hpp"
#include "../examples/drum_machine/sound.hpp"
#include "support/catch.hpp"
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <span>
#include <vector>

using namespace std::chrono_literals;
using mc = tactus::testing::manual_clock;
using tactus::beats;
using tactus::midi::message;
namespace dm = drum_machine;
using recorder = tactus::testing::recording_output<mc>;

namespace {

double seconds(mc::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

// The drum machine's parts on a 16th-note metronome, into two recorders.
struct machine {
  asio::io_context io;
  recorder drums_port, bass_port;
  tactus::basic_metronome<mc> metro;
  dm::pattern pattern;
  dm::sound<mc> sound;
  dm::player<mc> player;
  bool finished = false;

  machine(const char* name, double swing, tactus::bpm tempo = tactus::bpm{120})
      : metro((mc::reset(), io.get_executor()), tempo, tactus::meter{4}, tactus::subdivision{dm::steps_per_beat}),
        pattern(dm::builtin_pattern(name)),
        sound(metro, port_of(drums_port), 9, port_of(bass_port), 0, std::nullopt, swing),
        player(metro, pattern, sound, swing) {}

  // A part's port on a recorder: scheduled notes recorded at the time asked for, the recorder's
  // lookahead (5 ms).
  static dm::port<mc> port_of(recorder& r) {
    return {[&r](const message& m) { r.send(m); },
            [&r](const message& m, mc::time_point t) { r.send_at(m, t); },
            {},
            std::chrono::nanoseconds(r.lookahead())};
  }

  // The player first (it awaits the first tick), then the metronome.
  void start(long bars, bool paused = false) {
    asio::co_spawn(io, player.run(bars), [this](std::exception_ptr e) {
      finished = true;
      try {
        if (e) std::rethrow_exception(e);
      } catch (const std::system_error& x) {  // the metronome stopped under it
        if (x.code() != asio::error::operation_aborted) throw;
      }
    });
    asio::co_spawn(io, metro.run({.paused = paused}), tactus::rethrow);
    io.poll();
  }
  void stop() {
    metro.stop();
    io.restart();
    io.poll();
    sound.close();
  }
};

struct note_event {
  double time;  // seconds
  message msg;
};

std::vector<note_event> notes_of(const recorder& r) {
  std::vector<note_event> out;
  for (const auto& e : r.events())
    if (e.msg.is_note_on() || e.msg.is_note_off()) out.push_back({seconds(e.time), e.msg});
  return out;
}

// What `bars` bars of `p` must sound, on the grid the metronome plays: for each step k (a 16th
// at beat position k/4), each note-on at time_of(k/4 + swing on odd steps), its note-off at
// time_of(the grid point where it ends).
template <class TimeOf>
std::multimap<double, message> expected_notes(const dm::pattern& p, long bars, double swing, int drums_ch, int bass_ch,
                                              TimeOf time_of, bool drums) {
  std::multimap<double, message> out;
  const long steps = bars * 16;
  for (long k = 0; k < steps; ++k) {
    const int step = int(k % p.steps());
    const double grid = double(k) / 4;
    const double start = grid + (step % 2 ? swing / 4 : 0);
    if (drums) {
      for (const auto& d : p.drums)
        if (d.steps[step]) {
          out.emplace(time_of(start), message::note_on(drums_ch, d.key, d.steps[step]));
          out.emplace(time_of(grid + 0.25), message::note_off(drums_ch, d.key));
        }
    } else if (!p.bass.empty() && p.bass[step].length > 0) {
      const auto& n = p.bass[step];
      out.emplace(time_of(start), message::note_on(bass_ch, n.key, n.velocity));
      out.emplace(time_of(grid + 0.25 * n.length), message::note_off(bass_ch, n.key));
    }
  }
  return out;
}

// The same events, as sent (times to the nanosecond), as a multimap for comparison.
std::multimap<double, message> as_map(const std::vector<note_event>& ev) {
  std::multimap<double, message> out;
  for (const auto& e : ev) out.emplace(std::round(e.time * 1e9) / 1e9, e.msg);
  return out;
}
std::multimap<double, message> rounded(const std::multimap<double, message>& m) {
  std::multimap<double, message> out;
  for (const auto& [t, msg] : m) out.emplace(std::round(t * 1e9) / 1e9, msg);
  return out;
}

// The first difference of two event maps, for the failure message.
std::string first_difference(const std::multimap<double, message>& got, const std::multimap<double, message>& want) {
  auto g = got.begin();
  auto w = want.begin();
  for (; g != got.end() && w != want.end(); ++g, ++w)
    if (g->first != w->first || !(g->second == w->second)) break;
  auto show = [](auto it, auto end) {
    return it == end ? std::string("(end)") : std::to_string(it->first) + " s " + it->second.to_string();
  };
  return "sent " + show(g, got.end()) + ", expected " + show(w, want.end()) + " (" + std::to_string(got.size()) +
         " sent, " + std::to_string(want.size()) + " expected)";
}

// At any time, for a key sounding twice in a row, the note-off comes before the next note-on of
// that time (repeated notes are never cut to nothing).
void check_offs_before_ons(const std::vector<note_event>& ev) {
  std::map<std::pair<int, int>, int> sounding;
  for (const auto& e : ev) {
    auto& n = sounding[{e.msg.channel(), e.msg.key()}];
    if (e.msg.is_note_on()) {
      INFO("note-on of a key still sounding at " << e.time << " s: " << e.msg.to_string());
      CHECK(n == 0);
      ++n;
    } else if (n > 0) {
      --n;
    }
  }
}

}  // namespace

TEST_CASE("drum machine, internal clock: 4 bars with swing and a tempo change, every note exact, every one ended") {
  for (const char* name : {"four-on-the-floor", "electro", "acid", "breakbeat"}) {
    INFO("pattern " << name);
    machine dm(name, 0.25);
    dm.start(4);
    tactus::testing::advance(dm.io, 1s);
    dm.metro.set_tempo(tactus::bpm{150}, tactus::tempo_change::next_bar);  // at beat 4, t = 2 s
    tactus::testing::advance(dm.io, 10s);
    REQUIRE(dm.finished);  // 2 s + 12 beats at 0.4 s = 6.8 s, and the last notes ended
    CHECK(dm.player.error() == std::error_code{});
    auto time_of = [](double beat) { return beat < 4 ? beat * 0.5 : 2.0 + (beat - 4) * 0.4; };
    const auto drums = notes_of(dm.drums_port), bass = notes_of(dm.bass_port);
    for (bool part_drums : {true, false}) {
      const auto got = as_map(part_drums ? drums : bass);
      const auto want = rounded(expected_notes(dm.pattern, 4, 0.25, 9, 0, time_of, part_drums));
      INFO((part_drums ? "drums: " : "bass: ") << first_difference(got, want));
      CHECK(got == want);
    }
    // The recording files each note at its exact position: 480 ticks a beat, swing at 120 x 0.25.
    const auto smf = tactus::midi::smf_read(std::span<const std::uint8_t>(dm.sound.recording().bytes()));
    std::multiset<std::uint64_t> filed, planned;
    for (const auto& e : smf.tracks.at(0).events)
      if (e.msg.is_note_on()) filed.insert(e.tick);
    for (const auto& [t, m] : expected_notes(
             dm.pattern, 4, 0.25, 9, 0, [](double beat) { return beat; }, true))
      if (m.is_note_on()) planned.insert(std::uint64_t(std::llround(t * 480)));
    CHECK(filed == planned);
    check_offs_before_ons(drums);
    check_offs_before_ons(bass);
    // Every note handed to the output's send_at one lookahead (5 ms) before its exact time, but
    // the first step's, played as the run begins; none late.
    for (const auto* port : {&dm.drums_port, &dm.bass_port}) {
      CHECK(port->late() == 0);
      for (const auto& e : port->events()) {
        if (!(e.msg.is_note_on() || e.msg.is_note_off())) continue;
        INFO(seconds(e.time) << " s " << e.msg.to_string() << ", handed over at " << seconds(e.queued) << " s");
        CHECK(e.scheduled);
        if (e.time > mc::time_point(100ms)) CHECK(std::abs(seconds(e.time) - seconds(e.queued) - 0.005) < 1e-6);
      }
    }
    CHECK(dm.drums_port.open_notes() == 0);  // before any panic: every note ended on its own
    CHECK(dm.bass_port.open_notes() == 0);
    dm.stop();
  }
}

TEST_CASE("drum machine, internal clock: stopped at any moment, every note ends at once") {
  // Stop between steps, on a step, inside a swung step's delay: nothing sounds afterwards.
  for (auto at : {1000ms, 1062ms, 1093ms, 1125ms, 1140ms}) {
    INFO("stopped at " << at.count() << " ms");
    machine dm("electro", 0.3);
    dm.start(0);
    tactus::testing::advance(dm.io, at);
    dm.stop();
    CHECK(dm.drums_port.open_notes() == 0);
    CHECK(dm.bass_port.open_notes() == 0);
    const auto last = dm.drums_port.events().back().msg;  // panic: CC 64 last
    CHECK(last == message::control_change(9, 64, 0));
  }
}

namespace {

// A 24 ppqn clock source in virtual time, arriving with jitter: pulse n is due at origin + n x
// period, and arrives within +-jitter of it.
struct clock_source {
  machine& dm;
  tactus::midi::basic_clock_follower<mc>& follower;
  std::chrono::nanoseconds period;
  std::chrono::nanoseconds jitter;
  std::map<std::int64_t, mc::time_point> ideal{};  // each pulse sent, at its due time
  std::mt19937 rng{20261202};
  std::int64_t pulse = 0;  // the song position of the next CLOCK
  mc::time_point origin{};

  void at(mc::time_point t, const message& m) {
    tactus::testing::advance(dm.io, t - mc::now());
    follower.on_message(m, mc::now());
    dm.io.restart();
    dm.io.poll();
  }
  mc::time_point due(std::int64_t n) const { return origin + period * n; }
  // `n` pulses, each at its due time plus jitter.
  void pulses(int n) {
    std::uniform_int_distribution<std::int64_t> j(-jitter.count(), jitter.count());
    for (int i = 0; i < n; ++i, ++pulse) {
      ideal[pulse] = due(pulse);
      at(due(pulse) + std::chrono::nanoseconds(j(rng)), message::clock());
    }
  }
  // Silence until `t`, time running.
  void wait_until(mc::time_point t) { tactus::testing::advance(dm.io, t - mc::now()); }
};

}  // namespace

TEST_CASE(
    "drum machine following a simulated MIDI clock: jitter, STOP/CONTINUE, a lost clock, a Song Position "
    "Pointer, on the source's grid, zero stuck notes") {
  machine dm("four-on-the-floor", 0.0);
  tactus::midi::basic_clock_follower<mc> follower{dm.metro};
  std::vector<std::pair<double, tactus::midi::transport_state>> changes;
  follower.on_state_change([&](tactus::midi::transport_state s) {
    changes.emplace_back(seconds(mc::now()), s);
    if (s != tactus::midi::transport_state::playing) dm.player.stop_sounding();  // as main.cpp does
  });
  dm.start(0, /*paused=*/true);
  // 125 BPM: a pulse every 20 ms; arrivals within +-1 ms.
  clock_source src{dm, follower, 20ms, 1ms, {}};
  src.origin = mc::time_point(1s);
  std::vector<std::pair<std::int64_t, std::int64_t>> segments;  // pulses [from, to) that were playing
  const auto drums_before = [&] { return dm.drums_port.events().size(); };

  // START, 2 bars (192 pulses), STOP.
  src.at(src.due(0) - 5ms, message::start());
  src.pulses(192);
  segments.emplace_back(0, 192);
  src.at(src.due(192) - 10ms, message::stop());
  CHECK(dm.drums_port.open_notes() == 0);
  CHECK(dm.bass_port.open_notes() == 0);
  // Silence: nothing plays while stopped.
  const auto n_stopped = drums_before();
  src.origin += 1s;  // the source waits a second, then CONTINUE from pulse 192
  src.wait_until(src.due(192) - 20ms);
  CHECK(drums_before() == n_stopped);
  src.at(src.due(192) - 5ms, message::continue_());
  src.pulses(96);  // one bar
  // The clock is lost (a cable pulled): no STOP, no pulse for a while. Nothing tells the follower
  // yet when the 16th of pulse 288 is due: it plays, on the source's grid; nothing after it does.
  segments.emplace_back(192, 289);
  src.ideal[288] = src.due(288);
  const auto lost_from = src.due(288);
  src.wait_until(lost_from + 3s);
  CHECK(dm.drums_port.open_notes() == 0);
  CHECK(dm.bass_port.open_notes() == 0);
  const auto n_lost = drums_before();
  // Back: a Song Position Pointer to bar 5 (sixteenth 64 = pulse 384), then CONTINUE.
  src.origin = lost_from + 4s - src.period * 384;
  src.pulse = 384;
  src.at(src.due(384) - 10ms, message::song_position(64));
  src.at(src.due(384) - 5ms, message::continue_());
  CHECK(drums_before() == n_lost);
  src.pulses(192);
  segments.emplace_back(384, 576);
  src.at(src.due(576) - 10ms, message::stop());
  CHECK(dm.drums_port.open_notes() == 0);
  CHECK(dm.bass_port.open_notes() == 0);

  // Transitions, in order.
  using ts = tactus::midi::transport_state;
  std::vector<ts> seen;
  for (auto& c : changes) seen.push_back(c.second);
  CHECK(seen == std::vector<ts>{ts::playing, ts::stopped, ts::playing, ts::lost, ts::playing, ts::stopped});

  // Every note-on on the source's grid: the note of step k belongs to pulse 6k, whose due time
  // (without jitter) the source knows. Bound: the source's own jitter (+-1 ms).
  const double bound = 0.001;
  double worst = 0;
  std::map<std::int64_t, int> ons_at;  // note-ons per 16th (pulse index)
  for (const auto* port : {&dm.drums_port, &dm.bass_port})
    for (const auto& e : port->events()) {
      if (!e.msg.is_note_on()) continue;
      const double t = seconds(e.time);
      auto nearest = src.ideal.begin();
      for (auto it = src.ideal.begin(); it != src.ideal.end(); ++it)
        if (it->first % 6 == 0 && std::abs(seconds(it->second) - t) < std::abs(seconds(nearest->second) - t))
          nearest = it;
      worst = std::max(worst, std::abs(seconds(nearest->second) - t));
      ++ons_at[nearest->first];
    }
  std::printf(
      "figure: drum machine on a simulated 125 BPM clock with +-1 ms jitter: worst note-on %.3f ms from "
      "the source's 16th\n",
      worst * 1000);
  CHECK(worst <= bound);
  // Exactly the pattern's notes at each 16th the source played, and none elsewhere.
  std::map<std::int64_t, int> expected;
  for (auto [from, to] : segments)
    for (std::int64_t p = from; p < to; p += 6) {
      const int step = int((p / 6) % dm.pattern.steps());
      int n = 0;
      for (const auto& d : dm.pattern.drums) n += d.steps[step] != 0;
      n += !dm.pattern.bass.empty() && dm.pattern.bass[step].length > 0;
      if (n) expected[p] = n;
    }
  CHECK(ons_at == expected);
  follower.shutdown();
  dm.stop();
}
