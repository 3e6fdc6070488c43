/*
 * fuzz_path.c - libFuzzer target: the flowfs path grammar (fs/path.c),
 * in the mount's time zone and against the collector's clock.
 *
 * Input: byte 0 picks the zone (TZ) from a list of awkward ones (DST at
 * midnight, half-hour and negative DST, a skipped day, POSIX rules), byte 1
 * the collector's clock from a list of instants near transitions and
 * bounds, byte 2 the retention in days; the rest, cut at the first NUL, is
 * the path given to fs_path_parse().
 *
 * Properties checked beyond "no crash":
 *   - the answer is 0, ENOENT, ENAMETOOLONG or ENOTDIR, nothing else;
 *   - a parsed node's canonical path (its names as listings show them)
 *     fits in NAME_MAX a component, parses to the same node (same subject,
 *     peer, range, file) with the same inode, and renders to itself;
 *   - a query starts no earlier than the oldest listed day, and not after
 *     the collector's clock; it ends after it starts; a day lasts more than
 *     0 and at most 48 hours, begins on a listed day and ends where the next
 *     day begins;
 *   - every day the subject folder lists (fs_days) parses by its name back
 *     to that same day.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzzutil.h"
#include "path.h"

#define HOUR_MS 3600000LL

static const char *const zones[] = {
	"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
	"Pacific/Apia", "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Kiritimati",
	"America/St_Johns", "Asia/Beirut", "America/Havana", "Africa/Casablanca",
	"Europe/Dublin", "Antarctica/Troll", "America/Santiago", "Asia/Gaza",
	"Etc/GMT+12", "Etc/GMT-14", "CET-1CEST,M3.5.0,M10.5.0/3",
	"<+0545>-5:45", "EST5EDT,M3.2.0/0,M11.1.0/0", "XYZ-24:00",
};

static const int64_t clocks[] = {
	1795953600000LL,	/* 2026-11-29T12:00Z */
	1774746000000LL,	/* 2026-03-29T01:00Z: the EU spring change */
	1792890000000LL,	/* 2026-10-25T01:00Z: the EU autumn change */
	1325203200000LL,	/* 2011-12-30T00:00Z: Samoa skips a day */
	1541300400000LL,	/* 2018-11-04T03:00Z: Sao Paulo's midnight change */
	86399999LL,		/* the first day of the epoch, its last ms */
	0LL,			/* the epoch itself */
	2147483647000LL,	/* 2038-01-19T03:14:07Z */
	253402300799999LL,	/* 9999-12-31T23:59:59.999Z */
	1795996799999LL,	/* 2026-11-29T23:59:59.999Z */
	1795910400000LL,	/* 2026-11-29T00:00Z */
	1711846800000LL,	/* 2024-03-31T01:00Z */
};

static struct fs_clock pick_clock(const uint8_t *data)
{
	struct fs_clock c;
	unsigned r = data[2];

	c.now_ms = clocks[data[1] % (sizeof(clocks) / sizeof(clocks[0]))];
	c.retention_days = r < 240 ? (int)r + 1 : r < 250 ? 365 : r < 253 ? 400 : 36500;
	/* zones are few: the byte's high bit says whether the collector
	 * states its retention (else any past day is a name, issue 11) */
	c.retention_stated = data[0] < 128;
	return c;
}

static void use_zone(unsigned i)
{
	static int cur = -1;

	i %= sizeof(zones) / sizeof(zones[0]);
	if ((int)i == cur)
		return;
	setenv("TZ", zones[i], 1);
	tzset();
	cur = (int)i;
}

/* The node's canonical path: each component a name a listing could show. */
static void canonical_path(const struct fs_node *n, char *path, size_t len)
{
	fs_node_path(n, path, len);
	FUZZ_CHECK(strlen(path) < len - 1, "canonical path '%s' cut", path);
	for (const char *c = path + 1; *c;) {
		size_t nl = strcspn(c, "/");
		FUZZ_CHECK(nl > 0 && nl < 127 && nl <= NAME_MAX, "a component of '%s' is %zu long",
			   path, nl);
		c += nl + (c[nl] == '/');
	}
}

static bool same_prefix(const struct cache_prefix *a, const struct cache_prefix *b)
{
	return memcmp(a->addr, b->addr, 16) == 0 && a->len == b->len && a->v4 == b->v4;
}

static bool same_node(const struct fs_node *a, const struct fs_node *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == FS_COLLECTOR_FILE || a->kind == FS_FILE)
		if (a->file != b->file)
			return false;
	if (a->kind == FS_SUBJECT || a->kind == FS_QUERY || a->kind == FS_FILE) {
		if (!same_prefix(&a->q.subject, &b->q.subject) || a->q.has_peer != b->q.has_peer ||
		    (a->q.has_peer && !same_prefix(&a->q.peer, &b->q.peer)))
			return false;
	}
	if (a->kind == FS_QUERY || a->kind == FS_FILE)
		return a->is_day == b->is_day && a->q.start == b->q.start && a->q.end == b->q.end;
	return true;
}

/* The day listing and the lookup of a day's name agree. */
static void check_days(const struct fs_clock *clk, const struct fs_node *subject,
		       const struct fs_node *query)
{
	static int64_t starts[402];
	int n = fs_days(clk, starts, 402);

	FUZZ_CHECK(n <= clk->retention_days + 1, "%d days listed for retention %d", n,
		   clk->retention_days);
	FUZZ_CHECK(n > 0 || !query, "a day or range parsed, but no day is listed");
	for (int i = 1; i < n; i++)
		FUZZ_CHECK(starts[i] > starts[i - 1], "days listed out of order");
	if (query) {
		bool listed = false;
		for (int i = 0; i < n; i++)
			listed |= starts[i] == query->q.start;
		/* without a stated retention a name may enter a day older
		 * than the listing shows */
		if (query->is_day && (clk->retention_stated || query->q.start >= starts[0]))
			FUZZ_CHECK(listed, "day %lld parsed but not listed", (long long)query->q.start);
		FUZZ_CHECK(query->q.start >= starts[0] || !clk->retention_stated,
			   "query starts at %lld before the oldest day %lld",
			   (long long)query->q.start, (long long)starts[0]);
	}
	/* the names of the oldest, the second and the last listed day, looked up */
	int pick[3] = {0, n > 1 ? 1 : 0, n - 1};
	for (int k = 0; k < 3 && n > 0; k++) {
		struct fs_node day = *subject, back;
		char name[128];
		int i = pick[k];
		day.kind = FS_QUERY;
		day.is_day = true;
		day.q.start = starts[i];
		fs_node_name(&day, name, sizeof(name));
		int rc = fs_lookup(subject, name, clk, &back);
		FUZZ_CHECK(rc == 0, "listed day '%s' (%lld) is %d when looked up", name,
			   (long long)starts[i], rc);
		FUZZ_CHECK(back.q.start == starts[i], "listed day '%s' is %lld, looked up %lld", name,
			   (long long)starts[i], (long long)back.q.start);
		if (i + 1 < n)
			FUZZ_CHECK(back.q.end == starts[i + 1], "day '%s' ends at %lld, the next at %lld",
				   name, (long long)back.q.end, (long long)starts[i + 1]);
	}
}

static void check_node(const struct fs_node *n, const struct fs_clock *clk)
{
	char path[640];
	struct fs_node back;

	canonical_path(n, path, sizeof(path));
	int rc = fs_path_parse(path, clk, &back);
	FUZZ_CHECK(rc == 0, "canonical path '%s' is %d", path, rc);
	FUZZ_CHECK(same_node(n, &back), "canonical path '%s' is another node", path);
	FUZZ_CHECK(fs_node_ino(n) == fs_node_ino(&back), "'%s': two inode numbers", path);
	FUZZ_CHECK((fs_node_ino(n) == 1) == (n->kind == FS_ROOT), "'%s': inode %llu", path,
		   (unsigned long long)fs_node_ino(n));
	char again[640];
	canonical_path(&back, again, sizeof(again));
	FUZZ_CHECK(strcmp(path, again) == 0, "canonical path '%s' renders as '%s'", path, again);

	bool query = n->kind == FS_QUERY || n->kind == FS_FILE;
	if (query) {
		FUZZ_CHECK(n->q.start < n->q.end, "'%s': empty range", path);
		FUZZ_CHECK(n->q.start <= clk->now_ms, "'%s' starts after the collector's clock", path);
		if (n->is_day)
			FUZZ_CHECK(n->q.end - n->q.start <= 48 * HOUR_MS, "'%s' lasts %lld ms", path,
				   (long long)(n->q.end - n->q.start));
	}
	if ((query || n->kind == FS_SUBJECT) && clk->retention_days <= 400) {
		struct fs_node subject = *n;
		subject.kind = FS_SUBJECT;
		check_days(clk, &subject, query ? n : NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[8192];
	struct fs_node n;

	if (size < 3 || size - 3 >= sizeof(path))
		return 0;
	use_zone(data[0]);
	struct fs_clock clk = pick_clock(data);
	memcpy(path, data + 3, size - 3);
	path[size - 3] = '\0';
	int rc = fs_path_parse(path, &clk, &n);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -ENAMETOOLONG || rc == -ENOTDIR,
		   "'%s' is %d", path, rc);
	if (rc == 0)
		check_node(&n, &clk);
	return 0;
}
