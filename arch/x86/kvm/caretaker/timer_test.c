// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the caretaker's APIC timer and TSC arithmetic.
 *
 * The property that matters is the rounding rule in timer.h: a timer
 * programmed from these helpers never fires before the guest's deadline.
 * Each conversion is therefore checked against exact 128-bit products, for
 * clock pairs seen on real hosts and in the nested test host.
 */
#include <kunit/test.h>

#include "timer.h"

struct tdcr_case {
	u32 tdcr;
	unsigned int divisor;
};

/* SDM Vol. 3A, Figure 11-10, with the reserved bit 2 set and clear. */
static const struct tdcr_case tdcr_cases[] = {
	{ 0x0, 2 },   { 0x1, 4 },   { 0x2, 8 },   { 0x3, 16 },
	{ 0x8, 32 },  { 0x9, 64 },  { 0xa, 128 }, { 0xb, 1 },
	{ 0x4, 2 },   { 0x5, 4 },   { 0x6, 8 },   { 0x7, 16 },
	{ 0xc, 32 },  { 0xd, 64 },  { 0xe, 128 }, { 0xf, 1 },
	{ 0xfffffff0, 2 }, { 0xfffffffb, 1 },
};

static void tdcr_case_desc(const struct tdcr_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "tdcr=%#x", c->tdcr);
}

KUNIT_ARRAY_PARAM(tdcr, tdcr_cases, tdcr_case_desc);

static void caretaker_timer_divisor_test(struct kunit *test)
{
	const struct tdcr_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, caretaker_apic_timer_divisor(c->tdcr), c->divisor);
}

static void caretaker_timer_count_to_ns_test(struct kunit *test)
{
	/* KVM's default bus: 1 ns per cycle. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_count_to_ns(1000, 1, 1), 1000ULL);
	KUNIT_EXPECT_EQ(test, caretaker_apic_count_to_ns(1000, 16, 1), 16000ULL);
	/* The largest period: U32_MAX at divide-by-128 on a 25 MHz bus. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_count_to_ns(U32_MAX, 128, 40),
			(u64)U32_MAX * 128 * 40);
	KUNIT_EXPECT_EQ(test, caretaker_apic_count_to_ns(0, 128, 40), 0ULL);
}

struct clock_pair {
	u32 from_khz;
	u32 to_khz;
};

/*
 * TSC to APIC timer (and back) ratios: 25 MHz and 100 MHz crystals, QEMU's
 * 1 GHz APIC, odd TSC frequencies that do not divide evenly.
 */
static const struct clock_pair clock_pairs[] = {
	{ 2999999, 25000 },
	{ 3000000, 100000 },
	{ 2100012, 1000000 },
	{ 1000000, 1000000 },
	{ 25000, 2999999 },
	{ 3700000, 3 },
	{ 1, 4000000 },
};

static void clock_pair_desc(const struct clock_pair *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%u->%u kHz", c->from_khz,
		 c->to_khz);
}

KUNIT_ARRAY_PARAM(clock_pair, clock_pairs, clock_pair_desc);

static const u64 tick_counts[] = {
	0, 1, 2, 3, 999, 1000, 1001, 123456789, 0xffffffffULL,
	0x100000000ULL, 3000000000000ULL, 0x7fffffffffffffffULL, U64_MAX,
};

/*
 * convert_up(v) must cover v: r * from >= v * to (never early), and be the
 * smallest such value within the multiplier's rounding error, which is at
 * most one tick for any v below 2^32 ticks.
 */
static void caretaker_timer_convert_up_test(struct kunit *test)
{
	const struct clock_pair *c = test->param_value;
	u64 mult;
	int i;

	KUNIT_ASSERT_EQ(test, caretaker_mult_shift(c->from_khz, c->to_khz, &mult), 0);

	for (i = 0; i < ARRAY_SIZE(tick_counts); i++) {
		unsigned __int128 need, have;
		u64 v, r;

		v = tick_counts[i];
		r = caretaker_convert_up(v, mult);
		need = (unsigned __int128)v * c->to_khz;
		have = (unsigned __int128)r * c->from_khz;

		if (r == U64_MAX) {
			/*
			 * Saturated: only allowed where the exact value is
			 * within the multiplier's error (v / 2^32 ticks) of
			 * the top of the range.
			 */
			KUNIT_EXPECT_TRUE_MSG(test,
					      need >= (unsigned __int128)(U64_MAX - (v >> 32) - 1) *
						      c->from_khz,
					      "v=%llu saturated early", v);
			continue;
		}
		KUNIT_EXPECT_TRUE_MSG(test, have >= need,
				      "v=%llu r=%llu is early", v, r);
		if (v <= U32_MAX && r > 1) {
			unsigned __int128 less = (unsigned __int128)(r - 2) *
						 c->from_khz;

			KUNIT_EXPECT_TRUE_MSG(test, less < need,
					      "v=%llu r=%llu is more than one tick late",
					      v, r);
		}
	}
}

static void caretaker_timer_mult_shift_invalid_test(struct kunit *test)
{
	u64 mult = 0x1234;
	u32 zero = 0;

	/* Hidden from constant folding, which would see a division by zero. */
	OPTIMIZER_HIDE_VAR(zero);
	KUNIT_EXPECT_EQ(test, caretaker_mult_shift(zero, 1000, &mult), -EINVAL);
	KUNIT_EXPECT_EQ(test, mult, 0x1234ULL);
}

struct tsc_case {
	u64 host;
	u64 ratio;
	unsigned int frac_bits;
	u64 offset;
	u64 guest;
};

static const struct tsc_case tsc_cases[] = {
	/* No scaling: the offset alone, wrapping like the hardware. */
	{ 1000, 1ULL << 32, 32, 0, 1000 },
	{ 1000, 1ULL << 32, 32, -1000ULL, 0 },
	{ 5, 1ULL << 32, 32, -10ULL, -5ULL },
	/* AMD 8.32: x1.5 and x0.75. */
	{ 1000, 3ULL << 31, 32, 0, 1500 },
	{ 1001, 3ULL << 30, 32, 7, 750 + 7 },
	/* Intel 16.48: x2. */
	{ 1ULL << 40, 2ULL << 48, 48, 1, (1ULL << 41) + 1 },
	/* A large TSC does not overflow the intermediate product. */
	{ 0xffffffffffffULL, 3ULL << 31, 32, 0, 0x17ffffffffffeULL },
};

static void tsc_case_desc(const struct tsc_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "host=%#llx ratio=%#llx/%u",
		 c->host, c->ratio, c->frac_bits);
}

KUNIT_ARRAY_PARAM(tsc, tsc_cases, tsc_case_desc);

static void caretaker_timer_guest_tsc_test(struct kunit *test)
{
	const struct tsc_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test,
			caretaker_host_to_guest_tsc(c->host, c->ratio,
						    c->frac_bits, c->offset),
			c->guest);
}

static void caretaker_timer_oneshot_count_test(struct kunit *test)
{
	u64 mult;

	/* 3 GHz TSC, 100 MHz APIC: 30 TSC ticks per APIC tick. */
	KUNIT_ASSERT_EQ(test, caretaker_mult_shift(3000000, 100000, &mult), 0);

	/* Past and present deadlines still fire, as soon as possible. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(1000, 1000, mult), 1U);
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(1000, 10, mult), 1U);
	/* A deadline behind a wrapped TSC is in the past, not 2^64 away. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(5, -5ULL, mult), 1U);
	/* One TSC tick still needs one whole APIC tick. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(0, 1, mult), 1U);
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(0, 31, mult), 2U);
	/*
	 * An exact multiple may come out one tick late (the multiplier is
	 * rounded up), never early.
	 */
	KUNIT_EXPECT_GE(test, caretaker_apic_oneshot_count(0, 30, mult), 1U);
	KUNIT_EXPECT_LE(test, caretaker_apic_oneshot_count(0, 30, mult), 2U);
	KUNIT_EXPECT_GE(test, caretaker_apic_oneshot_count(100, 100 + 3000000, mult),
			100000U);
	KUNIT_EXPECT_LE(test, caretaker_apic_oneshot_count(100, 100 + 3000000, mult),
			100001U);
	/* Beyond the 32-bit counter: clamp, the runtime re-arms. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_oneshot_count(0, 1ULL << 62, mult),
			U32_MAX);
}

/* The guest APIC timer in host TSC cycles and back, at 2.5 GHz. */
static void caretaker_timer_apic_tsc_test(struct kunit *test)
{
	u64 ns_to_tsc, tsc_to_ns, t;

	KUNIT_ASSERT_EQ(test, caretaker_mult_shift(1000000, 2500000, &ns_to_tsc), 0);
	KUNIT_ASSERT_EQ(test, caretaker_mult_shift(2500000, 1000000, &tsc_to_ns), 0);
	/* 2 ms at divide 1 (TDCR 0xb), 1 ns bus: 5,000,000 cycles, rounded up. */
	t = caretaker_apic_count_to_tsc(2000000, 0xb, 1, ns_to_tsc);
	KUNIT_EXPECT_GE(test, t, 5000000ULL);
	KUNIT_EXPECT_LE(test, t, 5000001ULL);
	/* Divide by 2 (TDCR 0): twice as long. */
	KUNIT_EXPECT_GE(test, caretaker_apic_count_to_tsc(2000000, 0, 1, ns_to_tsc), 2 * t - 1);
	/* A period never below the minimum. */
	KUNIT_EXPECT_EQ(test, caretaker_apic_period_tsc(2000000, 0xb, 1, 200000, ns_to_tsc), t);
	KUNIT_EXPECT_GE(test, caretaker_apic_period_tsc(10, 0xb, 1, 200000, ns_to_tsc), 500000ULL);
	/* Back: the count left, never above TMICT. */
	KUNIT_EXPECT_LE(test, caretaker_apic_tsc_to_count(t, 0xb, 1, tsc_to_ns, 2000000), 2000000U);
	KUNIT_EXPECT_GE(test, caretaker_apic_tsc_to_count(t, 0xb, 1, tsc_to_ns, 2000000), 1999999U);
	KUNIT_EXPECT_EQ(test, caretaker_apic_tsc_to_count(2 * t, 0xb, 1, tsc_to_ns, 2000000),
			2000000U);
	KUNIT_EXPECT_EQ(test, caretaker_apic_tsc_to_count(0, 0xb, 1, tsc_to_ns, 2000000), 0U);
	/* The TSC-deadline MSR: 0 stays "none", anything else is never 0. */
	KUNIT_EXPECT_EQ(test, caretaker_tscdl_to_host(0, 1000), 0ULL);
	KUNIT_EXPECT_EQ(test, caretaker_tscdl_to_host(5001, 1000), 4001ULL);
	KUNIT_EXPECT_NE(test, caretaker_tscdl_to_host(1000, 1000), 0ULL);
}

static struct kunit_case caretaker_timer_test_cases[] = {
	KUNIT_CASE_PARAM(caretaker_timer_divisor_test, tdcr_gen_params),
	KUNIT_CASE(caretaker_timer_count_to_ns_test),
	KUNIT_CASE_PARAM(caretaker_timer_convert_up_test, clock_pair_gen_params),
	KUNIT_CASE(caretaker_timer_mult_shift_invalid_test),
	KUNIT_CASE_PARAM(caretaker_timer_guest_tsc_test, tsc_gen_params),
	KUNIT_CASE(caretaker_timer_oneshot_count_test),
	KUNIT_CASE(caretaker_timer_apic_tsc_test),
	{}
};

static struct kunit_suite caretaker_timer_test_suite = {
	.name = "caretaker_timer",
	.test_cases = caretaker_timer_test_cases,
};

kunit_test_suite(caretaker_timer_test_suite);
