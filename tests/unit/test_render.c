/*
 * test_render.c - unit tests of the renderers: flows.csv and flows.ndjson
 * byte for byte for a handful of hand-built records (unknown fields, IPv6,
 * ICMP, hostile names as the simulated collector serves them), the time
 * format in zones other than UTC (DST days, half-hour offsets), determinism
 * (the same state renders the same bytes; flows.sqlite twice is the same
 * file), the SQLite export's tables and every column of it against
 * render_fields on random flows, write errors, cancelling, and rows a
 * hostile hand planted in the cache (a lookup name of 200 KiB).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"
#include "render_i.h"

#define DAY0 1694736000000LL	/* 2023-09-15T00:00:00Z */
#define T10 1694772000000LL	/* 2023-09-15T10:00:00Z */
#define HOUR 3600000LL

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------ */

/* A record with every optional field unknown. */
static struct flow_rec R(const char *id, int64_t start, int64_t end, int proto,
			 const char *src, int sport, const char *dst, int dport)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.start_ms = start;
	r.end_ms = end;
	memcpy(r.src, P(src).addr, 16);
	memcpy(r.dst, P(dst).addr, 16);
	r.sport = sport;
	r.dport = dport;
	r.proto = proto;
	r.tcp_flags = r.icmp_type = r.icmp_code = -1;
	r.pkts = r.bytes = r.in_if = r.out_if = r.exporter = r.app = -1;
	r.src_as = r.dst_as = r.sampling = -1;
	return r;
}

static void put_lookup(struct cache *c, enum cache_table t, const struct cache_lookup *rows,
		       size_t n)
{
	char err[CACHE_ERRLEN];
	assert_int_equal(cache_put_lookup(c, t, rows, n, 1000, err), 0);
}

struct fixture {
	char *dir;
	struct cache *c;
};

/*
 * The cache every test renders from: the lookup tables with the names the
 * simulated collector serves (commas, quotes, a newline, a leading '='),
 * four IPv4 flows of 192.0.2.10 in range and two out of it, and two IPv6
 * flows of 2001:db8::10.
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct cache_identity id = {"http://127.0.0.1:8080/", "flowsim", "flowapi"};
	char err[CACHE_ERRLEN] = "";

	use_tz("UTC");
	fx->dir = strdup("/tmp/test_render.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (cache_open(fx->dir, &id, &fx->c, err)) {
		fprintf(stderr, "cache_open: %s\n", err);
		return -1;
	}
	struct cache_lookup apps[3] = {
		{.key = 130, .name = "HTTPS"},
		{.key = 160, .name = "SIP, \"VoIP\""},
		{.key = 170, .name = "=HYPERLINK(\"x\")"},
	};
	struct cache_lookup groups[7] = {
		{.key = 12, .key2 = 1, .name = "DMZ, \"public\""},
		{.key = 13, .key2 = 1, .name = "Databases"},
		{.key = 14, .key2 = 1, .name = "NAT\ngateways"},
		{.key = 15, .key2 = 1, .name = "=cmd|' /C calc'!A0"},
		{.key = 16, .key2 = 0, .name = "+plus"},
		{.key = 17, .key2 = 0, .name = "-minus"},
		{.key = 18, .key2 = 0, .name = "@at"},
	};
	struct cache_lookup exporters[1] = {{.key = 2, .name = "edge-rt1", .extra = "192.0.2.1"}};
	struct cache_lookup ifs[3] = {
		{.key = 2, .key2 = 514, .name = "xe-0/0/1", .extra = "transit-A"},
		{.key = 2, .key2 = 515, .name = "", .extra = "no name"},
		{.key = 9, .key2 = 7, .name = "ge-9/9/9"},
	};
	put_lookup(fx->c, CACHE_APPS, apps, 3);
	put_lookup(fx->c, CACHE_GROUPS, groups, 7);
	put_lookup(fx->c, CACHE_EXPORTERS, exporters, 1);
	put_lookup(fx->c, CACHE_IFS, ifs, 3);

	struct flow_rec v4[6];
	/* TCP with every field, hostile names */
	v4[0] = R("0a1", T10 + 123, T10 + 1623, 6, "192.0.2.10", 51515, "198.51.100.7", 443);
	v4[0].tcp_flags = 0x1b;
	v4[0].pkts = 12;
	v4[0].bytes = 3456;
	v4[0].src_as = 64500;
	v4[0].dst_as = 64501;
	v4[0].in_if = 514;
	v4[0].out_if = 515;
	v4[0].exporter = 2;
	v4[0].app = 160;
	v4[0].nsrc_groups = 2;
	v4[0].src_groups[0] = 12;
	v4[0].src_groups[1] = 14;
	v4[0].ndst_groups = 2;
	v4[0].dst_groups[0] = 15;
	v4[0].dst_groups[1] = 99;
	v4[0].sampling = 1;
	snprintf(v4[0].community_id, sizeof(v4[0].community_id), "1:abc+/=");
	/* the same start, a later id: after it; almost everything unknown */
	v4[1] = R("0a2", T10 + 123, T10 + 123, 17, "198.51.100.8", 53, "192.0.2.10", 40000);
	v4[1].app = 77;
	v4[1].ndst_groups = 1;	/* a newline alone must be quoted too */
	v4[1].dst_groups[0] = 14;
	/* ICMP echo; exporter and interface without names */
	v4[2] = R("0b1", T10 + 5000, T10 + 5250, 1, "192.0.2.10", 0, "203.0.113.5", 0);
	v4[2].icmp_type = 8;
	v4[2].icmp_code = 0;
	v4[2].pkts = 1;
	v4[2].bytes = 84;
	v4[2].in_if = 514;
	v4[2].exporter = 3;
	v4[2].app = 170;
	v4[2].nsrc_groups = 3;
	v4[2].src_groups[0] = 16;
	v4[2].src_groups[1] = 17;
	v4[2].src_groups[2] = 18;
	v4[2].sampling = 1;
	/* a protocol without a name, TCP flags on it (ignored), no end */
	v4[3] = R("0c1", T10 + HOUR, -1, 253, "192.0.2.10", -1, "192.0.2.11", -1);
	v4[3].tcp_flags = 2;
	v4[3].pkts = 5;
	v4[3].bytes = 500;
	/* out of the range, both sides */
	v4[4] = R("0d1", DAY0 + 24 * HOUR, DAY0 + 24 * HOUR, 6, "192.0.2.10", 1, "192.0.2.12", 2);
	v4[5] = R("0d2", DAY0 - 1, DAY0, 6, "192.0.2.10", 1, "192.0.2.12", 2);
	struct cache_query q = Q("192.0.2.10", NULL, DAY0 - HOUR, DAY0 + 25 * HOUR);
	/* covered but for the millisecond of the gap below */
	struct cache_cover cv = {DAY0 - HOUR, T10 + 2 * HOUR, 5000, false, 6};
	struct cache_cover cv2 = {T10 + 2 * HOUR + 1, DAY0 + 25 * HOUR, 6000, false, 0};
	if (cache_put_window(fx->c, &q, v4, 6, &cv, err) ||
	    cache_put_window(fx->c, &q, NULL, 0, &cv2, err)) {
		fprintf(stderr, "put: %s\n", err);
		return -1;
	}
	struct cache_gap gap = {.start = T10 + 2 * HOUR, .end = T10 + 2 * HOUR + 1,
				.peer = "198.51.100.7", .seen = 10000,
				.reason = "saturated at 1 ms and a /32 peer"};
	struct cache_query qd = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	if (cache_put_gap(fx->c, &qd, &gap, err))
		return -1;

	struct flow_rec v6[2];
	v6[0] = R("v6a", T10, T10 + 1000, 58, "2001:db8::10", 0, "2001:db8:0:0:1:0:0:1", 0);
	v6[0].icmp_type = 128;
	v6[0].icmp_code = 0;
	v6[0].pkts = 2;
	v6[0].bytes = 208;
	v6[1] = R("v6b,\"x\"", T10, T10 + 20, 6, "2001:db8:0:1:1:1:1:1", 443, "2001:db8::10", 50000);
	v6[1].tcp_flags = 0x12;
	v6[1].pkts = 1;
	v6[1].bytes = 60;
	snprintf(v6[1].community_id, sizeof(v6[1].community_id), "1:xyz=");
	struct cache_query q6 = Q("2001:db8::10", NULL, DAY0, DAY0 + 24 * HOUR);
	if (cache_put_window(fx->c, &q6, v6, 2, NULL, err))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	cache_close(fx->c);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->dir);
	free(fx);
	use_tz("UTC");
	return 0;
}

/* Render q as text into a malloc'd string. */
static char *render(struct cache *c, const struct cache_query *q, enum cache_format fmt,
		    int64_t *rows)
{
	char *buf = NULL, err[CACHE_ERRLEN] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	rc = cache_render(c, q, fmt, f, NULL, NULL, 0, rows, err);
	if (rc)
		fail_msg("cache_render: %d %s", rc, err);
	fclose(f);
	return buf;
}

static void expect_text(const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		size_t i = 0;
		while (got[i] && got[i] == want[i])
			i++;
		fail_msg("output differs at byte %zu:\n--- got ---\n%s\n--- want ---\n%s", i,
			 got, want);
	}
}

static const char csv_header[] =
	"firstSeen,lastSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,flags,"
	"packets,bytes,srcAS,dstAS,inIf,outIf,exporter,app,srcGroups,dstGroups,"
	"icmpType,icmpCode,sampling,ts,communityId,flowId\n";

/* ---- CSV ------------------------------------------------------------------------- */

static void test_csv(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	int64_t rows = -1;
	char *got = render(fx->c, &q, CACHE_CSV, &rows);
	char want[4096];

	snprintf(want, sizeof(want), "%s%s", csv_header,
		 "2023-09-15T10:00:00.123Z,2023-09-15T10:00:01.623Z,1.500,TCP,192.0.2.10,51515,"
		 "198.51.100.7,443,...AP.SF,12,3456,64500,64501,xe-0/0/1,515,edge-rt1,"
		 "\"SIP, \"\"VoIP\"\"\",\"DMZ, \"\"public\"\";NAT\ngateways\","
		 "=cmd|' /C calc'!A0;99,,,1,1694772000.123,1:abc+/=,0a1\n"
		 "2023-09-15T10:00:00.123Z,2023-09-15T10:00:00.123Z,0.000,UDP,198.51.100.8,53,"
		 "192.0.2.10,40000,,,,,,,,,77,,\"NAT\ngateways\",,,,1694772000.123,,0a2\n"
		 "2023-09-15T10:00:05.000Z,2023-09-15T10:00:05.250Z,0.250,ICMP,192.0.2.10,0,"
		 "203.0.113.5,0,,1,84,,,514,,3,\"=HYPERLINK(\"\"x\"\")\",+plus;-minus;@at,,"
		 "8,0,1,1694772005.000,,0b1\n"
		 "2023-09-15T11:00:00.000Z,,,253,192.0.2.10,,192.0.2.11,,,5,500,,,,,,,,,,,,"
		 "1694775600.000,,0c1\n");
	expect_text(got, want);
	assert_int_equal(rows, 4);
	free(got);

	/* IPv6 and ICMPv6; an id that needs quoting */
	struct cache_query q6 = Q("2001:db8::10", NULL, DAY0, DAY0 + 24 * HOUR);
	got = render(fx->c, &q6, CACHE_CSV, &rows);
	snprintf(want, sizeof(want), "%s%s", csv_header,
		 "2023-09-15T10:00:00.000Z,2023-09-15T10:00:01.000Z,1.000,ICMP6,2001:db8::10,0,"
		 "2001:db8::1:0:0:1,0,,2,208,,,,,,,,,128,0,,1694772000.000,,v6a\n"
		 "2023-09-15T10:00:00.000Z,2023-09-15T10:00:00.020Z,0.020,TCP,"
		 "2001:db8:0:1:1:1:1:1,443,2001:db8::10,50000,...A..S.,1,60,,,,,,,,,,,,"
		 "1694772000.000,1:xyz=,\"v6b,\"\"x\"\"\"\n");
	expect_text(got, want);
	assert_int_equal(rows, 2);
	free(got);

	/* nothing in range: the header alone */
	struct cache_query qe = Q("192.0.2.10", NULL, T10 + 2 * HOUR, T10 + 3 * HOUR);
	got = render(fx->c, &qe, CACHE_CSV, &rows);
	expect_text(got, csv_header);
	assert_int_equal(rows, 0);
	free(got);
}

static void test_csv_peer(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", "198.51.100.0/24", DAY0, DAY0 + 24 * HOUR);
	int64_t rows = -1, n = -1;
	char err[CACHE_ERRLEN];
	char *got = render(fx->c, &q, CACHE_CSV, &rows);

	assert_int_equal(rows, 2);
	assert_non_null(strstr(got, ",0a1\n"));
	assert_non_null(strstr(got, ",0a2\n"));
	assert_null(strstr(got, "0b1"));
	assert_int_equal(cache_count(fx->c, &q, &n, err), 0);
	assert_int_equal(n, rows);
	free(got);
	q = Q("192.0.2.10", "203.0.113.5", DAY0, DAY0 + 24 * HOUR);
	got = render(fx->c, &q, CACHE_CSV, &rows);
	assert_int_equal(rows, 1);
	assert_non_null(strstr(got, ",0b1\n"));
	free(got);
}

/* ---- NDJSON ---------------------------------------------------------------------- */

static void test_ndjson(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	int64_t rows = -1;
	char *got = render(fx->c, &q, CACHE_NDJSON, &rows);
	const char *want =
		"{\"firstSeen\":\"2023-09-15T10:00:00.123Z\",\"lastSeen\":\"2023-09-15T10:00:01.623Z\","
		"\"duration\":1.500,\"proto\":\"TCP\",\"srcAddr\":\"192.0.2.10\",\"srcPort\":51515,"
		"\"dstAddr\":\"198.51.100.7\",\"dstPort\":443,\"flags\":\"...AP.SF\",\"packets\":12,"
		"\"bytes\":3456,\"srcAS\":64500,\"dstAS\":64501,\"inIf\":\"xe-0/0/1\",\"outIf\":\"515\","
		"\"exporter\":\"edge-rt1\",\"app\":\"SIP, \\\"VoIP\\\"\","
		"\"srcGroups\":\"DMZ, \\\"public\\\";NAT\\u000agateways\","
		"\"dstGroups\":\"=cmd|' /C calc'!A0;99\",\"icmpType\":null,\"icmpCode\":null,"
		"\"sampling\":1,\"ts\":1694772000.123,\"communityId\":\"1:abc+/=\",\"flowId\":\"0a1\"}\n"
		"{\"firstSeen\":\"2023-09-15T10:00:00.123Z\",\"lastSeen\":\"2023-09-15T10:00:00.123Z\","
		"\"duration\":0.000,\"proto\":\"UDP\",\"srcAddr\":\"198.51.100.8\",\"srcPort\":53,"
		"\"dstAddr\":\"192.0.2.10\",\"dstPort\":40000,\"flags\":null,\"packets\":null,"
		"\"bytes\":null,\"srcAS\":null,\"dstAS\":null,\"inIf\":null,\"outIf\":null,"
		"\"exporter\":null,\"app\":\"77\",\"srcGroups\":null,"
		"\"dstGroups\":\"NAT\\u000agateways\","
		"\"icmpType\":null,\"icmpCode\":null,\"sampling\":null,\"ts\":1694772000.123,"
		"\"communityId\":null,\"flowId\":\"0a2\"}\n"
		"{\"firstSeen\":\"2023-09-15T10:00:05.000Z\",\"lastSeen\":\"2023-09-15T10:00:05.250Z\","
		"\"duration\":0.250,\"proto\":\"ICMP\",\"srcAddr\":\"192.0.2.10\",\"srcPort\":0,"
		"\"dstAddr\":\"203.0.113.5\",\"dstPort\":0,\"flags\":null,\"packets\":1,\"bytes\":84,"
		"\"srcAS\":null,\"dstAS\":null,\"inIf\":\"514\",\"outIf\":null,\"exporter\":\"3\","
		"\"app\":\"=HYPERLINK(\\\"x\\\")\",\"srcGroups\":\"+plus;-minus;@at\","
		"\"dstGroups\":null,\"icmpType\":8,\"icmpCode\":0,\"sampling\":1,"
		"\"ts\":1694772005.000,\"communityId\":null,\"flowId\":\"0b1\"}\n"
		"{\"firstSeen\":\"2023-09-15T11:00:00.000Z\",\"lastSeen\":null,\"duration\":null,"
		"\"proto\":\"253\",\"srcAddr\":\"192.0.2.10\",\"srcPort\":null,"
		"\"dstAddr\":\"192.0.2.11\",\"dstPort\":null,\"flags\":null,\"packets\":5,"
		"\"bytes\":500,\"srcAS\":null,\"dstAS\":null,\"inIf\":null,\"outIf\":null,"
		"\"exporter\":null,\"app\":null,\"srcGroups\":null,\"dstGroups\":null,"
		"\"icmpType\":null,\"icmpCode\":null,\"sampling\":null,\"ts\":1694775600.000,"
		"\"communityId\":null,\"flowId\":\"0c1\"}\n";

	expect_text(got, want);
	assert_int_equal(rows, 4);
	free(got);

	struct cache_query q6 = Q("2001:db8::10", NULL, DAY0, DAY0 + 24 * HOUR);
	got = render(fx->c, &q6, CACHE_NDJSON, &rows);
	assert_int_equal(rows, 2);
	assert_non_null(strstr(got, "\"srcAddr\":\"2001:db8:0:1:1:1:1:1\""));
	assert_non_null(strstr(got, "\"flowId\":\"v6b,\\\"x\\\"\"}\n"));
	assert_non_null(strstr(got, "\"proto\":\"ICMP6\""));
	free(got);
}

/* Control characters and bytes that are not UTF-8 still give valid JSON. */
static void test_ndjson_escapes(void **state)
{
	struct fixture *fx = *state;
	char err[CACHE_ERRLEN];
	struct cache_lookup app = {.key = 400, .name = "a\\b\t\x01\x7f\xc3\xa9\xff\xe2\x82"};
	struct flow_rec r = R("e1", T10 + 7, T10 + 8, 17, "192.0.2.20", 1, "192.0.2.21", 2);
	struct cache_query q = Q("192.0.2.20", NULL, DAY0, DAY0 + 24 * HOUR);
	int64_t rows;

	r.app = 400;
	put_lookup(fx->c, CACHE_APPS, &app, 1);
	assert_int_equal(cache_put_window(fx->c, &q, &r, 1, NULL, err), 0);
	char *got = render(fx->c, &q, CACHE_NDJSON, &rows);
	/* \\ \t \x01 escaped; DEL kept; é kept; 0xff and a cut sequence become U+FFFD */
	assert_non_null(strstr(got, "\"app\":\"a\\\\b\\u0009\\u0001\x7f\xc3\xa9\xef\xbf\xbd"
				    "\xef\xbf\xbd\xef\xbf\xbd\""));
	free(got);
	got = render(fx->c, &q, CACHE_CSV, &rows);
	/* CSV keeps the bytes as they are */
	assert_non_null(strstr(got, ",a\\b\t\x01\x7f\xc3\xa9\xff\xe2\x82,"));
	free(got);
}

/* ---- time zones ------------------------------------------------------------------- */

static void expect_time(int64_t ms, const char *want)
{
	char buf[64];
	int n = cache_time_format(ms, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_time_format(void **state)
{
	(void)state;
	use_tz("UTC");
	expect_time(0, "1970-01-01T00:00:00.000Z");
	expect_time(-1, "1969-12-31T23:59:59.999Z");
	expect_time(T10 + 123, "2023-09-15T10:00:00.123Z");
	expect_time(1709251199999LL, "2024-02-29T23:59:59.999Z");	/* leap day */
	expect_time(1709251200000LL, "2024-03-01T00:00:00.000Z");
	expect_time(4102444800000LL, "2100-01-01T00:00:00.000Z");

	use_tz("Europe/Berlin");
	expect_time(T10 + 123, "2023-09-15T12:00:00.123+02:00");
	expect_time(1673784000000LL, "2023-01-15T13:00:00.000+01:00");
	/* spring forward, 2023-03-26 01:00Z */
	expect_time(1679792399999LL, "2023-03-26T01:59:59.999+01:00");
	expect_time(1679792400000LL, "2023-03-26T03:00:00.000+02:00");
	/* fall back, 2023-10-29 01:00Z: the same local hour twice */
	expect_time(1698541199999LL, "2023-10-29T02:59:59.999+02:00");
	expect_time(1698541200000LL, "2023-10-29T02:00:00.000+01:00");
	/* back and forth across the change: the cache must not stick */
	expect_time(1698541199999LL, "2023-10-29T02:59:59.999+02:00");

	use_tz("America/St_Johns");	/* negative, half hour */
	expect_time(T10, "2023-09-15T07:30:00.000-02:30");
	use_tz("Asia/Kolkata");
	expect_time(T10, "2023-09-15T15:30:00.000+05:30");
	use_tz("Australia/Lord_Howe");	/* a half-hour DST shift at 15:30Z */
	expect_time(1696087799999LL, "2023-10-01T01:59:59.999+10:30");
	expect_time(1696087800000LL, "2023-10-01T02:30:00.000+11:00");
	use_tz("Etc/GMT+5");
	expect_time(0, "1969-12-31T19:00:00.000-05:00");

	/* a short buffer is cut and terminated; the length is the full one */
	char small[8];
	assert_int_equal(cache_time_format(0, small, sizeof(small)), 29);
	assert_string_equal(small, "1969-12");
	use_tz("UTC");
	expect_time(0, "1970-01-01T00:00:00.000Z");
}

static void test_render_tz(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	int64_t rows;
	char *got;

	use_tz("Europe/Berlin");
	got = render(fx->c, &q, CACHE_CSV, &rows);
	assert_int_equal(strncmp(got + strlen(csv_header),
				 "2023-09-15T12:00:00.123+02:00,2023-09-15T12:00:01.623+02:00,1.500,"
				 "TCP,", 70), 0);
	/* ts stays UTC seconds */
	assert_non_null(strstr(got, ",1694772000.123,1:abc+/=,0a1\n"));
	free(got);
	got = render(fx->c, &q, CACHE_NDJSON, &rows);
	assert_non_null(strstr(got, "{\"firstSeen\":\"2023-09-15T13:00:00.000+02:00\","
				    "\"lastSeen\":null"));
	free(got);
	use_tz("UTC");
}

/* ---- determinism and the SQLite export --------------------------------------------- */

static void test_deterministic_text(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0 - HOUR, DAY0 + 25 * HOUR);
	int64_t r1, r2;

	for (int f = CACHE_CSV; f <= CACHE_NDJSON; f++) {
		char *a = render(fx->c, &q, (enum cache_format)f, &r1);
		char *b = render(fx->c, &q, (enum cache_format)f, &r2);
		assert_int_equal(r1, 6);
		assert_int_equal(r1, r2);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static char *one_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const unsigned char *t = sqlite3_column_text(st, 0);
	v = strdup(t ? (const char *)t : "(null)");
	sqlite3_finalize(st);
	return v;
}

static void expect_sql(sqlite3 *db, const char *sql, const char *want)
{
	char *got = one_text(db, sql);
	if (strcmp(got, want) != 0)
		fail_msg("%s\n got: %s\nwant: %s", sql, got, want);
	free(got);
}

static void test_sqlite_export(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	struct cache_meta meta[3] = {
		{"ip", "192.0.2.10"}, {"collector", "http://127.0.0.1:8080/"}, {"version", "0.1.0"}};
	char a[600], b[600], err[CACHE_ERRLEN] = "";
	int64_t rows = -1;
	size_t la, lb;

	snprintf(a, sizeof(a), "%s/a.sqlite", fx->dir);
	snprintf(b, sizeof(b), "%s/b.sqlite", fx->dir);
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, a, meta, 3, &rows, err), 0);
	assert_int_equal(rows, 4);
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, b, meta, 3, &rows, err), 0);
	char *da = slurp(a, &la), *db_ = slurp(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(da, db_, la);
	/* a rollback-journal database: file format bytes 18 and 19 are 1 (WAL is 2) */
	assert_int_equal(da[18], 1);
	assert_int_equal(da[19], 1);
	free(da);
	free(db_);

	/* an existing file is never overwritten */
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, a, meta, 3, &rows, err),
			 -EEXIST);
	da = slurp(a, &la);
	assert_int_equal(la, lb);
	free(da);

	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	expect_sql(db, "PRAGMA page_size", "16384");
	expect_sql(db, "PRAGMA journal_mode", "delete");
	expect_sql(db, "SELECT group_concat(name, ',') FROM pragma_table_info('flows')",
		   "firstSeen,lastSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,flags,"
		   "packets,bytes,srcAS,dstAS,inIf,outIf,exporter,app,srcGroups,dstGroups,"
		   "icmpType,icmpCode,sampling,ts,communityId,flowId,start_ms,end_ms,proto_num,"
		   "tcp_flags_num,exporter_id,app_id,in_if_num,out_if_num,src_groups_ids,"
		   "dst_groups_ids,extra");
	/* records with nothing beyond the columns cost nothing: NULL */
	expect_sql(db, "SELECT count(*) FROM flows WHERE extra IS NOT NULL", "0");
	expect_sql(db, "PRAGMA user_version", "2");
	expect_sql(db, "SELECT group_concat(flowId, ' ') FROM flows", "0a1 0a2 0b1 0c1");
	expect_sql(db, "SELECT firstSeen || '|' || duration || '|' || typeof(duration) || '|' ||"
		       " srcPort || typeof(srcPort) || '|' || inIf || '|' || outIf ||"
		       " typeof(outIf) || '|' || app || '|' || srcGroups || '|' || ts || '|' ||"
		       " start_ms || '|' || end_ms || '|' || proto_num || '|' || tcp_flags_num ||"
		       " '|' || exporter_id || '|' || app_id || '|' || in_if_num || '|' ||"
		       " out_if_num || '|' || src_groups_ids || '|' || dst_groups_ids"
		       " FROM flows WHERE flowId='0a1'",
		   "2023-09-15T10:00:00.123Z|1.5|real|51515integer|xe-0/0/1|515text|"
		   "SIP, \"VoIP\"|DMZ, \"public\";NAT\ngateways|1694772000.123|1694772000123|"
		   "1694772001623|6|27|2|160|514|515|12;14|15;99");
	expect_sql(db, "SELECT quote(lastSeen) || quote(duration) || quote(flags) ||"
		       " quote(proto) || quote(proto_num) || quote(end_ms) || quote(srcPort)"
		       " FROM flows WHERE flowId='0c1'",
		   "NULLNULLNULL'253'253NULLNULL");
	expect_sql(db, "SELECT group_concat(key || '=' || value, ';') FROM query",
		   "ip=192.0.2.10;collector=http://127.0.0.1:8080/;version=0.1.0");
	expect_sql(db, "SELECT group_concat(start_ms || ',' || end_ms || ',' || fetched_ms ||"
		       " ',' || provisional || ',' || records, ';') FROM coverage",
		   "1694732400000,1694779200000,5000,0,6;1694779200001,1694826000000,6000,0,0");
	expect_sql(db, "SELECT group_concat(start_ms || ',' || end_ms || ',' || peer || ',' ||"
		       " seen || ',' || reason, ';') FROM gaps",
		   "1694779200000,1694779200001,198.51.100.7,10000,"
		   "saturated at 1 ms and a /32 peer");
	sqlite3_close(db);
	char j[700];
	snprintf(j, sizeof(j), "%s-journal", a);
	assert_int_equal(access(j, F_OK), -1);

	/* a missing path or stream is refused */
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, NULL, NULL, 0, &rows, err),
			 -EINVAL);
	assert_int_equal(cache_render(fx->c, &q, CACHE_CSV, NULL, NULL, NULL, 0, &rows, err),
			 -EINVAL);
	/* a directory that does not exist: an error, no file */
	snprintf(b, sizeof(b), "%s/no/such/dir.sqlite", fx->dir);
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, b, NULL, 0, &rows, err),
			 -ENOENT);
}

/* The export is the same file whatever was written to the cache between two
 * renders, as long as the query's rows are the same. */
static void test_sqlite_export_stable(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q6 = Q("2001:db8::10", NULL, DAY0, DAY0 + 24 * HOUR);
	char a[600], b[600], err[CACHE_ERRLEN] = "";
	int64_t rows;
	size_t la, lb;

	snprintf(a, sizeof(a), "%s/s1.sqlite", fx->dir);
	snprintf(b, sizeof(b), "%s/s2.sqlite", fx->dir);
	assert_int_equal(cache_render(fx->c, &q6, CACHE_SQLITE, NULL, a, NULL, 0, &rows, err), 0);
	assert_int_equal(rows, 2);
	struct flow_rec other = R("zz", T10, T10, 6, "192.0.2.99", 1, "192.0.2.98", 2);
	struct cache_query qo = Q("192.0.2.99", NULL, DAY0, DAY0 + HOUR);
	assert_int_equal(cache_put_window(fx->c, &qo, &other, 1, NULL, err), 0);
	assert_int_equal(cache_render(fx->c, &q6, CACHE_SQLITE, NULL, b, NULL, 0, &rows, err), 0);
	char *da = slurp(a, &la), *db_ = slurp(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(da, db_, la);
	free(da);
	free(db_);
}

/* ---- flows.sqlite against render_fields, on random flows -------------------------------- */

/* The writer flows.sqlite had before it was filled in SQL, kept as the
 * oracle: render_fields' 25 fields bound as they are spelled, then the raw
 * values.  NULL for an unknown raw number. */
static void oracle_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static void oracle_ids(sqlite3_stmt *st, int i, const uint32_t *g, uint8_t n)
{
	char buf[CACHE_GROUPS_MAX * 11];
	size_t len = 0;

	if (n == 0) {
		sqlite3_bind_null(st, i);
		return;
	}
	for (int k = 0; k < n && k < CACHE_GROUPS_MAX; k++) {
		if (k)
			buf[len++] = ';';
		len += cache_i64_text(g[k], buf + len);
	}
	sqlite3_bind_text(st, i, buf, (int)len, SQLITE_TRANSIENT);
}

static void oracle_bind(sqlite3_stmt *st, const struct render_row *row, const struct flow_rec *r)
{
	for (int i = 0; i < RENDER_NCOLS; i++) {
		const struct render_field *f = &row->f[i];
		if (f->kind == RK_NULL)
			sqlite3_bind_null(st, i + 1);
		else if (f->kind == RK_INT)
			sqlite3_bind_int64(st, i + 1, f->num);
		else if (f->kind == RK_MS)
			sqlite3_bind_double(st, i + 1, (double)f->num / 1000.0);
		else
			sqlite3_bind_text(st, i + 1, f->s, (int)f->len, SQLITE_TRANSIENT);
	}
	int k = RENDER_NCOLS + 1;
	sqlite3_bind_int64(st, k++, r->start_ms);
	oracle_opt(st, k++, r->end_ms);
	oracle_opt(st, k++, r->proto);
	oracle_opt(st, k++, r->tcp_flags);
	oracle_opt(st, k++, r->exporter);
	oracle_opt(st, k++, r->app);
	oracle_opt(st, k++, r->in_if);
	oracle_opt(st, k++, r->out_if);
	oracle_ids(st, k++, r->src_groups, r->nsrc_groups);
	oracle_ids(st, k++, r->dst_groups, r->ndst_groups);
	size_t xl = strnlen(r->extra, sizeof(r->extra) - 1);
	if (xl)
		sqlite3_bind_text(st, k++, r->extra, (int)xl, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, k++);
}

/* Fill table o.flows of db row by row: the cache's rows of q through
 * cache_row_decode and render_fields. */
static void oracle_fill(struct cache *c, const struct cache_query *q, sqlite3 *db)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN], err[CACHE_ERRLEN] = "";
	char sql[512] = "INSERT INTO o.flows VALUES (?";
	struct render_ctx *ctx;
	struct render_row *row = malloc(sizeof(*row));
	struct flow_rec rec;
	sqlite3_stmt *ins;

	assert_non_null(row);
	for (int i = 1; i < 36; i++)
		strcat(sql, ",?");
	strcat(sql, ")");
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ins, NULL), SQLITE_OK);
	if (render_begin(c, &ctx, err))
		fail_msg("render_begin: %s", err);
	sqlite3_stmt *src = c->st[q->has_peer ? ST_FLOWS_PEER : ST_FLOWS];
	cache_query_keys(q, subject, peer);
	assert_int_equal(cache_bind_query(src, q, subject), SQLITE_OK);
	while (sqlite3_step(src) == SQLITE_ROW) {
		cache_row_decode(src, &rec);
		render_fields(ctx, &rec, row);
		oracle_bind(ins, row, &rec);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_reset(src);
	render_end(c, ctx);
	sqlite3_finalize(ins);
	free(row);
}

/* xorshift64*: the same random flows on every run. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* A number in [0, n), or -1 (unknown) about one time in 'unknown'. */
static int64_t rnd_opt(uint64_t *s, int64_t n, int unknown)
{
	if (unknown && rnd_next(s) % (uint64_t)unknown == 0)
		return -1;
	return (int64_t)(rnd_next(s) % (uint64_t)n);
}

static void rnd_text(uint64_t *s, char *out, size_t max, const char *alphabet)
{
	size_t n = 1 + rnd_next(s) % (max - 1), an = strlen(alphabet);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[rnd_next(s) % an];
	out[n] = '\0';
}

/* A random flow of subject (one side of it) on the day from day0. */
static struct flow_rec rnd_flow(uint64_t *s, const char *subject, int64_t day0)
{
	static const int protos[] = {-1, 0, 1, 6, 6, 6, 17, 17, 47, 58, 132, 253};
	char a[64], peer_text[64];
	struct flow_rec r;

	memset(&r, 0, sizeof(r));
	rnd_text(s, r.id, sizeof(r.id), "0123456789abcdef,\" xyz\xc3\xa9");
	r.start_ms = day0 + (int64_t)(rnd_next(s) % (uint64_t)(24 * HOUR));
	r.end_ms = rnd_next(s) % 8 == 0 ? -1 : r.start_ms + (int64_t)(rnd_next(s) % 600000);
	if (strchr(subject, ':'))
		snprintf(peer_text, sizeof(peer_text), "2001:db8:%x::%x",
			 (unsigned)(rnd_next(s) % 3), (unsigned)(rnd_next(s) % 65536));
	else
		snprintf(peer_text, sizeof(peer_text), "198.51.100.%u", (unsigned)(rnd_next(s) % 256));
	snprintf(a, sizeof(a), "%s", subject);
	bool out = rnd_next(s) % 2;
	memcpy(r.src, P(out ? a : peer_text).addr, 16);
	memcpy(r.dst, P(out ? peer_text : a).addr, 16);
	r.proto = protos[rnd_next(s) % (sizeof(protos) / sizeof(protos[0]))];
	r.sport = (int32_t)rnd_opt(s, 65536, 6);
	r.dport = (int32_t)rnd_opt(s, 65536, 6);
	r.tcp_flags = (int32_t)rnd_opt(s, 256, 4);
	r.icmp_type = (int32_t)rnd_opt(s, 256, 3);
	r.icmp_code = (int32_t)rnd_opt(s, 256, 3);
	r.pkts = rnd_opt(s, 1000000, 10);
	r.bytes = rnd_opt(s, INT64_C(1) << 40, 10);
	r.src_as = rnd_opt(s, 4294967296, 3);
	r.dst_as = rnd_opt(s, 4294967296, 3);
	r.sampling = rnd_opt(s, 1000, 3);
	r.exporter = rnd_opt(s, 6, 5);
	r.in_if = rnd_opt(s, 12, 5);
	r.out_if = rnd_opt(s, 12, 5);
	r.app = rnd_opt(s, 40, 5);
	r.nsrc_groups = (uint8_t)(rnd_next(s) % 5);
	r.ndst_groups = (uint8_t)(rnd_next(s) % (rnd_next(s) % 9 == 0 ? CACHE_GROUPS_MAX + 1 : 3));
	for (int k = 0; k < r.nsrc_groups; k++)
		r.src_groups[k] = (uint32_t)(rnd_next(s) % 30);
	for (int k = 0; k < r.ndst_groups; k++)
		r.dst_groups[k] = (uint32_t)(rnd_next(s) % 30);
	if (rnd_next(s) % 4)
		rnd_text(s, r.community_id, sizeof(r.community_id),
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
	if (rnd_next(s) % 5 == 0)
		snprintf(r.extra, sizeof(r.extra), "{\"vlan\":%u,\"note\":\"a,\\\"b\\\"\"}",
			 (unsigned)(rnd_next(s) % 4096));
	return r;
}

/* Random lookup tables: names for about two keys in three, hostile ones
 * among them. */
static void rnd_lookups(struct cache *c, uint64_t *s)
{
	static const char *const names[] = {"web", "DMZ, \"public\"", "NAT\ngateways", "=cmd",
					    "x\xc3\xa9y", "a;b", "  spaced  "};
	struct cache_lookup *rows = calloc(200, sizeof(*rows));
	const struct {
		enum cache_table t;
		int keys, keys2;
	} tabs[] = {{CACHE_APPS, 40, 1}, {CACHE_GROUPS, 30, 1}, {CACHE_EXPORTERS, 6, 1},
		    {CACHE_IFS, 6, 12}};

	assert_non_null(rows);
	for (size_t t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++) {
		size_t n = 0;
		for (int k = 0; k < tabs[t].keys; k++)
			for (int k2 = 0; k2 < tabs[t].keys2; k2++) {
				if (rnd_next(s) % 3 == 0)
					continue;
				rows[n].key = k;
				rows[n].key2 = tabs[t].t == CACHE_IFS ? k2 : 0;
				snprintf(rows[n].name, sizeof(rows[n].name), "%s-%d.%d",
					 names[rnd_next(s) % 7], k, k2);
				n++;
			}
		put_lookup(c, tabs[t].t, rows, n);
	}
	free(rows);
}

/* Compare every column of main.flows with o.flows, row by row: the same
 * value and the same type. */
static void expect_same_flows(sqlite3 *db, int64_t rows)
{
	char sql[600];
	sqlite3_stmt *cols;

	snprintf(sql, sizeof(sql), "%lld", (long long)rows);
	expect_sql(db, "SELECT count(*) FROM o.flows", sql);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('flows')", -1,
					    &cols, NULL), SQLITE_OK);
	int n = 0;
	while (sqlite3_step(cols) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(cols, 0);
		snprintf(sql, sizeof(sql),
			 "SELECT coalesce(min(n.rowid) || ': ' || quote(n.\"%s\") || ' <> ' ||"
			 " quote(x.\"%s\"), 'same') FROM main.flows n JOIN o.flows x"
			 " ON n.rowid=x.rowid WHERE n.\"%s\" IS NOT x.\"%s\""
			 " OR typeof(n.\"%s\") <> typeof(x.\"%s\")", c, c, c, c, c, c);
		char *got = one_text(db, sql);
		if (strcmp(got, "same") != 0)
			fail_msg("flows.sqlite column %s differs from render_fields' at row %s", c, got);
		free(got);
		n++;
	}
	sqlite3_finalize(cols);
	assert_int_equal(n, 36);
	snprintf(sql, sizeof(sql), "%lld", (long long)rows);
	expect_sql(db, "SELECT count(*) FROM main.flows n JOIN o.flows x ON n.rowid=x.rowid", sql);
}

/* flows.sqlite, filled in SQL, holds exactly what render_fields decides for
 * every column of every row: 3,000 random flows of an IPv4 and an IPv6
 * subject (unknowns, ICMP and TCP, names present and missing, hostile
 * names, more groups than are kept, Community IDs, extra), across the day
 * the clocks went back in Europe/Berlin, with and without a peer. */
static void test_sqlite_random(void **state)
{
	struct fixture *fx = *state;
	const int64_t day0 = 1698530400000LL;	/* 2023-10-29T00:00+02:00, 25 hours */
	const char *subjects[2] = {"192.0.2.77", "2001:db8::77"};
	enum { N = 1500 };
	char err[CACHE_ERRLEN] = "", path[600], schema[2048];
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct flow_rec *v = calloc(N, sizeof(*v));

	assert_non_null(v);
	use_tz("Europe/Berlin");
	rnd_lookups(fx->c, &seed);
	for (int sj = 0; sj < 2; sj++) {
		for (int i = 0; i < N; i++)
			v[i] = rnd_flow(&seed, subjects[sj], day0);
		struct cache_query q = Q(subjects[sj], NULL, day0, day0 + 25 * HOUR);
		assert_int_equal(cache_put_window(fx->c, &q, v, N, NULL, err), 0);
	}
	free(v);
	struct cache_query qs[3] = {
		Q(subjects[0], NULL, day0, day0 + 25 * HOUR),
		Q(subjects[1], NULL, day0, day0 + 25 * HOUR),
		Q(subjects[0], "198.51.100.0/25", day0 + HOUR, day0 + 20 * HOUR),
	};
	for (int k = 0; k < 3; k++) {
		int64_t rows = -1;
		sqlite3 *db;
		snprintf(path, sizeof(path), "%s/random%d.sqlite", fx->dir, k);
		if (cache_render(fx->c, &qs[k], CACHE_SQLITE, NULL, path, NULL, 0, &rows, err))
			fail_msg("cache_render: %s", err);
		assert_true(rows > (k == 2 ? 100 : N / 2));
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		char *sql = one_text(db, "SELECT sql FROM sqlite_schema WHERE name='flows'");
		assert_int_equal(strncmp(sql, "CREATE TABLE flows(", 19), 0);
		snprintf(schema, sizeof(schema), "CREATE TABLE o.flows(%s", sql + 19);
		free(sql);
		assert_int_equal(sqlite3_exec(db, "ATTACH ':memory:' AS o", NULL, NULL, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
		oracle_fill(fx->c, &qs[k], db);
		expect_same_flows(db, rows);
		sqlite3_close(db);
	}
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_write_error(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	char err[CACHE_ERRLEN] = "";
	int64_t rows = -1;
	FILE *f = fopen("/dev/full", "w");

	if (!f)
		skip();
	assert_int_equal(cache_render(fx->c, &q, CACHE_CSV, f, NULL, NULL, 0, &rows, err),
			 -ENOSPC);
	assert_non_null(strstr(err, "write"));
	fclose(f);
	/* the cache is fine afterwards */
	char *got = render(fx->c, &q, CACHE_CSV, &rows);
	assert_int_equal(rows, 4);
	free(got);
}

/* cache_set_cancel: a render whose cancel is set stops with -EINTR and
 * leaves no file; cleared, or the hook removed, it renders every row. */
static void test_cancel(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.50", NULL, DAY0, DAY0 + 24 * HOUR);
	char path[600], j[700], err[CACHE_ERRLEN] = "", *buf = NULL;
	size_t len = 0;
	int64_t rows = -1;
	atomic_int cancel = 1;
	enum { N = 20000 };	/* far more than CACHE_CANCEL_STEPS steps */
	struct flow_rec *v = calloc(N, sizeof(*v));

	assert_non_null(v);
	for (int i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof(id), "c%05d", i);
		v[i] = R(id, T10 + i, T10 + i + 5, 17, "192.0.2.50", 53, "198.51.100.9", 5353);
	}
	assert_int_equal(cache_put_window(fx->c, &q, v, N, NULL, err), 0);
	free(v);
	snprintf(path, sizeof(path), "%s/cancelled.sqlite", fx->dir);
	snprintf(j, sizeof(j), "%s-journal", path);

	cache_set_cancel(fx->c, &cancel);
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(cache_render(fx->c, &q, CACHE_CSV, f, NULL, NULL, 0, &rows, err),
			 -EINTR);
	assert_non_null(strstr(err, "interrupt"));
	fclose(f);
	free(buf);
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, path, NULL, 0, &rows, err),
			 -EINTR);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(j, F_OK), -1);
	f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(cache_render_summary(fx->c, &q, f, err), -EINTR);
	fclose(f);

	atomic_store(&cancel, 0);	/* the hook stays, nothing to stop */
	free(render(fx->c, &q, CACHE_CSV, &rows));
	assert_int_equal(rows, N);
	atomic_store(&cancel, 1);
	cache_set_cancel(fx->c, NULL);	/* no hook: the flag is not looked at */
	assert_int_equal(cache_render(fx->c, &q, CACHE_SQLITE, NULL, path, NULL, 0, &rows, err),
			 0);
	assert_int_equal(rows, N);
}

/* ---- hostile cache rows ---------------------------------------------------------------- */

/* Render into a string with the rc expected; err's message is returned too. */
static char *render_rc(int (*fn)(struct cache *, FILE *, const void *, char *),
		       struct cache *c, const void *arg, int want, char *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	err[0] = '\0';
	int rc = fn(c, f, arg, err);
	if (rc != want)
		fail_msg("rc %d (%s), want %d", rc, err, want);
	fclose(f);
	return buf;
}

static int do_csv(struct cache *c, FILE *f, const void *q, char *err)
{
	return cache_render(c, q, CACHE_CSV, f, NULL, NULL, 0, NULL, err);
}

static int do_ndjson(struct cache *c, FILE *f, const void *q, char *err)
{
	return cache_render(c, q, CACHE_NDJSON, f, NULL, NULL, 0, NULL, err);
}

static int do_summary(struct cache *c, FILE *f, const void *q, char *err)
{
	return cache_render_summary(c, q, f, err);
}

static int do_lookup(struct cache *c, FILE *f, const void *t, char *err)
{
	return cache_render_lookup(c, *(const enum cache_table *)t, f, err);
}

/*
 * A name of 200 KiB planted in each lookup table on a second connection (a
 * row this program never writes: it stores names of at most CACHE_NAME_MAX
 * bytes), of quotes and ESCs, which flows.csv doubles and flows.ndjson
 * writes as \u001b, so that either would be larger than the 256 KiB output
 * buffer.  Before: ASan, heap-buffer-overflow in render_csv_field and
 * ndjson_string.  Now the row is refused when the tables are loaded: the
 * application, exporter, interface and group show as their numbers, as an
 * id the collector does not name does, and collector/'s CSV leaves the
 * name empty.
 */
static void test_planted_long_name(void **state)
{
	struct fixture *fx = *state;
	char sql[256], err[CACHE_ERRLEN];
	struct flow_rec r = R("L1", T10 + 9, T10 + 10, 17, "192.0.2.30", 1, "192.0.2.31", 2);
	struct cache_query q = Q("192.0.2.30", NULL, DAY0, DAY0 + 24 * HOUR);

	r.app = 401;
	r.exporter = 401;
	r.in_if = 7;
	r.nsrc_groups = 1;
	r.src_groups[0] = 401;
	assert_int_equal(cache_put_window(fx->c, &q, &r, 1, NULL, err), 0);
	for (int t = 0; t < CACHE_NTABLES; t++) {
		snprintf(sql, sizeof(sql), "INSERT INTO lookup(tbl,key,key2,name,extra) VALUES"
			 " (%d,401,%d,replace(hex(zeroblob(102400)),'00','\"'||char(27)),'x')",
			 t, t == CACHE_IFS ? 7 : 0);
		side_sql(fx->c, sql);
	}

	char *got = render_rc(do_csv, fx->c, &q, 0, err);
	assert_true(strlen(got) < 1000);
	assert_non_null(strstr(got, ",7,,401,401,401,,"));	/* inIf .. dstGroups */
	free(got);
	got = render_rc(do_ndjson, fx->c, &q, 0, err);
	assert_true(strlen(got) < 1000);
	assert_non_null(strstr(got, "\"inIf\":\"7\",\"outIf\":null,\"exporter\":\"401\","
				    "\"app\":\"401\",\"srcGroups\":\"401\","));
	free(got);
	got = render_rc(do_summary, fx->c, &q, 0, err);
	assert_true(strlen(got) < 10000);
	assert_null(strchr(got, 0x1b));
	free(got);
	for (int t = 0; t < CACHE_NTABLES; t++) {
		enum cache_table tt = (enum cache_table)t;
		got = render_rc(do_lookup, fx->c, &tt, 0, err);
		assert_true(strlen(got) < 1000);
		assert_null(strchr(got, 0x1b));
		assert_non_null(strstr(got, "\n401,"));
		free(got);
	}

	/* a name of exactly CACHE_NAME_MAX bytes is a name; a NUL in one is
	 * not (this program never stores one) */
	snprintf(sql, sizeof(sql), "UPDATE lookup SET name=substr(hex(zeroblob(%d)),1,%d)"
		 " WHERE tbl=%d AND key=401", CACHE_NAME_MAX, CACHE_NAME_MAX, CACHE_APPS);
	side_sql(fx->c, sql);
	snprintf(sql, sizeof(sql), "UPDATE lookup SET name=CAST(x'61006263' AS TEXT)"
		 " WHERE tbl=%d AND key=401", CACHE_EXPORTERS);
	side_sql(fx->c, sql);
	got = render_rc(do_csv, fx->c, &q, 0, err);
	char want[CACHE_NAME_MAX + 8];
	memset(want, '0', CACHE_NAME_MAX);
	snprintf(want + CACHE_NAME_MAX, 8, ",401,");
	assert_non_null(strstr(got, ",7,,401,"));		/* the exporter: no name */
	assert_non_null(strstr(got, want));			/* the application's */
	free(got);
}

/* render_room: an item larger than the whole output buffer can never fit:
 * false, the buffer untouched, and the error kept (before: true after a
 * flush, and the caller wrote past the buffer). */
static void test_render_room(void **state)
{
	(void)state;
	char err[CACHE_ERRLEN] = "", *text = NULL;
	size_t tlen = 0;
	struct render_out o = {.f = open_memstream(&text, &tlen)};

	assert_non_null(o.f);
	o.buf = malloc(RENDER_OUTBUF);
	assert_non_null(o.buf);
	/* an item that fits the buffer but not what is left of it: flushed */
	memset(o.buf, 'a', RENDER_OUTBUF);
	o.n = RENDER_OUTBUF - 5;
	assert_true(render_room(&o, RENDER_OUTBUF));
	assert_int_equal(o.n, 0);
	assert_int_equal(o.err, 0);
	render_put(&o, "xyz", 3);
	/* one byte more than the whole buffer: never */
	assert_false(render_room(&o, (size_t)RENDER_OUTBUF + 1));
	assert_int_equal(o.err, -EOVERFLOW);
	assert_int_equal(o.n, 3);
	render_put(&o, (const char *)o.buf, (size_t)RENDER_OUTBUF + 1);
	assert_int_equal(o.n, 3);
	assert_int_equal(render_finish(&o, err), -EOVERFLOW);
	assert_non_null(strstr(err, "larger than"));
	fclose(o.f);
	assert_int_equal(tlen, RENDER_OUTBUF - 5);	/* what was flushed before, only */
	free(text);
	free(o.buf);
}

static void test_helpers(void **state)
{
	(void)state;
	char fl[9];

	assert_string_equal(cache_proto_name(6), "TCP");
	assert_string_equal(cache_proto_name(17), "UDP");
	assert_string_equal(cache_proto_name(1), "ICMP");
	assert_string_equal(cache_proto_name(58), "ICMP6");
	assert_string_equal(cache_proto_name(47), "GRE");
	assert_string_equal(cache_proto_name(50), "ESP");
	assert_null(cache_proto_name(253));
	assert_null(cache_proto_name(-1));
	cache_tcp_flags(0x1b, fl);
	assert_string_equal(fl, "...AP.SF");
	cache_tcp_flags(0xff, fl);
	assert_string_equal(fl, "CEUAPRSF");
	cache_tcp_flags(0, fl);
	assert_string_equal(fl, "........");
	cache_tcp_flags(0x80 | 0x04, fl);
	assert_string_equal(fl, "C....R..");
	cache_tcp_flags(-1, fl);
	assert_string_equal(fl, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ndjson, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ndjson_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_tz, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_export_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_long_name, setup, teardown),
		cmocka_unit_test(test_render_room),
	};
	return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
