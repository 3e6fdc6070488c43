/*
 * scenario.c - the scenario language: one stream a line.
 *
 * A scenario is small and written by hand, so the parser is strict and
 * says exactly which line and word it did not understand.  See
 * docs/flowsim.md for the format.
 */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sim_default_scenario[] =
	"# flowsim default scenario: the last 7 days of a small site\n"
	"steady  name=web-1    addr=10.0.1.10  flows=5000    peers=198.18.0.0/15 pool=4000 groups=11,12\n"
	"steady  name=db-1     addr=10.0.1.11  flows=20000   peers=198.18.0.0/15 pool=400  groups=13\n"
	"heavy   name=heavy-1  addr=10.0.1.20  flows=2000000 peers=100.64.0.0/10 pool=200000 groups=14\n"
	"bursty  name=burst-1  addr=10.0.1.30  flows=60000   peers=198.18.0.0/15 pool=3000 groups=12\n"
	"steady  name=victim-1 addr=10.0.1.40  flows=2000    peers=198.18.0.0/15 pool=800  groups=15\n"
	"steady  name=v6-1     addr=2001:db8:10::5 flows=3000 peers=2001:db8:ffff::/48 pool=2000 groups=16\n"
	"scan    name=scan-1   victim=10.0.1.10 attacker=203.0.113.66 day=-2 at=13:05:00 span=1000 flows=30000\n"
	"flood   name=flood-1  victim=10.0.1.40 day=-1 at=03:17:00.250 flows=15000\n";

/* Parse "HH:MM:SS[.mmm]" into ms since midnight. */
static int parse_clock(const char *s, int64_t *ms)
{
	unsigned h, m, sec, frac = 0;
	int n = 0;
	char dot;

	if (sscanf(s, "%2u:%2u:%2u%n", &h, &m, &sec, &n) != 3)
		return -EINVAL;
	if (s[n] != '\0') {
		int n2 = 0;
		if (sscanf(s + n, "%c%3u%n", &dot, &frac, &n2) != 2 || dot != '.' ||
		    s[n + n2] != '\0' || n2 != 4)
			return -EINVAL;
	}
	if (h > 23 || m > 59 || sec > 59)
		return -EINVAL;
	*ms = ((int64_t)h * 3600 + m * 60 + sec) * 1000 + frac;
	return 0;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_groups(const char *s, struct sim_stream *st)
{
	char tmp[128], *save = NULL;
	uint64_t v;

	if (strlen(s) >= sizeof(tmp))
		return -EINVAL;
	strcpy(tmp, s);
	st->ngroups = 0;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (st->ngroups == 4 || parse_u64(t, 1, 1000000, &v))
			return -EINVAL;
		st->groups[st->ngroups++] = (uint32_t)v;
	}
	return 0;
}

static const struct {
	const char *word;
	enum sim_kind kind;
} kinds[] = {
	{"steady", SIM_STEADY}, {"heavy", SIM_HEAVY}, {"bursty", SIM_BURSTY},
	{"scan", SIM_SCAN}, {"flood", SIM_FLOOD},
};

/* Fill the defaults that depend on the kind and the subject's family. */
static void stream_defaults(struct sim_stream *st, bool have_peers)
{
	bool v6 = !st->subject.v4;

	if (st->kind == SIM_SCAN || st->kind == SIM_FLOOD) {
		st->max_dur_ms = 1000;
		if (st->kind == SIM_FLOOD) {
			sim_prefix_parse(v6 ? "::/0" : "0.0.0.0/0", &st->peers);
			st->peer_pool = 0;
		}
		if (st->span_ms == 0)
			st->span_ms = st->kind == SIM_FLOOD ? 1 : 1000;
		return;
	}
	st->max_dur_ms = 2 * 3600 * 1000;
	if (!have_peers)
		sim_prefix_parse(v6 ? "2001:db8:ffff::/48" : "198.18.0.0/15",
				 &st->peers);
	if (st->peer_pool == 0)
		st->peer_pool = 1000;
}

/* Parse one line's words into st.  -EINVAL with the cause in err. */
static int parse_line(char *line, int lineno, struct sim_stream *st, char *err)
{
	char *save = NULL, *word = strtok_r(line, " \t", &save);
	bool have_subject = false, have_attacker = false, have_flows = false;
	bool have_at = false, have_peers = false;
	uint64_t v;
	size_t k;

	memset(st, 0, sizeof(*st));
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (strcmp(word, kinds[k].word) == 0)
			break;
	if (k == sizeof(kinds) / sizeof(kinds[0])) {
		snprintf(err, SIM_ERRLEN, "line %d: unknown kind '%.40s' (steady, heavy, bursty, scan, flood)",
			 lineno, word);
		return -EINVAL;
	}
	st->kind = kinds[k].kind;
	bool event = st->kind == SIM_SCAN || st->kind == SIM_FLOOD;

	while ((word = strtok_r(NULL, " \t", &save))) {
		char *eq = strchr(word, '=');
		const char *key = word, *val;
		int rc = 0;

		if (!eq || eq == word || eq[1] == '\0') {
			snprintf(err, SIM_ERRLEN, "line %d: '%.40s' is not key=value", lineno, word);
			return -EINVAL;
		}
		*eq = '\0';
		val = eq + 1;
		if (strcmp(key, "name") == 0) {
			if (strlen(val) >= sizeof(st->name))
				rc = -EINVAL;
			else
				strcpy(st->name, val);
		} else if (!event && strcmp(key, "addr") == 0) {
			rc = sim_prefix_parse(val, &st->subject);
			if (!rc && st->subject.len != 128)
				rc = -EINVAL;
			have_subject = true;
		} else if (event && strcmp(key, "victim") == 0) {
			rc = sim_prefix_parse(val, &st->subject);
			if (!rc && st->subject.len != 128)
				rc = -EINVAL;
			have_subject = true;
		} else if (st->kind == SIM_SCAN && strcmp(key, "attacker") == 0) {
			rc = sim_prefix_parse(val, &st->peers);
			if (!rc && st->peers.len != 128)
				rc = -EINVAL;
			st->peer_pool = 1;
			have_attacker = true;
		} else if (strcmp(key, "flows") == 0) {
			rc = parse_u64(val, 1, 10000000, &st->flows);
			have_flows = true;
		} else if (!event && strcmp(key, "peers") == 0) {
			rc = sim_prefix_parse(val, &st->peers);
			have_peers = true;
		} else if (!event && strcmp(key, "pool") == 0) {
			rc = parse_u64(val, 1, 100000000, &v);
			st->peer_pool = (uint32_t)v;
		} else if (!event && strcmp(key, "groups") == 0) {
			rc = parse_groups(val, st);
		} else if (event && strcmp(key, "day") == 0) {
			rc = parse_u64(val[0] == '-' ? val + 1 : val, 0, 59, &v);
			st->day = -(int)v;
		} else if (event && strcmp(key, "at") == 0) {
			rc = parse_clock(val, &st->at_ms);
			have_at = true;
		} else if (event && strcmp(key, "span") == 0) {
			rc = parse_u64(val, 1, 3600000, &v);
			st->span_ms = (int64_t)v;
		} else {
			snprintf(err, SIM_ERRLEN, "line %d: unknown key '%.40s' for %s",
				 lineno, key, kinds[k].word);
			return -EINVAL;
		}
		if (rc) {
			snprintf(err, SIM_ERRLEN, "line %d: bad value '%.60s' for %s",
				 lineno, val, key);
			return -EINVAL;
		}
	}
	if (!st->name[0] || !have_subject || !have_flows ||
	    (st->kind == SIM_SCAN && !have_attacker) || (event && !have_at)) {
		snprintf(err, SIM_ERRLEN, "line %d: %s needs %s", lineno, kinds[k].word,
			 event ? (st->kind == SIM_SCAN ? "name, victim, attacker, at and flows"
					: "name, victim, at and flows")
			       : "name, addr and flows");
		return -EINVAL;
	}
	if ((have_peers || have_attacker) && st->peers.v4 != st->subject.v4) {
		snprintf(err, SIM_ERRLEN, "line %d: the two sides of %s differ in family",
			 lineno, st->name);
		return -EINVAL;
	}
	if (event && st->at_ms + st->span_ms > SIM_DAY_MS) {
		snprintf(err, SIM_ERRLEN, "line %d: %s runs past midnight", lineno, st->name);
		return -EINVAL;
	}
	stream_defaults(st, have_peers);
	return 0;
}

int sim_scenario_parse(const char *text, struct sim_scenario *sc, char *err)
{
	const char *p = text;
	int lineno = 0;

	memset(sc, 0, sizeof(*sc));
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[1024], *hash, *s;
		int rc;

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(err, SIM_ERRLEN, "line %d: longer than %zu bytes", lineno,
				 sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		if ((hash = strchr(line, '#')))
			*hash = '\0';
		for (s = line; *s == ' ' || *s == '\t' || *s == '\r'; s++)
			;
		if (*s == '\0')
			continue;
		for (char *e = s + strlen(s) - 1; e > s && (*e == ' ' || *e == '\t' || *e == '\r'); e--)
			*e = '\0';
		if (sc->nstreams == SIM_MAX_STREAMS) {
			snprintf(err, SIM_ERRLEN, "line %d: more than %d streams", lineno,
				 SIM_MAX_STREAMS);
			return -EINVAL;
		}
		rc = parse_line(s, lineno, &sc->streams[sc->nstreams], err);
		if (rc)
			return rc;
		for (int i = 0; i < sc->nstreams; i++) {
			if (strcmp(sc->streams[i].name, sc->streams[sc->nstreams].name) == 0) {
				snprintf(err, SIM_ERRLEN, "line %d: name '%s' is used twice", lineno,
					 sc->streams[i].name);
				return -EINVAL;
			}
		}
		sc->nstreams++;
	}
	if (sc->nstreams == 0) {
		snprintf(err, SIM_ERRLEN, "the scenario has no streams");
		return -EINVAL;
	}
	return 0;
}
