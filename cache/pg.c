/*
 * pg.c - the team's shared cache on PostgreSQL (cache/pg.h is its face;
 * docs/design.md, "The shared cache", the protocol and its failures).
 *
 * How it is built.  One connection for the caller's thread, one for the
 * heartbeat thread (libpq connections are not shared between threads).
 * Every write is one transaction; a write of flows first locks the claim
 * it belongs to (SELECT ... FOR UPDATE), so that a claim transaction that
 * frees an expired session's claims either runs before it (the write then
 * finds no claim: -ESTALE) or waits for it to commit (the write was in
 * time).  Claims are kept disjoint twice: by pg_advisory_xact_lock on the
 * query's key, which serialises the claim transactions of one query, and
 * by the exclusion constraint claims_disjoint, which would refuse an
 * overlapping row even if a client skipped the lock.
 *
 * Flows are bulk loaded with COPY (binary format: the server parses no
 * text, about a sixth of its work on a day's rows) straight into flows: a
 * window inside this session's claim is new to the database (nobody else
 * may write a claimed span), so the common case pays for no temporary
 * table and no ON CONFLICT, the server's largest cost in storing a day
 * (bench/REPORT.md, pg).  A window whose records are there already (a
 * resend after a reconnect, a dead session's half-written span, a live
 * window fetched again) fails that COPY on the primary key (SQLSTATE
 * 23505): it is rolled back to a savepoint and sent again the old way,
 * COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO
 * NOTHING on the record's key, so a window sent twice adds nothing twice.
 * The key (schema version 3) is (collector, sh, start, idh), sh and idh
 * 64-bit digests of the subject and the id that the server computes
 * (generated columns): integers compare faster than text and make a
 * smaller index.  Two records of one collector, subject and millisecond
 * whose ids share a digest would be taken for one (odds about n^2 / 2^65
 * for n such records); the digests are the server's own, so only one
 * server's values are ever compared.
 *
 * Schema evolution as in cache/store.c: flowfs_meta.schema_version names
 * the schema a database holds; pg_migrations[v] turns v into v + 1
 * (version 0: an empty database), run under an advisory lock in the
 * opening transaction.  A database newer than this program is refused,
 * never touched.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "arr.h"
#include "cache_i.h"
#include "mtx.h"
#include "pg.h"

#define PG_HEARTBEAT_S 5
#define PG_EXPIRY_S 30
#define PG_CONNECT_S 10
#define PG_STATEMENT_MS 30000
/* The advisory lock key of schema creation and migration ("flowfs" in
 * ASCII): two first openings of an empty database do not race. */
#define PG_SCHEMA_LOCK 0x666c6f776673LL
/* The channel claims are announced on; the payload is the query key. */
#define PG_CHANNEL "flowfs_claims"
/* COPY data is sent in pieces of about this size. */
#define PG_COPY_CHUNK 65536
#define PG_TARGET_LEN 256

static const char *const pg_migrations[] = {
	/* 0 -> 1: the first schema.  NULL for every unknown (-1) number. */
	"CREATE EXTENSION IF NOT EXISTS btree_gist;"
	"CREATE TABLE flowfs_meta(key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE collectors(id serial PRIMARY KEY, url text NOT NULL UNIQUE,"
	"  product text NOT NULL, driver text NOT NULL);"
	"CREATE TABLE sessions(id bigserial PRIMARY KEY, host text NOT NULL,"
	"  pid integer NOT NULL, expiry_s integer NOT NULL CHECK (expiry_s > 0),"
	"  started timestamptz NOT NULL DEFAULT now(),"
	"  heartbeat timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE claims(qkey bigint NOT NULL,"
	"  collector integer NOT NULL REFERENCES collectors,"
	"  subject text NOT NULL, peer text NOT NULL,"
	"  span int8range NOT NULL CHECK (NOT isempty(span)),"
	"  state text NOT NULL CHECK (state IN ('claimed', 'done')),"
	"  session bigint REFERENCES sessions ON DELETE CASCADE,"
	"  CHECK ((state = 'claimed') = (session IS NOT NULL)),"
	"  CONSTRAINT claims_disjoint EXCLUDE USING gist (qkey WITH =, span WITH &&));"
	"CREATE INDEX claims_session ON claims(session);"
	"CREATE TABLE flows(collector integer NOT NULL, subject text NOT NULL,"
	"  start bigint NOT NULL, id text NOT NULL CHECK (length(id) BETWEEN 1 AND 64),"
	"  \"end\" bigint NOT NULL,"
	"  src bytea NOT NULL CHECK (length(src) = 16),"
	"  dst bytea NOT NULL CHECK (length(dst) = 16),"
	"  sport integer, dport integer, proto integer, tcp_flags integer,"
	"  icmp_type integer, icmp_code integer, pkts bigint, bytes bigint,"
	"  in_if bigint, out_if bigint, exporter bigint, app bigint,"
	"  src_as bigint, dst_as bigint, sampling bigint,"
	"  src_groups text, dst_groups text, community_id text,"
	"  PRIMARY KEY (collector, subject, start, id));"
	"CREATE TABLE coverage(collector integer NOT NULL, subject text NOT NULL,"
	"  peer text NOT NULL, start bigint NOT NULL, \"end\" bigint NOT NULL,"
	"  fetched_ms bigint NOT NULL, provisional boolean NOT NULL,"
	"  records bigint NOT NULL, CHECK (start < \"end\"),"
	"  PRIMARY KEY (collector, subject, peer, start, \"end\", provisional));"
	"CREATE TABLE gaps(collector integer NOT NULL, subject text NOT NULL,"
	"  qpeer text NOT NULL, start bigint NOT NULL, \"end\" bigint NOT NULL,"
	"  peer text NOT NULL, seen bigint NOT NULL, reason text NOT NULL,"
	"  PRIMARY KEY (collector, subject, qpeer, start, \"end\", peer));",
	/* 1 -> 2: what a collector says that has no column (flow_rec.extra),
	 * as the SQLite store's version 2: NULL for older rows. */
	"ALTER TABLE flows ADD COLUMN extra text;",
	/* 2 -> 3: flows keyed on fixed-width columns, digests of the subject
	 * and the id computed by the server (hashtextextended, 64 bits), so
	 * that the key's B-tree compares integers, not text: its upkeep was
	 * half the server's work in storing a day (docs/design.md, "The shared
	 * cache", perf).  The table is rewritten once. */
	"ALTER TABLE flows"
	"  ADD COLUMN sh bigint GENERATED ALWAYS AS (hashtextextended(subject, 0)) STORED,"
	"  ADD COLUMN idh bigint GENERATED ALWAYS AS (hashtextextended(id, 0)) STORED;"
	"ALTER TABLE flows DROP CONSTRAINT flows_pkey;"
	"ALTER TABLE flows ADD CONSTRAINT flows_pkey PRIMARY KEY (collector, sh, start, idh);",
};

_Static_assert(sizeof(pg_migrations) / sizeof(pg_migrations[0]) == CACHE_PG_SCHEMA_VERSION,
	       "one migration per schema version");

/* The columns of a flow row, in COPY's and pg_row_decode's order. */
#define PG_FLOW_COLS                                                           \
	"start,id,\"end\",src,dst,sport,dport,proto,tcp_flags,icmp_type,"      \
	"icmp_code,pkts,bytes,in_if,out_if,exporter,app,src_as,dst_as,"        \
	"sampling,src_groups,dst_groups,community_id,extra"

struct cache_pg {
	PGconn *conn;			/* the caller's thread only */
	char target[PG_TARGET_LEN];	/* redacted, for messages */
	char *url;			/* the collector's URL (the query key's part) */
	int collector;			/* collectors.id */
	int64_t session;		/* sessions.id */
	char session_text[24], collector_text[16];
	struct cache_pg_opts o;

	/* the heartbeat thread */
	PGconn *hb_conn;		/* the heartbeat thread only, once started */
	pthread_t hb_thread;
	bool hb_started;
	struct mtx hb_mtx;
	pthread_cond_t hb_cv;		/* CLOCK_MONOTONIC */
	bool hb_stop;			/* protected by hb_mtx */
	atomic_bool lost;		/* the session row was found gone */
};

/* ---- errors ---------------------------------------------------------------- */

/* libpq's message on one line: trailing newlines cut, inner ones "; ",
 * tabs a space. */
static void pg_oneline(const char *msg, char *buf, size_t len)
{
	size_t j = 0;

	if (!len)
		return;
	for (size_t i = 0; msg && msg[i] && j + 3 < len; i++) {
		if (msg[i] == '\n') {
			if (msg[i + 1] == '\0')
				break;
			buf[j++] = ';';
			buf[j++] = ' ';
		} else if (msg[i] == '\t') {
			if (j && buf[j - 1] != ' ')
				buf[j++] = ' ';
		} else {
			buf[j++] = msg[i];
		}
	}
	buf[j] = '\0';
}

/*
 * The errno for a failed statement: the connection lost (PostgreSQL
 * restarted or stopped, a network gone) -ECONNRESET; a server timeout
 * -ETIMEDOUT; authentication -EACCES; a full disk -ENOSPC; an overlapping
 * claim -EBUSY; a unique key there already -EEXIST; anything else -EIO.
 */
static int pg_errno(PGconn *conn, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!conn || PQstatus(conn) == CONNECTION_BAD)
		return -ECONNRESET;
	if (!st)
		return -EIO;
	if (strcmp(st, "57014") == 0 || strcmp(st, "55P03") == 0 || strcmp(st, "25P03") == 0)
		return -ETIMEDOUT;	/* statement, lock or idle-in-transaction timeout */
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
		return -ECONNRESET;	/* connection exception, shutdown */
	if (strncmp(st, "28", 2) == 0 || strcmp(st, "42501") == 0)
		return -EACCES;
	if (strcmp(st, "53100") == 0)
		return -ENOSPC;
	if (strcmp(st, "23P01") == 0)
		return -EBUSY;
	if (strcmp(st, "23505") == 0)
		return -EEXIST;		/* a key there already: put window's fallback */
	return -EIO;
}

/* err = "<what> (<target>): <libpq's message>"; returns the errno.  A lost
 * connection says so in words, since libpq's message alone may be terse. */
static int pg_fail(struct cache_pg *p, PGconn *conn, const PGresult *res, char *err,
		   const char *what)
{
	char msg[CACHE_ERRLEN];
	int rc = pg_errno(conn, res);
	const char *m = res ? PQresultErrorMessage(res) : NULL;

	if (!m || !*m)
		m = conn ? PQerrorMessage(conn) : "no connection";
	pg_oneline(m, msg, sizeof(msg));
	if (rc == -ECONNRESET)
		return cache_fail(err, rc, "%s: the connection to the shared cache (%s) was lost: %s",
				  what, p->target, msg);
	return cache_fail(err, rc, "%s (%s): %s", what, p->target, msg);
}

/* ---- statements ------------------------------------------------------------ */

/*
 * Run sql with nparams text parameters (none: sql may hold several
 * statements); *out (when not NULL) gets the
 * result of a command that returns rows (the caller PQclear's it).  0, or
 * pg_fail's errno with err set and nothing kept.
 */
static int pg_run(struct cache_pg *p, PGconn *conn, const char *sql, int nparams,
		  const char *const *params, PGresult **out, char *err, const char *what)
{
	/* PQexec for a script (several statements, no parameter) */
	PGresult *res = nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
				: PQexec(conn, sql);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (out)
		*out = NULL;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		rc = pg_fail(p, conn, res, err, what);
		PQclear(res);
		return rc;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* Roll back whatever transaction conn has open (nothing when none, or when
 * the connection is gone). */
static void pg_rollback(PGconn *conn)
{
	if (conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

static void pg_i64(int64_t v, char buf[24])
{
	snprintf(buf, 24, "%lld", (long long)v);
}

/* ---- the target and connecting ----------------------------------------------- */

void cache_pg_target(const char *conninfo, char *buf, size_t len)
{
	static const char *const shown[] = {"service", "host", "hostaddr", "port", "dbname",
					    "user", "sslmode"};
	PQconninfoOption *opts;
	size_t j = 0;

	if (!len)
		return;
	buf[0] = '\0';
	opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
	if (!opts) {
		snprintf(buf, len, "(unparsable connection string)");
		return;
	}
	for (size_t k = 0; k < sizeof(shown) / sizeof(shown[0]); k++) {
		for (PQconninfoOption *o = opts; o->keyword; o++) {
			if (strcmp(o->keyword, shown[k]) != 0 || !o->val || !*o->val)
				continue;
			int w = snprintf(buf + j, len - j, "%s%s=%s", j ? " " : "", o->keyword,
					 o->val);
			if (w < 0 || (size_t)w >= len - j) {
				j = len - 1;
				break;
			}
			j += (size_t)w;
		}
	}
	if (!j)
		snprintf(buf, len, "(libpq's defaults)");
	PQconninfoFree(opts);
}

bool cache_pg_has_secret(const char *conninfo)
{
	PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
	bool found = false;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if ((strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) &&
		    o->val && *o->val)
			found = true;
	PQconninfoFree(opts);
	return found;
}

/*
 * A connection to conninfo with this module's deadlines: connect_timeout,
 * keepalives and tcp_user_timeout given before the conninfo (whose own
 * values then win, libpq's rule for expand_dbname), then statement,
 * lock and idle-in-transaction timeouts set on the session.  -ECONNREFUSED
 * (or -EACCES when the server refused the credentials) with libpq's cause.
 */
static int pg_connect(struct cache_pg *p, const char *conninfo, PGconn **out, char *err)
{
	char ct[16], tut[24], sql[160], msg[CACHE_ERRLEN];
	const char *keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
			      "keepalives_interval", "keepalives_count", "tcp_user_timeout",
			      "application_name", "client_encoding", "dbname", NULL};
	const char *vals[] = {ct, "1", "10", "5", "3", tut, "flowfs", "UTF8", conninfo, NULL};
	PGconn *conn;
	int rc;

	*out = NULL;
	snprintf(ct, sizeof(ct), "%d", p->o.connect_timeout_s);
	snprintf(tut, sizeof(tut), "%d", p->o.statement_ms);
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return cache_fail(err, -ENOMEM, "out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(conn);
		pg_oneline(m, msg, sizeof(msg));
		rc = PQconnectionNeedsPassword(conn) || strstr(m, "authentication failed") ||
		     strstr(m, "no password supplied") ? -EACCES : -ECONNREFUSED;
		PQfinish(conn);
		return cache_fail(err, rc, "cannot connect to the shared cache (%s): %s", p->target,
				  msg);
	}
	snprintf(sql, sizeof(sql),
		 "SET statement_timeout=%d; SET lock_timeout=%d;"
		 " SET idle_in_transaction_session_timeout=%d",
		 p->o.statement_ms, p->o.statement_ms,
		 /* a client stopped inside a transaction (SIGSTOP, a laptop's
		  * lid) holds its claim's row lock: the server ends it once
		  * the session would have expired anyway, so that waiters
		  * wait no longer than the expiry */
		 p->o.expiry_s * 1000 < p->o.statement_ms ? p->o.expiry_s * 1000
							  : p->o.statement_ms);
	rc = pg_run(p, conn, sql, 0, NULL, NULL, err, "set timeouts");
	if (rc) {
		PQfinish(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

/* ---- schema ------------------------------------------------------------------ */

/*
 * Bring the database to p->o.schema_upto under PG_SCHEMA_LOCK, in one
 * transaction.  -EPROTO for a newer schema, -EEXIST for a database whose
 * meta table has no valid version; the server's errors as pg_fail.
 * Nothing changes on error.
 */
static int pg_schema(struct cache_pg *p, char *err)
{
	PGresult *res = NULL;
	char num[24];
	const char *params[1];
	long version = 0;
	int rc;

	rc = pg_run(p, p->conn, "BEGIN", 0, NULL, NULL, err, "begin");
	if (rc)
		return rc;
	pg_i64(PG_SCHEMA_LOCK, num);
	params[0] = num;
	rc = pg_run(p, p->conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, params, NULL, err,
		    "lock the schema");
	if (rc)
		goto cleanup;
	rc = pg_run(p, p->conn, "SELECT to_regclass('flowfs_meta') IS NOT NULL", 0, NULL, &res,
		    err, "read the schema");
	if (rc)
		goto cleanup;
	bool has_meta = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	res = NULL;
	if (has_meta) {
		rc = pg_run(p, p->conn, "SELECT value FROM flowfs_meta WHERE key='schema_version'",
			    0, NULL, &res, err, "read the schema version");
		if (rc)
			goto cleanup;
	}
	if (res) {
		char *end;
		if (PQntuples(res) != 1) {
			rc = cache_fail(err, -EEXIST, "the shared cache (%s) has no schema_version: "
					"not a flowfs database", p->target);
			goto cleanup;
		}
		version = strtol(PQgetvalue(res, 0, 0), &end, 10);
		if (*end || version < 0) {
			rc = cache_fail(err, -EEXIST, "the shared cache (%s) has no valid "
					"schema_version", p->target);
			goto cleanup;
		}
		if (version > CACHE_PG_SCHEMA_VERSION) {
			rc = cache_fail(err, -EPROTO, "the shared cache (%s) has schema version %ld, "
					"newer than this program's (%d): upgrade flowfs", p->target,
					version, CACHE_PG_SCHEMA_VERSION);
			goto cleanup;
		}
	}
	for (long v = version; v < p->o.schema_upto; v++) {
		rc = pg_run(p, p->conn, pg_migrations[v], 0, NULL, NULL, err, "migrate the schema");
		if (rc)
			goto cleanup;
	}
	if (version < p->o.schema_upto) {
		snprintf(num, sizeof(num), "%d", p->o.schema_upto);
		params[0] = num;
		rc = pg_run(p, p->conn,
			    "INSERT INTO flowfs_meta(key,value) VALUES ('schema_version',$1)"
			    " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
			    1, params, NULL, err, "write the schema version");
		if (rc)
			goto cleanup;
	}
	rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, "commit the schema");
cleanup:
	PQclear(res);
	if (rc)
		pg_rollback(p->conn);
	return rc;
}

/* Register the collector (or find it) and check its product: -EEXIST when
 * the database holds this URL for another product. */
static int pg_collector(struct cache_pg *p, const struct cache_identity *id, char *err)
{
	const char *params[3] = {id->url, id->product ? id->product : "",
				 id->driver ? id->driver : ""};
	PGresult *res = NULL;
	int rc;

	rc = pg_run(p, p->conn,
		    "INSERT INTO collectors(url,product,driver) VALUES ($1,$2,$3)"
		    " ON CONFLICT (url) DO NOTHING",
		    3, params, NULL, err, "register the collector");
	if (!rc)
		rc = pg_run(p, p->conn, "SELECT id, product FROM collectors WHERE url=$1", 1, params,
			    &res, err, "read the collector");
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		rc = cache_fail(err, -EIO, "the shared cache (%s) lost the collector %s", p->target,
				id->url);
	} else if (strcmp(PQgetvalue(res, 0, 1), params[1]) != 0) {
		rc = cache_fail(err, -EEXIST, "the shared cache (%s) holds %s for product \"%s\", "
				"not \"%s\"", p->target, id->url, PQgetvalue(res, 0, 1), params[1]);
	} else {
		p->collector = atoi(PQgetvalue(res, 0, 0));
		snprintf(p->collector_text, sizeof(p->collector_text), "%d", p->collector);
	}
	PQclear(res);
	return rc;
}

/* ---- sessions and the heartbeat ------------------------------------------------ */

/* A new session row for this process; its id into p. */
static int pg_session_start(struct cache_pg *p, char *err)
{
	char host[256], pid[16], exp[16];
	const char *params[3] = {host, pid, exp};
	PGresult *res;
	int rc;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(exp, sizeof(exp), "%d", p->o.expiry_s);
	rc = pg_run(p, p->conn,
		    "INSERT INTO sessions(host,pid,expiry_s) VALUES ($1,$2,$3) RETURNING id", 3,
		    params, &res, err, "start a session");
	if (rc)
		return rc;
	p->session = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	pg_i64(p->session, p->session_text);
	PQclear(res);
	return 0;
}

/*
 * The heartbeat thread: every heartbeat_s seconds, UPDATE the session's
 * heartbeat.  When the row is gone (expired and removed by another
 * client), p->lost is set and the thread ends: the session is over.  A
 * broken connection is reset (PQreset, bounded by connect_timeout) at the
 * next beat; while it cannot be, the session ages towards its expiry, as
 * it must.  Stops when hb_stop is set.
 */
static void *pg_heartbeat(void *arg)
{
	struct cache_pg *p = arg;
	const char *params[1] = {p->session_text};
	struct timespec t;

	mtx_lock(&p->hb_mtx);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_sec += p->o.heartbeat_s;
		while (!p->hb_stop) {
			mtx_owner_set(&p->hb_mtx, 0);
			int w = pthread_cond_timedwait(&p->hb_cv, &p->hb_mtx.m, &t);
#ifndef NDEBUG
			mtx_owner_set(&p->hb_mtx, (int)gettid());
#endif
			if (w == ETIMEDOUT)
				break;
		}
		if (p->hb_stop)
			break;
		mtx_unlock(&p->hb_mtx);
		if (PQstatus(p->hb_conn) != CONNECTION_OK)
			PQreset(p->hb_conn);
		PGresult *res = PQexecParams(p->hb_conn,
					     "UPDATE sessions SET heartbeat=now() WHERE id=$1",
					     1, NULL, params, NULL, NULL, 0);
		bool gone = res && PQresultStatus(res) == PGRES_COMMAND_OK &&
			    strcmp(PQcmdTuples(res), "0") == 0;
		PQclear(res);
		mtx_lock(&p->hb_mtx);
		if (gone) {
			atomic_store(&p->lost, true);
			break;
		}
	}
	mtx_unlock(&p->hb_mtx);
	return NULL;
}

/* Connect the heartbeat's own connection and start its thread. */
static int pg_heartbeat_start(struct cache_pg *p, const char *conninfo, char *err)
{
	pthread_condattr_t ca;
	int rc;

	rc = pg_connect(p, conninfo, &p->hb_conn, err);
	if (rc)
		return rc;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->hb_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&p->hb_thread, NULL, pg_heartbeat, p);
	if (rc) {
		pthread_cond_destroy(&p->hb_cv);
		return cache_fail(err, -rc, "start the heartbeat thread: %s", strerror(rc));
	}
	p->hb_started = true;
	return 0;
}

bool cache_pg_lost(const struct cache_pg *p)
{
	return atomic_load(&p->lost);
}

int64_t cache_pg_session(const struct cache_pg *p)
{
	return p->session;
}

/* ---- open and close -------------------------------------------------------------- */

/*
 * Each step of cache_pg_open fails as pg.h says; the struct is then torn
 * down by cache_pg_close, which copes with a half-made one.
 */
int cache_pg_open(const char *conninfo, const struct cache_identity *id,
		  const struct cache_pg_opts *opts, struct cache_pg **out, char *err)
{
	struct cache_pg *p;
	int rc;

	if (!out || !conninfo || !id || !id->url || !*id->url)
		return cache_fail(err, -EINVAL, "cache_pg_open: missing connection string or URL");
	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return cache_fail(err, -ENOMEM, "out of memory");
	mtx_init(&p->hb_mtx);
	atomic_init(&p->lost, false);
	if (opts)
		p->o = *opts;
	if (p->o.heartbeat_s <= 0)
		p->o.heartbeat_s = PG_HEARTBEAT_S;
	if (p->o.expiry_s <= 0)
		p->o.expiry_s = PG_EXPIRY_S;
	if (p->o.connect_timeout_s <= 0)
		p->o.connect_timeout_s = PG_CONNECT_S;
	if (p->o.statement_ms <= 0)
		p->o.statement_ms = PG_STATEMENT_MS;
	if (p->o.schema_upto <= 0 || p->o.schema_upto > CACHE_PG_SCHEMA_VERSION)
		p->o.schema_upto = CACHE_PG_SCHEMA_VERSION;
	cache_pg_target(conninfo, p->target, sizeof(p->target));
	PQconninfoOption *parsed = PQconninfoParse(conninfo, NULL);
	if (!parsed) {
		/* libpq's reason is not shown: it may quote the string */
		rc = cache_fail(err, -EINVAL, "the shared cache's connection string cannot be "
				"read (libpq's URL or key=value forms)");
		goto fail;
	}
	PQconninfoFree(parsed);
	p->url = strdup(id->url);
	if (!p->url) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = pg_connect(p, conninfo, &p->conn, err);
	if (rc)
		goto fail;
	rc = pg_schema(p, err);
	if (rc)
		goto fail;
	if (p->o.schema_upto < CACHE_PG_SCHEMA_VERSION) {
		/* tests: an older schema made on purpose, nothing more */
		*out = p;
		return 0;
	}
	rc = pg_collector(p, id, err);
	if (!rc)
		rc = pg_session_start(p, err);
	if (!rc)
		rc = pg_run(p, p->conn,
			    "CREATE TEMP TABLE flows_in (LIKE flows) ON COMMIT DELETE ROWS;"
			    " ALTER TABLE flows_in DROP COLUMN sh, DROP COLUMN idh;"
			    " LISTEN " PG_CHANNEL, 0, NULL, NULL, err, "prepare the session");
	if (!rc)
		rc = pg_heartbeat_start(p, conninfo, err);
	if (rc)
		goto fail;
	*out = p;
	return 0;
fail:
	cache_pg_close(p);
	return rc;
}

void cache_pg_close(struct cache_pg *p)
{
	if (!p)
		return;
	if (p->hb_started) {
		mtx_lock(&p->hb_mtx);
		p->hb_stop = true;
		pthread_cond_signal(&p->hb_cv);
		mtx_unlock(&p->hb_mtx);
		pthread_join(p->hb_thread, NULL);
		pthread_cond_destroy(&p->hb_cv);
	}
	/* the session is deleted over whichever connection still works: after
	 * a restart of the server the heartbeat's has been reset, the
	 * caller's not (its claims are then free at once, not after expiry) */
	PGconn *c = p->conn && PQstatus(p->conn) == CONNECTION_OK ? p->conn
		    : p->hb_conn && PQstatus(p->hb_conn) == CONNECTION_OK ? p->hb_conn
		    : NULL;
	if (p->session && c) {
		const char *params[1] = {p->session_text};
		pg_rollback(c);
		PQclear(PQexecParams(c, "DELETE FROM sessions WHERE id=$1", 1, NULL, params, NULL,
				     NULL, 0));
		PQclear(PQexec(c, "NOTIFY " PG_CHANNEL));
	}
	if (p->hb_conn)
		PQfinish(p->hb_conn);
	if (p->conn)
		PQfinish(p->conn);
	mtx_destroy(&p->hb_mtx);
	free(p->url);
	free(p);
}

/* ---- keys ------------------------------------------------------------------------- */

int64_t cache_pg_qkey(const struct cache_pg *p, const struct cache_query *q)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t k = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	cache_query_keys(q, subject, peer);
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, p->url, strlen(p->url) + 1) &&
	    EVP_DigestUpdate(ctx, subject, strlen(subject) + 1) &&
	    EVP_DigestUpdate(ctx, peer, strlen(peer) + 1) && EVP_DigestFinal_ex(ctx, md, &mdlen) &&
	    mdlen >= 8) {
		for (int i = 0; i < 8; i++)
			k = k << 8 | md[i];
	}
	EVP_MD_CTX_free(ctx);
	return (int64_t)k;
}

/* The text parameters every claim statement shares: $1 qkey, $2 session,
 * $3 start, $4 end. */
struct pg_qparams {
	char qkey[24], start[24], end[24];
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
};

static void pg_qparams(const struct cache_pg *p, const struct cache_query *q, int64_t start,
		       int64_t end, struct pg_qparams *qp)
{
	pg_i64(cache_pg_qkey(p, q), qp->qkey);
	pg_i64(start, qp->start);
	pg_i64(end, qp->end);
	cache_query_keys(q, qp->subject, qp->peer);
}

static int pg_check_query(const struct cache_query *q, char *err)
{
	if (!q || q->start >= q->end)
		return cache_fail(err, -EINVAL, "bad query range");
	return 0;
}

/* Forget the notifications libpq holds (a claim reads the state afresh,
 * so those before it say nothing new): the queue stays bounded by what
 * arrives between a claim and its wait. */
static void pg_drop_notifies(PGconn *conn)
{
	PGnotify *nf;

	PQconsumeInput(conn);
	while ((nf = PQnotifies(conn)))
		PQfreemem(nf);
}

/* ---- claims ------------------------------------------------------------------------- */

void cache_pg_claim_free(struct cache_pg_claim *cl)
{
	cache_ivals_free(&cl->mine);
	cache_ivals_free(&cl->others);
	cache_ivals_free(&cl->done);
}

/* Add [s, e) clipped to [lo, hi) to v (nothing when the clip is empty). */
static int pg_add_clipped(struct cache_ivals *v, int64_t s, int64_t e, int64_t lo, int64_t hi)
{
	if (s < lo)
		s = lo;
	if (e > hi)
		e = hi;
	return s < e ? cache_ivals_add(v, s, e) : 0;
}

/*
 * The claim's arithmetic, pure (no I/O), so that the unit tests can put
 * every arrangement of rows to it: each row goes to done, mine (claimed by
 * me) or others (claimed by anyone else), clipped to [from, to); free is
 * [from, to) minus every row, the parts to claim.  cl and free are reset
 * first; -ENOMEM leaves them empty.
 */
int cache_pg_claim_sets(const struct cache_pg_row *rows, size_t n, int64_t me, int64_t from,
			int64_t to, struct cache_pg_claim *cl, struct cache_ivals *free_)
{
	struct cache_ivals all = {0};
	int rc = 0;

	memset(cl, 0, sizeof(*cl));
	free_->n = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct cache_ivals *dst = rows[i].done		 ? &cl->done
					  : rows[i].session == me ? &cl->mine
								  : &cl->others;
		rc = cache_ivals_add(&all, rows[i].start, rows[i].end);
		if (!rc)
			rc = pg_add_clipped(dst, rows[i].start, rows[i].end, from, to);
	}
	if (!rc)
		rc = cache_ivals_subtract(&all, from, to, free_);
	cache_ivals_free(&all);
	if (rc) {
		cache_pg_claim_free(cl);
		free_->n = 0;
	}
	return rc;
}

/*
 * The claim transaction (pg.h): lock the query's key, remove expired
 * sessions (their claimed rows go with them: ON DELETE CASCADE), refresh
 * our own heartbeat (-ESTALE when our row is gone), read the rows over
 * the range, insert a claimed row for each free part, commit.
 */
int cache_pg_claim(struct cache_pg *p, const struct cache_query *q, struct cache_pg_claim *cl,
		   char *err)
{
	struct cache_ivals free_ = {0};
	struct cache_pg_row *rows = NULL;
	struct pg_qparams qp;
	PGresult *res = NULL;
	size_t nrows;
	int rc;

	memset(cl, 0, sizeof(*cl));
	rc = pg_check_query(q, err);
	if (rc)
		return rc;
	pg_qparams(p, q, q->start, q->end, &qp);
	pg_drop_notifies(p->conn);
	const char *lock[1] = {qp.qkey};
	const char *me[1] = {p->session_text};
	const char *rng[3] = {qp.qkey, qp.start, qp.end};

	rc = pg_run(p, p->conn, "BEGIN", 0, NULL, NULL, err, "claim: begin");
	if (!rc)
		rc = pg_run(p, p->conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock, NULL,
			    err, "claim: lock the query");
	if (!rc)
		rc = pg_run(p, p->conn,
			    "DELETE FROM sessions"
			    " WHERE heartbeat < now() - expiry_s * interval '1 second'",
			    0, NULL, NULL, err, "claim: remove expired sessions");
	if (!rc)
		rc = pg_run(p, p->conn, "UPDATE sessions SET heartbeat=now() WHERE id=$1", 1, me,
			    &res, err, "claim: refresh the session");
	if (rc)
		goto cleanup;
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		atomic_store(&p->lost, true);
		rc = cache_fail(err, -ESTALE, "claim: this session (%s) expired and was removed by "
				"another client of the shared cache (%s): open it again",
				p->session_text, p->target);
		goto cleanup;
	}
	PQclear(res);
	res = NULL;
	rc = pg_run(p, p->conn,
		    "SELECT lower(span), upper(span), state, coalesce(session, 0) FROM claims"
		    " WHERE qkey=$1 AND span && int8range($2::bigint, $3::bigint)"
		    " ORDER BY lower(span)",
		    3, rng, &res, err, "claim: read the claims");
	if (rc)
		goto cleanup;
	nrows = (size_t)PQntuples(res);
	rows = calloc(nrows ? nrows : 1, sizeof(*rows));
	if (!rows) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < nrows; i++) {
		rows[i].start = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		rows[i].end = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
		rows[i].done = strcmp(PQgetvalue(res, (int)i, 2), "done") == 0;
		rows[i].session = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
	}
	rc = cache_pg_claim_sets(rows, nrows, p->session, q->start, q->end, cl, &free_);
	if (rc) {
		rc = cache_fail(err, rc, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < free_.n; i++) {
		char s[24], e[24];
		pg_i64(free_.v[i].start, s);
		pg_i64(free_.v[i].end, e);
		const char *ins[7] = {qp.qkey, p->collector_text, qp.subject, qp.peer, s, e,
				      p->session_text};
		rc = pg_run(p, p->conn,
			    "INSERT INTO claims(qkey,collector,subject,peer,span,state,session)"
			    " VALUES ($1,$2,$3,$4,int8range($5::bigint,$6::bigint),'claimed',$7)",
			    7, ins, NULL, err, "claim: insert a claim");
		if (!rc)
			rc = cache_ivals_add(&cl->mine, free_.v[i].start, free_.v[i].end);
		if (rc)
			goto cleanup;
	}
	rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, "claim: commit");
cleanup:
	PQclear(res);
	free(rows);
	cache_ivals_free(&free_);
	if (rc) {
		pg_rollback(p->conn);
		cache_pg_claim_free(cl);
	}
	return rc;
}

/*
 * Begin a write transaction and lock this session's claim that spans
 * [start, end) of q's key (SELECT ... FOR UPDATE).  -ESTALE when there is
 * none, with the transaction rolled back.
 */
static int pg_begin_claimed(struct cache_pg *p, const struct cache_query *q, int64_t start,
			    int64_t end, const char *what, char *err)
{
	struct pg_qparams qp;
	PGresult *res = NULL;
	int rc;

	pg_qparams(p, q, start, end, &qp);
	const char *params[4] = {qp.qkey, p->session_text, qp.start, qp.end};
	rc = pg_run(p, p->conn, "BEGIN", 0, NULL, NULL, err, what);
	if (!rc)
		rc = pg_run(p, p->conn,
			    "SELECT 1 FROM claims WHERE qkey=$1 AND session=$2 AND state='claimed'"
			    " AND span @> int8range($3::bigint, $4::bigint) FOR UPDATE",
			    4, params, &res, err, what);
	if (!rc && PQntuples(res) == 0)
		rc = cache_fail(err, -ESTALE, "%s: [%s, %s) of %s is no longer claimed by this "
				"session (%s): it expired and another client may have finished the "
				"span; nothing written to the shared cache (%s)", what, qp.start, qp.end,
				qp.subject, p->session_text, p->target);
	PQclear(res);
	if (rc)
		pg_rollback(p->conn);
	return rc;
}

/* ---- flows into PostgreSQL ---------------------------------------------------------- */

/* A COPY text buffer: bounded pieces sent as they fill. */
struct pg_copybuf {
	char buf[PG_COPY_CHUNK + 1024];
	size_t len;
};

/* Send what is buffered; -1 on libpq's failure. */
static int pg_copy_flush(PGconn *conn, struct pg_copybuf *b)
{
	int r = b->len ? PQputCopyData(conn, b->buf, (int)b->len) : 1;

	b->len = 0;
	return r == 1 ? 0 : -1;
}

/* Append bytes; flushes first when they would not fit.  Every piece
 * appended is at most a few hundred bytes (a field). */
static int pg_copy_put(PGconn *conn, struct pg_copybuf *b, const char *s, size_t n)
{
	if (b->len + n > sizeof(b->buf) && pg_copy_flush(conn, b))
		return -1;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	return 0;
}

/* A field of COPY's binary format: its length (big-endian int32, -1 for
 * NULL) and its bytes.  n is at most a few hundred bytes. */
static int pg_copy_field(PGconn *conn, struct pg_copybuf *b, const void *s, int32_t n)
{
	uint32_t u = (uint32_t)n;
	char len[4] = {(char)(u >> 24), (char)(u >> 16), (char)(u >> 8), (char)u};

	if (pg_copy_put(conn, b, len, 4))
		return -1;
	return n > 0 ? pg_copy_put(conn, b, s, (size_t)n) : 0;
}

/* text: its bytes as they are (no escapes in the binary format); "" as
 * NULL when empty_null. */
static int pg_copy_text(PGconn *conn, struct pg_copybuf *b, const char *s, size_t n,
			bool empty_null)
{
	return pg_copy_field(conn, b, s, !n && empty_null ? -1 : (int32_t)n);
}

/* An int4 (bytes 4) or int8 (bytes 8), big-endian; NULL for an unknown
 * (negative) one when opt. */
static int pg_copy_int(PGconn *conn, struct pg_copybuf *b, int64_t v, int bytes, bool opt)
{
	char t[8];

	if (opt && v < 0)
		return pg_copy_field(conn, b, NULL, -1);
	for (int i = 0; i < bytes; i++)
		t[i] = (char)((uint64_t)v >> (8 * (bytes - 1 - i)));
	return pg_copy_field(conn, b, t, bytes);
}

/* The binary format's 19-byte header: signature, flags, extension length. */
static int pg_copy_header(PGconn *conn, struct pg_copybuf *b)
{
	static const char h[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

	return pg_copy_put(conn, b, h, sizeof(h));
}

/* One record as a tuple of COPY ... (FORMAT binary) into (collector,
 * subject, PG_FLOW_COLS): each field in its column's type (integer,
 * bigint, bytea, text). */
static int pg_copy_rec(struct cache_pg *p, struct pg_copybuf *b, const char *subject,
		       const struct flow_rec *r)
{
	char sg[CACHE_GROUPS_MAX * 11], dg[CACHE_GROUPS_MAX * 11];
	PGconn *c = p->conn;
	size_t sgl = cache_groups_text(r->src_groups, r->nsrc_groups, sg);
	size_t dgl = cache_groups_text(r->dst_groups, r->ndst_groups, dg);
	const int64_t opt4[] = {r->sport, r->dport, r->proto, r->tcp_flags, r->icmp_type,
				r->icmp_code};
	const int64_t opt8[] = {r->pkts, r->bytes, r->in_if, r->out_if, r->exporter, r->app,
				r->src_as, r->dst_as, r->sampling};
	const char nfields[2] = {0, 26};
	int rc = 0;

	rc |= pg_copy_put(c, b, nfields, 2);
	rc |= pg_copy_int(c, b, p->collector, 4, false);
	rc |= pg_copy_text(c, b, subject, strlen(subject), false);
	rc |= pg_copy_int(c, b, r->start_ms, 8, false);
	rc |= pg_copy_text(c, b, r->id, strnlen(r->id, sizeof(r->id)), false);
	rc |= pg_copy_int(c, b, r->end_ms, 8, false);
	rc |= pg_copy_field(c, b, r->src, 16);
	rc |= pg_copy_field(c, b, r->dst, 16);
	for (size_t i = 0; i < sizeof(opt4) / sizeof(opt4[0]); i++)
		rc |= pg_copy_int(c, b, opt4[i], 4, true);
	for (size_t i = 0; i < sizeof(opt8) / sizeof(opt8[0]); i++)
		rc |= pg_copy_int(c, b, opt8[i], 8, true);
	rc |= pg_copy_text(c, b, sg, sgl, true);
	rc |= pg_copy_text(c, b, dg, dgl, true);
	rc |= pg_copy_text(c, b, r->community_id, strnlen(r->community_id,
							   sizeof(r->community_id)), true);
	rc |= pg_copy_text(c, b, r->extra, strnlen(r->extra, sizeof(r->extra) - 1), true);
	return rc ? -1 : 0;
}

/* COPY the records into 'table' (flows, or the temporary flows_in);
 * pg_fail's errno on failure, -EEXIST for a record whose key flows holds
 * already (the COPY ended with an error so that the connection is usable
 * again, the transaction aborted). */
static int pg_copy_window(struct cache_pg *p, const char *table, const char *subject,
			  const struct flow_rec *recs, size_t n, char *err)
{
	char sql[320];
	struct pg_copybuf *b = malloc(sizeof(*b));
	PGresult *res;
	int rc = 0;

	if (!b)
		return cache_fail(err, -ENOMEM, "out of memory");
	b->len = 0;
	snprintf(sql, sizeof(sql),
		 "COPY %s (collector,subject," PG_FLOW_COLS ") FROM STDIN (FORMAT binary)", table);
	res = PQexec(p->conn, sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		rc = pg_fail(p, p->conn, res, err, "put window: copy");
		PQclear(res);
		free(b);
		return rc;
	}
	PQclear(res);
	if (pg_copy_header(p->conn, b))
		rc = pg_fail(p, p->conn, NULL, err, "put window: copy");
	for (size_t i = 0; i < n && !rc; i++)
		if (recs[i].id[0] == '\0' || strnlen(recs[i].id, sizeof(recs[i].id)) > CACHE_ID_MAX)
			rc = cache_fail(err, -EINVAL, "put window: a record with an empty or "
					"over-long id");
		else if (pg_copy_rec(p, b, subject, &recs[i]))
			rc = pg_fail(p, p->conn, NULL, err, "put window: copy");
	if (!rc && (pg_copy_put(p->conn, b, "\377\377", 2) || pg_copy_flush(p->conn, b)))
		rc = pg_fail(p, p->conn, NULL, err, "put window: copy");	/* trailer: -1 */
	PQputCopyEnd(p->conn, rc ? "refused by flowfs" : NULL);
	while ((res = PQgetResult(p->conn))) {
		if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = pg_fail(p, p->conn, res, err, "put window: copy");
		PQclear(res);
	}
	free(b);
	return rc;
}

/*
 * The records of a window, inside the transaction pg_begin_claimed
 * opened: COPY straight into flows under a savepoint; when a record's key
 * is there already (-EEXIST), back to the savepoint and COPY into
 * flows_in, then INSERT ... ON CONFLICT DO NOTHING.  0, or pg_fail's
 * errno with the transaction to be rolled back.
 */
static int pg_put_flows(struct cache_pg *p, const char *subject, const struct flow_rec *recs,
			size_t n, char *err)
{
	int rc = pg_run(p, p->conn, "SAVEPOINT flows_fresh", 0, NULL, NULL, err,
			"put window: savepoint");

	if (!rc)
		rc = pg_copy_window(p, "flows", subject, recs, n, err);
	if (rc != -EEXIST)
		return rc;
	rc = pg_run(p, p->conn, "ROLLBACK TO SAVEPOINT flows_fresh", 0, NULL, NULL, err,
		    "put window: roll back to the savepoint");
	if (!rc)
		rc = pg_copy_window(p, "flows_in", subject, recs, n, err);
	if (!rc)
		rc = pg_run(p, p->conn,
			    "INSERT INTO flows (collector,subject," PG_FLOW_COLS ")"
			    " SELECT collector,subject," PG_FLOW_COLS " FROM flows_in"
			    " ON CONFLICT (collector,sh,start,idh) DO NOTHING",
			    0, NULL, NULL, err, "put window: insert flows");
	return rc;
}

/*
 * The window's transaction (pg.h): claim locked, the records
 * (pg_put_flows), the coverage row (a row there already keeps its key and
 * takes the newer fetch time), a final row replacing provisional ones it
 * overlaps, commit.  Anything failing rolls back all of it.
 */
int cache_pg_put_window(struct cache_pg *p, const struct cache_query *q,
			const struct flow_rec *recs, size_t n, const struct cache_cover *cover,
			char *err)
{
	struct pg_qparams qp;
	int64_t s, e;
	int rc;

	rc = pg_check_query(q, err);
	if (rc)
		return rc;
	if ((n && !recs) || (cover && cover->start >= cover->end))
		return cache_fail(err, -EINVAL, "put window: no records or an empty window");
	s = cover ? cover->start : q->start;
	e = cover ? cover->end : q->end;
	pg_qparams(p, q, s, e, &qp);
	rc = pg_begin_claimed(p, q, s, e, "put window", err);
	if (rc)
		return rc;
	if (n && (rc = pg_put_flows(p, qp.subject, recs, n, err)))
		goto cleanup;
	if (cover) {
		char f[24], r[24];
		pg_i64(cover->fetched_ms, f);
		pg_i64(cover->records, r);
		const char *cp[8] = {p->collector_text, qp.subject, qp.peer, qp.start, qp.end, f,
				     cover->provisional ? "t" : "f", r};
		rc = pg_run(p, p->conn,
			    "INSERT INTO coverage(collector,subject,peer,start,\"end\",fetched_ms,"
			    "provisional,records) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
			    " ON CONFLICT (collector,subject,peer,start,\"end\",provisional) DO UPDATE"
			    " SET fetched_ms=greatest(coverage.fetched_ms, excluded.fetched_ms),"
			    " records=excluded.records",
			    8, cp, NULL, err, "put window: insert coverage");
		if (!rc && !cover->provisional)
			rc = pg_run(p, p->conn,
				    "DELETE FROM coverage WHERE collector=$1 AND subject=$2 AND peer=$3"
				    " AND provisional AND start<$5 AND \"end\">$4",
				    5, cp, NULL, err, "put window: replace provisional coverage");
		if (rc)
			goto cleanup;
	}
	rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, "put window: commit");
cleanup:
	if (rc)
		pg_rollback(p->conn);
	return rc;
}

int cache_pg_put_gap(struct cache_pg *p, const struct cache_query *q, const struct cache_gap *g,
		     char *err)
{
	struct pg_qparams qp;
	char seen[24];
	int rc;

	rc = pg_check_query(q, err);
	if (rc)
		return rc;
	if (!g || g->start >= g->end)
		return cache_fail(err, -EINVAL, "put gap: empty gap");
	pg_qparams(p, q, g->start, g->end, &qp);
	pg_i64(g->seen, seen);
	const char *gp[8] = {p->collector_text, qp.subject, qp.peer, qp.start, qp.end, g->peer,
			     seen, g->reason};
	rc = pg_begin_claimed(p, q, g->start, g->end, "put gap", err);
	if (rc)
		return rc;
	rc = pg_run(p, p->conn,
		    "INSERT INTO gaps(collector,subject,qpeer,start,\"end\",peer,seen,reason)"
		    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
		    " ON CONFLICT (collector,subject,qpeer,start,\"end\",peer) DO UPDATE"
		    " SET seen=excluded.seen, reason=excluded.reason",
		    8, gp, NULL, err, "put gap");
	if (!rc)
		rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, "put gap: commit");
	if (rc)
		pg_rollback(p->conn);
	return rc;
}

/*
 * Done and release: one UPDATE or DELETE of this session's claimed rows
 * inside the range, and pg_notify of the key, in one transaction (the
 * notification is delivered at commit).  -ESTALE when no row matched.
 */
static int pg_finish(struct cache_pg *p, const struct cache_query *q, bool done, char *err)
{
	const char *what = done ? "mark done" : "release";
	struct pg_qparams qp;
	PGresult *res = NULL;
	int rc;

	rc = pg_check_query(q, err);
	if (rc)
		return rc;
	pg_qparams(p, q, q->start, q->end, &qp);
	const char *params[4] = {qp.qkey, p->session_text, qp.start, qp.end};
	rc = pg_run(p, p->conn, "BEGIN", 0, NULL, NULL, err, what);
	if (!rc)
		rc = pg_run(p, p->conn,
			    done ? "UPDATE claims SET state='done', session=NULL"
				   " WHERE qkey=$1 AND session=$2 AND state='claimed'"
				   " AND span <@ int8range($3::bigint, $4::bigint)"
				 : "DELETE FROM claims"
				   " WHERE qkey=$1 AND session=$2 AND state='claimed'"
				   " AND span <@ int8range($3::bigint, $4::bigint)",
			    4, params, &res, err, what);
	if (rc)
		goto cleanup;
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		rc = cache_fail(err, -ESTALE, "%s: this session (%s) holds no claim inside [%s, %s) "
				"of %s any more (expired and reclaimed?); the shared cache (%s) is "
				"unchanged", what, p->session_text, qp.start, qp.end, qp.subject,
				p->target);
		goto cleanup;
	}
	rc = pg_run(p, p->conn, "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, params, NULL, err,
		    what);
	if (!rc)
		rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, what);
cleanup:
	PQclear(res);
	if (rc)
		pg_rollback(p->conn);
	return rc;
}

int cache_pg_done(struct cache_pg *p, const struct cache_query *q, char *err)
{
	return pg_finish(p, q, true, err);
}

int cache_pg_release(struct cache_pg *p, const struct cache_query *q, char *err)
{
	return pg_finish(p, q, false, err);
}

/* ---- waiting ------------------------------------------------------------------------- */

static int64_t pg_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Notifications libpq holds already are read first: any for q's key (or
 * without a payload: a session closed) ends the wait at once.  Then
 * poll() on the socket until one arrives or the deadline passes.
 */
int cache_pg_wait(struct cache_pg *p, const struct cache_query *q, int timeout_ms, char *err)
{
	char key[24];
	int64_t deadline = pg_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	pg_i64(cache_pg_qkey(p, q), key);
	for (;;) {
		PGnotify *nf;
		bool hit = false;

		if (!PQconsumeInput(p->conn))
			return pg_fail(p, p->conn, NULL, err, "wait for a claim");
		while ((nf = PQnotifies(p->conn))) {
			if (!nf->extra[0] || strcmp(nf->extra, key) == 0)
				hit = true;
			PQfreemem(nf);
		}
		if (hit)
			return 0;
		int64_t left = deadline - pg_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd pf = {.fd = PQsocket(p->conn), .events = POLLIN};
		if (pf.fd < 0)
			return pg_fail(p, p->conn, NULL, err, "wait for a claim");
		if (poll(&pf, 1, (int)(left > 60000 ? 60000 : left)) < 0 && errno != EINTR)
			return cache_fail(err, -errno, "wait for a claim: poll: %s", strerror(errno));
	}
}

/* ---- reading back into the local cache ------------------------------------------------ */

/* bytea's hex output ("\x0a0b...") of 16 bytes into a; zeros otherwise. */
static void pg_addr_decode(const char *s, uint8_t a[16])
{
	memset(a, 0, 16);
	if (strncmp(s, "\\x", 2) != 0 || strlen(s) != 34)
		return;
	for (int i = 0; i < 16; i++) {
		unsigned v = 0;
		sscanf(s + 2 + 2 * i, "%2x", &v);
		a[i] = (uint8_t)v;
	}
}

/* Column i of row: NULL as -1, else the number. */
static int64_t pg_opt(const PGresult *res, int row, int i)
{
	return PQgetisnull(res, row, i) ? -1 : strtoll(PQgetvalue(res, row, i), NULL, 10);
}

/* A row of PG_FLOW_COLS into r, as cache_row_decode does for SQLite: a
 * text too long for its field is dropped (""), never cut. */
static void pg_row_decode(const PGresult *res, int row, struct flow_rec *r)
{
	const char *v;

	memset(r, 0, sizeof(*r));
	r->start_ms = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	v = PQgetvalue(res, row, 1);
	if (strlen(v) < sizeof(r->id))
		memcpy(r->id, v, strlen(v) + 1);
	r->end_ms = strtoll(PQgetvalue(res, row, 2), NULL, 10);
	pg_addr_decode(PQgetvalue(res, row, 3), r->src);
	pg_addr_decode(PQgetvalue(res, row, 4), r->dst);
	r->sport = (int32_t)pg_opt(res, row, 5);
	r->dport = (int32_t)pg_opt(res, row, 6);
	r->proto = (int32_t)pg_opt(res, row, 7);
	r->tcp_flags = (int32_t)pg_opt(res, row, 8);
	r->icmp_type = (int32_t)pg_opt(res, row, 9);
	r->icmp_code = (int32_t)pg_opt(res, row, 10);
	r->pkts = pg_opt(res, row, 11);
	r->bytes = pg_opt(res, row, 12);
	r->in_if = pg_opt(res, row, 13);
	r->out_if = pg_opt(res, row, 14);
	r->exporter = pg_opt(res, row, 15);
	r->app = pg_opt(res, row, 16);
	r->src_as = pg_opt(res, row, 17);
	r->dst_as = pg_opt(res, row, 18);
	r->sampling = pg_opt(res, row, 19);
	r->nsrc_groups = PQgetisnull(res, row, 20) ? 0 :
		cache_groups_parse((const unsigned char *)PQgetvalue(res, row, 20), r->src_groups);
	r->ndst_groups = PQgetisnull(res, row, 21) ? 0 :
		cache_groups_parse((const unsigned char *)PQgetvalue(res, row, 21), r->dst_groups);
	v = PQgetvalue(res, row, 22);
	if (strlen(v) < sizeof(r->community_id))
		memcpy(r->community_id, v, strlen(v) + 1);
	v = PQgetvalue(res, row, 23);
	if (strlen(v) < sizeof(r->extra))
		memcpy(r->extra, v, strlen(v) + 1);
}

/* The flows of one coverage row into the local cache with the row. */
static int pg_pull_window(struct cache_pg *p, const struct cache_query *q, struct cache *c,
			  const char *subject, const struct cache_cover *cv, char *err)
{
	char s[24], e[24];
	const char *params[4] = {p->collector_text, subject, s, e};
	struct flow_rec *recs = NULL;
	PGresult *res = NULL;
	int rc, n;

	pg_i64(cv->start, s);
	pg_i64(cv->end, e);
	rc = pg_run(p, p->conn,
		    "SELECT " PG_FLOW_COLS " FROM flows WHERE collector=$1"
		    " AND sh=hashtextextended($2, 0) AND subject=$2 AND start>=$3 AND start<$4 ORDER BY start, id COLLATE \"C\"",
		    4, params, &res, err, "pull: read flows");
	if (rc)
		return rc;
	n = PQntuples(res);
	if (n) {
		recs = calloc((size_t)n, sizeof(*recs));
		if (!recs) {
			rc = cache_fail(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	for (int i = 0; i < n; i++)
		pg_row_decode(res, i, &recs[i]);
	rc = cache_put_window(c, q, recs, (size_t)n, cv, err);
cleanup:
	free(recs);
	PQclear(res);
	return rc;
}

/*
 * Does the local cache cover cv already, so that pulling it would only add
 * a second coverage row?  A final row is had when final local coverage
 * spans it (live_ttl 0: provisional rows do not count), a provisional one
 * when any local coverage does.
 */
static int pg_local_has(struct cache *c, const struct cache_query *q,
			const struct cache_cover *cv, bool *have, char *err)
{
	struct cache_query wq = *q;
	struct cache_ivals miss = {0};
	int rc;

	wq.start = cv->start;
	wq.end = cv->end;
	rc = cache_missing(c, &wq, cv->fetched_ms, cv->provisional ? INT64_MAX / 4 : 0, &miss,
			   err);
	*have = !rc && miss.n == 0;
	cache_ivals_free(&miss);
	return rc;
}

/*
 * One REPEATABLE READ, READ ONLY transaction, so that coverage and flows
 * are read from one snapshot; the local writes happen one window at a
 * time (cache_put_window's own transactions), so a failure half way leaves
 * the local cache with whole windows only.
 */
int cache_pg_pull(struct cache_pg *p, const struct cache_query *q, struct cache *c,
		  size_t *windows, char *err)
{
	struct pg_qparams qp;
	PGresult *res = NULL;
	size_t done = 0;
	int rc;

	if (windows)
		*windows = 0;
	rc = pg_check_query(q, err);
	if (rc)
		return rc;
	pg_qparams(p, q, q->start, q->end, &qp);
	const char *params[5] = {p->collector_text, qp.subject, qp.peer, qp.start, qp.end};
	rc = pg_run(p, p->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL,
		    err, "pull: begin");
	if (!rc)
		rc = pg_run(p, p->conn,
			    "SELECT start, \"end\", fetched_ms, provisional, records FROM coverage"
			    " WHERE collector=$1 AND subject=$2 AND peer=$3 AND start<$5"
			    " AND \"end\">$4 ORDER BY start, \"end\"",
			    5, params, &res, err, "pull: read coverage");
	if (rc)
		goto cleanup;
	for (int i = 0; i < PQntuples(res); i++) {
		struct cache_cover cv = {
			.start = strtoll(PQgetvalue(res, i, 0), NULL, 10),
			.end = strtoll(PQgetvalue(res, i, 1), NULL, 10),
			.fetched_ms = strtoll(PQgetvalue(res, i, 2), NULL, 10),
			.provisional = strcmp(PQgetvalue(res, i, 3), "t") == 0,
			.records = strtoll(PQgetvalue(res, i, 4), NULL, 10),
		};
		bool have;
		rc = pg_local_has(c, q, &cv, &have, err);
		if (!rc && !have)
			rc = pg_pull_window(p, q, c, qp.subject, &cv, err);
		if (rc)
			goto cleanup;
		done += !have;
	}
	PQclear(res);
	res = NULL;
	rc = pg_run(p, p->conn,
		    "SELECT start, \"end\", peer, seen, reason FROM gaps"
		    " WHERE collector=$1 AND subject=$2 AND qpeer=$3 AND start<$5"
		    " AND \"end\">$4 ORDER BY start, \"end\", peer",
		    5, params, &res, err, "pull: read gaps");
	if (rc)
		goto cleanup;
	if (PQntuples(res)) {
		rc = cache_clear_gaps(c, q, err);
		if (rc)
			goto cleanup;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct cache_gap g = {
			.start = strtoll(PQgetvalue(res, i, 0), NULL, 10),
			.end = strtoll(PQgetvalue(res, i, 1), NULL, 10),
			.seen = strtoll(PQgetvalue(res, i, 3), NULL, 10),
		};
		snprintf(g.peer, sizeof(g.peer), "%s", PQgetvalue(res, i, 2));
		snprintf(g.reason, sizeof(g.reason), "%s", PQgetvalue(res, i, 4));
		rc = cache_put_gap(c, q, &g, err);
		if (rc)
			goto cleanup;
	}
	rc = pg_run(p, p->conn, "COMMIT", 0, NULL, NULL, err, "pull: commit");
cleanup:
	PQclear(res);
	if (rc)
		pg_rollback(p->conn);
	else if (windows)
		*windows = done;
	return rc;
}
