/*
 * http.c - the HTTP client of the engine, on the libcurl multi interface.
 *
 * One multi handle and at most max_inflight easy handles, reused so that
 * connections are kept alive.  Every request carries a connect timeout, a
 * stall limit (CURLOPT_LOW_SPEED_LIMIT/TIME: under one byte a second for
 * stall_s seconds) and an overall deadline; CURLOPT_NOSIGNAL, since the
 * engine is threaded.  Bodies are collected into buffers with a hard
 * maximum: growing past it aborts the transfer, never the process.
 *
 * Retry policy (http_judge, http_backoff_ms): 5xx, 429, resets, timeouts
 * and cut bodies are retried with exponential backoff and full jitter
 * (a 429's Retry-After wins, up to 5 minutes); 400, 401, 403 and 404 are
 * never retried and carry the server's message out, read from the body by
 * the driver that the client was opened for (driver_ops.error_text: the
 * format is the dialect's, not the transport's).
 *
 * Secrets: the Authorization header is built to the token's length (no
 * token is cut), and every copy this file makes of a header or of a POST
 * body (the SNA login form holds the password) is zeroed before it is
 * freed.  libcurl's own copies (the request it writes) are beyond reach.
 */
#include "fetch_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct slot {
	CURL *easy;
	bool busy;
	struct http_resp resp;
	size_t cap, max;
	struct curl_slist *hdrs;
	char *post;
	struct timespec t0;
};

struct http {
	struct http_opts o;
	CURLM *multi;
	struct slot *slots;
	unsigned nslots, busy;
	char *auth;		/* "Authorization: Bearer TOKEN", or NULL */
};

/* Free a header list whose lines may hold credentials, zeroed first. */
static void http_hdrs_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/* Append a header line to a slot's list: 0, or -ENOMEM (the list kept). */
static int http_hdr_add(struct slot *s, const char *line)
{
	struct curl_slist *l = curl_slist_append(s->hdrs, line);

	if (!l)
		return -ENOMEM;
	s->hdrs = l;
	return 0;
}

/* Free a slot's copy of a POST body (a login form holds a password),
 * zeroed first. */
static void http_post_free(struct slot *s)
{
	if (s->post)
		explicit_bzero(s->post, strlen(s->post));
	free(s->post);
	s->post = NULL;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct slot *s = ud;
	struct http_resp *r = &s->resp;
	size_t add = size * nmemb;

	if (r->len + add + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 256 * 1024;
		while (cap < r->len + add + 1)
			cap *= 2;
		if (r->len + add + 1 > s->max) {
			r->too_big = true;
			return 0;	/* aborts the transfer: CURLE_WRITE_ERROR */
		}
		if (cap > s->max)
			cap = s->max;
		char *p = realloc(r->body, cap);
		if (!p)
			return 0;
		r->body = p;
		s->cap = cap;
	}
	memcpy(r->body + r->len, ptr, add);
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct slot *s = ud;
	size_t n = size * nitems;

	if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		char tmp[64];
		size_t k = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
		char *end;
		memcpy(tmp, buf + 12, k);
		tmp[k] = '\0';
		long v = strtol(tmp, &end, 10);
		/* seconds; an HTTP date is read as "a while" */
		s->resp.retry_after_s = end != tmp && v >= 0 ? v : 5;
	} else if (n > 11 && strncasecmp(buf, "Set-Cookie:", 11) == 0) {
		/* keep "name=value" (attributes dropped), one a line, while it fits */
		const char *v = buf + 11, *e = buf + n;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		size_t k = 0, have = strlen(s->resp.set_cookie);
		while (v + k < e && v[k] != ';' && v[k] != '\r' && v[k] != '\n')
			k++;
		if (k && have + k + 2 <= sizeof(s->resp.set_cookie)) {
			memcpy(s->resp.set_cookie + have, v, k);
			s->resp.set_cookie[have + k] = '\n';
			s->resp.set_cookie[have + k + 1] = '\0';
		} else if (k) {
			s->resp.set_cookie_cut = true;	/* refused by the driver, never cut */
		}
	}
	return n;
}

int http_new(const struct http_opts *o, struct http **out, char *err)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->o = *o;
	if (h->o.max_inflight < 1)
		h->o.max_inflight = 1;
	h->nslots = h->o.max_inflight;
	h->multi = curl_multi_init();
	h->slots = calloc(h->nslots, sizeof(*h->slots));
	if (!h->multi || !h->slots)
		goto oom;
	curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->nslots);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->nslots);
	for (unsigned i = 0; i < h->nslots; i++) {
		h->slots[i].easy = curl_easy_init();
		if (!h->slots[i].easy)
			goto oom;
	}
	if (o->token) {
		static const char pre[] = "Authorization: Bearer ";
		size_t n = strlen(o->token);
		h->auth = malloc(sizeof(pre) + n);
		if (!h->auth)
			goto oom;
		memcpy(h->auth, pre, sizeof(pre) - 1);
		memcpy(h->auth + sizeof(pre) - 1, o->token, n + 1);
	}
	*out = h;
	return 0;
oom:
	snprintf(err, FETCH_ERRLEN, "cannot set up libcurl (out of memory)");
	http_free(h);
	return -ENOMEM;
}

void http_resp_free(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	for (unsigned i = 0; h->slots && i < h->nslots; i++) {
		struct slot *s = &h->slots[i];
		if (s->busy)
			curl_multi_remove_handle(h->multi, s->easy);
		if (s->easy)
			curl_easy_cleanup(s->easy);
		http_hdrs_free(s->hdrs);
		http_post_free(s);
		http_resp_free(&s->resp);
	}
	free(h->slots);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->auth)
		explicit_bzero(h->auth, strlen(h->auth));
	free(h->auth);
	free(h);
}

unsigned http_inflight(const struct http *h)
{
	return h->busy;
}

void http_wakeup(struct http *h)
{
	curl_multi_wakeup(h->multi);
}

int http_submit(struct http *h, const struct http_ask *a, uint64_t tag)
{
	struct slot *s = NULL;
	CURL *e;

	for (unsigned i = 0; i < h->nslots && !s; i++)
		if (!h->slots[i].busy)
			s = &h->slots[i];
	if (!s)
		return -EBUSY;
	e = s->easy;
	curl_easy_reset(e);
	http_hdrs_free(s->hdrs);
	s->hdrs = NULL;
	http_post_free(s);
	memset(&s->resp, 0, sizeof(s->resp));
	s->resp.tag = tag;
	s->resp.retry_after_s = -1;
	s->cap = 0;
	s->max = h->o.max_body;
	int rc = 0;
	if (a->auth[0]) {
		char x[sizeof(a->auth) + 16];
		snprintf(x, sizeof(x), "Authorization: %s", a->auth);
		rc = http_hdr_add(s, x);
		explicit_bzero(x, sizeof(x));
	} else if (h->auth) {
		rc = http_hdr_add(s, h->auth);
	}
	/* JSON, but what some endpoints label otherwise too: an SNA Manager
	 * serves its tenants list as text/plain only, and answers 406 to a
	 * strict JSON Accept (issue 11; the MCP client sends the same list).
	 * Bodies are parsed as JSON whatever their content type. */
	if (!rc)
		rc = http_hdr_add(s, "Accept: application/json, text/plain, */*");
	if (!rc && a->content_type) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", a->content_type);
		rc = http_hdr_add(s, ct);
	}
	if (!rc && a->xsrf[0]) {
		char x[sizeof(a->xsrf) + 16];
		snprintf(x, sizeof(x), "X-XSRF-TOKEN: %s", a->xsrf);
		rc = http_hdr_add(s, x);
		explicit_bzero(x, sizeof(x));
	}
	if (rc)
		return rc;
	curl_easy_setopt(e, CURLOPT_URL, a->url);
	if (a->cookie[0])
		curl_easy_setopt(e, CURLOPT_COOKIE, a->cookie);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 a->timeout_ms > 0 && a->timeout_ms < h->o.request_timeout_ms ? a->timeout_ms
										: h->o.request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->o.stall_s);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->resp.error);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (h->o.compress)
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
	if (h->o.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->o.ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_file);
	if (a->method && strcmp(a->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, a->method);
		if (a->body) {
			s->post = strdup(a->body);
			if (!s->post)
				return -ENOMEM;
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->post);
		}
	}
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		return -EIO;
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	s->busy = true;
	h->busy++;
	return 0;
}

/* Move the finished transfers' answers into *v (n of them).  0 or -ENOMEM. */
static int http_collect(struct http *h, struct http_resp **v, size_t *n)
{
	CURLMsg *msg;
	int left = 0;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct slot *s = NULL;
		struct timespec t1;

		if (msg->msg != CURLMSG_DONE)
			continue;
		for (unsigned i = 0; i < h->nslots && !s; i++)
			if (h->slots[i].busy && h->slots[i].easy == msg->easy_handle)
				s = &h->slots[i];
		if (!s)
			continue;
		struct http_resp *nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		s->resp.cerr = msg->data.result;
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->resp.status);
		if (s->resp.cerr != CURLE_OK)
			s->resp.status = s->resp.too_big ? s->resp.status : 0;
		if (s->resp.cerr != CURLE_OK && !s->resp.error[0])
			snprintf(s->resp.error, sizeof(s->resp.error), "%s",
				 curl_easy_strerror(s->resp.cerr));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s->resp.seconds = (double)(t1.tv_sec - s->t0.tv_sec) +
				  (double)(t1.tv_nsec - s->t0.tv_nsec) / 1e9;
		s->resp.alloc = s->cap;
		s->resp.limit = s->max;
		(*v)[(*n)++] = s->resp;
		memset(&s->resp, 0, sizeof(s->resp));
		curl_multi_remove_handle(h->multi, s->easy);
		/* the secrets it sent go now, not at the slot's next request */
		http_hdrs_free(s->hdrs);
		s->hdrs = NULL;
		http_post_free(s);
		s->busy = false;
		h->busy--;
	}
	return 0;
}

/*
 * Transfers that finished in the first curl_multi_perform are collected
 * before waiting: polling then would sleep the whole timeout with an answer
 * already in hand (a lone request waited a full second for nothing).
 */
int http_wait(struct http *h, int timeout_ms, struct http_resp **done, size_t *ndone)
{
	int running = 0;
	size_t n = 0;
	struct http_resp *v = NULL;
	int rc = 0;

	*done = NULL;
	*ndone = 0;
	if (h->busy) {
		curl_multi_perform(h->multi, &running);
		rc = http_collect(h, &v, &n);
	}
	if (!rc && n == 0) {
		if (curl_multi_poll(h->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK) {
			free(v);
			return -EIO;
		}
		curl_multi_perform(h->multi, &running);
		rc = http_collect(h, &v, &n);
	}
	if (rc) {
		free(v);
		return rc;
	}
	*done = v;
	*ndone = n;
	return 0;
}

enum http_verdict http_judge(const struct http *h, const struct http_resp *r, int *errnum,
			     char *why, size_t len)
{
	char msg[256] = "";

	if (r->too_big) {
		*errnum = EFBIG;
		snprintf(why, len, "an answer of more than %zu bytes, the bound of one answer "
			 "(max_records x the largest record accepted, at most max_body)", r->limit);
		return HTTP_FATAL;
	}
	if (r->status == 0) {
		switch (r->cerr) {
		case CURLE_OPERATION_TIMEDOUT:
			*errnum = ETIMEDOUT;
			snprintf(why, len, "timed out: the collector stalled or was too slow (%s)",
				 r->error);
			return HTTP_RETRY;
		case CURLE_COULDNT_CONNECT:
			*errnum = ECONNREFUSED;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
			*errnum = EHOSTUNREACH;
			snprintf(why, len, "cannot resolve the collector's host: %s", r->error);
			return HTTP_FATAL;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
			*errnum = EACCES;
			snprintf(why, len, "TLS: %s (the certificate is not trusted; see -o ca_file, or insecure)",
				 r->error);
			return HTTP_FATAL;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			*errnum = EINVAL;
			snprintf(why, len, "bad URL: %s", r->error);
			return HTTP_FATAL;
		default:
			*errnum = EIO;
			break;
		}
		snprintf(why, len, "%s", r->error);
		return HTTP_RETRY;
	}
	if (r->cerr != CURLE_OK) {	/* an answer, but cut short */
		*errnum = EIO;
		snprintf(why, len, "HTTP %ld, body cut short: %s", r->status, r->error);
		return HTTP_RETRY;
	}
	if (r->status >= 200 && r->status < 300)	/* SNA creates a search with 201 */
		return HTTP_OK;
	if (h && h->o.ops && h->o.ops->error_text)
		h->o.ops->error_text(h->o.drv, r, msg, sizeof(msg));
	if (r->status == 429 || r->status >= 500) {
		*errnum = r->status == 429 ? EAGAIN : EIO;
		snprintf(why, len, "HTTP %ld%s%s", r->status, msg[0] ? ": " : "", msg);
		return HTTP_RETRY;
	}
	switch (r->status) {
	case 401:
	case 403:
		*errnum = EACCES;
		snprintf(why, len, "the collector refused the credentials (HTTP %ld%s%s)", r->status,
			 msg[0] ? ": " : "", msg);
		break;
	case 404:
		*errnum = ENOENT;
		snprintf(why, len, "HTTP 404%s%s (is this the collector's API, and the right driver?)",
			 msg[0] ? ": " : "", msg);
		break;
	default:
		*errnum = EINVAL;
		snprintf(why, len, "the collector rejected the request: HTTP %ld%s%s", r->status,
			 msg[0] ? ": " : "", msg);
		break;
	}
	return HTTP_FATAL;
}

int64_t http_backoff_ms(const struct http_resp *r, unsigned attempt, uint64_t *rng)
{
	if (r && r->status == 429 && r->retry_after_s >= 0)
		return (r->retry_after_s > 300 ? 300 : r->retry_after_s) * 1000 + 50;
	int64_t cap = 200LL << (attempt < 8 ? attempt : 8);
	if (cap > 30000)
		cap = 30000;
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	return 50 + (int64_t)(*rng % (uint64_t)cap);
}

int http_get_retry(struct http *h, const struct http_ask *a, unsigned max_retries,
		   struct http_resp *resp, char *err)
{
	uint64_t rng = (uint64_t)time(NULL) | 1;

	for (unsigned attempt = 0;; attempt++) {
		struct http_resp *done = NULL;
		size_t n = 0;
		int rc = http_submit(h, a, 0), errnum = 0;
		char why[FETCH_ERRLEN];

		if (rc) {
			snprintf(err, FETCH_ERRLEN, "cannot start a request: %s", strerror(-rc));
			return rc;
		}
		while (n == 0) {
			rc = http_wait(h, 1000, &done, &n);
			if (rc) {
				snprintf(err, FETCH_ERRLEN, "libcurl failed: %s", strerror(-rc));
				return rc;
			}
			if (n == 0)
				free(done);
		}
		enum http_verdict v = http_judge(h, &done[0], &errnum, why, sizeof(why));
		if (v == HTTP_OK) {
			*resp = done[0];
			free(done);
			return 0;
		}
		if (v == HTTP_FATAL || attempt >= max_retries) {
			snprintf(err, FETCH_ERRLEN, "%.460s%s", why,
				 v == HTTP_RETRY ? " (retries exhausted)" : "");
			http_resp_free(&done[0]);
			free(done);
			return -errnum;
		}
		int64_t ms = http_backoff_ms(&done[0], attempt + 1, &rng);
		http_resp_free(&done[0]);
		free(done);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}
