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
#include <unistd.h>

#include "fetch.h"


static uint32_t CAP = 10000;	/* the fake collector's cap; tests may lower it */
static unsigned SPLIT = FETCH_SPLIT_PEER;	/* the driver's split dimensions */
static int64_t GRAN = 1;	/* and its time granularity (ms) */

struct fake {
	int64_t *start, *end;
	uint8_t (*peer)[16];
	size_t n;
	uint8_t *seen;
	size_t *idx;		/* fake_answer's scratch, kept: no mmap per answer */
	size_t nidx;
	bool overlap;
	uint64_t rng;
	uint64_t requests;
	/* a collector whose first full answer over-represents the flows that
	 * start before bias_until by the factor bias (0: none) */
	int64_t bias_until;
	double bias;
	/* requests for [watch, watch + GRAN) with no peer filter (0: none) */
	int64_t watch;
	unsigned watched;
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
	size_t m = 0;
	if (f->nidx < f->n) {
		f->idx = realloc(f->idx, f->n * sizeof(*f->idx));
		f->nidx = f->n;
	}
	size_t *idx = f->idx;
	for (size_t i = 0; i < f->n; i++) {
		bool in = f->overlap ? f->start[i] < r->end && f->end[i] >= r->start
				     : f->start[i] >= r->start && f->start[i] < r->end;
		if (in && (!r->has_peer || req_contains(r, f->peer[i])))
			idx[m++] = i;
	}
	f->requests++;
	if (f->watch && r->start == f->watch && r->end == f->watch + GRAN &&
	    (!r->has_peer || r->peer.len == 0))
		f->watched++;
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
		.cap = CAP, .granularity_ms = GRAN, .max_window_ms = 31 * CACHE_DAY_MS,
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
	free(f->idx);
	memset(f, 0, sizeof(*f));
}

static void test_small_window_one_request(void **state)
{
	(void)state;
	struct fake f = {.rng = 1};
	struct outcome o;

	add_flows(&f, 5000, 0, CACHE_DAY_MS, 1, false);
	run(&f, 0, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, CACHE_DAY_MS, &o);
	assert_int_equal(o.requests, 1);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_steady_week(void **state)
{
	(void)state;
	struct fake f = {.rng = 2};
	struct outcome o;

	add_flows(&f, 150000, 0, 7 * CACHE_DAY_MS, 1, false);
	run(&f, 0, 7 * CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, 7 * CACHE_DAY_MS, &o);
	assert_true(o.ratio <= 1.3);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_heavy_day(void **state)
{
	(void)state;
	struct fake f = {.rng = 3};
	struct outcome o;

	add_flows(&f, 600000, 0, CACHE_DAY_MS, 1, false);
	run(&f, 0, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, CACHE_DAY_MS, &o);
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

	add_flows(&f, 20000, 0, CACHE_DAY_MS, 0, false);
	for (int b = 0; b < 5; b++)
		add_flows(&f, 16000, (int64_t)(b * 4 + 2) * 3600000LL, 60000 * (1 + 2 * b), 0, false);
	run(&f, 0, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, CACHE_DAY_MS, &o);
	assert_true(o.ratio <= 2.0);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_scan_and_flood(void **state)
{
	(void)state;
	struct fake f = {.rng = 5};
	struct outcome o;

	add_flows(&f, 5000, 0, CACHE_DAY_MS, 1, false);
	add_flows(&f, 30000, 13 * 3600000LL, 1000, 0, false);	/* scan: one second */
	add_flows(&f, 15000, 3 * 3600000LL + 250, 1, 0, true);	/* flood: one ms */
	run(&f, 0, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, CACHE_DAY_MS, &o);
	/* docs/design.md, "The planner": halving spent 4.4x on such a day */
	assert_true(o.ratio <= 2.5);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_overlap_matching(void **state)
{
	(void)state;
	struct fake f = {.rng = 6, .overlap = true};
	struct outcome o;

	add_flows(&f, 60000, 0, CACHE_DAY_MS, 1, false);
	run(&f, 3600000, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 3600000, CACHE_DAY_MS, &o);
	cache_ivals_free(&o.covered);
	fake_free(&f);
}

static void test_gap_when_unsplittable(void **state)
{
	(void)state;
	struct fake f = {.rng = 7};
	struct outcome o;

	/* more than CAP flows in one ms from one peer: cannot be closed */
	add_flows(&f, 100, 0, CACHE_DAY_MS, 0, false);
	size_t base = f.n;
	add_flows(&f, CAP + 500, 5000, 1, 0, false);
	for (size_t i = base; i < f.n; i++)
		memcpy(f.peer[i], f.peer[base], 16);
	run(&f, 0, CACHE_DAY_MS, 4, &o);
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
			add_flows(&f, 21000, 0, CACHE_DAY_MS, 1, false);
			run(&f, 0, CACHE_DAY_MS, 4, &o);
			assert_lossless(&f, 0, CACHE_DAY_MS, &o);
			assert_true(o.ratio <= 2.3);
			steady += o.ratio / 6;
			cache_ivals_free(&o.covered);
			fake_free(&f);
			f = (struct fake){.rng = 50 + 10 * i + seed};
			add_flows(&f, 20000, 0, CACHE_DAY_MS, 0, false);
			for (int b = 0; b < 5; b++)
				add_flows(&f, 8000, (int64_t)(b * 4 + 2) * 3600000LL, 60000 * (1 + 2 * b), 0,
					  false);
			run(&f, 0, CACHE_DAY_MS, 4, &o);
			assert_lossless(&f, 0, CACHE_DAY_MS, &o);
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
	add_flows(&f, 5000, 0, CACHE_DAY_MS, 1, false);
	size_t base = f.n;
	add_flows(&f, 30000, 13 * 3600000LL, 1000, 0, false);	/* one attacker */
	for (size_t i = base; i < f.n; i++)
		memcpy(f.peer[i], f.peer[base], 16);
	add_flows(&f, 15000, 3 * 3600000LL, 1000, 0, true);	/* many sources */
	run(&f, 0, CACHE_DAY_MS, 4, o);
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

/* A driver that splits a full slot itself first (FETCH_SPLIT_PEER_LAST,
 * Flowmon's filters): a flood's 5-minute slot that the day's sample shows
 * to hold more than a leaf is asked whole before any peer split (the
 * driver gets its chance), where without the flag it is split by peer at
 * once; lossless either way. */
static void test_peer_last(void **state)
{
	const int64_t slot = 3 * 3600000LL;
	unsigned watched[2];

	(void)state;
	GRAN = 300000;
	for (int last = 0; last < 2; last++) {
		struct fake f = {.rng = 11, .watch = slot};
		struct outcome o;
		SPLIT = FETCH_SPLIT_PEER | (last ? FETCH_SPLIT_PEER_LAST : 0);
		add_flows(&f, 5000, 0, CACHE_DAY_MS, 1, false);
		add_flows(&f, 15000, slot + 120000, 1, 0, true);	/* many sources */
		run(&f, 0, CACHE_DAY_MS, 4, &o);
		assert_lossless(&f, 0, CACHE_DAY_MS, &o);
		watched[last] = f.watched;
		cache_ivals_free(&o.covered);
		fake_free(&f);
	}
	assert_int_equal(watched[0], 0);
	assert_int_equal(watched[1], 1);
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
		add_flows(&f, 150000, 0, 7 * CACHE_DAY_MS, 1, false);
		run(&f, 0, 7 * CACHE_DAY_MS, 4, &o);
		assert_lossless(&f, 0, 7 * CACHE_DAY_MS, &o);
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
	struct fake f = {.rng = 7, .bias_until = CACHE_DAY_MS / 2, .bias = 1.3};
	struct outcome o;

	add_flows(&f, 150000, 0, 7 * CACHE_DAY_MS, 0, false);
	run(&f, 0, 7 * CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, 0, 7 * CACHE_DAY_MS, &o);
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
		add_flows(&f, 1000 + rnd(&f.rng) % 40000, 0, CACHE_DAY_MS, (int)(seed % 2), false);
		int bursts = (int)(rnd(&f.rng) % 4);
		for (int b = 0; b < bursts; b++)
			add_flows(&f, 2000 + rnd(&f.rng) % 20000, (int64_t)(rnd(&f.rng) % (CACHE_DAY_MS - 600000)),
				  1 + (int64_t)(rnd(&f.rng) % 600000), 0, b % 2);
		int64_t s = (int64_t)(rnd(&f.rng) % 3600000), e = CACHE_DAY_MS - (int64_t)(rnd(&f.rng) % 3600000);
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

	add_flows(&f, 17000, 0, CACHE_DAY_MS, 1, false);
	add_flows(&f, 15000, flood, 1, 0, true);
	run(&f, flood, CACHE_DAY_MS, 4, &o);
	assert_lossless(&f, flood, CACHE_DAY_MS, &o);
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

/* ---- the property suite (issue 10) ------------------------------------------ */

/* What one property case draws, for the message when it fails. */
struct pcase {
	uint64_t seed;
	uint32_t cap;
	int64_t gran, span;
	unsigned split;
	bool overlap, has_peer, interrupted;
	struct cache_prefix peer;
	int64_t floods[2], scans[2];
	int nfloods, nscans;
};

static int64_t pick(uint64_t *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd(r) % (uint64_t)(hi - lo + 1));
}

/* A time the defect of issue 10 lived at: a flood's or scan's instant, one
 * either side, or its slot's edges; else anywhere in [0, span]. */
static int64_t edge(uint64_t *r, const struct pcase *pc)
{
	int64_t marks[4];
	int n = 0;
	for (int i = 0; i < pc->nfloods; i++)
		marks[n++] = pc->floods[i];
	for (int i = 0; i < pc->nscans; i++)
		marks[n++] = pc->scans[i];
	if (n == 0 || rnd(r) % 4 == 0)
		return pick(r, 0, pc->span);
	int64_t t = marks[rnd(r) % (uint64_t)n];
	switch (rnd(r) % 5) {
	case 0: return t - 1;
	case 1: return t + 1;
	case 2: return t - t % 1000;
	case 3: return t - t % 1000 + 1000;
	default: return t;
	}
}

/* The fake's rule: does flow i answer a window [s, e) at peer prefix pp
 * (NULL: any)? */
static bool fake_match(const struct fake *f, size_t i, int64_t s, int64_t e,
		       const struct cache_prefix *pp)
{
	bool in = f->overlap ? f->start[i] < e && f->end[i] >= s : f->start[i] >= s && f->start[i] < e;
	return in && (!pp || cache_prefix_contains(pp, f->peer[i]));
}

/* A planner run over 'missing' to the end, or (stop_after > 0) abandoned
 * after that many answers as an interrupted download leaves it: the
 * events go to covered and gaps (each gap's peer in gap_peer). */
static void prop_run(struct fake *f, const struct pcase *pc, const struct cache_ivals *missing,
		     int stop_after, struct cache_ivals *covered, struct plan_ev **gaps,
		     size_t *ngaps)
{
	struct plan_cfg cfg = {
		.cap = pc->cap, .granularity_ms = pc->gran, .max_window_ms = 31 * CACHE_DAY_MS,
		.split_dims = pc->split, .fill = 0.9, .has_peer = pc->has_peer, .peer = pc->peer,
	};
	struct plan *p;
	struct plan_req out[16];
	int nout = 0, answers = 0, par = 1 + (int)(pc->seed % 4);

	assert_int_equal(cache_prefix_parse("10.0.0.1", &cfg.subject), 0);
	if (!pc->has_peer)
		assert_int_equal(cache_prefix_parse("0.0.0.0/0", &cfg.peer), 0);
	assert_int_equal(plan_new(&cfg, missing, &p), 0);
	while (!plan_done(p)) {
		while (nout < par && plan_next(p, &out[nout]) == 0)
			nout++;
		if (nout == 0)
			fail_msg("seed %llu: not done, and nothing to ask", (unsigned long long)pc->seed);
		int k = (int)(rnd(&f->rng) % (uint64_t)nout);
		struct plan_req rq = out[k];
		out[k] = out[--nout];
		if (pc->has_peer && !rq.has_peer)
			fail_msg("seed %llu: a request without the query's peer",
				 (unsigned long long)pc->seed);
		/* windows cut on the driver's granularity (Flowmon's 5-minute
		 * slots: a cut inside one made two windows read it), but where
		 * the missing span itself ends */
		for (int b = 0; b < 2; b++) {
			int64_t t = b ? rq.end : rq.start;
			bool edge = t % pc->gran == 0;
			for (size_t m = 0; m < missing->n && !edge; m++)
				edge = t == missing->v[m].start || t == missing->v[m].end;
			if (!edge)
				fail_msg("seed %llu: a window [%lld, %lld) cut off granularity %lld",
					 (unsigned long long)pc->seed, (long long)rq.start,
					 (long long)rq.end, (long long)pc->gran);
		}
		int64_t *st;
		uint8_t (*pe)[16];
		size_t n = fake_answer(f, &rq, &st, &pe);
		struct plan_ev *ev;
		size_t nev;
		if (getenv("PLAN_TRACE"))
			fprintf(stderr, "req %llu [%lld, %lld) peer /%d set %zu: %zu\n",
				(unsigned long long)rq.id, (long long)rq.start, (long long)rq.end,
				rq.peer.len, rq.npeer_set, n);
		assert_int_equal(plan_answer(p, rq.id, n, n, st, (const uint8_t (*)[16])pe, &ev, &nev), 0);
		for (size_t i = 0; i < nev; i++) {
			if (ev[i].kind == PLAN_COVER) {
				assert_int_equal(cache_ivals_add(covered, ev[i].start, ev[i].end), 0);
			} else {
				*gaps = realloc(*gaps, (*ngaps + 1) * sizeof(**gaps));
				(*gaps)[(*ngaps)++] = ev[i];
			}
		}
		free(ev);
		free(st);
		free(pe);
		if (++answers > (getenv("PLAN_GUARD") ? atoi(getenv("PLAN_GUARD")) : 20000))
			fail_msg("seed %llu: over 20,000 requests (cap %u, granularity %lld, split %u, %s)",
				 (unsigned long long)pc->seed, pc->cap, (long long)pc->gran, pc->split,
				 pc->overlap ? "overlap" : "start");
		if (stop_after && answers >= stop_after)
			break;
	}
	plan_free(p);
}

/* One random collector, query and cache state (seeded); fails with the
 * seed and the draw in the message. */
static void prop_case(uint64_t seed, struct cache *store)
{
	struct pcase pc = {.seed = seed};
	uint64_t r = seed * 0x9e3779b97f4a7c15ULL + 1;
	struct fake f = {.rng = seed + 1};
	char err[CACHE_ERRLEN];

	for (int i = 0; i < 4; i++)
		rnd(&r);
	pc.cap = (uint32_t)lround(exp(log(3) + unif(&r) * (log(10000) - log(3))));
	pc.gran = rnd(&r) % 10 < 7 ? 1 : rnd(&r) % 2 ? 1000 : 300000;
	unsigned sd = (unsigned)(rnd(&r) % 10);
	pc.split = sd < 6 ? FETCH_SPLIT_PEER : sd < 9 ? FETCH_SPLIT_PEER | FETCH_SPLIT_PEER_SET : 0;
	pc.span = pick(&r, 10, 36) * 3600000LL;
	pc.overlap = rnd(&r) % 5 == 0;
	f.overlap = pc.overlap;
	CAP = pc.cap;
	SPLIT = pc.split;
	GRAN = pc.gran;
	/* steady traffic, floods (distinct peers, one ms), scans (one peer,
	 * one ms or one second), all sized against the cap */
	size_t budget = 30000;
	size_t steady = (size_t)pick(&r, 0, 20 * (int64_t)pc.cap);
	add_flows(&f, steady < budget ? steady : budget, 0, pc.span, (int)(rnd(&r) % 2), false);
	pc.nfloods = (int)(rnd(&r) % 3);
	for (int i = 0; i < pc.nfloods; i++) {
		pc.floods[i] = pick(&r, 0, pc.span - 1);
		size_t n = (size_t)(pc.cap * (0.5 + 2.5 * unif(&r))), base = f.n;
		add_flows(&f, n < 15000 ? n : 15000, pc.floods[i], 1, 0, true);
		for (size_t k = base; k < f.n; k++)	/* a flood's flows are short */
			f.end[k] = f.start[k] + (int64_t)(rnd(&r) % 100);
	}
	pc.nscans = (int)(rnd(&r) % 3);
	for (int i = 0; i < pc.nscans; i++) {
		pc.scans[i] = pick(&r, 0, pc.span / 1000 - 1) * 1000 + (rnd(&r) % 2 ? 0 : 999);
		size_t n = (size_t)(pc.cap * (0.5 + 2.5 * unif(&r))), base = f.n;
		bool second = rnd(&r) % 2;
		add_flows(&f, n < 15000 ? n : 15000, second ? pc.scans[i] - pc.scans[i] % 1000 : pc.scans[i],
			  second ? 1000 : 1, 0, false);
		for (size_t k = base; k < f.n; k++) {
			memcpy(f.peer[k], f.peer[base], 16);
			f.end[k] = f.start[k] + (int64_t)(rnd(&r) % 100);	/* SYNs */
		}
	}
	/* the query, and its peer */
	int64_t qs = rnd(&r) % 2 ? 0 : edge(&r, &pc), qe = rnd(&r) % 2 ? pc.span : edge(&r, &pc);
	if (qs < 0)
		qs = 0;
	if (qe <= qs)
		qe = qs + 1 + (int64_t)(rnd(&r) % 3600000);
	pc.has_peer = rnd(&r) % 5 == 0;
	if (pc.has_peer) {
		const char *peers[] = {"198.18.0.0/15", "198.19.0.0/16", "128.0.0.0/1", "0.0.0.0/0"};
		assert_int_equal(cache_prefix_parse(peers[rnd(&r) % 4], &pc.peer), 0);
		if (pc.nscans && rnd(&r) % 2) {
			/* the scanner itself */
			pc.peer.len = 128;
			for (size_t k = 0; k < f.n; k++)
				if (f.start[k] >= pc.scans[0] - pc.scans[0] % 1000 &&
				    f.start[k] < pc.scans[0] - pc.scans[0] % 1000 + 1000 &&
				    (k + 1 == f.n || !memcmp(f.peer[k], f.peer[k + 1], 16))) {
					memcpy(pc.peer.addr, f.peer[k], 16);
					break;
				}
		}
	}
	/* the cache state: parts already covered, edges at the marks */
	struct cache_ivals have = {0}, missing = {0}, covered = {0};
	int parts = (int)(rnd(&r) % 4);
	for (int i = 0; i < parts; i++) {
		int64_t a = edge(&r, &pc), b = rnd(&r) % 2 ? edge(&r, &pc) : a + pick(&r, 1, 7200000);
		if (a > b) {
			int64_t t = a;
			a = b;
			b = t;
		}
		if (a < b)
			assert_int_equal(cache_ivals_add(&have, a, b), 0);
	}
	assert_int_equal(cache_ivals_subtract(&have, qs, qe, &missing), 0);
	free(f.seen);
	f.seen = calloc(f.n ? f.n : 1, 1);
	/* what the covered parts hold was answered by earlier runs */
	for (size_t k = 0; k < f.n; k++)
		for (size_t i = 0; i < have.n; i++)
			if (f.start[k] >= have.v[i].start && f.start[k] < have.v[i].end)
				f.seen[k] = 1;
	struct plan_ev *gaps = NULL;
	size_t ngaps = 0;
	pc.interrupted = missing.n && rnd(&r) % 3 == 0;
	if (pc.interrupted) {
		/* a run killed after a few answers: what it covered stays */
		struct cache_ivals first = {0}, rest = {0};
		prop_run(&f, &pc, &missing, 1 + (int)(rnd(&r) % 6), &first, &gaps, &ngaps);
		for (size_t i = 0; i < first.n; i++)
			assert_int_equal(cache_ivals_add(&have, first.v[i].start, first.v[i].end), 0);
		assert_int_equal(cache_ivals_subtract(&have, qs, qe, &rest), 0);
		cache_ivals_free(&missing);
		cache_ivals_free(&first);
		missing = rest;
		free(gaps);	/* an interrupted run's gaps are cleared and met again */
		gaps = NULL;
		ngaps = 0;
	}
	if (missing.n)
		prop_run(&f, &pc, &missing, 0, &covered, &gaps, &ngaps);

	char what[256];
	snprintf(what, sizeof(what),
		 "seed %llu (cap %u, granularity %lld, split %u, %s, peer %s, %d floods, %d scans, "
		 "query [%lld, %lld), %zu missing parts%s)",
		 (unsigned long long)seed, pc.cap, (long long)pc.gran, pc.split,
		 pc.overlap ? "overlap" : "start", pc.has_peer ? "yes" : "no", pc.nfloods, pc.nscans,
		 (long long)qs, (long long)qe, missing.n, pc.interrupted ? ", interrupted" : "");
	/* 1. covered and gaps partition the missing parts exactly */
	struct cache_ivals acc = {0}, rest = {0};
	for (size_t i = 0; i < covered.n; i++)
		assert_int_equal(cache_ivals_add(&acc, covered.v[i].start, covered.v[i].end), 0);
	for (size_t i = 0; i < ngaps; i++) {
		struct cache_ivals inter = {0};
		assert_int_equal(cache_ivals_subtract(&covered, gaps[i].start, gaps[i].end, &inter), 0);
		if (inter.n != 1 || inter.v[0].start != gaps[i].start || inter.v[0].end != gaps[i].end)
			fail_msg("%s: gap [%lld, %lld) is also covered", what,
				 (long long)gaps[i].start, (long long)gaps[i].end);
		cache_ivals_free(&inter);
		assert_int_equal(cache_ivals_add(&acc, gaps[i].start, gaps[i].end), 0);
	}
	for (size_t i = 0; i < missing.n; i++) {
		assert_int_equal(cache_ivals_subtract(&acc, missing.v[i].start, missing.v[i].end, &rest), 0);
		if (rest.n)
			fail_msg("%s: [%lld, %lld) of the missing part [%lld, %lld) was neither covered "
				 "nor a gap", what, (long long)rest.v[0].start, (long long)rest.v[0].end,
				 (long long)missing.v[i].start, (long long)missing.v[i].end);
	}
	/* nothing outside them, but for the rest of a granularity slot (a
	 * driver asks whole slots: SNA's seconds) */
	struct cache_ivals slots = {0};
	for (size_t i = 0; i < missing.n; i++) {
		int64_t a = missing.v[i].start - missing.v[i].start % pc.gran;
		int64_t b = missing.v[i].end + (pc.gran - missing.v[i].end % pc.gran) % pc.gran;
		assert_int_equal(cache_ivals_add(&slots, a, b), 0);
	}
	for (size_t i = 0; i < acc.n; i++) {
		assert_int_equal(cache_ivals_subtract(&slots, acc.v[i].start, acc.v[i].end, &rest), 0);
		if (rest.n)
			fail_msg("%s: [%lld, %lld) covered or a gap outside the missing parts", what,
				 (long long)rest.v[0].start, (long long)rest.v[0].end);
	}
	/* 2. every gap is one the collector forces: the cap or more match
	 * its slot and its narrowest peer */
	for (size_t i = 0; i < ngaps; i++) {
		size_t m = 0;
		for (size_t k = 0; k < f.n; k++)
			m += fake_match(&f, k, gaps[i].start, gaps[i].end, &gaps[i].peer) &&
			     (!pc.has_peer || cache_prefix_contains(&pc.peer, f.peer[k]));
		if (m < pc.cap)	/* exactly the cap is a full answer: no client can tell */
			fail_msg("%s: gap [%lld, %lld) holds %zu flows, fewer than the cap", what,
				 (long long)gaps[i].start, (long long)gaps[i].end, m);
		if (gaps[i].end - gaps[i].start > pc.gran)
			fail_msg("%s: gap [%lld, %lld) is wider than a slot", what,
				 (long long)gaps[i].start, (long long)gaps[i].end);
	}
	/* 3. every flow of the query outside the gaps was answered */
	for (size_t k = 0; k < f.n; k++) {
		if (f.start[k] < qs || f.start[k] >= qe || f.seen[k] ||
		    (pc.has_peer && !cache_prefix_contains(&pc.peer, f.peer[k])))
			continue;
		bool in_gap = false;
		for (size_t i = 0; i < ngaps && !in_gap; i++)
			in_gap = f.start[k] >= gaps[i].start && f.start[k] < gaps[i].end;
		if (!in_gap)
			fail_msg("%s: flow %zu (start %lld) was never answered", what, k,
				 (long long)f.start[k]);
	}
	/* 4. the store's audit agrees: the cache state, the covers and the
	 * gaps written as the engine writes them leave no hole */
	if (store) {
		char subj[32];
		struct cache_query q = {.start = qs, .end = qe, .has_peer = pc.has_peer, .peer = pc.peer};
		snprintf(subj, sizeof(subj), "10.%u.%u.%u", (unsigned)(seed >> 16) & 255,
			 (unsigned)(seed >> 8) & 255, (unsigned)seed & 255);
		assert_int_equal(cache_prefix_parse(subj, &q.subject), 0);
		struct cache_ivals all = {0};
		for (size_t i = 0; i < have.n; i++)
			assert_int_equal(cache_ivals_add(&all, have.v[i].start, have.v[i].end), 0);
		for (size_t i = 0; i < covered.n; i++)
			assert_int_equal(cache_ivals_add(&all, covered.v[i].start, covered.v[i].end), 0);
		for (size_t i = 0; i < all.n; i++) {
			struct cache_cover cv = {all.v[i].start, all.v[i].end, 1, false, 0};
			assert_int_equal(cache_put_window(store, &q, NULL, 0, &cv, err), 0);
		}
		for (size_t i = 0; i < ngaps; i++) {
			struct cache_gap g = {.start = gaps[i].start, .end = gaps[i].end, .seen = 1};
			assert_int_equal(cache_put_gap(store, &q, &g, err), 0);
		}
		struct cache_audit a;
		assert_int_equal(cache_audit(store, &q, 2, 0, &a, err), 0);
		if (a.holes.n)
			fail_msg("%s: the audit finds a hole at [%lld, %lld)", what,
				 (long long)a.holes.v[0].start, (long long)a.holes.v[0].end);
		if (ngaps == 0 && a.ngaps != 0)
			fail_msg("%s: the audit reports gaps no run met", what);
		cache_audit_free(&a);
		cache_ivals_free(&all);
	}
	free(gaps);
	cache_ivals_free(&slots);
	cache_ivals_free(&acc);
	cache_ivals_free(&rest);
	cache_ivals_free(&have);
	cache_ivals_free(&missing);
	cache_ivals_free(&covered);
	fake_free(&f);
}

/* Thousands of random collectors, queries and cache states (PLAN_SEEDS,
 * default 2000; PLAN_SEED=N runs one).  Each run must be exact: the
 * missing parts covered or a justified gap, every flow answered, and the
 * store's audit passing. */
static void test_property(void **state)
{
	(void)state;
	const char *one = getenv("PLAN_SEED"), *many = getenv("PLAN_SEEDS");
	uint64_t from = one ? strtoull(one, NULL, 10) : 0;
	uint64_t to = one ? from + 1 : many ? strtoull(many, NULL, 10) : 2000;
	/* in memory where there is a tmpfs: thousands of small commits */
	char dir[64], err[CACHE_ERRLEN] = "";
	snprintf(dir, sizeof(dir), "%s/test_plan.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	struct cache *store = NULL;
	static const struct cache_identity id = {"http://fake/", "fake", "flowapi"};

	assert_non_null(mkdtemp(dir));
	assert_int_equal(cache_open(dir, &id, &store, err), 0);
	for (uint64_t seed = from; seed < to; seed++) {
		if (getenv("PLAN_TRACE"))
			fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
		prop_case(seed, store);
	}
	printf("# property: %llu seeds exact\n", (unsigned long long)(to - from));
	const char *path = cache_path(store);
	char p2[512];
	snprintf(p2, sizeof(p2), "%s", path);
	cache_close(store);
	unlink(p2);
	strcat(p2, "-wal");
	unlink(p2);
	p2[strlen(p2) - 4] = '\0';
	strcat(p2, "-shm");
	unlink(p2);
	rmdir(dir);
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
		cmocka_unit_test_teardown(test_peer_last, reset_cap),
		cmocka_unit_test(test_steady_week_over_seeds),
		cmocka_unit_test(test_rescale_after_low_measure),
		cmocka_unit_test(test_random_shapes),
		cmocka_unit_test(test_range_from_flood_ms),
		cmocka_unit_test_teardown(test_property, reset_cap),
	};
	if (getenv("PLAN_SEED"))	/* replaying one property seed */
		cmocka_set_test_filter("test_property");
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
