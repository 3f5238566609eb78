#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A boot that cannot take the orphan the previous kernel handed over
# (a stage of the kexec test host, tests/kexec/caretaker-kexec.plan):
#   caretaker_kexec_pass_on.sh missing   caretaker.ko cannot be loaded
#   caretaker_kexec_pass_on.sh refused   it loads with test_refuse_kho=1,
#                                        as a module that does not
#                                        understand the orphan's format
# Either way LUO must leave the sessions untouched (opening
# /dev/liveupdate fails with EIO, naming the reason), the orphan's CPU
# must stay parked, and the kexec that follows this test must pass
# everything on: the next stage checks that the guest ran throughout.

fail() { echo "not ok: $*"; exit 1; }

case $1 in
missing)
	modprobe caretaker 2>/dev/null && fail "caretaker.ko loaded in a boot that blacklists it"
	grep -q '^caretaker ' /proc/modules && fail "caretaker.ko is loaded"
	why="No registered handler for compatible 'kvm-caretaker-v1'"
	;;
refused)
	modprobe caretaker test_refuse_kho=1 || fail "modprobe caretaker test_refuse_kho=1"
	why="The handler for compatible 'kvm-caretaker-v1' cannot take its preserved file"
	;;
*)
	echo "usage: $0 missing|refused"
	exit 1
	;;
esac

handed='s/.*cpu_park: CPU\([0-9]*\) (physical id .*) was handed over parked.*/\1/p'
cpu=$(dmesg | sed -n "$handed" | head -1)
[ -n "$cpu" ] || fail "no CPU was handed over parked to this kernel"
dmesg | grep 'cpu_park: handed over at TSC' || fail "no handover stamps"

# Twice: the first open checks the sessions, the second must fail the same way.
for i in 1 2; do
	if (exec 3</dev/liveupdate) 2>/tmp/luo_open; then
		fail "open /dev/liveupdate succeeded (attempt $i)"
	fi
	grep -qi 'I/O error\|Input/output error' /tmp/luo_open ||
		fail "open /dev/liveupdate: $(cat /tmp/luo_open)"
done
dmesg | grep -q "$why" || fail "the log does not say: $why"
dmesg | grep -q 'The incoming sessions are kept as they are' ||
	fail "LUO did not keep the incoming sessions"

# The guest's CPU stays parked: bringing it up is refused.
[ "$(cat /sys/devices/system/cpu/cpu$cpu/online)" = 0 ] || fail "CPU$cpu is online"
if echo 1 2>/tmp/cpu_up >/sys/devices/system/cpu/cpu$cpu/online; then
	fail "CPU$cpu was brought up"
fi
grep -q 'busy' /tmp/cpu_up || fail "bringing CPU$cpu up: $(cat /tmp/cpu_up)"
echo "ok: CPU$cpu stays parked, the sessions are kept for the next kexec ($1)"
