/*
 * test_nfdump.c - the nfdump dialect's core (fetch/nfdump.c): decoding real
 * output of nfdump 1.7.1 (nfdump_vectors.h, made by nfdump_vectors.py),
 * the command, the archive's files, and the subprocess runner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "nfdump.h"
#include "nfdump_vectors.h"
#include "testutil.h"

#define T0 1795737600000LL	/* 2026-11-27T00:00:00Z, the pcap's start */
#define DAY 86400000LL

static char err[FETCH_ERRLEN];

static void decode(const char *text, const struct cache_query *q, int64_t s, int64_t e,
		   struct nfd_out *o)
{
	memset(o, 0, sizeof(*o));
	assert_int_equal(nfd_decode(text, strlen(text), q, s, e, o, err), 0);
}

static const struct flow_rec *find(const struct nfd_out *o, int64_t start, int proto)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->recs[i].start_ms == start && o->recs[i].proto == proto)
			return &o->recs[i];
	fail_msg("no record starting at %lld", (long long)start);
	return NULL;
}

/* nfpcapd's archive, subject 10.0.1.10: its 7 IPv4 flows, ms times. */
static void test_decode_pcapd_v4(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_out o;
	char a[64];

	decode(vec_pcapd, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.records, 10);
	assert_int_equal(o.n, 7);
	assert_int_equal(o.foreign, 3);	/* the IPv6 ones */
	assert_int_equal(o.rejected, 0);
	assert_int_equal(o.outside, 0);
	const struct flow_rec *f = find(&o, T0 + 125, 6);
	assert_int_equal(f->end_ms, T0 + 1500);
	cache_addr_format(f->src, a, sizeof(a));
	assert_string_equal(a, "10.0.1.10");
	cache_addr_format(f->dst, a, sizeof(a));
	assert_string_equal(a, "192.0.2.20");
	assert_int_equal(f->sport, 40000);
	assert_int_equal(f->dport, 443);
	assert_int_equal(f->tcp_flags, 0x13);	/* ...A..SF */
	assert_int_equal(f->pkts, 3);
	assert_int_equal(f->bytes, 125);
	assert_int_equal(f->icmp_type, -1);
	assert_int_equal(f->exporter, -1);	/* nfpcapd: no exporter */
	assert_int_equal(f->in_if, -1);
	assert_int_equal(f->src_as, -1);
	assert_int_equal(f->sampling, 1);
	assert_int_equal(strlen(f->id), 32);
	assert_true(strncmp(f->community_id, "1:", 2) == 0);
	assert_non_null(strstr(f->extra, "\"received\":\"2026-12-06T"));
	f = find(&o, T0 + 3000, 1);	/* echo request */
	assert_int_equal(f->icmp_type, 8);
	assert_int_equal(f->icmp_code, 0);
	assert_int_equal(f->sport, -1);
	assert_int_equal(f->dport, -1);
	assert_int_equal(f->tcp_flags, -1);
	f = find(&o, T0 + 5500, 1);	/* port unreachable */
	assert_int_equal(f->icmp_type, 3);
	assert_int_equal(f->icmp_code, 3);
	f = find(&o, T0 + 2000, 17);
	assert_int_equal(f->sport, 5353);
	assert_int_equal(f->tcp_flags, -1);
	nfd_out_free(&o);
}

static void test_decode_v6(void **state)
{
	(void)state;
	struct cache_query q = Q("2001:db8::/32", NULL, T0, T0 + DAY);
	struct nfd_out o;
	char a[64];

	decode(vec_pcapd, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.foreign, 7);
	const struct flow_rec *f = find(&o, T0 + 5000, 58);
	assert_int_equal(f->icmp_type, 128);
	cache_addr_format(f->src, a, sizeof(a));
	assert_string_equal(a, "2001:db8::10");
	f = find(&o, T0 + 4100, 6);
	assert_int_equal(f->sport, 22);
	assert_int_equal(f->tcp_flags, 0x12);
	nfd_out_free(&o);
}

/* Selected by first-seen in [start, end), to the millisecond. */
static void test_decode_window(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_out o;

	decode(vec_pcapd, &q, T0 + 250, T0 + 3001, &o);
	/* starts .250, 2.000, 2.010, 3.000 in; .125, 3.001, 5.500 and the
	 * three IPv6 flows (4.000 to 5.000) out, before their addresses count */
	assert_int_equal(o.n, 4);
	assert_int_equal(o.outside, 6);
	assert_int_equal(o.foreign, 0);
	nfd_out_free(&o);
}

/* A peer: both sides must match; the others are foreign. */
static void test_decode_peer(void **state)
{
	(void)state;
	struct cache_query q = Q("192.0.2.0/24", "10.0.1.10", T0, T0 + DAY);
	struct nfd_out o;

	decode(vec_pcapd, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 7);
	nfd_out_free(&o);
	q = Q("192.0.2.0/24", "10.9.9.9", T0, T0 + DAY);
	decode(vec_pcapd, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 0);
	assert_int_equal(o.foreign, 10);
	nfd_out_free(&o);
}

/* An exporter (softflowd's NetFlow v9 into nfcapd): its id, interfaces
 * and address. */
static void test_decode_softflowd(void **state)
{
	(void)state;
	struct cache_query q = Q("0.0.0.0/0", NULL, 0, 4 * T0);
	struct nfd_out o;

	decode(vec_softflowd, &q, 0, 4 * T0, &o);
	assert_int_equal(o.rejected, 0);
	assert_true(o.n >= 5);
	for (size_t i = 0; i < o.n; i++) {
		assert_int_equal(o.recs[i].exporter, 1);
		assert_int_equal(o.recs[i].in_if, 0);
		assert_int_equal(o.recs[i].out_if, 0);
		assert_non_null(strstr(o.recs[i].extra, "\"router\":\"127.0.0.1\""));
	}
	nfd_out_free(&o);
}

static const char one_rec[] =
	"{\n"
	"\t\"type\" : \"FLOW\",\n"
	"\t\"sampled\" : 0,\n"
	"\t\"export_sysid\" : 3,\n"
	"\t\"first\" : \"2026-11-27T00:00:01.001\",\n"
	"\t\"last\" : \"2026-11-27T00:00:02.002\",\n"
	"\t\"received\" : \"2026-11-27T00:05:00.000\",\n"
	"\t\"in_packets\" : 5,\n"
	"\t\"in_bytes\" : 500,\n"
	"\t\"proto\" : 6,\n"
	"\t\"tcp_flags\" : \"...AP...\",\n"
	"\t\"src_port\" : 1234,\n"
	"\t\"dst_port\" : 80,\n"
	"\t\"src_tos\" : 0,\n"
	"\t\"src4_addr\" : \"10.0.1.10\",\n"
	"\t\"dst4_addr\" : \"192.0.2.1\",\n"
	"\t\"input_snmp\" : 7,\n"
	"\t\"output_snmp\" : 9,\n"
	"\t\"src_as\" : 64500,\n"
	"\t\"dst_as\" : 64501,\n"
	"\t\"label\" : \"<none>\"\n"
	"}";

/* Each bad record is refused with its reason; the good ones are kept. */
static void test_decode_bad(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	static const struct {
		const char *from, *to, *why;
	} cases[] = {
		{"\"proto\" : 6", "\"proto\" : 300", "bad 'proto'"},
		{"\"in_bytes\" : 500", "\"in_bytes\" : -5", "bad 'in_bytes'"},
		{"\"in_bytes\" : 500", "\"in_bytes\" : 5e2", "bad 'in_bytes'"},
		{"\"in_bytes\" : 500", "\"in_bytes\" : 99999999999999999999", "bad 'in_bytes'"},
		{"00:00:01.001", "00:00:61.001", "bad 'first'"},
		{"2026-11-27T00:00:01.001", "2026-11-27 00:00:01", "bad 'first'"},
		{"10.0.1.10\"", "10.0.1.300\"", "bad 'src4_addr'"},
		{"\"src_port\" : 1234", "\"src_port\" : 65536", "bad 'src_port'"},
		{"...AP...", "...XP...", "bad 'tcp_flags'"},
		{"\t\"first\" : \"2026-11-27T00:00:01.001\",\n", "", "without 'first'"},
		{"\"dst_as\"", "\"src_as\"", "given twice"},
		{"\t\"label\"", "label", "not a field"},
		{"00:00:02.002", "00:00:00.002", "ends before it starts"},
	};
	char text[4096], rec[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strstr(one_rec, cases[i].from);
		assert_non_null(at);
		snprintf(rec, sizeof(rec), "%.*s%s%s", (int)(at - one_rec), one_rec, cases[i].to,
			 at + strlen(cases[i].from));
		snprintf(text, sizeof(text), "%s,\n%s", rec, one_rec);
		struct nfd_out o;
		decode(text, &q, T0, T0 + DAY, &o);
		assert_int_equal(o.records, 2);
		assert_int_equal(o.rejected, 1);
		assert_int_equal(o.n, 1);
		if (!strstr(o.why, cases[i].why))
			fail_msg("case %zu: '%s' does not say '%s'", i, o.why, cases[i].why);
		nfd_out_free(&o);
	}
	/* a line past the bound */
	memset(rec, 'x', 1500);
	rec[1500] = '\0';
	snprintf(text, sizeof(text), "{\n\t\"label\" : \"%s\",\n%s", rec, one_rec + 2);
	struct nfd_out o;
	decode(text, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.rejected, 1);
	assert_non_null(strstr(o.why, "longer than"));
	nfd_out_free(&o);
	/* cut short */
	decode("{\n\t\"type\" : \"FLOW\",\n", &q, T0, T0 + DAY, &o);
	assert_int_equal(o.rejected, 1);
	assert_non_null(strstr(o.why, "ends inside"));
	nfd_out_free(&o);
}

/* Every field where nfdump has it; extra for the rest. */
static void test_decode_fields(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_out o;

	decode(one_rec, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 1);
	const struct flow_rec *f = &o.recs[0];
	assert_int_equal(f->start_ms, T0 + 1001);
	assert_int_equal(f->end_ms, T0 + 2002);
	assert_int_equal(f->exporter, 3);
	assert_int_equal(f->in_if, 7);
	assert_int_equal(f->out_if, 9);
	assert_int_equal(f->src_as, 64500);
	assert_int_equal(f->dst_as, 64501);
	assert_int_equal(f->tcp_flags, 0x18);
	assert_string_equal(f->extra, "{\"received\":\"2026-11-27T00:05:00.000Z\"}");
	nfd_out_free(&o);
}

/* one_rec with from replaced by to, into buf. */
static void rec_with(const char *from, const char *to, char *buf, size_t len)
{
	const char *at = strstr(one_rec, from);

	assert_non_null(at);
	snprintf(buf, len, "%.*s%s%s", (int)(at - one_rec), one_rec, to, at + strlen(from));
}

/* The lateness (received - last) of every record an exporter sent, kept,
 * outside the window or foreign alike, the largest; none for nfpcapd's
 * records (sysid 0) nor for rejected ones. */
static void test_decode_lateness(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct cache_query other = Q("10.9.9.9", NULL, T0, T0 + DAY);
	char late[2048], nosys[2048], bad[2048], text[8192];
	struct nfd_out o;

	/* 00:05:00.000 - 00:00:02.002 */
	decode(one_rec, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.late_ms, 297998);
	nfd_out_free(&o);
	decode(one_rec, &q, T0 + DAY, T0 + 2 * DAY, &o);	/* outside */
	assert_int_equal(o.n, 0);
	assert_int_equal(o.outside, 1);
	assert_int_equal(o.late_ms, 297998);
	nfd_out_free(&o);
	decode(one_rec, &other, T0, T0 + DAY, &o);		/* foreign */
	assert_int_equal(o.foreign, 1);
	assert_int_equal(o.late_ms, 297998);
	nfd_out_free(&o);
	/* two hours late (the replay's), among others: the largest */
	rec_with("2026-11-27T00:05:00.000", "2026-11-27T01:58:28.002", late, sizeof(late));
	snprintf(text, sizeof(text), "%s,\n%s,\n%s", one_rec, late, one_rec);
	decode(text, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.late_ms, 7106000);
	nfd_out_free(&o);
	/* nfpcapd's records: received is its run's clock, not counted */
	rec_with("\"export_sysid\" : 3", "\"export_sysid\" : 0", nosys, sizeof(nosys));
	snprintf(text, sizeof(text), "%s", nosys);
	char *at = strstr(text, "2026-11-27T00:05:00.000");
	assert_non_null(at);
	memcpy(at, "2026-12-06", 10);	/* weeks later */
	decode(text, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.late_ms, 0);
	nfd_out_free(&o);
	/* a rejected record says nothing */
	rec_with("\"proto\" : 6", "\"proto\" : 300", bad, sizeof(bad));
	at = strstr(bad, "2026-11-27T00:05:00.000");
	assert_non_null(at);
	memcpy(at, "2026-12-06", 10);
	snprintf(text, sizeof(text), "%s,\n%s", bad, one_rec);
	decode(text, &q, T0, T0 + DAY, &o);
	assert_int_equal(o.rejected, 1);
	assert_int_equal(o.late_ms, 297998);
	nfd_out_free(&o);
}

/* "No matching flows", nothing, or not nfdump's JSON at all. */
static void test_decode_empty(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_out o;

	decode("No matching flows\n", &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n + o.records + o.rejected, 0);
	decode("", &q, T0, T0 + DAY, &o);
	assert_int_equal(o.n + o.records + o.rejected, 0);
	memset(&o, 0, sizeof(o));
	const char *csv = "ts,te,td,sa,da\n2026-11-27 00:00:02,2026-11-27 00:00:02,0.000\n";
	assert_int_equal(nfd_decode(csv, strlen(csv), &q, T0, T0 + DAY, &o, err), -EBADMSG);
	assert_non_null(strstr(err, "not its JSON"));
	nfd_out_free(&o);
}

/* Ids are the same on every run; identical records twice are two flows. */
static void test_ids(void **state)
{
	(void)state;
	struct cache_query q = Q("0.0.0.0/0", NULL, T0, T0 + DAY);
	struct nfd_out a, b;
	char text[4096];

	decode(vec_pcapd, &q, T0, T0 + DAY, &a);
	decode(vec_pcapd, &q, T0, T0 + DAY, &b);
	assert_int_equal(a.n, 7);
	for (size_t i = 0; i < a.n; i++) {
		assert_string_equal(a.recs[i].id, b.recs[i].id);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(a.recs[i].id, a.recs[j].id);
	}
	nfd_out_free(&a);
	nfd_out_free(&b);
	/* the same record three times */
	snprintf(text, sizeof(text), "%s,\n%s,\n%s", one_rec, one_rec, one_rec);
	q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	decode(text, &q, T0, T0 + DAY, &a);
	decode(one_rec, &q, T0, T0 + DAY, &b);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.recs[0].id, b.recs[0].id);
	char two[80], three[80];
	snprintf(two, sizeof(two), "%s.2", b.recs[0].id);
	snprintf(three, sizeof(three), "%s.3", b.recs[0].id);
	assert_string_equal(a.recs[1].id, two);
	assert_string_equal(a.recs[2].id, three);
	nfd_out_free(&a);
	nfd_out_free(&b);
}

/* An id is the documented hash (docs/nfdump.md, "Flow ids"): the first
 * 16 bytes of SHA-256 over the record's fields, in lowercase hex; a
 * cache holds ids, so it must not change between versions.  Here
 * sha256("nfd1|3||6|10.0.1.10|1234|192.0.2.1|80|-1|-1|1795737601001|
 * 1795737602002|5|500"), computed with Python's hashlib. */
static void test_id_value(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_out o;

	for (int i = 0; i < 2; i++) {	/* the digest is set up once a call: twice */
		decode(one_rec, &q, T0, T0 + DAY, &o);
		assert_int_equal(o.n, 1);
		assert_string_equal(o.recs[0].id, "259b7331eb38f51783f5bb11f8d5dec2");
		nfd_out_free(&o);
	}
}

/* ---- the command ---- */

static struct nfd_files two_files(void)
{
	static struct nfd_file v[2] = {
		{T0, "2026/11/27/nfcapd.202611270000"},
		{T0 + 600000, "2026/11/27/nfcapd.202611270010"},
	};
	struct nfd_files f = {v, 2};
	return f;
}

static void test_argv(void **state)
{
	(void)state;
	struct nfd_archive a = {.root = "/var/cache/nfdump/", .layout = 1};
	struct nfd_files files = two_files();
	struct nfd_cmd c;
	static const struct {
		const char *subject, *peer, *filter;
	} cases[] = {
		{"10.0.1.10", NULL, "host 10.0.1.10"},
		{"10.0.1.0/24", NULL, "net 10.0.1.0/24"},
		{"2001:DB8::10", NULL, "host 2001:db8::10"},
		{"2001:db8::/32", "192.0.2.1", "(src net 2001:db8::/32 and dst host 192.0.2.1) or "
		 "(dst net 2001:db8::/32 and src host 192.0.2.1)"},
		{"10.0.1.10", "0.0.0.0/0", "(src host 10.0.1.10 and any) or (dst host 10.0.1.10 and any)"},
		{"::/0", NULL, "any"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache_query q = Q(cases[i].subject, cases[i].peer, T0, T0 + DAY);
		assert_int_equal(nfd_argv(NULL, &a, &files, &q, &c, err), 0);
		assert_string_equal(c.argv[0], "nfdump");
		assert_string_equal(c.argv[10], cases[i].filter);
		assert_null(c.argv[11]);
	}
	const char *want[] = {"nfdump", "-C", "none", "-q", "-o", "json", "-M", "/var/cache/nfdump",
			      "-R", "2026/11/27/nfcapd.202611270000:2026/11/27/nfcapd.202611270010"};
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(c.argv[i], want[i]);
	assert_string_equal(c.envp[0], "TZ=UTC");
	assert_null(c.envp[3]);
	/* nfsen channels */
	struct nfd_archive n = {.root = "/data/profiles-data/live", .channels = {"up1", "up2"},
				.nchannels = 2, .layout = 1};
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	assert_int_equal(nfd_argv("/usr/bin/nfdump", &n, &files, &q, &c, err), 0);
	assert_string_equal(c.argv[0], "/usr/bin/nfdump");
	assert_string_equal(c.argv[7], "/data/profiles-data/live/up1:up2");
	/* refused: no files, a ':' in the root, a channel that walks out */
	struct nfd_files none = {NULL, 0};
	assert_int_equal(nfd_argv(NULL, &a, &none, &q, &c, err), -ENOENT);
	a.root = "/a:b";
	assert_int_equal(nfd_argv(NULL, &a, &files, &q, &c, err), -EINVAL);
	n.channels[1] = "..";
	assert_int_equal(nfd_argv(NULL, &n, &files, &q, &c, err), -EINVAL);
	n.channels[1] = "a b";
	assert_int_equal(nfd_argv(NULL, &n, &files, &q, &c, err), -EINVAL);
}

/* ---- the archive's files ---- */

static void touch(const char *dir, const char *rel)
{
	char p[512], cmd[1200];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\" && : > '%s'", p, p);
	assert_int_equal(system(cmd), 0);
}

static void list(const struct nfd_archive *a, int64_t s, int64_t e, const char *want)
{
	struct nfd_files f;
	char got[4096] = "";
	size_t o = 0;

	assert_int_equal(nfd_archive_files(a, s, e, &f, err), 0);
	for (size_t i = 0; i < f.n; i++)
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", i ? " " : "", f.v[i].rel);
	assert_string_equal(got, want);
	nfd_files_free(&f);
}

static void test_archive_flat(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_nfdump.XXXXXX";
	assert_non_null(mkdtemp(dir));
	touch(dir, "nfcapd.202611262350");
	touch(dir, "nfcapd.202611262355");
	touch(dir, "nfcapd.202611270000");
	touch(dir, "nfcapd.202611270005");
	touch(dir, "nfcapd.202611270010");
	touch(dir, "nfcapd.202611270015");
	touch(dir, "nfcapd.20261127001530");
	touch(dir, "nfcapd.current.4711");
	touch(dir, "nfcapd.202611279999");
	touch(dir, ".nfstat");
	struct nfd_archive a = {.root = dir, .layout = 0, .files_tz = "UTC",
				.bound_ms = 5 * 60000};
	/* [00:00, 00:05) with flows written up to 5 minutes after its end */
	list(&a, T0, T0 + 300000,
	     "nfcapd.202611270000 nfcapd.202611270005");
	/* a window starting inside a file takes that file */
	list(&a, T0 + 60000, T0 + 120000, "nfcapd.202611270000 nfcapd.202611270005");
	/* the default bound (active timeout + interval) */
	a.bound_ms = 0;
	list(&a, T0, T0 + 300000,
	     "nfcapd.202611270000 nfcapd.202611270005 nfcapd.202611270010");
	/* file names in UTC+01:00: 00:10 local is 23:10 UTC the day before */
	a.files_tz = "+01:00";
	list(&a, T0 - 3000000, T0 - 2700000,
	     "nfcapd.202611270010 nfcapd.202611270015 nfcapd.20261127001530");
	a.files_tz = "Mars/Olympus";
	struct nfd_files f;
	assert_int_equal(nfd_archive_files(&a, T0, T0 + 1, &f, err), -EINVAL);
	a.files_tz = NULL;
	a.root = "/nonexistent/nfdump";
	assert_int_equal(nfd_archive_files(&a, T0, T0 + 1, &f, err), -ENOENT);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_archive_layout(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_nfdump.XXXXXX";
	assert_non_null(mkdtemp(dir));
	touch(dir, "2026/11/26/nfcapd.202611262355");
	touch(dir, "2026/11/27/nfcapd.202611270000");
	touch(dir, "2026/11/27/nfcapd.202611270005");
	touch(dir, "2026/11/27/nfcapd.202611270100");
	touch(dir, "2026/11/28/nfcapd.202611280000");
	struct nfd_archive a = {.root = dir, .layout = 1, .files_tz = "UTC"};
	/* a window across midnight reads both days' folders */
	list(&a, T0 - 60000, T0 + 60000,
	     "2026/11/26/nfcapd.202611262355 2026/11/27/nfcapd.202611270000 "
	     "2026/11/27/nfcapd.202611270005");
	/* the same names in UTC-01:00 are an hour later */
	a.files_tz = "-01:00";
	list(&a, T0 + 3600000, T0 + 3660000,
	     "2026/11/27/nfcapd.202611270000 2026/11/27/nfcapd.202611270005");
	/* nfsen: two channels, a file in both listed once */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/ch1' '%s/ch2' && mv '%s/2026' '%s/ch1/' && "
		 "mkdir -p '%s/ch2/2026/11/27' && : > '%s/ch2/2026/11/27/nfcapd.202611270000' && "
		 ": > '%s/ch2/2026/11/27/nfcapd.202611270010'", dir, dir, dir, dir, dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	struct nfd_archive n = {.root = dir, .channels = {"ch1", "ch2"}, .nchannels = 2,
				.layout = 1, .files_tz = "UTC"};
	list(&n, T0, T0 + 60000,
	     "2026/11/27/nfcapd.202611270000 2026/11/27/nfcapd.202611270005 "
	     "2026/11/27/nfcapd.202611270010");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* nfd_decode, in chunks of the given sizes (cycled) through nfd_dec_*. */
static void decode_chunked(const char *text, size_t len, const struct cache_query *q,
			   const size_t *sizes, size_t nsizes, struct nfd_out *o)
{
	struct nfd_dec *d;
	size_t pos = 0;

	memset(o, 0, sizeof(*o));
	assert_int_equal(nfd_dec_new(q, T0, T0 + DAY, o, &d, err), 0);
	for (size_t k = 0; pos < len; k++) {
		size_t n = sizes[k % nsizes];
		if (n > len - pos)
			n = len - pos;
		assert_int_equal(nfd_dec_feed(d, text + pos, n), 0);
		pos += n;
	}
	assert_int_equal(nfd_dec_end(d, false, err), 0);
	nfd_dec_free(d);
}

/* The output decoded while nfdump writes it is decoded as if whole, however
 * the chunks cut it: between any two bytes (a line, a \r\n, a record cut),
 * into random sizes, with a line past NFD_LINE_MAX cut in its middle, with
 * identical records in different chunks (their ".2"), and a window's
 * records only. */
static void test_decode_chunks(void **state)
{
	(void)state;
	struct cache_query q = Q("0.0.0.0/0", NULL, T0, T0 + DAY);
	static char text[65536];
	char longv[1500];
	size_t len;
	struct nfd_out whole, part;
	unsigned seed = 20261206;

	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	/* the real vectors, a record twice, a long line, \r\n, and one cut */
	len = (size_t)snprintf(text, sizeof(text), "%s\n%s,\n%s,\r\n{\r\n\t\"label\" : \"%s\",\r\n%s"
			       "\n{\n\t\"type\" : \"FL", vec_pcapd, one_rec, one_rec, longv,
			       one_rec + 2);
	assert_true(len < sizeof(text));
	decode(text, &q, T0, T0 + DAY, &whole);
	assert_true(whole.n >= 9);
	assert_int_equal(whole.rejected, 2);	/* the long line's record, the cut one */
	for (int round = 0; round < 40; round++) {
		size_t sizes[8], ns;
		if (round < 3) {	/* every byte boundary: 1, 2 and 3 bytes at a time */
			sizes[0] = (size_t)round + 1;
			ns = 1;
		} else {
			for (ns = 0; ns < 8; ns++)
				sizes[ns] = 1 + (size_t)rand_r(&seed) % (round < 20 ? 64 : 4096);
		}
		decode_chunked(text, len, &q, sizes, ns, &part);
		if (part.n != whole.n || part.records != whole.records ||
		    part.rejected != whole.rejected || part.outside != whole.outside ||
		    strcmp(part.why, whole.why) != 0)
			fail_msg("round %d (seed 20261206): %zu kept, %zu records, %zu rejected "
				 "('%s') against %zu, %zu, %zu ('%s')", round, part.n, part.records,
				 part.rejected, part.why, whole.n, whole.records, whole.rejected,
				 whole.why);
		for (size_t i = 0; i < whole.n; i++)
			if (memcmp(&part.recs[i], &whole.recs[i], sizeof(whole.recs[i])) != 0)
				fail_msg("round %d: record %zu (%s) differs from the whole decode's "
					 "(%s)", round, i, part.recs[i].id, whole.recs[i].id);
		nfd_out_free(&part);
	}
	nfd_out_free(&whole);
}

/* A decode stopped on purpose (the window is full) drops the record it was
 * cut in, instead of counting it as malformed. */
static void test_decode_cut(void **state)
{
	(void)state;
	struct cache_query q = Q("10.0.1.10", NULL, T0, T0 + DAY);
	struct nfd_dec *d;
	struct nfd_out o = {0};
	char text[2048];
	int len = snprintf(text, sizeof(text), "%s,\n{\n\t\"type\" : \"FLOW\",\n\t\"first", one_rec);

	assert_int_equal(nfd_dec_new(&q, T0, T0 + DAY, &o, &d, err), 0);
	assert_int_equal(nfd_dec_feed(d, text, (size_t)len), 0);
	assert_int_equal(o.n, 1);	/* kept as soon as it ended */
	assert_int_equal(nfd_dec_end(d, true, err), 0);
	nfd_dec_free(d);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.rejected, 0);
	nfd_out_free(&o);
}

/* nfd_run_sink hands the output over as it comes, and a sink's error
 * stops the child (killed, reaped) with that error. */
struct count_sink {
	size_t bytes, stop_at;
};

static int count_take(void *arg, const char *p, size_t n, char *e)
{
	struct count_sink *c = arg;

	(void)p;
	c->bytes += n;
	if (c->stop_at && c->bytes >= c->stop_at) {
		snprintf(e, FETCH_ERRLEN, "enough");
		return -E2BIG;
	}
	return 0;
}

static void test_run_sink(void **state)
{
	(void)state;
	char *argv[] = {(char *)"/bin/sh", (char *)"-c",
			(char *)"head -c 300000 /dev/zero; exec sleep 30", NULL};
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
	struct count_sink c = {0, 100000};
	int64_t t = nfd_mono_ms();

	assert_int_equal(nfd_run_sink(&nfd_nfdump_runner, argv, envp, t + 20000, NULL, count_take,
				      &c, err), -E2BIG);
	assert_string_equal(err, "enough");
	assert_true(c.bytes >= 100000 && c.bytes < 300000);
	assert_true(nfd_mono_ms() - t < 15000);	/* not the sleep's end, nor the deadline */
	argv[2] = (char *)"head -c 300000 /dev/zero";
	c = (struct count_sink){0, 0};
	assert_int_equal(nfd_run_sink(&nfd_nfdump_runner, argv, envp, 0, NULL, count_take, &c,
				      err), 0);
	assert_int_equal(c.bytes, 300000);
}

/* ---- the runner ---- */

static int run_sh(const char *script, int64_t deadline, const atomic_int *cancel, size_t limit,
		  struct nfd_buf *out)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)script, NULL};
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
	memset(out, 0, sizeof(*out));
	return nfd_run(argv, envp, deadline, cancel, limit, out, err);
}

static void test_run_ok(void **state)
{
	(void)state;
	struct nfd_buf b;

	assert_int_equal(run_sh("echo hello; echo warn >&2", 0, NULL, 1 << 20, &b), 0);
	assert_string_equal(b.p, "hello\n");
	nfd_buf_free(&b);
	/* stderr and the exit status in the error */
	assert_int_equal(run_sh("echo 'Line 1: incomplete IP address' >&2; exit 254", 0, NULL,
				1 << 20, &b), -EIO);
	assert_non_null(strstr(err, "status 254 (the filter was refused): Line 1: incomplete IP"));
	nfd_buf_free(&b);
	assert_int_equal(run_sh("printf 'a\\nb' >&2; exit 3", 0, NULL, 1 << 20, &b), -EIO);
	assert_non_null(strstr(err, "status 3"));
	assert_non_null(strstr(err, "a\\nb"));	/* one line */
	nfd_buf_free(&b);
	char *argv[] = {(char *)"/nonexistent/nfdump", NULL};
	memset(&b, 0, sizeof(b));
	assert_int_equal(nfd_run(argv, argv + 1, 0, NULL, 100, &b, err), -ENOENT);
	nfd_buf_free(&b);
}

/* The child's pid, as it printed it; then it must be gone (reaped). */
static void assert_gone(const struct nfd_buf *b)
{
	assert_non_null(b->p);
	pid_t pid = (pid_t)atol(b->p);
	assert_true(pid > 1);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_run_deadline(void **state)
{
	(void)state;
	struct nfd_buf b;
	int64_t t = nfd_mono_ms();

	assert_int_equal(run_sh("echo $$; exec sleep 30", t + 300, NULL, 1 << 20, &b), -ETIMEDOUT);
	assert_true(nfd_mono_ms() - t < 10000);
	assert_gone(&b);
	nfd_buf_free(&b);
	/* a child that ignores SIGTERM is killed all the same (dash's exec
	 * does not keep an ignored TERM: python ignores it itself) */
	char *argv[] = {(char *)"/usr/bin/python3", (char *)"-c",
			(char *)"import os, signal, time\n"
				"signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
				"print(os.getpid(), flush=True)\n"
				"time.sleep(120)\n",
			NULL};
	char *envp[] = {NULL};
	memset(&b, 0, sizeof(b));
	/* the deadline once python has started: its pid is on stdout; it
	 * returns long before the child's own end (2.5 s against 120 s; with
	 * SIGTERM only, nfd_run would wait for that end) */
	t = nfd_mono_ms();
	assert_int_equal(nfd_run(argv, envp, t + 2000, NULL, 1 << 20, &b, err), -ETIMEDOUT);
	assert_true(nfd_mono_ms() - t < 100000);
	assert_gone(&b);
	nfd_buf_free(&b);
}

static void test_run_cancel_overflow(void **state)
{
	(void)state;
	struct nfd_buf b;
	atomic_int cancel = 1;

	assert_int_equal(run_sh("echo $$; exec sleep 30", 0, &cancel, 1 << 20, &b), -ECANCELED);
	nfd_buf_free(&b);
	/* 200,000 bytes against a bound of 100,000, then nothing (the
	 * deadline only ends the run when the bound is not kept) */
	assert_int_equal(run_sh("echo $$; head -c 200000 /dev/zero; exec sleep 30",
				nfd_mono_ms() + 20000, NULL, 100000, &b), -E2BIG);
	assert_true(b.len <= 100000);
	assert_gone(&b);
	nfd_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_pcapd_v4),
		cmocka_unit_test(test_decode_v6),
		cmocka_unit_test(test_decode_window),
		cmocka_unit_test(test_decode_peer),
		cmocka_unit_test(test_decode_softflowd),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_decode_fields),
		cmocka_unit_test(test_decode_lateness),
		cmocka_unit_test(test_decode_empty),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_id_value),
		cmocka_unit_test(test_decode_chunks),
		cmocka_unit_test(test_decode_cut),
		cmocka_unit_test(test_run_sink),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_archive_flat),
		cmocka_unit_test(test_archive_layout),
		cmocka_unit_test(test_run_ok),
		cmocka_unit_test(test_run_deadline),
		cmocka_unit_test(test_run_cancel_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
