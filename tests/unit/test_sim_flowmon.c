/*
 * test_sim_flowmon.c - unit tests of flowsim's Flowmon dialect (sim/flowmon.c):
 * the nfdump filter parser and matcher, export times and 5-minute slots
 * against a brute force over the whole dataset, local times, nfdump's
 * number scaling, rows and routes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define NOW 1795953600000LL	/* 2026-11-29T12:00:00Z */
#define MIN 60000LL
#define TIMEOUT (300 * 1000LL)

static const char scenario[] =
	"steady name=a addr=10.0.1.10 flows=3000 peers=198.18.0.0/15 pool=400\n"
	"bursty name=b addr=2001:db8::5 flows=2000 peers=2001:db8:1::/48 pool=300\n"
	"flood name=f victim=10.0.1.40 day=-1 at=03:17:00.250 flows=1500\n";

static struct sim_dataset *make_ds(void)
{
	static struct sim_scenario sc;
	char err[SIM_ERRLEN];
	struct sim_dataset *ds = calloc(1, sizeof(*ds));

	assert_non_null(ds);
	assert_int_equal(sim_scenario_parse(scenario, &sc, err), 0);
	assert_int_equal(sim_dataset_init(ds, &sc, 3, NOW, 3), 0);
	return ds;
}

static void free_ds(struct sim_dataset *ds)
{
	sim_dataset_free(ds);
	free(ds);
}

static struct sim_fm_filter *F(const char *text)
{
	struct sim_fm_filter *f = NULL;
	char err[SIM_ERRLEN] = "";

	if (sim_fm_filter_parse(text, &f, err))
		fail_msg("filter '%s' refused: %s", text, err);
	return f;
}

static struct sim_flow flow(const char *src, const char *dst, uint8_t proto,
			    uint16_t sport, uint16_t dport)
{
	struct sim_flow f;
	struct sim_prefix p;

	memset(&f, 0, sizeof(f));
	assert_int_equal(sim_prefix_parse(src, &p), 0);
	f.src = p.addr;
	assert_int_equal(sim_prefix_parse(dst, &p), 0);
	f.dst = p.addr;
	f.proto = proto;
	f.sport = sport;
	f.dport = dport;
	return f;
}

static bool M(const char *text, const struct sim_flow *f)
{
	struct sim_fm_filter *flt = F(text);
	bool r = sim_fm_filter_match(flt, f);

	sim_fm_filter_free(flt);
	return r;
}

static void test_filter_syntax(void **state)
{
	(void)state;
	const char *good[] = {
		"", "any", "ANY", "proto tcp", "proto 6", "not proto udp",
		"proto tcp and not (net 10.0.0.0/8 or port in [ 80 443 ])",
		"src net 198.18.0.0/15", "dst host 10.0.1.10", "ip 2001:db8::5",
		"net 2001:db8::/32", "port 53", "dst port >= 1024 and dst port <= 2047",
		"src port gt 1023", "port in [1 2 3]", "ipv4", "inet6", "! proto icmp",
		"proto tcp && port 80 || proto udp", "((proto gre))",
	};
	const char *bad[] = {
		"foo", "proto", "proto tcpx", "proto 256", "host 10.0.0.0/8", "net 10.0.0.1",
		"net 10.0.0.0/33", "port 65536", "port != 80", "port in [ ]", "port in [80",
		"(proto tcp", "proto tcp)", "proto tcp and", "src proto tcp", "flags S",
		"proto tcp or or proto udp", "port in [ 80 x ]", "net 10.0.0.0 255.0.0.0",
		"proto tcp; drop", "host 10.0.0.1,10.0.0.2",
	};
	struct sim_fm_filter *f;
	char err[SIM_ERRLEN];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		sim_fm_filter_free(F(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		f = NULL;
		if (sim_fm_filter_parse(bad[i], &f, err) != -EINVAL)
			fail_msg("filter '%s' accepted", bad[i]);
		assert_null(f);
		assert_true(strlen(err) > 0);
	}
	/* bounded: 65 terms and 65 listed ports are refused, not overflowed */
	char big[2048] = "proto 1";
	for (int i = 0; i < 64; i++)
		strcat(big, " or proto 2");
	assert_int_equal(sim_fm_filter_parse(big, &f, err), -EINVAL);
	strcpy(big, "port in [");
	for (int i = 0; i < 65; i++)
		strcat(big, " 7");
	strcat(big, " ]");
	assert_int_equal(sim_fm_filter_parse(big, &f, err), -EINVAL);
}

static void test_filter_match(void **state)
{
	(void)state;
	struct sim_flow tcp = flow("10.0.1.10", "198.51.100.7", 6, 40000, 443);
	struct sim_flow udp6 = flow("2001:db8::5", "2001:db8:1::9", 17, 53, 5353);
	struct sim_flow icmp = flow("192.0.2.9", "10.0.1.10", 1, 0, 0);

	icmp.icmp_type = 8;
	assert_true(M("proto tcp", &tcp));
	assert_false(M("proto tcp", &udp6));
	assert_true(M("not proto tcp", &udp6));
	assert_true(M("host 10.0.1.10", &tcp));
	assert_true(M("host 10.0.1.10", &icmp));
	assert_true(M("src host 10.0.1.10", &tcp));
	assert_false(M("dst host 10.0.1.10", &tcp));
	assert_true(M("dst net 198.51.100.0/24", &tcp));
	assert_false(M("src net 198.51.100.0/24", &tcp));
	assert_true(M("net 2001:db8::/32", &udp6));
	assert_false(M("net 0.0.0.0/0", &udp6));	/* a prefix matches its family */
	assert_true(M("not net 10.0.0.0/8", &udp6));
	assert_true(M("ipv6", &udp6));
	assert_false(M("ipv4", &udp6));
	assert_true(M("port 443", &tcp));
	assert_true(M("port 40000", &tcp));
	assert_false(M("dst port 40000", &tcp));
	assert_true(M("dst port > 442 and dst port < 444", &tcp));
	assert_true(M("dst port >= 443 and dst port le 443", &tcp));
	assert_false(M("dst port ge 444", &tcp));
	/* either side: sport 40000 > 1023 and dport 443 < 2048 */
	assert_true(M("port > 1023 and port < 2048", &tcp));
	assert_true(M("port in [ 22 443 ]", &tcp));
	assert_false(M("src port in [ 22 443 ]", &tcp));
	/* ICMP: destination port type * 256 + code */
	assert_true(M("dst port 2048", &icmp));
	assert_true(M("src port 0", &icmp));
	assert_true(M("proto tcp or proto udp", &udp6));
	assert_false(M("proto tcp and proto udp", &udp6));
	/* not binds tighter than and, and than or */
	assert_true(M("not proto tcp and proto udp", &udp6));
	assert_true(M("proto icmp or proto tcp and port 1", &icmp));
	assert_false(M("(proto icmp or proto tcp) and port 1", &icmp));
	assert_true(M("", &tcp));
}

/* Every flow of the dataset, exported in [lo, hi) of the channel mask and
 * the filter, counted the slow way. */
static size_t brute(struct sim_dataset *ds, const struct sim_fm_search *q)
{
	size_t n = 0;
	struct sim_flow f;

	for (int s = 0; s < ds->sc.nstreams; s++)
		for (int d = 0; d < ds->ndays; d++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, s, d);
			for (uint64_t i = 0; i < c->n; i++) {
				sim_flow_make(ds, s, d, i, c->start[i], &f);
				int64_t ex = sim_fm_export_ms(&f, q->active_timeout_ms);
				int64_t slot_end = ex - ex % SIM_FM_SLOT_MS + SIM_FM_SLOT_MS;
				if (ex >= q->lo && ex < q->hi && slot_end <= q->visible_before &&
				    (q->channels & (1u << (f.exporter - 1))) &&
				    (!q->filter || sim_fm_filter_match(q->filter, &f)))
					n++;
			}
		}
	return n;
}

static struct sim_fm_search search(int64_t lo, int64_t hi)
{
	struct sim_fm_search q = {
		.lo = lo, .hi = hi, .visible_before = NOW, .active_timeout_ms = TIMEOUT,
		.channels = 7,
	};
	return q;
}

static size_t collect_n(struct sim_dataset *ds, const struct sim_fm_search *q)
{
	struct sim_ref *refs = NULL;
	size_t n = 99;

	assert_int_equal(sim_fm_collect(ds, q, &refs, &n), 0);
	free(refs);
	return n;
}

static void test_export_times(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds();
	const struct sim_chunk *c = sim_dataset_chunk(ds, 0, 1);
	struct sim_flow f;
	size_t later = 0;

	assert_true(c->n > 100);
	for (uint64_t i = 0; i < c->n; i++) {
		sim_flow_make(ds, 0, 1, i, c->start[i], &f);
		int64_t ex = sim_fm_export_ms(&f, TIMEOUT);
		assert_true(ex >= f.end && ex <= f.end + TIMEOUT);
		assert_true(ex == sim_fm_export_ms(&f, TIMEOUT));	/* a function of the flow */
		assert_int_equal(sim_fm_export_ms(&f, 0), f.end);
		if (ex - ex % SIM_FM_SLOT_MS > f.start - f.start % SIM_FM_SLOT_MS)
			later++;
	}
	/* many flows land in a later slot than the one they started in */
	assert_true(later > c->n / 4);
	free_ds(ds);
}

static void test_slots_brute_force(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds();
	int64_t day1 = ds->first_day_ms + SIM_DAY_MS;
	int64_t flood = ds->first_day_ms + SIM_DAY_MS + 3 * 3600000LL + 15 * MIN;
	struct sim_fm_filter *tcp = F("proto tcp");
	struct sim_fm_search qs[] = {
		search(day1 + 14 * 3600000LL, day1 + 14 * 3600000LL + SIM_FM_SLOT_MS),
		search(day1 - SIM_FM_SLOT_MS, day1 + 2 * SIM_FM_SLOT_MS),	/* midnight */
		search(flood, flood + 4 * SIM_FM_SLOT_MS),
		search(day1, day1 + SIM_DAY_MS),
		search(NOW - 30 * MIN, NOW + 30 * MIN),		/* the live edge */
	};

	qs[3].channels = 2;
	qs[3].filter = tcp;
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t n = collect_n(ds, &qs[i]);
		assert_int_equal(n, brute(ds, &qs[i]));
		assert_true(n > 0);
	}
	/* adjacent windows add up to their union */
	struct sim_fm_search a = search(day1 + 6 * 3600000LL, day1 + 7 * 3600000LL);
	struct sim_fm_search b = search(day1 + 7 * 3600000LL, day1 + 9 * 3600000LL);
	struct sim_fm_search ab = search(day1 + 6 * 3600000LL, day1 + 9 * 3600000LL);
	assert_int_equal(collect_n(ds, &a) + collect_n(ds, &b), collect_n(ds, &ab));
	/* the flood (1500 flows inside one ms) spreads over the slots the
	 * active timeout reaches, and all of it is there */
	struct sim_fm_search fl = search(flood, flood + 3 * SIM_FM_SLOT_MS);
	struct sim_fm_filter *victim = F("host 10.0.1.40");
	fl.filter = victim;
	assert_int_equal(collect_n(ds, &fl), 1500);
	/* the slot that holds the clock is not closed: none of its flows
	 * show, though some were exported before the clock */
	struct sim_fm_search open = search(NOW - 2 * SIM_FM_SLOT_MS, NOW - SIM_FM_SLOT_MS);
	open.visible_before = NOW - SIM_FM_SLOT_MS - 1;
	assert_int_equal(collect_n(ds, &open), 0);
	open.visible_before = NOW - SIM_FM_SLOT_MS;
	assert_true(collect_n(ds, &open) > 0);
	sim_fm_filter_free(tcp);
	sim_fm_filter_free(victim);
	free_ds(ds);
}

static void test_filter_disjoint(void **state)
{
	(void)state;
	struct sim_dataset *ds = make_ds();
	int64_t lo = ds->first_day_ms + SIM_DAY_MS + 13 * 3600000LL;
	struct sim_fm_search all = search(lo, lo + 3600000LL);
	const char *parts[] = {
		"proto tcp", "proto udp", "src net 198.18.0.0/16", "net 2001:db8:1::/49",
		"dst port >= 1024 and dst port <= 40000", "port in [ 53 443 ]", "ipv4",
	};
	size_t total = collect_n(ds, &all);

	assert_true(total > 100);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char neg[256];
		struct sim_fm_search p = all, n = all;
		snprintf(neg, sizeof(neg), "not (%s)", parts[i]);
		p.filter = F(parts[i]);
		n.filter = F(neg);
		size_t np = collect_n(ds, &p), nn = collect_n(ds, &n);
		assert_int_equal(np + nn, total);
		assert_true(np > 0 && nn > 0);
		sim_fm_filter_free((struct sim_fm_filter *)p.filter);
		sim_fm_filter_free((struct sim_fm_filter *)n.filter);
	}
	free_ds(ds);
}

static void test_local_times(void **state)
{
	(void)state;
	char err[SIM_ERRLEN], buf[64];
	int64_t ms;

	assert_int_equal(sim_fm_zone_set("Europe/Prague", err), 0);
	assert_int_equal(sim_fm_time_parse("2026-11-28 10:00", &ms), 0);
	assert_int_equal(ms, 1795856400000LL);	/* 09:00 UTC: CET is UTC+1 */
	sim_fm_time_format(ms + 6066, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-28 10:00:06.066");
	assert_int_equal(sim_fm_time_parse("2026-07-01 12:05", &ms), 0);
	assert_int_equal(ms % 86400000, 10 * 3600000LL + 5 * MIN);	/* CEST, UTC+2 */
	assert_int_equal(sim_fm_time_parse("2026-03-29 02:30", &ms), -ERANGE);	/* gap */
	const char *bad[] = {"2026-11-28 10:00:00", "2026-11-28T10:00", "2026-11-28 1:00",
			     "2026-11-28 10:0x", "", "2026-13-01 00:00", "2026-11-28  10:0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sim_fm_time_parse(bad[i], &ms) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(sim_fm_zone_set("UTC", err), 0);
	assert_int_equal(sim_fm_time_parse("2026-11-28 10:00", &ms), 0);
	assert_int_equal(ms, 1795860000000LL);
	assert_int_equal(sim_fm_zone_set("Nowhere/Atlantis", err), -ENOENT);
	assert_int_equal(sim_fm_zone_set("../etc/passwd", err), -EINVAL);
}

static void test_numbers(void **state)
{
	(void)state;
	static const struct {
		uint64_t v, scale_min;
		const char *want;
	} cases[] = {
		{995028, 1000000, "995028"},	/* the guide's pkt (G10 p.67) */
		{1300000000, 1000000, "1.3 G"},
		{264000000, 1000000, "264.0 M"},
		{2500000000000ULL, 1000000, "2.5 T"},
		{1300000000, 0, "1300000000"},
		{5000, 1000, "5.0 K"},
		{999, 1000, "999"},
	};
	char b[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim_fm_number(cases[i].v, cases[i].scale_min, b, sizeof(b));
		assert_string_equal(b, cases[i].want);
	}
}

static void test_rows(void **state)
{
	(void)state;
	char err[SIM_ERRLEN];
	struct sim_flow icmp = flow("192.0.2.9", "10.0.1.10", 1, 0, 0);
	struct sim_flow tcp = flow("10.0.1.10", "198.51.100.7", 6, 40000, 443);
	struct sim_buf b = {.max = 4096};
	uint8_t cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11};	/* ts te td pr sa da sp dp flg pkt byt */

	assert_int_equal(sim_fm_zone_set("UTC", err), 0);
	icmp.icmp_type = 8;
	icmp.start = 1795860006066LL;
	icmp.end = icmp.start + 21823;
	icmp.pkts = 84;
	icmp.bytes = 3500000;
	assert_int_equal(sim_fm_json_row(&b, &icmp, cols, 11, false, 1000000), 0);
	assert_int_equal(sim_buf_add(&b, "", 1), 0);
	assert_string_equal(b.p,
		"{\"ts\":\"2026-11-28 10:00:06.066\",\"te\":\"2026-11-28 10:00:27.889\","
		"\"td\":\"21.823\",\"pr\":\"ICMP\",\"srcip\":\"192.0.2.9\",\"dstip\":\"10.0.1.10\","
		"\"srcport:p\":\"0\",\"dstport:p\":\"8.0\",\"flg\":\"......\",\"pkt\":\"84\","
		"\"byt\":\"3.5 M\"}");
	b.len = 0;
	tcp.tcp_flags = 0x1b;	/* ACK PSH SYN FIN */
	assert_int_equal(sim_fm_json_row(&b, &tcp, cols + 4, 5, true, 0), 0);
	assert_int_equal(sim_buf_add(&b, "", 1), 0);
	assert_string_equal(b.p, "{\"sa\":\"10.0.1.10\",\"da\":\"198.51.100.7\",\"sp\":\"40000\","
			    "\"dp\":\"443\",\"flg\":\".AP.SF\"}");
	sim_buf_free(&b);
}

static void test_route(void **state)
{
	(void)state;
	struct sim_fm_route r;

	sim_fm_route("POST", "/resources/oauth/token", &r);
	assert_int_equal(r.ep, SIM_FM_TOKEN);
	assert_true(r.method_ok);
	sim_fm_route("POST", "/resources/oAuth/token", &r);
	assert_int_equal(r.ep, SIM_FM_TOKEN);
	sim_fm_route("GET", "/resources/oauth/token", &r);
	assert_false(r.method_ok);
	sim_fm_route("GET", "/rest/fmc/analysis/flows", &r);
	assert_true(r.method_ok && r.flows);
	sim_fm_route("POST", "/rest/fmc/analysis/flows", &r);
	assert_true(r.method_ok && r.flows);
	sim_fm_route("DELETE", "/rest/fmc/analysis/flows", &r);
	assert_false(r.method_ok);
	sim_fm_route("GET", "/rest/fmc/analysis/results/797", &r);
	assert_int_equal(r.ep, SIM_FM_RESULTS);
	assert_string_equal(r.id, "797");
	sim_fm_route("GET", "/rest/fmc/analysis/results/79x", &r);
	assert_int_equal(r.ep, -1);
	sim_fm_route("GET", "/rest/fmc/analysis/results/", &r);
	assert_int_equal(r.ep, -1);
	sim_fm_route("GET", "/rest/fmc/analysis/results/12345678901234567890123", &r);
	assert_int_equal(r.ep, -1);
	sim_fm_route("POST", "/rest/fmc/getprofiles", &r);
	assert_int_equal(r.ep, SIM_FM_PROFILES);
	assert_true(r.method_ok);
	sim_fm_route("GET", "/rest/fmc/profiles/channels", &r);
	assert_int_equal(r.ep, SIM_FM_CHANNELS);
	assert_false(r.flows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_syntax),
		cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_export_times),
		cmocka_unit_test(test_slots_brute_force),
		cmocka_unit_test(test_filter_disjoint),
		cmocka_unit_test(test_local_times),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
