/*
 * sna.c - the SNA dialect: Cisco Secure Network Analytics' flow search API.
 *
 * docs/flowsim.md ("The SNA dialect") is the contract; this file follows it
 * line by line.  Sessions are a small table of cookie tokens, each with an
 * XSRF token (which --sna-xsrf-rotate-s replaces as the session ages) and an
 * absolute expiry on the monotonic clock.  Searches are a ring of
 * max_queries slots: the slot number is written into the search id, so a
 * lookup is one comparison, and creating one more search than the ring
 * holds overwrites (drops) the oldest.  A search stores only its parameters
 * and a seed: its records are matched and picked again on every read, with
 * the same seed (the same subset) and a fresh order.
 *
 * One mutex guards the tables, the random generator and the counts; the
 * matching and rendering of records run outside it.
 */
#include "sim.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SNA_SESSIONS 256
#define SNA_BODY_MAX ((size_t)1 << 30)
#define SNA_TENANT0 102

const char *const sim_sna_ep_names[SIM_SNA_NEP] = {
	"/token/v2/authenticate",
	"/token",
	"/sw-reporting/v1/tenants",
	"/sw-reporting/v2/tenants/{tenant}/flows/queries",
	"/sw-reporting/v2/tenants/{tenant}/flows/queries/{id}",
	"/sw-reporting/v2/tenants/{tenant}/flows/queries/{id}/results",
	"/smc-configuration/rest/v1/tenants/{tenant}/tags",
	"/sw-reporting/v1/tenants/{tenant}/internalHosts/tags",
};

struct sna_session {
	char token[200];
	char xsrf[40];
	int64_t born;		/* monotonic ms of the login */
	int64_t epoch;		/* XSRF rotations applied so far */
	int64_t expires;	/* monotonic ms */
	uint64_t seq;		/* login order; 0: a free slot */
};

/* How a search ends once its --sna-query-ms are over. */
enum sna_end { END_COMPLETED, END_FAILED, END_CANCELED };

struct sna_query {
	char id[25];
	int tenant;		/* 0 or 1 */
	struct sim_query q;
	uint64_t limit, seed;
	bool interfaces;	/* the body asked flow.includeInterfaceData */
	int64_t created;	/* monotonic ms */
	enum sna_end end;
	uint64_t seq;		/* 0: a free slot */
};

struct sim_sna {
	const struct sim_config *cfg;
	struct sim_dataset *ds;
	pthread_mutex_t lock;
	uint64_t rng;
	struct sna_session sessions[SNA_SESSIONS];
	uint64_t session_seq;
	struct sna_query *queries;	/* cfg->sna_max_queries slots */
	uint64_t query_seq;
	uint64_t created, failed, canceled, dropped, expired_401;
	uint64_t logins, logouts, xsrf_403;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_sna_new(const struct sim_config *cfg, struct sim_dataset *ds,
		struct sim_sna **out)
{
	struct sim_sna *s = calloc(1, sizeof(*s));
	struct timespec ts;

	if (!s)
		return -ENOMEM;
	s->queries = calloc(cfg->sna_max_queries ? cfg->sna_max_queries : 1,
			    sizeof(*s->queries));
	if (!s->queries) {
		free(s);
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->ds = ds;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->rng = sim_mix((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
			 (uint64_t)getpid() << 48) | 1;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void sim_sna_free(struct sim_sna *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->queries);
	free(s);
}

/* ---- routing -------------------------------------------------------------- */

/* Copy the path segment at *p (up to '/' or the end) into buf and advance;
 * false when it is empty or too long. */
static bool segment(const char **p, char *buf, size_t len)
{
	size_t n = strcspn(*p, "/");

	if (n == 0 || n >= len)
		return false;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p += n;
	return true;
}

static bool starts(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

void sim_sna_route(const char *method, const char *url, struct sim_sna_route *r)
{
	const char *want = "GET", *p;

	memset(r, 0, sizeof(*r));
	r->ep = -1;
	if (strcmp(url, "/token/v2/authenticate") == 0) {
		r->ep = SIM_SNA_LOGIN;
		want = "POST";
	} else if (strcmp(url, "/token") == 0) {
		r->ep = SIM_SNA_LOGOUT;
		want = "DELETE";
	} else if (strcmp(url, "/sw-reporting/v1/tenants") == 0 ||
		   strcmp(url, "/sw-reporting/v1/tenants/") == 0) {
		r->ep = SIM_SNA_TENANTS;
	} else if (starts(url, "/sw-reporting/v1/tenants/", &p)) {
		if (segment(&p, r->tenant, sizeof(r->tenant)) &&
		    starts(p, "/internalHosts/tags", &p) && (*p == '\0' || strcmp(p, "/") == 0))
			r->ep = SIM_SNA_HOST_TAGS;
	} else if (starts(url, "/sw-reporting/v2/tenants/", &p)) {
		if (!segment(&p, r->tenant, sizeof(r->tenant)) ||
		    !starts(p, "/flows/queries", &p))
			return;
		if (*p == '\0') {
			r->ep = SIM_SNA_CREATE;
			want = "POST";
		} else if (*p == '/' && (p++, segment(&p, r->id, sizeof(r->id)))) {
			if (*p == '\0')
				r->ep = SIM_SNA_POLL;
			else if (strcmp(p, "/results") == 0)
				r->ep = SIM_SNA_RESULTS;
		}
	} else if (starts(url, "/smc-configuration/rest/v1/tenants/", &p)) {
		if (!segment(&p, r->tenant, sizeof(r->tenant)) || !starts(p, "/tags", &p))
			return;
		if (*p == '\0' || strcmp(p, "/") == 0)
			r->ep = SIM_SNA_TAGS;
		else if (*p == '/' && (p++, segment(&p, r->id, sizeof(r->id))) && *p == '\0')
			r->ep = SIM_SNA_TAGS;
	}
	r->method_ok = r->ep >= 0 && strcmp(method, want) == 0;
	r->flows = r->ep == SIM_SNA_CREATE || r->ep == SIM_SNA_POLL ||
		   r->ep == SIM_SNA_RESULTS;
}

/* ---- answers -------------------------------------------------------------- */

int sim_sna_error_body(struct sim_buf *b, unsigned status, const char *msg)
{
	const char *code;
	int rc;

	switch (status) {
	case 400: code = "BAD_REQUEST"; break;
	case 401: code = "UNAUTHORIZED"; break;
	case 403: code = "FORBIDDEN"; break;
	case 404: code = "NOT_FOUND"; break;
	case 405: code = "METHOD_NOT_ALLOWED"; break;
	case 406: code = "NOT_ACCEPTABLE"; break;
	case 429: code = "TOO_MANY_REQUESTS"; break;
	case 503: code = "SERVICE_UNAVAILABLE"; break;
	default: code = "INTERNAL_ERROR"; break;
	}
	rc = sim_buf_printf(b, "{\"errors\":[{\"code\":\"%s\",\"message\":", code);
	if (!rc)
		rc = sim_json_string(b, msg);
	return rc ? rc : sim_buf_add(b, "}]}", 3);
}

static int fail(struct sim_sna_answer *a, unsigned status, const char *msg)
{
	a->status = status;
	a->body.len = 0;
	return sim_sna_error_body(&a->body, status, msg);
}

/* ---- sessions ------------------------------------------------------------- */

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url of n bytes, no padding, at o; returns the new end. */
static char *put_b64url(char *o, const unsigned char *in, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		*o++ = b64url[v >> 18 & 63];
		*o++ = b64url[v >> 12 & 63];
		if (i + 1 < n)
			*o++ = b64url[v >> 6 & 63];
		if (i + 2 < n)
			*o++ = b64url[v & 63];
	}
	*o = '\0';
	return o;
}

/* A new XSRF token, a random uuid (36 characters), into xsrf (40 bytes;
 * lock held). */
static void make_xsrf(struct sim_sna *s, char *xsrf)
{
	uint64_t a = sim_rand(&s->rng), b = sim_rand(&s->rng);

	snprintf(xsrf, 40, "%08llx-%04llx-4%03llx-%04llx-%012llx",
		 (unsigned long long)(b >> 32), (unsigned long long)(b >> 16 & 0xffff),
		 (unsigned long long)(b & 0xfff), (unsigned long long)(0x8000 | (a >> 48 & 0x3fff)),
		 (unsigned long long)(a & 0xffffffffffffULL));
}

/* A new JWT-shaped token and an XSRF uuid (lock held). */
static void make_tokens(struct sim_sna *s, char *token, char *xsrf)
{
	static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char sig[32];
	char payload[96];
	uint64_t a = sim_rand(&s->rng);
	int n;

	n = snprintf(payload, sizeof(payload), "{\"sub\":\"flowsim\",\"jti\":\"%016llx\",\"iat\":%lld}",
		     (unsigned long long)a, (long long)time(NULL));
	char *o = put_b64url(token, (const unsigned char *)head, sizeof(head) - 1);
	*o++ = '.';
	o = put_b64url(o, (const unsigned char *)payload, (size_t)n);
	*o++ = '.';
	for (size_t i = 0; i < sizeof(sig); i += 8) {
		uint64_t r = sim_rand(&s->rng);
		memcpy(sig + i, &r, 8);
	}
	put_b64url(o, sig, sizeof(sig));
	make_xsrf(s, xsrf);
}

/* The session of a token (lock held), or NULL. */
static struct sna_session *session_find(struct sim_sna *s, const char *token)
{
	if (!token || !*token)
		return NULL;
	for (int i = 0; i < SNA_SESSIONS; i++)
		if (s->sessions[i].seq && strcmp(s->sessions[i].token, token) == 0)
			return &s->sessions[i];
	return NULL;
}

/* With --sna-xsrf-rotate-s N, a session's XSRF token is replaced every N
 * seconds after its login, and the new value is sent to nobody: a client
 * holding the old one is refused (403) until it logs in again.  Applied
 * lazily, when the session is next used (lock held). */
static void xsrf_rotate(struct sim_sna *s, struct sna_session *ses, int64_t now)
{
	int64_t period = (int64_t)s->cfg->sna_xsrf_rotate_s * 1000, epoch;

	if (period <= 0)
		return;
	epoch = (now - ses->born) / period;
	if (epoch > ses->epoch) {
		make_xsrf(s, ses->xsrf);
		ses->epoch = epoch;
	}
}

/* Whether a request that is not a GET may act on session ses: by default
 * the X-XSRF-TOKEN header and the XSRF-TOKEN cookie of the same request
 * must both be there, be equal, and be the session's token (Spring's
 * cookie-to-header check); --sna-xsrf-header-only compares the header
 * alone with the session's token; --sna-no-xsrf checks nothing. */
static bool xsrf_ok(const struct sim_sna *s, const struct sna_session *ses,
		    const struct sim_sna_req *rq)
{
	if (s->cfg->sna_no_xsrf)
		return true;
	if (!rq->xsrf || strcmp(rq->xsrf, ses->xsrf) != 0)
		return false;
	return s->cfg->sna_xsrf_header_only ||
	       (rq->xsrf_cookie && strcmp(rq->xsrf_cookie, rq->xsrf) == 0);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Value of 'key' in an application/x-www-form-urlencoded body, decoded
 * into out; false when absent or too long. */
static bool form_value(const char *body, size_t len, const char *key, char *out,
		       size_t outlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
			size_t n = 0;
			for (size_t j = i + klen + 1; j < end; j++) {
				char c = body[j];
				int hi, lo;
				if (c == '+') {
					c = ' ';
				} else if (c == '%' && j + 2 < end && (hi = hexval(body[j + 1])) >= 0 &&
					   (lo = hexval(body[j + 2])) >= 0) {
					c = (char)(hi << 4 | lo);
					j += 2;
				}
				if (n + 1 >= outlen)
					return false;
				out[n++] = c;
			}
			out[n] = '\0';
			return true;
		}
		i = end + 1;
	}
	return false;
}

static int login(struct sim_sna *s, const struct sim_sna_req *rq, struct sim_sna_answer *a)
{
	char user[256], pass[256], token[200], xsrf[40];
	struct sna_session *slot = NULL;

	if (!form_value(rq->body, rq->body_len, "username", user, sizeof(user)) ||
	    !form_value(rq->body, rq->body_len, "password", pass, sizeof(pass)) ||
	    strcmp(user, s->cfg->sna_user) != 0 || strcmp(pass, s->cfg->sna_password) != 0)
		return fail(a, 401, "wrong or missing username or password");
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < SNA_SESSIONS; i++)
		if (!slot || s->sessions[i].seq < slot->seq)
			slot = &s->sessions[i];	/* a free slot, else the oldest */
	make_tokens(s, token, xsrf);
	snprintf(slot->token, sizeof(slot->token), "%s", token);
	snprintf(slot->xsrf, sizeof(slot->xsrf), "%s", xsrf);
	slot->born = mono_ms();
	slot->epoch = 0;
	slot->expires = slot->born + (int64_t)s->cfg->sna_session_s * 1000;
	slot->seq = ++s->session_seq;
	s->logins++;
	pthread_mutex_unlock(&s->lock);
	snprintf(a->cookie[a->ncookies++], sizeof(a->cookie[0]),
		 "stealthwatch.jwt=%s; Path=/; HttpOnly", token);
	if (!s->cfg->sna_no_xsrf)
		snprintf(a->cookie[a->ncookies++], sizeof(a->cookie[0]), "XSRF-TOKEN=%s; Path=/", xsrf);
	a->type = "text/plain";
	return 0;
}

int sim_sna_expire_sessions(struct sim_sna *s)
{
	int64_t now = mono_ms();
	int n = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < SNA_SESSIONS; i++) {
		if (s->sessions[i].seq && s->sessions[i].expires > now) {
			s->sessions[i].expires = now;
			n++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- tenants and tags ----------------------------------------------------- */

/* Index (0, 1) of a tenant path segment, or -1. */
static int tenant_index(const struct sim_sna *s, const char *text)
{
	for (int i = 0; i < s->cfg->sna_tenants; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%d", SNA_TENANT0 + i);
		if (strcmp(text, want) == 0)
			return i;
	}
	return -1;
}

/* The length of s[0..n) without blanks at either end; *s moves past the
 * leading ones. */
static size_t trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		n--;
	}
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/* The q of a media range from its parameters p[0..n) (what follows the
 * range's first ';'): 1 when there is none, -1 when it does not parse or
 * lies outside 0 to 1. */
static double range_q(const char *p, size_t n)
{
	double q = 1;

	while (n) {
		size_t k = 0, len;
		const char *par = p;
		while (k < n && p[k] != ';')
			k++;
		len = trim(&par, k);
		if (len >= 1 && (par[0] == 'q' || par[0] == 'Q')) {
			const char *v = par + 1;
			size_t vl = trim(&v, len - 1);
			if (vl && *v == '=') {
				char buf[16], *end;
				v++;
				vl = trim(&v, vl - 1);
				if (!vl || vl >= sizeof(buf))
					return -1;
				memcpy(buf, v, vl);
				buf[vl] = '\0';
				q = strtod(buf, &end);
				if (*end || !(q >= 0 && q <= 1))
					return -1;
			}
		}
		p += k;
		n -= k;
		if (n) {
			p++;
			n--;
		}
	}
	return q;
}

/* How specifically the media range r[0..n) (no parameters) names 'type':
 * 2 the type itself, 1 its major type with a star, 0 any type, -1 not at
 * all or not a media range. */
static int range_match(const char *r, size_t n, const char *type)
{
	const char *slash = strchr(type, '/'), *sl;
	size_t major = slash ? (size_t)(slash - type) : strlen(type), a, b;

	if (n == 1 && r[0] == '*')
		return 0;	/* "*" alone, as some old clients send it */
	sl = memchr(r, '/', n);
	if (!sl || sl == r || sl == r + n - 1)
		return -1;
	a = (size_t)(sl - r);
	b = n - a - 1;
	if (a == 1 && r[0] == '*')
		return b == 1 && sl[1] == '*' ? 0 : -1;
	if (a != major || strncasecmp(r, type, a) != 0)
		return -1;
	if (b == 1 && sl[1] == '*')
		return 1;
	return slash && b == strlen(slash + 1) && strncasecmp(sl + 1, slash + 1, b) == 0 ? 2 : -1;
}

bool sim_sna_accepts(const char *accept, const char *type)
{
	double best_q = 0;
	int best = -1;
	bool any = false;

	if (!accept)
		return true;
	for (const char *p = accept; *p;) {
		size_t n = strcspn(p, ","), len, rl = 0;
		const char *r = p, *mr;
		double q;
		int spec;

		p += n + (p[n] == ',');
		len = trim(&r, n);
		if (!len)
			continue;
		any = true;
		while (rl < len && r[rl] != ';')
			rl++;
		mr = r;
		spec = range_match(mr, trim(&mr, rl), type);
		q = rl < len ? range_q(r + rl + 1, len - rl - 1) : 1;
		if (spec < 0 || q < 0)
			continue;
		if (spec > best || (spec == best && q > best_q)) {
			best = spec;
			best_q = q;
		}
	}
	return !any || (best >= 0 && best_q > 0);
}

/* GET /sw-reporting/v1/tenants: the JSON list, labelled text/plain (the only
 * type a Manager offers there, as recorded: docs/flowsim.md). */
static int tenants_body(const struct sim_sna *s, struct sim_sna_answer *a)
{
	int rc = sim_buf_printf(&a->body, "{\"data\":[{\"id\":%d,\"displayName\":\"Flowsim Domain\"}",
				SNA_TENANT0);

	if (!rc && s->cfg->sna_tenants > 1)
		rc = sim_buf_printf(&a->body, ",{\"id\":%d,\"displayName\":\"Empty Lab \\\"B\\\"\"}",
				    SNA_TENANT0 + 1);
	a->type = "text/plain; charset=UTF-8";
	return rc ? rc : sim_buf_add(&a->body, "]}", 2);
}

static const struct sim_hostgroup *group_of(uint32_t id)
{
	for (size_t i = 0; i < sim_nhostgroups; i++)
		if (sim_hostgroups[i].id == id)
			return &sim_hostgroups[i];
	return NULL;
}

/* Append a quoted range to a JSON list unless it is there already. */
static int add_range(struct sim_buf *b, size_t list_start, const char *text)
{
	char quoted[80];

	snprintf(quoted, sizeof(quoted), "\"%s\"", text);
	if (b->len > list_start && strstr(b->p + list_start, quoted))
		return 0;
	return sim_buf_printf(b, "%s%s", b->len > list_start ? "," : "", quoted);
}

static void prefix_text(const struct sim_prefix *p, bool whole, char *buf, size_t len)
{
	char a[48];

	sim_addr_format(&p->addr, a, sizeof(a));
	if (whole)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%d", a, p->v4 ? p->len - 96 : p->len);
}

/* The scenario's addresses in group g: the subjects of the streams that
 * list it; for 20 and 21 (the outside groups the generator gives peers),
 * the peer ranges of the host streams and of the events. */
static int tag_ranges(const struct sim_sna *s, uint32_t g, struct sim_buf *b)
{
	const struct sim_scenario *sc = &s->ds->sc;
	size_t start;
	char text[64];
	int rc = sim_buf_add(b, "[", 1);

	start = b->len;
	for (int i = 0; !rc && i < sc->nstreams; i++) {
		const struct sim_stream *st = &sc->streams[i];
		bool event = st->kind == SIM_SCAN || st->kind == SIM_FLOOD;
		for (int k = 0; !rc && k < st->ngroups; k++) {
			if (st->groups[k] == g) {
				prefix_text(&st->subject, true, text, sizeof(text));
				rc = add_range(b, start, text);
			}
		}
		if (!rc && ((g == 20 && !event) || (g == 21 && event))) {
			prefix_text(&st->peers, st->kind == SIM_SCAN, text, sizeof(text));
			rc = add_range(b, start, text);
		}
	}
	return rc ? rc : sim_buf_add(b, "]", 1);
}

/* {"data":[{"id":N,"<key>":name[,"<key2>":name]}, ...]} of every host
 * group; key2 NULL: one name.  -ENOMEM or -E2BIG. */
static int tag_list(struct sim_buf *b, const char *key, const char *key2)
{
	int rc = sim_buf_add(b, "{\"data\":[", 9);

	for (size_t i = 0; !rc && i < sim_nhostgroups; i++) {
		rc = sim_buf_printf(b, "%s{\"id\":%u,\"%s\":", i ? "," : "",
				    sim_hostgroups[i].id, key);
		if (!rc)
			rc = sim_json_string(b, sim_hostgroups[i].name);
		if (!rc && key2)
			rc = sim_buf_printf(b, ",\"%s\":", key2);
		if (!rc && key2)
			rc = sim_json_string(b, sim_hostgroups[i].name);
		if (!rc)
			rc = sim_buf_add(b, "}", 1);
	}
	return rc ? rc : sim_buf_add(b, "]}", 2);
}

/* The tag list (items named by "name"; "displayName" too with
 * --sna-tags-display-name) or one tag's detail (404 for an unknown id). */
static int tags_body(const struct sim_sna *s, int tenant, const char *id,
		     struct sim_sna_answer *a)
{
	struct sim_buf *b = &a->body;
	const struct sim_hostgroup *g, *root;
	char *end;
	unsigned long v;
	int rc;

	if (!*id)
		return tag_list(b, "name", s->cfg->sna_tags_display_name ? "displayName" : NULL);
	v = strtoul(id, &end, 10);
	g = id[0] >= '0' && id[0] <= '9' && !*end ? group_of((uint32_t)v) : NULL;
	if (!g)
		return fail(a, 404, "no such tag");
	for (root = g; root->parent && group_of(root->parent); root = group_of(root->parent))
		;
	rc = sim_buf_printf(b, "{\"data\":{\"id\":%u,\"name\":", g->id);
	if (!rc)
		rc = sim_json_string(b, g->name);
	if (!rc)
		rc = sim_buf_printf(b, ",\"parentId\":%u,\"domainId\":%d,\"location\":\"%s\",\"ranges\":",
				    g->parent, SNA_TENANT0 + tenant,
				    root->id == 20 ? "OUTSIDE" : "INSIDE");
	if (!rc)
		rc = tag_ranges(s, g->id, b);
	return rc ? rc : sim_buf_add(b, "}}", 2);
}

/* ---- searches ------------------------------------------------------------- */

/* Strict "YYYY-MM-DDTHH:MM:SSZ" to seconds; -EINVAL otherwise. */
static int parse_sna_time(const char *text, int64_t *out)
{
	struct tm tm;
	char back[32];
	time_t t;

	if (strlen(text) != 20)
		return -EINVAL;
	for (int i = 0; i < 20; i++) {
		char want = "dddd-dd-ddTdd:dd:ddZ"[i];
		if (want == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != want)
			return -EINVAL;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t < 0 || !gmtime_r(&t, &tm) ||
	    !strftime(back, sizeof(back), "%Y-%m-%dT%H:%M:%SZ", &tm) || strcmp(back, text))
		return -EINVAL;	/* out of range fields (month 13, Feb 30) */
	*out = (int64_t)t;
	return 0;
}

#define MSGLEN 128

/* The addresses or prefixes of obj.ipAddresses.includes: the first into
 * p, up to max_more others into more (*nmore of them; more NULL: one only).
 * Returns NULL (p set, or *has false when there is none and none is
 * required) or the message for the 400, written into msg (MSGLEN bytes). */
static const char *parse_includes(const cJSON *obj, const char *side, bool required,
				  struct sim_prefix *p, bool *has, struct sim_prefix *more,
				  int *nmore, int max_more, char *msg)
{
	const cJSON *ips, *inc, *first;
	int k;

	*has = false;
	if (!obj) {
		snprintf(msg, MSGLEN, "%s is required", side);
		return required ? msg : NULL;
	}
	if (!cJSON_IsObject(obj)) {
		snprintf(msg, MSGLEN, "%s must be an object", side);
		return msg;
	}
	ips = cJSON_GetObjectItemCaseSensitive(obj, "ipAddresses");
	inc = cJSON_IsObject(ips) ? cJSON_GetObjectItemCaseSensitive(ips, "includes") : NULL;
	if (ips && !cJSON_IsObject(ips)) {
		snprintf(msg, MSGLEN, "%s.ipAddresses must be an object", side);
		return msg;
	}
	if (inc && !cJSON_IsArray(inc)) {
		snprintf(msg, MSGLEN, "%s.ipAddresses.includes must be an array", side);
		return msg;
	}
	if (!inc || cJSON_GetArraySize(inc) == 0) {
		snprintf(msg, MSGLEN, "%s.ipAddresses.includes needs one address", side);
		return required ? msg : NULL;
	}
	first = cJSON_GetArrayItem(inc, 0);
	k = cJSON_GetArraySize(inc);
	if (k > 1 + (more ? max_more : 0)) {
		snprintf(msg, MSGLEN, "%s.ipAddresses.includes: flowsim takes %d addresses or "
			 "prefixes at the most", side, 1 + (more ? max_more : 0));
		return msg;
	}
	if (!cJSON_IsString(first) || sim_prefix_parse(first->valuestring, p)) {
		snprintf(msg, MSGLEN, "%s.ipAddresses.includes: not an address or prefix", side);
		return msg;
	}
	for (int i = 1; i < k; i++) {
		const cJSON *e = cJSON_GetArrayItem(inc, i);
		if (!cJSON_IsString(e) || sim_prefix_parse(e->valuestring, &more[i - 1])) {
			snprintf(msg, MSGLEN, "%s.ipAddresses.includes: not an address or prefix",
				 side);
			return msg;
		}
	}
	if (nmore)
		*nmore = k - 1;
	*has = true;
	return NULL;
}

/* Read a create body into q and *limit; NULL or the message for the 400
 * (a literal, or written into msgbuf, MSGLEN bytes). */
static const char *parse_search(const struct sim_sna *s, const char *body, size_t len,
				struct sim_query *q, uint64_t *limit, bool *interfaces, char *msgbuf)
{
	cJSON *root = cJSON_ParseWithLength(body ? body : "", len);
	const cJSON *st, *en, *rl;
	const char *msg = NULL;
	int64_t a, b;
	bool has;

	memset(q, 0, sizeof(*q));
	*limit = s->cfg->max_records;
	if (!cJSON_IsObject(root)) {
		msg = "the body is not a JSON object";
		goto out;
	}
	st = cJSON_GetObjectItemCaseSensitive(root, "startDateTime");
	en = cJSON_GetObjectItemCaseSensitive(root, "endDateTime");
	rl = cJSON_GetObjectItemCaseSensitive(root, "recordLimit");
	if (!cJSON_IsString(st) || parse_sna_time(st->valuestring, &a)) {
		msg = "startDateTime: want YYYY-MM-DDTHH:MM:SSZ";
		goto out;
	}
	if (!cJSON_IsString(en) || parse_sna_time(en->valuestring, &b)) {
		msg = "endDateTime: want YYYY-MM-DDTHH:MM:SSZ";
		goto out;
	}
	if (a >= b) {
		msg = "startDateTime must be before endDateTime";
		goto out;
	}
	if ((b - a) * 1000 > SIM_MAX_RANGE_MS) {
		msg = "the window is longer than 31 days";
		goto out;
	}
	if (rl) {
		double v = cJSON_IsNumber(rl) ? rl->valuedouble : 0;
		if (!cJSON_IsNumber(rl) || v < 1 || v != (double)(int64_t)v) {
			msg = "recordLimit must be an integer of at least 1";
			goto out;
		}
		if (v < (double)*limit)
			*limit = (uint64_t)v;
	}
	msg = parse_includes(cJSON_GetObjectItemCaseSensitive(root, "subject"), "subject", true,
			     &q->ip, &has, NULL, NULL, 0, msgbuf);
	if (!msg)
		msg = parse_includes(cJSON_GetObjectItemCaseSensitive(root, "peer"), "peer", false,
				     &q->peer, &q->has_peer, q->more_peers, &q->nmore,
				     SIM_PEERS_MAX - 1, msgbuf);
	if (msg)
		goto out;
	/* "flow": {"includeInterfaceData": true} adds the sides' interfaces
	 * (docs/sna.md: recorded answers) */
	const cJSON *flow = cJSON_GetObjectItemCaseSensitive(root, "flow");
	*interfaces = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(flow, "includeInterfaceData"));
	q->start = a * 1000;
	q->end = b * 1000;
	q->match = s->cfg->match;
	q->visible_before = sim_now_ms(s->cfg);
	q->export_delay_ms = (int64_t)s->cfg->export_delay_s * 1000;
out:
	cJSON_Delete(root);
	return msg;
}

int sim_sna_parse_statuses(const char *list, struct sim_config *cfg)
{
	static const char *const reserved[] = {"IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"};
	char names[SIM_SNA_STATUS_MAX][32];
	int n = 0;

	for (const char *p = list;; p++) {
		size_t k = strcspn(p, ",");
		if (k == 0 || k >= sizeof(names[0]) || n == SIM_SNA_STATUS_MAX ||
		    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") < k)
			return -EINVAL;
		memcpy(names[n], p, k);
		names[n][k] = '\0';
		for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
			if (strcmp(names[n], reserved[i]) == 0)
				return -EINVAL;
		n++;
		p += k;
		if (!*p)
			break;
	}
	memcpy(cfg->sna_status_extra, names, sizeof(names));
	cfg->sna_nstatus_extra = n;
	return 0;
}

enum qstate { Q_RUNNING, Q_COMPLETED, Q_FAILED, Q_CANCELED };

/* The state of a search at 'now', its percentComplete, and the status name
 * it shows.  While running, the --sna-query-ms are cut into equal phases:
 * one for each --sna-status-extra name, in order, then IN_PROGRESS. */
static enum qstate query_state(const struct sim_sna *s, const struct sna_query *q,
			       int64_t now, int *pct, const char **name)
{
	static const char *const final[] = {"COMPLETED", "FAILED", "CANCELED"};
	static const enum qstate states[] = {Q_COMPLETED, Q_FAILED, Q_CANCELED};
	int64_t delay = s->cfg->sna_query_ms, el = now - q->created;
	int nx = s->cfg->sna_nstatus_extra;

	if (el < 0)
		el = 0;	/* made after 'now' was read, by another thread */
	if (el < delay) {
		int64_t p = 125 * el / delay, phase = el * (nx + 1) / delay;
		*pct = p > 100 ? 100 : (int)p;
		*name = phase < nx ? s->cfg->sna_status_extra[phase] : "IN_PROGRESS";
		return Q_RUNNING;
	}
	*pct = 100;
	*name = final[q->end];
	return states[q->end];
}

static bool query_expired(const struct sim_sna *s, const struct sna_query *q, int64_t now)
{
	return now >= q->created + s->cfg->sna_query_ms + (int64_t)s->cfg->sna_query_ttl_s * 1000;
}

static int query_body(const struct sna_query *q, const char *status, int pct, struct sim_buf *b)
{
	return sim_buf_printf(b, "{\"data\":{\"query\":{\"id\":\"%s\",\"domainId\":\"%d\","
			      "\"status\":\"%s\",\"percentComplete\":%d}}}",
			      q->id, SNA_TENANT0 + q->tenant, status, pct);
}

static int create(struct sim_sna *s, int tenant, const struct sim_sna_req *rq,
		  struct sim_sna_answer *a)
{
	uint32_t max = s->cfg->sna_max_queries;
	struct sna_query nq, *slot;
	char msgbuf[MSGLEN];
	const char *msg;
	int64_t now = mono_ms();
	uint64_t seq;
	double u;

	memset(&nq, 0, sizeof(nq));
	msg = parse_search(s, rq->body, rq->body_len, &nq.q, &nq.limit, &nq.interfaces, msgbuf);
	if (msg)
		return fail(a, 400, msg);
	nq.tenant = tenant;
	nq.created = now;
	pthread_mutex_lock(&s->lock);
	seq = ++s->query_seq;
	slot = &s->queries[(seq - 1) % max];
	if (slot->seq && !query_expired(s, slot, now))
		s->dropped++;
	nq.seq = seq;
	nq.seed = sim_rand(&s->rng);
	u = (double)(sim_rand(&s->rng) >> 11) * (1.0 / 9007199254740992.0);
	nq.end = u < s->cfg->sna_fail_query ? END_FAILED :
		 u < s->cfg->sna_fail_query + s->cfg->sna_cancel_query ? END_CANCELED :
		 END_COMPLETED;
	char id[48];
	snprintf(id, sizeof(id), "%08llx%06llx%010llx",
		 (unsigned long long)(time(NULL) & 0xffffffff),
		 (unsigned long long)((seq - 1) % max),
		 (unsigned long long)(sim_rand(&s->rng) & 0xffffffffffULL));
	memcpy(nq.id, id, 24);	/* each part is exactly its width */
	nq.id[24] = '\0';
	*slot = nq;
	s->created++;
	s->failed += nq.end == END_FAILED;
	s->canceled += nq.end == END_CANCELED;
	pthread_mutex_unlock(&s->lock);
	a->status = 201;
	return query_body(&nq, s->cfg->sna_nstatus_extra ? s->cfg->sna_status_extra[0] :
			  "IN_PROGRESS", 0, &a->body);
}

/* A copy of the live search 'id' of 'tenant' (lock held); false if none. */
static bool query_find(struct sim_sna *s, const char *id, int tenant, int64_t now,
		       struct sna_query *out)
{
	char hex[7];
	unsigned long slot;
	char *end;

	if (strlen(id) != 24 || strspn(id, "0123456789abcdef") != 24)
		return false;
	memcpy(hex, id + 8, 6);
	hex[6] = '\0';
	slot = strtoul(hex, &end, 16);
	if (slot >= s->cfg->sna_max_queries)
		return false;
	const struct sna_query *q = &s->queries[slot];
	if (!q->seq || strcmp(q->id, id) || q->tenant != tenant || query_expired(s, q, now))
		return false;
	*out = *q;
	return true;
}

static int render_records(struct sim_sna *s, const struct sna_query *q,
			  const struct sim_ref *refs, size_t n, struct sim_buf *b)
{
	int rc = sim_buf_add(b, "{\"data\":{\"flows\":[", 18);

	for (size_t i = 0; !rc && i < n; i++) {
		const struct sim_chunk *c = sim_dataset_chunk(s->ds, refs[i].stream, refs[i].day);
		struct sim_flow f;
		if (!c)
			return -ENOMEM;
		sim_flow_make(s->ds, refs[i].stream, refs[i].day, refs[i].pos,
			      c->start[refs[i].pos], &f);
		if (i)
			rc = sim_buf_add(b, ",", 1);
		if (!rc)
			rc = sim_sna_json_flow(b, &f, sim_sna_flow_id(s->ds, refs[i].stream,
								       refs[i].day, refs[i].pos),
					       &q->q, SNA_TENANT0 + q->tenant, q->interfaces);
	}
	return rc ? rc : sim_buf_add(b, "]}}", 3);
}

/* GET .../results: the search's subset (the same on every read), a half of
 * it while running, nothing when failed or canceled; a new order every
 * time.  With the foreign fault (not for a failed or canceled search or the
 * empty tenant) flows the search does not select are mixed in
 * (sim_query_foreign).  -ENOMEM or -E2BIG on failure. */
static int results(struct sim_sna *s, const struct sna_query *q, enum qstate st,
		   const struct sim_sna_req *rq, struct sim_sna_answer *a)
{
	struct sim_matches m;
	struct sim_ref *refs = NULL;
	size_t n = 0;
	uint64_t r;
	int rc;

	if (st == Q_FAILED || st == Q_CANCELED || q->tenant != 0)
		return render_records(s, q, NULL, 0, &a->body);
	rc = sim_query_collect(s->ds, &q->q, &m);
	if (rc)
		return rc;
	rc = sim_query_pick(&m, q->limit, q->seed, &refs, &n);
	sim_matches_free(&m);
	if (rc)
		return rc;
	if (st == Q_RUNNING)
		n /= 2;
	pthread_mutex_lock(&s->lock);
	r = sim_rand(&s->rng) | 1;
	pthread_mutex_unlock(&s->lock);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)sim_rand_below(&r, i);
		struct sim_ref t = refs[i - 1];
		refs[i - 1] = refs[j];
		refs[j] = t;
	}
	rc = 0;
	if (rq->foreign)
		rc = sim_query_foreign(s->ds, &q->q, q->limit, rq->foreign_seed, &refs, &n);
	if (!rc)
		rc = render_records(s, q, refs, n, &a->body);
	free(refs);
	return rc;
}

int sim_sna_serve(struct sim_sna *s, const struct sim_sna_req *rq,
		  struct sim_sna_answer *a)
{
	const struct sim_sna_route *r = rq->route;
	struct sna_session *ses;
	struct sna_query q;
	int64_t now = mono_ms();
	bool expired = false, xsrf_good = true, found;
	const char *status;
	enum qstate st;
	int tenant, pct;

	memset(a, 0, sizeof(*a));
	a->body.max = SNA_BODY_MAX;
	a->status = 200;
	a->type = "application/json";
	if (r->ep == SIM_SNA_LOGIN)
		return login(s, rq, a);

	pthread_mutex_lock(&s->lock);
	ses = session_find(s, rq->jwt);
	if (ses) {
		expired = now >= ses->expires;
		if (expired) {
			s->expired_401++;
		} else {
			xsrf_rotate(s, ses, now);
			xsrf_good = strcmp(rq->method, "GET") == 0 || xsrf_ok(s, ses, rq);
			s->xsrf_403 += !xsrf_good;
			if (xsrf_good && r->ep == SIM_SNA_LOGOUT) {
				memset(ses, 0, sizeof(*ses));
				s->logouts++;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!ses)
		return fail(a, 401, "missing or invalid session token: log in first");
	if (expired) {
		static const char html[] =
			"<!DOCTYPE html><html><head><title>Secure Network Analytics</title></head>"
			"<body><form method=\"post\" action=\"/token/v2/authenticate\">"
			"<p>Your session has expired. Please log in.</p></form></body></html>";
		a->status = 401;
		a->type = "text/html";
		return sim_buf_add(&a->body, html, sizeof(html) - 1);
	}
	if (!xsrf_good)
		return fail(a, 403, "missing or wrong XSRF token: send the XSRF-TOKEN cookie of "
			    "the login back, and its value as the X-XSRF-TOKEN header");

	switch (r->ep) {
	case SIM_SNA_LOGOUT:
		/* as recorded from a Manager: 204, both cookies cleared */
		a->status = 204;
		a->type = NULL;
		snprintf(a->cookie[a->ncookies++], sizeof(a->cookie[0]),
			 "stealthwatch.jwt=\"\"; Version=1; Path=/; HttpOnly");
		if (!s->cfg->sna_no_xsrf)
			snprintf(a->cookie[a->ncookies++], sizeof(a->cookie[0]),
				 "XSRF-TOKEN=\"\"; Version=1; Path=/; "
				 "Expires=Thu, 01-Jan-1970 00:00:00 GMT; Max-Age=0");
		return 0;
	case SIM_SNA_TENANTS:
		if (!s->cfg->sna_any_accept && !sim_sna_accepts(rq->accept, "text/plain"))
			return fail(a, 406, "not acceptable: this answer is text/plain, which the "
				    "Accept header does not admit");
		return tenants_body(s, a);
	default:
		break;
	}
	tenant = tenant_index(s, r->tenant);
	if (tenant < 0)
		return fail(a, 404, "no such tenant");
	switch (r->ep) {
	case SIM_SNA_TAGS:
		return tags_body(s, tenant, r->id, a);
	case SIM_SNA_HOST_TAGS:
		return tag_list(&a->body, "displayName", NULL);
	case SIM_SNA_CREATE:
		return create(s, tenant, rq, a);
	default:
		break;
	}
	pthread_mutex_lock(&s->lock);
	found = query_find(s, r->id, tenant, now, &q);
	pthread_mutex_unlock(&s->lock);
	if (!found)
		return fail(a, 404, "no such search (unknown, expired or dropped)");
	st = query_state(s, &q, now, &pct, &status);
	if (r->ep == SIM_SNA_POLL)
		return query_body(&q, status, pct, &a->body);
	return results(s, &q, st, rq, a);
}

/* ---- counters ------------------------------------------------------------- */

int sim_sna_counters(struct sim_sna *s, struct sim_buf *b)
{
	int64_t now = mono_ms();
	int live = 0, kept = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < SNA_SESSIONS; i++)
		live += s->sessions[i].seq && s->sessions[i].expires > now;
	for (uint32_t i = 0; i < s->cfg->sna_max_queries; i++)
		kept += s->queries[i].seq && !query_expired(s, &s->queries[i], now);
	rc = sim_buf_printf(b, "{\"sessions\":%d,\"queries\":%d,\"created\":%llu,\"failed\":%llu,"
			    "\"canceled\":%llu,\"dropped\":%llu,\"expired_401\":%llu,"
			    "\"logins\":%llu,\"logouts\":%llu,\"xsrf_403\":%llu}",
			    live, kept, (unsigned long long)s->created,
			    (unsigned long long)s->failed, (unsigned long long)s->canceled,
			    (unsigned long long)s->dropped, (unsigned long long)s->expired_401,
			    (unsigned long long)s->logins, (unsigned long long)s->logouts,
			    (unsigned long long)s->xsrf_403);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void sim_sna_counters_reset(struct sim_sna *s)
{
	pthread_mutex_lock(&s->lock);
	s->created = s->failed = s->canceled = s->dropped = s->expired_401 = 0;
	s->logins = s->logouts = s->xsrf_403 = 0;
	pthread_mutex_unlock(&s->lock);
}

/* ---- records -------------------------------------------------------------- */

uint64_t sim_sna_flow_id(const struct sim_dataset *ds, int stream, int day, uint64_t pos)
{
	const uint64_t mask = (1ULL << 47) - 1;
	uint64_t abs_day = (uint64_t)(ds->first_day_ms / SIM_DAY_MS + day) & 0x7fff;
	/* stream < 256 (8 bits), day (15), position < 2^24 (a chunk holds at
	 * most 11,000,000 flows): distinct flows, distinct keys */
	uint64_t x = (uint64_t)stream << 39 | abs_day << 24 | (pos & 0xffffff);

	/* a bijection on 47 bits: xor, odd multiplies and xorshifts */
	x ^= sim_mix(ds->seed) & mask;
	x = x * 0x5851f42d4c957f2dULL & mask;
	x ^= x >> 23;
	x = x * 0x2545f4914f6cdd1dULL & mask;
	x ^= x >> 19;
	return x + 1;
}

static const char *proto_name(uint8_t p, char *buf)
{
	switch (p) {
	case 1: return "ICMP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 47: return "GRE";
	case 58: return "IPV6-ICMP";
	default:
		*sim_put_u64(buf, p) = '\0';
		return buf;
	}
}

/* Writers for the record: each appends at o and returns the new end.  The
 * caller reserved room for a whole record. */
static char *put_lit(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

static char *put_i64(char *o, int64_t v)
{
	if (v < 0) {
		*o++ = '-';
		return sim_put_u64(o, (uint64_t)-(v + 1) + 1);
	}
	return sim_put_u64(o, (uint64_t)v);
}

/* A key (with its punctuation) and a number. */
static char *put_key(char *o, const char *key, int64_t v)
{
	return put_i64(put_lit(o, key), v);
}

static char *put_2(char *o, unsigned v)
{
	*o++ = (char)('0' + v / 10 % 10);
	*o++ = (char)('0' + v % 10);
	return o;
}

/* "YYYY-MM-DDTHH:MM:SS.000+0000" (quoted) of ms rounded down to the second;
 * the civil date from the day count (Hinnant's days_from_civil inverse),
 * without gmtime_r and its locks. */
static char *put_time(char *o, int64_t ms)
{
	int64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
	int64_t z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

	*o++ = '"';
	o = put_2(o, (unsigned)(y / 100));
	o = put_2(o, (unsigned)(y % 100));
	*o++ = '-';
	o = put_2(o, m);
	*o++ = '-';
	o = put_2(o, d);
	*o++ = 'T';
	o = put_2(o, (unsigned)(sod / 3600));
	*o++ = ':';
	o = put_2(o, (unsigned)(sod / 60 % 60));
	*o++ = ':';
	o = put_2(o, (unsigned)(sod % 60));
	return put_lit(o, ".000+0000\"");
}

/* n / secs with six decimals, rounded to the nearest millionth. */
static char *put_rate(char *o, uint64_t n, int64_t secs)
{
	unsigned __int128 q = ((unsigned __int128)n * 1000000 + (uint64_t)secs / 2) /
			      (uint64_t)secs;
	unsigned frac = (unsigned)(q % 1000000);

	o = sim_put_u64(o, (uint64_t)(q / 1000000));
	*o++ = '.';
	for (unsigned div = 100000; div; div /= 10)
		*o++ = (char)('0' + frac / div % 10);
	return o;
}

/* The client side's "interfaces" when asked: the flow's input and output
 * interface at its exporter (192.0.2.<exporter id>, as /api/v1/exporters
 * names it), in the shape of a recorded answer (docs/sna.md); on
 * the client side only: which side a Manager puts them on is a guess. */
static char *put_interfaces(char *o, const struct sim_flow *f)
{
	if ((f->omit & SIM_OMIT_IF) || f->in_if == 0 || f->out_if == 0)
		return o;	/* none: the key is absent, as recorded */
	o = put_lit(o, ",\"interfaces\":[");
	for (int k = 0; k < 2; k++) {
		uint32_t id = k ? f->out_if : f->in_if;
		o = put_key(o, k ? ",{\"exporterIpAddress\":\"192.0.2." : "{\"exporterIpAddress\":\"192.0.2.",
			    f->exporter);
		o = put_key(o, "\",\"interfaceId\":", id);
		o = put_key(o, ",\"interfaceDescription\":\"192.0.2.", f->exporter);
		o = put_key(o, " (ifIndex-", id);
		o = put_lit(o, k ? ")\",\"dscpValue\":-1,\"dscpDescription\":\"Other\","
				   "\"direction\":\"OUTBOUND\",\"exporterType\":\"exporter\"}"
				 : ")\",\"dscpValue\":0,\"dscpDescription\":\"best effort (0)\","
				   "\"minTtl\":64,\"maxTtl\":64,\"direction\":\"INBOUND\","
				   "\"exporterType\":\"exporter\"}");
	}
	return put_lit(o, "]");
}

/* One side (subject or peer) of a record at o. */
static char *put_side(char *o, const struct sim_flow *f, bool source, const char *proto,
		      bool interfaces)
{
	const uint32_t *g = source ? f->src_groups : f->dst_groups;
	int ng = source ? f->nsrc_groups : f->ndst_groups;
	bool tcp = f->proto == 6 && source, ports = f->proto == 6 || f->proto == 17;
	unsigned fl = f->tcp_flags;

	o = put_lit(o, "{\"ipAddress\":\"");
	sim_addr_format_style(source ? &f->src : &f->dst, f->addr_style, o, 64);
	o += strlen(o);
	o = put_lit(o, "\",\"hostGroupIds\":[");
	for (int i = 0; i < ng; i++) {
		if (i)
			*o++ = ',';
		o = sim_put_u64(o, g[i]);
	}
	o = put_key(o, "],\"portProtocol\":{\"port\":", ports ? (source ? f->sport : f->dport) : 0);
	o = put_lit(put_lit(o, ",\"protocol\":\""), proto);
	o = put_lit(o, source ? "\",\"serviceId\":0},\"orientation\":\"client\"" :
				"\",\"serviceId\":0},\"orientation\":\"server\"");
	o = put_key(o, ",\"bytes\":", source ? (int64_t)f->bytes : 0);
	o = put_key(o, ",\"packets\":", source ? (int64_t)f->pkts : 0);
	o = put_key(o, ",\"finPackets\":", tcp && (fl & 1));
	o = put_key(o, ",\"rstPackets\":", tcp && (fl & 4));
	o = put_key(o, ",\"synPackets\":", tcp && (fl & 2) && !(fl & 16));
	o = put_key(o, ",\"synAckPackets\":", tcp && (fl & 2) && (fl & 16));
	if (interfaces && source)
		o = put_interfaces(o, f);
	return put_lit(o, ",\"natPort\":-1,\"trustSecId\":-1}");
}

int sim_sna_json_flow(struct sim_buf *b, const struct sim_flow *f, uint64_t sna_id,
		      const struct sim_query *q, int tenant, bool interfaces)
{
	static const char cipher[] =
		",\"cipherSuite\":{\"authAlgorithm\":\"N/A\",\"encAlgorithm\":\"N/A\","
		"\"id\":\"N/A\",\"keyExchange\":\"N/A\",\"keyLength\":\"N/A\","
		"\"messageAuthCode\":\"N/A\",\"name\":\"N/A\",\"protocol\":\"N/A\"}";
	char pbuf[8];
	const char *proto = proto_name(f->proto, pbuf);
	bool subject_src = q->has_peer ?
		sim_prefix_contains(&q->ip, &f->src) && sim_query_peer_contains(q, &f->dst) :
		sim_prefix_contains(&q->ip, &f->src);
	int64_t first = f->start / 1000 * 1000, last = f->end / 1000 * 1000;
	int64_t dur = last - first, secs = dur >= 1000 ? dur / 1000 : 1;
	bool ports = f->proto == 6 || f->proto == 17;
	int rc = sim_buf_reserve(b, 2048);

	if (rc)
		return rc;
	char *o = b->p + b->len;
	o = put_key(o, "{\"id\":", (int64_t)sna_id);
	o = put_key(o, ",\"tenantId\":", tenant);
	o = put_key(o, ",\"flowCollectorId\":", f->exporter);
	o = put_lit(put_lit(o, ",\"protocol\":\""), proto);
	o = put_key(o, "\",\"applicationId\":", f->omit & SIM_OMIT_APP ? -1 : (int64_t)f->app);
	o = put_key(o, ",\"serviceId\":", ports && f->dport < 1024 ? 1000 + f->dport : -1);
	o = put_lit(o, ",\"vlanId\":-1,\"mplsLabel\":-1,\"tlsVersion\":\"NONE\","
		       "\"statistics\":{\"firstActiveTime\":");
	o = put_time(put_lit(put_time(o, first), ",\"lastActiveTime\":"), last);
	o = put_key(o, ",\"activeDuration\":", dur);
	o = put_key(o, ",\"byteCount\":", (int64_t)f->bytes);
	o = put_key(o, ",\"packetCount\":", (int64_t)f->pkts);
	o = put_rate(put_lit(o, ",\"byteRate\":"), f->bytes, secs);
	o = put_rate(put_lit(o, ",\"packetRate\":"), f->pkts, secs);
	o = put_lit(o, ",\"numCombinedFlowRecords\":1,\"rttAverage\":-1,\"srtAverage\":-1,"
		       "\"tcpRetransmissions\":-1},\"subject\":");
	o = put_side(o, f, subject_src, proto, interfaces);
	o = put_lit(o, ",\"peer\":");
	o = put_side(o, f, !subject_src, proto, interfaces);
	if (f->extra)
		o = put_lit(o, cipher);
	*o++ = '}';
	*o = '\0';
	b->len = (size_t)(o - b->p);
	return 0;
}
