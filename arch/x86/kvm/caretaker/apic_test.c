// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the caretaker runtime's local APIC priority logic.
 */
#include <kunit/test.h>

#include "apic.h"

static void caretaker_apic_highest_vector_test(struct kunit *test)
{
	u32 reg[CARETAKER_APIC_WORDS] = { };

	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), -1);
	caretaker_apic_set_vector(reg, 0x20);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), 0x20);
	caretaker_apic_set_vector(reg, 0xec);
	caretaker_apic_set_vector(reg, 0x31);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), 0xec);
	/* The edges of each 32-bit register. */
	caretaker_apic_set_vector(reg, 0xff);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), 0xff);
	KUNIT_EXPECT_EQ(test, reg[7], 0x80001000U);
	caretaker_apic_clear_vector(reg, 0xff);
	caretaker_apic_clear_vector(reg, 0xec);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), 0x31);
	caretaker_apic_clear_vector(reg, 0x31);
	caretaker_apic_clear_vector(reg, 0x20);
	caretaker_apic_set_vector(reg, 0x40);
	KUNIT_EXPECT_EQ(test, reg[2], 1U);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), 0x40);
	caretaker_apic_clear_vector(reg, 0x40);
	KUNIT_EXPECT_EQ(test, caretaker_apic_highest_vector(reg), -1);
}

struct ppr_case {
	u8 tpr;
	int isrv;
	u8 ppr;
};

/* SDM Vol. 3A 11.8.3.1. */
static const struct ppr_case ppr_cases[] = {
	{ 0x00, -1, 0x00 },	/* nothing in service, no TPR */
	{ 0x35, -1, 0x35 },	/* the TPR, sub-class included */
	{ 0x35, 0x31, 0x35 },	/* same class: the TPR */
	{ 0x35, 0x41, 0x40 },	/* higher in-service class, sub-class 0 */
	{ 0x4f, 0x41, 0x4f },
	{ 0x00, 0xef, 0xe0 },
	{ 0xff, 0xef, 0xff },
};

static void ppr_case_desc(const struct ppr_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "tpr=%#x isrv=%d", c->tpr, c->isrv);
}

KUNIT_ARRAY_PARAM(ppr, ppr_cases, ppr_case_desc);

static void caretaker_apic_ppr_test(struct kunit *test)
{
	const struct ppr_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, caretaker_apic_ppr(c->tpr, c->isrv), c->ppr);
}

struct next_case {
	const char *name;
	u8 irr[3];	/* up to three pending vectors, 0 for none */
	u8 isr;		/* the in-service vector, 0 for none */
	u8 tpr;
	int next;
};

static const struct next_case next_cases[] = {
	{ "nothing pending", { }, 0, 0, -1 },
	{ "timer, no priority", { 0xec }, 0, 0, 0xec },
	{ "highest wins", { 0x31, 0xec, 0x80 }, 0, 0, 0xec },
	/* The class must be strictly above the PPR's class. */
	{ "masked by TPR, same class", { 0x35 }, 0, 0x30, -1 },
	{ "above TPR", { 0x41 }, 0, 0x3f, 0x41 },
	{ "masked by TPR, lower class", { 0x31 }, 0, 0x40, -1 },
	{ "masked by in-service", { 0x45 }, 0x41, 0, -1 },
	{ "preempts in-service", { 0x51 }, 0x41, 0, 0x51 },
	{ "TPR above in-service", { 0x51 }, 0x41, 0x50, -1 },
	{ "only the highest counts", { 0x31, 0x61 }, 0x61, 0, -1 },
};

static void next_case_desc(const struct next_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(next, next_cases, next_case_desc);

static void caretaker_apic_next_vector_test(struct kunit *test)
{
	const struct next_case *c = test->param_value;
	u32 irr[CARETAKER_APIC_WORDS] = { }, isr[CARETAKER_APIC_WORDS] = { };
	int i;

	for (i = 0; i < ARRAY_SIZE(c->irr); i++)
		if (c->irr[i])
			caretaker_apic_set_vector(irr, c->irr[i]);
	if (c->isr)
		caretaker_apic_set_vector(isr, c->isr);
	KUNIT_EXPECT_EQ(test, caretaker_apic_next_vector(irr, isr, c->tpr), c->next);
}

static struct kunit_case caretaker_apic_test_cases[] = {
	KUNIT_CASE(caretaker_apic_highest_vector_test),
	KUNIT_CASE_PARAM(caretaker_apic_ppr_test, ppr_gen_params),
	KUNIT_CASE_PARAM(caretaker_apic_next_vector_test, next_gen_params),
	{}
};

static struct kunit_suite caretaker_apic_test_suite = {
	.name = "caretaker_apic",
	.test_cases = caretaker_apic_test_cases,
};

kunit_test_suite(caretaker_apic_test_suite);
