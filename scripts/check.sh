#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: everything, from a fresh clone on a fresh machine.
#   1. install host packages (Debian, private lists)
#   2. the harness's own tests (canned serial logs must fail, by name)
#   3. fetch, patch, configure and build the kernel
#   4. checkpatch --strict and sparse on every new kernel file, and
#      checkpatch on the series exported as git format-patch
#   5. build the selftests and the test host's initramfs
#   6. boot the test host: regression suite, LUO across kexec, KUnit
#   7. boot it again with SMT threads: the smt/control refusal
#   8. boot it again for an orphan that runs through a host kexec
# Results of every step go to build/results/*.json; the last lines are
# the summary, "N passed, N failed", and the exit status says the same.

. "$(dirname "$0")/lib.sh"

R=$CT_BUILD/results
rm -rf "$R"
mkdir -p "$R"
REPORT=$CT_TOP/scripts/report.py

summary() {
	stage "summary"
	python3 "$REPORT" summary "$R"/*.json
}

# step NAME CMD...: run a build step; a failure is recorded and ends the run.
step() {
	local name=$1
	shift
	if "$@"; then
		ct_record "$R/steps.json" steps "$name" ok
	else
		ct_record "$R/steps.json" steps "$name" "step failed (see the output above)"
		summary
		exit 1
	fi
}

step install-deps "$CT_TOP/scripts/install-deps.sh"
stage "harness self-tests"
"$CT_TOP/scripts/test-harness.sh" "$R/harness.json" || true
step build-kernel "$CT_TOP/scripts/build-kernel.sh"
step export-series "$CT_TOP/scripts/make-series.sh"
stage "checkpatch --strict and sparse"
"$CT_TOP/scripts/lint.sh" "$R/lint.json" || true
step build-testhost "$CT_TOP/scripts/build-testhost.sh"

log=$CT_BUILD/testhost/serial.log
rm -f "$log"
"$CT_TOP/scripts/run-testhost.sh" "$log" || true
stage "test host results ($log)"
python3 "$REPORT" parse --plan "$CT_BUILD/testhost/plan" \
	--kunit "$CT_TOP/tests/kunit.list" --out "$R/testhost.json" "$log" |
	grep -E '^(# FAIL|not ok [0-9]+ )' || true

# The same kernel again, on a host with SMT threads: smt/control.
smt_th=$CT_BUILD/testhost-smt
step build-testhost-smt env CT_TH="$smt_th" \
	CT_PLANS="$CT_TOP/tests/smt/caretaker-smt.plan" CT_KVM_LIST=/dev/null \
	"$CT_TOP/scripts/build-testhost.sh"
rm -f "$smt_th/serial.log"
CT_TH=$smt_th CT_SMP="4,sockets=1,cores=2,threads=2" \
	"$CT_TOP/scripts/run-testhost.sh" "$smt_th/serial.log" || true
stage "SMT test host results ($smt_th/serial.log)"
# KUnit is the main boot's: this plan loads no test module.
python3 "$REPORT" parse --plan "$smt_th/plan" \
	--kunit /dev/null --out "$R/testhost-smt.json" \
	"$smt_th/serial.log" | grep -E '^(# FAIL|not ok [0-9]+ )' || true

# An orphan through a host kexec, in a boot of its own (see the plan).
# Multi-threaded TCG: single-threaded, the parked CPU's busy guest takes
# QEMU's only thread between kicks and the other CPUs' wakeups wait for
# it (a 10 s boot took 6 min); here nothing toggles static keys while
# several vCPUs run, which is what made the main boot single-threaded.
# Two CPUs, one vCPU thread per host core: with three, the kernel after
# the kexec calibrated its TSC 0.1-0.5 % off (the boot CPU's thread was
# descheduled mid-measurement).  CT_CARRY_TSC: see scripts/testhost/init.
step build-kernel-next env CT_NEXT=1 "$CT_TOP/scripts/build-kernel.sh"
# kexec_host NAME PLAN STAGES WITH_NEXT(0|1)
kexec_host() {
	local th=$CT_BUILD/testhost-$1
	step "build-testhost-$1" env CT_TH="$th" CT_CARRY_TSC=1 CT_WITH_NEXT="$4" \
		CT_STAGES="$CT_TOP/tests/kexec/$3" \
		CT_PLANS="$CT_TOP/tests/kexec/$2" CT_KVM_LIST=/dev/null \
		"$CT_TOP/scripts/build-testhost.sh"
	rm -f "$th/serial.log"
	CT_TH=$th CT_SMP=2 CT_TCG_OPTS=thread=multi \
		"$CT_TOP/scripts/run-testhost.sh" "$th/serial.log" || true
	stage "$1 test host results ($th/serial.log)"
	python3 "$REPORT" parse --plan "$th/plan" \
		--kunit /dev/null --out "$R/testhost-$1.json" \
		"$th/serial.log" | grep -E '^(# FAIL|not ok [0-9]+ )' || true
}
# Four kernels: preserve; no caretaker.ko; one that refuses; the next build.
kexec_host kexec caretaker-kexec.plan stages.conf 1
# The session finished without the guest's memfd retrieved.
kexec_host kexec-finish finish.plan finish-stages.conf 0
summary
