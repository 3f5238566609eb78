// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker runtime: what a parked CPU runs instead of Linux.
 *
 * It sets up its own descriptor tables, waits for the kernel to hand it
 * a guest, and runs that guest with VMRUN.  CPUID and XSETBV it answers
 * itself, as KVM would (the fast path, when the kernel enables it); every
 * other guest exit but a physical NMI or interrupt blocks the guest until
 * the kernel stops it: the exit is kept in the VMCB, with RIP at the
 * intercepted instruction, for KVM to handle after ATTACH.
 *
 * Built with its own flags (no FPU or vector registers, no stack
 * protector, tracing or sanitizers), with kernel headers for types and
 * compiler helpers only, and linked on its own at CTRT_BASE; the build
 * checks that it refers to nothing outside itself.  Every global symbol
 * starts with ctrt_.
 */
#include <linux/compiler.h>
#include <linux/types.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <uapi/asm/svm.h>

#include "cpuid.h"
#include "rt.h"

struct ctrt_tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	unsigned short reserved3;
	unsigned short iomap_base;
} __packed;

struct ctrt_dtr {
	unsigned short limit;
	u64 base;
} __packed;

static inline u64 rt_rdmsr(u32 msr)
{
	u32 lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((u64)hi << 32);
}

static inline void rt_wrmsr(u32 msr, u64 val)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((u32)val),
			     "d"((u32)(val >> 32)) : "memory");
}

static inline u64 rt_rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | ((u64)hi << 32);
}

static inline void rt_stgi(void)
{
	asm volatile("stgi" ::: "memory");
}

static inline void rt_clgi(void)
{
	asm volatile("clgi" ::: "memory");
}

static inline void rt_vmsave(u64 pa)
{
	asm volatile("vmsave %%rax" :: "a"(pa) : "memory");
}

static inline void rt_vmload(u64 pa)
{
	asm volatile("vmload %%rax" :: "a"(pa) : "memory");
}

static inline u64 vmcb_read(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*(u64 *)((char *)cb + CTRT_OFF_VMCB + off));
}

static inline void vmcb_write(struct ctrt_cpu *cb, unsigned int off, u64 val)
{
	WRITE_ONCE(*(u64 *)((char *)cb + CTRT_OFF_VMCB + off), val);
}

static inline u8 vmcb_read8(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*((u8 *)cb + CTRT_OFF_VMCB + off));
}

static inline void *area(struct ctrt_cpu *cb, unsigned long off)
{
	return (char *)cb + off;
}

/* A descriptor for a 64-bit segment, or the low half of a system one. */
static u64 gdt_entry(u64 base, u32 limit, u32 type_flags)
{
	return (limit & 0xffffULL) | ((base & 0xffffffULL) << 16) |
	       ((u64)(type_flags & 0xf0ff) << 40) |
	       ((u64)((limit >> 16) & 0xf) << 48) |
	       (((base >> 24) & 0xffULL) << 56);
}

static void ctrt_tables_init(struct ctrt_cpu *cb)
{
	u64 *gdt = area(cb, CTRT_OFF_GDT);
	u64 *idt = area(cb, CTRT_OFF_IDT);
	struct ctrt_tss *tss = area(cb, CTRT_OFF_GDT + CTRT_TSS_OFF);
	u64 tss_base = (u64)tss;
	struct ctrt_dtr gdtr, idtr;
	unsigned int i;

	for (i = 0; i < sizeof(*tss) / 8; i++)
		((u64 *)tss)[i] = 0;
	tss->ist[0] = (u64)area(cb, CTRT_OFF_NMI_STACK + CTRT_NMI_STACK_SIZE);
	tss->ist[1] = (u64)area(cb, CTRT_OFF_EXC_STACK + CTRT_EXC_STACK_SIZE);
	tss->iomap_base = sizeof(*tss);

	gdt[0] = 0;
	gdt[1] = gdt_entry(0, 0xfffff, 0xa09b);	/* code: L, P, DPL0, exec/read */
	gdt[2] = gdt_entry(0, 0xfffff, 0xc093);	/* data: P, DPL0, read/write */
	gdt[3] = gdt_entry(tss_base, sizeof(*tss) - 1, 0x0089); /* 64-bit TSS */
	gdt[4] = tss_base >> 32;

	for (i = 0; i < 256; i++) {
		u64 h = (u64)(ctrt_vectors + 16 * i);
		u64 ist = i == 2 ? 1 : (i == 8 || i == 18) ? 2 : 0;

		idt[2 * i] = (h & 0xffff) | ((u64)CTRT_SEL_CODE << 16) |
			     (ist << 32) | (0x8eULL << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * i + 1] = h >> 32;
	}

	gdtr.limit = 5 * 8 - 1;
	gdtr.base = (u64)gdt;
	idtr.limit = 256 * 16 - 1;
	idtr.base = (u64)idt;

	asm volatile("lgdt %0\n\t"
		"pushq %2\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movl %3, %%eax\n\t"
		"movl %%eax, %%ss\n\t"
		"movl %%eax, %%ds\n\t"
		"movl %%eax, %%es\n\t"
		"lidt %1\n\t"
		"movl %4, %%eax\n\t"
		"ltr %%ax\n\t"
		:: "m"(gdtr), "m"(idtr), "i"((u64)CTRT_SEL_CODE),
		   "i"(CTRT_SEL_DATA), "i"(CTRT_SEL_TSS)
		: "rax", "memory");
}

/*
 * Drop global TLB entries the kernel left behind: the runtime's own
 * mappings are not global, and nothing else may stay reachable.
 */
static void ctrt_flush_global(void)
{
	unsigned long cr4;

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	if (cr4 & X86_CR4_PGE)
		asm volatile("mov %0, %%cr4" :: "r"(cr4 & ~X86_CR4_PGE) : "memory");
}

/* Sleep until the kernel's next NMI (it repeats them until answered). */
static void ctrt_wait(struct ctrt_cpu *cb)
{
	WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);
	rt_stgi();
	asm volatile("hlt" ::: "memory");
	rt_clgi();
}

static void ctrt_load_guest_context(struct ctrt_cpu *cb)
{
	u32 lo = (u32)cb->xcr0, hi = (u32)(cb->xcr0 >> 32);
	u64 *xstate_bv = area(cb, CTRT_OFF_XSAVE + 512);
	u64 bv = *xstate_bv;

	/*
	 * XRSTOR faults on XSTATE_BV bits outside XCR0: restore what XCR0
	 * enables and keep the rest of the image as it is.  XSAVE at the
	 * end rewrites only XCR0's bits of XSTATE_BV, so the image goes
	 * back to KVM whole.
	 */
	asm volatile("xsetbv" :: "c"(0), "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv & cb->xcr0;
	asm volatile("xrstor64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv;
	asm volatile("mov %0, %%db0" :: "r"(cb->dr[0]));
	asm volatile("mov %0, %%db1" :: "r"(cb->dr[1]));
	asm volatile("mov %0, %%db2" :: "r"(cb->dr[2]));
	asm volatile("mov %0, %%db3" :: "r"(cb->dr[3]));
	if (cb->flags & CTRT_F_TSC_AUX)
		rt_wrmsr(MSR_TSC_AUX, cb->tsc_aux);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		rt_wrmsr(MSR_IA32_SPEC_CTRL, cb->spec_ctrl);
}

static void ctrt_save_guest_context(struct ctrt_cpu *cb)
{
	u32 lo = (u32)cb->xcr0, hi = (u32)(cb->xcr0 >> 32);
	unsigned long v;

	asm volatile("xsave64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	asm volatile("mov %%db0, %0" : "=r"(v));
	cb->dr[0] = v;
	asm volatile("mov %%db1, %0" : "=r"(v));
	cb->dr[1] = v;
	asm volatile("mov %%db2, %0" : "=r"(v));
	cb->dr[2] = v;
	asm volatile("mov %%db3, %0" : "=r"(v));
	cb->dr[3] = v;
	if (cb->flags & CTRT_F_TSC_AUX)
		cb->tsc_aux = rt_rdmsr(MSR_TSC_AUX);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		cb->spec_ctrl = rt_rdmsr(MSR_IA32_SPEC_CTRL);
}

static void ctrt_block(struct ctrt_cpu *cb, u64 code)
{
	cb->blocked_code = code;
	cb->blocked_info1 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO1);
	cb->blocked_info2 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO2);
	cb->blocked_rip = vmcb_read(cb, CTRT_VMCB_RIP);
	cb->blocked_tsc = rt_rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_BLOCKED);
	while (READ_ONCE(cb->cmd) != CTRT_CMD_STOP)
		ctrt_wait(cb);
}

/*
 * The fast path: exits the runtime resolves itself, the way KVM's exit
 * handlers would, instead of blocking the guest until ATTACH.  Each
 * handler returns false to block instead: whenever KVM would do more
 * than the runtime can (inject #GP, single-step, decode), it is left to
 * KVM, which sees the exit as if it had just happened.
 */

/*
 * The length of the intercepted instruction, @len if it has no prefix,
 * else 0.  With next-RIP save the VMCB says; without it (test hosts
 * only, CTRT_F_FIXED_LEN) the unprefixed length is assumed.  Guest
 * memory is never read.
 */
static unsigned int ctrt_insn_len(struct ctrt_cpu *cb, unsigned int len)
{
	u64 rip = vmcb_read(cb, CTRT_VMCB_RIP);

	if (cb->flags & CTRT_F_NRIPS)
		return vmcb_read(cb, CTRT_VMCB_NEXT_RIP) - rip == len ? len : 0;
	return cb->flags & CTRT_F_FIXED_LEN ? len : 0;
}

/*
 * Can the instruction be completed by skipping it?  Not if the guest
 * single-steps (KVM raises the #DB).
 */
static bool ctrt_can_skip(struct ctrt_cpu *cb, unsigned int len)
{
	return !(vmcb_read(cb, CTRT_VMCB_RFLAGS) & X86_EFLAGS_TF) &&
	       ctrt_insn_len(cb, len) == len;
}

/* kvm_skip_emulated_instruction(): past it, and out of any shadow. */
static void ctrt_skip(struct ctrt_cpu *cb, unsigned int len)
{
	vmcb_write(cb, CTRT_VMCB_RIP, vmcb_read(cb, CTRT_VMCB_RIP) + len);
	vmcb_write(cb, CTRT_VMCB_INT_STATE, 0);
}

/* kvm_emulate_cpuid() */
static bool ctrt_cpuid(struct ctrt_cpu *cb)
{
	const struct ctrt_cpuid *t = area(cb, CTRT_OFF_CPUID);
	struct caretaker_cpuid_live live;
	u32 out[4];

	if ((t->flags & CTRT_CPUID_F_FAULT) && vmcb_read8(cb, CTRT_VMCB_CPL))
		return false;
	if (!ctrt_can_skip(cb, 2))
		return false;
	live.cr4 = vmcb_read(cb, CTRT_VMCB_CR4);
	live.xcr0 = cb->xcr0;
	caretaker_cpuid(t, &live, (u32)vmcb_read(cb, CTRT_VMCB_RAX),
			(u32)cb->gprs.r[1], out);
	vmcb_write(cb, CTRT_VMCB_RAX, out[0]);
	cb->gprs.r[3] = out[1];
	cb->gprs.r[1] = out[2];
	cb->gprs.r[2] = out[3];
	ctrt_skip(cb, 2);
	return true;
}

/* kvm_emulate_xsetbv(): the guest's XCR0 is this CPU's while it runs. */
static bool ctrt_xsetbv(struct ctrt_cpu *cb)
{
	const struct ctrt_cpuid *t = area(cb, CTRT_OFF_CPUID);
	u64 xcr0 = (u32)vmcb_read(cb, CTRT_VMCB_RAX) | (cb->gprs.r[2] << 32);

	if (vmcb_read8(cb, CTRT_VMCB_CPL) || (u32)cb->gprs.r[1] ||
	    !caretaker_xcr0_valid(t, xcr0) || !ctrt_can_skip(cb, 3))
		return false;
	cb->xcr0 = xcr0;
	asm volatile("xsetbv" :: "c"(0), "a"((u32)xcr0), "d"((u32)(xcr0 >> 32))
		     : "memory");
	ctrt_skip(cb, 3);
	return true;
}

static bool ctrt_fastpath(struct ctrt_cpu *cb, u64 code)
{
	if (!(cb->flags & CTRT_F_FASTPATH))
		return false;
	switch (code) {
	case SVM_EXIT_CPUID:
		return ctrt_cpuid(cb);
	case SVM_EXIT_XSETBV:
		return ctrt_xsetbv(cb);
	}
	return false;
}

/* Run the guest until the kernel asks to stop it. */
static void ctrt_run(struct ctrt_cpu *cb)
{
	u8 *tlb_ctl = area(cb, CTRT_OFF_VMCB + CTRT_VMCB_TLB_CTL);
	u64 code;

	rt_wrmsr(MSR_VM_HSAVE_PA, cb->hsave_pa);
	ctrt_load_guest_context(cb);
	rt_vmsave(cb->hostsave_pa);
	cb->run_tsc = rt_rdtsc();

	if (cb->flags & CTRT_F_START_BLOCKED) {
		ctrt_block(cb, 0);
		return;
	}

	WRITE_ONCE(cb->state, CTRT_ST_RUNNING);
	for (;;) {
		if (READ_ONCE(cb->cmd) == CTRT_CMD_STOP)
			return;

		ctrt_vmrun(&cb->gprs, cb->vmcb_pa);
		rt_vmload(cb->hostsave_pa);
		if (cb->flags & CTRT_F_IBPB)
			rt_wrmsr(MSR_IA32_PRED_CMD, PRED_CMD_IBPB);

		cb->vmruns++;
		/* Only the first VMRUN flushes this ASID. */
		WRITE_ONCE(*tlb_ctl, 0);

		code = vmcb_read(cb, CTRT_VMCB_EXIT_CODE);
		cb->exits++;
		cb->exit_kinds[ctrt_exit_kind(code)]++;
		WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);

		switch (code) {
		case SVM_EXIT_NMI:
			/* Let the pending NMI in: the runtime's handler takes it. */
			rt_stgi();
			rt_clgi();
			break;
		case SVM_EXIT_INTR:
			/*
			 * Nothing to take with IF=0; the interrupt stays pending
			 * until Linux has this CPU again.
			 */
			break;
		default:
			if (ctrt_fastpath(cb, code)) {
				cb->handled_kinds[ctrt_exit_kind(code)]++;
				break;
			}
			ctrt_block(cb, code);
			return;
		}
	}
}

/* Give the CPU up: guest saved, SVM off, GIF=1 so that INIT gets in. */
static void __noreturn ctrt_halt(struct ctrt_cpu *cb)
{
	rt_stgi();
	rt_wrmsr(MSR_EFER, rt_rdmsr(MSR_EFER) & ~EFER_SVME);
	cb->stop_tsc = rt_rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_HALTED);
	for (;;)
		asm volatile("cli; hlt" ::: "memory");
}

void ctrt_main(struct ctrt_cpu *cb)
{
	ctrt_flush_global();
	ctrt_tables_init(cb);
	/* Linux turned SVM off on this CPU as it went offline; CLGI needs it. */
	rt_wrmsr(MSR_EFER, rt_rdmsr(MSR_EFER) | EFER_SVME);
	rt_clgi();
	WRITE_ONCE(cb->state, CTRT_ST_IDLE);

	for (;;) {
		u32 cmd = READ_ONCE(cb->cmd);

		if (cmd == CTRT_CMD_RUN) {
			ctrt_run(cb);
			ctrt_save_guest_context(cb);
			break;
		}
		if (cmd == CTRT_CMD_STOP)
			break;
		ctrt_wait(cb);
	}
	ctrt_halt(cb);
}

/*
 * Frame pushed by ctrt_trap_common: 15 registers (r15 first), the vector,
 * the error code, then what the CPU pushed (RIP, CS, RFLAGS, RSP, SS).
 */
#define FRAME_VECTOR	15
#define FRAME_ERROR	16
#define FRAME_RIP	17

void ctrt_trap(u64 *frame)
{
	struct ctrt_cpu *cb = (struct ctrt_cpu *)((u64)frame & ~(CTRT_CPU_SIZE - 1));
	u64 vector = frame[FRAME_VECTOR];
	unsigned long cr2;

	if (vector == 2) {
		cb->nmis++;
		return;
	}
	if (vector >= 32) {
		cb->strays++;
		return;
	}

	/* An exception in the runtime itself: record it and stop here. */
	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	cb->fault_vector = vector;
	cb->fault_error = frame[FRAME_ERROR];
	cb->fault_rip = frame[FRAME_RIP];
	cb->fault_cr2 = cr2;
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_FAULT);
	/* Let INIT in, so that the kernel can still take the CPU back. */
	if (rt_rdmsr(MSR_EFER) & EFER_SVME)
		rt_stgi();
	for (;;)
		asm volatile("cli; hlt" ::: "memory");
}

const struct ctrt_header ctrt_header __section(".ctrt.header") __used = {
	.magic = CTRT_MAGIC,
	.version = CTRT_ABI_VERSION,
	.entry = (u64)ctrt_entry,
	.text_end = (u64)ctrt_text_end,
	.rodata_end = (u64)ctrt_rodata_end,
	.file_end = (u64)ctrt_file_end,
	.image_end = (u64)ctrt_image_end,
};
