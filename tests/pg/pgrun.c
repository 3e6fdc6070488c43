/*
 * pgrun - the shared cache's calls (cache/pg.h) from the command line, for
 * the integration tests (tests/integration/test_pg.py).
 *
 *   pgrun [options] CONNINFO SUBJECT STEP...
 *
 * Options: --heartbeat S, --expiry S, --statement-ms N, --schema-upto V
 * (make the schema of version V and stop), --collector URL (default
 * http://collector.test), --product P (default flowsim).
 *
 * Steps, run in order on one session, each printing one line:
 *   claim FROM TO             "claim mine=A:B,... others=... done=..."
 *   claimwait FROM TO MS      claim again after each wait for others'
 *                             claims (cache_pg_wait, 500 ms), until none
 *                             is held by another, at most MS in all
 *   put FROM TO N TAG         a window of N made-up records (ids r<i>,
 *                             starts spread over the window, TAG in
 *                             'extra') with its coverage: "put N"
 *   gap FROM TO               "gap"
 *   done FROM TO, release FROM TO
 *   pull DIR FROM TO          into the local cache in DIR: "pulled W"
 *   sync                      print "ready" and read a line of stdin
 *   session                   "session ID"
 * On failure: "pgrun: ERRNAME: cause" on stderr, exit status 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "pg.h"

static int usage(void)
{
	fprintf(stderr, "usage: pgrun [--heartbeat S] [--expiry S] [--statement-ms N] "
		"[--schema-upto V] [--collector URL] [--product P] CONNINFO SUBJECT STEP...\n");
	return 2;
}

/* The errno's name, for the tests to match. */
static const char *errname(int rc)
{
	switch (-rc) {
	case ESTALE: return "ESTALE";
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPROTO: return "EPROTO";
	case EEXIST: return "EEXIST";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	default: return "other";
	}
}

static void print_ivals(const char *name, const struct cache_ivals *v)
{
	printf(" %s=", name);
	for (size_t i = 0; i < v->n; i++)
		printf("%s%lld:%lld", i ? "," : "", (long long)v->v[i].start,
		       (long long)v->v[i].end);
}

/* "claim mine=A:B,... others=... done=..." */
static void print_claim(const struct cache_pg_claim *cl)
{
	printf("claim");
	print_ivals("mine", &cl->mine);
	print_ivals("others", &cl->others);
	print_ivals("done", &cl->done);
	printf("\n");
}

/* n records spread over [from, to), their ids and values fixed by i, tag
 * in 'extra' (so that a test can tell whose copy a row is). */
static struct flow_rec *make_window(int64_t from, int64_t to, size_t n, const char *tag)
{
	struct flow_rec *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct flow_rec *x = &r[i];
		x->start_ms = from + (int64_t)((to - from) * (int64_t)i / (int64_t)n);
		x->end_ms = x->start_ms + 10;
		snprintf(x->id, sizeof(x->id), "r%zu", i);
		x->src[10] = x->src[11] = x->dst[10] = x->dst[11] = 0xff;
		x->src[12] = 10, x->src[15] = 1;
		x->dst[12] = 192, x->dst[13] = 168, x->dst[15] = (uint8_t)(i % 250 + 1);
		x->sport = 40000 + (int32_t)(i % 1000);
		x->dport = 443;
		x->proto = 6;
		x->tcp_flags = 0x1b;
		x->icmp_type = x->icmp_code = -1;
		x->pkts = 3;
		x->bytes = 100 + (int64_t)i;
		x->in_if = x->out_if = x->exporter = x->app = -1;
		x->src_as = x->dst_as = x->sampling = -1;
		x->nsrc_groups = 2;
		x->src_groups[0] = 3, x->src_groups[1] = 12;
		snprintf(x->extra, sizeof(x->extra), "{\"tag\":\"%s\",\"esc\":\"\\\\\t\n\r\"}", tag);
	}
	return r;
}

static int step_claimwait(struct cache_pg *p, struct cache_query *q, long bound_ms, char *err)
{
	struct cache_pg_claim cl;
	long waited = 0;
	int rc;

	for (;;) {
		rc = cache_pg_claim(p, q, &cl, err);
		if (rc)
			return rc;
		bool others = cl.others.n > 0;
		if (!others || waited >= bound_ms) {
			print_claim(&cl);
			cache_pg_claim_free(&cl);
			return others ? -ETIMEDOUT : 0;
		}
		cache_pg_claim_free(&cl);
		rc = cache_pg_wait(p, q, 500, err);
		if (rc)
			return rc;
		waited += 500;
	}
}

int main(int argc, char **argv)
{
	struct cache_identity id = {.url = "http://collector.test", .product = "flowsim",
				    .driver = "flowapi"};
	struct cache_pg_opts o = {0};
	struct cache_query q = {0};
	struct cache_pg *p = NULL;
	char err[CACHE_ERRLEN] = "";
	int i = 1, rc = 0;

	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--heartbeat") == 0)
			o.heartbeat_s = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--expiry") == 0)
			o.expiry_s = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--statement-ms") == 0)
			o.statement_ms = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--schema-upto") == 0)
			o.schema_upto = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--collector") == 0)
			id.url = argv[i + 1];
		else if (strcmp(argv[i], "--product") == 0)
			id.product = argv[i + 1];
		else
			return usage();
	}
	if (argc - i < 2)
		return usage();
	const char *conninfo = argv[i++];
	if (cache_prefix_parse(argv[i++], &q.subject))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = cache_pg_open(conninfo, &id, &o, &p, err);
	if (rc)
		goto fail;
	while (i < argc && !rc) {
		const char *s = argv[i++];
		int need = strcmp(s, "claimwait") == 0 || strcmp(s, "pull") == 0 ? 3
			   : strcmp(s, "put") == 0 ? 4
			   : strcmp(s, "sync") == 0 || strcmp(s, "session") == 0 ? 0 : 2;
		if (argc - i < need)
			return usage();
		const char *dir = NULL;
		if (strcmp(s, "pull") == 0) {
			dir = argv[i++];
			need = 2;
		}
		if (need >= 2) {
			q.start = strtoll(argv[i], NULL, 10);
			q.end = strtoll(argv[i + 1], NULL, 10);
		}
		if (strcmp(s, "claim") == 0) {
			struct cache_pg_claim cl;
			rc = cache_pg_claim(p, &q, &cl, err);
			if (!rc) {
				print_claim(&cl);
				cache_pg_claim_free(&cl);
			}
		} else if (strcmp(s, "claimwait") == 0) {
			rc = step_claimwait(p, &q, atol(argv[i + 2]), err);
			if (rc == -ETIMEDOUT && !err[0])
				snprintf(err, sizeof(err), "others still hold claims");
		} else if (strcmp(s, "put") == 0) {
			size_t n = strtoul(argv[i + 2], NULL, 10);
			struct flow_rec *r = make_window(q.start, q.end, n, argv[i + 3]);
			struct cache_cover cv = {.start = q.start, .end = q.end, .fetched_ms = 1,
						 .records = (int64_t)n};
			rc = r ? cache_pg_put_window(p, &q, r, n, &cv, err) : -ENOMEM;
			if (!rc)
				printf("put %zu\n", n);
			free(r);
		} else if (strcmp(s, "gap") == 0) {
			struct cache_gap g = {.start = q.start, .end = q.end, .seen = 5000};
			snprintf(g.peer, sizeof(g.peer), "0.0.0.0/0");
			snprintf(g.reason, sizeof(g.reason), "saturated");
			rc = cache_pg_put_gap(p, &q, &g, err);
			if (!rc)
				printf("gap\n");
		} else if (strcmp(s, "done") == 0 || strcmp(s, "release") == 0) {
			rc = s[0] == 'd' ? cache_pg_done(p, &q, err) : cache_pg_release(p, &q, err);
			if (!rc)
				printf("%s\n", s);
		} else if (strcmp(s, "pull") == 0) {
			struct cache_identity lid = id;
			struct cache *c = NULL;
			size_t w = 0;
			rc = cache_open(dir, &lid, &c, err);
			if (!rc)
				rc = cache_pg_pull(p, &q, c, &w, err);
			if (!rc)
				printf("pulled %zu\n", w);
			cache_close(c);
		} else if (strcmp(s, "sync") == 0) {
			char line[64];
			printf("ready\n");
			if (!fgets(line, sizeof(line), stdin))
				break;
		} else if (strcmp(s, "session") == 0) {
			printf("session %lld\n", (long long)cache_pg_session(p));
		} else {
			cache_pg_close(p);
			return usage();
		}
		i += need;
	}
	if (!rc) {
		cache_pg_close(p);
		return 0;
	}
fail:
	fprintf(stderr, "pgrun: %s: %s\n", errname(rc), err);
	cache_pg_close(p);
	return 2;
}
