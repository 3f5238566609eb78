#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo, make bench: what a VMM restart costs the guest, the
# caretaker's way and the classic way, measured in the nested test host by
# caretaker_orphan_test's demo and bench modes.
#
#   run-perf.sh demo|bench
#
# Builds what is missing (host packages, the kernel: incremental, the test
# host), boots a test host that runs tests/perf/MODE.plan and nothing else
# (no KVM regression tests, not make check's build/testhost), follows its
# serial console while it runs, then prints scripts/perf-report.py's
# report.  Everything lands in build/perf-MODE/: serial.log, the plan, and
# report/ (demo.svg; bench.txt and bench.csv).  Then a second test host
# (build/perf-kexec_demo, build/perf-kexec_bench) shows the same across a
# live update of the host by kexec: report/kexec/demo.svg, and
# report/kexec.txt and kexec.csv.
#
# CT_ABSENCE_S   seconds without any VMM in each run (default 5)
# CT_RUNS        bench: runs of each kind, interleaved (default 5)
# CT_KEXEC_RUNS  bench: runs of each kind across a host kexec (default 3)
# CT_TCG_OPTS    QEMU's TCG options for the VMM restarts (default
#                thread=multi; thread=single: the CPUs take turns)
# CT_HOST_NOISE_S  seconds of scripts/host-noise.c before the test host
#                boots (default: bench 10, demo 0)

. "$(dirname "$0")/lib.sh"

mode=${1:-}
case $mode in
demo | bench) ;;
*) die "usage: run-perf.sh demo|bench" ;;
esac
absence_s=${CT_ABSENCE_S:-5}
runs=${CT_RUNS:-5}
if ! [[ $absence_s =~ ^[0-9]+$ ]] || [ "$absence_s" -lt 1 ] || [ "$absence_s" -gt 600 ]; then
	die "CT_ABSENCE_S=$absence_s: whole seconds, 1..600"
fi
if ! [[ $runs =~ ^[0-9]+$ ]] || [ "$runs" -lt 1 ] || [ "$runs" -gt 100 ]; then
	die "CT_RUNS=$runs: 1..100"
fi

TH=$CT_BUILD/perf-$mode
log=$TH/serial.log
out=$TH/report

"$CT_TOP/scripts/install-deps.sh"
"$CT_TOP/scripts/build-kernel.sh"

# The plan: the template with this run's figures.  A run lasts about
# 2 T plus 10-20 s of VM builds and the +-200 ms windows under TCG;
# budget 2 T + 40 s per run, 60 s more for the whole.
nr_runs=2
[ "$mode" = bench ] && nr_runs=$((2 * runs))
timeout_s=$((60 + nr_runs * (2 * absence_s + 40)))
mkdir -p "$TH"
sed -e "s/@ABSENCE_MS@/$((absence_s * 1000))/g" -e "s/@RUNS@/$runs/g" \
	-e "s/@TIMEOUT_S@/$timeout_s/g" "$CT_TOP/tests/perf/$mode.plan" >"$TH/$mode.plan"
echo "# make $mode runs no KVM regression tests" >"$TH/no-kvm.list"
CT_TH=$TH CT_PLANS=$TH/$mode.plan CT_KVM_LIST=$TH/no-kvm.list \
	"$CT_TOP/scripts/build-testhost.sh"

# Multi-threaded TCG, as the kexec boots below: one host thread per CPU,
# so that a parked CPU runs its guest while Linux works on the others, as
# CPUs do.  Single-threaded (CT_TCG_OPTS=thread=single, make check's
# mode), the CPUs take turns on one host thread, and every instruction
# any Linux CPU runs during a handover is a gap in the guest's trail.
# make check runs single-threaded for a KVM selftest that toggles static
# keys (see run-testhost.sh); this plan runs none.
tcg=${CT_TCG_OPTS-thread=multi}
# The report's second line: host_line TCG_OPTS SMP
host_line() { echo "QEMU TCG (${1:-default}), -smp $2 on $(nproc) host CPUs"; }
# The machine's own noise, side by side with the run: what a thread
# spinning on each host CPU loses with no test host running (the host's
# kernel threads and daemons).  The test host's vCPU threads lose the
# same, in the quiet window as around a handover.
noise=$TH/host-noise.txt
noise_s=${CT_HOST_NOISE_S:-$([ "$mode" = bench ] && echo 10 || echo 0)}
noise_args=()
if ! [[ $noise_s =~ ^[0-9]+$ ]] || [ "$noise_s" -gt 600 ]; then
	die "CT_HOST_NOISE_S=$noise_s: whole seconds, 0..600"
fi
rm -f "$noise"
if [ "$noise_s" -gt 0 ]; then
	stage "host noise: a thread spinning on each of the $(nproc) host CPUs for $noise_s s"
	gcc -O2 -Wall -pthread -o "$CT_BUILD/host-noise" "$CT_TOP/scripts/host-noise.c"
	"$CT_BUILD/host-noise" "$noise_s" | tee "$noise"
	noise_args=(--host-noise "$noise")
fi
stage "make $mode: T = ${absence_s} s without a VMM$([ "$mode" = bench ] && echo ", $runs runs of each kind"), TCG ${tcg:-default}; log $log"
rm -f "$log" "$TH/.done"
python3 "$CT_TOP/scripts/perf-report.py" --follow "$log" --done "$TH/.done" &
follower=$!
rc=0
CT_TH=$TH CT_TCG_OPTS=$tcg "$CT_TOP/scripts/run-testhost.sh" "$log" || rc=$?
touch "$TH/.done"
wait "$follower" || true
[ $rc = 0 ] || echo "run-testhost.sh exited with $rc"

stage "report ($out)"
rc=0
python3 "$CT_TOP/scripts/perf-report.py" "$log" --mode "$mode" --out "$out" \
	--host "$(host_line "$tcg" "${CT_SMP:-3}")" \
	"${noise_args[@]}" || rc=$?
# A live update across a host kexec, the caretaker's way beside the VM
# paused across it: a boot of its own, runs of each kind alternating, a
# kexec between runs (kexec_bench and kexec_demo).  Multi-threaded TCG and
# the TSC calibration carried, as in make check's kexec boots, but three
# CPUs: one for the guest, two for the host, as a host keeps CPUs of its
# own (with one, VMM B's vCPU thread and the returned CPU's bring-up
# share it, and the guest waits on that: about 30 ms at ATTACH instead of
# about 20).  kexec_perf CASE RUNS_OF_EACH_KIND REPORT_MODE OUT_DIR
kexec_perf() {
	local kx=$CT_BUILD/perf-$1 n=$((2 * $2 + 1)) k
	mkdir -p "$kx"
	{
		echo "# make $mode: $1, generated by scripts/run-perf.sh"
		for k in $(seq 1 $n); do
			echo "$k caretaker $1.$k 240 ./kvm/caretaker/caretaker_orphan_test $1 --stage $k --stages $n"
		done
	} >"$kx/kexec.plan"
	echo "# every stage: the same kernel, the same arguments" >"$kx/stages.conf"
	CT_TH=$kx CT_CARRY_TSC=1 CT_STAGES=$kx/stages.conf CT_PLANS=$kx/kexec.plan \
		CT_KVM_LIST=$TH/no-kvm.list "$CT_TOP/scripts/build-testhost.sh"
	stage "make $mode: $2 run(s) of each kind across a host kexec; log $kx/serial.log"
	rm -f "$kx/serial.log"
	CT_TH=$kx CT_SMP=3 CT_TCG_OPTS=thread=multi \
		"$CT_TOP/scripts/run-testhost.sh" "$kx/serial.log" ||
		echo "run-testhost.sh exited with $?"
	stage "report ($4)"
	python3 "$CT_TOP/scripts/perf-report.py" "$kx/serial.log" --mode "$3" --out "$4" \
		--host "$(host_line thread=multi 3)" || rc=$?
}

if [ "$mode" = demo ]; then
	kexec_perf kexec_demo 1 demo "$out/kexec"
	exit $rc
fi
kruns=${CT_KEXEC_RUNS:-3}
if ! [[ $kruns =~ ^[0-9]+$ ]] || [ "$kruns" -lt 1 ] || [ "$kruns" -gt 20 ]; then
	die "CT_KEXEC_RUNS=$kruns: 1..20"
fi
kexec_perf kexec_bench "$kruns" kexec "$out"
exit $rc
