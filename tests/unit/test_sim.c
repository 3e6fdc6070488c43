/*
 * test_sim.c - unit tests of flowsim's logic: the address matcher, the
 * scenario parser, the generator's determinism and the cap-and-subset rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define NOW 1795953600000LL	/* 2026-11-29T12:00:00Z */

static struct sim_prefix P(const char *s)
{
	struct sim_prefix p;
	assert_int_equal(sim_prefix_parse(s, &p), 0);
	return p;
}

static struct sim_addr A(const char *s)
{
	return P(s).addr;
}

static void test_prefix_parse(void **state)
{
	struct sim_prefix p;
	(void)state;

	assert_int_equal(sim_prefix_parse("10.1.2.3", &p), 0);
	assert_true(p.v4);
	assert_int_equal(p.len, 128);
	assert_int_equal(sim_prefix_parse("10.1.2.3/24", &p), 0);
	assert_int_equal(p.len, 120);
	assert_int_equal(p.addr.b[15], 0);	/* host bits cleared */
	assert_int_equal(sim_prefix_parse("2001:DB8::/32", &p), 0);
	assert_false(p.v4);
	assert_int_equal(p.len, 32);
	const char *bad[] = {"", "10.1.2", "10.1.2.3/33", "10.1.2.3/", "10.1.2.3/-1",
			     "::1/129", "10.1.2.3/2x", "host.example", "1.2.3.4 ",
			     "/8", "10.1.2.3/0008"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sim_prefix_parse(bad[i], &p), -EINVAL);
}

static void test_prefix_match(void **state)
{
	(void)state;
	struct sim_prefix net = P("198.51.100.0/24"), all4 = P("0.0.0.0/0"),
			  all6 = P("::/0"), v6 = P("2001:db8::/32");
	struct sim_addr in = A("198.51.100.77"), out = A("198.51.101.1"),
			six = A("2001:db8:10::5");

	assert_true(sim_prefix_contains(&net, &in));
	assert_false(sim_prefix_contains(&net, &out));
	assert_true(sim_prefix_contains(&all4, &in));
	assert_false(sim_prefix_contains(&all4, &six));	/* families never mix */
	assert_false(sim_prefix_contains(&all6, &in));
	assert_true(sim_prefix_contains(&all6, &six));
	assert_true(sim_prefix_contains(&v6, &six));
	struct sim_prefix n25 = P("198.51.100.128/25"), n23 = P("198.51.100.0/23");
	assert_true(sim_prefix_covers(&net, &n25));
	assert_false(sim_prefix_covers(&n25, &net));
	assert_true(sim_prefix_intersects(&n25, &n23));
	struct sim_prefix other = P("198.51.102.0/24");
	assert_false(sim_prefix_intersects(&other, &net));
}

static void test_addr_styles(void **state)
{
	(void)state;
	struct sim_addr a = A("2001:db8:10::5");
	char buf[64];

	for (unsigned style = 0; style < 5; style++) {
		sim_addr_format_style(&a, style, buf, sizeof(buf));
		struct sim_prefix back;
		assert_int_equal(sim_prefix_parse(buf, &back), 0);
		assert_memory_equal(back.addr.b, a.b, 16);
	}
	sim_addr_format_style(&a, 1, buf, sizeof(buf));
	assert_string_equal(buf, "2001:0db8:0010:0000:0000:0000:0000:0005");
	sim_addr_format_style(&a, 0, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:10::5");
}

static void test_query_match(void **state)
{
	(void)state;
	struct sim_flow f;
	struct sim_query q;

	memset(&f, 0, sizeof(f));
	memset(&q, 0, sizeof(q));
	f.src = A("10.0.0.1");
	f.dst = A("192.0.2.9");
	q.ip = P("10.0.0.0/8");
	assert_true(sim_query_match_flow(&q, &f));
	q.ip = P("192.0.2.9");
	assert_true(sim_query_match_flow(&q, &f));
	q.has_peer = true;
	q.peer = P("10.0.0.1");
	assert_true(sim_query_match_flow(&q, &f));
	q.peer = P("10.0.0.2");
	assert_false(sim_query_match_flow(&q, &f));
	/* both ends in ip, peer given: still (src in A and dst in P) rule */
	q.ip = P("0.0.0.0/0");
	q.peer = P("192.0.2.0/24");
	assert_true(sim_query_match_flow(&q, &f));
}

static void test_scenario_errors(void **state)
{
	(void)state;
	static struct sim_scenario sc;
	char err[SIM_ERRLEN];

	assert_int_equal(sim_scenario_parse(sim_default_scenario, &sc, err), 0);
	assert_true(sc.nstreams >= 6);
	assert_int_equal(sim_scenario_parse("bogus name=x addr=1.2.3.4 flows=1\n", &sc, err), -EINVAL);
	assert_non_null(strstr(err, "line 1"));
	assert_non_null(strstr(err, "bogus"));
	assert_int_equal(sim_scenario_parse("# c\nsteady addr=1.2.3.4 flows=1\n", &sc, err), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_int_equal(sim_scenario_parse("steady name=a addr=1.2.3 flows=1\n", &sc, err), -EINVAL);
	assert_non_null(strstr(err, "addr"));
	assert_int_equal(sim_scenario_parse("steady name=a addr=1.2.3.4 flows=0\n", &sc, err), -EINVAL);
	assert_int_equal(sim_scenario_parse("steady name=a addr=1.2.3.4 flows=5 color=red\n", &sc, err), -EINVAL);
	assert_non_null(strstr(err, "color"));
	assert_int_equal(sim_scenario_parse("steady name=a addr=1.2.3.4 flows=5\nsteady name=a addr=1.2.3.5 flows=5\n",
					    &sc, err), -EINVAL);
	assert_int_equal(sim_scenario_parse("steady name=a addr=::1 flows=5 peers=10.0.0.0/8\n", &sc, err), -EINVAL);
	assert_int_equal(sim_scenario_parse("flood name=f victim=1.2.3.4 at=23:59:59.999 span=5 flows=5\n",
					    &sc, err), -EINVAL);
	assert_int_equal(sim_scenario_parse("\n# nothing\n", &sc, err), -EINVAL);
}

/* A dataset with the default scenario, frozen at NOW. */
static struct sim_dataset *make_ds(uint64_t seed)
{
	static struct sim_scenario sc;
	char err[SIM_ERRLEN];
	struct sim_dataset *ds = calloc(1, sizeof(*ds));

	assert_non_null(ds);
	assert_int_equal(sim_scenario_parse(sim_default_scenario, &sc, err), 0);
	assert_int_equal(sim_dataset_init(ds, &sc, seed, NOW, 7), 0);
	return ds;
}

static void free_ds(struct sim_dataset *ds)
{
	sim_dataset_free(ds);
	free(ds);
}

static void test_generator_deterministic(void **state)
{
	(void)state;
	struct sim_dataset *a = make_ds(7), *b = make_ds(7), *c = make_ds(8);
	const struct sim_chunk *ca = sim_dataset_chunk(a, 0, 3);
	const struct sim_chunk *cb = sim_dataset_chunk(b, 0, 3);
	const struct sim_chunk *cc = sim_dataset_chunk(c, 0, 3);

	assert_non_null(ca);
	assert_true(ca->n >= 5000);
	assert_int_equal(ca->n, cb->n);
	assert_memory_equal(ca->start, cb->start, ca->n * sizeof(int64_t));
	for (uint64_t i = 1; i < ca->n; i++)
		assert_true(ca->start[i - 1] <= ca->start[i]);
	/* every flow lies inside its day */
	assert_true(ca->start[0] >= a->first_day_ms + 3 * SIM_DAY_MS);
	assert_true(ca->start[ca->n - 1] < a->first_day_ms + 4 * SIM_DAY_MS);
	struct sim_flow fa, fb, fc;
	sim_flow_make(a, 0, 3, 17, ca->start[17], &fa);
	sim_flow_make(b, 0, 3, 17, cb->start[17], &fb);
	sim_flow_make(c, 0, 3, 17, cc->start[17], &fc);
	assert_memory_equal(&fa, &fb, sizeof(fa));
	assert_true(fa.id != fc.id);
	bool differ = ca->n != cc->n;
	for (uint64_t i = 0; !differ && i < ca->n; i++)
		differ = ca->start[i] != cc->start[i];
	assert_true(differ);
	free_ds(a);
	free_ds(b);
	free_ds(c);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void test_ids_unique(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(3);
	uint64_t n = 0, cap = 0, *ids = NULL;

	for (int s = 0; s < ds->sc.nstreams; s++) {
		if (ds->sc.streams[s].kind == SIM_HEAVY)
			continue;
		for (int d = 4; d < 7; d++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, s, d);
			for (uint64_t i = 0; i < c->n; i++) {
				struct sim_flow f;
				if (n == cap) {
					cap = cap ? cap * 2 : 65536;
					ids = realloc(ids, cap * sizeof(*ids));
					assert_non_null(ids);
				}
				sim_flow_make(ds, s, d, i, c->start[i], &f);
				assert_true(f.end >= f.start);
				ids[n++] = f.id;
			}
		}
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	for (uint64_t i = 1; i < n; i++)
		assert_true(ids[i] != ids[i - 1]);
	free(ids);
	free_ds(ds);
}

static struct sim_query window(const char *ip, const char *peer, int64_t s, int64_t e)
{
	struct sim_query q;

	memset(&q, 0, sizeof(q));
	q.ip = P(ip);
	if (peer) {
		q.peer = P(peer);
		q.has_peer = true;
	}
	q.start = s;
	q.end = e;
	q.visible_before = NOW;
	q.export_delay_ms = 300000;
	return q;
}

/* Brute force: every flow of every stream and day that starts at most two
 * hours (the longest flow) before the window, tested one by one.  The
 * windows used lie well before the live edge. */
static uint64_t brute_count(struct sim_dataset *ds, const struct sim_query *q)
{
	uint64_t n = 0;

	for (int s = 0; s < ds->sc.nstreams; s++) {
		for (int d = 0; d < ds->ndays; d++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, s, d);
			uint64_t i = 0;
			while (i < c->n && c->start[i] < q->start - 2 * 3600000LL)
				i += (c->n - i > 4096 && c->start[i + 4096] < q->start - 2 * 3600000LL) ? 4096 : 1;
			for (; i < c->n && c->start[i] < q->end; i++) {
				struct sim_flow f;
				sim_flow_make(ds, s, d, i, c->start[i], &f);
				bool in = q->match == SIM_MATCH_START ?
					  f.start >= q->start && f.start < q->end :
					  f.start < q->end && f.end >= q->start;
				if (in && f.start <= q->visible_before - q->export_delay_ms &&
				    sim_query_match_flow(q, &f))
					n++;
			}
		}
	}
	return n;
}

static void test_collect_equals_brute_force(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	int64_t day5 = ds->first_day_ms + 5 * SIM_DAY_MS;
	struct sim_query qs[] = {
		window("10.0.1.10", NULL, day5 + 13 * 3600000LL, day5 + 15 * 3600000LL),
		window("10.0.1.0/24", NULL, day5, day5 + 3600000LL),
		window("10.0.1.10", "198.18.0.0/16", day5, day5 + 6 * 3600000LL),
		window("198.18.0.0/15", NULL, day5 + 3600000LL, day5 + 2 * 3600000LL),
		window("2001:db8::/32", NULL, day5, day5 + SIM_DAY_MS),
		window("0.0.0.0/1", NULL, day5 + SIM_DAY_MS - 60000, day5 + SIM_DAY_MS + 60000),
	};
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		for (int mode = 0; mode < 2; mode++) {
			struct sim_matches m;
			qs[i].match = mode ? SIM_MATCH_OVERLAP : SIM_MATCH_START;
			assert_int_equal(sim_query_collect(ds, &qs[i], &m), 0);
			assert_int_equal(m.total, brute_count(ds, &qs[i]));
			sim_matches_free(&m);
		}
	}
	free_ds(ds);
}

static void test_overlap_reaches_back(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	int64_t midnight = ds->first_day_ms + 5 * SIM_DAY_MS;
	struct sim_query q = window("10.0.1.11", NULL, midnight, midnight + 60000);
	struct sim_matches m;
	uint64_t before = 0;

	q.match = SIM_MATCH_OVERLAP;
	assert_int_equal(sim_query_collect(ds, &q, &m), 0);
	for (uint64_t i = 0; i < m.total; i++) {
		struct sim_ref r = sim_matches_at(&m, i);
		const struct sim_chunk *c = sim_dataset_chunk(ds, r.stream, r.day);
		if (c->start[r.pos] < midnight)
			before++;
	}
	assert_true(before > 0);	/* flows that cross midnight */
	sim_matches_free(&m);
	free_ds(ds);
}

static void test_live_edge_hidden(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	struct sim_query q = window("10.0.1.20", NULL, NOW - 600000, NOW + 600000);
	struct sim_matches m;

	assert_int_equal(sim_query_collect(ds, &q, &m), 0);
	for (uint64_t i = 0; i < m.total; i++) {
		struct sim_ref r = sim_matches_at(&m, i);
		assert_true(sim_dataset_chunk(ds, r.stream, r.day)->start[r.pos] <= NOW);
	}
	uint64_t at_now = m.total;
	sim_matches_free(&m);
	q.visible_before = NOW + 600000;	/* later, more has arrived */
	assert_int_equal(sim_query_collect(ds, &q, &m), 0);
	assert_true(m.total > at_now);
	sim_matches_free(&m);
	free_ds(ds);
}

static void test_cap_and_subset(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	int64_t day5 = ds->first_day_ms + 5 * SIM_DAY_MS;
	struct sim_query q = window("10.0.1.20", NULL, day5 + 14 * 3600000LL, day5 + 15 * 3600000LL);
	struct sim_matches m;
	struct sim_ref *r1, *r2;
	size_t n1, n2;

	assert_int_equal(sim_query_collect(ds, &q, &m), 0);
	assert_true(m.total > 10000);
	assert_int_equal(sim_query_pick(&m, 10000, 1, &r1, &n1), 0);
	assert_int_equal(sim_query_pick(&m, 10000, 2, &r2, &n2), 0);
	assert_int_equal(n1, 10000);
	assert_int_equal(n2, 10000);
	/* distinct, all in the window, and two draws differ */
	uint64_t *p = malloc(n1 * sizeof(*p));
	bool same_order = true;
	for (size_t i = 0; i < n1; i++) {
		const struct sim_chunk *c = sim_dataset_chunk(ds, r1[i].stream, r1[i].day);
		int64_t t = c->start[r1[i].pos];
		assert_true(t >= q.start && t < q.end);
		p[i] = r1[i].pos;
		same_order = same_order && r1[i].pos == r2[i].pos;
	}
	assert_false(same_order);
	qsort(p, n1, sizeof(*p), cmp_u64);
	for (size_t i = 1; i < n1; i++)
		assert_true(p[i] != p[i - 1]);
	/* the chosen positions are spread, not the first ones */
	assert_true(p[n1 - 1] > m.total / 2);
	free(p);
	free(r1);
	free(r2);
	sim_matches_free(&m);

	/* unsaturated: everything, shuffled */
	q = window("10.0.1.10", NULL, day5 + 14 * 3600000LL, day5 + 15 * 3600000LL);
	assert_int_equal(sim_query_collect(ds, &q, &m), 0);
	assert_true(m.total > 10 && m.total < 10000);
	assert_int_equal(sim_query_pick(&m, 10000, 3, &r1, &n1), 0);
	assert_int_equal(n1, m.total);
	bool sorted = true;
	for (size_t i = 1; i < n1; i++)
		sorted = sorted && r1[i].pos > r1[i - 1].pos;
	assert_false(sorted);
	free(r1);
	sim_matches_free(&m);
	free_ds(ds);
}

static bool same_ref(struct sim_ref a, struct sim_ref b)
{
	return a.stream == b.stream && a.day == b.day && a.pos == b.pos;
}

static bool has_ref(const struct sim_ref *refs, size_t n, struct sim_ref r)
{
	for (size_t i = 0; i < n; i++)
		if (same_ref(refs[i], r))
			return true;
	return false;
}

/* Is the flow of r one q could select in either match mode (its addresses
 * match and it overlaps the window), or not yet exported? */
static bool near_answer(struct sim_dataset *ds, const struct sim_query *q, struct sim_ref r)
{
	const struct sim_chunk *c = sim_dataset_chunk(ds, r.stream, r.day);
	struct sim_flow f;

	sim_flow_make(ds, r.stream, r.day, r.pos, c->start[r.pos], &f);
	return f.start > q->visible_before ||
	       (f.start < q->end && f.end >= q->start && sim_query_match_flow(q, &f));
}

/* Pick an answer of q under limit, spoil it with sim_query_foreign(seed),
 * check what it promises and return how many foreign flows it holds. */
static size_t spoil_and_check(struct sim_dataset *ds, const struct sim_query *q,
			      uint64_t limit, uint64_t seed, struct sim_ref **out, size_t *nout)
{
	struct sim_matches m;
	struct sim_ref *refs, *before;
	size_t n, n0, foreign = 0;

	assert_int_equal(sim_query_collect(ds, q, &m), 0);
	assert_int_equal(sim_query_pick(&m, limit, 1, &refs, &n), 0);
	sim_matches_free(&m);
	n0 = n;
	before = malloc((n0 ? n0 : 1) * sizeof(*before));
	assert_non_null(before);
	memcpy(before, refs, n0 * sizeof(*before));
	assert_int_equal(sim_query_foreign(ds, q, limit, seed, &refs, &n), 0);
	assert_true(n <= limit);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_false(same_ref(refs[i], refs[j]));
		if (has_ref(before, n0, refs[i]))
			continue;
		assert_false(near_answer(ds, q, refs[i]));
		foreign++;
	}
	assert_true(foreign >= 1 && foreign <= 5);
	if (n0 + foreign <= limit) {	/* room: the whole true answer stays */
		assert_int_equal(n, n0 + foreign);
	} else {			/* full: true records make way */
		assert_int_equal(n, limit);
	}
	free(before);
	*out = refs;
	*nout = n;
	return foreign;
}

static void test_foreign_fault(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	int64_t day5 = ds->first_day_ms + 5 * SIM_DAY_MS;
	struct sim_query web = window("10.0.1.10", NULL, day5 + 10 * 3600000LL,
				      day5 + 11 * 3600000LL);
	struct sim_query pair = window("10.0.1.10", "198.18.0.0/15", day5, day5 + 3600000LL);
	struct sim_query heavy = window("10.0.1.20", NULL, day5 + 14 * 3600000LL,
					day5 + 15 * 3600000LL);
	struct sim_ref *a, *b;
	size_t na, nb, seen[6] = {0};
	bool differ = false;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		seen[spoil_and_check(ds, seed % 2 ? &web : &pair, 10000, seed, &a, &na)]++;
		free(a);
	}
	for (int k = 1; k <= 5; k++)
		assert_true(seen[k] > 0);	/* 1 to 5 foreign flows, each seen */
	/* the same seed, the same answer; another seed, another one */
	spoil_and_check(ds, &web, 10000, 7, &a, &na);
	spoil_and_check(ds, &web, 10000, 7, &b, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof(*a));
	free(b);
	for (uint64_t seed = 8; !differ && seed < 12; seed++) {
		spoil_and_check(ds, &web, 10000, seed, &b, &nb);
		differ = nb != na || memcmp(a, b, na * sizeof(*a)) != 0;
		free(b);
	}
	assert_true(differ);
	free(a);
	/* full answers stay at the cap, down to a cap of one */
	spoil_and_check(ds, &heavy, 1000, 3, &a, &na);
	assert_int_equal(na, 1000);
	free(a);
	spoil_and_check(ds, &heavy, 1, 3, &a, &na);
	assert_int_equal(na, 1);
	free(a);
	free_ds(ds);
}

static void test_flood_and_scan(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(1);
	int flood = -1, scan = -1;

	for (int i = 0; i < ds->sc.nstreams; i++) {
		if (ds->sc.streams[i].kind == SIM_FLOOD)
			flood = i;
		if (ds->sc.streams[i].kind == SIM_SCAN)
			scan = i;
	}
	assert_true(flood >= 0 && scan >= 0);
	const struct sim_stream *fs = &ds->sc.streams[flood];
	int fday = ds->ndays - 1 + fs->day;
	const struct sim_chunk *c = sim_dataset_chunk(ds, flood, fday);
	assert_true(c->n > 10000);
	assert_int_equal(c->start[0], c->start[c->n - 1]);	/* one millisecond */
	uint64_t *src = malloc(c->n * sizeof(*src));
	for (uint64_t i = 0; i < c->n; i++) {
		struct sim_flow f;
		sim_flow_make(ds, flood, fday, i, c->start[i], &f);
		memcpy(&src[i], f.src.b + 8, 8);
	}
	qsort(src, c->n, sizeof(*src), cmp_u64);
	for (uint64_t i = 1; i < c->n; i++)
		assert_true(src[i] != src[i - 1]);	/* distinct sources */
	free(src);
	const struct sim_stream *ss = &ds->sc.streams[scan];
	c = sim_dataset_chunk(ds, scan, ds->ndays - 1 + ss->day);
	assert_true(c->n >= 10000);
	assert_true(c->start[c->n - 1] - c->start[0] < 1000);
	free_ds(ds);
}

static void test_json_escaping(void **state)
{
	(void)state;
	struct sim_buf b = {.max = 1 << 20};

	assert_int_equal(sim_json_string(&b, "a\"b\\c\nd\x01"), 0);
	assert_string_equal(b.p, "\"a\\\"b\\\\c\\nd\\u0001\"");
	sim_buf_free(&b);
	b.max = 8;
	assert_int_equal(sim_buf_add(&b, "0123456789", 10), -E2BIG);
	sim_buf_free(&b);
}

static void test_sna_route(void **state)
{
	(void)state;
	static const struct {
		const char *method, *url;
		int ep;
		bool ok;
		const char *tenant, *id;
	} cases[] = {
		{"POST", "/token/v2/authenticate", SIM_SNA_LOGIN, true, "", ""},
		{"GET", "/token/v2/authenticate", SIM_SNA_LOGIN, false, "", ""},
		{"DELETE", "/token", SIM_SNA_LOGOUT, true, "", ""},
		{"GET", "/sw-reporting/v1/tenants/", SIM_SNA_TENANTS, true, "", ""},
		{"POST", "/sw-reporting/v2/tenants/102/flows/queries", SIM_SNA_CREATE, true,
		 "102", ""},
		{"GET", "/sw-reporting/v2/tenants/102/flows/queries/abc", SIM_SNA_POLL, true,
		 "102", "abc"},
		{"GET", "/sw-reporting/v2/tenants/7/flows/queries/abc/results", SIM_SNA_RESULTS,
		 true, "7", "abc"},
		{"GET", "/smc-configuration/rest/v1/tenants/102/tags", SIM_SNA_TAGS, true,
		 "102", ""},
		{"GET", "/smc-configuration/rest/v1/tenants/102/tags/", SIM_SNA_TAGS, true,
		 "102", ""},
		{"GET", "/smc-configuration/rest/v1/tenants/102/tags/12", SIM_SNA_TAGS, true,
		 "102", "12"},
		{"GET", "/sw-reporting/v1/tenants/102/internalHosts/tags", SIM_SNA_HOST_TAGS,
		 true, "102", ""},
		{"GET", "/sw-reporting/v1/tenants/7/internalHosts/tags/", SIM_SNA_HOST_TAGS,
		 true, "7", ""},
		{"POST", "/sw-reporting/v1/tenants/7/internalHosts/tags", SIM_SNA_HOST_TAGS,
		 false, "7", ""},
		{"GET", "/sw-reporting/v1/tenants/7/internalHosts/tags/1", -1, false, "", ""},
		{"GET", "/sw-reporting/v1/tenants/7/internalHosts", -1, false, "", ""},
		{"GET", "/sw-reporting/v1/tenants//internalHosts/tags", -1, false, "", ""},
		{"GET", "/sw-reporting/v2/tenants//flows/queries", -1, false, "", ""},
		{"GET", "/sw-reporting/v2/tenants/102/flows/queries/", -1, false, "", ""},
		{"GET", "/sw-reporting/v2/tenants/102/flows/queries/a/b", -1, false, "", ""},
		{"GET", "/smc-configuration/rest/v1/tenants/102/tags/12/", -1, false, "", ""},
		{"GET", "/sw-reporting/v1/tenantsx", -1, false, "", ""},
		{"GET", "/api/v1/flows", -1, false, "", ""},
	};
	struct sim_sna_route r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim_sna_route(cases[i].method, cases[i].url, &r);
		assert_int_equal(r.ep, cases[i].ep);
		assert_int_equal(r.method_ok, cases[i].ok);
		if (r.ep < 0)
			continue;
		assert_string_equal(r.tenant, cases[i].tenant);
		assert_string_equal(r.id, cases[i].id);
		assert_int_equal(r.flows, r.ep == SIM_SNA_CREATE || r.ep == SIM_SNA_POLL ||
					  r.ep == SIM_SNA_RESULTS);
	}
}

/* Accept headers: the most specific matching range decides, q=0 refuses. */
static void test_sna_accepts(void **state)
{
	(void)state;
	static const struct {
		const char *accept;
		bool ok;
	} cases[] = {
		{NULL, true}, {"", true}, {" , ", true}, {"*/*", true}, {"*", true},
		{"text/*", true}, {"text/plain", true}, {"Text/PLAIN", true},
		{"application/json, text/plain, */*", true},
		{"text/plain; charset=utf-8", true}, {"text/plain;q=0.001", true},
		{"application/json;q=1, */*;q=0.1", true},
		{"text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", true},
		{"text/plain ; q = 0.5", true}, {"text/plain;quality=0", true},
		{"text/plain;q=0, text/plain;q=0.5", true},
		{"application/json", false}, {"text/html", false}, {"text/plain;q=0", false},
		{"text/plain;q=0, */*", false}, {"text/*;q=0, */*", false},
		{"*/*;q=0", false}, {"*/*;q=0.000", false}, {"text/plain;q=1.5", false},
		{"text/plain;q=", false}, {"text/plain;q=x", false}, {"bogus", false},
		{"text/plain/x", false}, {"*/plain", false}, {"/plain", false},
		{"text/", false}, {"text/plainx", false}, {"textx/plain", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sim_sna_accepts(cases[i].accept, "text/plain") != cases[i].ok)
			fail_msg("Accept '%s': want %s", cases[i].accept ? cases[i].accept : "(none)",
				 cases[i].ok ? "admitted" : "refused");
	}
	assert_true(sim_sna_accepts("application/json", "application/json"));
	assert_false(sim_sna_accepts("text/plain", "application/json"));
}

static void test_sna_statuses(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", ",", "A,", ",A", "A,,B", "a", "IN_PROGRESS", "COMPLETED", "FAILED",
		"CANCELED", "A,B,C,D,E", "A B", "A-B",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
	};
	struct sim_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(sim_sna_parse_statuses("PENDING,QUEUED", &cfg), 0);
	assert_int_equal(cfg.sna_nstatus_extra, 2);
	assert_string_equal(cfg.sna_status_extra[0], "PENDING");
	assert_string_equal(cfg.sna_status_extra[1], "QUEUED");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sim_sna_parse_statuses(bad[i], &cfg) != -EINVAL)
			fail_msg("--sna-status-extra '%s' was taken", bad[i]);
		assert_int_equal(cfg.sna_nstatus_extra, 2);
	}
	assert_int_equal(sim_sna_parse_statuses("A,B_2,C3,ABCDEFGHIJKLMNOPQRSTUVWXYZ01234", &cfg),
			 0);
	assert_int_equal(cfg.sna_nstatus_extra, 4);
	assert_string_equal(cfg.sna_status_extra[3], "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
}

/* SNA ids: every flow of two days but the heavy stream's, and the extreme
 * keys,
 * get distinct ids in [1, 2^47]; the same seed gives the same ids. */
static void test_sna_ids_unique(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds(5), *same = make_ds(5), *other = make_ds(6);
	uint64_t *ids = NULL, n = 0, cap = 0;

	for (int si = 0; si < ds->sc.nstreams; si++) {
		/* not the heavy stream (millions a day): the extreme keys
		 * below reach the positions it would */
		if (ds->sc.streams[si].kind == SIM_HEAVY)
			continue;
		for (int day = ds->ndays - 2; day < ds->ndays; day++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, si, day);
			for (uint64_t pos = 0; pos < c->n; pos++) {
				if (n == cap) {
					cap = cap ? cap * 2 : 1 << 20;
					ids = realloc(ids, cap * sizeof(*ids));
					assert_non_null(ids);
				}
				ids[n++] = sim_sna_flow_id(ds, si, day, pos);
			}
		}
	}
	for (int si = 254; si < 256; si++)
		for (uint64_t pos = 0xfffffe; pos <= 0xffffff; pos++)
			ids[n++] = sim_sna_flow_id(ds, si, 0, pos);
	assert_true(n > 100000);
	qsort(ids, n, sizeof(*ids), cmp_u64);
	assert_true(ids[0] >= 1 && ids[n - 1] <= (1ULL << 47));
	for (uint64_t i = 1; i < n; i++)
		assert_true(ids[i] != ids[i - 1]);
	free(ids);
	assert_true(sim_sna_flow_id(ds, 2, 3, 12345) == sim_sna_flow_id(same, 2, 3, 12345));
	assert_true(sim_sna_flow_id(ds, 2, 3, 12345) != sim_sna_flow_id(other, 2, 3, 12345));
	free_ds(ds);
	free_ds(same);
	free_ds(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse),
		cmocka_unit_test(test_prefix_match),
		cmocka_unit_test(test_addr_styles),
		cmocka_unit_test(test_query_match),
		cmocka_unit_test(test_scenario_errors),
		cmocka_unit_test(test_generator_deterministic),
		cmocka_unit_test(test_ids_unique),
		cmocka_unit_test(test_collect_equals_brute_force),
		cmocka_unit_test(test_overlap_reaches_back),
		cmocka_unit_test(test_live_edge_hidden),
		cmocka_unit_test(test_cap_and_subset),
		cmocka_unit_test(test_foreign_fault),
		cmocka_unit_test(test_flood_and_scan),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_sna_route),
		cmocka_unit_test(test_sna_accepts),
		cmocka_unit_test(test_sna_statuses),
		cmocka_unit_test(test_sna_ids_unique),
	};
	return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
