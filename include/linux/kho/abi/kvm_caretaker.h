/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * KVM caretaker: what an orphaned guest leaves the next kernel.
 */
#ifndef _LINUX_KHO_ABI_KVM_CARETAKER_H
#define _LINUX_KHO_ABI_KVM_CARETAKER_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/kho/abi/kexec_handover.h>
#include <linux/types.h>
#include <linux/kvm.h>

/**
 * DOC: KVM caretaker Live Update ABI
 *
 * caretaker.ko preserves a caretaker fd in a LUO session with the file
 * handler compatible string KVM_CARETAKER_LUO_COMPATIBLE.  Its serialized
 * data (the u64 LUO keeps for the file) is the physical address of a
 * struct kvm_caretaker_ser, allocated with kho_alloc_preserve().  Its
 * variable part, @data, is one buffer preserved with
 * kho_preserve_vmalloc(): the arrays the header's ``*_off`` fields point
 * into, at offsets from the start of the buffer, each entry __packed
 * and 8-byte aligned.
 *
 * The guest keeps running while the host kexecs: the runtime's pages
 * (struct kvm_caretaker_range, kinds KVM_CARETAKER_RANGE_*) are preserved
 * in place with kho_preserve_pages() and are what the parked CPUs execute
 * from, and each vCPU's control block (@cb_phys) and VMCB are live, not a
 * snapshot: the next kernel stops the runtime through the control block
 * (its version is @rt_abi) and only then reads the guest's registers.
 * The vCPU records (struct kvm_caretaker_vcpu_x86) hold what KVM's
 * save/restore ioctls returned at DETACH, in their uAPI formats; the
 * runtime's live state supersedes the parts it owns (general purpose
 * registers, RIP, RFLAGS, control registers, XCR0, the x2APIC).
 *
 * Guest memory is not preserved here: the memfds behind the memslots
 * (struct kvm_caretaker_slot) must be preserved by LUO's memfd handler,
 * which keeps their folios at the same physical addresses.  The nested
 * page table maps exactly the pages in @pfns_off of each slot; .freeze()
 * refuses the reboot if any of them is not preserved.
 *
 * The parked CPUs are handed over by the built-in CPU park code
 * (<linux/kho/abi/cpu_park.h>), which the next kernel reads before it
 * brings up its CPUs.
 *
 * A kernel accepts the data only if @version is KVM_CARETAKER_KHO_VERSION,
 * every bit of @features is one it knows and @rt_abi is a control block
 * version it can talk to.  Otherwise it leaves the guest running.  Any
 * change to these structures requires a new @version and compatible
 * string.
 */

#define KVM_CARETAKER_LUO_COMPATIBLE	"kvm-caretaker-v1"
#define KVM_CARETAKER_KHO_VERSION	1

/* The runtime is AMD SVM's: VMCB, nested page table, control block. */
#define KVM_CARETAKER_KHO_F_X86_SVM	BIT_ULL(0)
#define KVM_CARETAKER_KHO_FEATURES	KVM_CARETAKER_KHO_F_X86_SVM

/* struct kvm_caretaker_range.kind */
#define KVM_CARETAKER_RANGE_IMAGE	1	/* the runtime's text and data */
#define KVM_CARETAKER_RANGE_CPU		2	/* a region of a CPU's area */
#define KVM_CARETAKER_RANGE_RT_TABLE	3	/* a page of the runtime's page table */
#define KVM_CARETAKER_RANGE_NPT_TABLE	4	/* a page of the nested page table */

/**
 * struct kvm_caretaker_range - pages the runtime uses, preserved in place
 * @phys: physical address of the first page
 * @nr_pages: number of pages
 * @kind: KVM_CARETAKER_RANGE_*
 * @index: for KVM_CARETAKER_RANGE_CPU, (vCPU index << 8) | region
 */
struct kvm_caretaker_range {
	__u64 phys;
	__u64 nr_pages;
	__u32 kind;
	__u32 index;
} __packed;
static_assert(sizeof(struct kvm_caretaker_range) == 24);

/**
 * struct kvm_caretaker_slot - a memslot of the guest
 * @id: memslot id (address space 0)
 * @flags: KVM_MEM_* flags
 * @base_gfn: first guest frame
 * @npages: size in pages
 * @offset: where in its memfd the memslot starts
 * @pfns_off: offset in the data of @npages u64 host frame numbers
 */
struct kvm_caretaker_slot {
	__u32 id;
	__u32 flags;
	__u64 base_gfn;
	__u64 npages;
	__u64 offset;
	__u64 pfns_off;
} __packed;
static_assert(sizeof(struct kvm_caretaker_slot) == 40);

#define KVM_CARETAKER_VCPU_TRIPLE_FAULT	BIT(0)	/* shut down while detached */
#define KVM_CARETAKER_VCPU_TIMER_PENDING BIT(1)	/* an expiry KVM had counted */
#define KVM_CARETAKER_VCPU_TSC_UNSCALED	BIT(2)	/* ran on the host's TSC, unscaled */

/**
 * struct kvm_caretaker_vcpu_x86 - one vCPU of the guest
 * @index: vCPU index
 * @vcpu_id: vCPU id
 * @phys_id: local APIC id of the physical CPU it runs on
 * @tsc_khz: its TSC frequency
 * @flags: KVM_CARETAKER_VCPU_*
 * @cpuid_nent: entries at @cpuid_off (struct kvm_cpuid_entry2)
 * @nmsrs: entries at @msrs_off (struct kvm_msr_entry)
 * @xsave_size: bytes at @xsave_off (KVM_GET_XSAVE2's image)
 * @cb_phys: physical address of its control block (live)
 * @vmcb_phys: physical address of its VMCB (live)
 * @state_off: offset of its struct kvm_caretaker_state_x86
 * @msrs_off: offset of its MSRs
 * @xsave_off: offset of its XSAVE image
 * @cpuid_off: offset of its CPUID entries
 */
struct kvm_caretaker_vcpu_x86 {
	__u32 index;
	__u32 vcpu_id;
	__u32 phys_id;
	__u32 tsc_khz;
	__u32 flags;
	__u32 cpuid_nent;
	__u32 nmsrs;
	__u32 xsave_size;
	__u64 cb_phys;
	__u64 vmcb_phys;
	__u64 state_off;
	__u64 msrs_off;
	__u64 xsave_off;
	__u64 cpuid_off;
} __packed;
static_assert(sizeof(struct kvm_caretaker_vcpu_x86) == 80);

/**
 * struct kvm_caretaker_state_x86 - a vCPU's state as KVM's ioctls carry it
 * @regs: KVM_GET_REGS
 * @sregs2: KVM_GET_SREGS2
 * @xcrs: KVM_GET_XCRS
 * @debugregs: KVM_GET_DEBUGREGS
 * @events: KVM_GET_VCPU_EVENTS
 * @lapic: KVM_GET_LAPIC
 * @mp_state: KVM_GET_MP_STATE
 * @pad: zero
 * @tsc_offset: the KVM_VCPU_TSC_OFFSET attribute
 */
struct kvm_caretaker_state_x86 {
	struct kvm_regs regs;
	struct kvm_sregs2 sregs2;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp_state;
	__u32 pad;
	__u64 tsc_offset;
} __packed;
static_assert(sizeof(struct kvm_caretaker_state_x86) == 2088);

#define KVM_CARETAKER_X2APIC_FORMAT		BIT(0)
#define KVM_CARETAKER_X2APIC_NO_BROADCAST_QUIRK	BIT(1)

/**
 * struct kvm_caretaker_ser - the root of an orphan's serialized state
 * @version: KVM_CARETAKER_KHO_VERSION
 * @rt_abi: the control block's version (the runtime's ABI)
 * @features: KVM_CARETAKER_KHO_F_*
 * @nr_vcpus: entries at @vcpus_off
 * @nr_slots: entries at @slots_off
 * @nr_ranges: entries at @ranges_off
 * @irqchip_mode: the VM's irqchip mode (1: in-kernel, 2: split)
 * @disabled_quirks: the VM's KVM_CAP_DISABLE_QUIRKS2 mask
 * @x2apic_flags: KVM_CARETAKER_X2APIC_*
 * @tsc_khz: the outgoing kernel's calibration of the host TSC, with which
 *	KVM scaled the guest's kvmclock: the next kernel converts the TSC
 *	cycles elapsed since @clock with it, so kvmclock goes on at the
 *	rate the guest saw
 * @clock: kvmclock at DETACH, as KVM_GET_CLOCK returned it
 * @rt_cr3: physical address of the runtime's top-level page table
 * @npt_root: physical address of the nested page table's top level
 * @freeze_tsc: host TSC when the outgoing kernel froze the session
 * @vcpus_off: offset of the struct kvm_caretaker_vcpu_x86 array
 * @slots_off: offset of the struct kvm_caretaker_slot array
 * @ranges_off: offset of the struct kvm_caretaker_range array
 * @data_size: bytes in @data
 * @data: the variable part
 */
struct kvm_caretaker_ser {
	__u32 version;
	__u32 rt_abi;
	__u64 features;
	__u32 nr_vcpus;
	__u32 nr_slots;
	__u32 nr_ranges;
	__u32 irqchip_mode;
	__u64 disabled_quirks;
	__u32 x2apic_flags;
	__u32 tsc_khz;
	struct kvm_clock_data clock;
	__u64 rt_cr3;
	__u64 npt_root;
	__u64 freeze_tsc;
	__u64 vcpus_off;
	__u64 slots_off;
	__u64 ranges_off;
	__u64 data_size;
	struct kho_vmalloc data;
} __packed;
static_assert(sizeof(struct kvm_caretaker_ser) == 168);

#endif /* _LINUX_KHO_ABI_KVM_CARETAKER_H */
