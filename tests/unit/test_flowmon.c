/*
 * test_flowmon.c - the Flowmon driver's parts (fetch/flowmon.c): rows as
 * an appliance writes them (every value a string, the column ids or the
 * internal key names, scaled counts, times of the appliance's zone), the
 * slot split's filters (disjoint parts that cover their parent, checked
 * with flowsim's own nfdump filter matcher over random flows), and the
 * ids of rows that carry none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_i.h"
#include "nfdump.h"
#include "sim.h"

static struct nfd_tz *zone(const char *name)
{
	struct nfd_tz *z = NULL;
	char err[FETCH_ERRLEN] = "";

	if (nfd_tz_open(name, &z, err))
		fail_msg("zone %s: %s", name, err);
	return z;
}

/* One row's text decoded in zone tz: the decoder's return code. */
static int row(const char *text, const char *tzname, struct flow_rec *f, bool *inexact)
{
	struct nfd_tz *z = zone(tzname);
	cJSON *o = cJSON_Parse(text);
	char why[160] = "";

	assert_non_null(o);
	int rc = flowmon_decode_row(o, z, false, f, inexact, why, sizeof(why));
	cJSON_Delete(o);
	nfd_tz_free(z);
	return rc;
}

static void addr_is(const uint8_t a[16], const char *text)
{
	struct cache_prefix p;

	assert_int_equal(cache_prefix_parse(text, &p), 0);
	assert_memory_equal(a, p.addr, 16);
}

/* The appliance's own keys (srcip, srcport:p, ...; the guide's fixture)
 * and the column ids asked read alike, every value a string. */
static void test_row_both_key_sets(void **state)
{
	static const char *const rows[2] = {
		"{\"ts\":\"2026-11-27 10:00:01.076\",\"te\":\"2026-11-27 10:00:09.622\","
		"\"pr\":\"TCP\",\"srcip\":\"10.0.1.11\",\"srcport:p\":\"35407\",\"dstip\":"
		"\"198.19.1.41\",\"dstport:p\":\"443\",\"flg\":\".AP.SF\",\"pkt\":\"14\","
		"\"byt\":\"8288\",\"fl\":\"1\",\"in\":\"2\",\"out\":\"999\",\"sas\":\"64500\","
		"\"das\":\"16509\",\"ra\":\"192.0.2.1\"}",
		"{\"ts\":\"2026-11-27 10:00:01.076\",\"te\":\"2026-11-27 10:00:09.622\","
		"\"pr\":\"TCP\",\"sa\":\"10.0.1.11\",\"sp\":\"35407\",\"da\":\"198.19.1.41\","
		"\"dp\":\"443\",\"flg\":\".AP.SF\",\"pkt\":\"14\",\"byt\":\"8288\",\"fl\":\"1\","
		"\"in\":\"2\",\"out\":\"999\",\"sas\":\"64500\",\"das\":\"16509\",\"ra\":\"192.0.2.1\"}",
	};
	struct flow_rec f[2];

	(void)state;
	for (int i = 0; i < 2; i++) {
		bool inexact = true;
		assert_int_equal(row(rows[i], "UTC", &f[i], &inexact), 0);
		assert_false(inexact);
		assert_int_equal(f[i].start_ms, 1795773601076LL);
		assert_int_equal(f[i].end_ms, 1795773609622LL);
		addr_is(f[i].src, "10.0.1.11");
		addr_is(f[i].dst, "198.19.1.41");
		assert_int_equal(f[i].proto, 6);
		assert_int_equal(f[i].sport, 35407);
		assert_int_equal(f[i].dport, 443);
		assert_int_equal(f[i].tcp_flags, 0x1b);
		assert_int_equal(f[i].pkts, 14);
		assert_int_equal(f[i].bytes, 8288);
		assert_int_equal(f[i].in_if, 2);
		assert_int_equal(f[i].out_if, 999);
		assert_int_equal(f[i].src_as, 64500);
		assert_int_equal(f[i].dst_as, 16509);
		assert_int_equal(f[i].icmp_type, -1);
		assert_non_null(strstr(f[i].extra, "\"exporter\":\"192.0.2.1\""));
	}
	assert_memory_equal(&f[0], &f[1], sizeof(f[0]));
}

/* A scaled count is never stored as exact: the column -1, the text in
 * extra, the row inexact; N/A is no value. */
static void test_row_scaled(void **state)
{
	struct flow_rec f;
	bool inexact = false;

	(void)state;
	assert_int_equal(row("{\"ts\":\"2026-11-27 10:00:01.076\",\"td\":\"554.458\",\"pr\":\"UDP\","
			     "\"srcip\":\"10.0.1.11\",\"srcport:p\":\"53\",\"dstip\":\"2001:db8::5\","
			     "\"dstport:p\":\"5353\",\"pkt\":\"995028\",\"byt\":\"1.3 G\",\"in\":"
			     "\"N/A\"}", "UTC", &f, &inexact), 0);
	assert_true(inexact);
	assert_int_equal(f.pkts, 995028);
	assert_int_equal(f.bytes, -1);
	assert_non_null(strstr(f.extra, "\"byt\":\"1.3 G\""));
	assert_int_equal(f.end_ms, f.start_ms + 554458);
	assert_int_equal(f.in_if, -1);
	assert_int_equal(f.tcp_flags, -1);
	addr_is(f.dst, "2001:db8::5");
	inexact = false;
	assert_int_equal(row("{\"ts\":\"2026-11-27 10:00:01.076\",\"pr\":\"UDP\",\"sa\":\"10.0.1.1\","
			     "\"da\":\"10.0.1.2\",\"pkt\":\"1.3 M\",\"byt\":\"5\"}", "UTC", &f,
			     &inexact), 0);
	assert_true(inexact);
	assert_int_equal(f.pkts, -1);
	assert_int_equal(f.bytes, 5);
}

/* Times are the appliance's wall clock: read in collector_tz. */
static void test_row_zone(void **state)
{
	struct flow_rec f;
	bool inexact;

	(void)state;
	/* 2026-11-27 is EST (UTC-5) in New York, CET (UTC+1) in Prague */
	assert_int_equal(row("{\"ts\":\"2026-11-27 00:00:01.076\",\"pr\":\"ICMP\",\"sa\":\"10.0.1.1\","
			     "\"da\":\"10.0.1.2\",\"sp\":\"0\",\"dp\":\"3.1\"}", "America/New_York",
			     &f, &inexact), 0);
	assert_int_equal(f.start_ms, 1795737601076LL + 5 * 3600000LL);
	assert_int_equal(f.icmp_type, 3);
	assert_int_equal(f.icmp_code, 1);
	assert_int_equal(f.sport, -1);
	assert_int_equal(f.dport, -1);
	assert_int_equal(row("{\"ts\":\"2026-11-27 00:00:01.076\",\"pr\":\"47\",\"sa\":\"10.0.1.1\","
			     "\"da\":\"10.0.1.2\"}", "Europe/Prague", &f, &inexact), 0);
	assert_int_equal(f.start_ms, 1795737601076LL - 3600000LL);
	assert_int_equal(f.proto, 47);
	assert_int_equal(row("{\"ts\":\"2026-11-27 00:00:01.076\",\"pr\":\"TCP\",\"sa\":\"10.0.1.1\","
			     "\"da\":\"10.0.1.2\"}", "+05:30", &f, &inexact), 0);
	assert_int_equal(f.start_ms, 1795737601076LL - 19800000LL);
	/* refused: no time, a bad time, no address */
	assert_int_equal(row("{\"pr\":\"TCP\",\"sa\":\"10.0.1.1\",\"da\":\"10.0.1.2\"}", "UTC", &f,
			     &inexact), -EINVAL);
	assert_int_equal(row("{\"ts\":\"2026-13-27 00:00:01\",\"sa\":\"10.0.1.1\",\"da\":\"10.0.1.2\"}",
			     "UTC", &f, &inexact), -EINVAL);
	assert_int_equal(row("{\"ts\":\"2026-11-27 00:00:01\",\"sa\":\"10.0.1.1\",\"da\":\"N/A\"}",
			     "UTC", &f, &inexact), -EINVAL);
}

/* A time is digits where the guide's format has them: no sign, no space,
 * nothing after; and not before 1970 in UTC. */
static void test_time_strict(void **state)
{
	static const char *const bad[] = {
		"2026-11-27 -1:-5", "2026-11-27  1:05", "+026-11-27 01:05", "2026-11-27 01:05:-1",
		"2026-11-27 01:05 ", "2026-11-27 01:5", "2026-11-27T01:05", "2026-11-27 01:05:07.",
		"2026-11-27 24:00", "1969-12-31 23:59", "2026-11-27 01:05:7",
	};
	struct nfd_tz *utc = zone("UTC"), *ist = zone("+05:30");
	int64_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (flowmon_parse_time(utc, bad[i], &t) != -EINVAL)
			fail_msg("'%s' read as %lld", bad[i], (long long)t);
	/* 00:30 in +05:30 is the evening before 1970 in UTC */
	assert_int_equal(flowmon_parse_time(ist, "1970-01-01 00:30", &t), -EINVAL);
	assert_int_equal(flowmon_parse_time(utc, "1970-01-01 00:30", &t), 0);
	assert_int_equal(t, 1800000);
	assert_int_equal(flowmon_parse_time(utc, "2026-11-27 01:05:07.5", &t), 0);
	assert_int_equal(t, 1795741507500LL);
	nfd_tz_free(utc);
	nfd_tz_free(ist);
}

/* ---- the slot split ----------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define LEAVES_MAX 400

/* Random keys of a full answer, as flowmon_split is given them: none,
 * one port, a few, any; some outside the part (which it must ignore). */
static size_t random_keys(uint64_t *r, struct flowmon_key *k, size_t max)
{
	size_t n = (size_t)(rng_next(r) % (max + 1));
	unsigned shape = (unsigned)(rng_next(r) % 4);
	uint16_t one = (uint16_t)rng_next(r);

	if (shape == 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = rng_next(r);
		k[i].cls = (uint8_t)(1 << (x % 3));
		k[i].dp = shape == 1 ? one : shape == 2 ? (uint16_t)(one + x % 5) : (uint16_t)(x >> 8);
		k[i].sp = shape == 1 ? (uint16_t)(x >> 24) % 3 : (uint16_t)(x >> 32);
	}
	return n;
}

/*
 * Property: a part split any number of times, at random leaves, following
 * random keys, gives leaves whose filters (flowmon_filter's text, parsed
 * by flowsim's nfdump matcher) select every flow of the window exactly
 * once: disjoint, and together the parent.  Flows of every protocol
 * class, ICMP's type.code port, ports at the ranges' ends.
 */
static void test_split_disjoint_cover(void **state)
{
	static const uint8_t protos[] = {6, 17, 1, 47, 58, 6, 17};
	unsigned seeds = 60;

	(void)state;
	for (unsigned seed = 1; seed <= seeds; seed++) {
		struct flowmon_part leaves[LEAVES_MAX];
		struct sim_fm_filter *flt[LEAVES_MAX];
		size_t n = 1;
		uint64_t r = 0x9e3779b97f4a7c15ULL * seed;
		char err[SIM_ERRLEN], text[1024];

		leaves[0] = (struct flowmon_part){FLOWMON_ANY, 0, 65535, 0, 65535};
		unsigned steps = 1 + (unsigned)(rng_next(&r) % 120);
		for (unsigned s = 0; s < steps; s++) {
			size_t at = (size_t)(rng_next(&r) % n);
			struct flowmon_part kids[3];
			struct flowmon_key keys[64];
			size_t nk = random_keys(&r, keys, 64);
			int k = flowmon_split(&leaves[at], keys, nk, kids);
			if (k == 0 || n + (size_t)k > LEAVES_MAX)
				continue;
			leaves[at] = kids[0];
			for (int i = 1; i < k; i++)
				leaves[n++] = kids[i];
		}
		for (size_t i = 0; i < n; i++) {
			flowmon_filter("host 10.0.1.10", &leaves[i], text, sizeof(text));
			if (sim_fm_filter_parse(text, &flt[i], err))
				fail_msg("seed %u: flowsim refuses '%s': %s", seed, text, err);
		}
		for (int t = 0; t < 400; t++) {
			struct sim_flow f;
			struct sim_prefix a, b;
			memset(&f, 0, sizeof(f));
			sim_prefix_parse("10.0.1.10", &a);
			sim_prefix_parse(t % 2 ? "198.18.0.7" : "203.0.113.66", &b);
			f.src = t % 3 ? a.addr : b.addr;
			f.dst = t % 3 ? b.addr : a.addr;
			f.proto = protos[rng_next(&r) % sizeof(protos)];
			uint64_t x = rng_next(&r);
			f.sport = (uint16_t)(t % 7 == 0 ? (t % 2 ? 65535 : 0) : x);
			f.dport = (uint16_t)(t % 5 == 0 ? (t % 2 ? 0 : 65535) : x >> 16);
			if (f.proto == 1 || f.proto == 58) {
				f.icmp_type = (uint8_t)(x >> 32);
				f.icmp_code = (uint8_t)(x >> 40);
				f.sport = 0;
				f.dport = (uint16_t)(f.icmp_type * 256 + f.icmp_code);
			}
			unsigned hits = 0;
			for (size_t i = 0; i < n; i++)
				hits += sim_fm_filter_match(flt[i], &f);
			if (hits != 1)
				fail_msg("seed %u: a flow (proto %u, %u -> %u) matches %u of %zu parts",
					 seed, f.proto, f.sport, f.dport, hits, n);
		}
		for (size_t i = 0; i < n; i++)
			sim_fm_filter_free(flt[i]);
	}
}

/* The class most keys have first, then the others; then the destination
 * port at the keys' median (halves without keys), or around the keys'
 * one port; then the source port's; a part of one class and one port a
 * side cannot be split. */
static void test_split_guided(void **state)
{
	struct flowmon_part p = {FLOWMON_ANY, 0, 65535, 0, 65535}, k[3];
	struct flowmon_key keys[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		keys[i] = (struct flowmon_key){i < 5 ? FLOWMON_UDP : FLOWMON_TCP,
					       (uint16_t)(1000 + 10 * i), 80};
	assert_int_equal(flowmon_split(&p, keys, 8, k), 2);
	assert_int_equal(k[0].proto, FLOWMON_UDP);
	assert_int_equal(k[1].proto, FLOWMON_TCP | FLOWMON_OTHER);
	/* no keys: tcp first */
	assert_int_equal(flowmon_split(&p, NULL, 0, k), 2);
	assert_int_equal(k[0].proto, FLOWMON_TCP);
	p = k[1];
	assert_int_equal(flowmon_split(&p, NULL, 0, k), 2);
	assert_int_equal(k[0].proto, FLOWMON_UDP);
	assert_int_equal(k[1].proto, FLOWMON_OTHER);
	/* the median of the udp keys (1000..1040): 1020 opens the upper part */
	p = (struct flowmon_part){FLOWMON_UDP, 0, 65535, 0, 65535};
	assert_int_equal(flowmon_split(&p, keys, 8, k), 2);
	assert_int_equal(k[0].dhi, 1019);
	assert_int_equal(k[1].dlo, 1020);
	assert_int_equal(k[1].dhi, 65535);
	assert_int_equal(flowmon_split(&p, NULL, 0, k), 2);
	assert_int_equal(k[0].dhi, 32767);
	assert_int_equal(k[1].dlo, 32768);
	/* one port: that port alone between the two sides */
	for (int i = 0; i < 8; i++)
		keys[i] = (struct flowmon_key){FLOWMON_TCP, 80, (uint16_t)(40000 + i)};
	p = (struct flowmon_part){FLOWMON_TCP, 0, 65535, 0, 65535};
	assert_int_equal(flowmon_split(&p, keys, 8, k), 3);
	assert_int_equal(k[0].dhi, 79);
	assert_int_equal(k[1].dlo, 80);
	assert_int_equal(k[1].dhi, 80);
	assert_int_equal(k[2].dlo, 81);
	p = k[1];
	assert_int_equal(flowmon_split(&p, keys, 8, k), 2);
	assert_int_equal(k[0].dlo, 80);
	assert_int_equal(k[0].shi, 40003);
	assert_int_equal(k[1].slo, 40004);
	/* half the keys or more on the median's port: that port alone */
	for (int i = 0; i < 8; i++)
		keys[i] = (struct flowmon_key){FLOWMON_TCP, (uint16_t)(i < 4 ? 443 : 1000 + i), 5};
	p = (struct flowmon_part){FLOWMON_TCP, 0, 65535, 0, 65535};
	assert_int_equal(flowmon_split(&p, keys, 8, k), 3);
	assert_int_equal(k[1].dlo, 443);
	assert_int_equal(k[1].dhi, 443);
	/* fewer: the median cut (1004..1007 above it) */
	keys[3].dp = 2000;
	assert_int_equal(flowmon_split(&p, keys, 8, k), 2);
	assert_int_equal(k[0].dhi, 1004);
	assert_int_equal(k[1].dlo, 1005);
	p = (struct flowmon_part){FLOWMON_TCP, 80, 80, 4000, 4000};
	assert_int_equal(flowmon_split(&p, keys, 8, k), 0);
}

/* ---- ids ---------------------------------------------------------------------- */

/* The same row, the same id, in any answer; identical rows numbered in
 * their order; any field changed, another id. */
static void test_ids(void **state)
{
	struct flow_rec r[4];
	bool inexact;
	const char *text = "{\"ts\":\"2026-11-27 10:00:01.076\",\"pr\":\"TCP\",\"sa\":\"10.0.1.1\","
			   "\"da\":\"10.0.1.2\",\"sp\":\"1\",\"dp\":\"2\",\"pkt\":\"3\",\"byt\":\"4\"}";

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(row(text, "UTC", &r[i], &inexact), 0);
	r[2].bytes = 5;
	assert_int_equal(flowmon_ids(r, 4), 0);
	assert_int_equal(strlen(r[0].id), 32);
	assert_string_equal(r[1].id + 32, ".2");
	assert_string_equal(r[3].id + 32, ".3");
	assert_memory_equal(r[0].id, r[1].id, 32);
	assert_int_equal(strlen(r[2].id), 32);
	assert_memory_not_equal(r[0].id, r[2].id, 32);
	struct flow_rec again;
	assert_int_equal(row(text, "UTC", &again, &inexact), 0);
	assert_int_equal(flowmon_ids(&again, 1), 0);
	assert_string_equal(again.id, r[0].id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_row_both_key_sets),
		cmocka_unit_test(test_row_scaled),
		cmocka_unit_test(test_row_zone),
		cmocka_unit_test(test_time_strict),
		cmocka_unit_test(test_split_disjoint_cover),
		cmocka_unit_test(test_split_guided),
		cmocka_unit_test(test_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
