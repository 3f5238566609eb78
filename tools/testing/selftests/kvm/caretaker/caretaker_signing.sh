#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# caretaker.ko is signed with the build's key at modules_install, and the
# test host boots with module.sig_enforce=1.  The signed module loads; a
# copy with its signature stripped and a copy signed with a foreign key
# are refused with EKEYREJECTED, each for its own reason in the kernel log.
#
# Needs, beside this script: caretaker-unsigned.ko and caretaker-foreign.ko
# (made by the build from the signed module).

dir=$(dirname "$0")
rc=0

fail() {
	echo "not ok $*"
	rc=1
}

# insmod_refused NAME FILE REASON
insmod_refused() {
	dmesg -c >/dev/null
	if out=$(insmod "$2" 2>&1); then
		fail "$1: loaded"
		rmmod caretaker
		return
	fi
	case $out in
	*"Key was rejected by service"*) ;;
	*) fail "$1: expected EKEYREJECTED, got: $out"; return ;;
	esac
	if dmesg | grep -q "$3"; then
		echo "ok $1: EKEYREJECTED, kernel says: $3"
	else
		fail "$1: no '$3' in the kernel log"
	fi
}

[ "$(cat /sys/module/module/parameters/sig_enforce)" = Y ] ||
	fail "module.sig_enforce is not in force"
modprobe -r caretaker_test 2>/dev/null; modprobe -r caretaker 2>/dev/null

insmod_refused unsigned "$dir/caretaker-unsigned.ko" \
	"Loading of unsigned module is rejected"
insmod_refused foreign-key "$dir/caretaker-foreign.ko" \
	"Loading of module with unavailable key is rejected"

if modprobe caretaker && grep -q '^caretaker ' /proc/modules; then
	echo "ok signed: modprobe caretaker loads it"
else
	fail "signed: modprobe caretaker failed"
fi
if rmmod caretaker && ! grep -q '^caretaker ' /proc/modules; then
	echo "ok rmmod caretaker"
else
	fail "rmmod caretaker failed"
fi
exit $rc
