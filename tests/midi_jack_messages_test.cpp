// SPDX-License-Identifier: BSL-1.0
// libjack's own messages (tactus/midi/jack_messages.hpp): a capture takes the lines of a failed
// connection on its thread, a handler every other line, nullptr discards them. No server is
// needed: every connection here goes to a server that does not exist.
#include <tactus/midi/jack_messages.hpp>
#include <tactus/midi/ports.hpp>

#include "support/catch.hpp"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace tactus::midi;
using Catch::Matchers::ContainsSubstring;

namespace {

std::mutex heard_mutex;
std::vector<std::string> heard;  // what the test's handler received
void collect(jack_message_level level, const char* line) {
  std::lock_guard lock(heard_mutex);
  heard.push_back((level == jack_message_level::error ? "E " : "I ") + std::string(line));
}
std::vector<std::string> take_heard() {
  std::lock_guard lock(heard_mutex);
  return std::exchange(heard, {});
}

struct no_server {  // JACK_DEFAULT_SERVER names no server for the test's length
  std::string saved = std::getenv("JACK_DEFAULT_SERVER") ? std::getenv("JACK_DEFAULT_SERVER") : "";
  no_server() { ::setenv("JACK_DEFAULT_SERVER", "tactus-no-such-server-msgs", 1); }
  ~no_server() { ::setenv("JACK_DEFAULT_SERVER", saved.c_str(), 1); }
};

}  // namespace

TEST_CASE("libjack's messages") {
  no_server env;
  REQUIRE(set_jack_message_handler(&collect));  // RtMidi loaded libjack: there is something to route

  SECTION("the probe captures the lines of its failed connection, quotes the first, passes on none") {
    const auto problem = detail::jack_server_problem("msgs-probe");
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, ContainsSubstring("tactus-no-such-server-msgs") && ContainsSubstring("libjack: "));
    CHECK(take_heard().empty());
  }
  SECTION("backend_unavailable says why in one line") {
    try {
      (void)input_ports(api::jack);
      FAIL("expected backend_unavailable");
    } catch (const backend_unavailable& e) {
      CHECK_THAT(e.what(), ContainsSubstring("jack: no JACK server \"tactus-no-such-server-msgs\" answers (libjack: "));
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
    CHECK(take_heard().empty());
  }
  SECTION("outside a capture the handler hears them, on any thread; nullptr discards them") {
    auto fail_to_connect = [] {
      using open_fn = void* (*)(const char*, int, int*, ...);
      const auto open = reinterpret_cast<open_fn>(::dlsym(RTLD_DEFAULT, "jack_client_open"));
      REQUIRE(open);
      int status = 0;
      CHECK(open("msgs-direct", 0x01, &status) == nullptr);
    };
    std::thread(fail_to_connect).join();
    const auto lines = take_heard();
    REQUIRE(!lines.empty());
    CHECK_THAT(lines.front(), ContainsSubstring("E "));
    set_jack_message_handler(nullptr);
    fail_to_connect();
    CHECK(take_heard().empty());
    jack_message_capture capture;  // a capture still takes them
    fail_to_connect();
    CHECK(!capture.lines().empty());
  }
  set_jack_message_handler(&print_jack_message);
}
