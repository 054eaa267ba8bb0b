#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# scripts/setup's package resolution, checked against apt on a synthetic machine: offline, without
# root, changing nothing on this one.
#
#   tests/setup/plan_test.sh SCENARIO [WORKDIR]    SCENARIO: nothing, jackd2, jackd1, pipewire-jack
#
# Builds a dpkg status file holding the scenario's package and what apt installs with it, from
# this machine's package lists (apt-get -s on an empty state, then apt-cache show of each version),
# points apt at it with APT_CONFIG, and runs `scripts/setup --plan` there. Then asserts the
# decision, and reads apt's simulation (apt-get -s) apart from the script to check it:
#   nothing, jackd2, pipewire-jack   it installs the missing packages, libjack-jackd2-dev among them,
#                                    and apt would remove nothing and install no JACK 1 package
#   jackd1                           it refuses, naming jackd1 and libjack0, and installing what is
#                                    missing would indeed remove jackd1
# Exit 0 pass, 1 fail, 77 skipped (no package lists yet, or this release has no such package).
# The synthetic machine holds only the scenario's packages; a real one has more, which adds
# packages but no conflict with JACK. An APT_CONFIG in the environment is included first, so
# APT_CONFIG=<file naming trixie's sources and lists> runs the scenarios against another release.
# apt-get -s costs seconds of CPU (its install ordering): a scenario takes 5 to 10 s of CPU.
set -euo pipefail
scenario=${1:?usage: plan_test.sh nothing|jackd2|jackd1|pipewire-jack [WORKDIR]}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
say() { echo "plan_test[$scenario]: $*"; }
fail() { say "FAIL: $*"; exit 1; }
skip() { say "SKIPPED: $*"; exit 77; }

case "$scenario" in
  nothing) installed=() ;;
  jackd2 | jackd1 | pipewire-jack) installed=("$scenario") ;;
  *) echo "plan_test: unknown scenario '$scenario'" >&2; exit 2 ;;
esac
command -v apt-get >/dev/null 2>&1 || skip "no apt on this machine"

work=${2:-}
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
work=$(cd "$work" && pwd -P)  # apt takes relative Dir:: paths as relative to its own directories
state=$work/$scenario
rm -rf "$state"
mkdir -p "$state/dpkg/updates" "$state/dpkg/info" "$work/apt-cache"
: >"$state/dpkg/status"
: >"$state/extended_states"
# Only this file configures apt: the host's apt.conf and apt.conf.d would come after it and win
# (a Docker image's docker-clean, say, turns the cache off). An APT_CONFIG of the caller's comes
# first (other sources and lists: another release). The source cache is shared by the scenarios:
# it depends on the package lists only, and apt writes it atomically.
caller_config=${APT_CONFIG:-}
export APT_CONFIG=$state/apt.conf
{
  [[ -z "$caller_config" ]] || echo "#include \"$caller_config\";"
  cat <<CONF
Dir::Etc::main "/dev/null";
Dir::Etc::parts "/dev/null";
Dir::State::status "$state/dpkg/status";
Dir::State::extended_states "$state/extended_states";
Dir::Cache "$work/apt-cache/";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "srcpkgcache.bin";
Debug::NoLocking "true";
CONF
} >"$APT_CONFIG"
# shellcheck disable=SC2016 # $(FILENAME) is apt's, not the shell's
if [[ -z "$(apt-get indextargets --format '$(FILENAME)' 'Created-By: Packages' 2>/dev/null)" ]]; then
  skip "apt has no package lists (a fresh machine before apt-get update): nothing to resolve against"
fi

# --- the machine: the scenario's package as apt would install it, marked installed -------------
if ((${#installed[@]})); then
  for p in "${installed[@]}"; do
    [[ "$(apt-cache policy "$p" 2>/dev/null)" == *"Candidate: "[^\(]* ]] ||
      skip "apt knows no package $p on this release: no such machine to plan for"
  done
  sim=$(LC_ALL=C apt-get -s install --no-install-recommends "${installed[@]}" 2>&1) ||
    fail "apt cannot install ${installed[*]} on an empty machine: $sim"
  versions=$(awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2 "=" v }' <<<"$sim")
  # shellcheck disable=SC2086
  # A Packages stanza becomes a status one: Status added, the archive's fields (Filename, Size,
  # checksums), which dpkg refuses in a status file, and the architecture qualifier dropped.
  LC_ALL=C apt-cache show --no-all-versions $versions | awk '
    /^$/ { print; next }
    /^[^ \t]/ { keep = $1 !~ /^(Filename|Size|MD5sum|SHA1|SHA256|SHA512|Description-md5):$/ }
    /^Package:/ { sub(/:.*/, "", $2); print "Package: " $2; print "Status: install ok installed"; next }
    keep' >"$state/dpkg/status"
  for p in "${installed[@]}"; do
    [[ "$(dpkg-query --admindir="$state/dpkg" -W -f='${Status}' "$p")" == "install ok installed" ]] ||
      fail "the synthetic state lacks $p"
  done
fi
say "machine with ${installed[*]:-no JACK}: $(grep -c '^Package:' "$state/dpkg/status") packages installed"

# --- the script's decision ----------------------------------------------------------------------
rc=0
check=$(bash "$repo/scripts/setup" --check 2>&1) || rc=$?
((rc == 1)) || fail "setup --check exited $rc, expected 1 (packages missing): $check"
missing=$(sed -n 's/^setup: missing: //p' <<<"$check")
[[ -n "$missing" ]] || fail "setup --check named nothing missing: $check"
rc=0
out=$(TACTUS_SETUP_SIMULATION=$state/simulation bash "$repo/scripts/setup" --plan 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/  | /'

# apt's own answer to installing what is missing: the simulation the script decided on, read here
# apart from the script (apt-get takes seconds of CPU: not run twice).
[[ -s "$state/simulation" ]] || fail "setup --plan left no apt simulation"
sim=$(<"$state/simulation")
grep -qE '^(Inst|Remv) ' <<<"$sim" || fail "the simulation shows no package operation: $sim"
removed=$(awk '$1 == "Remv" { print $2 }' <<<"$sim" | tr '\n' ' ')
jack1=$(awk '$1 == "Inst" && ($2 == "libjack0" || $2 == "libjack-dev" || $2 == "jackd1") { print $2 }' <<<"$sim" | tr '\n' ' ')
has() { [[ " $1 " == *" $2 "* ]]; }

case "$scenario" in
  nothing | jackd2 | pipewire-jack)
    ((rc == 0)) || fail "setup --plan refused (exit $rc); expected it to install"
    list=$(sed -n 's/^setup: would install: \([^(]*\).*/\1/p' <<<"$out")
    [[ "${list% }" == "$missing" ]] || fail "would install '$list', but --check said missing '$missing'"
    has "$list" libjack-jackd2-dev || fail "libjack-jackd2-dev is not in the install list"
    has "$list" librtmidi-dev || fail "librtmidi-dev is not in the install list"
    if [[ "$scenario" == jackd2 ]]; then
      has "$list" jackd2 && fail "jackd2 is installed, yet in the install list"
    else
      has "$list" jackd2 || fail "jackd2 is not in the install list"
    fi
    [[ -z "$removed" ]] || fail "apt would remove: $removed"
    [[ -z "$jack1" ]] || fail "apt would install JACK 1: $jack1"
    grep -q '^Inst librtmidi-dev ' <<<"$sim" || fail "apt would not install librtmidi-dev: $sim"
    say "PASS: installs $(wc -w <<<"$list") packages, apt removes none and installs no JACK 1"
    ;;
  jackd1)
    ((rc == 1)) || fail "setup --plan exited $rc; expected 1 (refusal)"
    grep -q '^setup: would install' <<<"$out" && fail "setup --plan both refused and planned an install"
    grep -q '^setup: refusing: .*apt would remove: .*jackd1' <<<"$out" || fail "the refusal does not name jackd1"
    grep -q 'libjack0' <<<"$out" || fail "the refusal does not name libjack0"
    grep -q 'apt-get install jackd2 libjack-jackd2-dev' <<<"$out" || fail "the refusal suggests nothing"
    has "$removed" jackd1 || fail "apt would not remove jackd1 ('$removed'): the refusal is unfounded"
    say "PASS: refuses; installing ${missing// /, } would remove $removed"
    ;;
esac
