// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the caretaker's uAPI argument validation.
 */
#include <kunit/test.h>
#include <kunit/visibility.h>
#include <linux/cpumask.h>

#include "caretaker.h"

MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");

/*
 * A fake machine of three CPU ids (the test host has three CPUs), with the
 * online and hotpluggable CPUs given per case as bitmaps.  CPU 0 is the
 * boot CPU: online, not hotpluggable.
 */
#define FAKE_NR_CPU_IDS 3
#define ALL	0x7UL
#define NOT_BOOT 0x6UL

struct cpus_case {
	const char *name;
	u32 cpus[4];
	u32 nr_cpus;
	u32 nr_vcpus;
	unsigned long online;
	unsigned long hotpluggable;
	int err;
	const char *why;
};

static const struct cpus_case cpus_cases[] = {
	{ "one vCPU on CPU 1", { 1 }, 1, 1, ALL, NOT_BOOT, 0, NULL },
	{ "two vCPUs, reversed", { 2, 1 }, 2, 2, ALL, NOT_BOOT, 0, NULL },
	{ "no vCPUs", { }, 0, 0, ALL, NOT_BOOT, -EINVAL, "the VM has no vCPUs" },
	{ "fewer CPUs than vCPUs", { 1 }, 1, 2, ALL, NOT_BOOT, -EINVAL,
	  "fewer physical CPUs than vCPUs" },
	{ "no CPUs at all", { }, 0, 1, ALL, NOT_BOOT, -EINVAL,
	  "fewer physical CPUs than vCPUs" },
	{ "more CPUs than vCPUs", { 1, 2 }, 2, 1, ALL, NOT_BOOT, -EINVAL,
	  "more physical CPUs than vCPUs" },
	{ "out of range", { 1, 3 }, 2, 2, ALL, NOT_BOOT, -EINVAL,
	  "physical CPU out of range" },
	{ "far out of range", { 0xffffffff }, 1, 1, ALL, NOT_BOOT, -EINVAL,
	  "physical CPU out of range" },
	{ "duplicate", { 2, 2 }, 2, 2, ALL, NOT_BOOT, -EINVAL,
	  "physical CPU given twice" },
	{ "offline", { 1, 2 }, 2, 2, 0x3UL, NOT_BOOT, -EINVAL,
	  "physical CPU is offline" },
	{ "boot CPU", { 0 }, 1, 1, ALL, NOT_BOOT, -EINVAL,
	  "physical CPU cannot be taken offline (boot CPU or not hotpluggable)" },
	{ "not hotpluggable", { 1, 2 }, 2, 2, ALL, 0x2UL, -EINVAL,
	  "physical CPU cannot be taken offline (boot CPU or not hotpluggable)" },
	/* The first problem in vCPU order wins. */
	{ "boot CPU before offline", { 0, 2 }, 2, 2, 0x3UL, NOT_BOOT, -EINVAL,
	  "physical CPU cannot be taken offline (boot CPU or not hotpluggable)" },
};

static void cpus_case_desc(const struct cpus_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(cpus, cpus_cases, cpus_case_desc);

static void caretaker_check_cpus_test(struct kunit *test)
{
	const struct cpus_case *c = test->param_value;
	struct cpumask *online, *hotpluggable, *seen;
	struct caretaker_refusal r;
	int cpu;

	if (nr_cpu_ids < FAKE_NR_CPU_IDS)
		kunit_skip(test, "needs nr_cpu_ids >= %d", FAKE_NR_CPU_IDS);

	/* Freed by KUnit when the case ends, whatever its outcome. */
	online = kunit_kzalloc(test, cpumask_size(), GFP_KERNEL);
	hotpluggable = kunit_kzalloc(test, cpumask_size(), GFP_KERNEL);
	seen = kunit_kzalloc(test, cpumask_size(), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, online);
	KUNIT_ASSERT_NOT_NULL(test, hotpluggable);
	KUNIT_ASSERT_NOT_NULL(test, seen);
	for (cpu = 0; cpu < FAKE_NR_CPU_IDS; cpu++) {
		if (c->online & BIT(cpu))
			cpumask_set_cpu(cpu, online);
		if (c->hotpluggable & BIT(cpu))
			cpumask_set_cpu(cpu, hotpluggable);
	}

	r = caretaker_check_cpus(c->cpus, c->nr_cpus, c->nr_vcpus,
				 FAKE_NR_CPU_IDS, online, hotpluggable, seen);
	KUNIT_EXPECT_EQ(test, r.err, c->err);
	if (c->why)
		KUNIT_EXPECT_STREQ(test, r.why, c->why);
	else
		KUNIT_EXPECT_NULL(test, r.why);
}

static void caretaker_check_zero_test(struct kunit *test)
{
	struct kvm_caretaker_prepare p = { };
	struct caretaker_refusal r;

	r = caretaker_check_zero(p.reserved, sizeof(p.reserved), "reserved");
	KUNIT_EXPECT_EQ(test, r.err, 0);

	/* Any one byte of any reserved word is enough to refuse. */
	p.reserved[3] = 1ULL << 63;
	r = caretaker_check_zero(p.reserved, sizeof(p.reserved), "reserved");
	KUNIT_EXPECT_EQ(test, r.err, -EINVAL);
	KUNIT_EXPECT_STREQ(test, r.why, "reserved");

	p.reserved[3] = 0;
	p.reserved[0] = 0x100;
	r = caretaker_check_zero(p.reserved, sizeof(p.reserved), "reserved");
	KUNIT_EXPECT_EQ(test, r.err, -EINVAL);

	r = caretaker_check_zero(&p.flags, 0, "empty");
	KUNIT_EXPECT_EQ(test, r.err, 0);
}

static void caretaker_check_args_test(struct kunit *test)
{
	struct kvm_caretaker_attach a = { };
	struct caretaker_refusal r;

	r = caretaker_check_args(a.flags, a.reserved, sizeof(a.reserved));
	KUNIT_EXPECT_EQ(test, r.err, 0);

	a.flags = 0x80000000;
	r = caretaker_check_args(a.flags, a.reserved, sizeof(a.reserved));
	KUNIT_EXPECT_EQ(test, r.err, -EINVAL);
	KUNIT_EXPECT_STREQ(test, r.why, "flags not zero");

	/* Flags are reported first. */
	a.reserved[2] = 1;
	r = caretaker_check_args(a.flags, a.reserved, sizeof(a.reserved));
	KUNIT_EXPECT_STREQ(test, r.why, "flags not zero");

	a.flags = 0;
	r = caretaker_check_args(a.flags, a.reserved, sizeof(a.reserved));
	KUNIT_EXPECT_EQ(test, r.err, -EINVAL);
	KUNIT_EXPECT_STREQ(test, r.why, "reserved fields not zero");
}

/* The uAPI is 64-bit clean: the same layout for 32- and 64-bit callers. */
static void caretaker_uapi_layout_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct kvm_caretaker_prepare), 48);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvm_caretaker_attach), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvm_caretaker_op), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct kvm_caretaker_status), 104);
	KUNIT_EXPECT_EQ(test, offsetof(struct kvm_caretaker_prepare, cpus), 8);
}

static struct kunit_case caretaker_validate_test_cases[] = {
	KUNIT_CASE_PARAM(caretaker_check_cpus_test, cpus_gen_params),
	KUNIT_CASE(caretaker_check_zero_test),
	KUNIT_CASE(caretaker_check_args_test),
	KUNIT_CASE(caretaker_uapi_layout_test),
	{}
};

static struct kunit_suite caretaker_validate_test_suite = {
	.name = "caretaker_validate",
	.test_cases = caretaker_validate_test_cases,
};

kunit_test_suite(caretaker_validate_test_suite);

MODULE_DESCRIPTION("KUnit tests for the caretaker's validation and arithmetic");
MODULE_LICENSE("GPL");
