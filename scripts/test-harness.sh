#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness tests itself: feed scripts/report.py the canned serial logs
# in tests/harness/ and check that each failure is detected and named
# (tests/harness/expect) and that the exit status says so.
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

while read -r log want pattern; do
	case $log in '' | '#'*) continue ;; esac
	rc=0
	python3 "$REPORT" parse --plan "$H/plan" --kunit "$H/kunit.list" \
		"$H/$log" >"$tmp/out" 2>&1 || rc=$?
	name="${log%.log}: $pattern"
	if [ "$rc" != "$want" ]; then
		why="exit $rc, expected $want"
	elif ! grep -qE -- "$pattern" "$tmp/out"; then
		why="report lacks /$pattern/"
	else
		why=ok
	fi
	if [ "$why" = ok ]; then
		echo "ok - $name"
	else
		echo "not ok - $name: $why"
		sed 's/^/#   /' "$tmp/out"
		fails=$((fails + 1))
	fi
	record "$name" "$why"
done <"$H/expect"

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
