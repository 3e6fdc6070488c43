/*
 * flowmon.c - the driver for Progress Flowmon's REST API (FMC flow
 * analysis), as docs/flowmon.md describes it from the public sources
 * (flowsim --dialect flowmon serves the same API; docs/flowsim.md).
 *
 * Sessions: OAuth's password grant at /resources/oauth/token (client_id
 * invea-tech, user:password from the token file); every call carries
 * "Authorization: bearer TOKEN".  The token is renewed before its
 * expires_in runs out (a quarter of it, at most a minute, before), with
 * the refresh grant when the appliance gave a refresh token, else (or
 * when that is refused) the password grant; a request refused with 401 is
 * sent again once after a new login (the engine asks, with the generation
 * of the token the request carried).
 *
 * A window is an asynchronous exchange: a listing (GET, or a POST form
 * when the URL would pass 2,000 characters) answers {"id": N}; its result
 * is polled (50 ms, half as long again each time, up to 2 s, for at most
 * 15 minutes): 202 still running, 200 the rows, 204 no rows or a result
 * the appliance forgot (the two look alike).  A 204 is told by the list
 * of the appliance's results (GET /rest/fmc/analysis/results, "list of
 * latest async results" with their state, G10 p.65-66): a result listed
 * finished (state 1) has no rows; one not listed was forgotten (or fell
 * off the list), and the listing is asked again, polled without backing
 * off, up to FM_REASKS times; then the window fails (-EAGAIN: retried,
 * and at last reported), never taken as empty.  No timing enters: an
 * earlier rule that judged by how long results were seen kept lost flows
 * under a slow build.
 *
 * Slots.  The appliance reads 5-minute nfcapd files, each holding the
 * flows exported in its slot, and a flow is exported up to the exporters'
 * active timeout after it started (-o active_timeout=, the reach): a
 * window [S, E) of whole slots (granularity 300 s) reads the slots from
 * S's to the one holding E + reach, plus one (so that `to` is right
 * whether the appliance reads its slot or not), and keeps a row only when
 * its start lies in [S, E).  Windows never overlap, so a row belongs to
 * one window alone; the rows a window reads for its neighbours are
 * dropped silently (they are theirs, not foreign).
 *
 * The cap.  A listing answers at most showonly = 10,000 rows, a random
 * subset when more match, with no total.  A listing of exactly the cap is
 * full: the planner splits its window by time, then (at a single slot) by
 * the peer's prefix, each a disjoint nfdump filter (`net P/len` on the
 * peer's side).  At a single peer address and a single slot the planner
 * has nothing left to split, so the driver splits the window itself, by
 * disjoint filters again: the protocol (tcp, udp, neither), then the
 * destination port's range, halved down to one port, then the source
 * port's; the parts cover their parent and never overlap (flowmon_split),
 * so their rows add up to the window's.  A part that cannot be split
 * further and is still full makes the window full: the planner records a
 * gap.  This split lives here, not in the planner (plan.c), because only
 * a slot of one peer needs it and the planner's sizing by samples has
 * nothing to say about ports; the planner's records of coverage and gaps
 * stay the one audit.
 *
 * Rows carry no id: a row's id is the first 16 bytes of SHA-256 over its
 * fields, in hex ("fm1|..."), and identical rows of one window are
 * numbered ".2", ".3" (flowmon_ids), as nfdump.c numbers identical
 * records.  Values are strings; a count the appliance scaled ("1.3 M") is
 * not exact: the column stays empty, the text goes to extra, and the
 * record is counted inexact (decoded.inexact: stored, its window not
 * covered, a gap says why).
 */
#include "fetch_i.h"
#include "mtx.h"
#include "nfdump.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FM_SLOT_MS (5 * 60 * 1000)
#define FM_CAP 10000			/* showonly's maximum (G10 p.59) */
#define FM_RENEW_MAX_MS (60 * 1000)	/* renew a token this long before it ends, */
#define FM_RENEW_SHARE 4		/* or a quarter of its life when shorter */
#define FM_POLL_FIRST_MS 50
#define FM_POLL_MAX_MS 2000
#define FM_POLL_FAST_MS 10		/* a listing asked again: its result was forgotten */
#define FM_DEADLINE_MS (15 * 60 * 1000)
#define FM_REASKS 3			/* a part asked again after ambiguous 204s */
#define FM_URL_MAX 2000			/* longer: a POST form (G10 p.10) */
#define FM_CHANNELS_MAX 64
#define FM_NAME_MAX 64
#define FM_TOKEN_MAX 2048
#define FM_STACK_MAX 160		/* parts waiting: 3 a level, 33 levels at most */
#define FM_OUTPUT "[\"ts\",\"te\",\"td\",\"pr\",\"sa\",\"sp\",\"da\",\"dp\",\"flg\",\"pkt\"," \
	"\"byt\",\"fl\",\"in\",\"out\",\"sas\",\"das\",\"ra\"]"

enum { FM_LIST = 0, FM_POLL, FM_CHECK };

struct driver {
	char base[2048];
	char user[256], pass[512];
	char profile[FM_NAME_MAX];
	char channels[FM_CHANNELS_MAX][FM_NAME_MAX];	/* the names sent */
	size_t nchannels;
	bool channels_given;
	struct nfd_tz *tz;		/* the appliance's zone */
	int64_t reach_ms;		/* how long after its start a flow may be exported */
	uint32_t limit;			/* showonly */
	struct mtx lock;		/* guards the token: the fields below */
	char token[FM_TOKEN_MAX], token_type[32], refresh[FM_TOKEN_MAX];
	uint64_t gen;			/* 0: never logged in */
	int64_t renew_ms;		/* monotonic: renew from then on */
};

/* The driver's notes on one window's exchange (driver_win.priv). */
struct fm_x {
	int64_t ws, we;			/* the rows kept: their start in [ws, we) */
	char from[24], to[24];		/* the slots read, in the appliance's zone */
	char filter[640];		/* the window's own filter (subject, peer) */
	bool single;			/* one slot: a full part is split by filters */
	struct flowmon_part cur;	/* the part being asked */
	struct flowmon_part stack[FM_STACK_MAX];
	size_t nstack;
	bool split;			/* parts were asked */
	unsigned reasks;		/* the current part asked again: its result forgotten */
	/* The lateness probe of the current part: the slots right after
	 * those read (from `to`'s slot on), asked once the part answered;
	 * its rows that started in the window and that the part's answer
	 * lacks were exported later than active_timeout. */
	bool probing;
	char pfrom[24], pto[24];
	/* A probe that answers the cap is split as a part is (its parts:
	 * pcur and pstack), not the part it checks. */
	struct flowmon_part pcur;
	struct flowmon_part pstack[FM_STACK_MAX];
	size_t npstack;
	bool whole_probe;		/* the probe checks every part of the window */
	bool hashed;			/* acc's rows have their hashes as ids (fm_late) */
	size_t part_base;		/* the current part's first row in acc */
	size_t probe_base;		/* the probe's first row in acc */
	/* acc's rejected and inexact counts when the current part, the
	 * probe and the answer began: what a dropped answer gives back */
	size_t part_rejected, part_inexact, probe_rejected, probe_inexact;
	int64_t read_end_ms;		/* the slots read surely end no sooner */
	struct decoded acc;		/* the rows kept so far (recs, n, rejected, inexact) */
	size_t cap;			/* acc.recs' room */
	size_t most;			/* the most rows one listing answered */
	/* The current part's full answer, for its split: its rows' keys,
	 * and how many of its rows started in the window. */
	struct flowmon_key *keys;
	size_t nkeys, own;
	size_t ans_rejected, ans_inexact;
	/* the parts answered whole, for decoded.parts */
	char *parts;
	size_t plen, pcap;
	unsigned nparts;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A name the API takes as it is (a profile, a channel): [A-Za-z0-9_.-],
 * 1 to FM_NAME_MAX - 1 bytes. */
static bool fm_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= FM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* -o channels=a,b into d->channels: 0, or -EINVAL with err. */
static int fm_channels_parse(struct driver *d, const char *list, char *err)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!fm_name_ok(p, n) || d->nchannels == FM_CHANNELS_MAX) {
			snprintf(err, FETCH_ERRLEN, "channels '%.64s': a comma-separated list of at "
				 "most %d channel names ([A-Za-z0-9_.-], the text after the last /)",
				 list, FM_CHANNELS_MAX);
			return -EINVAL;
		}
		memcpy(d->channels[d->nchannels], p, n);
		d->channels[d->nchannels++][n] = '\0';
		p += n + (e ? 1 : 0);
	}
	if (!d->nchannels) {
		snprintf(err, FETCH_ERRLEN, "channels is empty: name at least one channel");
		return -EINVAL;
	}
	d->channels_given = true;
	return 0;
}

/* "user:password" (the token file's first line); profile, channels,
 * collector_tz, active_timeout_s, max_records (at most 10,000). */
static int fm_open(struct driver **out, const struct fetch_opts *o, char *err)
{
	struct driver *d = calloc(1, sizeof(*d));
	const char *colon = o->token ? strchr(o->token, ':') : NULL;
	const char *prof = o->profile ? o->profile : "live";
	size_t n;
	int rc = -EINVAL;

	if (!d)
		return -ENOMEM;
	if (!colon || colon == o->token || (size_t)(colon - o->token) >= sizeof(d->user) ||
	    strlen(colon + 1) >= sizeof(d->pass)) {
		snprintf(err, FETCH_ERRLEN, "the Flowmon driver needs the appliance's credentials "
			 "as user:password in the token file (or $FLOWFS_TOKEN)");
		goto fail;
	}
	memcpy(d->user, o->token, (size_t)(colon - o->token));
	strcpy(d->pass, colon + 1);
	n = strlen(o->url);
	if (n == 0 || n >= sizeof(d->base) - 128) {
		snprintf(err, FETCH_ERRLEN, "the appliance's URL is empty or too long");
		goto fail;
	}
	memcpy(d->base, o->url, n + 1);
	while (n > 0 && d->base[n - 1] == '/')
		d->base[--n] = '\0';
	if (!fm_name_ok(prof, strlen(prof))) {
		snprintf(err, FETCH_ERRLEN, "profile '%.64s' is not a profile id ([A-Za-z0-9_.-])",
			 prof);
		goto fail;
	}
	snprintf(d->profile, sizeof(d->profile), "%s", prof);
	if (o->channels && (rc = fm_channels_parse(d, o->channels, err)))
		goto fail;
	rc = nfd_tz_open(o->collector_tz && o->collector_tz[0] ? o->collector_tz : "UTC", &d->tz,
			 err);
	if (rc) {
		char why[FETCH_ERRLEN];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, FETCH_ERRLEN, "collector_tz: %.400s", why);
		goto fail;
	}
	d->reach_ms = (int64_t)(o->active_timeout_s ? o->active_timeout_s
						   : FETCH_ACTIVE_TIMEOUT_DEFAULT) * 1000;
	d->limit = o->max_records && o->max_records < FM_CAP ? o->max_records : FM_CAP;
	mtx_init(&d->lock);
	*out = d;
	return 0;
fail:
	explicit_bzero(d, sizeof(*d));
	free(d);
	return rc;
}

static void fm_close(struct driver *d)
{
	nfd_tz_free(d->tz);
	mtx_destroy(&d->lock);
	explicit_bzero(d, sizeof(*d));
	free(d);
}

/*
 * The token answer: access_token, token_type, expires_in, refresh_token
 * into d (the caller holds d->lock).  0, or -EPROTO with err.
 */
static int fm_token_take(struct driver *d, const struct http_resp *r, char *err)
{
	cJSON *root = cJSON_ParseWithLength(r->body, r->len);
	int64_t ttl = 3600;
	char tok[FM_TOKEN_MAX];
	int rc = -EPROTO;

	if (!root || !fetch_json_str(root, "access_token", tok, sizeof(tok)) || !tok[0]) {
		snprintf(err, FETCH_ERRLEN, "the appliance's token answer has no access_token "
			 "(or one over %d bytes): is this a Flowmon appliance?", FM_TOKEN_MAX - 1);
		goto out;
	}
	for (const char *c = tok; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			snprintf(err, FETCH_ERRLEN, "the appliance's access_token holds a space or a "
				 "control character");
			goto out;
		}
	/* read, never assumed: 3600, 86400 and 604800 are seen (docs/flowmon.md 1) */
	fetch_json_int(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), 1, 1e9, &ttl);
	memcpy(d->token, tok, sizeof(d->token));
	if (!fetch_json_str(root, "token_type", d->token_type, sizeof(d->token_type)) ||
	    !d->token_type[0] || strchr(d->token_type, ' '))
		snprintf(d->token_type, sizeof(d->token_type), "bearer");
	if (!fetch_json_str(root, "refresh_token", d->refresh, sizeof(d->refresh)))
		d->refresh[0] = '\0';
	int64_t margin = ttl * 1000 / FM_RENEW_SHARE;
	if (margin > FM_RENEW_MAX_MS)
		margin = FM_RENEW_MAX_MS;
	d->renew_ms = mono_ms() + ttl * 1000 - margin;
	d->gen++;
	rc = 0;
out:
	explicit_bzero(tok, sizeof(tok));
	cJSON_Delete(root);
	return rc;
}

/* One grant at the token endpoint: the refresh grant when 'refresh', else
 * the password grant.  The caller holds d->lock.  0 or -errno with err. */
static int fm_grant(struct driver *d, struct http *h, bool refresh, char *err)
{
	char a1[800], a2[1600], form[FM_TOKEN_MAX * 3 + 2600];
	struct http_ask a;
	struct http_resp r;
	int rc;

	mtx_assert_held(&d->lock);
	memset(&a, 0, sizeof(a));
	if (refresh) {
		char rt[FM_TOKEN_MAX * 3 + 4];
		fetch_form_encode(d->refresh, rt, sizeof(rt));
		snprintf(form, sizeof(form), "grant_type=refresh_token&client_id=invea-tech&"
			 "refresh_token=%s", rt);
		explicit_bzero(rt, sizeof(rt));
	} else {
		fetch_form_encode(d->user, a1, sizeof(a1));
		fetch_form_encode(d->pass, a2, sizeof(a2));
		snprintf(form, sizeof(form), "grant_type=password&client_id=invea-tech&"
			 "username=%s&password=%s", a1, a2);
		explicit_bzero(a2, sizeof(a2));
	}
	snprintf(a.url, sizeof(a.url), "%s/resources/oauth/token", d->base);
	a.method = "POST";
	a.body = form;
	a.content_type = "application/x-www-form-urlencoded";
	rc = http_get_retry(h, &a, refresh ? 0 : 2, &r, err);
	explicit_bzero(form, sizeof(form));
	if (rc)
		return rc;
	rc = fm_token_take(d, &r, err);
	http_resp_free(&r);
	return rc;
}

/* A token usable now: logged in when there is none, when the one of
 * generation stale_gen was refused, or when it is about to expire (the
 * refresh grant first, then the password grant).  Thread-safe. */
static int fm_session(struct driver *d, struct http *h, uint64_t stale_gen, char *err)
{
	int rc = 0;

	mtx_lock(&d->lock);
	bool stale = stale_gen && stale_gen == d->gen;
	bool expiring = d->gen && mono_ms() >= d->renew_ms;
	if (!d->gen || stale || expiring) {
		char lerr[FETCH_ERRLEN];
		rc = -EACCES;
		if (d->gen && d->refresh[0])
			rc = fm_grant(d, h, true, lerr);
		if (rc)
			rc = fm_grant(d, h, false, err);
	}
	mtx_unlock(&d->lock);
	return rc;
}

/* The appliance has no logout (tokens expire); the token is forgotten. */
static void fm_logout(struct driver *d, struct http *h)
{
	(void)h;
	mtx_lock(&d->lock);
	explicit_bzero(d->token, sizeof(d->token));
	explicit_bzero(d->refresh, sizeof(d->refresh));
	d->gen = 0;
	mtx_unlock(&d->lock);
}

static void fm_sign(struct driver *d, struct http_ask *a)
{
	mtx_lock(&d->lock);
	if (d->gen)
		snprintf(a->auth, sizeof(a->auth), "%s %s", d->token_type, d->token);
	a->auth_gen = d->gen;
	mtx_unlock(&d->lock);
}

/* The probe: the profile's channels (G10 p.48). */
static int fm_info_ask(struct driver *d, struct http_ask *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s/rest/fmc/profiles/channels?profileId=%s", d->base,
		 d->profile);
	return 0;
}

/* The channels' list: [{"id": "live/p2055", "name": ...}]; the names sent
 * are the text after the last '/' of an id (G10 p.42).  Given channels
 * must be among them; without, all of them are read. */
static int fm_info_decode(struct driver *d, const char *body, size_t len,
			  struct fetch_info *info, char *err)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *it;
	char have[FM_CHANNELS_MAX][FM_NAME_MAX], list[400] = "";
	size_t nhave = 0, used = 0;
	int rc = -EPROTO;

	memset(info, 0, sizeof(*info));
	if (!cJSON_IsArray(root)) {
		snprintf(err, FETCH_ERRLEN, "profile %s: the channels' list is not the expected JSON "
			 "array (does the profile exist? is this a Flowmon appliance?)", d->profile);
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		char id[256];
		if (!fetch_json_str(it, "id", id, sizeof(id)))
			continue;
		const char *name = strrchr(id, '/') ? strrchr(id, '/') + 1 : id;
		if (!fm_name_ok(name, strlen(name)) || nhave == FM_CHANNELS_MAX)
			continue;
		snprintf(have[nhave++], FM_NAME_MAX, "%.*s", FM_NAME_MAX - 1, name);
		if (used < sizeof(list) - 1)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 used ? ", " : "", name);
		if (used >= sizeof(list))
			used = sizeof(list) - 1;
	}
	if (!nhave) {
		snprintf(err, FETCH_ERRLEN, "profile %s has no channels", d->profile);
		rc = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < d->nchannels; i++) {
		bool found = false;
		for (size_t k = 0; k < nhave && !found; k++)
			found = strcmp(d->channels[i], have[k]) == 0;
		if (!found) {
			snprintf(err, FETCH_ERRLEN, "profile %.64s has no channel %.64s (it has: %.200s)",
				 d->profile, d->channels[i], list);
			rc = -ENOENT;
			goto out;
		}
	}
	if (!d->channels_given) {
		memcpy(d->channels, have, sizeof(have));
		d->nchannels = nhave;
	}
	snprintf(info->product, sizeof(info->product), "Flowmon");
	snprintf(info->dialect, sizeof(info->dialect), "flowmon");
	info->max_records = d->limit;
	info->cap_assumed = false;	/* showonly's maximum is documented (G10 p.59) */
	info->retention_days = 0;
	/* a flow shows once the slot of its export is closed */
	info->export_delay_s = (int)((d->reach_ms + 2 * FM_SLOT_MS) / 1000);
	char tzname[80];
	const char *zn = nfd_tz_name(d->tz);
	cache_text_escape(tzname, sizeof(tzname), zn ? zn : "UTC", strlen(zn ? zn : "UTC"));
	snprintf(info->about, sizeof(info->about),
		 "{\"profile\":\"%s\",\"channels\":%zu,\"collector_tz\":\"%s\","
		 "\"active_timeout_s\":%lld}", d->profile, d->nchannels, tzname,
		 (long long)(d->reach_ms / 1000));
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static int fm_lookup_ask(struct driver *d, enum cache_table t, struct http_ask *a)
{
	(void)d;
	(void)t;
	(void)a;
	return 0;	/* no names the flows refer to by id */
}

static int fm_lookup_decode(struct driver *d, enum cache_table t, const char *body, size_t len,
			    struct cache_lookup **rows, size_t *n, char *err)
{
	(void)d, (void)t, (void)body, (void)len, (void)err;
	*rows = NULL;
	*n = 0;
	return 0;
}

/* ---- filters ----------------------------------------------------------------- */

/* What part p adds to its window's filter ("" for the whole window):
 * nfdump's terms joined by "and". */
static void fm_part_text(const struct flowmon_part *p, char *out, size_t len)
{
	/* by the set of classes: bit 0 tcp, bit 1 udp, bit 2 neither */
	static const char *const protos[8] = {
		"", "proto tcp", "proto udp", "(proto tcp or proto udp)",
		"not (proto tcp or proto udp)", "not proto udp", "not proto tcp", ""};
	const char *pr = protos[p->proto & 7];
	char dp[64] = "", sp[64] = "";

	if (p->dlo != 0 || p->dhi != 65535)
		snprintf(dp, sizeof(dp), "%sdst port >= %u and dst port <= %u", *pr ? " and " : "",
			 p->dlo, p->dhi);
	if (p->slo != 0 || p->shi != 65535)
		snprintf(sp, sizeof(sp), "%ssrc port >= %u and src port <= %u",
			 *pr || *dp ? " and " : "", p->slo, p->shi);
	snprintf(out, len, "%s%s%s", pr, dp, sp);
}

void flowmon_filter(const char *window, const struct flowmon_part *p, char *out, size_t len)
{
	char part[192];

	fm_part_text(p, part, sizeof(part));
	snprintf(out, len, "(%s)%s%s", window, *part ? " and " : "", part);
}

static int fm_key_dp_cmp(const void *x, const void *y)
{
	const struct flowmon_key *a = x, *b = y;
	return (a->dp > b->dp) - (a->dp < b->dp);
}

static int fm_key_sp_cmp(const void *x, const void *y)
{
	const struct flowmon_key *a = x, *b = y;
	return (a->sp > b->sp) - (a->sp < b->sp);
}

/* The ranges [lo, hi] (lo < hi) is cut into, following the sorted
 * values v (n of them, all in [lo, hi]): around a port half of them or
 * more hold (that port alone between the ranges either side of it), else
 * at their median; in halves without any.  Returns how many (2 or 3). */
static int fm_cut(uint16_t lo, uint16_t hi, const uint16_t *v, size_t n, uint16_t r[3][2])
{
	int k = 0;
	uint16_t cut;

	/* a port held by half the values or more holds the middle one or
	 * the one before it (n even) */
	for (size_t at = n / 2, i = 0; n > 0 && i < 2; at = (n - 1) / 2, i++) {
		size_t a = at, b = at;
		while (a > 0 && v[a - 1] == v[at])
			a--;
		while (b < n && v[b] == v[at])
			b++;
		if (2 * (b - a) < n)
			continue;
		uint16_t m = v[at];
		if (m > lo) {
			r[k][0] = lo;
			r[k++][1] = (uint16_t)(m - 1);
		}
		r[k][0] = r[k][1] = m;
		k++;
		if (m < hi) {
			r[k][0] = (uint16_t)(m + 1);
			r[k++][1] = hi;
		}
		return k;
	}
	if (n == 0)
		cut = (uint16_t)(lo + (hi - lo) / 2);
	else	/* both sides hold some of v */
		cut = v[n / 2] > v[0] ? (uint16_t)(v[n / 2] - 1) : v[n / 2];
	r[0][0] = lo;
	r[0][1] = cut;
	r[1][0] = (uint16_t)(cut + 1);
	r[1][1] = hi;
	return 2;
}

int flowmon_split(const struct flowmon_part *p, struct flowmon_key *keys, size_t n,
		  struct flowmon_part kids[3])
{
	uint16_t r[3][2], *v = NULL;
	size_t m = 0, count[3] = {0, 0, 0};
	int k;

	/* the keys of p only (a defence: its answer holds no other) */
	for (size_t i = 0; i < n; i++) {
		const struct flowmon_key *c = &keys[i];
		if ((c->cls & p->proto) && c->dp >= p->dlo && c->dp <= p->dhi && c->sp >= p->slo &&
		    c->sp <= p->shi)
			keys[m++] = *c;
	}
	if (p->proto != FLOWMON_TCP && p->proto != FLOWMON_UDP && p->proto != FLOWMON_OTHER) {
		uint8_t top = 0;
		size_t most = 0;
		for (size_t i = 0; i < m; i++)
			count[keys[i].cls == FLOWMON_TCP ? 0 : keys[i].cls == FLOWMON_UDP ? 1 : 2]++;
		for (int c = 0; c < 3; c++)
			if ((p->proto & (1 << c)) && (!top || count[c] > most)) {
				top = (uint8_t)(1 << c);
				most = count[c];
			}
		kids[0] = kids[1] = *p;
		kids[0].proto = top;
		kids[1].proto = (uint8_t)(p->proto & ~top);
		return 2;
	}
	bool dst = p->dlo < p->dhi;
	if (!dst && p->slo == p->shi)
		return 0;
	if (m && !(v = malloc(m * sizeof(*v))))
		m = 0;	/* out of memory: halves, as without keys */
	if (m)	/* keys may be NULL without any */
		qsort(keys, m, sizeof(*keys), dst ? fm_key_dp_cmp : fm_key_sp_cmp);
	for (size_t i = 0; i < m; i++)
		v[i] = dst ? keys[i].dp : keys[i].sp;
	k = dst ? fm_cut(p->dlo, p->dhi, v, m, r) : fm_cut(p->slo, p->shi, v, m, r);
	free(v);
	for (int i = 0; i < k; i++) {
		kids[i] = *p;
		if (dst) {
			kids[i].dlo = r[i][0];
			kids[i].dhi = r[i][1];
		} else {
			kids[i].slo = r[i][0];
			kids[i].shi = r[i][1];
		}
	}
	return k;
}

/* "src net A/L" for the subject or a peer prefix (nfdump's syntax; a
 * whole address as "host A"). */
static void fm_net(const char *side, const struct cache_prefix *p, char *out, size_t len)
{
	char text[64];

	cache_prefix_format(p, text, sizeof(text));
	char *slash = strchr(text, '/');
	if (p->len == 128 && slash)
		*slash = '\0';
	snprintf(out, len, "%s%s %s", side, p->len == 128 ? "host" : "net", text);
}

/* The window's own filter: the subject on one side and, with a peer, the
 * peer on the side plan_peer_of reads it from (dst when src lies in the
 * subject, else src): disjoint for disjoint peers. */
static void fm_window_filter(const struct cache_query *q, const struct plan_req *r, char *out,
			     size_t len)
{
	char ss[96], ds[96], sn[96], ps[96], pd[96];

	fm_net("", &q->subject, sn, sizeof(sn));
	if (!r->has_peer) {
		snprintf(out, len, "%s", sn);
		return;
	}
	fm_net("src ", &q->subject, ss, sizeof(ss));
	fm_net("dst ", &q->subject, ds, sizeof(ds));
	fm_net("src ", &r->peer, ps, sizeof(ps));
	fm_net("dst ", &r->peer, pd, sizeof(pd));
	snprintf(out, len, "(%s and %s) or (not %s and %s and %s)", ss, pd, ss, ds, ps);
}

/* ---- times ------------------------------------------------------------------- */

/* UTC ms to "YYYY-MM-DD HH:MM" in the appliance's zone: 0, or nfd_tz_wall's
 * error. */
static int fm_time_text(const struct nfd_tz *tz, int64_t ms, char *out, size_t len)
{
	int64_t wall;
	int rc = nfd_tz_wall(tz, ms / 1000, &wall);
	struct tm tm;
	time_t t;

	if (rc)
		return rc;
	t = (time_t)wall;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M", &tm);
	return 0;
}

/* The number in the n digits at s (no sign, no space), or -1. */
static int fm_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int flowmon_parse_time(const struct nfd_tz *tz, const char *s, int64_t *out)
{
	int y, mo, da, h, mi, se = 0, ms = 0;
	int64_t first, second;
	enum nfd_tz_fold fold;

	/* "YYYY-MM-DD HH:MM" exactly: digits where digits go (sscanf's %d
	 * took signs and spaces, and "-1:-5" for a time) */
	if (!s || strnlen(s, 16) < 16 || s[4] != '-' || s[7] != '-' || s[10] != ' ' ||
	    s[13] != ':')
		return -EINVAL;
	y = fm_digits(s, 4);
	mo = fm_digits(s + 5, 2);
	da = fm_digits(s + 8, 2);
	h = fm_digits(s + 11, 2);
	mi = fm_digits(s + 14, 2);
	s += 16;
	if (*s == ':') {
		se = fm_digits(s + 1, 2);
		s += se < 0 ? 1 : 3;
		if (*s == '.') {
			int digits = 0;
			for (s++; *s >= '0' && *s <= '9'; s++)
				if (digits < 3)
					ms = ms * 10 + (*s - '0'), digits++;
			if (!digits)
				return -EINVAL;
			while (digits++ < 3)
				ms *= 10;
		}
	}
	if (*s || y < 1970 || mo < 1 || mo > 12 || da < 1 || da > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || se < 0 || se > 60)
		return -EINVAL;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da, .tm_hour = h,
			.tm_min = mi, .tm_sec = se};
	int64_t wall = (int64_t)timegm(&tm);	/* the wall time on a UTC-like scale */
	/* a repeated hour's time: the earlier (nothing in a row tells them
	 * apart; README, "Flowmon") */
	if (nfd_tz_utc(tz, wall, &first, &second, &fold) || first < 0)
		return -EINVAL;
	*out = first * 1000 + ms;
	return 0;
}

/* ---- rows -------------------------------------------------------------------- */

/* The string of the first key of names that o has ("N/A" and "" are none). */
static const char *fm_val(const cJSON *o, const char *const *names)
{
	for (; *names; names++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *names);
		if (cJSON_IsString(v) && v->valuestring[0] && strcmp(v->valuestring, "N/A") != 0)
			return v->valuestring;
	}
	return NULL;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A whole decimal number in [0, hi]: 0, else -EINVAL. */
static int fm_uint(const char *s, int64_t hi, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (hi - (*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

/* A count: exact (its digits), or scaled ("1.3 M": *scaled set, -1). */
static int64_t fm_count(const char *s, bool *scaled)
{
	int64_t v;

	if (!s)
		return -1;
	if (fm_uint(s, (int64_t)FETCH_EXACT_MAX, &v) == 0)
		return v;
	*scaled = true;
	return -1;
}

static int32_t fm_proto(const char *s)
{
	static const struct {
		const char *name;
		int32_t num;
	} names[] = {{"TCP", 6}, {"UDP", 17}, {"ICMP", 1}, {"ICMP6", 58}, {"IPV6-ICMP", 58},
		     {"ICMPV6", 58}, {"GRE", 47}, {"ESP", 50}, {"AH", 51}, {"SCTP", 132},
		     {"IGMP", 2}};
	int64_t v;

	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].num;
	return fm_uint(s, 255, &v) == 0 ? (int32_t)v : -1;
}

/* nfdump's flags text ("UAPRSF" letters, '.' for a flag not set). */
static int32_t fm_flags(const char *s)
{
	static const char order[] = "UAPRSF";
	int32_t f = 0;

	if (!s || strlen(s) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (s[i] == order[i])
			f |= 1 << (5 - i);
		else if (s[i] != '.')
			return -1;
	}
	return f;
}

/* Append "key":"text" (escaped) to extra when it fits whole. */
static void fm_extra_add(char *extra, size_t len, const char *key, const char *text)
{
	char esc[96];
	size_t have = strlen(extra), n;

	cache_text_escape(esc, sizeof(esc), text, strlen(text));
	for (char *c = esc; *c; c++)
		if (*c == '"' || *c == '\\')
			*c = '?';
	n = strlen(key) + strlen(esc) + 6;
	if (have + n + 2 > len)
		return;
	if (!have)
		snprintf(extra, len, "{\"%s\":\"%s\"}", key, esc);
	else
		snprintf(extra + have - 1, len - have + 1, ",\"%s\":\"%s\"}", key, esc);
}

int flowmon_decode_row(const cJSON *o, const struct nfd_tz *tz, bool sample, struct flow_rec *f,
		       bool *inexact, char *why, size_t len)
{
	const char *ts = fm_val(o, KEYS("ts")), *te = fm_val(o, KEYS("te"));
	const char *td = fm_val(o, KEYS("td")), *pr = fm_val(o, KEYS("pr"));
	const char *sa = fm_val(o, KEYS("sa", "srcip")), *da = fm_val(o, KEYS("da", "dstip"));
	const char *sp = fm_val(o, KEYS("sp", "srcport:p", "srcport"));
	const char *dp = fm_val(o, KEYS("dp", "dstport:p", "dstport"));
	const char *pkt = fm_val(o, KEYS("pkt")), *byt = fm_val(o, KEYS("byt"));
	cJSON tmp;
	int64_t v;
	bool sp_scaled = false, by_scaled = false;

	memset(f, 0, sizeof(*f));
	*inexact = false;
	if (!cJSON_IsObject(o)) {
		snprintf(why, len, "a row that is not an object");
		return -EINVAL;
	}
	if (flowmon_parse_time(tz, ts, &f->start_ms)) {
		snprintf(why, len, "a row without a valid ts");
		return -EINVAL;
	}
	memset(&tmp, 0, sizeof(tmp));
	tmp.type = cJSON_String;
	tmp.valuestring = (char *)(sa ? sa : "");
	if (!sa || fetch_json_addr(&tmp, f->src)) {
		snprintf(why, len, "a row without a valid source address (sa or srcip)");
		return -EINVAL;
	}
	tmp.valuestring = (char *)(da ? da : "");
	if (!da || fetch_json_addr(&tmp, f->dst)) {
		snprintf(why, len, "a row without a valid destination address (da or dstip)");
		return -EINVAL;
	}
	if (sample)
		return 0;	/* what the planner reads of a full answer */
	f->end_ms = f->start_ms;
	if (te && flowmon_parse_time(tz, te, &v) == 0 && v >= f->start_ms) {
		f->end_ms = v;
	} else if (td) {
		double sec = strtod(td, NULL);
		if (sec > 0 && sec < 1e9)
			f->end_ms = f->start_ms + (int64_t)(sec * 1000 + 0.5);
	}
	f->proto = fm_proto(pr);
	f->sport = f->dport = f->icmp_type = f->icmp_code = -1;
	if (f->proto == 1 || f->proto == 58) {
		unsigned t, c;
		char end;
		/* ICMP's "TYPE.CODE" in dp (or the number type * 256 + code) */
		if (dp && sscanf(dp, "%u.%u%c", &t, &c, &end) == 2 && t < 256 && c < 256) {
			f->icmp_type = (int32_t)t;
			f->icmp_code = (int32_t)c;
		} else if (dp && fm_uint(dp, 65535, &v) == 0) {
			f->icmp_type = (int32_t)(v >> 8);
			f->icmp_code = (int32_t)(v & 255);
		}
	} else {
		if (sp && fm_uint(sp, 65535, &v) == 0)
			f->sport = (int32_t)v;
		if (dp && fm_uint(dp, 65535, &v) == 0)
			f->dport = (int32_t)v;
	}
	f->tcp_flags = f->proto == 6 ? fm_flags(fm_val(o, KEYS("flg"))) : -1;
	f->pkts = fm_count(pkt, &sp_scaled);
	f->bytes = fm_count(byt, &by_scaled);
	f->in_if = fm_uint(fm_val(o, KEYS("in")), 4294967295LL, &v) == 0 ? v : -1;
	f->out_if = fm_uint(fm_val(o, KEYS("out")), 4294967295LL, &v) == 0 ? v : -1;
	f->src_as = fm_uint(fm_val(o, KEYS("sas")), 4294967295LL, &v) == 0 ? v : -1;
	f->dst_as = fm_uint(fm_val(o, KEYS("das")), 4294967295LL, &v) == 0 ? v : -1;
	f->exporter = f->app = f->sampling = -1;
	if (sp_scaled)
		fm_extra_add(f->extra, sizeof(f->extra), "pkt", pkt);
	if (by_scaled)
		fm_extra_add(f->extra, sizeof(f->extra), "byt", byt);
	const char *ra = fm_val(o, KEYS("ra"));
	if (ra)
		fm_extra_add(f->extra, sizeof(f->extra), "exporter", ra);
	const char *fl = fm_val(o, KEYS("fl"));
	if (fl && strcmp(fl, "1") != 0)
		fm_extra_add(f->extra, sizeof(f->extra), "flows", fl);
	*inexact = sp_scaled || by_scaled;
	fetch_community_id(f, 0, f->community_id);
	return 0;
}

/* The id of a row: SHA-256 over its fields, the first 16 bytes in hex.
 * -ENOMEM when the digest fails. */
static int fm_row_id(struct flow_rec *f)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char text[512], a[64], b[64];

	a[cache_addr_text(f->src, a)] = '\0';
	b[cache_addr_text(f->dst, b)] = '\0';
	int n = snprintf(text, sizeof(text), "fm1|%lld|%lld|%d|%s|%d|%s|%d|%d|%d|%d|%lld|%lld|"
			 "%lld|%lld|%lld|%lld|%s", (long long)f->start_ms, (long long)f->end_ms,
			 f->proto, a, f->sport, b, f->dport, f->icmp_type, f->icmp_code,
			 f->tcp_flags, (long long)f->pkts, (long long)f->bytes, (long long)f->in_if,
			 (long long)f->out_if, (long long)f->src_as, (long long)f->dst_as, f->extra);
	if (n < 0 || (size_t)n >= sizeof(text) ||
	    EVP_Digest(text, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
		return -ENOMEM;
	for (int i = 0; i < 16; i++) {
		f->id[2 * i] = hex[md[i] >> 4];
		f->id[2 * i + 1] = hex[md[i] & 15];
	}
	f->id[32] = '\0';
	return 0;
}

static int fm_id_cmp(const void *x, const void *y)
{
	const struct flow_rec *const *a = x, *const *b = y;
	int c = strcmp((*a)->id, (*b)->id);
	return c ? c : *a < *b ? -1 : *a > *b;
}

/* flowmon_ids' numbering of rows whose ids are their hashes: 0, or
 * -ENOMEM. */
static int fm_ids_number(struct flow_rec *recs, size_t n)
{
	struct flow_rec **v;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = &recs[i];
	qsort(v, n, sizeof(*v), fm_id_cmp);
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && strcmp(v[hi]->id, v[lo]->id) == 0; hi++)
			;
		for (size_t j = lo + 1; j < hi; j++)	/* in the answer's order */
			snprintf(v[j]->id + 32, CACHE_ID_MAX + 1 - 32, ".%zu", j - lo + 1);
	}
	free(v);
	return 0;
}

int flowmon_ids(struct flow_rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fm_row_id(&recs[i]))
			return -ENOMEM;
	return fm_ids_number(recs, n);
}

/* ---- the exchange ------------------------------------------------------------- */

/* The listing of the exchange's current part, into a (GET, or a POST form
 * in w->body when the URL would be long).  0, or -E2BIG. */
static int fm_listing(struct driver *d, struct fm_x *x, struct driver_win *w, struct http_ask *a)
{
	char filter[1024], search[2400], chans[FM_CHANNELS_MAX * (FM_NAME_MAX + 3)];
	char es[3 * sizeof(search)], eo[3 * sizeof(FM_OUTPUT)];
	size_t used = 0;
	int n;

	flowmon_filter(x->filter, x->probing ? &x->pcur : &x->cur, filter, sizeof(filter));
	for (size_t i = 0; i < d->nchannels; i++)
		used += (size_t)snprintf(chans + used, sizeof(chans) - used, "%s\"%s\"", i ? "," : "",
					 d->channels[i]);
	n = snprintf(search, sizeof(search), "{\"from\":\"%s\",\"to\":\"%s\",\"profile\":\"%s\","
		     "\"channels\":[%s],\"filter\":\"%s\"}", x->probing ? x->pfrom : x->from,
		     x->probing ? x->pto : x->to, d->profile, chans, filter);
	if (n < 0 || (size_t)n >= sizeof(search) || !fetch_form_encode(search, es, sizeof(es)) ||
	    !fetch_form_encode(FM_OUTPUT, eo, sizeof(eo)))
		return -E2BIG;
	memset(a, 0, sizeof(*a));
	n = snprintf(a->url, sizeof(a->url), "%s/rest/fmc/analysis/flows?search=%s&showonly=%u"
		     "&output=%s", d->base, es, d->limit, eo);
	if (n > 0 && n < FM_URL_MAX)
		return 0;
	n = snprintf(w->body, sizeof(w->body), "search=%s&showonly=%u&output=%s", es, d->limit,
		     eo);
	if (n < 0 || (size_t)n >= sizeof(w->body))
		return -E2BIG;
	snprintf(a->url, sizeof(a->url), "%s/rest/fmc/analysis/flows", d->base);
	a->method = "POST";
	a->body = w->body;
	a->content_type = "application/x-www-form-urlencoded";
	return 0;
}

static void fm_x_free(struct fm_x *x)
{
	if (x) {
		free(x->acc.recs);
		free(x->keys);
		free(x->parts);
		free(x);
	}
}

static void fm_window_drop(struct driver *d, struct driver_win *w)
{
	(void)d;
	fm_x_free(w->priv);
	w->priv = NULL;
}

static int fm_window_first(struct driver *d, const struct cache_query *q, const struct plan_req *r,
			   uint32_t limit, struct driver_win *w, struct http_ask *a)
{
	struct fm_x *x = calloc(1, sizeof(*x));
	int rc;

	(void)limit;
	if (!x)
		return -ENOMEM;
	x->ws = r->start - ((r->start % FM_SLOT_MS) + FM_SLOT_MS) % FM_SLOT_MS;
	x->we = r->end + (FM_SLOT_MS - ((r->end % FM_SLOT_MS) + FM_SLOT_MS) % FM_SLOT_MS) %
			 FM_SLOT_MS;
	int64_t last = x->we + d->reach_ms - 1;
	last -= ((last % FM_SLOT_MS) + FM_SLOT_MS) % FM_SLOT_MS;
	/* one slot more: right whether `to`'s slot is read or not; the
	 * probe starts at `to`'s slot (read twice when `to` is inclusive:
	 * fm_late tells its rows apart) */
	x->read_end_ms = last + FM_SLOT_MS;
	if (fm_time_text(d->tz, x->ws, x->from, sizeof(x->from)) ||
	    fm_time_text(d->tz, last + FM_SLOT_MS, x->to, sizeof(x->to)) ||
	    fm_time_text(d->tz, last + FM_SLOT_MS, x->pfrom, sizeof(x->pfrom)) ||
	    fm_time_text(d->tz, last + 2 * FM_SLOT_MS, x->pto, sizeof(x->pto))) {
		free(x);
		return -ERANGE;
	}
	fm_window_filter(q, r, x->filter, sizeof(x->filter));
	x->single = x->we - x->ws <= FM_SLOT_MS;
	x->cur = (struct flowmon_part){.proto = FLOWMON_ANY, .dlo = 0, .dhi = 65535, .slo = 0,
				      .shi = 65535};
	rc = fm_listing(d, x, w, a);
	if (rc) {
		free(x);
		return rc;
	}
	w->priv = x;
	w->stage = FM_LIST;
	w->started_ms = mono_ms();
	return 0;
}

/* The listing's id from {"id": N}: 0, or -EBADMSG. */
static int fm_listing_id(const struct http_resp *resp, char *id, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->len);
	int64_t v;
	int rc = -EBADMSG;

	if (root && fetch_json_int(cJSON_GetObjectItemCaseSensitive(root, "id"), 0, FETCH_EXACT_MAX,
				   &v) == 0) {
		snprintf(id, len, "%lld", (long long)v);
		rc = 0;
	}
	cJSON_Delete(root);
	return rc;
}

/* A decoded row's key for flowmon_split, as nfdump's filter reads it:
 * false when its protocol or ports are unknown. */
static bool fm_key_of(const struct flow_rec *f, struct flowmon_key *k)
{
	if (f->proto < 0)
		return false;
	k->cls = f->proto == 6 ? FLOWMON_TCP : f->proto == 17 ? FLOWMON_UDP : FLOWMON_OTHER;
	if (f->proto == 1 || f->proto == 58) {
		if (f->icmp_type < 0)
			return false;
		k->dp = (uint16_t)(f->icmp_type * 256 + f->icmp_code);
		k->sp = 0;
		return true;
	}
	if (f->dport < 0 || f->sport < 0)
		return false;
	k->dp = (uint16_t)f->dport;
	k->sp = (uint16_t)f->sport;
	return true;
}

/* The rows of a result into x->acc (those whose start lies in the
 * window; of an answer of sample_at rows or more, only what a sample
 * needs, see struct decoded); *answered the rows of the listing.  Of a
 * full answer (limit rows), every row's key goes to x->keys and x->own
 * counts those kept, for fm_part_full.  0, -EBADMSG with err, -ENOMEM. */
static int fm_take_rows(struct driver *d, struct fm_x *x, const struct http_resp *resp,
			size_t limit, size_t sample_at, size_t *answered, char *err)
{
	cJSON *root = fetch_arena_parse(resp->body ? resp->body : "[]", resp->body ? resp->len : 2);
	struct fetch_cuts cuts = {0};
	const cJSON *it;
	bool full;
	int rc = 0;

	*answered = 0;
	x->nkeys = x->own = 0;
	x->hashed = false;	/* rows are added: no longer all hashed */
	x->ans_rejected = x->acc.rejected;
	x->ans_inexact = x->acc.inexact;
	if (!cJSON_IsArray(root)) {
		snprintf(err, FETCH_ERRLEN, "a result that is not a JSON array of rows (%zu bytes)",
			 resp->len);
		rc = -EBADMSG;
		goto out;
	}
	*answered = (size_t)cJSON_GetArraySize(root);
	if (limit && *answered > limit) {
		snprintf(err, FETCH_ERRLEN, "a result of %zu rows, more than showonly=%zu", *answered,
			 limit);
		rc = -EBADMSG;
		goto out;
	}
	full = *answered >= limit;
	if ((rc = fetch_json_cuts(resp->body, resp->len, root, &cuts)))
		goto out;
	if (x->acc.n + *answered > x->cap) {
		size_t cap = x->acc.n + *answered + 64;
		struct flow_rec *nr = realloc(x->acc.recs, cap * sizeof(*nr));
		if (!nr) {
			rc = -ENOMEM;
			goto out;
		}
		x->acc.recs = nr;
		x->cap = cap;
	}
	if (full && !x->keys && !(x->keys = malloc(*answered * sizeof(*x->keys)))) {
		rc = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		struct flow_rec *f = &x->acc.recs[x->acc.n];
		bool inexact;
		char why[160];
		/* a full answer's rows whole: their ports guide its split */
		if (fetch_json_cut(&cuts, it) ||
		    flowmon_decode_row(it, d->tz, !full && sample_at && *answered >= sample_at, f,
				       &inexact, why, sizeof(why))) {
			if (!x->acc.rejected++)
				snprintf(x->acc.why, sizeof(x->acc.why), "%s",
					 fetch_json_cut(&cuts, it) ? "a row holding a NUL" : why);
			continue;
		}
		if (full && x->nkeys < *answered && fm_key_of(f, &x->keys[x->nkeys]))
			x->nkeys++;
		if (f->start_ms < x->ws || f->start_ms >= x->we)
			continue;	/* another window's flow */
		x->acc.inexact += inexact;
		x->acc.n++;
		x->own += full;
	}
out:
	fetch_cuts_free(&cuts);
	fetch_arena_release(root);
	return rc;
}

/* The exchange's end: its rows handed to out, numbered (w->priv freed). */
static int fm_finish(struct driver_win *w, struct fm_x *x, bool full, size_t limit,
		     struct decoded *out, char *err)
{
	size_t sample_at = out->sample_at;
	int rc = x->hashed ? fm_ids_number(x->acc.recs, x->acc.n)
			   : flowmon_ids(x->acc.recs, x->acc.n);

	if (rc) {
		snprintf(err, FETCH_ERRLEN, "out of memory numbering the rows");
		return rc;
	}
	memset(out, 0, sizeof(*out));
	out->recs = x->acc.recs;
	out->n = x->acc.n;
	out->rejected = x->acc.rejected;
	out->inexact = x->acc.inexact;
	snprintf(out->why, sizeof(out->why), "%s", x->acc.why);
	/* the cap holds for one listing: the most one answered (a split's
	 * parts were each whole), the cap when one was full */
	out->answered = full ? limit : x->most;
	out->sample_at = sample_at;
	out->sampled = sample_at && out->answered >= sample_at;
	if (x->split && !full) {
		out->parts = x->parts;	/* the window was asked in parts */
		out->nparts = x->nparts;
		x->parts = NULL;
	}
	x->acc.recs = NULL;
	fm_x_free(x);
	w->priv = NULL;
	return 0;
}

/* The next poll of listing w->id, after the backoff (fast: none). */
static void fm_poll(struct driver *d, struct driver_win *w, bool fast, struct http_ask *a)
{
	int64_t delay = fast ? FM_POLL_FAST_MS : FM_POLL_FIRST_MS;

	for (unsigned i = 0; i < w->polls && delay < FM_POLL_MAX_MS && !fast; i++)
		delay += delay / 2;
	memset(a, 0, sizeof(*a));
	a->delay_ms = delay < FM_POLL_MAX_MS ? delay : FM_POLL_MAX_MS;
	w->polls++;
	w->stage = FM_POLL;
	snprintf(a->url, sizeof(a->url), "%s/rest/fmc/analysis/results/%s", d->base, w->id);
}

/* The next listing of the exchange (the current part again, or the next
 * part). */
static int fm_relist(struct driver *d, struct fm_x *x, struct driver_win *w, struct http_ask *a,
		     char *err)
{
	int rc = fm_listing(d, x, w, a);

	if (rc) {
		snprintf(err, FETCH_ERRLEN, "a listing's filter does not fit a request");
		return rc;
	}
	w->stage = FM_LIST;
	w->polls = 0;
	return 1;
}

static int fm_idp_cmp(const void *x, const void *y)
{
	const struct flow_rec *const *a = x, *const *b = y;
	return strcmp((*a)->id, (*b)->id);
}

/*
 * The lateness check of the current part: acc's rows [part_base, before)
 * are its answer, [before, acc.n) the probe's rows that started in the
 * window.  A row of the probe the answer lacks (counted by identity, so
 * that the slot both read when `to` is inclusive adds nothing) was
 * exported after the slots read.  Returns how many such rows (*first: the
 * earliest start among them), or -ENOMEM.
 */
static long fm_late(struct fm_x *x, size_t before, int64_t *first)
{
	size_t nm = before - x->part_base, np = x->acc.n - before;
	struct flow_rec **vm = NULL, **vp = NULL;
	long late = -ENOMEM;

	if (np == 0)
		return 0;
	vm = malloc((nm ? nm : 1) * sizeof(*vm));
	vp = malloc(np * sizeof(*vp));
	if (!vm || !vp)
		goto out;
	for (size_t i = 0; i < nm; i++)
		if (fm_row_id(vm[i] = &x->acc.recs[x->part_base + i]))
			goto out;
	/* the rows the window keeps, when the probe checked them all:
	 * fm_finish only numbers them */
	x->hashed = x->part_base == 0;
	for (size_t i = 0; i < np; i++)
		if (fm_row_id(vp[i] = &x->acc.recs[before + i]))
			goto out;
	qsort(vm, nm, sizeof(*vm), fm_idp_cmp);
	qsort(vp, np, sizeof(*vp), fm_idp_cmp);
	late = 0;
	for (size_t i = 0, j = 0, hi; i < np; i = hi) {
		size_t seen = 0;
		for (hi = i + 1; hi < np && strcmp(vp[hi]->id, vp[i]->id) == 0; hi++)
			;
		while (j < nm && strcmp(vm[j]->id, vp[i]->id) < 0)
			j++;
		while (j < nm && strcmp(vm[j]->id, vp[i]->id) == 0) {
			j++;
			seen++;
		}
		if (hi - i > seen) {
			if (!late || vp[i]->start_ms < *first)
				*first = vp[i]->start_ms;
			late += (long)(hi - i - seen);
		}
	}
out:
	free(vm);
	free(vp);
	return late;
}

/* The probe's answers (rows in acc from probe_base on), all parts of it
 * in: 0 when no row came late (the probe's rows dropped), -ERANGE with
 * err naming the earliest late flow and the active_timeout it needs,
 * -ENOMEM. */
static int fm_probe_judge(struct driver *d, struct fm_x *x, char *err)
{
	int64_t first = 0;
	long late = fm_late(x, x->probe_base, &first);

	x->acc.n = x->probe_base;
	x->acc.rejected = x->probe_rejected;	/* the part's answer counted them */
	x->acc.inexact = x->probe_inexact;
	x->probing = false;
	if (late < 0) {
		snprintf(err, FETCH_ERRLEN, "out of memory comparing the lateness probe's rows");
		return (int)late;
	}
	if (late == 0)
		return 0;
	char when[24] = "?";
	fm_time_text(d->tz, first, when, sizeof(when));
	snprintf(err, FETCH_ERRLEN, "%ld flow%s of this window exported more than active_timeout=%lld "
		 "s after its start (the first started %s, appliance time, and was exported at "
		 "least %lld s later): raise -o active_timeout (the exporters' active timeout plus "
		 "the collector's delay)", late, late == 1 ? "" : "s",
		 (long long)(d->reach_ms / 1000), when,
		 (long long)((x->read_end_ms - first) / 1000));
	return -ERANGE;
}

/* The lateness probe of acc's rows from part_base on: part p's filter
 * over the slots after those read. */
static int fm_probe(struct driver *d, struct fm_x *x, struct driver_win *w, struct http_ask *a,
		    const struct flowmon_part *p, char *err)
{
	x->probing = true;
	x->pcur = *p;
	x->npstack = 0;
	x->probe_base = x->acc.n;
	x->probe_rejected = x->acc.rejected;
	x->probe_inexact = x->acc.inexact;
	x->reasks = 0;
	return fm_relist(d, x, w, a, err);
}

/* The next part of the exchange; once a window split into parts has
 * them all, one probe for the whole window (its parts are disjoint and
 * cover it: a probe for each would cost a listing each); then its end. */
static int fm_next_part(struct driver *d, struct fm_x *x, struct driver_win *w,
			struct http_ask *a, size_t limit, struct decoded *out, char *err)
{
	static const struct flowmon_part whole = {FLOWMON_ANY, 0, 65535, 0, 65535};

	if (x->nstack == 0 && x->split && !x->whole_probe) {
		x->whole_probe = true;
			x->part_base = 0;
		return fm_probe(d, x, w, a, &whole, err);
	}
	if (x->nstack == 0)
		return fm_finish(w, x, false, limit, out, err);
	x->cur = x->stack[--x->nstack];
	x->reasks = 0;
	x->part_base = x->acc.n;
	x->part_rejected = x->acc.rejected;
	x->part_inexact = x->acc.inexact;
	return fm_relist(d, x, w, a, err);
}

/*
 * A full answer of the current part: split into its disjoint parts (its
 * rows dropped: the parts bring them again), else the window is full
 * (the planner's to split by time or peer, or a gap).  A part is split
 * when the window is one slot (time cannot be split further), when the
 * window's parts are being asked already, or when fewer than half the
 * rows answered started in the window: those that fill it were exported
 * in its reach, later slots that every part of the window split by time
 * would read again (the scan day's hour before the scan).
 */
static int fm_part_full(struct driver *d, struct fm_x *x, struct driver_win *w,
			struct http_ask *a, size_t limit, struct decoded *out, char *err)
{
	struct flowmon_part kids[3];
	bool by_filter = x->single || x->split || x->own * 2 < x->nkeys;
	int nk = by_filter ? flowmon_split(&x->cur, x->keys, x->nkeys, kids) : 0;

	if (nk == 0 || x->nstack + (size_t)nk > FM_STACK_MAX)
		return fm_finish(w, x, true, limit, out, err);
	x->acc.n = x->part_base;
	x->acc.rejected = x->part_rejected;	/* its parts count them again */
	x->acc.inexact = x->part_inexact;
	if (!x->split) {
		/* the first split: a note so far is the whole window's, whose
		 * probe was full and could not be split (in a split window only
		 * a part's full answer comes here, before any note of it) */
		x->plen = 0;
		x->nparts = 0;
	}
	x->probing = false;
	for (int i = nk - 1; i >= 0; i--)
		x->stack[x->nstack++] = kids[i];
	x->split = true;
	return fm_next_part(d, x, w, a, limit, out, err);
}

/* Note the current part, answered whole (answered rows, acc's from
 * part_base on kept), for decoded.parts: 0, or -ENOMEM. */
static int fm_part_note(struct fm_x *x, size_t answered)
{
	char text[256];
	int n;

	fm_part_text(&x->cur, text, sizeof(text));
	n = snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%zu/%zu",
		     *text ? ": " : "the whole window: ", x->acc.n - x->part_base, answered);
	if (n < 0)
		return -EINVAL;
	size_t need = x->plen + strlen(text) + 2;
	if (need > x->pcap) {
		size_t cap = need * 2;
		char *np = realloc(x->parts, cap);
		if (!np)
			return -ENOMEM;
		x->parts = np;
		x->pcap = cap;
	}
	x->plen += (size_t)sprintf(x->parts + x->plen, "%s%s", x->nparts ? "\n" : "", text);
	x->nparts++;
	return 0;
}

/*
 * A full answer of a part of the probe: split into its disjoint parts,
 * its rows dropped (one more listing each, where splitting the part it
 * checks would ask the part's rows again, with a probe each: the slot
 * right after a window before a burst holds the burst).  A probe part
 * that cannot be split says nothing of the rows it left out: the part
 * it checks is split instead (fm_part_full), as any full answer.
 */
static int fm_probe_full(struct driver *d, struct fm_x *x, struct driver_win *w,
			 struct http_ask *a, size_t limit, size_t before, struct decoded *out,
			 char *err)
{
	struct flowmon_part kids[3];
	int nk = flowmon_split(&x->pcur, x->keys, x->nkeys, kids);

	if ((nk == 0 || x->npstack + (size_t)nk > FM_STACK_MAX) && x->whole_probe) {
		/* the window's probe says nothing of what it left out: the
		 * window is full, the planner's to split */
		x->acc.n = x->probe_base;
		return fm_finish(w, x, true, limit, out, err);
	}
	if (nk == 0 || x->npstack + (size_t)nk > FM_STACK_MAX)
		return fm_part_full(d, x, w, a, limit, out, err);
	x->acc.n = before;
	x->acc.rejected = x->ans_rejected;
	x->acc.inexact = x->ans_inexact;
	for (int i = nk - 1; i >= 0; i--)
		x->pstack[x->npstack++] = kids[i];
	x->pcur = x->pstack[--x->npstack];
	x->reasks = 0;
	return fm_relist(d, x, w, a, err);
}

/* The current part (or a part of its probe) answered 'answered' rows,
 * acc's from 'before' on: next, its probe, the probe's next part, the
 * next part, or the end. */
static int fm_answered(struct driver *d, struct fm_x *x, struct driver_win *w,
		       struct http_ask *a, size_t answered, size_t before, struct decoded *out,
		       char *err)
{
	size_t limit = out->limit ? out->limit : d->limit;
	int rc;

	if (x->probing) {
		if (answered >= limit)
			return fm_probe_full(d, x, w, a, limit, before, out, err);
		if (x->npstack) {
			x->pcur = x->pstack[--x->npstack];
			x->reasks = 0;
			return fm_relist(d, x, w, a, err);
		}
		if ((rc = fm_probe_judge(d, x, err)))
			return rc;
		return fm_next_part(d, x, w, a, limit, out, err);
	}
	if (answered >= limit)
		return fm_part_full(d, x, w, a, limit, out, err);
	if (answered > x->most)
		x->most = answered;
	if ((rc = fm_part_note(x, answered))) {
		snprintf(err, FETCH_ERRLEN, "out of memory noting the window's parts");
		return rc;
	}
	/* a sample: no probe; a part of a split window: the window's probe
	 * once every part is in */
	if ((out->sample_at && answered >= out->sample_at) || x->split)
		return fm_next_part(d, x, w, a, limit, out, err);
	/* the window answered whole: its lateness probe */
	return fm_probe(d, x, w, a, &x->cur, err);
}

/* The state of result 'id' in the list of results (an array of
 * {"id", "state"}): *state 0, 1 or 2, or -1 when it is not listed.
 * 0, or -EBADMSG with err. */
static int fm_result_state(const struct http_resp *resp, const char *id, int *state, char *err)
{
	cJSON *root = cJSON_ParseWithLength(resp->body ? resp->body : "", resp->len);
	const cJSON *it;
	int64_t want = strtoll(id, NULL, 10), v, st;
	int rc = 0;

	*state = -1;
	if (resp->status != 200 || !cJSON_IsArray(root)) {
		snprintf(err, FETCH_ERRLEN, "the list of results: HTTP %ld, %s", resp->status,
			 resp->status == 200 ? "not a JSON array" : "not 200");
		rc = resp->status == 200 ? -EBADMSG : -EAGAIN;
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		if (fetch_json_int(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, FETCH_EXACT_MAX,
				   &v) || v != want)
			continue;
		/* no state: finished (the field is optional, G10 p.45) */
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "state");
		*state = 1;
		if (s && (fetch_json_int(s, 0, 2, &st) == 0))
			*state = (int)st;
		break;
	}
out:
	cJSON_Delete(root);
	return rc;
}

static int fm_window_next(struct driver *d, const struct http_resp *resp, struct driver_win *w,
			  struct http_ask *a, struct decoded *out, char *err)
{
	struct fm_x *x = w->priv;
	size_t limit = out->limit ? out->limit : d->limit, answered;
	int rc;

	if (!x) {
		snprintf(err, FETCH_ERRLEN, "an exchange without its notes");
		return -EAGAIN;
	}
	if (w->stage == FM_LIST) {
		if (fm_listing_id(resp, w->id, sizeof(w->id))) {
			snprintf(err, FETCH_ERRLEN, "a listing's answer without an id (HTTP %ld)",
				 resp->status);
			return -EBADMSG;
		}
		w->polls = 0;
		fm_poll(d, w, x->reasks > 0, a);
		return 1;
	}
	if (w->stage == FM_CHECK) {
		/* the list of results, after a 204: the result finished there
		 * is one without rows; absent, it was forgotten */
		int state = -1;
		if ((rc = fm_result_state(resp, w->id, &state, err)))
			return rc;
		if (state == 0) {
			fm_poll(d, w, false, a);	/* computing again: unheard of */
			return 1;
		}
		if (state == 2) {
			snprintf(err, FETCH_ERRLEN, "the appliance says search %s failed (state 2 "
				 "in /rest/fmc/analysis/results)", w->id);
			return -EAGAIN;
		}
		if (state < 0) {
			/* forgotten: asked again, polled without backing off, up
			 * to FM_REASKS times; then the window fails (retried, at
			 * last reported): never taken as no rows */
			if (x->reasks++ == FM_REASKS) {
				snprintf(err, FETCH_ERRLEN, "result %s answered 204 and is not among "
					 "the appliance's results, %d times: forgotten before it "
					 "was read", w->id, FM_REASKS + 1);
				return -EAGAIN;
			}
			return fm_relist(d, x, w, a, err);
		}
		return fm_answered(d, x, w, a, 0, x->acc.n, out, err);
	}
	if (resp->status == 202) {
		if (mono_ms() - w->started_ms > FM_DEADLINE_MS) {
			snprintf(err, FETCH_ERRLEN, "result %s was still being computed after %d s",
				 w->id, FM_DEADLINE_MS / 1000);
			return -ETIMEDOUT;
		}
		fm_poll(d, w, x->reasks > 0, a);
		return 1;
	}
	if (resp->status == 204) {
		/* no rows, or a result the appliance forgot (or never knew):
		 * the list of its results tells (G10 p.65-66) */
		memset(a, 0, sizeof(*a));
		snprintf(a->url, sizeof(a->url), "%s/rest/fmc/analysis/results", d->base);
		w->stage = FM_CHECK;
		return 1;
	}
	if (resp->status != 200) {
		snprintf(err, FETCH_ERRLEN, "result %s: HTTP %ld, not 200, 202 or 204", w->id,
			 resp->status);
		return -EBADMSG;
	}
	size_t before = x->acc.n;
	if ((rc = fm_take_rows(d, x, resp, limit, x->probing ? 0 : out->sample_at, &answered,
			       err)))
		return rc;
	return fm_answered(d, x, w, a, answered, before, out, err);
}

/* The appliance's error body: a ValidationResult's first fields and
 * messages (G10 p.12-13: a 405 names the parameter), OAuth's
 * error_description or error, or a message. */
static void fm_error_text(struct driver *d, const struct http_resp *resp, char *buf, size_t len)
{
	cJSON *root = fetch_error_json(resp);
	const cJSON *vr = root ? cJSON_GetObjectItemCaseSensitive(root, "validationResults") : NULL;
	const cJSON *m = NULL, *it;

	(void)d;
	buf[0] = '\0';
	if (cJSON_IsArray(vr)) {
		char text[400] = "";
		size_t used = 0;
		cJSON_ArrayForEach(it, vr) {
			char field[80] = "", msg[160] = "";
			fetch_json_str(it, "field", field, sizeof(field));
			fetch_json_str(it, "message", msg, sizeof(msg));
			if (used < sizeof(text) - 1)
				used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s: %s",
							 used ? "; " : "", field[0] ? field : "?", msg);
		}
		cJSON tmp;
		memset(&tmp, 0, sizeof(tmp));
		tmp.type = cJSON_String;
		tmp.valuestring = text;
		fetch_error_message(&tmp, buf, len);
		cJSON_Delete(root);
		return;
	}
	if (root) {
		m = cJSON_GetObjectItemCaseSensitive(root, "error_description");
		if (!cJSON_IsString(m))
			m = cJSON_GetObjectItemCaseSensitive(root, "error");
		if (!cJSON_IsString(m))
			m = cJSON_GetObjectItemCaseSensitive(root, "message");
	}
	fetch_error_message(m, buf, len);
	cJSON_Delete(root);
}

const struct driver_ops flowmon_driver = {
	/* the appliance's files are 5-minute slots: a window is a run of them */
	.granularity_ms = FM_SLOT_MS,
	/* a day: a quiet host's day is one listing; flowsim takes 31 days */
	.max_window_ms = CACHE_DAY_MS,
	.split_dims = FETCH_SPLIT_PEER | FETCH_SPLIT_PEER_LAST,
	/* flowsim's rows of 17 string columns: about 400 bytes; an
	 * appliance's may carry longer values */
	.record_max = 4096,
	.open = fm_open,
	.close = fm_close,
	.session = fm_session,
	.sign = fm_sign,
	.logout = fm_logout,
	.info_ask = fm_info_ask,
	.info_decode = fm_info_decode,
	.lookup_ask = fm_lookup_ask,
	.lookup_decode = fm_lookup_decode,
	.window_first = fm_window_first,
	.window_next = fm_window_next,
	.error_text = fm_error_text,
	.window_drop = fm_window_drop,
};
