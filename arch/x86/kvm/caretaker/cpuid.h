/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CPUID as KVM answers it, for the caretaker runtime.
 *
 * Pure and static inline, calling no kernel function (the runtime links
 * against nothing), like apic.h and timer.h; KUnit-tested against
 * kvm_cpuid()'s rules on the host.  The answer follows kvm_cpuid() in
 * arch/x86/kvm/cpuid.c: the exact entry, else Intel's out-of-range rule
 * (the highest basic leaf) unless the guest's vendor is AMD or Hygon,
 * else zeroes, with CPUID.0xB/0x1F's pass-through of CL and the x2APIC
 * ID; and the bits kvm_update_cpuid_runtime() rewrites from live state
 * (OSXSAVE and OSPKE from CR4, APIC from the APIC base, MWAIT from
 * MISC_ENABLE, the CPUID.0xD sizes from XCR0 and XSS), recomputed here
 * on every call from the values the caller passes.
 */
#ifndef __ARCH_X86_KVM_CARETAKER_CPUID_H
#define __ARCH_X86_KVM_CARETAKER_CPUID_H

#include <linux/types.h>
#include <asm/processor-flags.h>
#include <uapi/asm/kvm.h>

#include "rt_abi.h"

/* Bits of the leaves KVM rewrites at run time. */
#define CARETAKER_CPUID_1_ECX_MWAIT	BIT(3)
#define CARETAKER_CPUID_1_ECX_OSXSAVE	BIT(27)
#define CARETAKER_CPUID_1_EDX_APIC	BIT(9)
#define CARETAKER_CPUID_7_EBX_HLE	BIT(4)
#define CARETAKER_CPUID_7_EBX_RTM	BIT(11)
#define CARETAKER_CPUID_7_ECX_OSPKE	BIT(4)
#define CARETAKER_CPUID_D1_EAX_XSAVEC	BIT(1)
#define CARETAKER_CPUID_D1_EAX_XSAVES	BIT(3)
#define CARETAKER_CPUID_80000007_EDX_INVTSC BIT(8)

#define CARETAKER_APICBASE_ENABLE	BIT_ULL(11)
#define CARETAKER_MISC_ENABLE_MWAIT	BIT_ULL(18)

/* The legacy region and the XSAVE header: where component 2 may start. */
#define CARETAKER_XSAVE_HDR_END		576

/**
 * struct caretaker_cpuid_live - the live state CPUID depends on
 * @cr4: the guest's CR4
 * @xcr0: the guest's XCR0
 */
struct caretaker_cpuid_live {
	u64 cr4;
	u64 xcr0;
};

/**
 * caretaker_cpuid_find() - kvm_find_cpuid_entry_index() on a table
 * @t: the table
 * @function: the leaf
 * @index: the sub-leaf; ignored by entries without
 *	KVM_CPUID_FLAG_SIGNIFCANT_INDEX
 *
 * Return: the entry, or NULL.
 */
static inline const struct ctrt_cpuid_entry *
caretaker_cpuid_find(const struct ctrt_cpuid *t, u32 function, u32 index)
{
	u32 i, nr = t->nr < CTRT_CPUID_MAX ? t->nr : CTRT_CPUID_MAX;

	for (i = 0; i < nr; i++) {
		const struct ctrt_cpuid_entry *e = &t->e[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/**
 * caretaker_xstate_size() - xstate_required_size() on the host's layout
 * @t: the table, with the host's component sizes, offsets and alignment
 * @xfeatures: the components
 * @compacted: the compacted format (XSAVEC/XSAVES) instead of the standard
 *
 * Return: the bytes an XSAVE image of @xfeatures needs.
 */
static inline u32 caretaker_xstate_size(const struct ctrt_cpuid *t, u64 xfeatures,
					bool compacted)
{
	u32 ret = CARETAKER_XSAVE_HDR_END, off;
	unsigned int i;

	for (i = 2; i < CTRT_XSTATE_MAX; i++) {
		if (!(xfeatures & BIT_ULL(i)))
			continue;
		if (compacted)
			off = t->xstate_align & BIT(i) ? (ret + 63) & ~63U : ret;
		else
			off = t->xstate_offset[i];
		if (off + t->xstate_size[i] > ret)
			ret = off + t->xstate_size[i];
	}
	return ret;
}

static inline void caretaker_cpuid_set(u32 *reg, u32 bit, bool on)
{
	if (on)
		*reg |= bit;
	else
		*reg &= ~bit;
}

static inline bool caretaker_cpuid_vendor_amd(const struct ctrt_cpuid_entry *basic)
{
	/* "AuthenticAMD", "AMDisbetter!", "HygonGenuine" in EBX, EDX, ECX */
	return (basic->ebx == 0x68747541 && basic->edx == 0x69746e65 &&
		basic->ecx == 0x444d4163) ||
	       (basic->ebx == 0x69444d41 && basic->edx == 0x74656273 &&
		basic->ecx == 0x21726574) ||
	       (basic->ebx == 0x6f677948 && basic->edx == 0x6e65476e &&
		basic->ecx == 0x656e6975);
}

/* get_out_of_range_cpuid_entry(): Intel's rule, or NULL for AMD's. */
static inline const struct ctrt_cpuid_entry *
caretaker_cpuid_out_of_range(const struct ctrt_cpuid *t, u32 *function, u32 index)
{
	const struct ctrt_cpuid_entry *basic = caretaker_cpuid_find(t, 0, 0), *class;
	u32 fn = *function;

	if (!basic || caretaker_cpuid_vendor_amd(basic))
		return NULL;
	if (fn >= 0x40000000 && fn <= 0x4fffffff)
		class = caretaker_cpuid_find(t, fn & 0xffffff00, 0);
	else if (fn >= 0xc0000000)
		class = caretaker_cpuid_find(t, 0xc0000000, 0);
	else
		class = caretaker_cpuid_find(t, fn & 0x80000000, 0);
	if (class && fn <= class->eax)
		return NULL;
	*function = basic->eax;
	return caretaker_cpuid_find(t, basic->eax, index);
}

/**
 * caretaker_cpuid() - what CPUID returns to the guest
 * @t: the vCPU's table
 * @live: the guest's CR4 and XCR0 now
 * @function: EAX in
 * @index: ECX in
 * @out: EAX, EBX, ECX, EDX out
 *
 * CPUID faulting is the caller's to check (CTRT_CPUID_F_FAULT).
 */
static inline void caretaker_cpuid(const struct ctrt_cpuid *t,
				   const struct caretaker_cpuid_live *live,
				   u32 function, u32 index, u32 out[4])
{
	const struct ctrt_cpuid_entry *e = caretaker_cpuid_find(t, function, index);

	if (!e)
		e = caretaker_cpuid_out_of_range(t, &function, index);
	if (!e) {
		out[0] = 0;
		out[1] = 0;
		out[2] = 0;
		out[3] = 0;
		if (function == 0xb || function == 0x1f) {
			e = caretaker_cpuid_find(t, function, 1);
			if (e) {
				out[2] = index & 0xff;
				out[3] = e->edx;
			}
		}
		return;
	}
	out[0] = e->eax;
	out[1] = e->ebx;
	out[2] = e->ecx;
	out[3] = e->edx;

	/* kvm_update_cpuid_runtime(), on the entry that answers. */
	if (e->function == 1) {
		caretaker_cpuid_set(&out[2], CARETAKER_CPUID_1_ECX_OSXSAVE,
				    live->cr4 & X86_CR4_OSXSAVE);
		caretaker_cpuid_set(&out[3], CARETAKER_CPUID_1_EDX_APIC,
				    t->apic_base & CARETAKER_APICBASE_ENABLE);
		if (t->flags & CTRT_CPUID_F_MWAIT)
			caretaker_cpuid_set(&out[2], CARETAKER_CPUID_1_ECX_MWAIT,
					    t->misc_enable & CARETAKER_MISC_ENABLE_MWAIT);
	} else if (e->function == 7 && e->index == 0) {
		caretaker_cpuid_set(&out[2], CARETAKER_CPUID_7_ECX_OSPKE,
				    live->cr4 & X86_CR4_PKE);
	} else if (e->function == 0xd && e->index == 0) {
		out[1] = caretaker_xstate_size(t, live->xcr0, false);
	} else if (e->function == 0xd && e->index == 1) {
		if (e->eax & (CARETAKER_CPUID_D1_EAX_XSAVES | CARETAKER_CPUID_D1_EAX_XSAVEC))
			out[1] = caretaker_xstate_size(t, live->xcr0 | t->xss, true);
	}

	/* kvm_cpuid()'s own adjustments, on the leaf asked for. */
	if (function == 7 && index == 0 && (t->flags & CTRT_CPUID_F_NO_TSX))
		out[1] &= ~(CARETAKER_CPUID_7_EBX_RTM | CARETAKER_CPUID_7_EBX_HLE);
	else if (function == 0x80000007 && (t->flags & CTRT_CPUID_F_NO_INVTSC))
		out[3] &= ~CARETAKER_CPUID_80000007_EDX_INVTSC;
}

/**
 * caretaker_xcr0_valid() - would KVM's __kvm_set_xcr() accept this XCR0?
 * @t: the vCPU's table, with the XCR0 bits KVM lets the guest set
 * @xcr0: the new value
 *
 * Return: true if KVM would set it; otherwise KVM would inject #GP, and
 * the runtime leaves that to KVM.
 */
static inline bool caretaker_xcr0_valid(const struct ctrt_cpuid *t, u64 xcr0)
{
	u64 allowed = t->supported_xcr0;
	const u64 avx512 = BIT_ULL(5) | BIT_ULL(6) | BIT_ULL(7);
	const u64 amx = BIT_ULL(17) | BIT_ULL(18);

	/* x87 always; no bit the guest lacks; AVX needs SSE. */
	if (!(xcr0 & BIT_ULL(0)) || (xcr0 & ~(allowed | BIT_ULL(0))))
		return false;
	if ((xcr0 & BIT_ULL(2)) && !(xcr0 & BIT_ULL(1)))
		return false;
	/* MPX: both or neither. */
	if (!(xcr0 & BIT_ULL(3)) != !(xcr0 & BIT_ULL(4)))
		return false;
	/* AVX-512: all three, and with AVX; AMX: both. */
	if ((xcr0 & avx512) && ((xcr0 & avx512) != avx512 || !(xcr0 & BIT_ULL(2))))
		return false;
	if ((xcr0 & amx) && (xcr0 & amx) != amx)
		return false;
	return true;
}

#endif /* __ARCH_X86_KVM_CARETAKER_CPUID_H */
