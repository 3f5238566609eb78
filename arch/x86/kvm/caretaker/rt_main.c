// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker runtime: what a parked CPU runs instead of Linux.
 *
 * It sets up its own descriptor tables, waits for the kernel to hand it
 * a guest, and runs that guest with VMRUN.  In this version every guest
 * exit but a physical NMI or interrupt blocks the guest until the kernel
 * stops it: the exit is kept in the VMCB, with RIP at the intercepted
 * instruction, for KVM to handle after ATTACH.
 *
 * Built with its own flags (no kernel headers, no FPU or vector
 * registers, no stack protector, tracing or sanitizers) and linked on
 * its own at CTRT_BASE; the build checks that it refers to nothing
 * outside itself.  Every global symbol starts with ctrt_.
 */
#include "rt_abi.h"

#define MSR_EFER		0xc0000080
#define EFER_SVME		(1ULL << 12)
#define MSR_VM_HSAVE_PA		0xc0010117
#define MSR_TSC_AUX		0xc0000103
#define MSR_SPEC_CTRL		0x00000048
#define MSR_PRED_CMD		0x00000049
#define PRED_CMD_IBPB		1
#define X86_CR4_PGE		(1UL << 7)

#define SVM_EXIT_INTR		0x060
#define SVM_EXIT_NMI		0x061

#define barrier()		__asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v)	(*(volatile __typeof__(x) *)&(x) = (v))

void ctrt_main(struct ctrt_cpu *cb);
void ctrt_trap(ctrt_u64 *frame);
void ctrt_vmrun(struct ctrt_gprs *gprs, ctrt_u64 vmcb_pa);
extern const char ctrt_vectors[];

struct ctrt_tss {
	ctrt_u32 reserved0;
	ctrt_u64 rsp[3];
	ctrt_u64 reserved1;
	ctrt_u64 ist[7];
	ctrt_u64 reserved2;
	unsigned short reserved3;
	unsigned short iomap_base;
} __attribute__((packed));

struct ctrt_dtr {
	unsigned short limit;
	ctrt_u64 base;
} __attribute__((packed));

static inline ctrt_u64 rdmsr(ctrt_u32 msr)
{
	ctrt_u32 lo, hi;

	__asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((ctrt_u64)hi << 32);
}

static inline void wrmsr(ctrt_u32 msr, ctrt_u64 val)
{
	__asm__ __volatile__("wrmsr" :: "c"(msr), "a"((ctrt_u32)val),
			     "d"((ctrt_u32)(val >> 32)) : "memory");
}

static inline ctrt_u64 rdtsc(void)
{
	ctrt_u32 lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | ((ctrt_u64)hi << 32);
}

static inline void stgi(void)
{
	__asm__ __volatile__("stgi" ::: "memory");
}

static inline void clgi(void)
{
	__asm__ __volatile__("clgi" ::: "memory");
}

static inline void vmsave(ctrt_u64 pa)
{
	__asm__ __volatile__("vmsave %%rax" :: "a"(pa) : "memory");
}

static inline void vmload(ctrt_u64 pa)
{
	__asm__ __volatile__("vmload %%rax" :: "a"(pa) : "memory");
}

static inline ctrt_u64 vmcb_read(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*(ctrt_u64 *)((char *)cb + CTRT_OFF_VMCB + off));
}

static inline void *area(struct ctrt_cpu *cb, unsigned long off)
{
	return (char *)cb + off;
}

/* A descriptor for a 64-bit segment, or the low half of a system one. */
static ctrt_u64 gdt_entry(ctrt_u64 base, ctrt_u32 limit, ctrt_u32 type_flags)
{
	return (limit & 0xffffULL) | ((base & 0xffffffULL) << 16) |
	       ((ctrt_u64)(type_flags & 0xf0ff) << 40) |
	       ((ctrt_u64)((limit >> 16) & 0xf) << 48) |
	       (((base >> 24) & 0xffULL) << 56);
}

static void ctrt_tables_init(struct ctrt_cpu *cb)
{
	ctrt_u64 *gdt = area(cb, CTRT_OFF_GDT);
	ctrt_u64 *idt = area(cb, CTRT_OFF_IDT);
	struct ctrt_tss *tss = area(cb, CTRT_OFF_GDT + CTRT_TSS_OFF);
	ctrt_u64 tss_base = (ctrt_u64)tss;
	struct ctrt_dtr gdtr, idtr;
	unsigned int i;

	for (i = 0; i < sizeof(*tss) / 8; i++)
		((ctrt_u64 *)tss)[i] = 0;
	tss->ist[0] = (ctrt_u64)area(cb, CTRT_OFF_NMI_STACK + CTRT_NMI_STACK_SIZE);
	tss->ist[1] = (ctrt_u64)area(cb, CTRT_OFF_EXC_STACK + CTRT_EXC_STACK_SIZE);
	tss->iomap_base = sizeof(*tss);

	gdt[0] = 0;
	gdt[1] = gdt_entry(0, 0xfffff, 0xa09b);	/* code: L, P, DPL0, exec/read */
	gdt[2] = gdt_entry(0, 0xfffff, 0xc093);	/* data: P, DPL0, read/write */
	gdt[3] = gdt_entry(tss_base, sizeof(*tss) - 1, 0x0089); /* 64-bit TSS */
	gdt[4] = tss_base >> 32;

	for (i = 0; i < 256; i++) {
		ctrt_u64 h = (ctrt_u64)(ctrt_vectors + 16 * i);
		ctrt_u64 ist = i == 2 ? 1 : (i == 8 || i == 18) ? 2 : 0;

		idt[2 * i] = (h & 0xffff) | ((ctrt_u64)CTRT_SEL_CODE << 16) |
			     (ist << 32) | (0x8eULL << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * i + 1] = h >> 32;
	}

	gdtr.limit = 5 * 8 - 1;
	gdtr.base = (ctrt_u64)gdt;
	idtr.limit = 256 * 16 - 1;
	idtr.base = (ctrt_u64)idt;

	__asm__ __volatile__(
		"lgdt %0\n\t"
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
		:: "m"(gdtr), "m"(idtr), "i"((ctrt_u64)CTRT_SEL_CODE),
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

	__asm__ __volatile__("mov %%cr4, %0" : "=r"(cr4));
	if (cr4 & X86_CR4_PGE)
		__asm__ __volatile__("mov %0, %%cr4" :: "r"(cr4 & ~X86_CR4_PGE) : "memory");
}

/* Sleep until the kernel's next NMI (it repeats them until answered). */
static void ctrt_wait(struct ctrt_cpu *cb)
{
	WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);
	stgi();
	__asm__ __volatile__("hlt" ::: "memory");
	clgi();
}

static void ctrt_load_guest_context(struct ctrt_cpu *cb)
{
	ctrt_u32 lo = (ctrt_u32)cb->xcr0, hi = (ctrt_u32)(cb->xcr0 >> 32);
	ctrt_u64 *xstate_bv = area(cb, CTRT_OFF_XSAVE + 512);
	ctrt_u64 bv = *xstate_bv;

	/*
	 * XRSTOR faults on XSTATE_BV bits outside XCR0: restore what XCR0
	 * enables and keep the rest of the image as it is.  XSAVE at the
	 * end rewrites only XCR0's bits of XSTATE_BV, so the image goes
	 * back to KVM whole.
	 */
	__asm__ __volatile__("xsetbv" :: "c"(0), "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv & cb->xcr0;
	__asm__ __volatile__("xrstor64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv;
	__asm__ __volatile__("mov %0, %%db0" :: "r"(cb->dr[0]));
	__asm__ __volatile__("mov %0, %%db1" :: "r"(cb->dr[1]));
	__asm__ __volatile__("mov %0, %%db2" :: "r"(cb->dr[2]));
	__asm__ __volatile__("mov %0, %%db3" :: "r"(cb->dr[3]));
	if (cb->flags & CTRT_F_TSC_AUX)
		wrmsr(MSR_TSC_AUX, cb->tsc_aux);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		wrmsr(MSR_SPEC_CTRL, cb->spec_ctrl);
}

static void ctrt_save_guest_context(struct ctrt_cpu *cb)
{
	ctrt_u32 lo = (ctrt_u32)cb->xcr0, hi = (ctrt_u32)(cb->xcr0 >> 32);
	unsigned long v;

	__asm__ __volatile__("xsave64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	__asm__ __volatile__("mov %%db0, %0" : "=r"(v));
	cb->dr[0] = v;
	__asm__ __volatile__("mov %%db1, %0" : "=r"(v));
	cb->dr[1] = v;
	__asm__ __volatile__("mov %%db2, %0" : "=r"(v));
	cb->dr[2] = v;
	__asm__ __volatile__("mov %%db3, %0" : "=r"(v));
	cb->dr[3] = v;
	if (cb->flags & CTRT_F_TSC_AUX)
		cb->tsc_aux = rdmsr(MSR_TSC_AUX);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		cb->spec_ctrl = rdmsr(MSR_SPEC_CTRL);
}

static void ctrt_block(struct ctrt_cpu *cb, ctrt_u64 code)
{
	cb->blocked_code = code;
	cb->blocked_info1 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO1);
	cb->blocked_info2 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO2);
	cb->blocked_rip = vmcb_read(cb, CTRT_VMCB_RIP);
	cb->blocked_tsc = rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_BLOCKED);
	while (READ_ONCE(cb->cmd) != CTRT_CMD_STOP)
		ctrt_wait(cb);
}

/* Run the guest until the kernel asks to stop it. */
static void ctrt_run(struct ctrt_cpu *cb)
{
	volatile unsigned char *tlb_ctl = area(cb, CTRT_OFF_VMCB + CTRT_VMCB_TLB_CTL);
	ctrt_u64 code;

	wrmsr(MSR_VM_HSAVE_PA, cb->hsave_pa);
	ctrt_load_guest_context(cb);
	vmsave(cb->hostsave_pa);
	cb->run_tsc = rdtsc();

	if (cb->flags & CTRT_F_START_BLOCKED) {
		ctrt_block(cb, 0);
		return;
	}

	WRITE_ONCE(cb->state, CTRT_ST_RUNNING);
	for (;;) {
		if (READ_ONCE(cb->cmd) == CTRT_CMD_STOP)
			return;

		ctrt_vmrun(&cb->gprs, cb->vmcb_pa);
		vmload(cb->hostsave_pa);
		if (cb->flags & CTRT_F_IBPB)
			wrmsr(MSR_PRED_CMD, PRED_CMD_IBPB);

		cb->vmruns++;
		/* Only the first VMRUN flushes this ASID. */
		*tlb_ctl = 0;

		code = vmcb_read(cb, CTRT_VMCB_EXIT_CODE);
		cb->exits++;
		cb->exit_kinds[ctrt_exit_kind(code)]++;
		WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);

		switch (code) {
		case SVM_EXIT_NMI:
			/* Let the pending NMI in: the runtime's handler takes it. */
			stgi();
			clgi();
			break;
		case SVM_EXIT_INTR:
			/*
			 * Nothing to take with IF=0; the interrupt stays pending
			 * until Linux has this CPU again.
			 */
			break;
		default:
			ctrt_block(cb, code);
			return;
		}
	}
}

/* Give the CPU up: guest saved, SVM off, GIF=1 so that INIT gets in. */
static void __attribute__((noreturn)) ctrt_halt(struct ctrt_cpu *cb)
{
	stgi();
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SVME);
	cb->stop_tsc = rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_HALTED);
	for (;;)
		__asm__ __volatile__("cli; hlt" ::: "memory");
}

void ctrt_main(struct ctrt_cpu *cb)
{
	ctrt_flush_global();
	ctrt_tables_init(cb);
	/* Linux turned SVM off on this CPU as it went offline; CLGI needs it. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	clgi();
	WRITE_ONCE(cb->state, CTRT_ST_IDLE);

	for (;;) {
		ctrt_u32 cmd = READ_ONCE(cb->cmd);

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

void ctrt_trap(ctrt_u64 *frame)
{
	struct ctrt_cpu *cb = (struct ctrt_cpu *)((ctrt_u64)frame & ~(CTRT_CPU_SIZE - 1));
	ctrt_u64 vector = frame[FRAME_VECTOR];
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
	__asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
	cb->fault_vector = vector;
	cb->fault_error = frame[FRAME_ERROR];
	cb->fault_rip = frame[FRAME_RIP];
	cb->fault_cr2 = cr2;
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_FAULT);
	/* Let INIT in, so that the kernel can still take the CPU back. */
	if (rdmsr(MSR_EFER) & EFER_SVME)
		stgi();
	for (;;)
		__asm__ __volatile__("cli; hlt" ::: "memory");
}

extern const char ctrt_text_end[], ctrt_rodata_end[], ctrt_file_end[];
extern const char ctrt_image_end[];
extern void ctrt_entry(void);

const struct ctrt_header ctrt_header __attribute__((section(".ctrt.header"), used)) = {
	.magic = CTRT_MAGIC,
	.version = CTRT_ABI_VERSION,
	.entry = (ctrt_u64)ctrt_entry,
	.text_end = (ctrt_u64)ctrt_text_end,
	.rodata_end = (ctrt_u64)ctrt_rodata_end,
	.file_end = (ctrt_u64)ctrt_file_end,
	.image_end = (ctrt_u64)ctrt_image_end,
};
