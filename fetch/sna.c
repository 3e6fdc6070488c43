/*
 * sna.c - the driver for Cisco Secure Network Analytics (formerly
 * Stealthwatch): its Manager's flow search API, as docs/flowsim.md's "SNA
 * dialect" section describes it (flowsim serves the same dialect).
 *
 * Sessions: a form login sets the cookie stealthwatch.jwt and, from 7.3.2,
 * XSRF-TOKEN, whose value goes back as X-XSRF-TOKEN on every request that
 * is not a GET.  A session lasts 20 minutes; the driver logs in again two
 * minutes before that, and whenever a request is refused with 401 (the
 * engine asks, giving the generation of the session the request carried,
 * so that many refused requests cause one login).
 *
 * A window is an exchange of three kinds of request: create the search
 * (POST, 201), poll it (GET) until its status is COMPLETED (never trusting
 * percentComplete), read its results (GET).  A search that ends FAILED, or
 * that the Manager forgot (404), is asked again from the start.
 *
 * Granularity: whole seconds, the finest the search takes; records' times
 * come to the second.  Ids are "<flowCollectorId>:<id>" (an id is unique
 * per collector).  What a record has no field for stays unknown (-1):
 * interfaces, AS numbers, ICMP type and code, sampling; TCP flags are those
 * the per-side counters show (SYN, ACK with SYN, FIN, RST).
 */
#include "fetch_i.h"
#include "mtx.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SNA_SESSION_MS (20 * 60 * 1000)
#define SNA_RENEW_MS (2 * 60 * 1000)	/* log in again this long before expiry */
#define SNA_POLL_FIRST_MS 50
#define SNA_POLL_MAX_MS 2000
#define SNA_SEARCH_DEADLINE_MS (15 * 60 * 1000)
#define SNA_LOGOUT_MS 5000

enum { SNA_CREATE = 0, SNA_POLL, SNA_READ };

struct driver {
	char base[2048];
	char user[256], pass[512];
	char tenant[24];		/* the chosen tenant's id */
	bool tenant_given;
	uint32_t limit;
	struct mtx lock;		/* guards the session: the fields below (fetch_i.h,
					 * LOCKING) */
	/* Every cookie the login set, as a Cookie header's value, and the
	 * XSRF-TOKEN cookie's value for the X-XSRF-TOKEN header: the Manager
	 * compares the header with the cookie of the same request. */
	char cookies[HTTP_COOKIE_MAX], xsrf[HTTP_XSRF_MAX];
	uint64_t gen;			/* 0: never logged in */
	int64_t login_ms;		/* monotonic */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "user:password" (the token file's first line, or $FLOWFS_TOKEN). */
static int sna_open(struct driver **out, const struct fetch_opts *o, char *err)
{
	struct driver *d = calloc(1, sizeof(*d));
	const char *colon = o->token ? strchr(o->token, ':') : NULL;
	size_t n;

	if (!d)
		return -ENOMEM;
	if (!colon || colon == o->token || (size_t)(colon - o->token) >= sizeof(d->user) ||
	    strlen(colon + 1) >= sizeof(d->pass)) {
		snprintf(err, FETCH_ERRLEN, "the SNA driver needs the Manager's credentials as "
			 "user:password in the token file (or $FLOWFS_TOKEN)");
		free(d);
		return -EINVAL;
	}
	memcpy(d->user, o->token, (size_t)(colon - o->token));
	strcpy(d->pass, colon + 1);
	n = strlen(o->url);
	if (n == 0 || n >= sizeof(d->base) - 128) {
		snprintf(err, FETCH_ERRLEN, "the Manager's URL is empty or too long");
		goto fail;
	}
	memcpy(d->base, o->url, n + 1);
	while (n > 0 && d->base[n - 1] == '/')
		d->base[--n] = '\0';
	if (o->tenant) {
		char *end;
		long t = strtol(o->tenant, &end, 10);
		if (end == o->tenant || *end || t < 0 || t > 2147483647L) {
			snprintf(err, FETCH_ERRLEN, "tenant '%.32s' is not a tenant id (a number)",
				 o->tenant);
			goto fail;
		}
		snprintf(d->tenant, sizeof(d->tenant), "%ld", t);
		d->tenant_given = true;
	}
	d->limit = o->max_records ? o->max_records : 10000;
	mtx_init(&d->lock);
	*out = d;
	return 0;
fail:
	explicit_bzero(d, sizeof(*d));
	free(d);
	return -EINVAL;
}

static void sna_close(struct driver *d)
{
	mtx_destroy(&d->lock);
	explicit_bzero(d, sizeof(*d));
	free(d);
}

/* Does a line in rest (Set-Cookie lines) set the cookie named
 * name[0..nl)? */
static bool later_has(const char *rest, const char *name, size_t nl)
{
	for (const char *p = rest; *p;) {
		const char *e = strchr(p, '\n');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
			return true;
		p += k + (e ? 1 : 0);
	}
	return false;
}

/* The value of cookie 'name' among the answer's Set-Cookie lines (the
 * last one, as in cookie_jar), when it fits in len. */
static bool cookie_value(const char *lines, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = lines; *p;) {
		const char *e = strchr(p, '\n');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		if (k > nl && strncmp(p, name, nl) == 0 && p[nl] == '=' && k - nl - 1 < len &&
		    k - nl - 1 > 0 && !later_has(p + k, name, nl)) {
			memcpy(out, p + nl + 1, k - nl - 1);
			out[k - nl - 1] = '\0';
			return true;
		}
		p += k + (e ? 1 : 0);
	}
	return false;
}

/* The Set-Cookie lines ("name=value", one a line) as one Cookie header
 * value ("a=1; b=2"), a later cookie of a name replacing an earlier one
 * as a browser's jar would.  false when it does not fit in len. */
static bool cookie_jar(const char *lines, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (const char *p = lines; *p;) {
		const char *line = p, *e = strchr(p, '\n');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		const char *eq = memchr(line, '=', k);
		p += k + (e ? 1 : 0);
		if (!eq || eq == line || later_has(p, line, (size_t)(eq - line)))
			continue;	/* no name, or set again below: the later counts */
		if (used + k + 3 > len)
			return false;
		used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "; " : "",
					 (int)k, line);
	}
	return true;
}

/*
 * DELETE /token: end a session on the Manager (every public client does;
 * sessions left open accumulate there).  Best effort: the outcome only
 * goes to err.  Caller holds d->lock or owns the session alone.
 */
static int sna_logout_session(struct driver *d, struct http *h, const char *cookies,
			      const char *xsrf, char *err)
{
	struct http_ask a;
	struct http_resp r;
	int rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.url, sizeof(a.url), "%s/token", d->base);
	a.method = "DELETE";
	a.timeout_ms = SNA_LOGOUT_MS;	/* an unmount never waits long for it */
	snprintf(a.cookie, sizeof(a.cookie), "%s", cookies);
	snprintf(a.xsrf, sizeof(a.xsrf), "%s", xsrf);
	rc = http_get_retry(h, &a, 0, &r, err);
	if (!rc)
		http_resp_free(&r);
	return rc;
}

/* Log in; the caller holds d->lock.  A session it replaces is logged
 * out.  0 or -errno with the cause. */
static int sna_login(struct driver *d, struct http *h, char *err)
{
	char u[800], pw[1600], form[2600];
	struct http_ask a;
	struct http_resp r;
	int rc;

	mtx_assert_held(&d->lock);
	memset(&a, 0, sizeof(a));
	fetch_form_encode(d->user, u, sizeof(u));
	fetch_form_encode(d->pass, pw, sizeof(pw));
	snprintf(form, sizeof(form), "username=%s&password=%s", u, pw);
	snprintf(a.url, sizeof(a.url), "%s/token/v2/authenticate", d->base);
	a.method = "POST";
	a.body = form;
	a.content_type = "application/x-www-form-urlencoded";
	rc = http_get_retry(h, &a, 2, &r, err);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(form, sizeof(form));
	if (rc)
		return rc;
	if (r.set_cookie_cut || !cookie_jar(r.set_cookie, a.cookie, sizeof(a.cookie))) {
		snprintf(err, FETCH_ERRLEN, "the Manager's session cookies are longer than %d bytes, "
			 "more than flowfs keeps", HTTP_COOKIE_MAX);
		rc = -E2BIG;
	} else if (!later_has(r.set_cookie, "stealthwatch.jwt", 16)) {
		snprintf(err, FETCH_ERRLEN, "the Manager took the login but set no session cookie "
			 "(stealthwatch.jwt): is this an SNA Manager?");
		rc = -EPROTO;
	} else if (!cookie_value(r.set_cookie, "XSRF-TOKEN", a.xsrf, sizeof(a.xsrf)) &&
		   later_has(r.set_cookie, "XSRF-TOKEN", 10)) {
		snprintf(err, FETCH_ERRLEN, "the Manager's XSRF token is empty or longer than %d bytes",
			 HTTP_XSRF_MAX - 1);
		rc = -E2BIG;
	}
	http_resp_free(&r);
	if (rc)
		return rc;
	if (d->gen) {
		char lerr[FETCH_ERRLEN];
		sna_logout_session(d, h, d->cookies, d->xsrf, lerr);
	}
	memcpy(d->cookies, a.cookie, sizeof(d->cookies));
	memcpy(d->xsrf, a.xsrf, sizeof(d->xsrf));
	explicit_bzero(a.cookie, sizeof(a.cookie));
	d->gen++;
	d->login_ms = mono_ms();
	return 0;
}

static int sna_session(struct driver *d, struct http *h, uint64_t stale_gen, char *err)
{
	int rc = 0;

	mtx_lock(&d->lock);
	bool expiring = d->gen && mono_ms() - d->login_ms > SNA_SESSION_MS - SNA_RENEW_MS;
	if (!d->gen || expiring || (stale_gen && stale_gen == d->gen))
		rc = sna_login(d, h, err);
	mtx_unlock(&d->lock);
	return rc;
}

/* The end of the driver's use: log the session out (best effort). */
static void sna_logout(struct driver *d, struct http *h)
{
	char err[FETCH_ERRLEN];

	mtx_lock(&d->lock);
	if (d->gen)
		sna_logout_session(d, h, d->cookies, d->xsrf, err);
	d->gen = 0;
	explicit_bzero(d->cookies, sizeof(d->cookies));
	explicit_bzero(d->xsrf, sizeof(d->xsrf));
	mtx_unlock(&d->lock);
}

static void sna_sign(struct driver *d, struct http_ask *a)
{
	mtx_lock(&d->lock);
	memcpy(a->cookie, d->cookies, sizeof(a->cookie));
	if (a->method && strcmp(a->method, "GET") != 0)
		snprintf(a->xsrf, sizeof(a->xsrf), "%s", d->xsrf);
	a->auth_gen = d->gen;
	mtx_unlock(&d->lock);
}

static int sna_info_ask(struct driver *d, struct http_ask *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s/sw-reporting/v1/tenants", d->base);
	return 0;
}

/* The tenants list (served as JSON, sometimes labelled text/plain): pick
 * the tenant asked for, or the only one. */
static int sna_info_decode(struct driver *d, const char *body, size_t len,
			   struct fetch_info *info, char *err)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL, *it;
	char list[400] = "";
	size_t used = 0, count = 0;
	bool found = false;
	int rc = -EPROTO;

	memset(info, 0, sizeof(*info));
	if (!cJSON_IsArray(arr)) {
		snprintf(err, FETCH_ERRLEN, "the Manager's tenant list is not the expected JSON: "
			 "is this an SNA Manager?");
		goto out;
	}
	cJSON_ArrayForEach(it, arr) {
		int64_t id;
		char name[64] = "";
		if (fetch_json_int(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, 2147483647.0, &id))
			continue;
		fetch_json_str(it, "displayName", name, sizeof(name));
		for (char *c = name; *c; c++)	/* the list goes into a one-line message */
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				*c = '?';
		count++;
		if (used < sizeof(list) - 1)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%lld (%.40s)",
						 used ? ", " : "", (long long)id, name);
		if (used >= sizeof(list))
			used = sizeof(list) - 1;
		if (d->tenant_given ? strtoll(d->tenant, NULL, 10) == id : count == 1) {
			if (!d->tenant_given)
				snprintf(d->tenant, sizeof(d->tenant), "%lld", (long long)id);
			found = true;
		}
	}
	if (d->tenant_given && !found) {
		snprintf(err, FETCH_ERRLEN, "the Manager has no tenant %s (it has: %s)", d->tenant,
			 count ? list : "none");
		rc = -ENOENT;
		goto out;
	}
	if (!d->tenant_given && count != 1) {
		snprintf(err, FETCH_ERRLEN, count ? "the Manager has %zu tenants (%s): choose one "
			 "with -o tenant=ID (flowfetch: --tenant ID)" : "the Manager has no tenant%zu%s",
			 count, count ? list : "");
		rc = -EINVAL;
		goto out;
	}
	snprintf(info->product, sizeof(info->product), "Cisco Secure Network Analytics");
	snprintf(info->dialect, sizeof(info->dialect), "sna");
	info->max_records = d->limit;
	/* no public source states the Manager's cap: the option's value is
	 * a guess unless the user gave it (see cap_ambiguous in engine.c) */
	info->cap_assumed = true;
	/* no public endpoint states how long a Manager keeps flows (its
	 * collectors' disks decide, often months): unknown, so no past day is
	 * refused (issue 11) */
	info->retention_days = 0;
	info->export_delay_s = 300;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* Host groups are the only names the API gives (tags); applications,
 * services and collectors stay ids. */
static int sna_lookup_ask(struct driver *d, enum cache_table t, struct http_ask *a)
{
	if (t != CACHE_GROUPS)
		return 0;
	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s/smc-configuration/rest/v1/tenants/%s/tags/", d->base,
		 d->tenant);
	return 1;
}

static int sna_lookup_decode(struct driver *d, enum cache_table t, const char *body,
			     size_t len, struct cache_lookup **rows, size_t *n, char *err)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL, *it;
	struct fetch_cuts cuts;
	size_t cap = 0;
	int rc = 0;

	(void)d;
	(void)t;
	*rows = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, FETCH_ERRLEN, "the Manager's tags: not the expected JSON");
		cJSON_Delete(root);
		return -EBADMSG;
	}
	rc = fetch_json_cuts(body, len, root, &cuts);
	if (rc == 0 && fetch_json_cut_node(&cuts, arr)) {
		snprintf(err, FETCH_ERRLEN, "the Manager's tags: a key holds a NUL");
		rc = -EBADMSG;
	}
	cJSON_ArrayForEach(it, arr) {
		struct cache_lookup r;
		if (rc)
			break;
		memset(&r, 0, sizeof(r));
		/* the tags endpoint's items carry "name"; "displayName" is the
		 * internalHosts/tags endpoint's (docs/sna.md); a tag
		 * holding a string a NUL cuts is skipped, as one without a name */
		if (fetch_json_cut(&cuts, it) ||
		    fetch_json_int(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, 4294967295.0,
				   &r.key) ||
		    (!fetch_json_str(it, "name", r.name, sizeof(r.name)) &&
		     !fetch_json_str(it, "displayName", r.name, sizeof(r.name))))
			continue;
		rc = fetch_lookup_add(rows, n, &cap, &r);
	}
	fetch_cuts_free(&cuts);
	cJSON_Delete(root);
	if (rc) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

/* ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (whole seconds, rounded
 * down; up when 'up' and not whole). */
static void sna_time(int64_t ms, bool up, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;

	if (up && ms % 1000 != 0)
		t++;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void searches_url(const struct driver *d, struct http_ask *a, const char *id,
			 const char *tail)
{
	snprintf(a->url, sizeof(a->url), "%s/sw-reporting/v2/tenants/%s/flows/queries%s%s%s",
		 d->base, d->tenant, id ? "/" : "", id ? id : "", tail);
}

static int sna_window_first(struct driver *d, const struct cache_query *q,
			    const struct plan_req *r, uint32_t limit, struct driver_win *w,
			    struct http_ask *a)
{
	char from[32], to[32], subject[64], peers[PLAN_PEER_SET_MAX * 48];
	size_t np = r->npeer_set > 1 ? r->npeer_set : 1, len = 0;
	int n;

	memset(a, 0, sizeof(*a));
	sna_time(r->start, false, from, sizeof(from));
	sna_time(r->end, true, to, sizeof(to));
	cache_prefix_format(&q->subject, subject, sizeof(subject));
	peers[0] = '\0';
	for (size_t i = 0; r->has_peer && i < np && i < PLAN_PEER_SET_MAX; i++) {
		char one[64];
		cache_prefix_format(r->npeer_set > 1 ? &r->peer_set[i] : &r->peer, one, sizeof(one));
		len += (size_t)snprintf(peers + len, sizeof(peers) - len, "%s\"%s\"", i ? "," : "", one);
	}
	n = snprintf(w->body, sizeof(w->body),
		     "{\"startDateTime\":\"%s\",\"endDateTime\":\"%s\",\"recordLimit\":%u,"
		     "\"subject\":{\"ipAddresses\":{\"includes\":[\"%s\"]}}%s%s%s,"
		     "\"flow\":{\"includeInterfaceData\":true}}",
		     from, to, limit, subject,
		     r->has_peer ? ",\"peer\":{\"ipAddresses\":{\"includes\":[" : "", peers,
		     r->has_peer ? "]}}" : "");
	if (n < 0 || (size_t)n >= sizeof(w->body))
		return -E2BIG;	/* cannot happen with PLAN_PEER_SET_MAX prefixes */
	w->stage = SNA_CREATE;
	w->started_ms = mono_ms();
	searches_url(d, a, NULL, "");
	a->method = "POST";
	a->body = w->body;
	a->content_type = "application/json";
	return 0;
}

/* A search's id and status from a create or poll answer: 0, -EBADMSG (also
 * when a NUL cuts a string of the query: "COMPLETED\u0000..." is none),
 * -ENOMEM. */
static int search_state(const char *body, size_t len, char *id, size_t idlen, char *status,
			size_t stlen)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *data = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL;
	const cJSON *q = data ? cJSON_GetObjectItemCaseSensitive(data, "query") : NULL;
	struct fetch_cuts cuts;
	int rc = fetch_json_cuts(body, len, root, &cuts);

	if (rc == 0) {
		bool cut = fetch_json_cut_node(&cuts, data) || fetch_json_cut(&cuts, q);
		rc = -EBADMSG;
		if (q && !cut && fetch_json_str(q, "id", id, idlen) &&
		    fetch_json_str(q, "status", status, stlen)) {
			rc = 0;
			for (const char *c = id; *c && rc == 0; c++)
				if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
				      (*c >= 'A' && *c <= 'Z') || *c == '-'))
					rc = -EBADMSG;
			if (!id[0])
				rc = -EBADMSG;
		}
	}
	fetch_cuts_free(&cuts);
	cJSON_Delete(root);
	return rc;
}

/* "2020-07-16T12:08:47.000+0000" (or with Z, or +00:00) to ms: 0, -EINVAL.
 * Not cache_when_parse, on purpose: this reads the Manager's wire format
 * (an offset without a colon, any number of fraction digits, a leap
 * second's 60), never a user's text; what users type (folder names,
 * flowfetch's --from and --to) is read by cache_when_parse alone. */
static int sna_parse_time(const char *s, int64_t *out)
{
	int y, mo, da, h, mi, se, ms = 0, n = 0, off = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &da, &h, &mi, &se, &n) != 6)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		int k = 0;
		s++;
		while (*s >= '0' && *s <= '9') {
			if (k < 3)
				ms = ms * 10 + (*s - '0'), k++;
			s++;
		}
		while (k++ < 3)
			ms *= 10;
	}
	if (*s == 'Z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		/* exactly +HHMM or +HH:MM */
		int sign = *s == '-' ? -1 : 1;
		const char *o = s + 1;
		char d[4];
		int k = 0;
		for (; k < 4 && ((*o >= '0' && *o <= '9') || (k == 2 && *o == ':')); o++)
			if (*o != ':')
				d[k++] = *o;
		if (k != 4 || (o[-1] == ':'))
			return -EINVAL;
		off = sign * (((d[0] - '0') * 10 + d[1] - '0') * 60 + (d[2] - '0') * 10 + d[3] - '0');
		s = o;
	}
	if (*s || y < 1970 || mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 ||
	    se > 60)
		return -EINVAL;
	/* days since 1970-01-01 of a proleptic Gregorian date (March-based
	 * years, so the leap day ends a year) */
	int ya = mo <= 2 ? y - 1 : y;
	int era = ya / 400, yoe = ya - era * 400;
	int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + da - 1;
	int64_t days = (int64_t)era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*out = ((days * 24 + h) * 60 + mi - off) * 60000 + (int64_t)se * 1000 + ms;
	return 0;
}

static int32_t proto_number(const cJSON *p)
{
	static const struct {
		const char *name;
		int32_t num;
	} names[] = {{"ICMP", 1}, {"TCP", 6}, {"UDP", 17}, {"GRE", 47}, {"IPV6-ICMP", 58},
		     {"ICMPV6", 58}, {"ESP", 50}, {"AH", 51}, {"SCTP", 132}, {"IGMP", 2}};

	if (cJSON_IsNumber(p))
		return p->valuedouble >= 0 && p->valuedouble <= 255 ? (int32_t)p->valuedouble : -1;
	if (!cJSON_IsString(p))
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(p->valuestring, names[i].name) == 0)
			return names[i].num;
	char *end;
	long v = strtol(p->valuestring, &end, 10);
	return end != p->valuestring && !*end && v >= 0 && v <= 255 ? (int32_t)v : -1;
}

/* An optional number of an object: -1 when missing, null or negative. */
static int64_t opt_num(const cJSON *o, const char *key, double hi)
{
	int64_t v;
	return fetch_json_int(cJSON_GetObjectItemCaseSensitive(o, key), 0, hi, &v) ? -1 : v;
}

/* ---- extra: what a record says that has no column ---------------------------- */

/*
 * flow_rec.extra of a record: a compact JSON object of the fields that have
 * no column, written by hand (it runs for every flow: cJSON's printer would
 * allocate a tree), members only for fields present and not -1:
 *
 *   {"serviceId":1443,"vlanId":..,"mplsLabel":..,"tlsVersion":"TLS 1.2",
 *    "combined":..,"rtt":..,"srt":..,"retransmissions":..,
 *    "client":{"bytes":52000,"packets":40,"syn":0,"synAck":1,"fin":1,"rst":0,
 *              "natPort":..,"trustSecId":..},"server":{...}}
 *
 * "client" is the side flows.csv shows as the source, "server" the
 * destination; a side whose own orientation says something else carries
 * it as "orientation".  Strings are escaped (non-ASCII bytes become '?':
 * a collector's bytes need not be UTF-8).  Members are kept by usefulness
 * while the text fits: the sides' bytes and packets, then the service, the
 * TLS version and an odd orientation, the TCP counters, the timing, and
 * last VLAN, MPLS, NAT, TrustSec and combined records; the text is always
 * a whole JSON object.
 */
#define SNA_XM_MAX 26	/* every key of the three tables below */
#define SNA_XM_TEXT 64		/* "key":value, longest kept */
#define SNA_X_PRIOS 5

/* A text the answers use for "no value" ("tlsVersion": "NONE"): not
 * meaning, so not kept in extra (issue 11). */
static bool sna_no_value(const char *v)
{
	static const char *const none[] = {"", "NONE", "N/A", "NA", "UNKNOWN", "NULL", "-"};

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (strcasecmp(v, none[i]) == 0)
			return true;
	return false;
}

enum sna_xkind { SNA_XK_NUM, SNA_XK_REAL, SNA_XK_STR, SNA_XK_ORIENT };

/* A field of the Manager's record, its key in extra (and its length), and
 * its rank. */
struct sna_xkey {
	const char *sna, *key;
	uint8_t keylen, prio, kind;
};
#define SNA_XKEY(sna, key, prio, kind) {sna, key, sizeof(key) - 1, prio, kind}

static const struct sna_xkey sna_x_record[] = {
	SNA_XKEY("serviceId", "serviceId", 1, SNA_XK_NUM),
	SNA_XKEY("vlanId", "vlanId", 4, SNA_XK_NUM),
	SNA_XKEY("mplsLabel", "mplsLabel", 4, SNA_XK_NUM),
	SNA_XKEY("tlsVersion", "tlsVersion", 1, SNA_XK_STR),
};
static const struct sna_xkey sna_x_stats[] = {
	SNA_XKEY("numCombinedFlowRecords", "combined", 4, SNA_XK_NUM),
	SNA_XKEY("rttAverage", "rtt", 3, SNA_XK_REAL),
	SNA_XKEY("srtAverage", "srt", 3, SNA_XK_REAL),
	SNA_XKEY("tcpRetransmissions", "retransmissions", 3, SNA_XK_NUM),
};
static const struct sna_xkey sna_x_side[] = {
	SNA_XKEY("bytes", "bytes", 0, SNA_XK_NUM),
	SNA_XKEY("packets", "packets", 0, SNA_XK_NUM),
	SNA_XKEY("synPackets", "syn", 2, SNA_XK_NUM),
	SNA_XKEY("synAckPackets", "synAck", 2, SNA_XK_NUM),
	SNA_XKEY("finPackets", "fin", 2, SNA_XK_NUM),
	SNA_XKEY("rstPackets", "rst", 2, SNA_XK_NUM),
	SNA_XKEY("natPort", "natPort", 4, SNA_XK_NUM),
	SNA_XKEY("trustSecId", "trustSecId", 4, SNA_XK_NUM),
	SNA_XKEY("orientation", "orientation", 1, SNA_XK_ORIENT),
};
#define SNA_XKEYS(t) (sizeof(t) / sizeof((t)[0]))
#define SNA_XKEYS_MAX SNA_XKEYS(sna_x_side)
_Static_assert(SNA_XKEYS(sna_x_record) <= SNA_XKEYS_MAX &&
		       SNA_XKEYS(sna_x_stats) <= SNA_XKEYS_MAX &&
		       SNA_XKEYS(sna_x_record) + SNA_XKEYS(sna_x_stats) + 2 * SNA_XKEYS_MAX <=
			       SNA_XM_MAX,
	       "every member has a slot");

/* One member: obj 0 is the top level, 1 the client side, 2 the server side. */
struct sna_xm {
	uint8_t obj, prio, len;
	char text[SNA_XM_TEXT];
};

struct sna_x {
	struct sna_xm m[SNA_XM_MAX];
	unsigned n;
};

/* Decimal text of v at out; returns the length. */
static size_t sna_x_u64(uint64_t v, char *out)
{
	char tmp[20];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	len = n;
	while (n)
		*out++ = tmp[--n];
	return len;
}

/* The JSON string of s (quotes included) at out, at most room bytes;
 * returns the length, 0 when it does not fit. */
static size_t sna_x_string(const char *s, char *out, size_t room)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (room < 2)
		return 0;
	out[n++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			if (n + 2 > room - 1)
				return 0;
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (n + 6 > room - 1)
				return 0;
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[c >> 4];
			out[n + 5] = hex[c & 15];
			n += 6;
		} else {
			if (n + 1 > room - 1)
				return 0;
			out[n++] = c < 0x80 ? (char)c : '?';
		}
	}
	out[n++] = '"';
	return n;
}

/*
 * The member for key k of value it, into x (nothing when absent, null,
 * negative, not of k's kind, or too long).  side_key: for an orientation,
 * the name of its side ("client"), which is then not repeated.
 */
static void sna_x_add(struct sna_x *x, uint8_t obj, const struct sna_xkey *k, const cJSON *it,
		      const char *side_key)
{
	struct sna_xm *m;
	size_t kl = k->keylen, vl = 0, room = SNA_XM_TEXT - kl - 3;
	int64_t num;
	char *v;

	if (!it || x->n == SNA_XM_MAX)
		return;
	m = &x->m[x->n];
	v = m->text + kl + 3;
	if (fetch_json_int(it, 0, FETCH_EXACT_MAX, &num) == 0 &&
	    (k->kind == SNA_XK_NUM || k->kind == SNA_XK_REAL)) {
		vl = sna_x_u64((uint64_t)num, v);
	} else if (k->kind == SNA_XK_REAL && cJSON_IsNumber(it) && it->valuedouble >= 0 &&
		   isfinite(it->valuedouble)) {
		int w = snprintf(v, room, "%.15g", it->valuedouble);
		vl = w > 0 && (size_t)w < room ? (size_t)w : 0;
	} else if ((k->kind == SNA_XK_STR || k->kind == SNA_XK_ORIENT) && cJSON_IsString(it) &&
		   !sna_no_value(it->valuestring) &&
		   !(k->kind == SNA_XK_ORIENT && strcmp(it->valuestring, side_key) == 0)) {
		vl = sna_x_string(it->valuestring, v, room);
	}
	if (!vl)
		return;
	m->text[0] = '"';
	memcpy(m->text + 1, k->key, kl);
	m->text[kl + 1] = '"';
	m->text[kl + 2] = ':';
	m->len = (uint8_t)(kl + 3 + vl);
	m->obj = obj;
	m->prio = k->prio;
	x->n++;
}

/* The members of object o that table keys names, in the table's order
 * (the first of duplicate names, as cJSON_GetObjectItem would find). */
static void sna_x_object(struct sna_x *x, uint8_t obj, const cJSON *o,
			 const struct sna_xkey *keys, size_t nkeys, const char *side_key)
{
	const cJSON *found[SNA_XKEYS_MAX] = {0}, *it;

	if (!cJSON_IsObject(o))
		return;
	cJSON_ArrayForEach(it, o) {
		if (!it->string)
			continue;
		for (size_t i = 0; i < nkeys; i++)
			if (it->string[0] == keys[i].sna[0] && !found[i] &&
			    strcmp(it->string, keys[i].sna) == 0) {
				found[i] = it;
				break;
			}
	}
	for (size_t i = 0; i < nkeys; i++)
		sna_x_add(x, obj, &keys[i], found[i], side_key);
}

/*
 * Choose the members, most useful first, while the object fits in len
 * bytes with its NUL; write it ("" when no member).  The choice counts
 * every byte (braces, commas, the sides' "client":{}), so the text is never
 * cut.
 */
static void sna_x_write(const struct sna_x *x, char *out, size_t len)
{
	static const char *const side_open[3] = {"", "\"client\":{", "\"server\":{"};
	const size_t open_len = 10;	/* of both sides' */
	bool keep[SNA_XM_MAX] = {false};
	unsigned in[3] = {0}, top = 0;
	size_t total = 2, n = 0;

	for (unsigned p = 0; p < SNA_X_PRIOS; p++) {
		for (unsigned i = 0; i < x->n; i++) {
			const struct sna_xm *m = &x->m[i];
			size_t add = m->len;
			if (m->prio != p)
				continue;
			if (m->obj == 0 || in[m->obj] == 0)
				add += (top ? 1 : 0) + (m->obj ? open_len + 1 : 0);
			else
				add += 1;
			if (total + add >= len)
				continue;
			keep[i] = true;
			total += add;
			if (m->obj == 0 || in[m->obj] == 0)
				top++;
			in[m->obj]++;
		}
	}
	if (top == 0) {
		out[0] = '\0';
		return;
	}
	out[n++] = '{';
	for (uint8_t obj = 0; obj < 3; obj++) {
		bool first = true;
		if (obj && in[obj]) {
			if (n > 1)
				out[n++] = ',';
			memcpy(out + n, side_open[obj], open_len);
			n += open_len;
		}
		for (unsigned i = 0; i < x->n; i++) {
			if (!keep[i] || x->m[i].obj != obj)
				continue;
			if (!first)
				out[n++] = ',';
			memcpy(out + n, x->m[i].text, x->m[i].len);
			n += x->m[i].len;
			first = false;
		}
		if (obj && in[obj])
			out[n++] = '}';
	}
	out[n++] = '}';
	out[n] = '\0';
	assert(n == total);
}

/* Did either side count a packet of this kind (a TCP flag)? */
static bool either_side(const cJSON *src, const cJSON *dst, const char *key)
{
	return opt_num(src, key, FETCH_EXACT_MAX) > 0 || opt_num(dst, key, FETCH_EXACT_MAX) > 0;
}

/* extra of record o whose sides are src (the client) and dst. */
static void sna_extra(const cJSON *o, const cJSON *st, const cJSON *src, const cJSON *dst,
		      char *out, size_t len)
{
	struct sna_x x;

	x.n = 0;
	sna_x_object(&x, 0, o, sna_x_record, SNA_XKEYS(sna_x_record), NULL);
	sna_x_object(&x, 0, st, sna_x_stats, SNA_XKEYS(sna_x_stats), NULL);
	sna_x_object(&x, 1, src, sna_x_side, SNA_XKEYS_MAX, "client");
	sna_x_object(&x, 2, dst, sna_x_side, SNA_XKEYS_MAX, "server");
	sna_x_write(&x, out, len);
}

/* One SNA record into f (all of it, or the sample's part: start and
 * addresses).  -EINVAL with the cause in why. */
/*
 * The ifIndex of the first interface crossed in direction dir ("INBOUND",
 * "OUTBOUND"), the client's side first: with "includeInterfaceData" a
 * side carries "interfaces": [{"interfaceId", "direction",
 * "exporterIpAddress", ...}] (recorded answers, docs/sna.md); -1
 * when no side says.  Which side's interface is the flow's is a guess
 * (README).
 */
static int64_t side_interface(const cJSON *client, const cJSON *server, const char *dir)
{
	const cJSON *sides[2] = {client, server}, *it;

	for (int k = 0; k < 2; k++) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(sides[k], "interfaces");
		if (!cJSON_IsArray(arr))
			continue;
		cJSON_ArrayForEach(it, arr) {
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "direction");
			int64_t id;
			if (cJSON_IsString(d) && strcasecmp(d->valuestring, dir) == 0 &&
			    fetch_json_int(cJSON_GetObjectItemCaseSensitive(it, "interfaceId"), 0,
					   4294967295.0, &id) == 0)
				return id;
		}
	}
	return -1;
}

static int sna_decode_record(const cJSON *o, struct flow_rec *f, bool sample, char *why,
			     size_t len)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "statistics");
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(o, "subject");
	const cJSON *peer = cJSON_GetObjectItemCaseSensitive(o, "peer");
	const cJSON *first = st ? cJSON_GetObjectItemCaseSensitive(st, "firstActiveTime") : NULL;
	const cJSON *last = st ? cJSON_GetObjectItemCaseSensitive(st, "lastActiveTime") : NULL;
	const cJSON *orient = sub ? cJSON_GetObjectItemCaseSensitive(sub, "orientation") : NULL;
	int64_t id, fc;

	memset(f, 0, sizeof(*f));
	if (!cJSON_IsObject(o) || !cJSON_IsObject(st) || !cJSON_IsObject(sub) ||
	    !cJSON_IsObject(peer)) {
		snprintf(why, len, "a record without statistics, subject or peer");
		return -EINVAL;
	}
	if (fetch_json_int(cJSON_GetObjectItemCaseSensitive(o, "id"), 0, FETCH_EXACT_MAX, &id) ||
	    fetch_json_int(cJSON_GetObjectItemCaseSensitive(o, "flowCollectorId"), 0,
			   4294967295.0, &fc)) {
		snprintf(why, len, "a record without a valid id or flowCollectorId");
		return -EINVAL;
	}
	snprintf(f->id, sizeof(f->id), "%lld:%lld", (long long)fc, (long long)id);
	if (!cJSON_IsString(first) || sna_parse_time(first->valuestring, &f->start_ms) ||
	    f->start_ms < 0) {
		snprintf(why, len, "record %s: bad or missing firstActiveTime", f->id);
		return -EINVAL;
	}
	/* the client side is the source; a subject without orientation is
	 * taken as the client */
	bool sub_is_src = !cJSON_IsString(orient) || strcmp(orient->valuestring, "server") != 0;
	const cJSON *src = sub_is_src ? sub : peer, *dst = sub_is_src ? peer : sub;
	if (fetch_json_addr(cJSON_GetObjectItemCaseSensitive(src, "ipAddress"), f->src) ||
	    fetch_json_addr(cJSON_GetObjectItemCaseSensitive(dst, "ipAddress"), f->dst)) {
		snprintf(why, len, "record %s: bad or missing ipAddress", f->id);
		return -EINVAL;
	}
	if (sample)
		return 0;
	f->end_ms = f->start_ms;
	if (cJSON_IsString(last) && sna_parse_time(last->valuestring, &f->end_ms) == 0 &&
	    f->end_ms < f->start_ms)
		f->end_ms = f->start_ms;
	const cJSON *spp = cJSON_GetObjectItemCaseSensitive(src, "portProtocol");
	const cJSON *dpp = cJSON_GetObjectItemCaseSensitive(dst, "portProtocol");
	f->proto = proto_number(cJSON_GetObjectItemCaseSensitive(o, "protocol"));
	f->sport = (int32_t)opt_num(spp, "port", 65535);
	f->dport = (int32_t)opt_num(dpp, "port", 65535);
	if (f->proto != 6 && f->proto != 17 && f->proto != 132 && f->sport <= 0 && f->dport <= 0)
		f->sport = f->dport = -1;
	f->bytes = opt_num(st, "byteCount", FETCH_EXACT_MAX);
	f->pkts = opt_num(st, "packetCount", FETCH_EXACT_MAX);
	f->exporter = fc;
	/* 0 is no application, as in flowapi/1 (flowsim sends the reference
	 * record's 0 as it is): unknown, so both dialects write it alike */
	f->app = opt_num(o, "applicationId", 4294967295.0);
	if (f->app == 0)
		f->app = -1;
	f->src_as = f->dst_as = f->sampling = -1;
	f->in_if = side_interface(src, dst, "INBOUND");
	f->out_if = side_interface(src, dst, "OUTBOUND");
	f->icmp_type = f->icmp_code = -1;
	f->tcp_flags = -1;
	if (f->proto == 6) {
		bool syn = either_side(src, dst, "synPackets");
		bool synack = either_side(src, dst, "synAckPackets");
		bool fin = either_side(src, dst, "finPackets");
		bool rst = either_side(src, dst, "rstPackets");
		f->tcp_flags = (int32_t)((fin ? 0x01 : 0) | (syn || synack ? 0x02 : 0) |
					 (rst ? 0x04 : 0) | (synack ? 0x10 : 0));
	}
	if (fetch_json_groups(cJSON_GetObjectItemCaseSensitive(src, "hostGroupIds"), f->src_groups,
			      &f->nsrc_groups) ||
	    fetch_json_groups(cJSON_GetObjectItemCaseSensitive(dst, "hostGroupIds"), f->dst_groups,
			      &f->ndst_groups)) {
		snprintf(why, len, "record %s: bad hostGroupIds", f->id);
		return -EINVAL;
	}
	fetch_community_id(f, 0, f->community_id);
	sna_extra(o, st, src, dst, f->extra, sizeof(f->extra));
	return 0;
}

int sna_decode_answer(const char *body, size_t len, size_t sample_at, struct decoded *out,
		      char *err)
{
	return sna_decode_capped(body, len, sample_at, 0, out, err);
}

int sna_decode_capped(const char *body, size_t len, size_t sample_at, size_t limit,
		      struct decoded *out, char *err)
{
	struct fetch_cuts cuts = {0};
	const cJSON *data, *arr;
	cJSON *root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->sample_at = sample_at;
	out->limit = limit;
	root = fetch_arena_parse(body, len);
	data = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL;
	arr = data ? cJSON_GetObjectItemCaseSensitive(data, "flows") : NULL;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, FETCH_ERRLEN, "search results without a data.flows array (%zu bytes)",
			 len);
		rc = -EBADMSG;
		goto out;
	}
	rc = fetch_json_cuts(body, len, root, &cuts);
	if (rc == 0 && (fetch_json_cut_node(&cuts, data) || fetch_json_cut_node(&cuts, arr))) {
		snprintf(err, FETCH_ERRLEN, "search results whose data.flows keys hold a NUL");
		rc = -EBADMSG;
	} else if (rc == 0) {
		rc = fetch_decode_array(arr, &cuts, out, sna_decode_record);
		if (rc == -EBADMSG)
			snprintf(err, FETCH_ERRLEN, "%s", out->why);
	}
	fetch_cuts_free(&cuts);
out:
	fetch_arena_release(root);
	return rc;
}

/* Does a search's status name a failure (FAILED, CANCELED, ERROR, ...)? */
static bool sna_status_failed(const char *status)
{
	static const char *const words[] = {"FAIL", "CANCEL", "ERROR", "TIMEOUT", "TIMED_OUT",
					     "ABORT", "REJECT", "EXPIRED", "KILLED"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(status, words[i]))
			return true;
	return false;
}

static int sna_window_next(struct driver *d, const struct http_resp *resp, struct driver_win *w,
			   struct http_ask *a, struct decoded *out, char *err)
{
	char id[64], status[32], shown[4 * sizeof(status)];
	int rc;

	if (w->stage == SNA_READ)
		return sna_decode_capped(resp->body, resp->len, out->sample_at, out->limit, out, err);
	rc = search_state(resp->body, resp->len, id, sizeof(id), status, sizeof(status));
	if (rc) {
		snprintf(err, FETCH_ERRLEN, rc == -ENOMEM ? "out of memory reading a search answer"
			 : "a search answer without a valid data.query.id and status");
		return rc;
	}
	if (w->stage == SNA_CREATE)
		snprintf(w->id, sizeof(w->id), "%s", id);
	memset(a, 0, sizeof(*a));
	if (strcmp(status, "COMPLETED") == 0) {
		w->stage = SNA_READ;
		searches_url(d, a, w->id, "/results");
		return 1;
	}
	/* Public answers show IN_PROGRESS and COMPLETED only: any other
	 * status that does not name a failure is taken as still running,
	 * until the deadline below; one that does is asked again */
	/* the status is the Manager's text: shown with its control characters
	 * visible (the message goes to the log, .progress and stderr) */
	if (sna_status_failed(status)) {
		cache_text_escape(shown, sizeof(shown), status, 20);
		snprintf(err, FETCH_ERRLEN, "search %s ended with status %s", w->id, shown);
		return -EAGAIN;
	}
	if (mono_ms() - w->started_ms > SNA_SEARCH_DEADLINE_MS) {
		cache_text_escape(shown, sizeof(shown), status, sizeof(status));
		snprintf(err, FETCH_ERRLEN, "search %s was still %s after %d s", w->id, shown,
			 SNA_SEARCH_DEADLINE_MS / 1000);
		return -ETIMEDOUT;
	}
	w->stage = SNA_POLL;
	/* 50 ms, then half as long again each time, up to 2 s */
	int64_t delay = SNA_POLL_FIRST_MS;
	for (unsigned i = 0; i < w->polls && delay < SNA_POLL_MAX_MS; i++)
		delay += delay / 2;
	a->delay_ms = delay < SNA_POLL_MAX_MS ? delay : SNA_POLL_MAX_MS;
	w->polls++;
	searches_url(d, a, w->id, "");
	return 1;
}

/* The Manager's error body: {"errors": [{"code": ..., "message": "..."}]}
 * (the first one's message; code is not read: it is a number in some
 * versions, text in others). */
static void sna_error_text(struct driver *d, const struct http_resp *resp, char *buf, size_t len)
{
	cJSON *root = fetch_error_json(resp);
	const cJSON *errs = root ? cJSON_GetObjectItemCaseSensitive(root, "errors") : NULL;
	const cJSON *m = NULL;

	(void)d;
	if (cJSON_IsArray(errs) && cJSON_GetArraySize(errs) > 0)
		m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "message");
	fetch_error_message(m, buf, len);
	cJSON_Delete(root);
}

const struct driver_ops sna_driver = {
	.granularity_ms = 1000,
	.max_window_ms = 31 * CACHE_DAY_MS,
	.split_dims = FETCH_SPLIT_PEER | FETCH_SPLIT_PEER_SET,
	/* flowsim's SNA records: 964 bytes on average, 1,134 at most, 1,808
	 * pretty-printed; a Manager's may carry more fields */
	.record_max = 8192,
	.open = sna_open,
	.close = sna_close,
	.session = sna_session,
	.sign = sna_sign,
	.logout = sna_logout,
	.info_ask = sna_info_ask,
	.info_decode = sna_info_decode,
	.lookup_ask = sna_lookup_ask,
	.lookup_decode = sna_lookup_decode,
	.window_first = sna_window_first,
	.window_next = sna_window_next,
	.error_text = sna_error_text,
};
