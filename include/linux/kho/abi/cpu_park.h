/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Parked CPUs handed over a kexec.
 */
#ifndef _LINUX_KHO_ABI_CPU_PARK_H
#define _LINUX_KHO_ABI_CPU_PARK_H

#include <linux/build_bug.h>
#include <linux/types.h>

/**
 * DOC: CPU park handover ABI
 *
 * A CPU parked with cpu_park() runs its owner's code, not the kernel's.
 * An owner whose code must keep running while the host kexecs (KVM's
 * caretaker runs a guest on it) asks the built-in CPU park code to hand
 * the CPU over with cpu_park_kho_add().  The outgoing kernel then adds a
 * KHO subtree named CPU_PARK_KHO_NAME: one struct cpu_park_kho_ser,
 * allocated with kho_alloc_preserve().
 *
 * The incoming kernel reads it in an early initcall, before it brings
 * up its CPUs: each CPU whose physical id (x86: local APIC id) is listed
 * is parked at once (cpu_park_at_boot()), so SMP bring-up does not send
 * it INIT, and stays parked until its new owner calls cpu_unpark().
 * A kernel without this code would INIT those CPUs at boot, ending what
 * they run.
 *
 * The subtree carries CPUs only: the memory their code runs from is
 * preserved by their owner, under its own ABI.  A CPU nobody claims in
 * the incoming kernel is handed on at its next kexec, as it came, only if
 * LUO passes the previous kernel's state on unchanged (it could not use
 * it); otherwise that kexec is refused.
 *
 * @out_tsc is the outgoing kernel's time stamp counter in
 * liveupdate_reboot(); the incoming kernel logs it beside its own from
 * the start of start_kernel().
 *
 * This interface is a contract: any change to the structure requires a
 * new CPU_PARK_KHO_NAME.
 */

#define CPU_PARK_KHO_NAME	"cpu-park-v1"
#define CPU_PARK_KHO_MAX	1020

/**
 * struct cpu_park_kho_ser - the parked CPUs handed to the next kernel
 * @nr: entries in @phys_id
 * @flags: zero
 * @out_tsc: the outgoing kernel's time stamp counter (get_cycles()) when
 *	it started the kexec, or zero
 * @phys_id: the CPUs' physical ids (x86: local APIC ids)
 */
struct cpu_park_kho_ser {
	__u32 nr;
	__u32 flags;
	__u64 out_tsc;
	__u32 phys_id[CPU_PARK_KHO_MAX];
} __packed;
static_assert(sizeof(struct cpu_park_kho_ser) == 4096);

#endif /* _LINUX_KHO_ABI_CPU_PARK_H */
