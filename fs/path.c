/*
 * path.c - the grammar of the flowfs tree: names to queries, queries to
 * canonical names.  Pure functions of the name, the zone and the
 * collector's clock: deciding that a name is invalid never costs a request.
 */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


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

/* The last day the grammar can name: 9999-12-31's local midnight. */
static int64_t last_named_day(void)
{
	struct tm tm = {.tm_year = 9999 - 1900, .tm_mon = 11, .tm_mday = 31, .tm_isdst = -1};

	return (int64_t)cache_mktime(&tm) * 1000;
}

static int64_t today(const struct fs_clock *clk)
{
	int64_t last = last_named_day(), d = day_start(clk->now_ms);

	return d < last ? d : last;
}

/* Say why a name is refused, when the caller wants to know (why != NULL). */
static int path_refuse(char *why, size_t wl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int path_refuse(char *why, size_t wl, const char *fmt, ...)
{
	va_list ap;

	if (why && wl) {
		va_start(ap, fmt);
		vsnprintf(why, wl, fmt, ap);
		va_end(ap);
	}
	return -ENOENT;
}

/* One side of a subject name: an address, or a prefix with '_'.  A refusal
 * says why, after "its <which>, 'TEXT': " when which is not NULL (a pair);
 * host bits set names the network meant ("did you mean"). */
static int parse_party(const char *s, size_t len, const char *which, struct cache_prefix *p,
		       char *why, size_t wl)
{
	char buf[64], net[64];
	struct cache_prefix network;
	const char *reason;

	if (len == 0)
		return path_refuse(why, wl, "an empty address");
	if (len >= sizeof(buf))
		return path_refuse(why, wl, "not an address (too long)");
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (char *c = buf; *c; c++)
		if (*c == '_')
			*c = '/';
	if (cache_prefix_parse_why(buf, p, &reason, &network) == 0)
		return 0;
	for (char *c = buf; *c; c++)
		if (*c == '/')
			*c = '_';
	net[0] = '\0';
	if (network.len) {
		struct cache_query q = {.subject = network};
		fs_subject_name(&q, net, sizeof(net));
	}
	if (which)
		return path_refuse(why, wl, "its %s, '%s': %s%s%s%s", which, buf, reason,
				   net[0] ? "; did you mean " : "", net, net[0] ? "?" : "");
	return path_refuse(why, wl, "%s%s%s%s", reason, net[0] ? "; did you mean " : "", net,
			   net[0] ? "?" : "");
}

static int lookup_subject(const char *name, struct fs_node *out, char *why, size_t wl)
{
	const char *plus = strchr(name, '+');
	struct fs_node n;

	memset(&n, 0, sizeof(n));
	n.kind = FS_SUBJECT;
	if (plus) {
		if (strchr(plus + 1, '+'))
			return path_refuse(why, wl, "a pair has two parties, one '+'");
		if (parse_party(name, (size_t)(plus - name), "first party", &n.q.subject, why, wl) ||
		    parse_party(plus + 1, strlen(plus + 1), "second party", &n.q.peer, why, wl))
			return -ENOENT;
		if (n.q.subject.v4 != n.q.peer.v4)
			return path_refuse(why, wl, "a pair of an IPv4 and an IPv6 party "
						    "(no flow is between them)");
		n.q.has_peer = true;
	} else if (parse_party(name, strlen(name), NULL, &n.q.subject, why, wl)) {
		return -ENOENT;
	}
	*out = n;
	return 0;
}

/* One end of a range: a local time (not a date, no offset). */
static int parse_end(const char *s, size_t len, const char *which, int64_t *ms, char *why,
		     size_t wl)
{
	struct cache_when w;
	const char *reason;

	if (cache_when_parse(s, len, CACHE_WHEN_LOCAL, &w, &reason))
		return path_refuse(why, wl, "its %s, '%.*s': %s", which, (int)len, s, reason);
	if (w.is_date)
		return path_refuse(why, wl, "its %s, '%.*s', is a date: a range's ends are times, "
				   "yyyy-mm-ddThh:mm (a whole day is the folder yyyy-mm-dd)",
				   which, (int)len, s);
	*ms = w.ms;
	return 0;
}

static int lookup_query(const struct fs_node *parent, const char *name,
			const struct fs_clock *clk, struct fs_node *out, char *why, size_t wl)
{
	const char *sep = strstr(name, "--");
	struct fs_node n = *parent;
	int64_t oldest = oldest_named(clk), last = today(clk);
	char a[40], b[40];

	n.kind = FS_QUERY;
	cache_when_name(last, true, b, sizeof(b));
	if (!sep) {
		struct cache_when w;
		const char *reason;
		const char *t = strpbrk(name, "T ");
		if (t && strchr(t, '-') && strlen(strchr(t, '-')) > 6)	/* "...T10:00-2026-..." */
			return path_refuse(why, wl, "a range is written with two dashes, "
					   "from--to");
		if (cache_when_parse(name, strlen(name), CACHE_WHEN_LOCAL, &w, &reason))
			return path_refuse(why, wl, "%s", reason);
		if (!w.is_date)
			return path_refuse(why, wl, "a time alone: a day is yyyy-mm-dd, a range "
					   "from--to (yyyy-mm-ddThh:mm--yyyy-mm-ddThh:mm)");
		n.q.start = w.ms;
		if (n.q.start < oldest) {
			cache_when_name(oldest, true, a, sizeof(a));
			return path_refuse(why, wl, "before the %s: the oldest day is %s",
					   clk->retention_stated ? "collector's retention"
								 : "first day of the epoch", a);
		}
		if (n.q.start > last)
			return path_refuse(why, wl, "after today: the collector's today is %s", b);
		n.q.end = day_add(n.q.start, 1);
		n.is_day = true;
	} else {
		if (parse_end(name, (size_t)(sep - name), "start", &n.q.start, why, wl) ||
		    parse_end(sep + 2, strlen(sep + 2), "end", &n.q.end, why, wl))
			return -ENOENT;
		/* like a day: within the retention, and not after today (a range
		 * to 2099 would ask the collector for every 31 days of the future) */
		if (n.q.start > n.q.end)
			return path_refuse(why, wl, "the range ends before it starts");
		if (n.q.start == n.q.end)
			return path_refuse(why, wl, "the range is empty: it ends where it starts");
		if (n.q.start < oldest) {
			cache_when_name(oldest, true, a, sizeof(a));
			return path_refuse(why, wl, "the range starts before the collector's "
					   "retention: its oldest day is %s", a);
		}
		if (n.q.start > clk->now_ms) {
			cache_when_name(clk->now_ms - clk->now_ms % 1000, false, a, sizeof(a));
			return path_refuse(why, wl, "the range starts after the collector's clock "
					   "(now %s)", a);
		}
		/* tomorrow's midnight, but a time of year 9999 at the latest:
		 * "9999-12-31T24:00" is 10000-01-01, which no name can write */
		int64_t end_max = day_add(last, 1), named_max = day_add(last_named_day(), 1) - 1;
		if (end_max > named_max)
			end_max = named_max;
		if (n.q.end > end_max) {
			cache_when_name(end_max, false, a, sizeof(a));
			return path_refuse(why, wl, "the range ends after today (the collector's "
					   "today is %s): it may end at %s at the latest", b, a);
		}
		n.is_day = false;
	}
	*out = n;
	return 0;
}

int fs_lookup(const struct fs_node *parent, const char *name, const struct fs_clock *clk,
	      struct fs_node *out)
{
	return fs_lookup_why(parent, name, clk, out, NULL, 0);
}

int fs_lookup_why(const struct fs_node *parent, const char *name, const struct fs_clock *clk,
		  struct fs_node *out, char *why, size_t wl)
{
	size_t len = strlen(name);

	if (len > NAME_MAX) {
		path_refuse(why, wl, "longer than %d bytes", NAME_MAX);
		return -ENAMETOOLONG;
	}
	if (len == 0 || strchr(name, '/'))
		return path_refuse(why, wl, "an empty name, or one with '/'");
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			return path_refuse(why, wl, "a control character in the name");
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
		return lookup_subject(name, out, why, wl);
	case FS_COLLECTOR:
		for (int i = 0; i < FS_NCFILES; i++) {
			if (strcmp(name, fs_collector_names[i]) == 0) {
				memset(out, 0, sizeof(*out));
				out->kind = FS_COLLECTOR_FILE;
				out->file = i;
				return 0;
			}
		}
		return path_refuse(why, wl, "not a file of collector/");
	case FS_SUBJECT:
		return lookup_query(parent, name, clk, out, why, wl);
	case FS_QUERY:
		for (int i = 0; i < FS_NFILES; i++) {
			if (strcmp(name, fs_file_names[i]) == 0) {
				*out = *parent;
				out->kind = FS_FILE;
				out->file = i;
				return 0;
			}
		}
		return path_refuse(why, wl, "not a file of a query folder");
	default:
		path_refuse(why, wl, "not a folder");
		return -ENOTDIR;
	}
}

const char *fs_lookup_forms(const struct fs_node *parent)
{
	switch (parent->kind) {
	case FS_ROOT:
		return "an address (192.0.2.10, 2001:db8::1), a prefix with _ for / "
		       "(198.51.100.0_24), a pair A+B, README.txt or collector";
	case FS_COLLECTOR:
		return "info.json, applications.csv, hostgroups.csv, exporters.csv";
	case FS_SUBJECT:
		return "a day yyyy-mm-dd, or a range yyyy-mm-ddThh:mm[:ss[.mmm]]--"
		       "yyyy-mm-ddThh:mm[:ss[.mmm]], in the mount's zone";
	case FS_QUERY:
		return "flows.csv, flows.ndjson, flows.sqlite, summary.txt, timeline.svg, "
		       "query.json, SHA256SUMS, .progress";
	default:
		return "nothing: not a folder";
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
			cache_when_name(n->q.start, true, buf, len);
		} else {
			char a[32], b[32];
			cache_when_name(n->q.start, false, a, sizeof(a));
			cache_when_name(n->q.end, false, b, sizeof(b));
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
