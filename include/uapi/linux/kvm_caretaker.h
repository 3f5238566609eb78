/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Caretaker: keep a VM's guest running on parked physical CPUs while its
 * VMM process or the host kernel is replaced.
 *
 * The handle to an orphaned VM is a caretaker fd, returned by
 * KVM_CARETAKER_PREPARE on a VM fd.  Whoever holds it may detach the vCPUs,
 * adopt them into a VM (KVM_CARETAKER_ATTACH on a VM fd), undo the
 * preparation, or put it into a Live Update Orchestrator session.
 *
 * See Documentation/virt/kvm/caretaker.rst.
 */
#ifndef _UAPI_LINUX_KVM_CARETAKER_H
#define _UAPI_LINUX_KVM_CARETAKER_H

#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/types.h>

/*
 * KVM_CHECK_EXTENSION(KVM_CAP_CARETAKER) returns 0 when caretaker.ko is not
 * loaded, otherwise a mask of these.
 */
/* The module is loaded: the ioctls below exist and validate their input. */
#define KVM_CARETAKER_FEAT_IOCTLS	(1 << 0)
/* KVM_CARETAKER_DETACH/ATTACH carry a guest across a VMM restart. */
#define KVM_CARETAKER_FEAT_VMM_RESTART	(1 << 1)
/*
 * Live update is enabled and caretaker.ko's LUO file handler is registered.
 * Whether an orphan survives a kexec is KVM_CARETAKER_FEAT_KEXEC.
 */
#define KVM_CARETAKER_FEAT_LUO		(1 << 2)
/* ... and the orphan survives a kexec into the next kernel. */
#define KVM_CARETAKER_FEAT_KEXEC	(1 << 3)
/* KVM_CARETAKER_ATTACH takes KVM_CARETAKER_ATTACH_PREPARE. */
#define KVM_CARETAKER_FEAT_ATTACH_PREPARE (1 << 4)

/**
 * struct kvm_caretaker_prepare - argument of KVM_CARETAKER_PREPARE
 * @flags: must be zero
 * @nr_cpus: number of entries in @cpus: exactly the VM's number of vCPUs
 * @cpus: user pointer to @nr_cpus __u32 physical CPU numbers; entry i is
 *	the CPU that will run the vCPU with index i (creation order)
 * @reserved: must be zero
 */
struct kvm_caretaker_prepare {
	__u32 flags;
	__u32 nr_cpus;
	__u64 cpus;
	__u64 reserved[4];
};

/**
 * struct kvm_caretaker_attach - argument of KVM_CARETAKER_ATTACH
 * @flags: 0 or KVM_CARETAKER_ATTACH_PREPARE
 * @caretaker_fd: the caretaker fd of the orphan to adopt
 * @reserved: must be zero
 */
struct kvm_caretaker_attach {
	__u32 flags;
	__s32 caretaker_fd;
	__u64 reserved[3];
};

/*
 * Prepare the adoption, the guest still running: check the VM against the
 * orphan and load the vCPU state as of DETACH into its vCPUs, which refuse
 * KVM_RUN and every ioctl that changes them (-EBUSY) from then on, and
 * freeze its memslots.  The ATTACH without the flag that follows, on the
 * same VM, then only stops the guest and loads what it changed since.
 */
#define KVM_CARETAKER_ATTACH_PREPARE	(1 << 0)

/**
 * struct kvm_caretaker_op - argument of KVM_CARETAKER_DETACH and _ABORT
 * @flags: must be zero
 * @pad: must be zero
 * @reserved: must be zero
 */
struct kvm_caretaker_op {
	__u32 flags;
	__u32 pad;
	__u64 reserved[3];
};

/* States of a caretaker fd, see caretaker.rst for the transitions. */
#define KVM_CARETAKER_STATE_PREPARED	1
#define KVM_CARETAKER_STATE_DETACHED	2
#define KVM_CARETAKER_STATE_BLOCKED	3
#define KVM_CARETAKER_STATE_PRESERVED	4
#define KVM_CARETAKER_STATE_ATTACHED	5
#define KVM_CARETAKER_STATE_ABORTED	6

/**
 * struct kvm_caretaker_status - argument of KVM_CARETAKER_GET_STATUS
 * @flags: in: must be zero
 * @state: out: KVM_CARETAKER_STATE_*
 * @nr_vcpus: out: number of vCPUs in the orphan
 * @pad: out: zero
 * @stall_ns: out: guest-visible stall of the last DETACH or ATTACH
 * @exits: out: guest exits handled by the runtime since DETACH
 * @blocked_exits: out: guest exits that blocked, waiting for ATTACH
 * @reserved: out: zero
 */
struct kvm_caretaker_status {
	__u32 flags;
	__u32 state;
	__u32 nr_vcpus;
	__u32 pad;
	__u64 stall_ns;
	__u64 exits;
	__u64 blocked_exits;
	__u64 reserved[8];
};

/* Guest exits by kind, in struct kvm_caretaker_vcpu_status.exits_by_kind[]. */
#define KVM_CARETAKER_EXIT_OTHER	0
#define KVM_CARETAKER_EXIT_CR_DR	1	/* CR and DR accesses */
#define KVM_CARETAKER_EXIT_EXCEPTION	2
#define KVM_CARETAKER_EXIT_INTR		3	/* physical interrupt */
#define KVM_CARETAKER_EXIT_NMI		4	/* physical NMI */
#define KVM_CARETAKER_EXIT_CPUID	5
#define KVM_CARETAKER_EXIT_HLT		6
#define KVM_CARETAKER_EXIT_IO		7
#define KVM_CARETAKER_EXIT_MSR		8
#define KVM_CARETAKER_EXIT_SHUTDOWN	9
#define KVM_CARETAKER_EXIT_NPF		10	/* nested page fault: MMIO */
#define KVM_CARETAKER_EXIT_SVM_INSN	11	/* VMRUN, VMMCALL, VMLOAD, ... */
#define KVM_CARETAKER_EXIT_INVALID	12	/* the state was refused */
#define KVM_CARETAKER_EXIT_XSETBV	13
#define KVM_CARETAKER_EXIT_PAUSE	14
#define KVM_CARETAKER_NR_EXIT_KINDS	16

/* vCPU states in struct kvm_caretaker_vcpu_status. */
#define KVM_CARETAKER_VCPU_WAITING	1	/* not started yet */
#define KVM_CARETAKER_VCPU_RUNNING	2
#define KVM_CARETAKER_VCPU_BLOCKED	3	/* waits on an exit for ATTACH */
#define KVM_CARETAKER_VCPU_STOPPED	4	/* handed back to KVM */

/**
 * struct kvm_caretaker_vcpu_status - argument of KVM_CARETAKER_GET_VCPU_STATUS
 * @flags: in: must be zero
 * @vcpu_index: in: the vCPU, by index (creation order)
 * @state: out: KVM_CARETAKER_VCPU_*
 * @cpu: out: the physical CPU that runs it
 * @exits: out: guest exits while detached
 * @exits_by_kind: out: the same, by KVM_CARETAKER_EXIT_*
 * @handled_by_kind: out: of those, the exits the runtime resolved itself
 *	(the guest went on without waiting for ATTACH), by kind
 * @nmis: out: NMIs the runtime took on that CPU
 * @blocked_exit_code: out: the SVM exit code the vCPU waits on (BLOCKED),
 *	or waited on until ATTACH (STOPPED)
 * @blocked_rip: out: the guest's RIP at that exit
 * @blocked_ns: out: how long it has waited, or waited
 * @detached_ns: out: how long the runtime has run it, or ran it
 * @timer_fires: out: expiries of the guest's APIC timer while detached
 * @injected: out: interrupts the runtime injected
 * @halts: out: times the runtime halted with the guest (HLT)
 * @max_late_ns: out: the longest delay from a timer expiry to its injection
 * @host_interrupts: out: the host's interrupts the runtime took (and ignored)
 * @reserved: out: zero
 */
struct kvm_caretaker_vcpu_status {
	__u32 flags;
	__u32 vcpu_index;
	__u32 state;
	__u32 cpu;
	__u64 exits;
	__u64 exits_by_kind[KVM_CARETAKER_NR_EXIT_KINDS];
	__u64 handled_by_kind[KVM_CARETAKER_NR_EXIT_KINDS];
	__u64 nmis;
	__u64 blocked_exit_code;
	__u64 blocked_rip;
	__u64 blocked_ns;
	__u64 detached_ns;
	__u64 timer_fires;
	__u64 injected;
	__u64 halts;
	__u64 max_late_ns;
	__u64 host_interrupts;
	__u64 reserved[3];
};

/* On a VM fd. */
#define KVM_CARETAKER_PREPARE	_IOW(KVMIO, 0xd6, struct kvm_caretaker_prepare)
#define KVM_CARETAKER_ATTACH	_IOW(KVMIO, 0xd7, struct kvm_caretaker_attach)
/* On a caretaker fd. */
#define KVM_CARETAKER_DETACH	_IOW(KVMIO, 0xd8, struct kvm_caretaker_op)
#define KVM_CARETAKER_ABORT	_IOW(KVMIO, 0xd9, struct kvm_caretaker_op)
#define KVM_CARETAKER_GET_STATUS _IOWR(KVMIO, 0xda, struct kvm_caretaker_status)
#define KVM_CARETAKER_GET_VCPU_STATUS \
	_IOWR(KVMIO, 0xdb, struct kvm_caretaker_vcpu_status)

#endif /* _UAPI_LINUX_KVM_CARETAKER_H */
