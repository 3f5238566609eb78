// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the runtime's CPUID answers (cpuid.h): each rule of
 * kvm_cpuid() and kvm_update_cpuid_runtime() on a small table, with an
 * AMD and an Intel vendor string, and __kvm_set_xcr()'s XCR0 checks.
 */
#include <kunit/test.h>

#include "cpuid.h"

#define AMD_EBX	0x68747541	/* "Auth" */
#define AMD_EDX	0x69746e65	/* "enti" */
#define AMD_ECX	0x444d4163	/* "cAMD" */
#define INTEL_EBX 0x756e6547	/* "Genu" */
#define INTEL_EDX 0x49656e69	/* "ineI" */
#define INTEL_ECX 0x6c65746e	/* "ntel" */

static void ct_add(struct ctrt_cpuid *t, u32 fn, u32 idx, bool sig, u32 a, u32 b, u32 c, u32 d)
{
	t->e[t->nr++] = (struct ctrt_cpuid_entry){
		.function = fn, .index = idx,
		.flags = sig ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
		.eax = a, .ebx = b, .ecx = c, .edx = d,
	};
}

/* Max basic leaf 0xd, max extended 0x80000008; x87, SSE, AVX, PKRU. */
static struct ctrt_cpuid *ct_table(struct kunit *test, bool amd)
{
	struct ctrt_cpuid *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, t);
	if (amd)
		ct_add(t, 0, 0, false, 0xd, AMD_EBX, AMD_ECX, AMD_EDX);
	else
		ct_add(t, 0, 0, false, 0xd, INTEL_EBX, INTEL_ECX, INTEL_EDX);
	ct_add(t, 1, 0, false, 0x00a00f11, 0x00000800,
	       0x1 | CARETAKER_CPUID_1_ECX_OSXSAVE, 0x178bfbff);
	ct_add(t, 7, 0, true, 0, 0x219c91a9 | CARETAKER_CPUID_7_EBX_RTM, 0x10, 0);
	ct_add(t, 0xb, 0, true, 1, 1, 0x100, 3);
	ct_add(t, 0xb, 1, true, 4, 8, 0x201, 3);
	ct_add(t, 0xd, 0, true, 0x207, 0x988, 0x988, 0);
	ct_add(t, 0xd, 1, true, 0xf, 0x348, 0, 0);
	ct_add(t, 0xd, 2, true, 0x100, 0x240, 0, 0);
	ct_add(t, 0x80000000, 0, false, 0x80000008, AMD_EBX, AMD_ECX, AMD_EDX);
	ct_add(t, 0x80000007, 0, false, 0, 0, 0, CARETAKER_CPUID_80000007_EDX_INVTSC);
	ct_add(t, 0x80000008, 0, false, 0x3030, 0, 0, 0);
	t->apic_base = 0xfee00000 | CARETAKER_APICBASE_ENABLE | BIT(8);
	t->supported_xcr0 = 0x207;
	/* A layout like the host's: AVX at 576, PKRU at 2440, 8 bytes, aligned */
	t->xstate_size[2] = 256;
	t->xstate_offset[2] = 576;
	t->xstate_size[9] = 8;
	t->xstate_offset[9] = 2440;
	t->xstate_align = BIT(9);
	return t;
}

static void ct_ask(const struct ctrt_cpuid *t, u64 cr4, u64 xcr0, u32 fn, u32 idx,
		   u32 out[4])
{
	struct caretaker_cpuid_live live = { .cr4 = cr4, .xcr0 = xcr0 };

	caretaker_cpuid(t, &live, fn, idx, out);
}

#define CR4_ON	(X86_CR4_OSXSAVE | X86_CR4_PKE)

static void caretaker_cpuid_exact_test(struct kunit *test)
{
	struct ctrt_cpuid *t = ct_table(test, true);
	u32 r[4];

	ct_ask(t, CR4_ON, 0x7, 0x80000008, 0, r);
	KUNIT_EXPECT_EQ(test, r[0], 0x3030);
	/* A sub-leaf is only significant with the flag. */
	ct_ask(t, CR4_ON, 0x7, 0x80000008, 5, r);
	KUNIT_EXPECT_EQ(test, r[0], 0x3030);
	ct_ask(t, CR4_ON, 0x7, 0xd, 2, r);
	KUNIT_EXPECT_EQ(test, r[0], 0x100);
	KUNIT_EXPECT_EQ(test, r[1], 0x240);
}

static void caretaker_cpuid_live_bits_test(struct kunit *test)
{
	struct ctrt_cpuid *t = ct_table(test, true);
	u32 r[4];

	ct_ask(t, CR4_ON, 0x7, 1, 0, r);
	KUNIT_EXPECT_TRUE(test, r[2] & CARETAKER_CPUID_1_ECX_OSXSAVE);
	KUNIT_EXPECT_TRUE(test, r[3] & CARETAKER_CPUID_1_EDX_APIC);
	ct_ask(t, 0, 0x7, 1, 0, r);
	KUNIT_EXPECT_FALSE(test, r[2] & CARETAKER_CPUID_1_ECX_OSXSAVE);
	/* The rest of the leaf is the table's. */
	KUNIT_EXPECT_EQ(test, r[2], 0x1U);
	KUNIT_EXPECT_EQ(test, r[3], 0x178bfbffU);

	t->apic_base &= ~CARETAKER_APICBASE_ENABLE;
	ct_ask(t, CR4_ON, 0x7, 1, 0, r);
	KUNIT_EXPECT_FALSE(test, r[3] & CARETAKER_CPUID_1_EDX_APIC);

	/* MWAIT follows MISC_ENABLE only with KVM's quirk on. */
	t->misc_enable = CARETAKER_MISC_ENABLE_MWAIT;
	ct_ask(t, CR4_ON, 0x7, 1, 0, r);
	KUNIT_EXPECT_FALSE(test, r[2] & CARETAKER_CPUID_1_ECX_MWAIT);
	t->flags |= CTRT_CPUID_F_MWAIT;
	t->misc_enable = 0;
	ct_ask(t, CR4_ON, 0x7, 1, 0, r);
	KUNIT_EXPECT_FALSE(test, r[2] & CARETAKER_CPUID_1_ECX_MWAIT);
	t->misc_enable = CARETAKER_MISC_ENABLE_MWAIT;
	ct_ask(t, CR4_ON, 0x7, 1, 0, r);
	KUNIT_EXPECT_TRUE(test, r[2] & CARETAKER_CPUID_1_ECX_MWAIT);

	ct_ask(t, CR4_ON, 0x7, 7, 0, r);
	KUNIT_EXPECT_TRUE(test, r[2] & CARETAKER_CPUID_7_ECX_OSPKE);
	ct_ask(t, X86_CR4_OSXSAVE, 0x7, 7, 0, r);
	KUNIT_EXPECT_FALSE(test, r[2] & CARETAKER_CPUID_7_ECX_OSPKE);
	KUNIT_EXPECT_TRUE(test, r[1] & CARETAKER_CPUID_7_EBX_RTM);
	t->flags |= CTRT_CPUID_F_NO_TSX;
	ct_ask(t, CR4_ON, 0x7, 7, 0, r);
	KUNIT_EXPECT_FALSE(test, r[1] & CARETAKER_CPUID_7_EBX_RTM);

	ct_ask(t, CR4_ON, 0x7, 0x80000007, 0, r);
	KUNIT_EXPECT_TRUE(test, r[3] & CARETAKER_CPUID_80000007_EDX_INVTSC);
	t->flags |= CTRT_CPUID_F_NO_INVTSC;
	ct_ask(t, CR4_ON, 0x7, 0x80000007, 0, r);
	KUNIT_EXPECT_FALSE(test, r[3] & CARETAKER_CPUID_80000007_EDX_INVTSC);
}

static void caretaker_cpuid_xsave_size_test(struct kunit *test)
{
	struct ctrt_cpuid *t = ct_table(test, true);
	u32 r[4];

	/* Standard format: the end of the highest enabled component. */
	ct_ask(t, CR4_ON, 0x3, 0xd, 0, r);
	KUNIT_EXPECT_EQ(test, r[1], 576);
	ct_ask(t, CR4_ON, 0x7, 0xd, 0, r);
	KUNIT_EXPECT_EQ(test, r[1], 832);
	ct_ask(t, CR4_ON, 0x207, 0xd, 0, r);
	KUNIT_EXPECT_EQ(test, r[1], 2448);
	/* EAX, ECX, EDX are the table's. */
	KUNIT_EXPECT_EQ(test, r[0], 0x207);
	KUNIT_EXPECT_EQ(test, r[2], 0x988);

	/* Compacted (XSAVEC in 0xD.1 EAX): packed, PKRU aligned to 64. */
	ct_ask(t, CR4_ON, 0x207, 0xd, 1, r);
	KUNIT_EXPECT_EQ(test, r[1], 576 + 256 + 8);
	t->xss = BIT_ULL(9);	/* as if supervisor: XCR0 | XSS */
	ct_ask(t, CR4_ON, 0x7, 0xd, 1, r);
	KUNIT_EXPECT_EQ(test, r[1], 576 + 256 + 8);
	ct_ask(t, CR4_ON, 0x3, 0xd, 1, r);
	KUNIT_EXPECT_EQ(test, r[1], 576 + 8);
	/* Neither XSAVEC nor XSAVES: EBX as in the table. */
	t->e[6].eax = 0x1;
	ct_ask(t, CR4_ON, 0x207, 0xd, 1, r);
	KUNIT_EXPECT_EQ(test, r[1], 0x348);
	KUNIT_EXPECT_EQ(test, caretaker_xstate_size(t, 0x201, true), 576 + 8);
	t->xstate_offset[2] = 577;
	KUNIT_EXPECT_EQ(test, caretaker_xstate_size(t, 0x204, true), 576 + 256 + 8);
}

static void caretaker_cpuid_out_of_range_test(struct kunit *test)
{
	struct ctrt_cpuid *amd = ct_table(test, true), *intel = ct_table(test, false);
	u32 r[4];

	/* AMD: zeroes for anything not in the table. */
	ct_ask(amd, CR4_ON, 0x7, 0x8fffffff, 0, r);
	KUNIT_EXPECT_EQ(test, r[0] | r[1] | r[2] | r[3], 0);
	ct_ask(amd, CR4_ON, 0x7, 0x20, 0, r);
	KUNIT_EXPECT_EQ(test, r[0] | r[1] | r[2] | r[3], 0);
	ct_ask(amd, CR4_ON, 0x7, 0x40000000, 0, r);
	KUNIT_EXPECT_EQ(test, r[0] | r[1] | r[2] | r[3], 0);
	/* In range but missing: zeroes for Intel too. */
	ct_ask(intel, CR4_ON, 0x7, 0x5, 0, r);
	KUNIT_EXPECT_EQ(test, r[0] | r[1] | r[2] | r[3], 0);
	/* Intel: past its class's maximum, the highest basic leaf (0xd), same index. */
	ct_ask(intel, CR4_ON, 0x7, 0x20, 2, r);
	KUNIT_EXPECT_EQ(test, r[0], 0x100);
	ct_ask(intel, CR4_ON, 0x7, 0x8fffffff, 0, r);
	KUNIT_EXPECT_EQ(test, r[0], 0x207);
	/* ... with the live EBX of 0xD.0 */
	KUNIT_EXPECT_EQ(test, r[1], 832);
	/* A missing class (no 0x40000000 entry) is out of range. */
	ct_ask(intel, CR4_ON, 0x7, 0x40000001, 1, r);
	KUNIT_EXPECT_EQ(test, r[0], 0xf);
	KUNIT_EXPECT_EQ(test, r[1], 576 + 256);
}

static void caretaker_cpuid_topology_test(struct kunit *test)
{
	struct ctrt_cpuid *t = ct_table(test, true);
	u32 r[4];

	ct_ask(t, CR4_ON, 0x7, 0xb, 1, r);
	KUNIT_EXPECT_EQ(test, r[2], 0x201);
	/* An undefined sub-leaf: CL passes through, EDX is the x2APIC ID. */
	ct_ask(t, CR4_ON, 0x7, 0xb, 0x105, r);
	KUNIT_EXPECT_EQ(test, r[0], 0);
	KUNIT_EXPECT_EQ(test, r[1], 0);
	KUNIT_EXPECT_EQ(test, r[2], 0x05);
	KUNIT_EXPECT_EQ(test, r[3], 3);
	/* Not for a leaf without sub-leaf 1. */
	ct_ask(t, CR4_ON, 0x7, 0x1f, 3, r);
	KUNIT_EXPECT_EQ(test, r[2] | r[3], 0);
}

static void caretaker_cpuid_xcr0_test(struct kunit *test)
{
	struct ctrt_cpuid *t = ct_table(test, true);

	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x1));
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x3));
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x7));
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x207));
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x0));	/* no x87 */
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x2));
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x5));	/* AVX without SSE */
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x27));	/* not the guest's */
	t->supported_xcr0 = 0x600ff;
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0xf));	/* MPX halves */
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x1f));
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x67));	/* AVX-512 partly */
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0xe3));	/* AVX-512, no AVX */
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0xe7));
	KUNIT_EXPECT_FALSE(test, caretaker_xcr0_valid(t, 0x20007));	/* AMX partly */
	KUNIT_EXPECT_TRUE(test, caretaker_xcr0_valid(t, 0x60007));
}

static struct kunit_case caretaker_cpuid_cases[] = {
	KUNIT_CASE(caretaker_cpuid_exact_test),
	KUNIT_CASE(caretaker_cpuid_live_bits_test),
	KUNIT_CASE(caretaker_cpuid_xsave_size_test),
	KUNIT_CASE(caretaker_cpuid_out_of_range_test),
	KUNIT_CASE(caretaker_cpuid_topology_test),
	KUNIT_CASE(caretaker_cpuid_xcr0_test),
	{}
};

static struct kunit_suite caretaker_cpuid_suite = {
	.name = "caretaker_cpuid",
	.test_cases = caretaker_cpuid_cases,
};

kunit_test_suite(caretaker_cpuid_suite);
