/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The caretaker runtime's entry, exception vectors and VMRUN.
 *
 * Built with the runtime's own flags and linked on its own at CTRT_BASE:
 * nothing here may refer to the kernel.
 */
#include "rt_abi.h"

/* struct ctrt_gprs, indexed like the instruction encoding. */
#define G_RCX	(1 * 8)
#define G_RDX	(2 * 8)
#define G_RBX	(3 * 8)
#define G_RBP	(5 * 8)
#define G_RSI	(6 * 8)
#define G_RDI	(7 * 8)
#define G_R8	(8 * 8)
#define G_R9	(9 * 8)
#define G_R10	(10 * 8)
#define G_R11	(11 * 8)
#define G_R12	(12 * 8)
#define G_R13	(13 * 8)
#define G_R14	(14 * 8)
#define G_R15	(15 * 8)

	.code64
	.section .text.entry, "ax"

/*
 * ctrt_entry - where a parked CPU arrives from the kernel
 * %rdi: this CPU's area (CTRT_CPU_VA(index)), which starts with its
 *       struct ctrt_cpu
 *
 * Runs on the bridge page table with the kernel's stack, interrupts off.
 * Loads the runtime's own CR3 and stack and never returns.
 */
	.globl ctrt_entry
	.type ctrt_entry, @function
ctrt_entry:
	endbr64
	movq	CTRT_CB_CR3(%rdi), %rax
	movq	%rax, %cr3
	leaq	(CTRT_OFF_STACK + CTRT_STACK_SIZE)(%rdi), %rsp
	xorl	%ebp, %ebp
	call	ctrt_main
1:	cli
	hlt
	jmp	1b
	.size ctrt_entry, . - ctrt_entry

	/* Still .text.entry: each #VMEXIT returns here, beside ctrt_run. */

/*
 * ctrt_vmrun - run the guest until its next #VMEXIT
 * %rdi: struct ctrt_gprs of the guest
 * %rsi: physical address of the VMCB
 *
 * Loads the guest's general-purpose registers, VMRUNs, and on #VMEXIT
 * saves them back.  The guest's VMLOAD state (TR, FS, GS, syscall MSRs)
 * is the caller's business: ctrt_run() keeps it in the CPU across the
 * exits it completes itself.  GIF is 0 throughout.
 */
	.globl ctrt_vmrun
	.type ctrt_vmrun, @function
ctrt_vmrun:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushq	%rdi

	movq	%rsi, %rax
	movq	G_RCX(%rdi), %rcx
	movq	G_RDX(%rdi), %rdx
	movq	G_RBX(%rdi), %rbx
	movq	G_RBP(%rdi), %rbp
	movq	G_RSI(%rdi), %rsi
	movq	G_R8(%rdi), %r8
	movq	G_R9(%rdi), %r9
	movq	G_R10(%rdi), %r10
	movq	G_R11(%rdi), %r11
	movq	G_R12(%rdi), %r12
	movq	G_R13(%rdi), %r13
	movq	G_R14(%rdi), %r14
	movq	G_R15(%rdi), %r15
	movq	G_RDI(%rdi), %rdi

	vmrun	%rax

	/* #VMEXIT: %rax and %rsp are the runtime's again. */
	movq	(%rsp), %rax
	movq	%rcx, G_RCX(%rax)
	movq	%rdx, G_RDX(%rax)
	movq	%rbx, G_RBX(%rax)
	movq	%rbp, G_RBP(%rax)
	movq	%rsi, G_RSI(%rax)
	movq	%rdi, G_RDI(%rax)
	movq	%r8, G_R8(%rax)
	movq	%r9, G_R9(%rax)
	movq	%r10, G_R10(%rax)
	movq	%r11, G_R11(%rax)
	movq	%r12, G_R12(%rax)
	movq	%r13, G_R13(%rax)
	movq	%r14, G_R14(%rax)
	movq	%r15, G_R15(%rax)

	/*
	 * Stuff the return stack buffer so that no return below predicts
	 * a guest-controlled target (what KVM's FILL_RETURN_BUFFER does).
	 */
	movl	$16, %ecx
2:	call	3f
	int3
3:	call	4f
	int3
4:	decl	%ecx
	jnz	2b
	addq	$(32 * 8), %rsp

	/* Clear what the guest left in the registers the ABI lets us clobber. */
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	xorl	%edi, %edi
	xorl	%r8d, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d

	popq	%rax
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size ctrt_vmrun, . - ctrt_vmrun

/*
 * ctrt_idle_halt - sleep, with GIF set, until the kernel's next NMI
 * ctrt_guest_halt - sleep with the guest, GIF and IF set, until an
 *	interrupt or an NMI
 *
 * An NMI stays pending while GIF is clear, and is taken once STGI sets
 * it, at the instruction after it: one sent while the runtime looked at
 * its command would end only the wait for itself, and the HLT would then
 * sleep until the next NMI.  ctrt_trap() resumes an NMI taken at one of
 * the labels below past the HLT.  In assembly, so that nothing comes
 * between the STGI and the HLT and no compiler copy duplicates a label.
 */
	.globl ctrt_idle_halt
	.type ctrt_idle_halt, @function
ctrt_idle_halt:
	endbr64
	stgi
	.globl ctrt_idle_hlt
ctrt_idle_hlt:
	hlt
	clgi
	ret
	.size ctrt_idle_halt, . - ctrt_idle_halt

	.globl ctrt_guest_halt
	.type ctrt_guest_halt, @function
ctrt_guest_halt:
	endbr64
	stgi
	.globl ctrt_guest_sti
ctrt_guest_sti:
	sti
	.globl ctrt_guest_hlt
ctrt_guest_hlt:
	hlt
	cli
	clgi
	ret
	.size ctrt_guest_halt, . - ctrt_guest_halt

/*
 * The vectors are cold: they go after all other text, out of the pages
 * that each #VMEXIT runs through (rt.lds).
 */
	.section .text.vectors, "ax"

/*
 * The IDT's 256 stubs, 16 bytes apart.  Each pushes a zero error code
 * where the CPU pushes none, then its vector, and goes to the common
 * handler.
 */
	.p2align 4
	.globl ctrt_vectors
ctrt_vectors:
	.Lvec = 0
	.rept 256
	.p2align 4
	/* The vectors for which the CPU pushes an error code. */
	.Lerr = .Lvec == 8 || (.Lvec >= 10 && .Lvec <= 14) || .Lvec == 17
	.Lerr = .Lerr || .Lvec == 21 || .Lvec == 29 || .Lvec == 30
	.if !.Lerr
	pushq	$0
	.endif
	pushq	$.Lvec
	jmp	ctrt_trap_common
	.Lvec = .Lvec + 1
	.endr

ctrt_trap_common:
	cld
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rbp
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	call	ctrt_trap
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rbp
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	addq	$16, %rsp
	iretq
