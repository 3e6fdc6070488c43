/*
 * test_report.c - unit tests of the reports (cache/report.c): summary.txt
 * byte for byte for a handful of hand-made flows (unknown counts, a
 * protocol without a name, hostile application names, two gaps), its top
 * lists past ten keys (ties by key), its hours in zones with half-hour
 * offsets and on a DST day; timeline.svg well formed, with its title, one
 * bar per non-empty bin, gaps, escaped hostile text, round bins and a log
 * scale on which ordinary bins show beside a flood; the lookup tables
 * as CSV byte for byte with hostile names; a live range's status line and
 * hours not yet exported; the subjects
 * round trip; determinism; bad arguments and write errors.
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

#include "cache.h"

#define DAY0 1694736000000LL	/* 2023-09-15T00:00:00Z */
#define HOUR 3600000LL
#define MIN 60000LL
#define T09 (DAY0 + 9 * HOUR)
#define T13 (DAY0 + 13 * HOUR)

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------ */

/* A flow with every optional field unknown but the ports. */
static struct flow_rec R(const char *id, int64_t start, int proto, const char *src, int sport,
			 const char *dst, int dport)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.start_ms = start;
	r.end_ms = start + 1000;
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

/* R with packets, bytes and application. */
static struct flow_rec RB(const char *id, int64_t start, int proto, const char *src, int sport,
			  const char *dst, int dport, int64_t pkts, int64_t bytes, int64_t app)
{
	struct flow_rec r = R(id, start, proto, src, sport, dst, dport);
	r.pkts = pkts;
	r.bytes = bytes;
	r.app = app;
	return r;
}

static void put(struct cache *c, const struct cache_query *q, struct flow_rec *r, size_t n,
		int64_t cs, int64_t ce)
{
	char err[CACHE_ERRLEN] = "";
	struct cache_cover cv = {cs, ce, 5000, false, (int64_t)n};
	if (cache_put_window(c, q, r, n, ce > cs ? &cv : NULL, err))
		fail_msg("cache_put_window: %s", err);
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
 * The cache every test reads: lookup tables with hostile names (commas,
 * quotes, newlines, a leading '=', markup, an ESC), six flows of 192.0.2.10
 * between 09:00 and 13:00 UTC and two just outside, coverage of that range
 * but for two gaps: a millisecond at 12:00 and five minutes at 12:15 (whose
 * reason is hostile too).
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct cache_identity id = {"http://127.0.0.1:8080/", "flowsim", "flowapi"};
	char err[CACHE_ERRLEN] = "";

	use_tz("UTC");
	fx->dir = strdup("/tmp/test_report.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (cache_open(fx->dir, &id, &fx->c, err)) {
		fprintf(stderr, "cache_open: %s\n", err);
		return -1;
	}
	struct cache_lookup apps[4] = {
		{.key = 130, .name = "HTTPS"},
		{.key = 160, .name = "SIP, \"VoIP\""},
		{.key = 170, .name = "=HYPERLINK(\"x\")"},
		{.key = 180, .name = "NAT\ngate\x1b[2Jway"},
	};
	struct cache_lookup groups[4] = {
		{.key = 12, .key2 = 1, .name = "DMZ, \"public\""},
		{.key = 14, .key2 = 1, .name = "NAT\ngateways"},
		{.key = 15, .key2 = 0, .name = "<b>evil</b> & =cmd|' /C calc'!A0"},
		{.key = 16, .key2 = 12, .name = ""},
	};
	struct cache_lookup exporters[3] = {
		{.key = 2, .name = "edge-rt1", .extra = "192.0.2.1"},
		{.key = 3, .name = "core, \"main\"", .extra = "2001:db8::3"},
		{.key = 5, .name = "=lonely", .extra = ""},
	};
	struct cache_lookup ifs[4] = {
		{.key = 2, .key2 = 514, .name = "xe-0/0/1", .extra = "transit-A"},
		{.key = 2, .key2 = 515, .name = "", .extra = "no name"},
		{.key = 3, .key2 = 7, .name = "ge-0/0/7", .extra = "line1\nline2, \"x\""},
		{.key = 9, .key2 = 1, .name = "orphan", .extra = "exporter unknown"},
	};
	put_lookup(fx->c, CACHE_APPS, apps, 4);
	put_lookup(fx->c, CACHE_GROUPS, groups, 4);
	put_lookup(fx->c, CACHE_EXPORTERS, exporters, 3);
	put_lookup(fx->c, CACHE_IFS, ifs, 4);

	struct flow_rec v[8];
	v[0] = RB("a1", DAY0 + 10 * HOUR + 123, 6, "192.0.2.10", 51515, "198.51.100.7", 443, 12,
		  3456, 160);
	v[1] = R("a2", DAY0 + 10 * HOUR + 123, 17, "198.51.100.8", 53, "192.0.2.10", 40000);
	v[1].app = 77;
	v[2] = RB("b1", DAY0 + 10 * HOUR + 5000, 1, "192.0.2.10", 0, "203.0.113.5", 0, 1, 84, 170);
	v[3] = RB("c1", DAY0 + 11 * HOUR, 253, "192.0.2.10", -1, "192.0.2.11", -1, 5, 500, -1);
	v[4] = RB("c2", DAY0 + 11 * HOUR + 30 * MIN, 6, "198.51.100.7", 443, "192.0.2.10", 51515,
		  10, 9000, 160);
	v[5] = RB("d1", DAY0 + 12 * HOUR + 30 * MIN, 6, "192.0.2.10", 51600, "198.51.100.9", 443, 2,
		  1000, 180);
	v[6] = RB("x1", T09 - 1, 6, "192.0.2.10", 1, "192.0.2.12", 2, 1, 1, 130);
	v[7] = RB("x2", T13, 6, "192.0.2.10", 1, "192.0.2.12", 2, 1, 1, 130);
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13);
	put(fx->c, &q, v, 8, T09, DAY0 + 12 * HOUR);
	put(fx->c, &q, NULL, 0, DAY0 + 12 * HOUR + 1, DAY0 + 12 * HOUR + 15 * MIN);
	put(fx->c, &q, NULL, 0, DAY0 + 12 * HOUR + 20 * MIN, T13);
	struct cache_gap g1 = {.start = DAY0 + 12 * HOUR, .end = DAY0 + 12 * HOUR + 1,
			       .peer = "198.51.100.7", .seen = 10000,
			       .reason = "saturated at 1 ms and a /32 peer"};
	struct cache_gap g2 = {.start = DAY0 + 12 * HOUR + 15 * MIN,
			       .end = DAY0 + 12 * HOUR + 20 * MIN, .peer = "", .seen = 0,
			       .reason = "HTTP 500 <script>alert(1)</script> & \"x\"\n\x1b[31m"};
	if (cache_put_gap(fx->c, &q, &g1, err) || cache_put_gap(fx->c, &q, &g2, err)) {
		fprintf(stderr, "put_gap: %s\n", err);
		return -1;
	}
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

enum what { W_SUMMARY, W_TIMELINE };

/* A report of q into a malloc'd string. */
static char *report(struct cache *c, const struct cache_query *q, enum what w)
{
	char *buf = NULL, err[CACHE_ERRLEN] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	rc = w == W_SUMMARY ? cache_render_summary(c, q, f, err)
			    : cache_render_timeline(c, q, f, err);
	if (rc)
		fail_msg("render: %d %s", rc, err);
	fclose(f);
	return buf;
}

/* A lookup table as CSV into a malloc'd string. */
static char *lookup_csv(struct cache *c, enum cache_table t)
{
	char *buf = NULL, err[CACHE_ERRLEN] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	assert_non_null(f);
	rc = cache_render_lookup(c, t, f, err);
	if (rc)
		fail_msg("cache_render_lookup: %d %s", rc, err);
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

/* How often needle occurs in s. */
static int occurrences(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The text between the line starting with 'from' and the next blank line
 * (or the end), malloc'd. */
static char *section(const char *text, const char *from)
{
	const char *a = strstr(text, from), *b;
	assert_non_null(a);
	b = strstr(a, "\n\n");
	b = b ? b + 1 : a + strlen(a);
	return strndup(a, (size_t)(b - a));
}

/* ---- summary.txt ------------------------------------------------------------------- */

static const char summary_want[] =
	"Summary of the flows of 192.0.2.10 (any peer)\n"
	"\n"
	"Query\n"
	"  subject         192.0.2.10\n"
	"  peer            any\n"
	"  from            2023-09-15T09:00:00.000Z\n"
	"  to              2023-09-15T13:00:00.000Z  (excluded; 4 h)\n"
	"  zone            UTC\n"
	"  gaps            2 (listed at the end: flows there may be missing)\n"
	"\n"
	"Totals\n"
	"  flows               6\n"
	"  packets            30  (unknown for 1 flow)\n"
	"  bytes           14040  (14 kB; unknown for 1 flow)\n"
	"  distinct peers      5\n"
	"  first flow      2023-09-15T10:00:00.123Z\n"
	"  last flow       2023-09-15T12:30:00.000Z  (start)\n"
	"\n"
	"Peers (all 5, by flows)\n"
	"  flows       %  bytes       %  peer\n"
	"      2   33.3%  12456   88.7%  198.51.100.7\n"
	"      1   16.7%    500    3.6%  192.0.2.11\n"
	"      1   16.7%      0    0.0%  198.51.100.8\n"
	"      1   16.7%   1000    7.1%  198.51.100.9\n"
	"      1   16.7%     84    0.6%  203.0.113.5\n"
	"\n"
	"Destination ports (all 3, by flows)\n"
	"  flows       %  bytes       %  port\n"
	"      2   33.3%   4456   31.7%  443/TCP\n"
	"      1   16.7%      0    0.0%  40000/UDP\n"
	"      1   16.7%   9000   64.1%  51515/TCP\n"
	"\n"
	"Protocols (all 4, by flows)\n"
	"  flows       %  bytes       %  protocol\n"
	"      3   50.0%  13456   95.8%  TCP\n"
	"      1   16.7%     84    0.6%  ICMP\n"
	"      1   16.7%      0    0.0%  UDP\n"
	"      1   16.7%    500    3.6%  253\n"
	"\n"
	"Applications (all 5, by flows)\n"
	"  flows       %  bytes       %  application\n"
	"      2   33.3%  12456   88.7%  SIP, \"VoIP\"\n"
	"      1   16.7%    500    3.6%  (unknown)\n"
	"      1   16.7%      0    0.0%  77\n"
	"      1   16.7%     84    0.6%  =HYPERLINK(\"x\")\n"
	"      1   16.7%   1000    7.1%  NAT\\ngate\\x1b[2Jway\n"
	"\n"
	"Volume by hour (# = flows)\n"
	"  hour               flows  bytes\n"
	"  2023-09-15T09:00Z      0      0\n"
	"  2023-09-15T10:00Z      3   3540  ########################################\n"
	"  2023-09-15T11:00Z      2   9500  ###########################\n"
	"  2023-09-15T12:00Z      1   1000  ##############\n"
	"\n"
	"Gaps: 2 (windows that could not be fetched whole: flows in them may be missing)\n"
	"  2023-09-15T12:00:00.000Z to 2023-09-15T12:00:00.001Z (1 ms): saturated at 1 ms and a"
	" /32 peer (peer 198.51.100.7, 10000 records seen)\n"
	"  2023-09-15T12:15:00.000Z to 2023-09-15T12:20:00.000Z (5 min): HTTP 500"
	" <script>alert(1)</script> & \"x\"\\n\\x1b[31m\n";

/* Every number above was checked by hand: the two flows at 08:59:59.999 and
 * 13:00:00.000 are outside; the UDP flow has no counts; ICMP and protocol
 * 253 have no ports; ties go by key (address, port, protocol number,
 * application id with unknown first); names are escaped, not dropped. */
static void test_summary(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13);
	char *got = report(fx->c, &q, W_SUMMARY);

	expect_text(got, summary_want);
	free(got);
}

/* A peer restricts every count; the gaps are those of the query with that
 * peer (none were met). */
static void test_summary_peer(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", "198.51.100.0/24", T09, T13);
	char *got = report(fx->c, &q, W_SUMMARY);
	char *peers = section(got, "Peers ");

	assert_non_null(
		strstr(got, "Summary of the flows between 192.0.2.10 and 198.51.100.0/24\n"));
	assert_non_null(strstr(got, "  peer            198.51.100.0/24\n"));
	assert_non_null(strstr(got, "  gaps            none\n"));
	assert_non_null(strstr(got, "  flows               4\n"));
	expect_text(peers, "Peers (all 3, by flows)\n"
			   "  flows       %  bytes       %  peer\n"
			   "      2   50.0%  12456   92.6%  198.51.100.7\n"
			   "      1   25.0%      0    0.0%  198.51.100.8\n"
			   "      1   25.0%   1000    7.4%  198.51.100.9\n");
	assert_non_null(strstr(got, "\nGaps: none\n"));
	assert_null(strstr(got, "203.0.113.5"));
	free(peers);
	free(got);
}

/*
 * Twelve peers: the top ten by flows and by bytes, each ordered by its
 * count and then by address (10.0.0.3 before 10.0.0.12, which a text sort
 * would swap).
 */
static void test_summary_top(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.20", NULL, T09, T13);
	struct flow_rec v[16];
	char id[16], peer[32];
	size_t n = 0;

	for (int k = 1; k <= 12; k++) {
		int flows = k == 3 || k == 12 ? 3 : 1;
		for (int i = 0; i < flows; i++) {
			snprintf(id, sizeof(id), "p%d.%d", k, i);
			snprintf(peer, sizeof(peer), "10.0.0.%d", k);
			v[n] = RB(id, DAY0 + 10 * HOUR + k * 1000 + i, 6, "192.0.2.20", 40000, peer,
				  443, 1, flows == 3 ? 10 : k == 1 ? 5000 : 10, 130);
			n++;
		}
	}
	put(fx->c, &q, v, n, T09, T13);
	char *got = report(fx->c, &q, W_SUMMARY);
	char *byflows = section(got, "Top 10 peers by flows");
	char *bybytes = section(got, "Top 10 peers by bytes");
	expect_text(byflows, "Top 10 peers by flows (of 12)\n"
			     "  flows       %  bytes       %  peer\n"
			     "      3   18.8%     30    0.6%  10.0.0.3\n"
			     "      3   18.8%     30    0.6%  10.0.0.12\n"
			     "      1    6.2%   5000   97.1%  10.0.0.1\n"
			     "      1    6.2%     10    0.2%  10.0.0.2\n"
			     "      1    6.2%     10    0.2%  10.0.0.4\n"
			     "      1    6.2%     10    0.2%  10.0.0.5\n"
			     "      1    6.2%     10    0.2%  10.0.0.6\n"
			     "      1    6.2%     10    0.2%  10.0.0.7\n"
			     "      1    6.2%     10    0.2%  10.0.0.8\n"
			     "      1    6.2%     10    0.2%  10.0.0.9\n");
	expect_text(bybytes, "Top 10 peers by bytes (of 12)\n"
			     "  flows       %  bytes       %  peer\n"
			     "      1    6.2%   5000   97.1%  10.0.0.1\n"
			     "      3   18.8%     30    0.6%  10.0.0.3\n"
			     "      3   18.8%     30    0.6%  10.0.0.12\n"
			     "      1    6.2%     10    0.2%  10.0.0.2\n"
			     "      1    6.2%     10    0.2%  10.0.0.4\n"
			     "      1    6.2%     10    0.2%  10.0.0.5\n"
			     "      1    6.2%     10    0.2%  10.0.0.6\n"
			     "      1    6.2%     10    0.2%  10.0.0.7\n"
			     "      1    6.2%     10    0.2%  10.0.0.8\n"
			     "      1    6.2%     10    0.2%  10.0.0.9\n");
	assert_non_null(strstr(got, "  distinct peers    12\n"));
	assert_non_null(strstr(got, "Destination ports (all 1, by flows)\n"));
	assert_non_null(strstr(got, "     16  100.0%   5150  100.0%  HTTPS\n"));
	free(byflows);
	free(bybytes);
	free(got);
}

/* Nothing stored for the subject: zeros, "none" everywhere, no first/last. */
static void test_summary_empty(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("2001:db8::77", "2001:db8:1::/48", T09, T09 + 2 * HOUR);
	char *got = report(fx->c, &q, W_SUMMARY);

	expect_text(got, "Summary of the flows between 2001:db8::77 and 2001:db8:1::/48\n"
			 "\n"
			 "Query\n"
			 "  subject         2001:db8::77\n"
			 "  peer            2001:db8:1::/48\n"
			 "  from            2023-09-15T09:00:00.000Z\n"
			 "  to              2023-09-15T11:00:00.000Z  (excluded; 2 h)\n"
			 "  zone            UTC\n"
			 "  gaps            none\n"
			 "\n"
			 "Totals\n"
			 "  flows           0\n"
			 "  packets         0\n"
			 "  bytes           0  (0 B)\n"
			 "  distinct peers  0\n"
			 "\n"
			 "Peers: none\n"
			 "\n"
			 "Destination ports: none\n"
			 "\n"
			 "Protocols: none\n"
			 "\n"
			 "Applications: none\n"
			 "\n"
			 "Volume by hour (# = flows)\n"
			 "  hour               flows  bytes\n"
			 "  2023-09-15T09:00Z      0      0\n"
			 "  2023-09-15T10:00Z      0      0\n"
			 "\n"
			 "Gaps: none\n");
	free(got);
}

/* Hours are the zone's: on the half hour in UTC for +05:30, 25 of them on
 * the day Berlin leaves summer time (02:00 twice, told apart by offset). */
static void test_summary_hours_zone(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13);
	char *got, *vol;

	use_tz("Asia/Kolkata");
	got = report(fx->c, &q, W_SUMMARY);
	vol = section(got, "Volume by hour");
	expect_text(vol, "Volume by hour (# = flows)\n"
			 "  hour                    flows  bytes\n"
			 "  2023-09-15T14:00+05:30      0      0\n"
			 "  2023-09-15T15:00+05:30      3   3540  "
			 "########################################\n"
			 "  2023-09-15T16:00+05:30      1    500  ##############\n"
			 "  2023-09-15T17:00+05:30      1   9000  ##############\n"
			 "  2023-09-15T18:00+05:30      1   1000  ##############\n");
	assert_non_null(strstr(got, "  from            2023-09-15T14:30:00.000+05:30\n"));
	assert_non_null(strstr(got, "  zone            Asia/Kolkata\n"));
	free(vol);
	free(got);

	/* 2023-10-29 00:00 CEST to 2023-10-30 00:00 CET: 25 hours */
	use_tz("Europe/Berlin");
	q = Q("192.0.2.10", NULL, 1698530400000LL, 1698620400000LL);
	got = report(fx->c, &q, W_SUMMARY);
	vol = section(got, "Volume by hour");
	assert_int_equal(occurrences(vol, "\n  2023-10-29T"), 25);
	assert_non_null(strstr(vol, "\n  2023-10-29T00:00+02:00 "));
	assert_non_null(strstr(vol, "\n  2023-10-29T02:00+02:00 "));
	assert_non_null(strstr(vol, "\n  2023-10-29T02:00+01:00 "));
	assert_non_null(strstr(vol, "\n  2023-10-29T23:00+01:00 "));
	assert_non_null(strstr(got, "(excluded; 1 d 1 h)"));
	free(vol);
	free(got);
}

/* A gap shows in the summary as soon as it is recorded (in a window with
 * no coverage), and goes once final coverage spans it. */
static void test_summary_gap(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T13, T13 + HOUR);
	struct cache_gap g = {.start = T13 + 40 * MIN, .end = T13 + 41 * MIN,
			      .peer = "198.51.100.0/24", .seen = 10000,
			      .reason = "retries exhausted"};
	char err[CACHE_ERRLEN] = "";
	char *got;

	got = report(fx->c, &q, W_SUMMARY);
	assert_non_null(strstr(got, "  gaps            none\n"));
	assert_non_null(strstr(got, "\nGaps: none\n"));
	free(got);
	assert_int_equal(cache_put_gap(fx->c, &q, &g, err), 0);
	got = report(fx->c, &q, W_SUMMARY);
	assert_non_null(strstr(got, "  gaps            1 (listed at the end"));
	assert_non_null(strstr(got, "\nGaps: 1 (windows that could not be fetched whole"));
	assert_non_null(strstr(got, "\n  2023-09-15T13:40:00.000Z to 2023-09-15T13:41:00.000Z"
				    " (1 min): retries exhausted (peer 198.51.100.0/24,"
				    " 10000 records seen)\n"));
	free(got);

	/* a range that does not reach it: not listed */
	q = Q("192.0.2.10", NULL, T09, T13 + 40 * MIN);
	got = report(fx->c, &q, W_SUMMARY);
	assert_null(strstr(got, "retries exhausted"));
	free(got);

	/* closed since by final coverage: gone */
	q = Q("192.0.2.10", NULL, T13, T13 + HOUR);
	put(fx->c, &q, NULL, 0, T13, T13 + HOUR);
	got = report(fx->c, &q, W_SUMMARY);
	assert_non_null(strstr(got, "\nGaps: none\n"));
	free(got);
}

/* ---- timeline.svg ------------------------------------------------------------------- */

/*
 * A small XML check: tags nest and close in order, attribute values are
 * quoted and hold no '<', every '&' starts one of the five entities, no
 * processing instruction, comment or script; one root, svg.
 */
static void expect_well_formed(const char *s)
{
	const char *stack[64];
	size_t lens[64];
	int depth = 0, roots = 0;
	const char *p = s;

	assert_memory_equal(s, "<svg ", 5);
	while (*p) {
		if (*p == '&') {
			static const char *const ent[] = {"&lt;", "&gt;", "&amp;", "&quot;",
							  "&apos;"};
			bool ok = false;
			for (int i = 0; i < 5; i++)
				ok = ok || strncmp(p, ent[i], strlen(ent[i])) == 0;
			if (!ok)
				fail_msg("bare '&' at %.40s", p);
			p++;
			continue;
		}
		if (*p != '<') {
			p++;
			continue;
		}
		if (p[1] == '/') {
			const char *name = p + 2;
			size_t len = strcspn(name, ">");
			if (depth == 0 || len != lens[depth - 1] ||
			    strncmp(name, stack[depth - 1], len) != 0)
				fail_msg("unbalanced close tag at %.40s", p);
			depth--;
			p = name + len + 1;
			continue;
		}
		const char *name = p + 1, *t;
		size_t len = strcspn(name, " \t\n/>");
		if (len == 0 || *name == '?' || *name == '!')
			fail_msg("unexpected markup at %.40s", p);
		if (strncmp(name, "script", 6) == 0)
			fail_msg("a script element");
		for (t = name + len; *t && *t != '>'; t++) {
			if (*t == '"') {
				const char *e = strchr(t + 1, '"');
				assert_non_null(e);
				for (const char *u = t + 1; u < e; u++)
					if (*u == '<')
						fail_msg("'<' in an attribute at %.40s", p);
				t = e;
			} else if (*t == '<') {
				fail_msg("'<' inside a tag at %.40s", p);
			}
		}
		assert_int_equal(*t, '>');
		if (depth == 0)
			roots++;
		if (t[-1] != '/') {
			assert_true(depth < 64);
			stack[depth] = name;
			lens[depth++] = len;
		}
		p = t + 1;
	}
	assert_int_equal(depth, 0);
	assert_int_equal(roots, 1);
}

/* The rects inside <g id="...">: how many, and (h not NULL) their
 * heights in order (at most max). */
static size_t bar_heights(const char *svg, const char *id, double *h, size_t max)
{
	char open[64];
	const char *a, *b;
	size_t n = 0;

	snprintf(open, sizeof(open), "<g id=\"%s\"", id);
	a = strstr(svg, open);
	assert_non_null(a);
	b = strstr(a, "</g>");
	assert_non_null(b);
	for (const char *p = strstr(a, "<rect"); p && p < b && n < max; p = strstr(p + 1, "<rect")) {
		const char *v = strstr(p, "height=\"");
		assert_non_null(v);
		if (h)
			h[n] = strtod(v + 8, NULL);
		n++;
	}
	return n;
}

static int bars(const char *svg, const char *id)
{
	return (int)bar_heights(svg, id, NULL, SIZE_MAX);
}

static void test_timeline(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13);
	char *got;
	size_t len;

	use_tz("<+0530>-5:30");	/* POSIX: a zone name in angle brackets */
	got = report(fx->c, &q, W_TIMELINE);
	len = strlen(got);
	expect_well_formed(got);
	assert_true(len > 7 && strcmp(got + len - 7, "</svg>\n") == 0);
	assert_non_null(strstr(got, "<title>Flows of 192.0.2.10 (any peer), "
				    "2023-09-15T14:30:00.000+05:30 to 2023-09-15T18:30:00.000+05:30"
				    "</title>"));
	assert_non_null(strstr(got, ">Flows of 192.0.2.10 (any peer)</text>"));
	assert_non_null(strstr(got, "(zone &lt;+0530&gt;-5:30): 6 flows, 14 kB, bins of 1 min<"));
	/* 4 h in 1-minute bins; flows in four of them: 10:00 (three), 11:00,
	 * 11:30 and 12:30; bytes in the same four */
	assert_int_equal(bars(got, "flows-bars"), 4);
	assert_int_equal(bars(got, "bytes-bars"), 4);
	/* two gaps, shaded on both plots, the hostile reason escaped, its
	 * control characters replaced */
	assert_int_equal(bars(got, "gaps"), 4);
	assert_non_null(strstr(got, "HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt; &amp; "
				    "&quot;x&quot;\n\xef\xbf\xbd[31m</title>"));
	assert_null(strstr(got, "<script"));
	assert_null(strstr(got, "\x1b"));
	assert_null(strstr(got, "<b>"));
	assert_non_null(strstr(got, ">gap: 2 windows not fetched whole"));
	/* ticks in the zone: 14:30 is the first, the date under it */
	assert_non_null(strstr(got, ">14:30</text>"));
	assert_non_null(strstr(got, ">2023-09-15</text>"));
	/* no external resource */
	assert_null(strstr(got, "href"));
	assert_null(strstr(got, "url("));
	free(got);
}

/* A peer in the title; an empty result still draws, says so, and is well formed. */
static void test_timeline_peer_empty(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", "198.51.100.0/24", T09, T13);
	char *got = report(fx->c, &q, W_TIMELINE);

	expect_well_formed(got);
	assert_non_null(strstr(got, "<title>Flows between 192.0.2.10 and 198.51.100.0/24, "));
	assert_int_equal(bars(got, "flows-bars"), 3);
	assert_int_equal(bars(got, "gaps"), 0);
	assert_non_null(strstr(got, ">gaps: none</text>"));
	free(got);

	q = Q("192.0.2.99", NULL, T09, T13);
	got = report(fx->c, &q, W_TIMELINE);
	expect_well_formed(got);
	assert_int_equal(bars(got, "flows-bars"), 0);
	assert_int_equal(occurrences(got, ">no flows in this range</text>"), 2);
	free(got);

	q = Q("192.0.2.10", NULL, T09, T09);	/* an empty range */
	got = report(fx->c, &q, W_TIMELINE);
	expect_well_formed(got);
	assert_int_equal(bars(got, "flows-bars"), 0);
	free(got);
}

/* Round bins, 100 to 300 of them, whatever the range. */
static void test_timeline_bins(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		int64_t len;
		const char *bins;
	} cases[] = {
		{24 * HOUR, "bins of 5 min<"},	/* 288 */
		{4 * HOUR, "bins of 1 min<"},	/* 240 */
		{HOUR, "bins of 15 s<"},		/* 240 */
		{10 * MIN, "bins of 2 s<"},	/* 300 */
		{90 * 1000, "bins of 500 ms<"},	/* 180 */
		{7 * 24 * HOUR, "bins of 1 h<"},	/* 168 */
		{30 * 24 * HOUR, "bins of 3 h<"},	/* 240 */
		{365 * 24 * HOUR, "bins of 2 d<"},	/* 183 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + cases[i].len);
		char *got = report(fx->c, &q, W_TIMELINE);
		if (!strstr(got, cases[i].bins))
			fail_msg("range of %lld ms: want \"%s\"", (long long)cases[i].len,
				 cases[i].bins);
		expect_well_formed(got);
		free(got);
	}
}

/* A flood beside ordinary hours (issue 13, item 8d): flows of 10, 12, 9,
 * 100,000 and 11 in five one-minute bins.  On a linear axis the ordinary
 * bars were a pixel high (170 x 12 / 100,000); on the log scale each is
 * well visible, the flood's bar stays inside the plot, and the panels say
 * "log scale". */
static void test_timeline_flood(void **state)
{
	struct fixture *fx = *state;
	static const int counts[5] = {10, 12, 9, 100000, 11};
	int64_t d1 = DAY0 + 24 * HOUR;
	struct cache_query q = Q("192.0.2.20", NULL, d1, d1 + 5 * HOUR);
	struct flow_rec *v = calloc(100000, sizeof(*v));
	double h[16];

	assert_non_null(v);
	for (int b = 0; b < 5; b++) {
		for (int i = 0; i < counts[b]; i++) {
			char id[32];
			snprintf(id, sizeof(id), "f%d-%d", b, i);
			v[i] = RB(id, d1 + b * HOUR + i / 2, 6, "192.0.2.20", 1000 + i % 50000,
				  "198.51.100.1", 80, 1, 100, -1);
		}
		put(fx->c, &q, v, (size_t)counts[b], d1 + b * HOUR, d1 + (b + 1) * HOUR);
	}
	free(v);
	char *got = report(fx->c, &q, W_TIMELINE);
	expect_well_formed(got);
	assert_non_null(strstr(got, "(zone UTC): 100k flows"));
	assert_int_equal(bar_heights(got, "flows-bars", h, 16), 5);
	for (int b = 0; b < 5; b++) {
		if (b == 3) {
			assert_true(h[b] > 100 && h[b] <= 170);
			continue;
		}
		if (h[b] < 20)
			fail_msg("bin %d (%d flows) is %.2f px high beside the flood", b, counts[b],
				 h[b]);
		assert_true(h[b] < h[3]);
	}
	assert_true(h[1] > h[0] && h[0] > h[2]);	/* 12 > 10 > 9 still reads */
	assert_int_equal(occurrences(got, "(log scale)"), 2);
	assert_non_null(strstr(got, ">Flows per 1 min <tspan"));
	free(got);
}

/* A live range (issue 13, item 5): the status line under the query, the
 * hour of the edge saying up to when it is exported, the later hours "not
 * yet exported" (with what came so far, if anything) instead of 0; the
 * timeline shades the time after the edge; a final range says none of it. */
static void test_summary_live(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T09, DAY0 + 15 * HOUR);
	char *got, *vol;

	use_tz("UTC");
	q.live_as_of_ms = DAY0 + 11 * HOUR + 15 * MIN;
	q.live_refresh_s = 60;
	got = report(fx->c, &q, W_SUMMARY);
	assert_non_null(strstr(got, "  zone            UTC\n"
				    "  status          live, complete up to 2023-09-15T11:15:00.000Z, "
				    "refreshed at most every 60 s\n"
				    "  gaps            2 (listed at the end"));
	vol = section(got, "Volume by hour");
	expect_text(vol, "Volume by hour (# = flows)\n"
			 "  hour               flows  bytes\n"
			 "  2023-09-15T09:00Z      0      0\n"
			 "  2023-09-15T10:00Z      3   3540  ########################################\n"
			 "  2023-09-15T11:00Z      2   9500  ###########################  "
			 "(exported up to 2023-09-15T11:15:00.000Z)\n"
			 "  2023-09-15T12:00Z      1   1000  ##############  (so far: not yet exported)\n"
			 "  2023-09-15T13:00Z      1      1  ##############  (so far: not yet exported)\n"
			 "  2023-09-15T14:00Z      -      -  not yet exported\n");
	free(vol);
	free(got);

	got = report(fx->c, &q, W_TIMELINE);
	expect_well_formed(got);
	assert_int_equal(occurrences(got, "<title>not yet exported: live, complete up to "
					  "2023-09-15T11:15:00.000Z</title>"), 2);
	assert_non_null(strstr(got, ">not yet exported</text>"));
	free(got);

	/* the same range, final: no status, no marks */
	q.live_as_of_ms = 0;
	got = report(fx->c, &q, W_SUMMARY);
	assert_null(strstr(got, "status"));
	assert_null(strstr(got, "exported"));
	free(got);
	got = report(fx->c, &q, W_TIMELINE);
	assert_null(strstr(got, "not-exported"));
	free(got);
}

/* cache_live_text: the line, empty for a final range, cut to the buffer. */
static void test_live_text(void **state)
{
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13);
	char buf[120], small[12];

	(void)state;
	use_tz("Europe/Berlin");
	assert_int_equal(cache_live_text(&q, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	q.live_as_of_ms = DAY0 + 11 * HOUR + 15 * MIN;
	q.live_refresh_s = 45;
	const char *want = "live, complete up to 2023-09-15T13:15:00.000+02:00, refreshed at "
			   "most every 45 s";
	assert_int_equal(cache_live_text(&q, buf, sizeof(buf)), strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(cache_live_text(&q, small, sizeof(small)), sizeof(small) - 1);
	assert_string_equal(small, "live, compl");
	assert_int_equal(cache_live_text(NULL, buf, sizeof(buf)), 0);
	use_tz("UTC");
}

/* ---- lookup tables ------------------------------------------------------------------ */

static void test_lookup_csv(void **state)
{
	struct fixture *fx = *state;
	char *got;

	got = lookup_csv(fx->c, CACHE_APPS);
	expect_text(got, "id,name\n"
			 "130,HTTPS\n"
			 "160,\"SIP, \"\"VoIP\"\"\"\n"
			 "170,\"=HYPERLINK(\"\"x\"\")\"\n"
			 "180,\"NAT\ngate\x1b[2Jway\"\n");
	free(got);
	got = lookup_csv(fx->c, CACHE_GROUPS);
	expect_text(got, "id,name,parent\n"
			 "12,\"DMZ, \"\"public\"\"\",1\n"
			 "14,\"NAT\ngateways\",1\n"
			 "15,<b>evil</b> & =cmd|' /C calc'!A0,0\n"
			 "16,,12\n");
	free(got);
	/* one row an interface; exporter 5 has none; exporter 9 is unknown
	 * but its interface is listed */
	static const char exporters[] =
		"id,name,address,ifindex,interface,description\n"
		"2,edge-rt1,192.0.2.1,514,xe-0/0/1,transit-A\n"
		"2,edge-rt1,192.0.2.1,515,,no name\n"
		"3,\"core, \"\"main\"\"\",2001:db8::3,7,ge-0/0/7,\"line1\nline2, \"\"x\"\"\"\n"
		"5,=lonely,,,,\n"
		"9,,,1,orphan,exporter unknown\n";
	got = lookup_csv(fx->c, CACHE_EXPORTERS);
	expect_text(got, exporters);
	free(got);
	got = lookup_csv(fx->c, CACHE_IFS);
	expect_text(got, exporters);
	free(got);
}

/* Tables never fetched: the header alone. */
static void test_lookup_csv_empty(void **state)
{
	(void)state;
	struct cache_identity id = {"http://empty/", "flowsim", "flowapi"};
	char dir[] = "/tmp/test_report.XXXXXX", err[CACHE_ERRLEN] = "";
	struct cache *c = NULL;
	char *got;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(cache_open(dir, &id, &c, err), 0);
	got = lookup_csv(c, CACHE_APPS);
	expect_text(got, "id,name\n");
	free(got);
	got = lookup_csv(c, CACHE_EXPORTERS);
	expect_text(got, "id,name,address,ifindex,interface,description\n");
	free(got);
	cache_close(c);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- subjects ------------------------------------------------------------------------- */

static void test_subjects(void **state)
{
	struct fixture *fx = *state;
	static const char *const pairs[][2] = {
		{"2001:db8::10", NULL},
		{"192.0.2.10", "198.51.100.0/24"},
		{"10.0.0.0/8", NULL},
		{"192.0.2.10", "2001:db8::/32"},
		{"2001:db8::10", "2001:db8:ffff::1"},
	};
	/* by canonical text: subject, then peer ("" first) */
	static const char *const want[][2] = {
		{"10.0.0.0/8", ""},
		{"192.0.2.10", ""},
		{"192.0.2.10", "198.51.100.0/24"},
		{"192.0.2.10", "2001:db8::/32"},
		{"2001:db8::10", ""},
		{"2001:db8::10", "2001:db8:ffff::1"},
	};
	struct cache_query *v = NULL;
	char err[CACHE_ERRLEN] = "", a[64], b[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct cache_query q = Q(pairs[i][0], pairs[i][1], T09, T13);
		put(fx->c, &q, NULL, 0, T09, T09 + HOUR);
		put(fx->c, &q, NULL, 0, T09 + HOUR, T09 + 2 * HOUR);	/* distinct */
	}
	/* flows without coverage do not make a subject */
	struct cache_query q = Q("192.0.2.99", NULL, T09, T13);
	struct flow_rec r = R("z", T09, 6, "192.0.2.99", 1, "192.0.2.1", 2);
	put(fx->c, &q, &r, 1, 0, 0);

	assert_int_equal(cache_subjects(fx->c, &v, &n, err), 0);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++) {
		cache_prefix_format(&v[i].subject, a, sizeof(a));
		assert_string_equal(a, want[i][0]);
		assert_int_equal(v[i].has_peer, want[i][1][0] != '\0');
		if (v[i].has_peer) {
			cache_prefix_format(&v[i].peer, b, sizeof(b));
			assert_string_equal(b, want[i][1]);
		}
		/* what comes back is a query: give it a range and it renders */
		v[i].start = T09;
		v[i].end = T13;
		char *got = report(fx->c, &v[i], W_SUMMARY);
		assert_non_null(strstr(got, a));
		free(got);
	}
	/* the prefixes are the real thing, not just their text */
	assert_int_equal(v[0].subject.len, 96 + 8);
	assert_true(v[0].subject.v4);
	assert_false(v[5].peer.v4);
	assert_int_equal(v[5].peer.len, 128);
	free(v);
}

/* ---- determinism, errors ------------------------------------------------------------- */

static void test_deterministic(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	struct cache_identity id = {"http://127.0.0.1:8080/", "flowsim", "flowapi"};
	char err[CACHE_ERRLEN] = "";

	use_tz("Europe/Berlin");
	for (int w = W_SUMMARY; w <= W_TIMELINE; w++) {
		char *a = report(fx->c, &q, (enum what)w);
		char *b = report(fx->c, &q, (enum what)w);
		assert_string_equal(a, b);
		/* and from a fresh connection */
		cache_close(fx->c);
		assert_int_equal(cache_open(fx->dir, &id, &fx->c, err), 0);
		char *c = report(fx->c, &q, (enum what)w);
		assert_string_equal(a, c);
		free(a);
		free(b);
		free(c);
	}
}

/* cache_text_escape: collector text for a log line or a message, spelled as
 * summary.txt spells names: control characters (C0, DEL, C1 in UTF-8) and
 * bytes that are not UTF-8 visible as escapes, the rest as it is; cut at a
 * whole escape or character. */
static void test_text_escape(void **state)
{
	(void)state;
	char out[80];

	assert_int_equal(cache_text_escape(out, sizeof(out), "ok: \xc3\xa9 \"x\" \\", 100), 12);
	assert_string_equal(out, "ok: \xc3\xa9 \"x\" \\");
	cache_text_escape(out, sizeof(out), "a\nb\r\t\x1b[2J\x7f\xc2\x9b" "1m\xc2\xa0\xff\xc3", 100);
	assert_string_equal(out, "a\\nb\\r\\t\\x1b[2J\\x7f\\xc2\\x9b1m\xc2\xa0\\xff\\xc3");
	/* the text ends at len or at a NUL */
	cache_text_escape(out, sizeof(out), "abc\ndef", 4);
	assert_string_equal(out, "abc\\n");
	cache_text_escape(out, sizeof(out), "ab\0\ncd", 6);
	assert_string_equal(out, "ab");
	/* cut: never half an escape, nor half a character */
	assert_int_equal(cache_text_escape(out, 6, "ab\x1b[2J", 6), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(cache_text_escape(out, 7, "ab\x1b[2J", 6), 6);
	assert_string_equal(out, "ab\\x1b");
	assert_int_equal(cache_text_escape(out, 4, "ab\xc3\xa9", 4), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(cache_text_escape(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
	assert_int_equal(cache_text_escape(NULL, 0, "abc", 3), 0);
}


static void test_errors(void **state)
{
	struct fixture *fx = *state;
	struct cache_query q = Q("192.0.2.10", NULL, T09, T13), back = q;
	struct cache_query *v;
	char err[CACHE_ERRLEN] = "";
	size_t n;
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	back.end = back.start - 1;
	assert_int_equal(cache_render_summary(NULL, &q, f, err), -EINVAL);
	assert_int_equal(cache_render_summary(fx->c, NULL, f, err), -EINVAL);
	assert_int_equal(cache_render_summary(fx->c, &q, NULL, err), -EINVAL);
	assert_int_equal(cache_render_summary(fx->c, &back, f, err), -EINVAL);
	assert_int_equal(cache_render_timeline(fx->c, &back, f, NULL), -EINVAL);
	assert_int_equal(cache_render_timeline(fx->c, &q, NULL, err), -EINVAL);
	assert_int_equal(cache_render_lookup(fx->c, CACHE_NTABLES, f, err), -EINVAL);
	assert_int_equal(cache_render_lookup(fx->c, (enum cache_table)-1, f, err), -EINVAL);
	assert_int_equal(cache_render_lookup(fx->c, CACHE_APPS, NULL, err), -EINVAL);
	assert_int_equal(cache_subjects(fx->c, NULL, &n, err), -EINVAL);
	fclose(f);

	f = fopen("/dev/full", "w");
	if (!f)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(cache_render_summary(fx->c, &q, f, err), -ENOSPC);
	assert_non_null(strstr(err, "write"));
	assert_int_equal(cache_render_timeline(fx->c, &q, f, err), -ENOSPC);
	assert_int_equal(cache_render_lookup(fx->c, CACHE_EXPORTERS, f, err), -ENOSPC);
	fclose(f);
	/* the connection is usable afterwards (no transaction left open) */
	char *got = report(fx->c, &q, W_SUMMARY);
	expect_text(got, summary_want);
	free(got);
	assert_int_equal(cache_subjects(fx->c, &v, &n, err), 0);
	assert_int_equal(n, 1);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_top, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_hours_zone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_live, setup, teardown),
		cmocka_unit_test(test_live_text),
		cmocka_unit_test_setup_teardown(test_timeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_peer_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_bins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_csv, setup, teardown),
		cmocka_unit_test(test_lookup_csv_empty),
		cmocka_unit_test_setup_teardown(test_subjects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test(test_text_escape),
	};
	return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
