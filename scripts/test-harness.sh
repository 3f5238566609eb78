#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness tests itself: feed scripts/report.py the canned serial logs
# in tests/harness/ and check that each failure is detected and named
# (tests/harness/expect) and that the exit status says so; and feed
# scripts/perf-report.py (make demo, make bench) those in
# tests/harness/perf/ (tests/harness/perf/expect), without booting anything.
#
#   test-harness.sh [RESULTS.json]

. "$(dirname "$0")/lib.sh"

out=${1:-}
H=$CT_TOP/tests/harness
REPORT=$CT_TOP/scripts/report.py
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

record() { # name ok|why
	ct_record "$out" harness "$1" "$2"
}

# verdict NAME RC WANT PATTERN: the report is in $tmp/out, its exit status RC.
verdict() {
	local why=ok
	if [ "$2" != "$3" ]; then
		why="exit $2, expected $3"
	elif ! grep -qE -- "$4" "$tmp/out"; then
		why="report lacks /$4/"
	fi
	if [ "$why" = ok ]; then
		echo "ok - $1"
	else
		echo "not ok - $1: $why"
		sed 's/^/#   /' "$tmp/out"
		fails=$((fails + 1))
	fi
	record "$1" "$why"
}

while read -r log want pattern; do
	case $log in '' | '#'*) continue ;; esac
	rc=0
	python3 "$REPORT" parse --plan "$H/plan" --kunit "$H/kunit.list" \
		"$H/$log" >"$tmp/out" 2>&1 || rc=$?
	verdict "${log%.log}: $pattern" "$rc" "$want" "$pattern"
done <"$H/expect"

PERF=$CT_TOP/scripts/perf-report.py
while read -r log mode want pattern; do
	case $log in '' | '#'*) continue ;; esac
	rc=0
	rm -rf "$tmp/perf"
	python3 "$PERF" "$H/perf/$log" --mode "$mode" --out "$tmp/perf" \
		>"$tmp/out" 2>&1 || rc=$?
	verdict "perf ${log%.log}: $pattern" "$rc" "$want" "$pattern"
done <"$H/perf/expect"

# The demo's plot is well-formed SVG with a curve per run; the bench's
# CSV has a row per run.
python3 "$PERF" "$H/perf/demo.log" --mode demo --out "$tmp/perf" >/dev/null 2>&1 || true
python3 "$PERF" "$H/perf/bench.log" --mode bench --out "$tmp/perf" >/dev/null 2>&1 || true
python3 -c '
import sys
import xml.etree.ElementTree as ET
svg = ET.parse(sys.argv[1]).getroot()
n = len(svg.findall("{http://www.w3.org/2000/svg}polyline"))
print("svg ok" if n == 2 else f"{n} curves, expected 2")
' "$tmp/perf/demo.svg" >"$tmp/out" 2>&1 || true
verdict "perf demo.svg: well-formed, a curve per run" 0 0 "^svg ok$"
echo "csv rows: $(($(wc -l <"$tmp/perf/bench.csv" 2>/dev/null || echo 0) - 1))" >"$tmp/out"
verdict "perf bench.csv: a row per run" 0 0 "^csv rows: 10$"
# The host lines come second, in each mode's report (canned noise:
# host-noise.txt, synthetic like the logs).
for mode in demo bench kexec; do
	rc=0
	python3 "$PERF" "$H/perf/$mode.log" --mode "$mode" --host "canned" \
		--host-noise "$H/perf/host-noise.txt" 2>&1 | sed -n 2,3p >"$tmp/out" || rc=$?
	verdict "perf $mode: host lines" "$rc" 0 \
		"^Host noise, no test host running: a thread spinning on each host CPU for 10 s lost it for over 1 ms: CPU0 0 times; CPU1 12 times, longest 6\.9 ms$"
	verdict "perf $mode: test host line" "$rc" 0 "^Test host: canned$"
done

# A passing log must not name any failure at all.
if python3 "$REPORT" parse --plan "$H/plan" --kunit "$H/kunit.list" \
	"$H/pass.log" | grep -q '^# FAIL'; then
	echo "not ok - pass: a clean log reported a failure"
	record "pass: no failure named" "a clean log reported a failure"
	fails=$((fails + 1))
else
	record "pass: no failure named" ok
fi
# The summary of nothing is a failure, not "0 passed, 0 failed" and exit 0.
echo -n >"$tmp/none.json"
if python3 "$REPORT" summary "$tmp/none.json" >/dev/null; then
	echo "not ok - summary of no results exited 0"
	record "summary: no results is a failure" "exited 0"
	fails=$((fails + 1))
else
	record "summary: no results is a failure" ok
fi
[ $fails = 0 ]
