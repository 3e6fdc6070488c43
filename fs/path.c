/*
 * path.c - the grammar of the flowfs tree: names to queries, queries to
 * canonical names.  Pure functions of the name, the zone and the
 * collector's clock: deciding that a name is invalid never costs a request.
 */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

const char *const fs_file_names[FS_NFILES] = {
	"flows.csv", "flows.ndjson", "flows.sqlite", "summary.txt", "timeline.svg",
	"query.json", "SHA256SUMS", ".progress",
};

const char *const fs_collector_names[FS_NCFILES] = {
	"info.json", "applications.csv", "hostgroups.csv", "exporters.csv",
};

/* Local midnight of the day holding ms, in the process's zone. */
static int64_t day_start(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)cache_mktime(&tm) * 1000;
}

/* Local midnight 'days' calendar days after the day starting at ms. */
static int64_t day_add(int64_t ms, int days)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_mday += days;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (int64_t)cache_mktime(&tm) * 1000;
}

/*
 * The days the grammar can name run from the first local midnight at or
 * after the epoch (the API's times are >= 0) to 9999-12-31 (four-digit
 * years): a collector whose retention or clock reaches past either end
 * gets its listing cut there, so that every day listed can be looked up.
 */
static int64_t oldest_day(const struct fs_clock *clk)
{
	int64_t first = day_start(0), d = day_add(day_start(clk->now_ms), -clk->retention_days);

	if (first < 0)
		first = day_add(first, 1);
	return d > first ? d : first;
}

/* The oldest day a name may enter: the retention's when the collector
 * states one, else the grammar's first (any past day is asked). */
static int64_t oldest_named(const struct fs_clock *clk)
{
	int64_t first = day_start(0);

	if (clk->retention_stated)
		return oldest_day(clk);
	return first < 0 ? day_add(first, 1) : first;
}

static int64_t today(const struct fs_clock *clk)
{
	struct tm tm = {.tm_year = 9999 - 1900, .tm_mon = 11, .tm_mday = 31, .tm_isdst = -1};
	int64_t last = (int64_t)cache_mktime(&tm) * 1000, d = day_start(clk->now_ms);

	return d < last ? d : last;
}

/* Parse "yyyy-mm-dd" or "yyyy-mm-ddThh:mm[:ss]" (exactly that, local). */
static int parse_local(const char *s, size_t len, bool want_time, int64_t *ms)
{
	char buf[32];
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	struct tm tm;

	if (len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!want_time) {
		if (len != 10 || sscanf(buf, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
			return -ENOENT;
	} else if (len == 16) {
		if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || n != 16)
			return -ENOENT;
	} else if (len == 19) {
		if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
		    n != 19)
			return -ENOENT;
	} else {
		return -ENOENT;
	}
	for (size_t i = 0; i < len; i++)	/* sscanf takes signs and spaces: we do not */
		if (!((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '-' || buf[i] == ':' || buf[i] == 'T') ||
		    (buf[i] == '-' && i != 4 && i != 7))
			return -ENOENT;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return -ENOENT;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	time_t t = cache_mktime(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -ENOENT;	/* 2023-02-29 */
	*ms = (int64_t)t * 1000;
	return 0;
}

static void format_local(int64_t ms, bool with_time, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	if (!with_time)
		strftime(buf, len, "%Y-%m-%d", &tm);
	else if (tm.tm_sec)
		strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M", &tm);
}

/* One side of a subject name: an address, or a prefix with '_'. */
static int parse_party(const char *s, size_t len, struct cache_prefix *p)
{
	char buf[64];

	if (len == 0 || len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (char *c = buf; *c; c++) {
		if (*c == '/')
			return -ENOENT;	/* cannot occur in a name, but be sure */
		if (*c == '_')
			*c = '/';
	}
	return cache_prefix_parse(buf, p) ? -ENOENT : 0;
}

static int lookup_subject(const char *name, struct fs_node *out)
{
	const char *plus = strchr(name, '+');
	struct fs_node n;

	memset(&n, 0, sizeof(n));
	n.kind = FS_SUBJECT;
	if (plus) {
		if (strchr(plus + 1, '+') ||
		    parse_party(name, (size_t)(plus - name), &n.q.subject) ||
		    parse_party(plus + 1, strlen(plus + 1), &n.q.peer) ||
		    n.q.subject.v4 != n.q.peer.v4)
			return -ENOENT;
		n.q.has_peer = true;
	} else if (parse_party(name, strlen(name), &n.q.subject)) {
		return -ENOENT;
	}
	*out = n;
	return 0;
}

static int lookup_query(const struct fs_node *parent, const char *name,
			const struct fs_clock *clk, struct fs_node *out)
{
	const char *sep = strstr(name, "--");
	struct fs_node n = *parent;
	int64_t oldest = oldest_named(clk);

	n.kind = FS_QUERY;
	if (!sep) {
		if (parse_local(name, strlen(name), false, &n.q.start))
			return -ENOENT;
		if (n.q.start < oldest || n.q.start > today(clk))
			return -ENOENT;	/* outside the retention, or after today */
		n.q.end = day_add(n.q.start, 1);
		n.is_day = true;
	} else {
		if (parse_local(name, (size_t)(sep - name), true, &n.q.start) ||
		    parse_local(sep + 2, strlen(sep + 2), true, &n.q.end))
			return -ENOENT;
		/* like a day: within the retention, and not after today (a range
		 * to 2099 would ask the collector for every 31 days of the future) */
		if (n.q.start >= n.q.end || n.q.start < oldest || n.q.start > clk->now_ms ||
		    n.q.end > day_add(day_start(clk->now_ms), 1))
			return -ENOENT;
		n.is_day = false;
	}
	*out = n;
	return 0;
}

int fs_lookup(const struct fs_node *parent, const char *name, const struct fs_clock *clk,
	      struct fs_node *out)
{
	size_t len = strlen(name);

	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strchr(name, '/'))
		return -ENOENT;
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			return -ENOENT;
	switch (parent->kind) {
	case FS_ROOT:
		if (strcmp(name, "README.txt") == 0) {
			memset(out, 0, sizeof(*out));
			out->kind = FS_README;
			return 0;
		}
		if (strcmp(name, "collector") == 0) {
			memset(out, 0, sizeof(*out));
			out->kind = FS_COLLECTOR;
			return 0;
		}
		return lookup_subject(name, out);
	case FS_COLLECTOR:
		for (int i = 0; i < FS_NCFILES; i++) {
			if (strcmp(name, fs_collector_names[i]) == 0) {
				memset(out, 0, sizeof(*out));
				out->kind = FS_COLLECTOR_FILE;
				out->file = i;
				return 0;
			}
		}
		return -ENOENT;
	case FS_SUBJECT:
		return lookup_query(parent, name, clk, out);
	case FS_QUERY:
		for (int i = 0; i < FS_NFILES; i++) {
			if (strcmp(name, fs_file_names[i]) == 0) {
				*out = *parent;
				out->kind = FS_FILE;
				out->file = i;
				return 0;
			}
		}
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
}

int fs_path_parse(const char *path, const struct fs_clock *clk, struct fs_node *out)
{
	struct fs_node cur;
	char comp[NAME_MAX + 2];

	memset(&cur, 0, sizeof(cur));
	cur.kind = FS_ROOT;
	if (path[0] != '/')
		return -ENOENT;
	for (const char *p = path + 1; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n + (slash ? 1 : 0);
		if (n == 0)
			continue;
		int rc = fs_lookup(&cur, comp, clk, &cur);
		if (rc)
			return rc;
	}
	*out = cur;
	return 0;
}

void fs_subject_name(const struct cache_query *q, char *buf, size_t len)
{
	char a[64], b[64] = "";

	cache_prefix_format(&q->subject, a, sizeof(a));
	if (q->has_peer)
		cache_prefix_format(&q->peer, b, sizeof(b));
	snprintf(buf, len, "%s%s%s", a, q->has_peer ? "+" : "", b);
	for (char *c = buf; *c; c++)
		if (*c == '/')
			*c = '_';
}

void fs_node_name(const struct fs_node *n, char *buf, size_t len)
{
	switch (n->kind) {
	case FS_ROOT: snprintf(buf, len, "/"); break;
	case FS_README: snprintf(buf, len, "README.txt"); break;
	case FS_COLLECTOR: snprintf(buf, len, "collector"); break;
	case FS_COLLECTOR_FILE: snprintf(buf, len, "%s", fs_collector_names[n->file]); break;
	case FS_SUBJECT: fs_subject_name(&n->q, buf, len); break;
	case FS_QUERY:
		if (n->is_day) {
			format_local(n->q.start, false, buf, len);
		} else {
			char a[32], b[32];
			format_local(n->q.start, true, a, sizeof(a));
			format_local(n->q.end, true, b, sizeof(b));
			snprintf(buf, len, "%s--%s", a, b);
		}
		break;
	case FS_FILE: snprintf(buf, len, "%s", fs_file_names[n->file]); break;
	}
}

int fs_days(const struct fs_clock *clk, int64_t *starts, int max)
{
	int64_t d = oldest_day(clk), last = today(clk);
	int n = 0;

	if (max < 1)
		return 0;
	/* a retention longer than the room: the newest days, not the oldest */
	int64_t newest = day_add(last, -(max - 1));
	if (newest > d)
		d = newest;
	for (; d <= last && n < max; d = day_add(d, 1))
		starts[n++] = d;
	return n;
}

void fs_node_path(const struct fs_node *n, char *buf, size_t len)
{
	char name[128];
	struct fs_node parts[4];
	int depth = 0;
	size_t o = 0;

	if (len == 0)
		return;
	snprintf(buf, len, "/");
	/* the components, from the node up to the root */
	struct fs_node cur = *n;
	while (cur.kind != FS_ROOT && depth < 4) {
		parts[depth++] = cur;
		switch (cur.kind) {
		case FS_FILE: cur.kind = FS_QUERY; break;
		case FS_QUERY: cur.kind = FS_SUBJECT; break;
		case FS_COLLECTOR_FILE: cur.kind = FS_COLLECTOR; break;
		default: cur.kind = FS_ROOT; break;
		}
	}
	for (int i = depth - 1; i >= 0 && o < len; i--) {
		fs_node_name(&parts[i], name, sizeof(name));
		o += (size_t)snprintf(buf + o, len - o, "/%s", name);
	}
}

uint64_t fs_node_ino(const struct fs_node *n)
{
	char path[512];
	uint64_t h = 0xcbf29ce484222325ULL;

	if (n->kind == FS_ROOT)
		return 1;
	fs_node_path(n, path, sizeof(path));
	for (const char *c = path; *c; c++) {
		h ^= (unsigned char)*c;
		h *= 0x100000001b3ULL;
	}
	return h < 2 ? h + 2 : h;
}

bool fs_node_same(const struct fs_node *a, const struct fs_node *b)
{
	char pa[512], pb[512];

	if (a->kind != b->kind)
		return false;
	fs_node_path(a, pa, sizeof(pa));
	fs_node_path(b, pb, sizeof(pb));
	return strcmp(pa, pb) == 0;
}

uint64_t fs_ino_next(uint64_t ino)
{
	return ino >= UINT64_MAX || ino < 2 ? 2 : ino + 1;
}
