/*
 * cache_i.h - what the files of the cache room share and nobody else sees:
 * the struct cache itself with its prepared statements, the column order of
 * the flows table, error helpers, and the fast formatting primitives that
 * the renderers call once a field.
 *
 * Why a separate header: cache.h is the room's whole face and stays free of
 * SQLite types; the store (store.c) and the renderers (render*.c) need the
 * connection and the statements, and the unit tests need the SQL text to
 * check its query plan.
 */
#ifndef FLOWFS_CACHE_I_H
#define FLOWFS_CACHE_I_H

#include <sqlite3.h>

#include "cache.h"

/* ---- the flows table ------------------------------------------------------ */

/*
 * The columns a renderer reads, in the order cache_row_decode() expects.
 * The SELECTs below walk the primary key (subject, start, id) in order, so
 * SQLite needs no temporary B-tree to sort (test_cache checks the plan).
 */
#define CACHE_FLOW_COLS                                                        \
	"start,id,\"end\",src,dst,sport,dport,proto,tcp_flags,icmp_type,"      \
	"icmp_code,pkts,bytes,in_if,out_if,exporter,app,src_as,dst_as,"        \
	"sampling,src_groups,dst_groups,community_id,extra"

/* ?1 subject, ?2 start, ?3 end; with a peer also ?4..?7: the subject's and
 * the peer's first and last address as 16-byte BLOBs. */
#define CACHE_PEER_WHERE                                                       \
	" AND ((src BETWEEN ?4 AND ?5 AND dst BETWEEN ?6 AND ?7)"              \
	" OR (dst BETWEEN ?4 AND ?5 AND src BETWEEN ?6 AND ?7))"
#define CACHE_SQL_FLOWS                                                        \
	"SELECT " CACHE_FLOW_COLS " FROM flows"                                \
	" WHERE subject=?1 AND start>=?2 AND start<?3 ORDER BY start,id"
#define CACHE_SQL_FLOWS_PEER                                                   \
	"SELECT " CACHE_FLOW_COLS " FROM flows"                                \
	" WHERE subject=?1 AND start>=?2 AND start<?3" CACHE_PEER_WHERE        \
	" ORDER BY start,id"

/* The prepared statements kept for the life of a struct cache. */
enum cache_stmt {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_FLOW_INSERT,
	ST_FLOW_INSERT_MANY,
	ST_COVER_DROP_PROVISIONAL,
	ST_COVER_INSERT,
	ST_COVER_SELECT,
	ST_GAP_INSERT,
	ST_GAP_SELECT,
	ST_GAP_DELETE,
	ST_COUNT,
	ST_COUNT_PEER,
	ST_STARTS,
	ST_STARTS_PEER,
	ST_FLOWS,
	ST_FLOWS_PEER,
	ST_LOOKUP_DELETE,
	ST_LOOKUP_INSERT,
	ST_LOOKUP_SELECT,
	ST_AGE_SET,
	ST_AGE_GET,
	ST_COVER_MARK,
	ST_COUNT_ALL
};

struct cache {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st[ST_COUNT_ALL];
	/* cache_set_cancel's flag, for the other connections that read this
	 * file (flows.sqlite's, render_sqlite.c); NULL: none */
	const atomic_int *cancel;
};

/* ---- errors -------------------------------------------------------------- */

/* Write a one-line cause into err (when not NULL) and return rc. */
int cache_fail(char *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The errno for an SQLite result code: BUSY -> EBUSY, FULL -> ENOSPC, ... */
int cache_sqlite_errno(int rc);

/* cache_fail() for a failed SQLite call on db: "<what>: <sqlite message>". */
int cache_sqlite_fail(sqlite3 *db, int rc, char *err, const char *what);

/* ---- query keys ------------------------------------------------------------ */

#define CACHE_KEY_LEN 64

/* The subject's canonical text and the peer's ("" for any peer). */
void cache_query_keys(const struct cache_query *q, char subject[CACHE_KEY_LEN],
		      char peer[CACHE_KEY_LEN]);

/* Bind ?1..?3 (and ?4..?7 when q has a peer) of a flows statement. */
int cache_bind_query(sqlite3_stmt *st, const struct cache_query *q,
		     const char *subject_key);

/* Bind ?1 subject key, ?2 peer key, ?3 start, ?4 end of a coverage or gap
 * statement; the keys are bound SQLITE_STATIC: they must outlive the step. */
void cache_bind_keys(sqlite3_stmt *st, const char *subject, const char *peer, int64_t start,
		     int64_t end);

/* An optional number of a row: NULL (unknown) reads as -1. */
int64_t cache_col_opt(sqlite3_stmt *st, int i);

/* Read a row of CACHE_FLOW_COLS into r (unknown -> -1, "" as documented). */
void cache_row_decode(sqlite3_stmt *st, struct flow_rec *r);

/* A flow's host groups as stored ("3;12;7", the store's and cache/pg.c's
 * spelling): cache_groups_text writes n ids into buf (at least
 * CACHE_GROUPS_MAX * 11 bytes) and returns the length (0: none);
 * cache_groups_parse reads at most CACHE_GROUPS_MAX back (NULL: none). */
size_t cache_groups_text(const uint32_t *g, uint8_t n, char *buf);
uint8_t cache_groups_parse(const unsigned char *s, uint32_t *g);

/* Coverage rows of q, all of them (provisional or not), ordered by start:
 * what cache_coverage() filters and what flows.sqlite records. */
int cache_coverage_all(struct cache *c, const struct cache_query *q,
		       struct cache_cover **out, size_t *n, char *err);


/* ---- the shared cache's claims (cache/pg.c) ---------------------------------- */

struct cache_pg_claim;

/* A claim row over the range: its span, done or claimed, and by whom. */
struct cache_pg_row {
	int64_t start, end;
	bool done;
	int64_t session;	/* the claiming session; unused when done */
};

/* Sort rows into cl's done, mine (claimed by session me) and others, each
 * clipped to [from, to), and free = [from, to) minus every row: what a
 * claim inserts.  Pure; 0 or -ENOMEM (cl and free then empty). */
int cache_pg_claim_sets(const struct cache_pg_row *rows, size_t n, int64_t me, int64_t from,
			int64_t to, struct cache_pg_claim *cl, struct cache_ivals *free_);

/* ms as seconds with three decimals ("1694772000.123", "-0.005"); out >= 24
 * bytes; returns the length. */
size_t cache_secs_text(int64_t ms, char *out);

/*
 * The zone offset cache of a renderer: a few 15-minute buckets, so that
 * localtime_r runs once a bucket, not once a row.  Every zone offset in use
 * is a multiple of 15 minutes and changes at a local time on a 15-minute
 * boundary, so the offset is constant inside a bucket.
 */
#define CACHE_TZ_SLOTS 16
struct cache_tz {
	int64_t bucket[CACHE_TZ_SLOTS];
	int32_t offset[CACHE_TZ_SLOTS];	/* seconds east of UTC */
};

/* Forget every cached offset (after the zone may have changed). */
void cache_tz_reset(struct cache_tz *tz);

/* Seconds east of UTC in the process's zone at ms, through tz. */
int32_t cache_tz_offset(struct cache_tz *tz, int64_t ms);

/* cache_time_format() through tz; out >= 32 bytes; returns the length. */
size_t cache_time_text(struct cache_tz *tz, int64_t ms, char *out);

#endif
