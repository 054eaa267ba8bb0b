// SPDX-License-Identifier: BSL-1.0
// Port listing, matching and backend selection, over real RtMidi ports on the JACK server that the
// `jack` CTest fixture starts (JACK_DEFAULT_SERVER names it).
#include <tactus/midi/input.hpp>
#include <tactus/midi/output.hpp>
#include <tactus/midi/ports.hpp>

#include "support/catch.hpp"
#include <asio/io_context.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

using namespace tactus::midi;
using Catch::Matchers::ContainsSubstring;

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
std::string lower(std::string s) { return tactus::midi::detail::lower(s); }
bool has_alsa_seq() { return std::filesystem::exists("/dev/snd/seq"); }
}  // namespace

TEST_CASE("backend selection") {
  SECTION("automatic falls back to JACK without an ALSA sequencer") {
    if (has_alsa_seq()) TACTUS_SKIP("/dev/snd/seq exists here: automatic may pick ALSA");
    else CHECK(available_api() == api::jack);
    CHECK(available_api(api::jack) == api::jack);
  }
  SECTION("asking for ALSA without a sequencer says why") {
    if (has_alsa_seq()) TACTUS_SKIP("/dev/snd/seq exists here: ALSA is available, its absence cannot be tested");
    try {
      (void)input_ports(api::alsa);
      FAIL("expected backend_unavailable");
    } catch (const backend_unavailable& e) {
      REQUIRE(e.attempts().size() == 1);
      CHECK_THAT(e.what(), ContainsSubstring("alsa:") && ContainsSubstring("/dev/snd/seq"));
    }
  }
  SECTION("with no JACK server either, the error names every backend tried") {
    const std::string saved = std::getenv("JACK_DEFAULT_SERVER") ? std::getenv("JACK_DEFAULT_SERVER") : "";
    ::setenv("JACK_DEFAULT_SERVER", "tactus-no-such-server", 1);
    try {
      (void)output_ports();
      ::setenv("JACK_DEFAULT_SERVER", saved.c_str(), 1);
      FAIL("expected backend_unavailable");
    } catch (const backend_unavailable& e) {
      ::setenv("JACK_DEFAULT_SERVER", saved.c_str(), 1);
      CHECK_THAT(e.what(), ContainsSubstring("jack:") && ContainsSubstring("tactus-no-such-server"));
      CHECK(e.attempts().size() == 2);
    }
  }
}

TEST_CASE("listing and matching ports") {
  asio::io_context ctx;
  input_options io;
  io.client_name = "ports-in";  // distinct clients: JACK renames a second "x" to "x-01"
  io.port_name = "Virtual In";
  input vin(ctx.get_executor(), virtual_port, io);
  output_options oo;
  oo.client_name = "ports-out";
  oo.port_name = "Virtual Out";
  output vout(ctx.get_executor(), virtual_port, oo);
  const std::string vin_name = "ports-in:Virtual In", vout_name = "ports-out:Virtual Out";

  SECTION("our virtual input is a destination, our virtual output a source") {
    CHECK(vin.port_name() == vin_name);  // the name others see and open
    CHECK(vout.port_name() == vout_name);
    CHECK(contains(output_ports(), vin_name));
    CHECK(contains(input_ports(), vout_name));
    CHECK_FALSE(contains(input_ports(), vin_name));
  }
  SECTION("substring matching ignores case") {
    CHECK(find_output_port("PORTS-IN:virtual in") == vin_name);
    CHECK(find_input_port("virtual OUT") == vout_name);
  }
  SECTION("no match: the error lists the available ports") {
    try {
      (void)find_output_port("no-such-port-xyz");
      FAIL("expected port_not_found");
    } catch (const port_not_found& e) {
      CHECK(e.wanted() == "no-such-port-xyz");
      CHECK(contains(e.available(), vin_name));
      CHECK_THAT(e.what(), ContainsSubstring("no-such-port-xyz") && ContainsSubstring(vin_name));
    }
    CHECK_THROWS_AS(input(ctx.get_executor(), "no-such-port-xyz"), port_not_found);
    CHECK_THROWS_AS(output(ctx.get_executor(), "no-such-port-xyz"), port_not_found);
  }
  SECTION("several matches: the first in the backend's order wins") {
    output_options o2 = oo;
    o2.client_name = "ports-out2";
    o2.port_name = "Virtual Out 2";
    output vout2(ctx.get_executor(), virtual_port, o2);
    const auto names = input_ports();
    const auto first = std::find_if(names.begin(), names.end(),
                                    [](auto& n) { return lower(n).find("virtual out") != std::string::npos; });
    REQUIRE(first != names.end());
    CHECK(find_input_port("VIRTUAL OUT") == *first);
  }
  SECTION("opening by name connects to that port") {
    output to_vin(ctx.get_executor(), "ports-in:virtual in");
    CHECK(to_vin.port_name() == vin_name);
    CHECK(to_vin.backend() == api::jack);
    input from_vout(ctx.get_executor(), "ports-out:virtual out");
    CHECK(from_vout.port_name() == vout_name);
    CHECK(from_vout.connected());
  }
}
