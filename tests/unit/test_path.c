/*
 * test_path.c - the flowfs path grammar: every valid spelling reaches the
 * same folder, every invalid name is ENOENT (or ENAMETOOLONG), canonical
 * names and inode numbers are stable, DST days are 23 or 25 hours; lenient
 * spellings of a date or time reach the canonical folder, and every
 * refusal says why (fs_lookup_why).
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
#include <time.h>

#include "path.h"

/* 2026-11-29T12:00:00Z, 90 days of retention */
static const struct fs_clock clk = {1795953600000LL, 90, true};

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static int parse(const char *path, struct fs_node *n)
{
	return fs_path_parse(path, &clk, n);
}

static void test_valid_paths(void **state)
{
	(void)state;
	struct fs_node n;

	set_tz("UTC");
	assert_int_equal(parse("/", &n), 0);
	assert_int_equal(n.kind, FS_ROOT);
	assert_int_equal(parse("/README.txt", &n), 0);
	assert_int_equal(n.kind, FS_README);
	assert_int_equal(parse("/collector/hostgroups.csv", &n), 0);
	assert_int_equal(n.kind, FS_COLLECTOR_FILE);
	assert_int_equal(parse("/10.0.1.10/2026-11-27/flows.csv", &n), 0);
	assert_int_equal(n.kind, FS_FILE);
	assert_int_equal(n.file, FS_F_CSV);
	assert_true(n.is_day);
	assert_int_equal(n.q.start, 1795737600000LL);
	assert_int_equal(n.q.end - n.q.start, CACHE_DAY_MS);
	assert_int_equal(parse("/10.0.1.10/2026-11-27/.progress", &n), 0);
	assert_int_equal(n.file, FS_F_PROGRESS);
	assert_int_equal(parse("/198.51.100.0_24/2026-11-29T10:00--2026-11-29T12:30/", &n), 0);
	assert_int_equal(n.kind, FS_QUERY);
	assert_false(n.is_day);
	assert_int_equal(n.q.end - n.q.start, 150 * 60000LL);
	/* a range may reach to the end of today, like today's folder */
	assert_int_equal(parse("/10.0.1.10/2026-11-29T10:00--2026-11-30T00:00", &n), 0);
	assert_int_equal(parse("/192.0.2.10+203.0.113.7/2026-11-28", &n), 0);
	assert_true(n.q.has_peer);
}

static void test_spellings_meet(void **state)
{
	(void)state;
	const char *spell[] = {
		"/2001:db8:10::5/2026-11-28/flows.csv",
		"/2001:DB8:10::5/2026-11-28/flows.csv",
		"/2001:0db8:0010:0000:0000:0000:0000:0005/2026-11-28/flows.csv",
		"/2001:db8:10:0:0:0:0:5/2026-11-28/flows.csv",
	};
	struct fs_node a, b;
	char name[128];

	set_tz("UTC");
	assert_int_equal(parse(spell[0], &a), 0);
	for (size_t i = 1; i < sizeof(spell) / sizeof(spell[0]); i++) {
		assert_int_equal(parse(spell[i], &b), 0);
		assert_memory_equal(&a.q, &b.q, sizeof(a.q));
		assert_int_equal(fs_node_ino(&a), fs_node_ino(&b));
	}
	struct fs_node subj = a;
	subj.kind = FS_SUBJECT;
	fs_node_name(&subj, name, sizeof(name));
	assert_string_equal(name, "2001:db8:10::5");
	assert_int_equal(parse("/2001:DB8::_32", &a), 0);
	fs_node_name(&a, name, sizeof(name));
	assert_string_equal(name, "2001:db8::_32");
	assert_int_equal(parse("/010.0.1.10", &a) == 0 ? 1 : 0, 0);	/* leading zeros: not an address */
}

static void test_invalid_names(void **state)
{
	(void)state;
	const char *bad[] = {
		"/10.0.1", "/10.0.1.256", "/10.0.1.10_33", "/10.0.1.10_24", "/10.0.1.0_",
		"/10.0.1.0_x", "/_24", "/+10.0.1.1", "/10.0.1.1+", "/10.0.1.1+2001:db8::1",
		"/10.0.1.1+10.0.1.2+10.0.1.3", "/host.example", "/README.TXT", "/collector/x",
		"/10.0.1.10/2023-02-29", "/10.0.1.10/2023-13-01", "/10.0.1.10/99999-01-01",
		"/10.0.1.10/2026-11-30", "/10.0.1.10/2026-08-01", "/10.0.1.10/2026-1-5x",
		"/10.0.1.10/ 2026-11-27", "/10.0.1.10/+2026-11-27", "/10.0.1.10/2026-11-27x",
		"/10.0.1.10/2026-11-29T12:00--2026-11-29T10:00",
		"/10.0.1.10/2026-11-29T10:00--2026-11-29T10:00",
		"/10.0.1.10/2026-11-29T25:00--2026-11-29T26:00",
		"/10.0.1.10/2026-11-29T10:00--", "/10.0.1.10/--2026-11-29T10:00",
		"/10.0.1.10/2026-11-28T00:00--2099-01-01T00:00",	/* ends after today */
		"/10.0.1.10/2026-11-29T10:00--2026-11-30T00:01",
		"/10.0.1.10/2026-11-27/flows.xls", "/10.0.1.10/2026-11-27/flows.csv/x",
		"/10.0.1.10/a\x01b", "/10.0.1.10\x7f",
	};
	struct fs_node n;

	set_tz("UTC");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &n);
		if (rc != -ENOENT && rc != -ENOTDIR)
			fail_msg("'%s' gave %d, not ENOENT", bad[i], rc);
	}
	char longname[400] = "/";
	memset(longname + 1, 'a', 300);
	longname[301] = '\0';
	assert_int_equal(parse(longname, &n), -ENAMETOOLONG);
}

static void test_dst_days(void **state)
{
	(void)state;
	struct fs_node n;
	struct fs_clock c = {1795953600000LL, 400, true};

	set_tz("Europe/Berlin");
	assert_int_equal(fs_path_parse("/10.0.0.1/2026-03-29", &c, &n), 0);
	assert_int_equal(n.q.end - n.q.start, 23 * 3600000LL);
	assert_int_equal(fs_path_parse("/10.0.0.1/2026-10-25", &c, &n), 0);
	assert_int_equal(n.q.end - n.q.start, 25 * 3600000LL);
	assert_int_equal(fs_path_parse("/10.0.0.1/2026-11-27", &c, &n), 0);
	assert_int_equal(n.q.start, 1795737600000LL - 3600000LL);	/* midnight CET */
	char name[128];
	fs_node_name(&n, name, sizeof(name));
	assert_string_equal(name, "2026-11-27");
	set_tz("UTC");
}

static void test_days_listing(void **state)
{
	(void)state;
	int64_t starts[200];

	set_tz("UTC");
	int n = fs_days(&clk, starts, 200);
	assert_int_equal(n, 91);	/* 90 days back and today */
	assert_int_equal(starts[n - 1], 1795910400000LL);
	for (int i = 1; i < n; i++)
		assert_int_equal(starts[i] - starts[i - 1], CACHE_DAY_MS);
}

/* Leave glibc's mktime() holding the offset of the given UTC instant: it
 * starts from the offset of its last call. */
static void prime_mktime(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_isdst = -1;
	mktime(&tm);
}

/* Found by fuzz_path: a wall time that occurs twice meant one instant or
 * the other depending on glibc's mktime history, so the same folder name
 * was two ranges, and a day of the listing did not end where the next
 * began.  Now the first occurrence, always. */
static void test_ambiguous_times_stable(void **state)
{
	(void)state;
	struct fs_node a, b;
	const char *range = "/10.0.0.1/2026-10-25T02:30--2026-10-25T03:30";

	set_tz("Europe/Berlin");
	prime_mktime(1782907200);	/* 2026-07-01, summer time */
	assert_int_equal(parse(range, &a), 0);
	prime_mktime(1796126400);	/* 2026-12-01, winter time */
	assert_int_equal(parse(range, &b), 0);
	assert_int_equal(a.q.start, 1792888200000LL);	/* 00:30Z: 02:30 CEST, the first */
	assert_int_equal(b.q.start, a.q.start);
	assert_int_equal(a.q.end - a.q.start, 2 * 3600000LL);	/* 02:30 CEST to 03:30 CET */

	/* Havana goes back from 01:00 to 00:00: 2011-11-13 begins twice */
	struct fs_clock hc = {1321790400000LL, 30, true};	/* 2011-11-20T12:00Z */
	int64_t starts[40];
	set_tz("America/Havana");
	prime_mktime(1322740800);	/* 2011-12-01, standard time */
	assert_int_equal(fs_path_parse("/10.0.0.1/2011-11-12", &hc, &a), 0);
	prime_mktime(1309521600);	/* 2011-07-01, daylight time */
	assert_int_equal(fs_path_parse("/10.0.0.1/2011-11-13", &hc, &b), 0);
	assert_int_equal(a.q.end, 1321156800000LL);	/* 04:00Z: the first midnight */
	assert_int_equal(b.q.start, a.q.end);
	assert_int_equal(b.q.end - b.q.start, 25 * 3600000LL);
	int n = fs_days(&hc, starts, 40);
	assert_int_equal(n, 31);
	for (int i = 0; i + 1 < n; i++) {
		struct fs_node day;
		char name[128];
		memset(&day, 0, sizeof(day));
		day.kind = FS_QUERY;
		day.is_day = true;
		day.q.start = starts[i];
		fs_node_name(&day, name, sizeof(name));
		char path[160];
		snprintf(path, sizeof(path), "/10.0.0.1/%s", name);
		prime_mktime(i % 2 ? 1309521600 : 1322740800);
		assert_int_equal(fs_path_parse(path, &hc, &day), 0);
		assert_int_equal(day.q.start, starts[i]);
		assert_int_equal(day.q.end, starts[i + 1]);
	}
	set_tz("UTC");
}

/* Found by fuzz_path: a collector whose clock or retention reaches past
 * the years the grammar can name (1970 to 9999) had days listed that
 * could not be looked up ("10000-01-01", "1969-12-31"). */
static void test_days_listing_bounds(void **state)
{
	(void)state;
	int64_t starts[64];
	struct fs_node n;
	struct fs_clock late = {253402300799999LL, 3, true};	/* 9999-12-31T23:59:59.999Z */
	struct fs_clock early = {2 * CACHE_DAY_MS, 10, true};	/* 1970-01-03T00:00Z */

	set_tz("Asia/Tokyo");	/* already 10000-01-01 there */
	int k = fs_days(&late, starts, 64);
	assert_int_equal(k, 3);
	assert_int_equal(fs_path_parse("/10.0.0.1/9999-12-31", &late, &n), 0);
	assert_int_equal(n.q.start, starts[k - 1]);
	/* and a range's end: 24:00 of the last day is 10000-01-01, which no
	 * canonical name can write (found by fuzz_path) */
	assert_int_equal(fs_path_parse("/10.0.0.1/9999-12-30T23:00--9999-12-31T24:00", &late, &n),
			 -ENOENT);
	assert_int_equal(fs_path_parse("/10.0.0.1/9999-12-30T23:00--9999-12-31T23:59:59.999",
				       &late, &n), 0);
	char name[128], path[160];
	struct fs_node back;
	fs_node_name(&n, name, sizeof(name));
	snprintf(path, sizeof(path), "/10.0.0.1/%s", name);
	assert_int_equal(fs_path_parse(path, &late, &back), 0);	/* its name reads back */
	assert_int_equal(back.q.end, n.q.end);
	set_tz("Europe/Berlin");	/* 1970-01-01 began an hour before the epoch */
	k = fs_days(&early, starts, 64);
	assert_int_equal(k, 2);	/* 1970-01-02 and -03 */
	assert_int_equal(fs_path_parse("/10.0.0.1/1970-01-02", &early, &n), 0);
	assert_int_equal(n.q.start, starts[0]);
	assert_int_equal(fs_path_parse("/10.0.0.1/1970-01-01", &early, &n), -ENOENT);
	assert_int_equal(fs_path_parse("/10.0.0.1/1970-01-01T00:30--1970-01-01T02:00", &early, &n),
			 -ENOENT);
	set_tz("UTC");
}

static void test_inodes_distinct(void **state)
{
	(void)state;
	const char *paths[] = {
		"/", "/README.txt", "/collector", "/collector/info.json", "/10.0.1.10",
		"/10.0.1.10/2026-11-27", "/10.0.1.10/2026-11-27/flows.csv",
		"/10.0.1.10/2026-11-27/flows.ndjson", "/10.0.1.10/2026-11-28/flows.csv",
		"/10.0.1.11/2026-11-27/flows.csv", "/10.0.1.10+10.0.1.11", "/10.0.1.11+10.0.1.10",
	};
	uint64_t ino[16];
	struct fs_node n;

	set_tz("UTC");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(parse(paths[i], &n), 0);
		ino[i] = fs_node_ino(&n);
		for (size_t j = 0; j < i; j++)
			assert_true(ino[i] != ino[j]);
	}
	assert_int_equal(ino[0], 1);
}

/* A collector that states no retention (SNA): any past day can be
 * entered by name; the listing still shows retention_days days. */
static void test_unstated_retention(void **state)
{
	(void)state;
	struct fs_node n;
	struct fs_clock c = {1795953600000LL, 90, false};	/* 2026-11-29T12:00Z */
	int64_t days[200];

	set_tz("UTC");
	assert_int_equal(fs_path_parse("/10.0.1.10/2026-05-01/flows.csv", &c, &n), 0);
	assert_int_equal(fs_path_parse("/10.0.1.10/2020-01-01T10:00--2020-01-01T11:00", &c, &n), 0);
	assert_int_equal(fs_days(&c, days, 200), 91);
	c.retention_stated = true;
	assert_int_equal(fs_path_parse("/10.0.1.10/2026-05-01/flows.csv", &c, &n), -ENOENT);
	/* the future stays refused either way */
	c.retention_stated = false;
	assert_int_equal(fs_path_parse("/10.0.1.10/2026-11-30/flows.csv", &c, &n), -ENOENT);
}

/* A collector that keeps more days than a listing holds (800): the
 * newest are listed, today among them, not the oldest. */
static void test_days_listing_long_retention(void **state)
{
	(void)state;
	int64_t starts[800];
	struct fs_clock c = {1795953600000LL, 1000, true};	/* 2026-11-29T12:00Z */
	const int64_t today = 1795910400000LL;

	set_tz("UTC");
	int n = fs_days(&c, starts, 800);
	assert_int_equal(n, 800);
	assert_int_equal(starts[n - 1], today);
	assert_int_equal(starts[0], today - 799 * CACHE_DAY_MS);
	for (int i = 1; i < n; i++)
		assert_int_equal(starts[i] - starts[i - 1], CACHE_DAY_MS);
	/* exactly as many days as the room, and one more */
	c.retention_days = 799;
	assert_int_equal(fs_days(&c, starts, 800), 800);
	assert_int_equal(starts[799], today);
	c.retention_days = 800;
	assert_int_equal(fs_days(&c, starts, 800), 800);
	assert_int_equal(starts[0], today - 799 * CACHE_DAY_MS);
	assert_int_equal(fs_days(&c, starts, 1), 1);
	assert_int_equal(starts[0], today);
	assert_int_equal(fs_days(&c, starts, 0), 0);
	/* over a change of summer time the days are still whole */
	set_tz("Europe/Berlin");
	n = fs_days(&c, starts, 800);
	assert_int_equal(n, 800);
	struct fs_node day;
	assert_int_equal(fs_path_parse("/10.0.0.1/2026-11-29", &c, &day), 0);
	assert_int_equal(starts[n - 1], day.q.start);
	set_tz("UTC");
}

/* Two folders whose inode numbers collide are not the same folder: the
 * tables keyed by the number (the inode table, the folders) compare the
 * nodes with fs_node_same.  A real 64-bit collision is out of reach, so
 * the comparison is tested on pairs that share everything but one field. */
static void test_node_same(void **state)
{
	(void)state;
	struct fs_node a, b;

	set_tz("UTC");
	assert_int_equal(parse("/10.0.1.10/2026-11-27", &a), 0);
	assert_int_equal(parse("/10.0.1.10/2026-11-27/", &b), 0);
	assert_true(fs_node_same(&a, &b));
	assert_int_equal(parse("/2001:db8:10::5/2026-11-27", &a), 0);
	assert_int_equal(parse("/2001:0DB8:0010:0:0:0:0:0005/2026-11-27", &b), 0);
	assert_true(fs_node_same(&a, &b));	/* two spellings, one folder */

	static const char *const pairs[][2] = {
		{"/10.0.1.10/2026-11-27", "/10.0.1.11/2026-11-27"},	/* subject */
		{"/10.0.1.10/2026-11-27", "/10.0.1.10/2026-11-28"},	/* day */
		{"/10.0.1.10/2026-11-27", "/10.0.1.10/2026-11-27T00:00--2026-11-28T00:00"},
		{"/10.0.1.10/2026-11-27T00:00--2026-11-27T01:00",
		 "/10.0.1.10/2026-11-27T00:00--2026-11-27T01:01"},	/* end */
		{"/10.0.1.10+10.0.1.11/2026-11-27", "/10.0.1.10/2026-11-27"},	/* peer */
		{"/10.0.1.10+10.0.1.11/2026-11-27", "/10.0.1.10+10.0.1.12/2026-11-27"},
		{"/10.0.1.0_24/2026-11-27", "/10.0.1.0_25/2026-11-27"},	/* prefix */
		{"/10.0.1.10/2026-11-27/flows.csv", "/10.0.1.10/2026-11-27/flows.ndjson"},
		{"/10.0.1.10/2026-11-27/flows.csv", "/10.0.1.10/2026-11-27"},	/* kind */
		{"/10.0.1.10", "/10.0.1.10/2026-11-27"},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(parse(pairs[i][0], &a), 0);
		assert_int_equal(parse(pairs[i][1], &b), 0);
		assert_false(fs_node_same(&a, &b));
		assert_false(fs_node_same(&b, &a));
		assert_true(fs_node_same(&a, &a));
	}
	/* the node's other fields, with the path alike, do not matter:
	 * a day folder's node as the listing makes it (no end) is the one
	 * a lookup makes */
	assert_int_equal(parse("/10.0.1.10/2026-11-27", &a), 0);
	b = a;
	b.q.end = 0;
	assert_true(fs_node_same(&a, &b));

	/* the probe that gives the second of two colliding nodes its number:
	 * never 0 or 1 (the root), and every number after another */
	assert_true(fs_ino_next(2) == 3);
	assert_true(fs_ino_next(UINT64_MAX) == 2);
	assert_true(fs_ino_next(0) == 2 && fs_ino_next(1) == 2);
	assert_true(fs_ino_next(0x8000000000000000ULL) == 0x8000000000000001ULL);
}

/* Spellings that are certain in meaning reach the canonical folder: the
 * same node, the same inode, and the canonical name in listings. */
static void test_lenient_spellings(void **state)
{
	(void)state;
	static const char *const same[][2] = {
		{"/10.0.1.10/2026-11-5", "/10.0.1.10/2026-11-05"},
		{"/10.0.1.10/2026-9-05", "/10.0.1.10/2026-09-05"},
		{"/10.0.1.10/2026-9-5", "/10.0.1.10/2026-09-05"},
		{"/10.0.1.10/2026-11-27T9:00--2026-11-27T10:00:00",
		 "/10.0.1.10/2026-11-27T09:00--2026-11-27T10:00"},
		{"/10.0.1.10/2026-11-27 10:00--2026-11-27 12:30",
		 "/10.0.1.10/2026-11-27T10:00--2026-11-27T12:30"},
		{"/10.0.1.10/2026-11-27T10:00:00.000--2026-11-27T12:00:00.000000",
		 "/10.0.1.10/2026-11-27T10:00--2026-11-27T12:00"},
		{"/10.0.1.10/2026-11-27T10:00--2026-11-27T24:00",
		 "/10.0.1.10/2026-11-27T10:00--2026-11-28T00:00"},
		{"/10.0.1.10/2026-11-27T10:00:00.25--2026-11-27T10:00:01,5",
		 "/10.0.1.10/2026-11-27T10:00:00.250--2026-11-27T10:00:01.500"},
	};
	struct fs_node a, b;
	char name[128], canon[128];

	set_tz("UTC");
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		if (parse(same[i][0], &a) != 0)
			fail_msg("'%s' refused", same[i][0]);
		assert_int_equal(parse(same[i][1], &b), 0);
		assert_true(fs_node_same(&a, &b));
		assert_int_equal(fs_node_ino(&a), fs_node_ino(&b));
		assert_memory_equal(&a.q, &b.q, sizeof(a.q));
		fs_node_name(&a, name, sizeof(name));
		snprintf(canon, sizeof(canon), "%s", strrchr(same[i][1], '/') + 1);
		assert_string_equal(name, canon);
	}
	/* milliseconds are kept, and the canonical name reads back */
	assert_int_equal(parse("/10.0.1.10/2026-11-27T10:00:00.250--2026-11-27T10:00:02", &a), 0);
	assert_int_equal(a.q.start % 1000, 250);
	assert_int_equal(a.q.end - a.q.start, 1750);
	fs_node_name(&a, name, sizeof(name));
	assert_string_equal(name, "2026-11-27T10:00:00.250--2026-11-27T10:00:02");
	/* the zone's midnight for a lenient day too */
	set_tz("Europe/Berlin");
	assert_int_equal(parse("/10.0.0.1/2026-11-5", &a), 0);
	assert_int_equal(parse("/10.0.0.1/2026-11-05", &b), 0);
	assert_int_equal(a.q.start, b.q.start);
	assert_int_equal(a.q.end, b.q.end);
	set_tz("UTC");
}

/* Every refusal says why, and the why is the one for that mistake. */
static void test_refusal_reasons(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"/10.0.1.300", "each of its four numbers is 0 to 255"},
		{"/010.0.1.10", "leading zero"},
		{"/10.0.1", "four numbers"},
		{"/host.example", "not an IPv4 or IPv6 address"},
		{"/10.0.1.1_24", "host bits are set (a prefix's address ends in zero bits); "
				 "did you mean 10.0.1.0_24"},
		{"/2001:db8::1_32", "did you mean 2001:db8::_32"},
		{"/10.0.1.0_33", "more than 32"},
		{"/10.0.1.0_x", "not a number"},
		{"/10.0.1.1+10.0.1.2+10.0.1.3", "one '+'"},
		{"/10.0.1.1+2001:db8::1", "an IPv4 and an IPv6"},
		{"/10.0.1.1+10.0.1.2_24", "did you mean 10.0.1.0_24"},
		{"/collector/x", "not a file of collector/"},
		{"/10.0.1.10/05-12-2026", "write the year first, yyyy-mm-dd"},
		{"/10.0.1.10/5-12-26", "write the year first, yyyy-mm-dd"},
		{"/10.0.1.10/2026.12.05", "with dashes"},
		{"/10.0.1.10/20261205", "with dashes"},
		{"/10.0.1.10/2026-02-30", "no such day"},
		{"/10.0.1.10/2023-02-29", "no such day"},
		{"/10.0.1.10/2026-13-01", "no such month"},
		{"/10.0.1.10/1969-12-31", "before 1970"},
		{"/10.0.1.10/2026-08-01", "before the collector's retention: the oldest day is 2026-08-31"},
		{"/10.0.1.10/2026-11-30", "after today: the collector's today is 2026-11-29"},
		{"/10.0.1.10/2026-12-25", "after today: the collector's today is 2026-11-29"},
		{"/10.0.1.10/2026-11-29T10:00", "a time alone"},
		{"/10.0.1.10/2026-11-29T12:00--2026-11-29T10:00", "ends before it starts"},
		{"/10.0.1.10/2026-11-29T10:00--2026-11-29T10:00", "empty"},
		{"/10.0.1.10/2026-11-29T25:00--2026-11-29T26:00", "its start, '2026-11-29T25:00': no such time"},
		{"/10.0.1.10/2026-11-29T10:5--2026-11-29T11:00", "minutes take two digits"},
		{"/10.0.1.10/2026-11-29T10:00:00.0001--2026-11-29T11:00", "finer than a millisecond"},
		{"/10.0.1.10/2026-11-29T10:00Z--2026-11-29T11:00Z", "no zone offset"},
		{"/10.0.1.10/2026-11-29T10:00+01:00--2026-11-29T11:00+01:00", "no zone offset"},
		{"/10.0.1.10/2026-11-28--2026-11-29", "is a date: a range's ends are times"},
		{"/10.0.1.10/2026-11-28T14:00-2026-11-28T15:00", "two dashes"},
		{"/10.0.1.10/2026-11-29T10:00--", "its end, '': not a date or time"},
		{"/10.0.1.10/2026-08-01T10:00--2026-08-01T11:00", "starts before the collector's retention"},
		{"/10.0.1.10/2026-11-29T13:00--2026-11-29T14:00",
		 "starts after the collector's clock (now 2026-11-29T12:00)"},
		{"/10.0.1.10/2026-11-28T00:00--2099-01-01T00:00",
		 "ends after today (the collector's today is 2026-11-29): it may end at "
		 "2026-11-30T00:00 at the latest"},
		{"/10.0.1.10/2026-11-27/flows.xls", "not a file of a query folder"},
		{"/10.0.1.10/a\x01b", "control character"},
	};

	set_tz("UTC");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* walk to the parent, then ask for the last name's reason */
		char path[256], why[FS_WHY_LEN] = "";
		struct fs_node parent, n;
		snprintf(path, sizeof(path), "%s", cases[i][0]);
		char *last = strrchr(path, '/');
		*last = '\0';
		assert_int_equal(parse(path[0] ? path : "/", &parent), 0);
		int rc = fs_lookup_why(&parent, last + 1, &clk, &n, why, sizeof(why));
		if (rc != -ENOENT)
			fail_msg("'%s' gave %d, not ENOENT", cases[i][0], rc);
		if (!strstr(why, cases[i][1]))
			fail_msg("'%s': the reason is '%s', not '%s'", cases[i][0], why, cases[i][1]);
		assert_non_null(fs_lookup_forms(&parent));
	}
	/* a name the grammar takes has no reason */
	struct fs_node root = {.kind = FS_ROOT}, n;
	char why[FS_WHY_LEN] = "x";
	assert_int_equal(fs_lookup_why(&root, "10.0.1.10", &clk, &n, why, sizeof(why)), 0);
	assert_string_equal(why, "x");
}

/* flowfetch's --from/--to and the folder names read one grammar: what one
 * takes the other takes (offsets aside), with the same reasons. */
static void test_when_grammar(void **state)
{
	(void)state;
	struct cache_when w;
	const char *why;

	set_tz("UTC");
	assert_int_equal(cache_when_parse("2026-12-5", 9, 0, &w, &why), 0);
	assert_true(w.is_date);
	assert_int_equal(w.ms, 1796428800000LL);
	assert_null(why);
	assert_int_equal(cache_when_parse("2026-12-05T10:00:00.250Z", 24, 0, &w, &why), 0);
	assert_int_equal(w.ms, 1796428800000LL + 36000250LL);
	assert_true(w.has_offset);
	assert_int_equal(cache_when_parse("2026-12-05T11:00+01:00", 22, 0, &w, &why), 0);
	assert_int_equal(w.ms, 1796428800000LL + 36000000LL);
	assert_int_equal(cache_when_parse("2026-12-05T10:00Z", 17, CACHE_WHEN_LOCAL, &w, &why),
			 -EINVAL);
	assert_non_null(strstr(why, "no zone offset"));
	assert_int_equal(cache_when_parse("05-12-2026", 10, 0, &w, &why), -EINVAL);
	assert_non_null(strstr(why, "yyyy-mm-dd"));
	assert_int_equal(cache_when_parse("12/05/2026", 10, 0, &w, &why), -EINVAL);
	assert_non_null(strstr(why, "yyyy-mm-dd"));
	/* the length is the caller's: no NUL is looked for past it */
	assert_int_equal(cache_when_parse("2026-12-05--x", 10, 0, &w, &why), 0);
	assert_int_equal(cache_when_parse("", 0, 0, &w, &why), -EINVAL);
	/* a long run of digits is refused, not summed past INT_MAX (fuzz_path) */
	assert_int_equal(cache_when_parse("777777777777777777777", 21, 0, &w, &why), -EINVAL);
	assert_non_null(why);
	/* names written back read back */
	char name[40];
	cache_when_name(1796428800000LL + 36000250LL, false, name, sizeof(name));
	assert_string_equal(name, "2026-12-05T10:00:00.250");
	cache_when_name(1796428800000LL + 36001000LL, false, name, sizeof(name));
	assert_string_equal(name, "2026-12-05T10:00:01");
	cache_when_name(1796428800000LL, true, name, sizeof(name));
	assert_string_equal(name, "2026-12-05");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unstated_retention),
		cmocka_unit_test(test_valid_paths),
		cmocka_unit_test(test_spellings_meet),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_dst_days),
		cmocka_unit_test(test_days_listing),
		cmocka_unit_test(test_inodes_distinct),
		cmocka_unit_test(test_ambiguous_times_stable),
		cmocka_unit_test(test_days_listing_bounds),
		cmocka_unit_test(test_days_listing_long_retention),
		cmocka_unit_test(test_node_same),
		cmocka_unit_test(test_lenient_spellings),
		cmocka_unit_test(test_refusal_reasons),
		cmocka_unit_test(test_when_grammar),
	};
	return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
