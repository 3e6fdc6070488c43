/*
 * test_plan.c - the planner against an in-process fake collector with a
 * cap: steady, bursty, a scan, a flood in one millisecond, overlap
 * matching.  Every run must be lossless (every flow answered at least once,
 * the covered intervals are exactly the query minus the gaps) and stay
 * within the request bounds the benchmarks target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

#define DAY 86400000LL

static uint32_t CAP = 10000;	/* the fake collector's cap; tests may lower it */
static unsigned SPLIT = FETCH_SPLIT_PEER;	/* the driver's split dimensions */
static int64_t GRAN = 1;	/* and its time granularity (ms) */

struct fake {
	int64_t *start, *end;
	uint8_t (*peer)[16];
	size_t n;
	uint8_t *seen;
	bool overlap;
	uint64_t rng;
	uint64_t requests;
	/* a collector whose first full answer over-represents the flows that
	 * start before bias_until by the factor bias (0: none) */
	int64_t bias_until;
	double bias;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double unif(uint64_t *s)
{
	return ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
}


/* Add n flows with start times from gen(), peers random in 198.18.0.0/15
 * (or, for a flood, anywhere). */
static void add_flows(struct fake *f, size_t n, int64_t from, int64_t span, int shape,
		      bool any_peer)
{
	f->start = realloc(f->start, (f->n + n) * sizeof(int64_t));
	f->end = realloc(f->end, (f->n + n) * sizeof(int64_t));
	f->peer = realloc(f->peer, (f->n + n) * 16);
	for (size_t i = 0; i < n; i++) {
		double u = unif(&f->rng);
		if (shape == 1)	/* day/night: density 1 + 0.5 cos */
			for (int k = 0; k < 3; k++)
				u = u - (0.5 / (2 * M_PI)) * sin(2 * M_PI * u) * 0.3;
		int64_t t = from + (int64_t)(u * (double)span);
		size_t k = f->n + i;
		f->start[k] = t;
		f->end[k] = t + (int64_t)(rnd(&f->rng) % 60000);
		memset(f->peer[k], 0, 16);
		f->peer[k][10] = f->peer[k][11] = 0xff;
		uint32_t a = any_peer ? (uint32_t)rnd(&f->rng) : 0xc6120000u | (uint32_t)(rnd(&f->rng) & 0x1ffff);
		f->peer[k][12] = (uint8_t)(a >> 24);
		f->peer[k][13] = (uint8_t)(a >> 16);
		f->peer[k][14] = (uint8_t)(a >> 8);
		f->peer[k][15] = (uint8_t)a;
	}
	f->n += n;
}

/* The request's peer filter holds a: its prefix, or any of its set. */
static bool req_contains(const struct plan_req *r, const uint8_t a[16])
{
	if (r->npeer_set <= 1)
		return cache_prefix_contains(&r->peer, a);
	assert_true(SPLIT & FETCH_SPLIT_PEER_SET);
	assert_true(r->npeer_set <= PLAN_PEER_SET_MAX);
	for (size_t i = 0; i < r->npeer_set; i++)
		if (cache_prefix_contains(&r->peer_set[i], a))
			return true;
	return false;
}

/* Answer a request like a capped collector: matches, an arbitrary subset
 * when more than CAP. */
static size_t fake_answer(struct fake *f, const struct plan_req *r, int64_t **starts,
			  uint8_t (**peers)[16])
{
	size_t *idx = malloc(f->n * sizeof(*idx)), m = 0;
	for (size_t i = 0; i < f->n; i++) {
		bool in = f->overlap ? f->start[i] < r->end && f->end[i] >= r->start
				     : f->start[i] >= r->start && f->start[i] < r->end;
		if (in && (!r->has_peer || req_contains(r, f->peer[i])))
			idx[m++] = i;
	}
	f->requests++;
	if (m > CAP && f->bias > 0) {
		/* shuffled, then the late flows kept with probability 1 / bias */
		size_t k = 0;
		for (size_t i = 0; i < m; i++) {
			size_t j = i + rnd(&f->rng) % (m - i);
			size_t t = idx[i];
			idx[i] = idx[j];
			idx[j] = t;
		}
		for (size_t i = 0; i < m && k < CAP; i++)
			if (f->start[idx[i]] < f->bias_until || unif(&f->rng) * f->bias < 1)
				idx[k++] = idx[i];
		m = k;
		f->bias = 0;
	} else if (m > CAP) {
		for (size_t i = 0; i < CAP; i++) {	/* partial Fisher-Yates */
			size_t j = i + rnd(&f->rng) % (m - i);
			size_t t = idx[i];
			idx[i] = idx[j];
			idx[j] = t;
		}
		m = CAP;
	}
	*starts = malloc((m ? m : 1) * sizeof(int64_t));
	*peers = malloc((m ? m : 1) * 16);
	for (size_t i = 0; i < m; i++) {
		(*starts)[i] = f->start[idx[i]];
		memcpy((*peers)[i], f->peer[idx[i]], 16);
		f->seen[idx[i]] = 1;
	}
	free(idx);
	return m;
}

struct outcome {
	uint64_t requests, gaps, rescales;
	struct cache_ivals covered;
	double ratio;
};

/* Run the planner over [s, e) to the end, answering up to 'par' requests at
 * a time (as the engine keeps several in flight). */
static void run(struct fake *f, int64_t s, int64_t e, int par, struct outcome *o)
{
	struct cache_ivals missing = {0};
	struct plan_cfg cfg = {
		.cap = CAP, .granularity_ms = GRAN, .max_window_ms = 31 * DAY,
		.split_dims = SPLIT, .fill = 0.9,
	};
	struct plan *p;

	assert_int_equal(cache_prefix_parse("10.0.0.1", &cfg.subject), 0);
	assert_int_equal(cache_prefix_parse("0.0.0.0/0", &cfg.peer), 0);
	memset(o, 0, sizeof(*o));
	free(f->seen);
	f->seen = calloc(f->n ? f->n : 1, 1);
	f->requests = 0;
	assert_int_equal(cache_ivals_add(&missing, s, e), 0);
	assert_int_equal(plan_new(&cfg, &missing, &p), 0);
	int guard = 0;
	struct plan_req out[16];
	int nout = 0;
	assert_true(par >= 1 && par <= 16);
	/* like the engine: up to 'par' in flight, answered in any order */
	while (!plan_done(p)) {
		while (nout < par && plan_next(p, &out[nout]) == 0)
			nout++;
		assert_true(nout > 0);	/* not done, so something must be askable */
		int pick = (int)(rnd(&f->rng) % (uint64_t)nout);
		struct plan_req rq = out[pick];
		out[pick] = out[--nout];
		int64_t *st;
		uint8_t (*pe)[16];
		size_t n = fake_answer(f, &rq, &st, &pe);
		struct plan_ev *ev;
		size_t nev;
		assert_int_equal(plan_answer(p, rq.id, n, n, st, (const uint8_t (*)[16])pe, &ev, &nev), 0);
		for (size_t k = 0; k < nev; k++) {
			if (ev[k].kind == PLAN_COVER)
				assert_int_equal(cache_ivals_add(&o->covered, ev[k].start, ev[k].end), 0);
			else
				o->gaps++;
		}
		free(ev);
		free(st);
		free(pe);
		assert_true(++guard < 100000);
	}
	struct plan_stats stt;
	plan_get_stats(p, &stt);
	assert_int_equal(stt.requests, f->requests);
	o->requests = f->requests;
	o->rescales = stt.rescales;
	plan_free(p);
	cache_ivals_free(&missing);
	size_t inwin = 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->start[i] >= s && f->start[i] < e)
			inwin++;
	double lb = ceil((double)inwin / CAP);
	o->ratio = (double)o->requests / (lb > 0 ? lb : 1);
	printf("# %zu flows, %llu requests, lower bound %.0f, ratio %.2f, gaps %llu, rescales %llu\n",
	       inwin, (unsigned long long)o->requests, lb, o->ratio, (unsigned long long)o->gaps,
	       (unsigned long long)o->rescales);
}

/* Every flow that starts in [s, e) was answered, and coverage is whole. */
static void assert_lossless(struct fake *f, int64_t s, int64_t e, struct outcome *o)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->start[i] >= s && f->start[i] < e && !f->seen[i])
			fail_msg("flow %zu (start %lld) was never answered", i, (long long)f->start[i]);
	assert_int_equal(o->gaps, 0);
	assert_int_equal(o->covered.n, 1);
	assert_int_equal(o->covered.v[0].start, s);
	assert_int_equal(o->covered.v[0].end, e);
}

static void fake_free(struct fake *f)
{
	free(f->start);
	free(f->end);
	free(f->peer);
	free(f->seen);
	memset(f, 0, sizeof(*f));
}

static void test_small_window_one_request(void **state)
{
	(void)state;
	struct fake f = {.rng = 1};
	struct outcome o;

	add_flows(&f, 5000, 0, DAY, 1, false);
	run(&f, 0, DAY, 4, &o);
	assert_lossless(&f, 0, DAY, &o);
	assert_int_equal(o.requests, 1);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_steady_week(void **state)
{
	(void)state;
	struct fake f = {.rng = 2};
	struct outcome o;

	add_flows(&f, 150000, 0, 7 * DAY, 1, false);
	run(&f, 0, 7 * DAY, 4, &o);
	assert_lossless(&f, 0, 7 * DAY, &o);
	assert_true(o.ratio <= 1.3);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_heavy_day(void **state)
{
	(void)state;
	struct fake f = {.rng = 3};
	struct outcome o;

	add_flows(&f, 600000, 0, DAY, 1, false);
	run(&f, 0, DAY, 4, &o);
	assert_lossless(&f, 0, DAY, &o);
	/* measured 1.32 (79 for 60); bench/REPORT.md has the figures */
	assert_true(o.ratio <= 1.35);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_bursty(void **state)
{
	(void)state;
	struct fake f = {.rng = 4};
	struct outcome o;

	add_flows(&f, 20000, 0, DAY, 0, false);
	for (int b = 0; b < 5; b++)
		add_flows(&f, 16000, (int64_t)(b * 4 + 2) * 3600000LL, 60000 * (1 + 2 * b), 0, false);
	run(&f, 0, DAY, 4, &o);
	assert_lossless(&f, 0, DAY, &o);
	assert_true(o.ratio <= 2.0);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_scan_and_flood(void **state)
{
	(void)state;
	struct fake f = {.rng = 5};
	struct outcome o;

	add_flows(&f, 5000, 0, DAY, 1, false);
	add_flows(&f, 30000, 13 * 3600000LL, 1000, 0, false);	/* scan: one second */
	add_flows(&f, 15000, 3 * 3600000LL + 250, 1, 0, true);	/* flood: one ms */
	run(&f, 0, DAY, 4, &o);
	assert_lossless(&f, 0, DAY, &o);
	/* engine-notes: the naive splitter spends 4.4x on such a day */
	assert_true(o.ratio <= 2.5);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_overlap_matching(void **state)
{
	(void)state;
	struct fake f = {.rng = 6, .overlap = true};
	struct outcome o;

	add_flows(&f, 60000, 0, DAY, 1, false);
	run(&f, 3600000, DAY, 4, &o);
	assert_lossless(&f, 3600000, DAY, &o);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_gap_when_unsplittable(void **state)
{
	(void)state;
	struct fake f = {.rng = 7};
	struct outcome o;

	/* more than CAP flows in one ms from one peer: cannot be closed */
	add_flows(&f, 100, 0, DAY, 0, false);
	size_t base = f.n;
	add_flows(&f, CAP + 500, 5000, 1, 0, false);
	for (size_t i = base; i < f.n; i++)
		memcpy(f.peer[i], f.peer[base], 16);
	run(&f, 0, DAY, 4, &o);
	assert_int_equal(o.gaps, 1);
	/* everything but that millisecond is covered */
	assert_int_equal(o.covered.n, 2);
	assert_int_equal(o.covered.v[0].end, 5000);
	assert_int_equal(o.covered.v[1].start, 5001);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

/* A small cap (a collector configured to 1,000 or 2,000 records) must not
 * send the planner into intermediate windows that never shrink.  The count
 * of requests is a random variable (the collector's subsets are random), so
 * the bound is on the mean over seeds, with a looser bound on each run. */
static void test_small_caps(void **state)
{
	(void)state;
	static const uint32_t caps[] = {1000, 2000, 3000};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		double steady = 0, bursty = 0;
		CAP = caps[i];
		for (uint64_t seed = 0; seed < 6; seed++) {
			struct fake f = {.rng = 40 + 10 * i + seed};
			struct outcome o;
			add_flows(&f, 21000, 0, DAY, 1, false);
			run(&f, 0, DAY, 4, &o);
			assert_lossless(&f, 0, DAY, &o);
			assert_true(o.ratio <= 2.3);
			steady += o.ratio / 6;
			cache_ivals_free(&o.covered);
			fake_free(&f);
			f = (struct fake){.rng = 50 + 10 * i + seed};
			add_flows(&f, 20000, 0, DAY, 0, false);
			for (int b = 0; b < 5; b++)
				add_flows(&f, 8000, (int64_t)(b * 4 + 2) * 3600000LL, 60000 * (1 + 2 * b), 0,
					  false);
			run(&f, 0, DAY, 4, &o);
			assert_lossless(&f, 0, DAY, &o);
			assert_true(o.ratio <= 2.8);
			bursty += o.ratio / 6;
			cache_ivals_free(&o.covered);
			fake_free(&f);
		}
		printf("# cap %u: mean ratio %.2f steady, %.2f bursty\n", CAP, steady, bursty);
		/* measured over 100 seeds at cap 1,000: 1.69 on average, at most 2.05 */
		assert_true(steady <= 2.0);
		assert_true(bursty <= 2.3);
	}
	CAP = 10000;
}

/* The cap (and the driver's shape) back to the default, even after a
 * failed assertion. */
static int reset_cap(void **state)
{
	(void)state;
	CAP = 10000;
	SPLIT = FETCH_SPLIT_PEER;
	GRAN = 1;
	return 0;
}

/* A driver that asks several peer prefixes at once (SNA) at one second:
 * a scan second of 30,000 flows from one address is isolated with a few
 * requests, not one for each of the 32 light sibling prefixes on the way
 * down to the attacker's /32; a flood from many sources in the same second
 * is still split and closed. */
static void scan_second(unsigned split, struct outcome *o)
{
	struct fake f = {.rng = 9};

	SPLIT = split;
	GRAN = 1000;
	add_flows(&f, 5000, 0, DAY, 1, false);
	size_t base = f.n;
	add_flows(&f, 30000, 13 * 3600000LL, 1000, 0, false);	/* one attacker */
	for (size_t i = base; i < f.n; i++)
		memcpy(f.peer[i], f.peer[base], 16);
	add_flows(&f, 15000, 3 * 3600000LL, 1000, 0, true);	/* many sources */
	run(&f, 0, DAY, 4, o);
	assert_int_equal(o->gaps, 1);
	assert_int_equal(o->covered.n, 2);
	assert_int_equal(o->covered.v[0].end, 13 * 3600000LL);
	assert_int_equal(o->covered.v[1].start, 13 * 3600000LL + 1000);
	for (size_t i = 0; i < f.n; i++)
		if ((f.start[i] < 13 * 3600000LL || f.start[i] >= 13 * 3600000LL + 1000) &&
		    !f.seen[i])
			fail_msg("flow %zu outside the gap was never answered", i);
	cache_ivals_free(&o->covered);
	fake_free(&f);
}

static void test_peer_sets(void **state)
{
	(void)state;
	struct outcome one, sets;

	scan_second(FETCH_SPLIT_PEER, &one);
	scan_second(FETCH_SPLIT_PEER | FETCH_SPLIT_PEER_SET, &sets);
	printf("# scan second: %llu requests one prefix at a time, %llu with sets\n",
	       (unsigned long long)one.requests, (unsigned long long)sets.requests);
	assert_true(sets.requests + 25 <= one.requests);
	assert_true(sets.requests <= 15);
}

/* The design's targets hold on average over many collectors' random
 * subsets, not only for one seed: a steady week within 1.3 times the lower
 * bound, and no run beyond 1.8. */
static void test_steady_week_over_seeds(void **state)
{
	(void)state;
	double mean = 0;
	for (uint64_t seed = 0; seed < 12; seed++) {
		struct fake f = {.rng = 100 + seed};
		struct outcome o;
		add_flows(&f, 150000, 0, 7 * DAY, 1, false);
		run(&f, 0, 7 * DAY, 4, &o);
		assert_lossless(&f, 0, 7 * DAY, &o);
		assert_true(o.ratio <= 1.8);
		mean += o.ratio / 12;
		cache_ivals_free(&o.covered);
		fake_free(&f);
	}
	printf("# steady week: mean ratio %.2f\n", mean);
	assert_true(mean <= 1.3);
}

/* A size measured 20 % low (the collector's subset over-represented the
 * measured part) makes every leaf of the first plan come back full; the
 * leaves' answers must correct the size for the leaves not yet sent. */
static void test_rescale_after_low_measure(void **state)
{
	(void)state;
	struct fake f = {.rng = 7, .bias_until = DAY / 2, .bias = 1.3};
	struct outcome o;

	add_flows(&f, 150000, 0, 7 * DAY, 0, false);
	run(&f, 0, 7 * DAY, 4, &o);
	assert_lossless(&f, 0, 7 * DAY, &o);
	assert_true(o.rescales >= 1);
	assert_true(o.ratio <= 1.6);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_random_shapes(void **state)
{
	(void)state;
	for (uint64_t seed = 10; seed < 16; seed++) {
		struct fake f = {.rng = seed};
		struct outcome o;
		add_flows(&f, 1000 + rnd(&f.rng) % 40000, 0, DAY, (int)(seed % 2), false);
		int bursts = (int)(rnd(&f.rng) % 4);
		for (int b = 0; b < bursts; b++)
			add_flows(&f, 2000 + rnd(&f.rng) % 20000, (int64_t)(rnd(&f.rng) % (DAY - 600000)),
				  1 + (int64_t)(rnd(&f.rng) % 600000), 0, b % 2);
		int64_t s = (int64_t)(rnd(&f.rng) % 3600000), e = DAY - (int64_t)(rnd(&f.rng) % 3600000);
		f.overlap = seed % 3 == 0;
		run(&f, s, e, 1 + (int)(seed % 4), &o);
		assert_lossless(&f, s, e, &o);
		cache_ivals_free(&o.covered);
		fake_free(&f);
	}
}

/* Issue 10: the range starts at a flood's millisecond (the cache held the
 * morning up to it).  The remainder's sample is mostly the flood, so its
 * measuring part is that one millisecond, which is split by peer; the
 * rest of the day must still be planned once the peer parts are done. */
static void test_range_from_flood_ms(void **state)
{
	(void)state;
	const int64_t flood = 3 * 3600000LL + 250;
	struct fake f = {.rng = 11};
	struct outcome o;

	add_flows(&f, 17000, 0, DAY, 1, false);
	add_flows(&f, 15000, flood, 1, 0, true);
	run(&f, flood, DAY, 4, &o);
	assert_lossless(&f, flood, DAY, &o);
	cache_ivals_free(&o.covered);
	/* and a range that starts at the flood's millisecond and ends one
	 * after it, or at the second's edge */
	run(&f, flood, flood + 1, 2, &o);
	assert_lossless(&f, flood, flood + 1, &o);
	cache_ivals_free(&o.covered);
	run(&f, flood - 250, flood + 750, 2, &o);
	assert_lossless(&f, flood - 250, flood + 750, &o);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_window_one_request),
		cmocka_unit_test(test_steady_week),
		cmocka_unit_test(test_heavy_day),
		cmocka_unit_test(test_bursty),
		cmocka_unit_test(test_scan_and_flood),
		cmocka_unit_test(test_overlap_matching),
		cmocka_unit_test(test_gap_when_unsplittable),
		cmocka_unit_test_teardown(test_small_caps, reset_cap),
		cmocka_unit_test_teardown(test_peer_sets, reset_cap),
		cmocka_unit_test(test_steady_week_over_seeds),
		cmocka_unit_test(test_rescale_after_low_measure),
		cmocka_unit_test(test_random_shapes),
		cmocka_unit_test(test_range_from_flood_ms),
	};
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
