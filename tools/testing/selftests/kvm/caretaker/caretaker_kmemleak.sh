#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# kmemleak around the caretaker's tests:
#   caretaker_kmemleak.sh start   forget what was allocated before
#   caretaker_kmemleak.sh check   fail if anything leaked since "start"
#
# The test kernel has kmemleak without automatic scanning.  "start" scans
# and then clears the reports so far; "check" waits for kmemleak's minimum
# object age and scans twice, as its documentation advises, and fails on
# any report.

km=/sys/kernel/debug/kmemleak
[ -w $km ] || { echo "not ok: no $km (CONFIG_DEBUG_KMEMLEAK?)"; exit 1; }

case $1 in
start)
	echo scan >$km && echo clear >$km
	;;
check)
	sleep 6
	echo scan >$km
	echo scan >$km
	if grep -q 'unreferenced object' $km; then
		echo "not ok: kmemleak reports leaks:"
		cat $km
		exit 1
	fi
	echo "ok: no leak reported"
	;;
*)
	echo "usage: $0 start|check" >&2
	exit 2
	;;
esac
