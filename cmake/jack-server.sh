#!/bin/sh
# SPDX-License-Identifier: BSL-1.0
# Starts and stops a private JACK server (dummy backend) for the MIDI tests; used by the CTest
# fixture in TactusJackFixture.cmake, usable by hand:
#
#   jack-server.sh start NAME STATE_DIR [JACKD_OPTION...]
#                                         start `jackd -n NAME [OPTION...] -d dummy`, wait until
#                                         it answers (e.g. --no-realtime for ThreadSanitizer runs)
#   jack-server.sh stop  NAME STATE_DIR   stop it (TERM, then KILL) and any leftover of NAME
#
# The pid file and jackd's log live in STATE_DIR (inside the build tree). jackd runs under
# `timeout` (TACTUS_JACK_MAX_SECONDS, default 1800) so an interrupted test run can never leave
# it running for good; the next `start` also stops a leftover server of the same NAME first.
set -u

action=${1:-}
name=${2:-}
dir=${3:-}
[ $# -ge 3 ] && shift 3
if [ -z "$action" ] || [ -z "$name" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop NAME STATE_DIR" >&2
  exit 2
fi
pidfile="$dir/jackd.pid"
logfile="$dir/jackd.log"
max_seconds=${TACTUS_JACK_MAX_SECONDS:-1800}
period=${TACTUS_JACK_PERIOD:-128}  # frames per cycle at 48 kHz: 128 = 2.7 ms
export JACK_NO_AUDIO_RESERVATION=1
export JACK_NO_START_SERVER=1

# Pids of processes whose command line is exactly jackd (or our timeout wrapper) serving NAME.
# Exact argument match, never a pattern on foreign servers.
leftover_pids() {
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      "jackd -n $name "* | *"/jackd -n $name "* | "timeout -s TERM $max_seconds jackd -n $name "*)
        echo "${p#/proc/}" ;;
    esac
  done
}

is_running() {  # answers "running" only when a client can really connect
  [ "$(JACK_DEFAULT_SERVER=$name jack_wait -c 2>/dev/null)" = "running" ]
}

stop_pid() {  # TERM, up to 5 s grace, then KILL
  pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    echo "jack-server.sh: jackd ($pid) ignored TERM, sending KILL" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
}

stop_all() {
  if [ -f "$pidfile" ]; then
    stop_pid "$(cat "$pidfile")"
    rm -f "$pidfile"
  fi
  for p in $(leftover_pids); do
    echo "jack-server.sh: stopping leftover jackd for '$name' (pid $p)" >&2
    stop_pid "$p"
  done
}

case "$action" in
  start)
    for tool in jackd jack_wait timeout; do
      if ! command -v "$tool" >/dev/null 2>&1; then
        echo "jack-server.sh: '$tool' not found: the MIDI tests need a JACK server;" \
             "install the 'jackd2' package (Debian/Ubuntu: apt-get install jackd2)" >&2
        exit 1
      fi
    done
    mkdir -p "$dir"
    stop_all  # a server left by an interrupted run
    # setsid + redirections: jackd must not hold CTest's output pipes (the test would never end)
    # nor belong to the test's process group.
    setsid timeout -s TERM "$max_seconds" jackd -n "$name" "$@" -d dummy -r 48000 -p "$period" \
      </dev/null >"$logfile" 2>&1 &
    echo $! >"$pidfile"
    i=0
    while [ $i -lt 100 ]; do  # 10 s
      if is_running; then
        echo "jack-server.sh: JACK server '$name' running (pid $(cat "$pidfile"))"
        exit 0
      fi
      if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
      sleep 0.1
      i=$((i + 1))
    done
    echo "jack-server.sh: JACK server '$name' did not come up within 10 s; jackd said:" >&2
    cat "$logfile" >&2
    stop_all
    exit 1
    ;;
  stop)
    stop_all
    if is_running; then
      echo "jack-server.sh: JACK server '$name' still answers after stop" >&2
      exit 1
    fi
    echo "jack-server.sh: JACK server '$name' stopped"
    ;;
  *)
    echo "usage: $0 start|stop NAME STATE_DIR" >&2
    exit 2
    ;;
esac
