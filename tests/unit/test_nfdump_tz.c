/*
 * test_nfdump_tz.c - the zone of an nfdump archive's file names
 * (nfdump_tz.c, issue 14) against glibc's own conversion: for several
 * zones, every 5-minute slot of a year (and of 2040, past the zone files'
 * transitions, where the footer's TZ string rules) turned into its wall
 * time by localtime_r with TZ set (this test is its own process), and back
 * by nfd_tz_utc: the same second, both seconds of a name in the repeated
 * hour, and the documented rule for the skipped hour.  Then the names a
 * zone refuses, corrupt zone files, and the archive scan listing a file of
 * the repeated hour for windows of both its hours.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "nfdump.h"

static char err[FETCH_ERRLEN];

/* glibc's wall time of t in the zone TZ names, on nfd_tz_wall's scale. */
static int64_t glibc_wall(int64_t t, long *off)
{
	struct tm tm;
	time_t tt = (time_t)t;

	assert_non_null(localtime_r(&tt, &tm));
	*off = tm.tm_gmtoff;
	return t + tm.tm_gmtoff;
}

/* Counts of what one zone's year held. */
struct seen {
	int slots, twice, skipped;
};

/* Every 5-minute slot of [from, to) in zone: nfd_tz_wall equals glibc's,
 * nfd_tz_utc of that wall time gives the slot back (first or second, the
 * other being the slot an hour (or the shift) away that glibc also names
 * so), and each wall time the clocks skip is read with the offset before
 * the change.  z: the zone opened from its file, or the process's. */
static void check_span(const char *zone, const struct nfd_tz *z, int64_t from, int64_t to,
		       struct seen *s)
{
	long prev_off = 0;

	for (int64_t t = from; t < to; t += 300) {
		long off, o2;
		int64_t wall = glibc_wall(t, &off), mine, first, second;
		enum nfd_tz_fold fold;

		assert_int_equal(nfd_tz_wall(z, t, &mine), 0);
		if (mine != wall)
			fail_msg("%s: wall of %lld: %lld, glibc %lld", zone, (long long)t,
				 (long long)mine, (long long)wall);
		assert_int_equal(nfd_tz_utc(z, wall, &first, &second, &fold), 0);
		/* glibc's other second of the same wall time, if any */
		int64_t lo = t, hi = t;
		for (int64_t d = -7200; d <= 7200; d += 300)
			if (d && glibc_wall(t + d, &o2) == wall)
				lo = t + d < lo ? t + d : lo, hi = t + d > hi ? t + d : hi;
		if (first != lo || second != hi || fold != (lo == hi ? NFD_TZ_ONCE : NFD_TZ_TWICE))
			fail_msg("%s: wall %lld of %lld: %lld/%lld fold %d, glibc %lld/%lld", zone,
				 (long long)wall, (long long)t, (long long)first, (long long)second,
				 fold, (long long)lo, (long long)hi);
		s->slots++;
		s->twice += lo != hi && t == lo;
		/* clocks went forward between t - 300 and t: the wall times
		 * they jumped over, read with the offset before */
		if (t > from && off > prev_off) {
			for (int64_t w = t - 300 + prev_off + 300; w < wall; w += 300) {
				assert_int_equal(nfd_tz_utc(z, w, &first, &second, &fold), 0);
				if (fold != NFD_TZ_SKIPPED || first != w - prev_off || second != first)
					fail_msg("%s: skipped wall %lld: %lld fold %d, want %lld", zone,
						 (long long)w, (long long)first, fold,
						 (long long)(w - prev_off));
				s->skipped++;
			}
		}
		prev_off = off;
	}
}

static const char *const zones[] = {
	"Europe/Prague",	/* +1/+2, the EU's last Sundays */
	"America/New_York",	/* -5/-4, the US's Sundays */
	"Asia/Kolkata",		/* +05:30, no DST */
	"Australia/Lord_Howe",	/* +10:30/+11: a 30-minute change, southern */
	"Pacific/Chatham",	/* +12:45/+13:45 */
	"Europe/Dublin",	/* "negative DST" in the zone file: winter is the DST type */
	"America/Sao_Paulo",	/* DST until 2019, none since */
};

/* Each zone, 2026 and 2040 (past the files' transitions: the footer), from
 * its TZif file and as the process's zone, equal to glibc's. */
static void test_against_glibc(void **state)
{
	(void)state;
	int64_t y2026 = 1767225600, y2027 = 1798761600;	/* 2026-01-01, 2027-01-01 UTC */
	int64_t y2040 = 2208988800, y2041 = 2240611200;

	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		struct nfd_tz *z, *p;
		struct seen s = {0}, s40 = {0}, sp = {0};

		setenv("TZ", zones[i], 1);
		tzset();
		if (nfd_tz_open(zones[i], &z, err) != 0)
			fail_msg("%s: %s", zones[i], err);
		assert_string_equal(nfd_tz_name(z), zones[i]);
		assert_int_equal(nfd_tz_open(NULL, &p, err), 0);
		assert_null(nfd_tz_name(p));
		check_span(zones[i], z, y2026, y2027, &s);
		check_span(zones[i], z, y2040, y2041, &s40);
		check_span(zones[i], p, y2026, y2027, &sp);
		assert_int_equal(s.slots, 365 * 288);
		/* both edges seen where the zone has DST */
		bool dst = strcmp(zones[i], "Asia/Kolkata") != 0 &&
			   strcmp(zones[i], "America/Sao_Paulo") != 0;
		if (dst && (s.twice == 0 || s.skipped == 0 || s40.twice == 0 || s40.skipped == 0))
			fail_msg("%s: %d repeated, %d skipped slots in 2026; %d, %d in 2040",
				 zones[i], s.twice, s.skipped, s40.twice, s40.skipped);
		if (!dst && (s.twice || s.skipped))
			fail_msg("%s: clock changes in a zone without them", zones[i]);
		assert_int_equal(sp.twice, s.twice);
		assert_int_equal(sp.skipped, s.skipped);
		nfd_tz_free(z);
		nfd_tz_free(p);
	}
	setenv("TZ", "UTC", 1);
	tzset();
}

/* Europe/Prague's edges through the file names, as nfcapd writes them:
 * 2026-03-29 02:00-03:00 skipped, 2026-10-25 02:00-03:00 twice. */
static void test_edges_by_name(void **state)
{
	int64_t ms;
	(void)state;

	assert_int_equal(nfd_name_time("nfcapd.202603290155", "Europe/Prague", &ms, err), 0);
	assert_int_equal(ms, 1774745700000);	/* 00:55 UTC */
	assert_int_equal(nfd_name_time("nfcapd.202603290300", "Europe/Prague", &ms, err), 0);
	assert_int_equal(ms, 1774746000000);	/* 01:00 UTC */
	/* no such local time: the offset before, +01:00 */
	assert_int_equal(nfd_name_time("nfcapd.202603290230", "Europe/Prague", &ms, err), 0);
	assert_int_equal(ms, 1774747800000);	/* 01:30 UTC */
	/* twice: the first (00:30 UTC, CEST); the scan takes it for both */
	assert_int_equal(nfd_name_time("nfcapd.202610250230", "Europe/Prague", &ms, err), 0);
	assert_int_equal(ms, 1792888200000);
	assert_int_equal(nfd_name_time("nfcapd.202610250300", "Europe/Prague", &ms, err), 0);
	assert_int_equal(ms, 1792893600000);	/* 02:00 UTC */
	/* fixed offsets and UTC as before */
	assert_int_equal(nfd_name_time("nfcapd.202611240530", "+05:30", &ms, err), 0);
	assert_int_equal(ms, 1795478400000);
	assert_int_equal(nfd_name_time("nfcapd.202611240530", "Asia/Kolkata", &ms, err), 0);
	assert_int_equal(ms, 1795478400000);
}

/* Names refused before any file is opened, and zones that are not there. */
static void test_names_refused(void **state)
{
	static const char *const bad[] = {
		"../../etc/passwd", "/etc/localtime", "Europe/../../../etc/shadow", "Europe//Prague",
		"Europe/Prague/", "Europe/Prague;id", "Europe/Prague x", ".", "..", "Europe/.hidden/..",
		"+5:30", "+25:00", "-01:60", "Mars/Olympus", "Europe", "right/UTC", "posixrules/",
	};
	struct nfd_tz *z;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = nfd_tz_open(bad[i], &z, err);
		if (rc == 0) {
			nfd_tz_free(z);
			fail_msg("'%s' was taken", bad[i]);
		}
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, "files_tz"));
	}
	assert_int_equal(nfd_tz_open("Etc/GMT-14", &z, err), 0);	/* [+-] and digits are a name's */
	nfd_tz_free(z);
}

/* A copy of Europe/Prague's file under a TZDIR of the test's, changed. */
static int open_changed(const char *dir, size_t cut, long at, unsigned char byte)
{
	char path[512];
	unsigned char buf[65536];
	struct nfd_tz *z;
	FILE *f = fopen("/usr/share/zoneinfo/Europe/Prague", "rb");
	size_t n;
	int rc;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (at >= 0)
		buf[at < 0 ? 0 : (size_t)at] = byte;
	snprintf(path, sizeof(path), "%s/Test", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(buf, 1, n - cut, f);
	fclose(f);
	rc = nfd_tz_open("Test", &z, err);
	nfd_tz_free(z);
	return rc;
}

/* Corrupt zone files are refused, each saying why; the file as it is
 * read from TZDIR is taken. */
static void test_corrupt_files(void **state)
{
	char dir[] = "/tmp/test_nfdump_tz.XXXXXX", cmd[128];
	(void)state;

	assert_non_null(mkdtemp(dir));
	setenv("TZDIR", dir, 1);
	assert_int_equal(open_changed(dir, 0, -1, 0), 0);
	assert_int_equal(open_changed(dir, 0, 0, 'X'), -EINVAL);	/* magic */
	assert_non_null(strstr(err, "not a TZif file"));
	assert_int_equal(open_changed(dir, 0, 4, 0), -EINVAL);		/* version 1 */
	assert_non_null(strstr(err, "version 1"));
	assert_int_equal(open_changed(dir, 40, -1, 0), -EINVAL);	/* cut */
	assert_int_equal(open_changed(dir, 1, -1, 0), -EINVAL);		/* footer's newline */
	assert_non_null(strstr(err, "footer"));
	assert_int_equal(open_changed(dir, 0, 2300 - 10, '@'), -EINVAL);	/* footer's text */
	/* the v1 timecnt (bytes 32-35) made huge */
	assert_int_equal(open_changed(dir, 0, 32, 0x7f), -EINVAL);
	unsetenv("TZDIR");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* A file of the repeated hour is read for windows of both its hours
 * (nfcapd appends the second hour's records to it). */
static void test_scan_repeated_hour(void **state)
{
	char dir[] = "/tmp/test_nfdump_tz.XXXXXX", path[256], cmd[128];
	struct nfd_archive a = {.root = dir, .files_tz = "Europe/Prague"};
	struct nfd_files f;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/nfcapd.202610250230", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	/* 00:30 UTC (CEST) and 01:30 UTC (CET) */
	a.bound_ms = 1;
	assert_int_equal(nfd_archive_files(&a, 1792888200000, 1792888500000, &f, err), 0);
	assert_int_equal(f.n, 1);
	nfd_files_free(&f);
	assert_int_equal(nfd_archive_files(&a, 1792891800000, 1792892100000, &f, err), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].ms, 1792891800000);
	nfd_files_free(&f);
	/* but not an hour between them */
	assert_int_equal(nfd_archive_files(&a, 1792890000000, 1792890300000, &f, err), 0);
	assert_int_equal(f.n, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* nfdump -I's output (1.7.1, seen on nfpcapd's file of 2026-11-26 23:55
 * Europe/Prague) read, and what is refused. */
static void test_stat_parse(void **state)
{
	static const char out[] = "Ident: none\nFlows: 2\nFlows_tcp: 2\nFlows_udp: 0\n"
				  "Packets: 12\nBytes: 3303\nFirst: 1795733629\nLast: 1795733631\n"
				  "msec_first: 686\nmsec_last: 203\nSequence failures: 0\n";
	struct nfd_stat st;
	(void)state;

	assert_int_equal(nfd_stat_parse(out, sizeof(out) - 1, &st, err), 0);
	assert_int_equal(st.flows, 2);
	assert_int_equal(st.first, 1795733629);
	assert_int_equal(st.last, 1795733631);
	/* "Flows_tcp:" is not "Flows:", nor a number after text */
	assert_int_equal(nfd_stat_parse("Flows_tcp: 2\nFirst: 1\nLast: 2\n", 31, &st, err),
			 -EBADMSG);
	assert_int_equal(nfd_stat_parse("Flows: 2x\nFirst: 1\nLast: 2\n", 28, &st, err), -EBADMSG);
	assert_int_equal(nfd_stat_parse("{\"first\": 1}\n", 14, &st, err), -EBADMSG);
	assert_int_equal(nfd_stat_parse("", 0, &st, err), -EBADMSG);
}

/* The offset rule: a file named W holds what was received in its slot, so
 * its Last lies from an interval before the slot to its end; the offset
 * seen is rounded to 15 minutes and compared with the zone's at W. */
static void test_check_rule(void **state)
{
	struct nfd_tz *prague, *kolkata, *utc;
	struct nfd_stat st = {.flows = 2};
	int32_t seen, off;
	/* nfcapd.202611262355: 23:55 read as UTC */
	int64_t w = 1795651200 + 23 * 3600 + 55 * 60;
	(void)state;

	assert_int_equal(nfd_tz_open("Europe/Prague", &prague, err), 0);
	assert_int_equal(nfd_tz_open("+05:30", &kolkata, err), 0);
	assert_int_equal(nfd_tz_open("UTC", &utc, err), 0);
	/* Prague's slot is 22:55-23:00 UTC: a Last anywhere from 22:50 to 23:00 */
	for (int64_t last = w - 3600 - 300; last <= w - 3600 + 300; last += 30) {
		st.first = st.last = last;
		assert_int_equal(nfd_tz_check(prague, w, 300, &st, &seen, &off), NFD_TZ_AGREES);
		assert_int_equal(seen, 3600);
		assert_int_equal(off, 3600);
		assert_int_equal(nfd_tz_check(utc, w, 300, &st, &seen, &off), NFD_TZ_DIFFERS);
		assert_int_equal(seen, 3600);
		assert_int_equal(off, 0);
		assert_int_equal(nfd_tz_check(kolkata, w, 300, &st, &seen, &off), NFD_TZ_DIFFERS);
		assert_int_equal(off, 19800);
	}
	/* +05:30: 18:25-18:30 UTC, seen exactly */
	st.first = st.last = w - 19800 + 120;
	assert_int_equal(nfd_tz_check(kolkata, w, 300, &st, &seen, &off), NFD_TZ_AGREES);
	assert_int_equal(seen, 19800);
	/* a quarter of an hour off is told apart */
	st.first = st.last = w - 3600 - 900 + 120;
	assert_int_equal(nfd_tz_check(prague, w, 300, &st, &seen, &off), NFD_TZ_DIFFERS);
	assert_int_equal(seen, 4500);
	/* files of an hour (nfcapd -t 3600): UTC's file of 23:00 holds flows
	 * that ended up to 23:59:59, more than a quarter hour from the name;
	 * the zone agrees when Last allows its offset, Prague's does not */
	int64_t h = 1795651200 + 23 * 3600;
	for (int64_t last = h + 60; last < h + 3600; last += 300) {
		st.first = st.last = last;
		assert_int_equal(nfd_tz_check(utc, h, 3600, &st, &seen, &off), NFD_TZ_AGREES);
		assert_int_equal(nfd_tz_check(prague, h, 3600, &st, &seen, &off), NFD_TZ_DIFFERS);
	}
	/* inconclusive: no flow, or flows days from the name (a replay) */
	st.flows = 0;
	assert_int_equal(nfd_tz_check(utc, w, 300, &st, &seen, &off), NFD_TZ_INCONCLUSIVE);
	st.flows = 5;
	st.first = st.last = w - 3 * 86400;
	assert_int_equal(nfd_tz_check(utc, w, 300, &st, &seen, &off), NFD_TZ_INCONCLUSIVE);
	/* the repeated hour: 02:30 on 2026-10-25 is +02:00 or +01:00, both agree */
	w = 1792893600 + 1800;	/* 2026-10-25 02:30 read as UTC */
	st.first = st.last = w - 7200 + 60;
	assert_int_equal(nfd_tz_check(prague, w, 300, &st, &seen, &off), NFD_TZ_AGREES);
	st.first = st.last = w - 3600 + 60;
	assert_int_equal(nfd_tz_check(prague, w, 300, &st, &seen, &off), NFD_TZ_AGREES);
	char buf[16];
	nfd_tz_format(-19800, buf, sizeof(buf));
	assert_string_equal(buf, "-05:30");
	nfd_tz_format(3600, buf, sizeof(buf));
	assert_string_equal(buf, "+01:00");
	nfd_tz_free(prague);
	nfd_tz_free(kolkata);
	nfd_tz_free(utc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_glibc),
		cmocka_unit_test(test_edges_by_name),
		cmocka_unit_test(test_names_refused),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_scan_repeated_hour),
		cmocka_unit_test(test_stat_parse),
		cmocka_unit_test(test_check_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
