/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The interface between caretaker.ko and its runtime: the address space
 * the runtime is linked for, the layout of each parked CPU's area, and
 * the control block the kernel and the runtime share.
 *
 * Included by the kernel module and by the runtime; only headers that
 * need no kernel code (types, bits) may be used here.
 */
#ifndef __CARETAKER_RT_ABI_H
#define __CARETAKER_RT_ABI_H

#include <linux/bits.h>

/**
 * DOC: runtime address space
 *
 * The runtime is linked at CTRT_BASE, in the top-level page-table slot
 * 509 (0xfffffe8000000000), which Linux's 4-level x86-64 layout leaves
 * unused.  Its page tables map nothing else: the image (text read-only
 * and executable, read-only data, data non-executable) at CTRT_BASE and,
 * from CTRT_CPU_BASE, one CTRT_CPU_SIZE area per parked CPU.  Each area
 * is aligned to its size, so the runtime finds its control block from
 * any of its stacks by masking the stack pointer.  The guard pages
 * between the stacks are left unmapped.
 *
 * The kernel enters the runtime through a bridge page table: a copy of
 * the kernel's top level with slot 509 added, so the instruction after
 * the CR3 switch is mapped; the runtime's first act is to load its own
 * CR3.
 */
#define CTRT_BASE		0xfffffe8000000000UL
#define CTRT_PML4_SLOT		509
#define CTRT_IMAGE_MAX		BIT(20)
#define CTRT_CPU_BASE		(CTRT_BASE + (2UL << 20))
#define CTRT_CPU_SHIFT		18
#define CTRT_CPU_SIZE		BIT(CTRT_CPU_SHIFT)
#define CTRT_MAX_CPUS		64
#define CTRT_CPU_VA(i)		(CTRT_CPU_BASE + ((unsigned long)(i) << CTRT_CPU_SHIFT))

/* A parked CPU's area: page offsets. */
#define CTRT_OFF_CB		0x00000	/* struct ctrt_cpu */
#define CTRT_OFF_GDT		0x01000	/* GDT, then the TSS at +CTRT_TSS_OFF */
#define CTRT_OFF_IDT		0x02000
#define CTRT_OFF_VMCB		0x03000	/* the guest's VMCB */
#define CTRT_OFF_HOSTSAVE	0x04000	/* VMSAVE area of the runtime's own state */
#define CTRT_OFF_HSAVE		0x05000	/* MSR_VM_HSAVE_PA */
#define CTRT_OFF_MSRPM		0x06000	/* 2 pages */
#define CTRT_OFF_IOPM		0x08000	/* 3 pages */
#define CTRT_OFF_NMI_STACK	0x0c000	/* IST1: NMI */
#define CTRT_OFF_EXC_STACK	0x0e000	/* IST2: #DF, #MC */
#define CTRT_OFF_STACK		0x10000	/* 4 pages */
#define CTRT_OFF_XSAVE		0x20000	/* the guest's XSAVE image, up to 64 KiB */
#define CTRT_OFF_CPUID		0x30000	/* struct ctrt_cpuid */

#define CTRT_NMI_STACK_SIZE	0x1000
#define CTRT_EXC_STACK_SIZE	0x1000
#define CTRT_STACK_SIZE		0x4000
#define CTRT_XSAVE_MAX		0x10000
#define CTRT_MSRPM_SIZE		0x2000
#define CTRT_IOPM_SIZE		0x3000
#define CTRT_TSS_OFF		0x100
#define CTRT_CPUID_SIZE		0x3000

/* GDT selectors of the runtime. */
#define CTRT_SEL_CODE		0x08
#define CTRT_SEL_DATA		0x10
#define CTRT_SEL_TSS		0x18

/* Offsets in the VMCB (AMD APM vol. 2, appendix B); checked by the kernel. */
#define CTRT_VMCB_TLB_CTL	0x05c	/* one byte */
#define CTRT_VMCB_INT_STATE	0x068
#define CTRT_VMCB_EXIT_CODE	0x070
#define CTRT_VMCB_EXIT_INFO1	0x078
#define CTRT_VMCB_EXIT_INFO2	0x080
#define CTRT_VMCB_CLEAN		0x0c0
#define CTRT_VMCB_NEXT_RIP	0x0c8
#define CTRT_VMCB_CPL		(0x400 + 0x0cb)	/* one byte */
#define CTRT_VMCB_CR4		(0x400 + 0x148)
#define CTRT_VMCB_RFLAGS	(0x400 + 0x170)
#define CTRT_VMCB_RIP		(0x400 + 0x178)
#define CTRT_VMCB_RAX		(0x400 + 0x1f8)

#define CTRT_VMCB_INTERCEPT_VINTR 0x00c	/* the word of INTERCEPT_VINTR */
#define CTRT_VMCB_INT_CTL	0x060
#define CTRT_VMCB_EXIT_INT_INFO	0x088
#define CTRT_VMCB_EXIT_INT_ERR	0x08c
#define CTRT_VMCB_EVENT_INJ	0x0a8
#define CTRT_VMCB_EVENT_INJ_ERR	0x0ac

/* VMCB bits (asm/svm.h, which the runtime cannot include); checked by the kernel. */
#define CTRT_VINTR_BIT		4	/* INTERCEPT_VINTR in its word */
#define CTRT_V_IRQ		BIT(8)
#define CTRT_V_INTR_PRIO_SHIFT	16
#define CTRT_V_INTR_PRIO	(0xfU << CTRT_V_INTR_PRIO_SHIFT)
#define CTRT_V_IGN_TPR		BIT(20)
#define CTRT_INT_SHADOW		BIT(0)
#define CTRT_EVTINJ_TYPE_INTR	(0U << 8)
#define CTRT_EVTINJ_VALID	BIT(31)

/* The host's local APIC, when it is not in x2APIC mode (UC mapping). */
#define CTRT_APIC_VA		(CTRT_BASE + CTRT_IMAGE_MAX)
/* The vector of the runtime's own timer on the physical local APIC. */
#define CTRT_TIMER_VECTOR	0xec

#define CTRT_MAGIC		0x314b525443ULL	/* "CTRK1" */

#define CTRT_ABI_VERSION	2

/* Offset of ctrt_cpu.cr3, for the entry code. */
#define CTRT_CB_CR3		16

#ifndef __ASSEMBLY__

#include <linux/kvm_caretaker.h>
#include <linux/types.h>

/**
 * struct ctrt_header - the first bytes of the runtime image
 * @magic: CTRT_MAGIC
 * @version: CTRT_ABI_VERSION
 * @pad: zero
 * @entry: virtual address of the entry point
 * @text_end: end of the executable part (page aligned)
 * @rodata_end: end of the read-only part (page aligned)
 * @file_end: the stored bytes end at or before this; the rest up to
 *	@image_end is zero
 * @image_end: end of the image, zeroed data included (page aligned)
 *
 * Addresses are virtual, in the runtime's space (from CTRT_BASE).
 */
struct ctrt_header {
	u64 magic;
	u32 version;
	u32 pad;
	u64 entry;
	u64 text_end;
	u64 rodata_end;
	u64 file_end;
	u64 image_end;
};

/* ctrt_cpu.cmd, written by the kernel. */
#define CTRT_CMD_NONE		0
#define CTRT_CMD_RUN		1	/* start the guest */
#define CTRT_CMD_STOP		2	/* stop the guest, save it, halt */

/* ctrt_cpu.state, written by the runtime. */
#define CTRT_ST_OFF		0	/* not entered yet */
#define CTRT_ST_IDLE		1	/* parked, no guest yet */
#define CTRT_ST_RUNNING		2	/* running the guest */
#define CTRT_ST_BLOCKED		3	/* the guest waits on an exit */
#define CTRT_ST_HALTED		4	/* guest saved, SVM off, halted: INIT may come */
#define CTRT_ST_FAULT		5	/* the runtime took an exception */

/* ctrt_cpu.flags, written by the kernel before CTRT_CMD_RUN. */
#define CTRT_F_IBPB		BIT(0)	/* IBPB after each #VMEXIT */
#define CTRT_F_TSC_AUX		BIT(1)	/* load the guest's TSC_AUX */
#define CTRT_F_SPEC_CTRL	BIT(2)	/* load the guest's SPEC_CTRL */
#define CTRT_F_START_BLOCKED	BIT(3)	/* not runnable: wait for ATTACH */
#define CTRT_F_FASTPATH		BIT(4)	/* resolve CPUID and XSETBV itself */
#define CTRT_F_NRIPS		BIT(5)	/* NEXT_RIP is valid after those exits */
#define CTRT_F_FIXED_LEN	BIT(6)	/* test hosts only: no NRIPS, assume */
					/* the unprefixed instruction lengths */

/**
 * DOC: the CPUID table
 *
 * At DETACH the kernel copies the vCPU's CPUID entries (what
 * KVM_SET_CPUID2 gave KVM) into each parked CPU's struct ctrt_cpuid, with
 * what the runtime needs to answer CPUID exactly as kvm_cpuid() would:
 * the inputs of KVM's run-time CPUID bits that the guest cannot change
 * while detached (APIC base, MISC_ENABLE, XSS; their writes block), the
 * host's XSAVE component layout for the CPUID.0xD sizes, and flags.  The
 * bits that follow CR4 and XCR0 are recomputed at each CPUID from the
 * guest's current values (cpuid.h).
 */
#define CTRT_CPUID_MAX		256	/* KVM_MAX_CPUID_ENTRIES */
#define CTRT_XSTATE_MAX		32

/* struct ctrt_cpuid.flags */
#define CTRT_CPUID_F_MWAIT	BIT(0)	/* MWAIT follows MISC_ENABLE (KVM quirk) */
#define CTRT_CPUID_F_FAULT	BIT(1)	/* CPUID faulting on: #GP above CPL 0 */
#define CTRT_CPUID_F_NO_INVTSC	BIT(2)	/* Hyper-V suppresses invariant TSC */
#define CTRT_CPUID_F_NO_TSX	BIT(3)	/* TSX_CTRL.CPUID_CLEAR: hide RTM, HLE */

/**
 * struct ctrt_cpuid_entry - one CPUID leaf, as struct kvm_cpuid_entry2
 * @function: EAX in
 * @index: ECX in
 * @flags: KVM_CPUID_FLAG_*
 * @eax: out
 * @ebx: out
 * @ecx: out
 * @edx: out
 * @pad: zero
 */
struct ctrt_cpuid_entry {
	u32 function;
	u32 index;
	u32 flags;
	u32 eax;
	u32 ebx;
	u32 ecx;
	u32 edx;
	u32 pad;
};

/**
 * struct ctrt_cpuid - what the runtime answers CPUID from
 * @nr: entries in @e
 * @flags: CTRT_CPUID_F_*
 * @apic_base: the guest's APIC base MSR
 * @misc_enable: the guest's MISC_ENABLE MSR
 * @xss: the guest's XSS MSR
 * @supported_xcr0: the XCR0 bits KVM lets the guest set (guest_supported_xcr0)
 * @xstate_size: CPUID.(0xD, i).EAX of the host, per component i
 * @xstate_offset: CPUID.(0xD, i).EBX of the host
 * @xstate_align: CPUID.(0xD, i).ECX bit 1 of the host, as a mask of i
 * @pad: zero
 * @e: the entries
 */
struct ctrt_cpuid {
	u32 nr;
	u32 flags;
	u64 apic_base;
	u64 misc_enable;
	u64 xss;
	u64 supported_xcr0;
	u32 xstate_size[CTRT_XSTATE_MAX];
	u32 xstate_offset[CTRT_XSTATE_MAX];
	u32 xstate_align;
	u32 pad;
	struct ctrt_cpuid_entry e[CTRT_CPUID_MAX];
};

/**
 * ctrt_exit_kind() - classify an SVM exit code
 * @code: VMCB EXITCODE
 *
 * Return: KVM_CARETAKER_EXIT_*.
 */
static inline unsigned int ctrt_exit_kind(u64 code)
{
	if (code == ~0ULL)
		return KVM_CARETAKER_EXIT_INVALID;
	if (code < 0x40)
		return KVM_CARETAKER_EXIT_CR_DR;
	if (code < 0x60)
		return KVM_CARETAKER_EXIT_EXCEPTION;
	switch (code) {
	case 0x60: return KVM_CARETAKER_EXIT_INTR;
	case 0x61: return KVM_CARETAKER_EXIT_NMI;
	case 0x72: return KVM_CARETAKER_EXIT_CPUID;
	case 0x77: return KVM_CARETAKER_EXIT_PAUSE;
	case 0x78: return KVM_CARETAKER_EXIT_HLT;
	case 0x7b: return KVM_CARETAKER_EXIT_IO;
	case 0x7c: return KVM_CARETAKER_EXIT_MSR;
	case 0x7f: return KVM_CARETAKER_EXIT_SHUTDOWN;
	case 0x8d: return KVM_CARETAKER_EXIT_XSETBV;
	case 0x400: return KVM_CARETAKER_EXIT_NPF;
	}
	if (code >= 0x80 && code <= 0x86)	/* VMRUN ... SKINIT */
		return KVM_CARETAKER_EXIT_SVM_INSN;
	return KVM_CARETAKER_EXIT_OTHER;
}

/* struct ctrt_apic.flags, written by the kernel. */
#define CTRT_APIC_X2APIC	BIT(0)	/* the guest's APIC is in x2APIC mode */
#define CTRT_APIC_HOST_X2APIC	BIT(1)	/* this CPU's APIC is in x2APIC mode */
#define CTRT_APIC_HOST_TSCDL	BIT(2)	/* this CPU has a TSC-deadline timer */
#define CTRT_APIC_GUEST_TSCDL	BIT(3)	/* the guest's CPUID has one */
#define CTRT_APIC_IN_KERNEL	BIT(4)	/* KVM emulates the guest's APIC */
#define CTRT_APIC_TIMER_PENDING	BIT(5)	/* KVM's timer expired, not delivered yet */
#define CTRT_APIC_TIMER_ARMED	BIT(6)	/* KVM's timer had not fired at DETACH */

/* The guest's APIC timer modes (LVTT bits 18:17). */
#define CTRT_LVTT_ONESHOT	0
#define CTRT_LVTT_PERIODIC	1
#define CTRT_LVTT_TSCDEADLINE	2

/**
 * struct ctrt_apic - the guest's local APIC while detached
 * @flags: CTRT_APIC_*
 * @id: x2APIC ID
 * @version: the version register
 * @ldr: the logical destination register
 * @svr: the spurious-interrupt vector register
 * @tpr: the task priority register (bits 7:4 also in V_TPR)
 * @lvtt: the timer's LVT entry
 * @tdcr: the timer's divide configuration
 * @tmict: the timer's initial count
 * @esr: the error status register
 * @lvt: the other LVT entries, CMCI (0x2f0), then 0x330 to 0x370
 * @irr: the interrupt request register, as the APIC lays it out
 * @isr: the in-service register
 * @tmr: the trigger mode register (level-triggered vectors)
 * @eoi_exit: vectors whose EOI KVM must see (IOAPIC-routed, or level)
 * @apic_base: the APIC base MSR (read only here)
 * @tsc_offset: guest TSC = host TSC + @tsc_offset
 * @deadline: host TSC of the timer's next expiry, 0: not armed
 * @period: host TSC cycles between periodic expiries, 0: not periodic
 * @tsc_deadline: the guest's TSC-deadline MSR (guest TSC)
 * @ns_to_tsc: multiplier, ns to host TSC cycles (timer.h)
 * @tsc_to_ns: multiplier, host TSC cycles to ns
 * @bus_cycle_ns: the VM's APIC bus cycle
 * @min_period_ns: KVM's shortest periodic timer (min_timer_period_us)
 * @host_timer_khz: the physical APIC timer's rate at divide 1 (calibrated)
 * @host_svr: this CPU's SVR as Linux left it (restored at the end)
 * @tsc_to_timer: multiplier, host TSC cycles to physical APIC timer counts
 * @tsc_khz: the host TSC's rate
 * @armed: host TSC the physical timer is armed for, 0: not armed
 * @fires: guest timer expiries while detached
 * @injected: interrupts the runtime injected
 * @halts: HLTs the runtime waited out
 * @max_late_tsc: the longest delay from an expiry to its injection
 */
struct ctrt_apic {
	u32 flags;
	u32 id;
	u32 version;
	u32 ldr;
	u32 svr;
	u32 tpr;
	u32 lvtt;
	u32 tdcr;
	u32 tmict;
	u32 esr;
	u32 lvt[6];
	u32 irr[8];
	u32 isr[8];
	u32 tmr[8];
	u32 eoi_exit[8];
	u64 apic_base;
	u64 tsc_offset;
	u64 deadline;
	u64 period;
	u64 tsc_deadline;
	u64 ns_to_tsc;
	u64 tsc_to_ns;
	u32 bus_cycle_ns;
	u32 min_period_ns;
	u32 host_timer_khz;
	u32 tsc_khz;
	u32 host_svr;
	u32 pad;
	u64 tsc_to_timer;
	u64 armed;
	u64 fires;
	u64 injected;
	u64 halts;
	u64 max_late_tsc;
};

/**
 * struct ctrt_gprs - guest general-purpose registers not in the VMCB
 * @r: indexed like the instruction encoding; RAX and RSP are unused
 *     (the VMCB holds them)
 */
struct ctrt_gprs {
	u64 r[16];
};

/**
 * struct ctrt_cpu - control block of one parked CPU, shared by kernel and runtime
 * @magic: CTRT_MAGIC
 * @version: CTRT_ABI_VERSION
 * @index: this CPU's index in the runtime (its area is CTRT_CPU_VA(@index))
 * @flags: CTRT_F_*
 * @cr3: physical address of the runtime's top-level page table
 * @vmcb_pa: physical address of the VMCB (CTRT_OFF_VMCB)
 * @hostsave_pa: physical address of the runtime's VMSAVE area
 * @hsave_pa: physical address of the host-save area (MSR_VM_HSAVE_PA)
 * @xcr0: the guest's XCR0
 * @dr: the guest's DR0-DR3
 * @tsc_aux: the guest's TSC_AUX
 * @spec_ctrl: the guest's SPEC_CTRL
 * @gprs: the guest's general-purpose registers
 * @apic: the guest's local APIC (the fast path's)
 * @halted: the guest is halted (KVM_MP_STATE_HALTED): set by the kernel,
 *	cleared by the runtime when an interrupt wakes it
 * @pad1: zero
 * @cmd: CTRT_CMD_*, written by the kernel
 * @state: CTRT_ST_*, written by the runtime
 * @heartbeat: incremented by the runtime on each pass of its loops
 * @vmruns: VMRUNs executed
 * @exits: guest exits
 * @exit_kinds: guest exits by KVM_CARETAKER_EXIT_* kind
 * @handled_kinds: of those, the ones the runtime resolved itself
 * @nmis: NMIs taken by the runtime's own handler
 * @strays: other interrupts taken by the runtime's own handler
 * @run_tsc: TSC when the guest first ran
 * @blocked_code: EXITCODE of the exit the guest waits on
 * @blocked_info1: its EXITINFO1
 * @blocked_info2: its EXITINFO2
 * @blocked_rip: the guest's RIP at that exit
 * @blocked_tsc: TSC when it blocked (0: not blocked)
 * @stop_tsc: TSC when the guest was stopped
 * @fault_vector: exception vector the runtime took (CTRT_ST_FAULT)
 * @fault_error: its error code
 * @fault_rip: where
 * @fault_cr2: CR2 at the fault
 */
struct ctrt_cpu {
	u64 magic;
	u32 version;
	u32 index;
	u64 cr3;		/* CTRT_CB_CR3 */
	u64 vmcb_pa;
	u64 hostsave_pa;
	u64 hsave_pa;
	u64 xcr0;
	u64 dr[4];
	u64 tsc_aux;
	u64 spec_ctrl;
	u32 flags;
	u32 pad0;
	struct ctrt_gprs gprs;
	struct ctrt_apic apic;
	u32 halted;
	u32 pad1;

	u32 cmd;
	u32 state;

	u64 heartbeat;
	u64 vmruns;
	u64 exits;
	u64 exit_kinds[KVM_CARETAKER_NR_EXIT_KINDS];
	u64 handled_kinds[KVM_CARETAKER_NR_EXIT_KINDS];
	u64 nmis;
	u64 strays;
	u64 run_tsc;
	u64 blocked_code;
	u64 blocked_info1;
	u64 blocked_info2;
	u64 blocked_rip;
	u64 blocked_tsc;
	u64 stop_tsc;
	u64 fault_vector;
	u64 fault_error;
	u64 fault_rip;
	u64 fault_cr2;
};

#endif /* __ASSEMBLY__ */
#endif /* __CARETAKER_RT_ABI_H */
