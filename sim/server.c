/*
 * server.c - flowsim's HTTP front, on libmicrohttpd.
 *
 * One thread a connection (MHD_USE_THREAD_PER_CONNECTION): a stalled or slow
 * answer is then just a sleeping thread, and never holds up another client.
 * Sleeps are cut into 20 ms slices that watch the stop flag, so SIGTERM
 * ends a server with stalled connections at once.
 *
 * Faults are drawn once a request from one uniform number: the rates
 * partition [0, 1), so a request suffers at most one fault and the observed
 * mix follows the configured rates.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define BODY_MAX ((size_t)1 << 30)	/* no answer grows past 1 GiB */

const char *const sim_fault_names[SIM_NFAULTS] = {
	"500", "503", "429", "slow", "stall", "reset", "cut", "malformed", "html", "401",
	"foreign",
};

/* Counted endpoints: the reference dialect's, /_sim and other, then the SNA
 * dialect's (sim_sna_ep_names, from EP_SNA0 on), then the Flowmon dialect's
 * (sim_fm_ep_names, from EP_FM0 on). */
enum { EP_INFO, EP_FLOWS, EP_APPS, EP_GROUPS, EP_EXPORTERS, EP_SIM, EP_OTHER,
       EP_SNA0, EP_FM0 = EP_SNA0 + SIM_SNA_NEP, EP_N = EP_FM0 + SIM_FM_NEP };
static const char *const ep_names[EP_SNA0] = {
	"/api/v1/info", "/api/v1/flows", "/api/v1/applications",
	"/api/v1/hostgroups", "/api/v1/exporters", "/_sim", "other",
};

static const char *ep_name(int e)
{
	if (e >= EP_FM0)
		return sim_fm_ep_names[e - EP_FM0];
	return e < EP_SNA0 ? ep_names[e] : sim_sna_ep_names[e - EP_SNA0];
}

enum { ST_200, ST_201, ST_202, ST_204, ST_400, ST_401, ST_403, ST_404, ST_405, ST_406,
       ST_429, ST_500, ST_503, ST_RESET, ST_STALL, ST_N };
static const char *const st_names[ST_N] = {
	"200", "201", "202", "204", "400", "401", "403", "404", "405", "406", "429", "500", "503",
	"reset", "stall",
};

/* A request's uploaded body (the SNA dialect's POSTs), bounded. */
#define UPLOAD_MAX ((size_t)64 * 1024)
struct upload {
	struct sim_buf b;
	bool too_big;
};

struct sim_server {
	struct sim_config cfg;
	struct sim_dataset *ds;
	struct MHD_Daemon *mhd;
	int fd;
	atomic_int stopping;
	atomic_uint_fast64_t req_seq;
	atomic_uint_fast64_t count[EP_N][ST_N];
	atomic_uint_fast64_t faults[SIM_NFAULTS];
	/* flow requests being served now, and the most at once since the
	 * start or the last reset (in_flight_enter) */
	atomic_uint_fast64_t flows_now, flows_peak;
	pthread_mutex_t lock;	/* guards cfg.rate and the fault generator */
	uint64_t fault_rng;
	uint64_t rng_base;	/* per-run base of the answers' random choices */
	struct sim_sna *sna;	/* the SNA dialect's state, or NULL */
	struct sim_fm *fm;	/* the Flowmon dialect's state, or NULL */
};

int64_t sim_now_ms(const struct sim_config *cfg)
{
	struct timespec ts;

	if (cfg->now_ms)
		return cfg->now_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_config_check(const struct sim_config *cfg, char *err)
{
	double sum = 0;

	for (int i = 0; i < SIM_NFAULTS; i++) {
		if (!(cfg->rate[i] >= 0 && cfg->rate[i] <= 1)) {
			snprintf(err, SIM_ERRLEN, "fault rate for %s must be between 0 and 1",
				 sim_fault_names[i]);
			return -EINVAL;
		}
		sum += cfg->rate[i];
	}
	if (sum > 1.0 + 1e-9) {
		snprintf(err, SIM_ERRLEN, "fault rates add up to %.3f; at most 1 is allowed", sum);
		return -EINVAL;
	}
	if (cfg->max_records < 1 || cfg->max_records > 1000000) {
		snprintf(err, SIM_ERRLEN, "max-records must be 1 to 1000000");
		return -EINVAL;
	}
	if (cfg->ndays < 1 || cfg->ndays > SIM_MAX_DAYS) {
		snprintf(err, SIM_ERRLEN, "days must be 1 to %d", SIM_MAX_DAYS);
		return -EINVAL;
	}
	if (cfg->dialect == SIM_FLOWMON) {
		if (cfg->fm_token_ttl_s < 1 || cfg->fm_pending < 0 || cfg->fm_result_ttl_s < 1 ||
		    cfg->fm_active_timeout_s < 0) {
			snprintf(err, SIM_ERRLEN, "a --flowmon-* value is out of range (see --help)");
			return -EINVAL;
		}
		if (cfg->token[0] && (!strchr(cfg->token, ':') || cfg->token[0] == ':' ||
				      !strchr(cfg->token, ':')[1] || strlen(cfg->token) > 255)) {
			snprintf(err, SIM_ERRLEN, "the Flowmon login (--token, --token-file) must be "
				 "user:password, each non-empty, at most 255 characters in all");
			return -EINVAL;
		}
		return 0;
	}
	if (cfg->dialect != SIM_SNA)
		return 0;
	if (!(cfg->sna_fail_query >= 0 && cfg->sna_fail_query <= 1) ||
	    !(cfg->sna_cancel_query >= 0 && cfg->sna_cancel_query <= 1)) {
		snprintf(err, SIM_ERRLEN, "sna-fail-query and sna-cancel-query must be between 0 "
			 "and 1");
		return -EINVAL;
	}
	if (cfg->sna_fail_query + cfg->sna_cancel_query > 1.0 + 1e-9) {
		snprintf(err, SIM_ERRLEN, "sna-fail-query and sna-cancel-query add up to more "
			 "than 1");
		return -EINVAL;
	}
	if (cfg->sna_session_s < 1 || cfg->sna_query_ms < 0 || cfg->sna_query_ttl_s < 1 ||
	    cfg->sna_xsrf_rotate_s < 0 || cfg->sna_nstatus_extra < 0 ||
	    cfg->sna_nstatus_extra > SIM_SNA_STATUS_MAX ||
	    cfg->sna_max_queries < 1 || cfg->sna_max_queries > 100000 ||
	    cfg->sna_tenants < 1 || cfg->sna_tenants > 2) {
		snprintf(err, SIM_ERRLEN, "an --sna-* value is out of range (see --help)");
		return -EINVAL;
	}
	if (!cfg->sna_user[0] || !cfg->sna_password[0]) {
		snprintf(err, SIM_ERRLEN, "the SNA username and password must not be empty");
		return -EINVAL;
	}
	return 0;
}

/* Sleep up to ms, in slices, returning early when the server stops. */
static void nap(struct sim_server *s, int64_t ms)
{
	struct timespec slice = {0, 20 * 1000000};

	for (int64_t t = 0; t < ms && !atomic_load(&s->stopping); t += 20)
		nanosleep(&slice, NULL);
}

static void count(struct sim_server *s, int ep, int st)
{
	atomic_fetch_add(&s->count[ep][st], 1);
}

static int status_slot(unsigned status)
{
	switch (status) {
	case 200: return ST_200;
	case 201: return ST_201;
	case 202: return ST_202;
	case 204: return ST_204;
	case 400: return ST_400;
	case 401: return ST_401;
	case 403: return ST_403;
	case 404: return ST_404;
	case 405: return ST_405;
	case 406: return ST_406;
	case 429: return ST_429;
	case 500: return ST_500;
	default: return ST_503;
	}
}

static void log_request(struct sim_server *s, const char *method, const char *url,
			const char *what, size_t bytes, struct timespec *t0)
{
	struct timespec t1;

	if (!s->cfg.log)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "flowsim: %s %s %s %zu bytes %.1f ms\n", method, url, what, bytes,
		(double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
}

/* gzip 'in' into a new buffer.  -ENOMEM or -EIO on failure. */
static int gzip_body(const struct sim_buf *in, struct sim_buf *out)
{
	z_stream z;
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	out->max = BODY_MAX;
	rc = sim_buf_reserve(out, deflateBound(&z, in->len));
	if (rc) {
		deflateEnd(&z);
		return rc;
	}
	z.next_in = (Bytef *)in->p;
	z.avail_in = (uInt)in->len;
	z.next_out = (Bytef *)out->p;
	z.avail_out = (uInt)(out->cap - 1);
	rc = deflate(&z, Z_FINISH);
	out->len = z.total_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -EIO;
}

static bool accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	return ae && strstr(ae, "gzip");
}

/* Queue 'body' (taken over) with a status, its Content-Type (none when
 * type is NULL) and the Set-Cookie values in cookies[0..ncookies); gzip it
 * when asked. */
static enum MHD_Result send_body_cookies(struct MHD_Connection *c, unsigned status,
					 struct sim_buf *body, const char *type, bool gz,
					 char (*cookies)[400], int ncookies, const char *xfm)
{
	struct MHD_Response *r;
	struct sim_buf zb = {0};
	enum MHD_Result ret;

	if (gz && body->len > 256 && gzip_body(body, &zb) == 0) {
		sim_buf_free(body);
		*body = zb;
	} else {
		sim_buf_free(&zb);
		gz = false;
	}
	r = MHD_create_response_from_buffer(body->len, body->p ? body->p : (char *)"",
					    body->p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		sim_buf_free(body);
		return MHD_NO;
	}
	body->p = NULL;
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	for (int i = 0; i < ncookies; i++)
		MHD_add_response_header(r, "Set-Cookie", cookies[i]);
	if (xfm)
		MHD_add_response_header(r, "X-FM-Message", xfm);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status,
				 struct sim_buf *body, const char *type, bool gz)
{
	return send_body_cookies(c, status, body, type, gz, NULL, 0, NULL);
}

/* The dialect's error body: {"error": msg}, the SNA errors list or the
 * Flowmon forms (never for /_sim, whose errors keep the reference form). */
static int error_body(struct sim_buf *b, enum sim_dialect d, unsigned status, const char *msg)
{
	if (d == SIM_SNA)
		return sim_sna_error_body(b, status, msg);
	if (d == SIM_FLOWMON)
		return sim_fm_error_body(b, status, msg);
	if (sim_buf_add(b, "{\"error\":", 9) || sim_json_string(b, msg) ||
	    sim_buf_add(b, "}", 1))
		return -ENOMEM;
	return 0;
}

static enum MHD_Result send_error(struct MHD_Connection *c, enum sim_dialect d,
				  unsigned status, const char *msg)
{
	struct sim_buf b = {.max = 4096};

	if (error_body(&b, d, status, msg)) {
		sim_buf_free(&b);
		return MHD_NO;
	}
	return send_body_cookies(c, status, &b, "application/json", false, NULL, 0,
				 d == SIM_FLOWMON && status == 405 ? "Validation failed" : NULL);
}

/* A body that stops at half its promised length. */
struct cut_body {
	struct sim_buf b;
	size_t half;
};

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct cut_body *cb = cls;

	if (pos >= cb->half)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = cb->half - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, cb->b.p + pos, n);
	return (ssize_t)n;
}

static void cut_free(void *cls)
{
	struct cut_body *cb = cls;

	sim_buf_free(&cb->b);
	free(cb);
}

static enum MHD_Result send_cut(struct MHD_Connection *c, unsigned status,
				struct sim_buf *body)
{
	struct cut_body *cb = calloc(1, sizeof(*cb));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!cb) {
		sim_buf_free(body);
		return MHD_NO;
	}
	cb->b = *body;
	cb->half = body->len / 2;
	body->p = NULL;
	r = MHD_create_response_from_callback(cb->b.len, 64 * 1024, cut_reader, cb, cut_free);
	if (!r) {
		cut_free(cb);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Close with a TCP reset.  libmicrohttpd shuts the write side down (a FIN)
 * before it closes, so linger alone is not enough: the connection's socket
 * is closed here with linger {1, 0} (an RST) by dup2()ing an unconnected
 * socket over its descriptor, and libmicrohttpd then closes that one.
 */
static enum MHD_Result send_reset(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct linger lg = {1, 0};

	if (ci) {
		int fd = ci->connect_fd, dummy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (dummy >= 0) {
			dup2(dummy, fd);
			close(dummy);
		}
	}
	return MHD_NO;
}

/* Strict non-negative decimal. */
static int parse_ms(const char *s, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || strlen(s) > 15)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

/* Read ip/peer/start/end of a flows or truth request into q; on a bad
 * parameter, the message for the 400. */
static const char *parse_query(struct sim_server *s, struct MHD_Connection *c,
			       struct sim_query *q)
{
	const char *ip = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ip");
	const char *peer = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "peer");
	const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "start");
	const char *en = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "end");

	memset(q, 0, sizeof(*q));
	if (!ip || !*ip)
		return "missing parameter: ip";
	if (sim_prefix_parse(ip, &q->ip))
		return "bad parameter ip: not an address or prefix";
	if (peer && *peer) {
		if (sim_prefix_parse(peer, &q->peer))
			return "bad parameter peer: not an address or prefix";
		q->has_peer = true;
	}
	if (!st || !en)
		return "missing parameter: start and end are required";
	if (parse_ms(st, &q->start) || parse_ms(en, &q->end))
		return "bad parameter: start and end are integer milliseconds";
	if (q->start >= q->end)
		return "bad parameters: start must be before end";
	if (q->end - q->start > SIM_MAX_RANGE_MS)
		return "bad parameters: the window is longer than 31 days";
	q->match = s->cfg.match;
	q->visible_before = sim_now_ms(&s->cfg);
	q->export_delay_ms = (int64_t)s->cfg.export_delay_s * 1000;
	return NULL;
}

/* The text "<flowCollectorId>:<id>" of a flow's SNA record; buf: 32 bytes. */
static void sna_key(struct sim_server *s, const struct sim_ref *r, const struct sim_flow *f,
		    char *buf)
{
	snprintf(buf, 32, "%u:%llu", f->exporter,
		 (unsigned long long)sim_sna_flow_id(s->ds, r->stream, r->day, r->pos));
}

/* flowapi/1 records between head and tail; with_key adds each one's
 * "sna_key" (the truth in the SNA dialect), or in the Flowmon dialect its
 * export time "fm_export" (ms). */
static int render_flows(struct sim_server *s, const struct sim_ref *refs, size_t n,
			struct sim_buf *b, const char *head, const char *tail, bool with_key)
{
	struct sim_flow f;
	char key[32];
	int rc = sim_buf_add(b, head, strlen(head));

	for (size_t i = 0; !rc && i < n; i++) {
		const struct sim_chunk *c = sim_dataset_chunk(s->ds, refs[i].stream, refs[i].day);
		sim_flow_make(s->ds, refs[i].stream, refs[i].day, refs[i].pos,
			      c->start[refs[i].pos], &f);
		if (i)
			rc = sim_buf_add(b, ",", 1);
		if (!rc)
			rc = sim_json_flow(b, &f);
		if (!rc && with_key && s->cfg.dialect == SIM_FLOWMON) {
			b->len--;	/* reopen the record */
			rc = sim_buf_printf(b, ",\"fm_export\":%lld}", (long long)sim_fm_export_ms(
				&f, (int64_t)s->cfg.fm_active_timeout_s * 1000));
		} else if (!rc && with_key) {
			sna_key(s, &refs[i], &f, key);
			b->len--;	/* reopen the record */
			rc = sim_buf_printf(b, ",\"sna_key\":\"%s\"}", key);
		}
	}
	return rc ? rc : sim_buf_add(b, tail, strlen(tail));
}

/* Build the body of GET /flows into b; with the foreign fault, the answer
 * also holds flows the query does not select (sim_query_foreign, drawn
 * from fault_seed). */
static int flows_body(struct sim_server *s, struct MHD_Connection *c, int fault,
		      uint64_t fault_seed, struct sim_buf *b, unsigned *status,
		      const char **msg)
{
	const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	int64_t limit = s->cfg.max_records;
	struct sim_matches m;
	struct sim_query q;
	struct sim_ref *refs = NULL;
	size_t n = 0;
	int rc;

	*msg = parse_query(s, c, &q);
	if (!*msg && lim && strlen(lim) > 15 && strspn(lim, "0123456789") == strlen(lim))
		lim = NULL;	/* a huge limit is cut to max_records */
	if (!*msg && lim && (parse_ms(lim, &limit) || limit < 1))
		*msg = "bad parameter limit: 1 to max_records";
	if (*msg) {
		*status = 400;
		return 0;
	}
	if (limit > s->cfg.max_records)
		limit = s->cfg.max_records;
	rc = sim_query_collect(s->ds, &q, &m);
	if (rc)
		return rc;
	/* a distinct seed for every answer: a new subset and order each time */
	uint64_t seed = sim_mix(s->rng_base + atomic_fetch_add(&s->req_seq, 1));
	rc = sim_query_pick(&m, (uint64_t)limit, seed, &refs, &n);
	if (!rc && fault == SIM_FAULT_FOREIGN)
		rc = sim_query_foreign(s->ds, &q, (uint64_t)limit, fault_seed, &refs, &n);
	if (!rc)
		rc = render_flows(s, refs, n, b, "{\"flows\":[", "]}", false);
	free(refs);
	sim_matches_free(&m);
	*status = 200;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct keyed_ref {
	int64_t start;
	uint64_t id;
	struct sim_ref ref;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed_ref *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* GET /_sim/truth: count, digest, and the ids or records when asked. */
static int truth_body(struct sim_server *s, struct MHD_Connection *c,
		      struct sim_buf *b, unsigned *status, const char **msg)
{
	const char *list = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "list");
	const char *key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
	struct sim_matches m;
	struct sim_query q;
	struct keyed_ref *keyed = NULL;
	uint64_t *ids = NULL;
	char (*keys)[32] = NULL;
	unsigned char md[32];
	char line[20];
	EVP_MD_CTX *ctx = NULL;
	bool by_sna;
	int rc;

	*msg = parse_query(s, c, &q);
	if (!*msg && list && strcmp(list, "ids") && strcmp(list, "records"))
		*msg = "bad parameter list: ids or records";
	if (!*msg && key && strcmp(key, "ref") && strcmp(key, "sna"))
		*msg = "bad parameter key: ref or sna";
	if (*msg) {
		*status = 400;
		return 0;
	}
	by_sna = key && strcmp(key, "sna") == 0;
	rc = sim_query_collect(s->ds, &q, &m);
	if (rc)
		return rc;
	rc = -ENOMEM;
	ids = malloc((m.total ? m.total : 1) * sizeof(*ids));
	keyed = malloc((m.total ? m.total : 1) * sizeof(*keyed));
	keys = by_sna ? malloc((m.total ? m.total : 1) * sizeof(*keys)) : NULL;
	ctx = EVP_MD_CTX_new();
	if (!ids || !keyed || !ctx || (by_sna && !keys))
		goto out;
	for (uint64_t i = 0; i < m.total; i++) {
		struct sim_ref r = sim_matches_at(&m, i);
		const struct sim_chunk *ch = sim_dataset_chunk(s->ds, r.stream, r.day);
		struct sim_flow f;
		sim_flow_make(s->ds, r.stream, r.day, r.pos, ch->start[r.pos], &f);
		ids[i] = f.id;
		keyed[i] = (struct keyed_ref){f.start, f.id, r};
		if (by_sna)
			sna_key(s, &r, &f, keys[i]);
	}
	qsort(ids, m.total, sizeof(*ids), cmp_u64);
	if (by_sna)
		qsort(keys, m.total, sizeof(*keys), cmp_str);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (uint64_t i = 0; i < m.total; i++) {
		if (by_sna) {
			EVP_DigestUpdate(ctx, keys[i], strlen(keys[i]));
			EVP_DigestUpdate(ctx, "\n", 1);
			continue;
		}
		snprintf(line, sizeof(line), "%016llx\n", (unsigned long long)ids[i]);
		EVP_DigestUpdate(ctx, line, 17);
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	rc = sim_buf_printf(b, "{\"count\":%llu,\"digest\":\"", (unsigned long long)m.total);
	for (int i = 0; !rc && i < 32; i++)
		rc = sim_buf_printf(b, "%02x", md[i]);
	if (!rc)
		rc = sim_buf_add(b, "\"", 1);
	if (!rc && list && strcmp(list, "ids") == 0) {
		rc = sim_buf_add(b, ",\"ids\":[", 8);
		for (uint64_t i = 0; !rc && i < m.total; i++) {
			if (by_sna)
				rc = sim_buf_printf(b, "%s\"%s\"", i ? "," : "", keys[i]);
			else
				rc = sim_buf_printf(b, "%s\"%016llx\"", i ? "," : "",
						    (unsigned long long)ids[i]);
		}
		if (!rc)
			rc = sim_buf_add(b, "]", 1);
	} else if (!rc && list) {
		struct sim_ref *refs = malloc((m.total ? m.total : 1) * sizeof(*refs));
		rc = -ENOMEM;
		if (refs) {
			qsort(keyed, m.total, sizeof(*keyed), cmp_keyed);
			for (uint64_t i = 0; i < m.total; i++)
				refs[i] = keyed[i].ref;
			rc = render_flows(s, refs, m.total, b, ",\"records\":[", "]",
					  s->cfg.dialect != SIM_FLOWAPI);
			free(refs);
		}
	}
	if (!rc)
		rc = sim_buf_add(b, "}", 1);
	*status = 200;
out:
	EVP_MD_CTX_free(ctx);
	free(ids);
	free(keyed);
	free(keys);
	sim_matches_free(&m);
	return rc;
}

static int counters_body(struct sim_server *s, struct sim_buf *b)
{
	uint64_t total = 0;
	int rc;

	for (int e = 0; e < EP_N; e++)
		for (int t = 0; t < ST_N; t++)
			total += atomic_load(&s->count[e][t]);
	rc = sim_buf_printf(b, "{\"total\":%llu,\"endpoints\":{", (unsigned long long)total);
	/* the dialect's endpoints, then /_sim and other */
	static const int ref_order[] = {EP_INFO, EP_FLOWS, EP_APPS, EP_GROUPS, EP_EXPORTERS,
					EP_SIM, EP_OTHER};
	int order[EP_N], n = 0;
	if (s->cfg.dialect == SIM_SNA || s->cfg.dialect == SIM_FLOWMON) {
		int e0 = s->cfg.dialect == SIM_SNA ? EP_SNA0 : EP_FM0;
		int e1 = s->cfg.dialect == SIM_SNA ? EP_FM0 : EP_N;
		for (int e = e0; e < e1; e++)
			order[n++] = e;
		order[n++] = EP_SIM;
		order[n++] = EP_OTHER;
	} else {
		for (size_t i = 0; i < sizeof(ref_order) / sizeof(ref_order[0]); i++)
			order[n++] = ref_order[i];
	}
	for (int k = 0; !rc && k < n; k++) {
		int e = order[k];
		rc = sim_buf_printf(b, "%s\"%s\":{", k ? "," : "", ep_name(e));
		bool first = true;
		for (int t = 0; !rc && t < ST_N; t++) {
			uint64_t v = atomic_load(&s->count[e][t]);
			if (!v)
				continue;
			rc = sim_buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", st_names[t],
					    (unsigned long long)v);
			first = false;
		}
		if (!rc)
			rc = sim_buf_add(b, "}", 1);
	}
	if (!rc)
		rc = sim_buf_add(b, "},\"faults\":{", 12);
	for (int f = 0; !rc && f < SIM_NFAULTS; f++)
		rc = sim_buf_printf(b, "%s\"%s\":%llu", f ? "," : "", sim_fault_names[f],
				    (unsigned long long)atomic_load(&s->faults[f]));
	if (!rc)
		rc = sim_buf_printf(b, "},\"flows_in_flight\":{\"now\":%llu,\"peak\":%llu}",
				    (unsigned long long)atomic_load(&s->flows_now),
				    (unsigned long long)atomic_load(&s->flows_peak));
	if (!rc && s->sna) {
		rc = sim_buf_add(b, ",\"sna\":", 7);
		if (!rc)
			rc = sim_sna_counters(s->sna, b);
	}
	if (!rc && s->fm) {
		rc = sim_buf_add(b, ",\"flowmon\":", 11);
		if (!rc)
			rc = sim_fm_counters(s->fm, b);
	}
	return rc ? rc : sim_buf_add(b, "}", 1);
}

static int faults_body(struct sim_server *s, struct sim_buf *b)
{
	int rc = sim_buf_add(b, "{", 1);

	pthread_mutex_lock(&s->lock);
	for (int f = 0; !rc && f < SIM_NFAULTS; f++)
		rc = sim_buf_printf(b, "%s\"%s\":%g", f ? "," : "", sim_fault_names[f],
				    s->cfg.rate[f]);
	pthread_mutex_unlock(&s->lock);
	return rc ? rc : sim_buf_add(b, "}", 1);
}

/* POST /_sim/faults?500=R&...[&seed=N]: the new rates (and, with seed, the
 * fault draws started again from that seed), or the message for a 400. */
static const char *set_faults(struct sim_server *s, struct MHD_Connection *c)
{
	struct sim_config next;
	char err[SIM_ERRLEN];
	const char *seed = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seed");
	unsigned long long seed_v = 0;

	if (seed) {
		char *end;
		errno = 0;
		seed_v = strtoull(seed, &end, 10);
		if (errno || end == seed || *end || seed[0] == '-')
			return "bad fault seed";
	}
	pthread_mutex_lock(&s->lock);
	next = s->cfg;
	for (int f = 0; f < SIM_NFAULTS; f++) {
		const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
							    sim_fault_names[f]);
		char *end;
		if (!v)
			continue;
		next.rate[f] = strtod(v, &end);
		if (end == v || *end) {
			pthread_mutex_unlock(&s->lock);
			return "bad fault rate";
		}
	}
	if (sim_config_check(&next, err)) {
		pthread_mutex_unlock(&s->lock);
		return "fault rates must be 0 to 1 and add up to at most 1";
	}
	memcpy(s->cfg.rate, next.rate, sizeof(next.rate));
	if (seed)
		s->fault_rng = sim_mix(seed_v) | 1;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static const char *kind_name(enum sim_kind k)
{
	static const char *const names[] = {"steady", "heavy", "bursty", "scan", "flood"};
	return names[k];
}

static int scenario_body(struct sim_server *s, struct sim_buf *b)
{
	const struct sim_dataset *ds = s->ds;
	int rc = sim_buf_printf(b, "{\"now\":%lld,\"first_day\":%lld,\"days\":%d,"
				"\"max_records\":%u,\"match\":\"%s\",\"streams\":[",
				(long long)sim_now_ms(&s->cfg), (long long)ds->first_day_ms,
				ds->ndays, s->cfg.max_records,
				s->cfg.match == SIM_MATCH_START ? "start" : "overlap");

	for (int i = 0; !rc && i < ds->sc.nstreams; i++) {
		const struct sim_stream *st = &ds->sc.streams[i];
		char addr[64], peer[64];
		bool event = st->kind == SIM_SCAN || st->kind == SIM_FLOOD;

		sim_addr_format(&st->subject.addr, addr, sizeof(addr));
		sim_addr_format(&st->peers.addr, peer, sizeof(peer));
		rc = sim_buf_printf(b, "%s{\"name\":\"%s\",\"kind\":\"%s\",\"addr\":\"%s\","
				    "\"peers\":\"%s/%d\",\"flows\":%llu",
				    i ? "," : "", st->name, kind_name(st->kind), addr, peer,
				    st->peers.v4 ? st->peers.len - 96 : st->peers.len,
				    (unsigned long long)st->flows);
		if (!rc && st->kind == SIM_SCAN)
			rc = sim_buf_printf(b, ",\"attacker\":\"%s\"", peer);
		if (!rc && event) {
			int64_t t = ds->first_day_ms +
				    (int64_t)(ds->ndays - 1 + st->day) * SIM_DAY_MS + st->at_ms;
			rc = sim_buf_printf(b, ",\"start\":%lld,\"end\":%lld", (long long)t,
					    (long long)(t + st->span_ms));
		}
		if (!rc)
			rc = sim_buf_add(b, "}", 1);
	}
	if (!rc && s->cfg.dialect == SIM_SNA)
		rc = sim_buf_printf(b, "],\"dialect\":\"sna\",\"tenants\":[102%s",
				    s->cfg.sna_tenants > 1 ? ",103" : "");
	if (!rc && s->cfg.dialect == SIM_FLOWMON)
		rc = sim_buf_printf(b, "],\"dialect\":\"flowmon\",\"tz\":\"%s\","
				    "\"active_timeout_s\":%d,\"to_inclusive\":%s,"
				    "\"channels\":[\"p2055\",\"p4739\",\"p9995\"",
				    s->cfg.fm_tz, s->cfg.fm_active_timeout_s,
				    s->cfg.fm_to_exclusive ? "false" : "true");
	return rc ? rc : sim_buf_add(b, "]}", 2);
}

static int info_body(struct sim_server *s, struct sim_buf *b)
{
	return sim_buf_printf(b, "{\"product\":\"flowsim\",\"version\":\"1.0\","
			      "\"dialect\":\"flowapi/1\",\"max_records\":%u,"
			      "\"retention_days\":%d,\"now\":%lld,\"export_delay_s\":%d}",
			      s->cfg.max_records, s->cfg.retention_days,
			      (long long)sim_now_ms(&s->cfg), s->cfg.export_delay_s);
}

static int endpoint_of(const char *url)
{
	for (int e = 0; e < EP_SIM; e++)
		if (strcmp(url, ep_names[e]) == 0)
			return e;
	if (strncmp(url, "/_sim/", 6) == 0)
		return EP_SIM;
	return EP_OTHER;
}

/* Draw this request's fault, or -1, and count it; *seed is for the
 * fault's own choices (the foreign flows), a function of the fault seed
 * and the draw, so that a fault seed replays them too. */
static int draw_fault(struct sim_server *s, uint64_t *seed)
{
	uint64_t x;
	double u, acc = 0;
	int f = -1;

	pthread_mutex_lock(&s->lock);
	x = sim_rand(&s->fault_rng);
	u = (double)(x >> 11) * (1.0 / 9007199254740992.0);
	for (int i = 0; i < SIM_NFAULTS; i++) {
		acc += s->cfg.rate[i];
		if (u < acc && s->cfg.rate[i] > 0) {
			f = i;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (f >= 0)
		atomic_fetch_add(&s->faults[f], 1);
	*seed = sim_mix(x);
	return f;
}

static bool token_ok(struct sim_server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	size_t n = strlen(s->cfg.token), diff = 0;

	if (!s->cfg.token[0])
		return true;
	if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= (size_t)(h[7 + i] ^ s->cfg.token[i]);
	return diff == 0;
}

/* Act on a fault drawn for a request before its answer is made: an error
 * status, a 429, a stall or a reset is answered here (true, *ret set); a
 * slow one sleeps and lets the request go on (false), as do the faults
 * that spoil a made answer (see finish). */
static bool fault_first(struct sim_server *s, struct MHD_Connection *c, int fault, int ep,
			const char *method, const char *url, struct timespec *t0,
			enum MHD_Result *ret)
{
	enum sim_dialect sna = s->cfg.dialect;
	struct sim_buf body = {.max = 4096};
	struct MHD_Response *r;
	char ra[16];

	switch (fault) {
	case SIM_FAULT_500:
	case SIM_FAULT_503: {
		unsigned st = fault == SIM_FAULT_500 ? 500 : 503;
		const char *msg = st == 500 ? "internal error (injected)" :
					      "service unavailable (injected)";
		count(s, ep, status_slot(st));
		log_request(s, method, url, msg, 0, t0);
		*ret = send_error(c, sna, st, msg);
		return true;
	}
	case SIM_FAULT_429:
		snprintf(ra, sizeof(ra), "%d", s->cfg.retry_after_s);
		*ret = MHD_NO;
		if (error_body(&body, sna, 429, "rate limited (injected)")) {
			sim_buf_free(&body);
			return true;
		}
		r = MHD_create_response_from_buffer(body.len, body.p, MHD_RESPMEM_MUST_FREE);
		if (!r) {
			sim_buf_free(&body);
			return true;
		}
		MHD_add_response_header(r, "Content-Type", "application/json");
		MHD_add_response_header(r, "Retry-After", ra);
		*ret = MHD_queue_response(c, 429, r);
		MHD_destroy_response(r);
		count(s, ep, ST_429);
		log_request(s, method, url, "429", 0, t0);
		return true;
	case SIM_FAULT_SLOW:
		nap(s, s->cfg.slow_ms);
		return false;
	case SIM_FAULT_STALL:
		count(s, ep, ST_STALL);
		log_request(s, method, url, "stall", 0, t0);
		nap(s, (int64_t)s->cfg.stall_s * 1000);
		*ret = MHD_NO;
		return true;
	case SIM_FAULT_RESET:
		count(s, ep, ST_RESET);
		log_request(s, method, url, "reset", 0, t0);
		*ret = send_reset(c);
		return true;
	case SIM_FAULT_401:
		count(s, ep, status_slot(401));
		log_request(s, method, url, "token expired (injected)", 0, t0);
		*ret = send_error(c, sna, 401, "token expired (injected)");
		return true;
	default:
		return false;
	}
}

/* Send a made answer (body taken over): a 500 when making it failed (rc),
 * the error 'msg' when set, else the body with its cookies; a success is
 * first spoilt by a cut, malformed or html fault when one was drawn. */
static enum MHD_Result finish(struct sim_server *s, struct MHD_Connection *c, int ep,
			      int fault, int rc, unsigned status, const char *msg,
			      struct sim_buf *body, const char *type, char (*cookies)[400],
			      int ncookies, const char *xfm, const char *method, const char *url,
			      struct timespec *t0)
{
	enum sim_dialect sna = ep == EP_SIM ? SIM_FLOWAPI : s->cfg.dialect;
	char what[16];

	if (rc) {
		status = 500;
		msg = rc == -E2BIG ? "answer too large" : "out of memory";
	}
	if (!msg && status < 300 && fault == SIM_FAULT_CUT) {
		count(s, ep, status_slot(status));
		snprintf(what, sizeof(what), "%u cut", status);
		log_request(s, method, url, what, body->len / 2, t0);
		return send_cut(c, status, body);
	}
	if (!msg && status < 300 && fault == SIM_FAULT_MALFORMED && body->len)
		body->len = body->len / 2 + 1;
	if (!msg && status < 300 && fault == SIM_FAULT_HTML) {
		static const char html[] =
			"<!DOCTYPE html><html><head><title>Login</title></head>"
			"<body><h1>Session expired</h1><p>Please log in again.</p></body></html>";
		body->len = 0;
		sim_buf_add(body, html, sizeof(html) - 1);
		count(s, ep, ST_200);
		log_request(s, method, url, "200 html", body->len, t0);
		return send_body(c, 200, body, "text/html", false);
	}
	count(s, ep, status_slot(status));
	if (msg) {
		sim_buf_free(body);
		log_request(s, method, url, msg, 0, t0);
		return send_error(c, sna, status, msg);
	}
	snprintf(what, sizeof(what), "%u", status);
	log_request(s, method, url, what, body->len, t0);
	return send_body_cookies(c, status, body, type,
				 accepts_gzip(c) && fault != SIM_FAULT_MALFORMED, cookies, ncookies,
				 xfm);
}

/* The marker of a request with no upload to keep (see handle). */
static int upload_marker;

/* What a dialect's routed request goes through before its module answers
 * it: an unknown path (ep < 0) 404, a wrong method 405, the fault draw
 * (faults that end a request are answered here), a body over 64 KiB
 * (answered with too_big, the dialect's status for it).  true when the
 * request has been answered (*ret set); else *fault and *seed are the
 * draw's, for the module's answer. */
static bool dialect_first(struct sim_server *s, struct MHD_Connection *c, int ep, bool known,
			  bool method_ok, bool flows, const struct upload *u, unsigned too_big,
			  const char *method, const char *url, struct timespec *t0,
			  int *fault, uint64_t *seed, enum MHD_Result *ret)
{
	struct sim_buf none = {0};

	*fault = -1;
	*seed = 0;
	if (!known) {
		*ret = finish(s, c, EP_OTHER, -1, 0, 404, "unknown path", &none, NULL, NULL, 0,
			      NULL, method, url, t0);
		return true;
	}
	if (!method_ok) {
		*ret = finish(s, c, ep, -1, 0, 405, "method not allowed", &none, NULL, NULL, 0,
			      NULL, method, url, t0);
		return true;
	}
	if (flows || s->cfg.faults_all)
		*fault = draw_fault(s, seed);
	if (fault_first(s, c, *fault, ep, method, url, t0, ret))
		return true;
	if (u && u->too_big) {
		*ret = finish(s, c, ep, *fault, 0, too_big, "request body larger than 64 KiB",
			      &none, NULL, NULL, 0, NULL, method, url, t0);
		return true;
	}
	return false;
}

/* A request of the SNA dialect (not /_sim): route, fault, then sna.c. */
static enum MHD_Result handle_sna(struct sim_server *s, struct MHD_Connection *c,
				  const char *url, const char *method, void *state,
				  struct timespec *t0)
{
	struct upload *u = state != &upload_marker ? state : NULL;
	struct sim_sna_route r;
	struct sim_sna_answer a;
	enum MHD_Result ret;
	uint64_t fault_seed;
	int ep, fault, rc;

	sim_sna_route(method, url, &r);
	ep = EP_SNA0 + r.ep;
	if (dialect_first(s, c, ep, r.ep >= 0, r.method_ok, r.flows, u, 400, method, url, t0,
			  &fault, &fault_seed, &ret))
		return ret;
	struct sim_sna_req rq = {
		.method = method,
		.route = &r,
		.jwt = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "stealthwatch.jwt"),
		.xsrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-XSRF-TOKEN"),
		.xsrf_cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "XSRF-TOKEN"),
		.accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
		.body = u ? u->b.p : NULL,
		.body_len = u ? u->b.len : 0,
		.foreign = fault == SIM_FAULT_FOREIGN,
		.foreign_seed = fault_seed,
	};
	rc = sim_sna_serve(s->sna, &rq, &a);
	if (rc)
		sim_buf_free(&a.body);
	return finish(s, c, ep, fault, rc, a.status, NULL, &a.body, a.type, a.cookie, a.ncookies,
		      NULL, method, url, t0);
}

static const char *url_arg(void *cls, const char *name)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, name);
}

/* A request of the Flowmon dialect (not /_sim): route, fault, then
 * flowmon.c. */
static enum MHD_Result handle_flowmon(struct sim_server *s, struct MHD_Connection *c,
				      const char *url, const char *method, void *state,
				      struct timespec *t0)
{
	struct upload *u = state != &upload_marker ? state : NULL;
	struct sim_fm_route r;
	struct sim_fm_answer a;
	enum MHD_Result ret;
	uint64_t fault_seed;
	int ep, fault, rc;

	sim_fm_route(method, url, &r);
	ep = EP_FM0 + r.ep;
	if (dialect_first(s, c, ep, r.ep >= 0, r.method_ok, r.flows, u, 405, method, url, t0,
			  &fault, &fault_seed, &ret))
		return ret;
	struct sim_fm_req rq = {
		.route = &r,
		.auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
		.ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
		.body = u ? u->b.p : NULL,
		.body_len = u ? u->b.len : 0,
		.arg = url_arg,
		.arg_cls = c,
	};
	rc = sim_fm_serve(s->fm, &rq, &a);
	if (rc)
		sim_buf_free(&a.body);
	return finish(s, c, ep, fault, rc, a.status, NULL, &a.body, a.type, NULL, 0,
		      a.fm_message, method, url, t0);
}

/* Free a request's upload when it ends, whatever way it ends. */
static void request_done(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	if (*state && *state != &upload_marker) {
		struct upload *u = *state;
		sim_buf_free(&u->b);
		free(u);
	}
	*state = NULL;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_size, void **state)
{
	struct sim_server *s = cls;
	struct sim_buf body = {.max = BODY_MAX};
	struct timespec t0;
	unsigned status = 200;
	const char *msg = NULL;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	int ep = endpoint_of(url), fault = -1, rc = 0;
	uint64_t fault_seed = 0;
	enum MHD_Result ret;

	(void)version;
	if (*state == NULL) {
		struct upload *u = NULL;
		/* only the SNA and Flowmon dialects read bodies; others are
		 * swallowed */
		if (s->cfg.dialect != SIM_FLOWAPI && !get && ep != EP_SIM) {
			u = calloc(1, sizeof(*u));
			if (!u)
				return MHD_NO;
			u->b.max = UPLOAD_MAX + 1;
		}
		*state = u ? (void *)u : (void *)&upload_marker;
		return MHD_YES;
	}
	if (*upload_size) {
		if (*state != &upload_marker) {
			struct upload *u = *state;
			if (!u->too_big && sim_buf_add(&u->b, upload, *upload_size))
				u->too_big = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (ep == EP_SIM) {
		if (!s->cfg.truth) {
			ep = EP_OTHER;
			goto not_found;
		}
		if (get && strcmp(url, "/_sim/truth") == 0)
			rc = truth_body(s, c, &body, &status, &msg);
		else if (get && s->fm && strcmp(url, "/_sim/flowmon/truth") == 0) {
			const char *list = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
								       "list");
			rc = sim_fm_truth(s->fm, url_arg(c, "from"), url_arg(c, "to"),
					  url_arg(c, "filter"), url_arg(c, "channels"),
					  !list || strcmp(list, "count"), &body, &msg);
			status = msg ? 400 : 200;
		}
		else if (get && strcmp(url, "/_sim/counters") == 0)
			rc = counters_body(s, &body);
		else if (post && strcmp(url, "/_sim/counters/reset") == 0) {
			for (int e = 0; e < EP_N; e++)
				for (int t = 0; t < ST_N; t++)
					atomic_store(&s->count[e][t], 0);
			for (int f = 0; f < SIM_NFAULTS; f++)
				atomic_store(&s->faults[f], 0);
			atomic_store(&s->flows_peak, atomic_load(&s->flows_now));
			if (s->sna)
				sim_sna_counters_reset(s->sna);
			if (s->fm)
				sim_fm_counters_reset(s->fm);
			rc = sim_buf_add(&body, "{}", 2);
		} else if (post && strcmp(url, "/_sim/faults") == 0) {
			msg = set_faults(s, c);
			status = msg ? 400 : 200;
			if (!msg)
				rc = faults_body(s, &body);
		} else if (get && strcmp(url, "/_sim/faults") == 0)
			rc = faults_body(s, &body);
		else if (get && strcmp(url, "/_sim/scenario") == 0)
			rc = scenario_body(s, &body);
		else if (post && s->sna && strcmp(url, "/_sim/sessions/expire") == 0)
			rc = sim_buf_printf(&body, "{\"expired\":%d}",
					    sim_sna_expire_sessions(s->sna));
		else if (post && s->fm && strcmp(url, "/_sim/sessions/expire") == 0)
			rc = sim_buf_printf(&body, "{\"expired\":%d}",
					    sim_fm_expire_tokens(s->fm));
		else
			goto not_found;
		goto answer;
	}
	if (s->cfg.dialect == SIM_SNA)
		return handle_sna(s, c, url, method, *state, &t0);
	if (s->cfg.dialect == SIM_FLOWMON)
		return handle_flowmon(s, c, url, method, *state, &t0);
	if (ep == EP_OTHER)
		goto not_found;
	if (!get) {
		status = 405;
		msg = "method not allowed";
		goto answer;
	}
	if (ep == EP_FLOWS || s->cfg.faults_all)
		fault = draw_fault(s, &fault_seed);
	if (fault_first(s, c, fault, ep, method, url, &t0, &ret))
		return ret;
	if (!token_ok(s, c)) {
		status = 401;
		msg = "missing or wrong token";
		goto answer;
	}
	switch (ep) {
	case EP_INFO: rc = info_body(s, &body); break;
	case EP_FLOWS:
		rc = flows_body(s, c, fault, fault_seed, &body, &status, &msg);
		break;
	case EP_APPS: rc = sim_json_applications(&body); break;
	case EP_GROUPS: rc = sim_json_hostgroups(&body); break;
	default: rc = sim_json_exporters(&body); break;
	}
	goto answer;

not_found:
	status = 404;
	msg = "unknown path";
answer:
	if (rc)
		sim_buf_free(&body);
	return finish(s, c, ep, fault, rc, status, msg, &body, "application/json", NULL, 0, NULL,
		      method, url, &t0);
}

/* Whether a request asks for flows: GET /api/v1/flows, or in the SNA
 * dialect a flow search's creation, status or results. */
static bool is_flows_request(struct sim_server *s, const char *url, const char *method)
{
	if (s->cfg.dialect == SIM_SNA) {
		struct sim_sna_route r;
		sim_sna_route(method, url, &r);
		return r.ep >= 0 && r.flows;
	}
	if (s->cfg.dialect == SIM_FLOWMON) {
		struct sim_fm_route r;
		sim_fm_route(method, url, &r);
		return r.ep >= 0 && r.flows;
	}
	return endpoint_of(url) == EP_FLOWS && strcmp(method, "GET") == 0;
}

/* One more flow request in flight; the peak follows. */
static void in_flight_enter(struct sim_server *s)
{
	uint_fast64_t now = atomic_fetch_add(&s->flows_now, 1) + 1;
	uint_fast64_t peak = atomic_load(&s->flows_peak);

	while (now > peak && !atomic_compare_exchange_weak(&s->flows_peak, &peak, now))
		;
}

/*
 * libmicrohttpd's handler: handle_request, and the gauge of flow requests
 * in flight around it.  A request counts from the call that has all of it
 * (no upload left) until its answer is handed to libmicrohttpd, stalls and
 * slow answers included; it is counted out before a byte of the answer is
 * sent, so a client never sees an answer while the request is still
 * counted, and the peak never exceeds what the clients had in flight.
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version,
			      const char *upload, size_t *upload_size, void **state)
{
	struct sim_server *s = cls;
	bool gauge = *state && !*upload_size && is_flows_request(s, url, method);
	enum MHD_Result ret;

	if (gauge)
		in_flight_enter(s);
	ret = handle_request(cls, c, url, method, version, upload, upload_size, state);
	if (gauge)
		atomic_fetch_sub(&s->flows_now, 1);
	return ret;
}

/* Parse HOST:PORT or [V6]:PORT and bind a listening socket. */
static int listen_on(const char *spec, int *fd_out, unsigned *port_out, char *err)
{
	char host[128];
	const char *colon;
	struct sockaddr_storage ss;
	socklen_t sl;
	long port;
	char *end;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(rb - spec - 1));
		host[rb - spec - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port < 0 || port > 65535)
		goto bad;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		goto bad;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, SIM_ERRLEN, "socket: %s", strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		int e = errno;
		snprintf(err, SIM_ERRLEN, "cannot listen on %s: %s", spec, strerror(e));
		close(fd);
		return -e;
	}
	*port_out = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
	*fd_out = fd;
	return 0;
bad:
	snprintf(err, SIM_ERRLEN, "bad listen address '%s' (HOST:PORT or [V6]:PORT)", spec);
	return -EINVAL;
}

static int write_port_file(const char *path, unsigned port, char *err)
{
	char tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path)) {
		snprintf(err, SIM_ERRLEN, "cannot write port file %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

int sim_server_start(const struct sim_config *cfg, struct sim_dataset *ds,
		     struct sim_server **out, char *err)
{
	struct sim_server *s = calloc(1, sizeof(*s));
	unsigned port;
	int rc;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->ds = ds;
	s->fd = -1;
	s->fault_rng = sim_mix(cfg->fault_seed) | 1;
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s->rng_base = sim_mix((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
			      sim_mix(cfg->fault_seed ^ (uint64_t)getpid());
	}
	pthread_mutex_init(&s->lock, NULL);
	if (cfg->dialect == SIM_SNA) {
		rc = sim_sna_new(&s->cfg, ds, &s->sna);
		if (rc) {
			snprintf(err, SIM_ERRLEN, "out of memory");
			goto fail;
		}
	}
	if (cfg->dialect == SIM_FLOWMON) {
		rc = sim_fm_new(&s->cfg, ds, &s->fm);
		if (rc) {
			snprintf(err, SIM_ERRLEN, rc == -EINVAL ? "the Flowmon login must be "
				 "user:password" : "out of memory");
			goto fail;
		}
	}
	rc = listen_on(cfg->listen, &s->fd, &port, err);
	if (rc)
		goto fail;
	s->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				  MHD_USE_ERROR_LOG,
				  0, NULL, NULL, handle, s,
				  MHD_OPTION_LISTEN_SOCKET, s->fd,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
				  MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, SIM_ERRLEN, "cannot start the HTTP server");
		rc = -EIO;
		goto fail;
	}
	s->fd = -1;	/* the daemon owns and closes it now */
	if (cfg->port_file[0]) {
		rc = write_port_file(cfg->port_file, port, err);
		if (rc)
			goto fail;
	}
	fprintf(stderr, "flowsim: listening on %s (port %u), %d streams, %d days\n",
		cfg->listen, port, ds->sc.nstreams, ds->ndays);
	*out = s;
	return 0;
fail:
	sim_server_stop(s);
	return rc;
}

void sim_server_stop(struct sim_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, 1);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->fd >= 0)
		close(s->fd);
	sim_sna_free(s->sna);
	sim_fm_free(s->fm);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
