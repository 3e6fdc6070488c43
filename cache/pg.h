/*
 * pg.h - the team's shared cache on PostgreSQL (issue 17): the store of
 * record that several machines share, with single flight across them.
 *
 * What it is.  Each machine keeps its local SQLite cache (cache.h) as
 * today, as a mirror of what it read, so that rendering and the audit are
 * written once.  PostgreSQL holds every window any member of the team
 * fetched, and the claims that say who is fetching what.  For a query's
 * span the caller (the engine, once wired; tests/pg/pgrun.c today):
 *
 *   1. asks the local cache what it lacks (cache_missing);
 *   2. copies what PostgreSQL holds as done into the local cache
 *      (cache_pg_pull: flows, coverage, gaps);
 *   3. claims the rest (cache_pg_claim): one short transaction takes
 *      pg_advisory_xact_lock on the query's 64-bit key, frees the claims of
 *      expired sessions, and inserts claim rows for the free parts, which
 *      an exclusion constraint on (query key, int8range span) keeps
 *      disjoint even if the lock were skipped; spans that another live
 *      session holds are waited for (cache_pg_wait), not asked of the
 *      collector;
 *   4. writes each window it fetched here (cache_pg_put_window: COPY
 *      straight into flows; when a record's key is there already, COPY
 *      into a temporary table, then INSERT ... ON CONFLICT DO NOTHING on
 *      the key, so a window sent twice adds nothing twice; coverage and
 *      gap rows), in a transaction that first checks with SELECT ... FOR
 *      UPDATE that the claim is still this session's, and, once that
 *      committed, to the local cache (cache_put_window);
 *   5. marks the claim done (cache_pg_done), which NOTIFYs the waiters.
 *
 * Sessions.  cache_pg_open inserts a session row and starts a thread, with
 * a connection of its own, that refreshes its heartbeat every heartbeat_s
 * seconds.  A session whose heartbeat is older than expiry_s (by the
 * server's clock: the machines' clocks never matter) is expired: the next
 * claim transaction of any client deletes it, and its claims with it, so
 * the spans are free again.  A client that comes back after that (a
 * process stopped with SIGSTOP, a laptop resumed) finds its claim gone and
 * every write fails with -ESTALE: it never writes over a span another
 * finished.
 *
 * Deadlines.  Every network wait has one: connect_timeout (libpq's, unless
 * the URL sets its own), statement_timeout and lock_timeout on the server,
 * TCP keepalives and tcp_user_timeout for a peer that vanishes, and a
 * bound on cache_pg_wait.  A broken connection (PostgreSQL restarted)
 * fails the call with -ECONNRESET and the transaction is never half done:
 * a claim is marked done only by cache_pg_done, after its windows were
 * committed.
 *
 * Secrets.  The target is read with libpq's own conventions (a URL
 * "postgresql://...", "key=value" pairs, a service name from
 * pg_service.conf, PGPASSFILE, PGSSLMODE, ...); this module never prints a
 * password: cache_pg_target shows the target with every secret left out,
 * and every message names the target that way.
 *
 * Conventions: as cache.h: 0 or a negative errno, and err (CACHE_ERRLEN
 * bytes, when not NULL) gets a one-line cause that includes libpq's
 * message (PQerrorMessage) where the failure came from the server; the
 * caller logs it once.  A struct cache_pg is used by one thread at a time
 * (its heartbeat thread has its own connection).
 */
#ifndef FLOWFS_CACHE_PG_H
#define FLOWFS_CACHE_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

/* The schema of the shared store (cache/pg.c's pg_migrations). */
#define CACHE_PG_SCHEMA_VERSION 3

struct cache_pg;

/* Tunables; 0 in a field takes its default. */
struct cache_pg_opts {
	int heartbeat_s;	/* heartbeat period, default 5 */
	int expiry_s;		/* a session silent this long is expired, default 30 */
	int connect_timeout_s;	/* default 10 (the URL's own connect_timeout wins) */
	int statement_ms;	/* statement_timeout and lock_timeout, default 30000 */
	/* Tests only: migrate a new database to this version and stop there
	 * (0: CACHE_PG_SCHEMA_VERSION). */
	int schema_upto;
};

/*
 * The target of conninfo with its secrets left out, for messages:
 * "host=/tmp/x port=5432 dbname=flows user=alice" (only the keys that are
 * set, never password nor sslpassword).  A conninfo libpq cannot parse
 * gives "(unparsable connection string)".  Cut to len - 1 bytes.
 */
void cache_pg_target(const char *conninfo, char *buf, size_t len);

/* Does conninfo give a password (a URL's user:password@, password=,
 * sslpassword=)?  The fronts refuse one on their command line: it would
 * be seen in ps and in the shell's history.  false for an unparsable
 * conninfo (cache_pg_open refuses it). */
bool cache_pg_has_secret(const char *conninfo);

/*
 * Connect to the shared store of the collector 'id' (conninfo read by
 * libpq: URL, key=value, service), set the deadlines above, create or
 * migrate the schema (under an advisory lock, so that two first openings
 * do not race), register the collector (its URL and product: a database
 * that holds this URL with another product is refused, -EEXIST), insert a
 * session row and start the heartbeat thread.  Errors: -EINVAL (bad
 * arguments or conninfo), -ECONNREFUSED (cannot connect: the cause and
 * the redacted target in err), -EACCES (authentication), -EPROTO (a schema
 * newer than this program, left untouched), -EEXIST, -ENOMEM, -EIO.  On
 * error nothing is left open and *out is NULL.
 */
int cache_pg_open(const char *conninfo, const struct cache_identity *id,
		  const struct cache_pg_opts *opts, struct cache_pg **out, char *err);

/* Stop the heartbeat (waiting, at worst, for its reconnection's
 * connect_timeout), delete the session over whichever connection works
 * (its unfinished claims are free at once) and disconnect.  NULL is a
 * no-op.  Errors are ignored: an unreachable server expires the session by
 * itself.  After -ECONNRESET or -ESTALE, close and open again: the
 * heartbeat keeps a session alive while its caller's connection is gone. */
void cache_pg_close(struct cache_pg *p);

/* This session's id (for messages and tests). */
int64_t cache_pg_session(const struct cache_pg *p);

/* The query key: 64 bits of SHA-256 over (collector URL, subject, peer),
 * the advisory lock's key and the claims' key. */
int64_t cache_pg_qkey(const struct cache_pg *p, const struct cache_query *q);

/* What a claim found for [from, to), each clipped to it, sorted, merged. */
struct cache_pg_claim {
	struct cache_ivals mine;	/* claimed for this session: fetch these */
	struct cache_ivals others;	/* held by other live sessions: wait */
	struct cache_ivals done;	/* finished: pull them */
};
void cache_pg_claim_free(struct cache_pg_claim *cl);

/*
 * Claim what is free in [q->start, q->end) for (q's subject, q's peer), in
 * one transaction as described above.  Claims this session held already
 * count as mine.  Errors: -ESTALE (this session expired and was removed:
 * open a new one), -ECONNRESET (connection lost), -ETIMEDOUT (a server
 * timeout), -EIO; cl is then empty and nothing was claimed.
 */
int cache_pg_claim(struct cache_pg *p, const struct cache_query *q,
		   struct cache_pg_claim *cl, char *err);

/*
 * Store a window fetched inside one of this session's claims: its records
 * under q's subject (COPY; a record there already is kept, the others
 * added, by ON CONFLICT DO NOTHING) and, when cover is not NULL, its coverage row, in one
 * transaction that first locks the claim row (SELECT ... FOR UPDATE).
 * -ESTALE when no claim of this session spans [cover or q's range]
 * (expired and reclaimed, or never claimed): nothing is written.  Other
 * errors as cache_pg_claim, nothing written.
 */
int cache_pg_put_window(struct cache_pg *p, const struct cache_query *q,
			const struct flow_rec *recs, size_t n,
			const struct cache_cover *cover, char *err);

/* Record a gap inside one of this session's claims (same check as
 * cache_pg_put_window; a gap sent twice is stored once). */
int cache_pg_put_gap(struct cache_pg *p, const struct cache_query *q,
		     const struct cache_gap *g, char *err);

/*
 * Mark this session's claims inside [q->start, q->end) done and NOTIFY the
 * waiters.  -ESTALE when this session holds no claim there any more
 * (nothing changes); other errors as cache_pg_claim.
 */
int cache_pg_done(struct cache_pg *p, const struct cache_query *q, char *err);

/* Give back this session's unfinished claims inside q's range (a fetch
 * that failed): they are free at once, and the waiters are told. */
int cache_pg_release(struct cache_pg *p, const struct cache_query *q, char *err);

/*
 * Wait until a claim of q's key changes (another session marked done or
 * released, NOTIFY), or at most timeout_ms: the caller then claims again
 * (an expired holder is seen only by a claim, so the wait is also the
 * poll).  0 in both cases; -ECONNRESET when the connection is lost.
 */
int cache_pg_wait(struct cache_pg *p, const struct cache_query *q, int timeout_ms,
		  char *err);

/*
 * Copy what the shared store holds for [q->start, q->end) into the local
 * cache c: for each coverage row of (q's subject, q's peer) there that c
 * does not cover yet (a final row: by final coverage), the subject's flows
 * inside it and the row, with cache_put_window (a record there already is
 * kept), so that pulling twice adds nothing; then q's gaps there, with cache_put_gap, after
 * cache_clear_gaps over the range when the shared store has any.  *windows
 * (when not NULL) gets the number of coverage rows copied.  Errors: the
 * server's as cache_pg_claim, the local cache's as cache.h says.
 */
int cache_pg_pull(struct cache_pg *p, const struct cache_query *q, struct cache *c,
		  size_t *windows, char *err);

/* Has the heartbeat thread found this session expired (its row gone)? */
bool cache_pg_lost(const struct cache_pg *p);

#endif
