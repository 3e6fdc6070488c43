/*
 * path.h - the path grammar of the flowfs tree (fs/path.c).
 *
 *   /                                   the root
 *   /README.txt, /collector/{info.json,applications.csv,hostgroups.csv,exporters.csv}
 *   /<subject>/                         an address, a prefix with '_' for '/',
 *                                       or a pair A+B (the flows between A and B)
 *   /<subject>/<yyyy-mm-dd>/            a day in the mount's zone
 *   /<subject>/<from>--<to>/            a range: yyyy-mm-ddThh:mm[:ss[.mmm]] twice
 *   /<subject>/<query>/<file>           flows.csv, flows.ndjson, flows.sqlite,
 *                                       summary.txt, timeline.svg, query.json,
 *                                       SHA256SUMS, .progress (unlisted)
 *
 * Names are parsed one component at a time, as FUSE looks them up.  Every
 * valid spelling is accepted and has one canonical name, which
 * fs_node_name() gives and listings show: an address in any spelling
 * inet_pton takes (2001:DB8::1 is 2001:db8::1); a date or time in the one
 * grammar flowfetch's --from/--to also read (cache_when_parse, in the
 * mount's zone: 2026-12-5 is 2026-12-05, 10:00:00 is 10:00, a space may
 * stand for 'T', 9:05 is 09:05, 24:00 the next midnight; milliseconds are
 * kept, 10:00:00.250).  Zone offsets (Z, +01:00) are refused in names:
 * the canonical name is local, and the second of a wall time the clocks
 * pass twice has no local name that reads back as itself.  Forms whose
 * meaning depends on the reader (05-12-2026) are refused.
 *
 * Anything else is -ENOENT, decided without the network, and
 * fs_lookup_why() says why in a sentence for the log: not an address
 * ("10.0.1.300: not an IPv4 address: each of its four numbers is 0 to
 * 255"), host bits set ("did you mean 10.0.1.0_24"), no such day, before
 * the retention (naming its oldest day), after today (naming the
 * collector's today), a range that ends before it starts or after
 * tomorrow's midnight, a file a query folder does not hold, ...
 */
#ifndef FLOWFS_PATH_H
#define FLOWFS_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

enum fs_kind {
	FS_ROOT, FS_README, FS_COLLECTOR, FS_COLLECTOR_FILE,
	FS_SUBJECT, FS_QUERY, FS_FILE,
};

enum fs_file {
	FS_F_CSV, FS_F_NDJSON, FS_F_SQLITE, FS_F_SUMMARY, FS_F_TIMELINE,
	FS_F_QUERY_JSON, FS_F_SUMS, FS_F_PROGRESS, FS_NFILES
};

enum fs_collector_file { FS_C_INFO, FS_C_APPS, FS_C_GROUPS, FS_C_EXPORTERS, FS_NCFILES };

extern const char *const fs_file_names[FS_NFILES];
extern const char *const fs_collector_names[FS_NCFILES];

/* A node of the tree, as far down as it goes. */
struct fs_node {
	enum fs_kind kind;
	struct cache_query q;	/* subject and peer from FS_SUBJECT down; range from FS_QUERY */
	bool is_day;		/* FS_QUERY: a day folder (else a range) */
	int file;		/* FS_FILE: enum fs_file; FS_COLLECTOR_FILE: enum fs_collector_file */
};

/* What the grammar needs to know about the world: the collector's clock
 * and retention.  Days are in the process's zone (TZ, set once). */
struct fs_clock {
	int64_t now_ms;
	int retention_days;	/* the days listed */
	bool retention_stated;	/* the collector's word: older days do not exist */
};

/*
 * The child 'name' of 'parent', into *out.  -ENOENT when the name is not
 * valid there (a bad address, a date that does not exist or lies outside
 * the retention, a range that ends before it starts or after today, ...),
 * -ENAMETOOLONG past NAME_MAX.
 */
int fs_lookup(const struct fs_node *parent, const char *name, const struct fs_clock *clk,
	      struct fs_node *out);

/* Room for fs_lookup_why's reason. */
#define FS_WHY_LEN 320

/*
 * fs_lookup, and on a refusal (-ENOENT, -ENAMETOOLONG, -ENOTDIR) a
 * sentence in why (wl bytes, cut to fit; FS_WHY_LEN suffice) saying what is
 * wrong with the name, without the name's path.  why may be NULL.
 */
int fs_lookup_why(const struct fs_node *parent, const char *name, const struct fs_clock *clk,
		  struct fs_node *out, char *why, size_t wl);

/* The names a folder of parent's kind takes, for a message (static). */
const char *fs_lookup_forms(const struct fs_node *parent);

/* Parse a whole path ("/10.0.0.1/2026-11-27/flows.csv"). */
int fs_path_parse(const char *path, const struct fs_clock *clk, struct fs_node *out);

/* The canonical name of a node's last component (buf: 128 bytes). */
void fs_node_name(const struct fs_node *n, char *buf, size_t len);

/* A subject's canonical folder name: "10.0.0.0_24", "2001:db8::1+10.0.0.1". */
void fs_subject_name(const struct cache_query *q, char *buf, size_t len);

/* The days a subject folder lists: from the oldest day within retention
 * to today, in the process's zone, but none that starts before the epoch
 * or lies after 9999-12-31 (names fs_lookup could not take); *start of
 * each day (ms), oldest first.  When there are more than max, the newest
 * max (today always among them).  Returns the count (at most max). */
int fs_days(const struct fs_clock *clk, int64_t *starts, int max);

/* The node's canonical path, "/" and its canonical names ("/10.0.0.0_24/
 * 2026-11-27/flows.csv"); cut to len - 1 bytes (512 always suffice). */
void fs_node_path(const struct fs_node *n, char *buf, size_t len);

/* A stable 64-bit number for a node (its inode): a hash of its canonical
 * path, never 0 or 1.  Two nodes may share one (a collision): whoever
 * keys a table by it compares the nodes too (fs_node_same). */
uint64_t fs_node_ino(const struct fs_node *n);

/* Whether a and b are the same node of the tree: the same kind and the
 * same canonical path (every spelling of a folder has one).  Never
 * fails. */
bool fs_node_same(const struct fs_node *a, const struct fs_node *b);

/* The number to try after ino when ino is taken by another node (an
 * inode table's probe): never 0 or 1, and a permutation of the rest, so
 * that probing from any number reaches every other. */
uint64_t fs_ino_next(uint64_t ino);

#endif
