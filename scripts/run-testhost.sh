#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the test kernel in the nested test host (QEMU TCG with emulated AMD
# SVM) and run the plan, across as many kexec stages as it names.  The
# serial console goes to a log file; the guest powers itself off at the
# end.  A guest that outlives the whole-run timeout is killed and the log
# gets a CT-HOST line saying so, which the report turns into a failure.
#
#   run-testhost.sh LOG [EXTRA_CMDLINE]
#
# CT_RUN_TIMEOUT (seconds) overrides the whole-run timeout, which is
# otherwise the sum of the plan's per-test timeouts plus the boot time of
# each stage.
#
# TCG runs single-threaded (CT_TCG_OPTS, default thread=single): with one
# host thread per vCPU, QEMU 10 let a vCPU execute stale code while
# another patched kernel text, and the guest kernel died on a leftover
# int3 in __schedule (seen once in eight runs, during a KVM selftest that
# toggles static keys).  Single-threaded, the whole run took 208 s instead
# of about 180 s on two host cores.

. "$(dirname "$0")/lib.sh"

log=${1:?usage: run-testhost.sh LOG [EXTRA_CMDLINE]}
extra=${2:-}
TH=${CT_TH:-$CT_BUILD/testhost}
[ -f "$TH/initramfs.cpio" ] || die "no test host: run scripts/build-testhost.sh first"

# Boot of one stage under TCG with -smp 3 on two host cores: measured at
# 3-6 s, budgeted at 60 s.
BOOT_BUDGET=60
stages=$(awk '$1 ~ /^[0-9]+$/ {print $1}' "$TH/plan" | sort -n | tail -1)
sum=$(awk '$1 ~ /^[0-9]+$/ {s += $4} END {print s + 0}' "$TH/plan")
timeout_s=${CT_RUN_TIMEOUT:-$((sum + ${stages:-1} * BOOT_BUDGET))}
CT_TCG_OPTS=${CT_TCG_OPTS-thread=single}
# CT_SMP: QEMU's -smp (check.sh boots a host with SMT threads for the
# smt/control test: "4,sockets=1,cores=2,threads=2").
CT_SMP=${CT_SMP:-3}

cmdline="console=ttyS0 panic=-1 oops=panic module.sig_enforce=1 liveupdate=on kho=on ct_stage=1 $extra"
stage "test host: -smp $CT_SMP -m 4G, ${stages:-1} stage(s), timeout ${timeout_s}s, log $log"
rc=0
timeout -s KILL "$timeout_s" qemu-system-x86_64 \
	-accel "tcg${CT_TCG_OPTS:+,$CT_TCG_OPTS}" -cpu EPYC,+svm,+npt -smp "$CT_SMP" -m 4G \
	-machine q35 -nographic -no-reboot -nodefaults \
	-serial "file:$log" -monitor none \
	-kernel "$TH/share/bzImage" -initrd "$TH/initramfs.cpio" \
	-append "$cmdline" \
	-virtfs local,path="$TH/share",mount_tag=host,security_model=none,readonly=on \
	-device virtio-rng-pci || rc=$?
if [ $rc = 137 ]; then
	echo "CT-HOST: timeout: guest killed after ${timeout_s}s" >>"$log"
elif [ $rc != 0 ]; then
	echo "CT-HOST: qemu exited with status $rc" >>"$log"
fi
stage "test host finished (qemu rc=$rc)"
