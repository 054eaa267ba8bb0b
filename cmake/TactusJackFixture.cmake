# SPDX-License-Identifier: BSL-1.0
# CTest fixture `jack`: a private JACK server (dummy backend) for the tests that talk MIDI over
# real RtMidi ports. Tests opt in with FIXTURES_REQUIRED jack and reach the server through
# JACK_DEFAULT_SERVER=${TACTUS_JACK_SERVER} (tactus_add_test(... FIXTURES jack) does both).
# CTest pulls in the setup and cleanup tests by itself, e.g. for `ctest -L jack` or `-R midi_input`.
#
# Sets TACTUS_JACK_SERVER: a server name unique to this build tree, so two build trees (or two
# engineers) testing at once never share or stop each other's server.
include_guard(GLOBAL)

string(SHA1 _tactus_jack_hash "${CMAKE_BINARY_DIR}")
string(SUBSTRING "${_tactus_jack_hash}" 0 12 _tactus_jack_hash)
set(TACTUS_JACK_SERVER "tactus-test-${_tactus_jack_hash}")
set(TACTUS_JACK_STATE_DIR "${CMAKE_BINARY_DIR}/jack-fixture")
set(_tactus_jack_script "${CMAKE_CURRENT_LIST_DIR}/jack-server.sh")

# Under ThreadSanitizer the JACK threads of an instrumented test must not run SCHED_FIFO: they
# starve TSan's own threads on a small machine and every client stops finishing its cycle. And
# an instrumented client is slow enough to miss 2.7 ms cycles until the server stalls it (then
# nothing arrives at all): TSan runs use 512-frame cycles (10.7 ms) and a 2 s client timeout.
set(_tactus_jackd_default "")
set(_tactus_jack_period_default 128)
if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=thread")
  set(_tactus_jackd_default "--no-realtime;-t;2000")
  set(_tactus_jack_period_default 512)
endif()
set(TACTUS_JACKD_OPTIONS "${_tactus_jackd_default}" CACHE STRING
  "Extra jackd options for the test server (before -d dummy), e.g. --no-realtime")
set(TACTUS_JACK_PERIOD "${_tactus_jack_period_default}" CACHE STRING
  "Frames per cycle of the test server at 48 kHz (tests read it as TACTUS_JACK_PERIOD)")

add_test(NAME jack_server_start
  COMMAND sh ${_tactus_jack_script} start ${TACTUS_JACK_SERVER} ${TACTUS_JACK_STATE_DIR} ${TACTUS_JACKD_OPTIONS})
set_tests_properties(jack_server_start PROPERTIES
  FIXTURES_SETUP jack RESOURCE_LOCK jack LABELS "midi;jack" TIMEOUT 30
  ENVIRONMENT "TACTUS_JACK_PERIOD=${TACTUS_JACK_PERIOD}")

add_test(NAME jack_server_stop
  COMMAND sh ${_tactus_jack_script} stop ${TACTUS_JACK_SERVER} ${TACTUS_JACK_STATE_DIR})
set_tests_properties(jack_server_stop PROPERTIES
  FIXTURES_CLEANUP jack RESOURCE_LOCK jack LABELS "midi;jack" TIMEOUT 30)
