/*
 * flowmon.c - the Flowmon dialect: Flowmon's REST API (FMC flow analysis).
 *
 * docs/flowsim.md ("The Flowmon dialect") is the contract and
 * docs/flowmon.md the public sources behind it.  An appliance runs nfdump
 * over nfcapd files that each hold the flows exported in one 5-minute slot,
 * so this file is built around that: a flow's export time is its end plus a
 * delay below the active timeout (a pure function of the flow), a listing
 * selects flows by the slot of their export, and the filter is a subset of
 * nfdump's syntax parsed into a small tree.  Listings are asynchronous:
 * a listing stores its parameters and a seed in a ring of results, answers
 * 202 a configured number of times, then its rows (the same random subset
 * on every read, in a new order), until it is forgotten.
 *
 * Times are the collector's local times: the zone is the process's TZ,
 * set once at start-up (sim_fm_zone_set) before any thread runs, and read
 * with localtime_r and mktime only.  Nothing else in flowsim uses the local
 * zone (the other dialects use timegm and gmtime_r).
 *
 * One mutex guards the tokens, the results, the random generator and the
 * counts; matching and rendering rows run outside it, on copies.
 */
#include "sim.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FM_TOKENS 256
#define FM_RESULTS 1024
#define FM_FIRST_ID 797		/* the guide's first example id (G10 p.60) */
#define FM_FORM_MAX 16		/* fields of a form at most */
#define FM_NODES 64		/* nodes of a filter tree at most */
#define FM_PORTS 64		/* ports of all "port in [...]" lists at most */
#define FM_WORD 64		/* a filter token's length at most */
#define FM_NCHANNELS 3
#define FM_LIST_LATEST 256	/* results /rest/fmc/analysis/results lists (guess) */

/* Append a string literal. */
#define ADD(b, lit) sim_buf_add((b), (lit), sizeof(lit) - 1)

const char *const sim_fm_ep_names[SIM_FM_NEP] = {
	"/resources/oauth/token",
	"/rest/fmc/profiles",
	"/rest/fmc/profiles/channels",
	"/rest/fmc/analysis/nfcolumns",
	"/rest/fmc/analysis/flows",
	"/rest/fmc/analysis/results/{id}",
	"/rest/fmc/analysis/results",
};

/* The live profile's channels: channel i holds the flows of exporter i + 1
 * (one channel a collector port, as on an appliance's live profile). */
static const struct {
	const char *id, *name, *router;
} fm_channels[FM_NCHANNELS] = {
	{"live/p2055", "edge-rt1", "192.0.2.1"},
	{"live/p4739", "core-sw1", "192.0.2.2"},
	{"live/p9995", "dc-fw1", "2001:db8::fe"},
};

/* The output columns served: id (what a request names), the row key an
 * appliance uses for it (docs/flowmon.md section 6), and what nfcolumns
 * says of it. */
enum fm_col {
	COL_TS, COL_TE, COL_TD, COL_PR, COL_SA, COL_DA, COL_SP, COL_DP, COL_FLG,
	COL_TOS, COL_PKT, COL_BYT, COL_FL, COL_IN, COL_OUT, COL_SAS, COL_DAS, COL_RA,
	COL_N
};

static const struct {
	const char *id, *key, *name, *group, *hint;
} fm_cols[COL_N] = {
	{"ts", "ts", "Start Time - first seen", "Date and time", "Datetime"},
	{"te", "te", "End Time - last seen", "Date and time", "Datetime"},
	{"td", "td", "Duration", "Date and time", "TimeInterval"},
	{"pr", "pr", "Protocol", "Flow", "Protocol"},
	{"sa", "srcip", "Source IP address", "IP addresses", "IpAddress"},
	{"da", "dstip", "Destination IP address", "IP addresses", "IpAddress"},
	{"sp", "srcport:p", "Source port", "Ports", "Port"},
	{"dp", "dstport:p", "Destination port", "Ports", "Port"},
	{"flg", "flg", "TCP flags", "Flow", "TcpFlags"},
	{"tos", "tos", "Type of service", "Flow", "Number"},
	{"pkt", "pkt", "Packets", "Traffic", "Packets"},
	{"byt", "byt", "Bytes", "Traffic", "Bytes"},
	{"fl", "fl", "Flows", "Traffic", "Number"},
	{"in", "in", "Input interface", "Interfaces", "Number"},
	{"out", "out", "Output interface", "Interfaces", "Number"},
	{"sas", "sas", "Source AS", "AS", "Number"},
	{"das", "das", "Destination AS", "AS", "Number"},
	{"ra", "ra", "Router IP", "Exporter", "IpAddress"},
};

/* The guide's "default" output definition (G10 p.53), without tos' place
 * mattering: what a listing without output gets. */
static const enum fm_col fm_default_cols[] = {
	COL_TS, COL_TD, COL_PR, COL_SA, COL_SP, COL_DA, COL_DP, COL_FLG, COL_TOS,
	COL_PKT, COL_BYT, COL_FL,
};

/* ---- the filter ------------------------------------------------------------ */

enum fm_op { F_ANY, F_NOT, F_AND, F_OR, F_V4, F_V6, F_PROTO, F_NET, F_PORT, F_PORTIN };
enum fm_dir { D_ANY, D_SRC, D_DST };
enum fm_cmp { C_EQ, C_GT, C_LT, C_GE, C_LE };

struct fm_node {
	uint8_t op, dir, cmp;
	int16_t a, b;			/* children (F_NOT: a; F_AND, F_OR: a, b) */
	uint32_t v;			/* protocol, port, or the list's offset */
	uint16_t nlist;			/* F_PORTIN: ports at ports[v..v+nlist) */
	struct sim_prefix net;		/* F_NET */
};

struct sim_fm_filter {
	struct fm_node node[FM_NODES];
	int n, root;
	uint16_t ports[FM_PORTS];
	int nports;
};

struct fm_parser {
	const char *s;
	size_t pos;		/* where the next token starts */
	char tok[FM_WORD];	/* the current token ("" at the end) */
	size_t tokpos;
	struct sim_fm_filter *f;
	char *err;
	int depth;
};

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == ':' || c == '/' || c == '_' ||
	       c == '-';
}

/* Read the next token into p->tok: a word, a bracket, or a comparison
 * operator.  -EINVAL (err set) on a character nfdump's syntax has no use
 * for here, or a word too long. */
static int lex(struct fm_parser *p)
{
	const char *s = p->s;
	size_t i = p->pos, n = 0;

	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	p->tokpos = i;
	if (!s[i]) {
		p->tok[0] = '\0';
		p->pos = i;
		return 0;
	}
	if (strchr("()[]", s[i])) {
		n = 1;
	} else if (strchr("=<>!", s[i])) {
		n = 1;
		if (s[i + 1] == '=')
			n = 2;
	} else if ((s[i] == '&' || s[i] == '|') && s[i + 1] == s[i]) {
		n = 2;
	} else if (word_char(s[i])) {
		while (word_char(s[i + n]))
			n++;
	} else {
		snprintf(p->err, SIM_ERRLEN, "unexpected character '%c' at %zu", s[i], i);
		return -EINVAL;
	}
	if (n >= FM_WORD) {
		snprintf(p->err, SIM_ERRLEN, "word too long at %zu", i);
		return -EINVAL;
	}
	memcpy(p->tok, s + i, n);
	p->tok[n] = '\0';
	p->pos = i + n;
	return 0;
}

static bool is(const struct fm_parser *p, const char *word)
{
	return strcasecmp(p->tok, word) == 0;
}

static int fail(struct fm_parser *p, const char *what)
{
	if (p->tok[0])
		snprintf(p->err, SIM_ERRLEN, "%s at %zu ('%s')", what, p->tokpos, p->tok);
	else
		snprintf(p->err, SIM_ERRLEN, "%s at the end", what);
	return -EINVAL;
}

/* A new node; -E2BIG (err set) past FM_NODES. */
static int node_new(struct fm_parser *p, enum fm_op op, int *out)
{
	if (p->f->n >= FM_NODES) {
		snprintf(p->err, SIM_ERRLEN, "filter has more than %d terms", FM_NODES);
		return -E2BIG;
	}
	memset(&p->f->node[p->f->n], 0, sizeof(p->f->node[0]));
	p->f->node[p->f->n].op = (uint8_t)op;
	*out = p->f->n++;
	return 0;
}

static int parse_uint(const char *t, uint32_t max, uint32_t *out)
{
	uint32_t v = 0;

	if (!*t || strlen(t) > 10)
		return -EINVAL;
	for (; *t; t++) {
		if (*t < '0' || *t > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(*t - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int proto_number(const char *t, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t n;
	} names[] = {
		{"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"gre", 47}, {"esp", 50},
		{"ah", 51}, {"icmp6", 58}, {"ipv6-icmp", 58}, {"sctp", 132},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(t, names[i].name) == 0) {
			*out = names[i].n;
			return 0;
		}
	return parse_uint(t, 255, out);
}

static int parse_or(struct fm_parser *p, int *out);

/* A primitive after its optional direction: proto, host, ip, net, port. */
static int parse_prim(struct fm_parser *p, enum fm_dir dir, int *out)
{
	struct fm_node *nd;
	int rc, id;

	if (is(p, "proto")) {
		if (dir != D_ANY)
			return fail(p, "proto takes no direction");
		if ((rc = lex(p)) || (rc = node_new(p, F_PROTO, &id)))
			return rc;
		if (proto_number(p->tok, &p->f->node[id].v))
			return fail(p, "expected a protocol name or number");
	} else if (is(p, "host") || is(p, "ip") || is(p, "net")) {
		bool net = is(p, "net");
		if ((rc = lex(p)) || (rc = node_new(p, F_NET, &id)))
			return rc;
		nd = &p->f->node[id];
		nd->dir = (uint8_t)dir;
		if ((!net && strchr(p->tok, '/')) || (net && !strchr(p->tok, '/')) ||
		    sim_prefix_parse(p->tok, &nd->net))
			return fail(p, net ? "expected a prefix ADDR/LEN" : "expected an address");
	} else if (is(p, "port")) {
		if ((rc = lex(p)))
			return rc;
		if (is(p, "in")) {
			if ((rc = lex(p)))
				return rc;
			if (strcmp(p->tok, "["))
				return fail(p, "expected '['");
			if ((rc = node_new(p, F_PORTIN, &id)))
				return rc;
			nd = &p->f->node[id];
			nd->dir = (uint8_t)dir;
			nd->v = (uint32_t)p->f->nports;
			for (;;) {
				uint32_t port;
				if ((rc = lex(p)))
					return rc;
				if (!strcmp(p->tok, "]"))
					break;
				if (parse_uint(p->tok, 65535, &port))
					return fail(p, "expected a port or ']'");
				if (p->f->nports >= FM_PORTS) {
					snprintf(p->err, SIM_ERRLEN, "more than %d ports in lists",
						 FM_PORTS);
					return -E2BIG;
				}
				p->f->ports[p->f->nports++] = (uint16_t)port;
				nd->nlist++;
			}
			if (!nd->nlist)
				return fail(p, "empty port list");
		} else {
			static const struct {
				const char *w;
				enum fm_cmp c;
			} cmps[] = {
				{"=", C_EQ}, {"==", C_EQ}, {"eq", C_EQ}, {">", C_GT}, {"gt", C_GT},
				{"<", C_LT}, {"lt", C_LT}, {">=", C_GE}, {"ge", C_GE},
				{"<=", C_LE}, {"le", C_LE},
			};
			enum fm_cmp cmp = C_EQ;
			for (size_t i = 0; i < sizeof(cmps) / sizeof(cmps[0]); i++)
				if (is(p, cmps[i].w)) {
					cmp = cmps[i].c;
					if ((rc = lex(p)))
						return rc;
					break;
				}
			if ((rc = node_new(p, F_PORT, &id)))
				return rc;
			nd = &p->f->node[id];
			nd->dir = (uint8_t)dir;
			nd->cmp = (uint8_t)cmp;
			if (parse_uint(p->tok, 65535, &nd->v))
				return fail(p, "expected a port number");
		}
	} else {
		return fail(p, "expected proto, host, ip, net or port");
	}
	*out = id;
	return lex(p);
}

/* not X | ( X ) | any | ipv4 | ipv6 | [src|dst] primitive */
static int parse_unary(struct fm_parser *p, int *out)
{
	int rc, id, sub;

	if (++p->depth > FM_NODES) {
		snprintf(p->err, SIM_ERRLEN, "filter nested too deeply");
		return -E2BIG;
	}
	if (is(p, "not") || !strcmp(p->tok, "!")) {
		if ((rc = lex(p)) || (rc = parse_unary(p, &sub)) || (rc = node_new(p, F_NOT, &id)))
			return rc;
		p->f->node[id].a = (int16_t)sub;
		*out = id;
	} else if (!strcmp(p->tok, "(")) {
		if ((rc = lex(p)) || (rc = parse_or(p, out)))
			return rc;
		if (strcmp(p->tok, ")"))
			return fail(p, "expected ')'");
		rc = lex(p);
		if (rc)
			return rc;
	} else if (is(p, "any") || is(p, "ipv4") || is(p, "inet") || is(p, "ipv6") ||
		   is(p, "inet6")) {
		enum fm_op op = is(p, "any") ? F_ANY : (is(p, "ipv4") || is(p, "inet")) ? F_V4 :
			F_V6;
		if ((rc = node_new(p, op, out)))
			return rc;
		rc = lex(p);
		if (rc)
			return rc;
	} else if (is(p, "src") || is(p, "dst")) {
		enum fm_dir dir = is(p, "src") ? D_SRC : D_DST;
		if ((rc = lex(p)))
			return rc;
		rc = parse_prim(p, dir, out);
		if (rc)
			return rc;
	} else {
		rc = parse_prim(p, D_ANY, out);
		if (rc)
			return rc;
	}
	p->depth--;
	return 0;
}

/* unary ( "and" unary )*: a left-leaning chain of F_AND nodes. */
static int parse_and(struct fm_parser *p, int *out)
{
	int rc = parse_unary(p, out), rhs, id;

	while (!rc && (is(p, "and") || !strcmp(p->tok, "&&"))) {
		if ((rc = lex(p)) || (rc = parse_unary(p, &rhs)) || (rc = node_new(p, F_AND, &id)))
			return rc;
		p->f->node[id].a = (int16_t)*out;
		p->f->node[id].b = (int16_t)rhs;
		*out = id;
	}
	return rc;
}

/* and ( "or" and )*: the lowest precedence, as in nfdump. */
static int parse_or(struct fm_parser *p, int *out)
{
	int rc = parse_and(p, out), rhs, id;

	while (!rc && (is(p, "or") || !strcmp(p->tok, "||"))) {
		if ((rc = lex(p)) || (rc = parse_and(p, &rhs)) || (rc = node_new(p, F_OR, &id)))
			return rc;
		p->f->node[id].a = (int16_t)*out;
		p->f->node[id].b = (int16_t)rhs;
		*out = id;
	}
	return rc;
}

int sim_fm_filter_parse(const char *text, struct sim_fm_filter **out, char *err)
{
	struct sim_fm_filter *f = calloc(1, sizeof(*f));
	struct fm_parser p = {.s = text ? text : "", .err = err};
	int rc;

	if (!f)
		return -ENOMEM;
	p.f = f;
	rc = lex(&p);
	if (!rc && !p.tok[0]) {
		rc = node_new(&p, F_ANY, &f->root);	/* an empty filter is "any" */
	} else if (!rc) {
		rc = parse_or(&p, &f->root);
		if (!rc && p.tok[0])
			rc = fail(&p, "unexpected word");
	}
	if (rc) {
		free(f);
		return rc == -E2BIG ? -EINVAL : rc;
	}
	*out = f;
	return 0;
}

void sim_fm_filter_free(struct sim_fm_filter *f)
{
	free(f);
}

/* A flow's port on one side as nfdump sees it: ICMP's type and code are
 * its destination port (type * 256 + code), its source port 0. */
static uint32_t flow_port(const struct sim_flow *f, bool src)
{
	if (f->proto == 1 || f->proto == 58)
		return src ? 0 : (uint32_t)f->icmp_type * 256 + f->icmp_code;
	return src ? f->sport : f->dport;
}

static bool port_cmp(uint32_t port, enum fm_cmp c, uint32_t v)
{
	switch (c) {
	case C_GT: return port > v;
	case C_LT: return port < v;
	case C_GE: return port >= v;
	case C_LE: return port <= v;
	default: return port == v;
	}
}

/* A side's primitive (net, port, port list) on the source or the
 * destination side of a flow. */
static bool node_side(const struct sim_fm_filter *flt, const struct fm_node *nd,
		      const struct sim_flow *f, bool src)
{
	uint32_t port;

	switch (nd->op) {
	case F_NET:
		return sim_prefix_contains(&nd->net, src ? &f->src : &f->dst);
	case F_PORT:
		return port_cmp(flow_port(f, src), (enum fm_cmp)nd->cmp, nd->v);
	default:
		port = flow_port(f, src);
		for (uint16_t i = 0; i < nd->nlist; i++)
			if (flt->ports[nd->v + i] == port)
				return true;
		return false;
	}
}

/* Evaluate node i of the tree; recursion is bounded by the FM_NODES nodes
 * (a child always has a smaller index than its parent). */
static bool node_match(const struct sim_fm_filter *flt, int i, const struct sim_flow *f)
{
	const struct fm_node *nd = &flt->node[i];

	switch (nd->op) {
	case F_ANY: return true;
	case F_NOT: return !node_match(flt, nd->a, f);
	case F_AND: return node_match(flt, nd->a, f) && node_match(flt, nd->b, f);
	case F_OR: return node_match(flt, nd->a, f) || node_match(flt, nd->b, f);
	case F_V4: return sim_addr_is_v4(&f->src);
	case F_V6: return !sim_addr_is_v4(&f->src);
	case F_PROTO: return f->proto == nd->v;
	default:
		if (nd->dir == D_SRC)
			return node_side(flt, nd, f, true);
		if (nd->dir == D_DST)
			return node_side(flt, nd, f, false);
		return node_side(flt, nd, f, true) || node_side(flt, nd, f, false);
	}
}

bool sim_fm_filter_match(const struct sim_fm_filter *flt, const struct sim_flow *f)
{
	return node_match(flt, flt->root, f);
}

/* ---- slots ---------------------------------------------------------------- */

int64_t sim_fm_export_ms(const struct sim_flow *f, int64_t active_timeout_ms)
{
	if (active_timeout_ms <= 0)
		return f->end;
	return f->end + (int64_t)(sim_mix(f->id ^ 0xf10e0a7ULL) %
				  (uint64_t)(active_timeout_ms + 1));
}

/* The start of the 5-minute slot holding ms (slots are aligned on the
 * epoch, and so in every zone whose offset is a multiple of 5 minutes). */
static int64_t slot_floor(int64_t ms)
{
	int64_t q = ms / SIM_FM_SLOT_MS;

	if (ms < 0 && q * SIM_FM_SLOT_MS != ms)
		q--;
	return q * SIM_FM_SLOT_MS;
}

static int refs_add(struct sim_ref **refs, size_t *n, size_t *cap, int stream, int day,
		    uint64_t pos)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct sim_ref *r = realloc(*refs, c * sizeof(*r));
		if (!r)
			return -ENOMEM;
		*refs = r;
		*cap = c;
	}
	(*refs)[(*n)++] = (struct sim_ref){stream, day, pos};
	return 0;
}

int sim_fm_collect(struct sim_dataset *ds, const struct sim_fm_search *q,
		   struct sim_ref **out, size_t *nout)
{
	struct sim_ref *refs = NULL;
	size_t n = 0, cap = 0;
	struct sim_flow f;

	for (int si = 0; si < ds->sc.nstreams; si++) {
		const struct sim_stream *st = &ds->sc.streams[si];
		/* export >= end >= start: a flow exported in [lo, hi) started
		 * in [lo - longest - timeout, hi) */
		int64_t from = q->lo - st->max_dur_ms - q->active_timeout_ms;
		int64_t d0 = (from - ds->first_day_ms) / SIM_DAY_MS - 1;
		int64_t d1 = (q->hi - ds->first_day_ms) / SIM_DAY_MS + 1;

		for (int64_t d = d0 < 0 ? 0 : d0; d <= d1 && d < ds->ndays; d++) {
			const struct sim_chunk *c = sim_dataset_chunk(ds, si, (int)d);
			if (!c) {
				free(refs);
				return -ENOMEM;
			}
			for (uint64_t i = sim_chunk_lower(c, from); i < c->n && c->start[i] < q->hi;
			     i++) {
				sim_flow_make(ds, si, (int)d, i, c->start[i], &f);
				int64_t ex = sim_fm_export_ms(&f, q->active_timeout_ms);
				if (ex < q->lo || ex >= q->hi ||
				    slot_floor(ex) + SIM_FM_SLOT_MS > q->visible_before)
					continue;
				if (f.exporter < 1 || f.exporter > FM_NCHANNELS ||
				    !(q->channels & (1u << (f.exporter - 1))))
					continue;
				if (q->filter && !sim_fm_filter_match(q->filter, &f))
					continue;
				if (refs_add(&refs, &n, &cap, si, (int)d, i)) {
					free(refs);
					return -ENOMEM;
				}
			}
		}
	}
	*out = refs;
	*nout = n;
	return 0;
}

/* ---- times and numbers ------------------------------------------------------ */

int sim_fm_zone_set(const char *zone, char *err)
{
	char path[256];
	struct stat sb;

	if (!zone[0] || strlen(zone) > 64 || zone[0] == '/' || strstr(zone, "..") ||
	    strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") !=
		    strlen(zone)) {
		snprintf(err, SIM_ERRLEN, "bad zone name '%s' (an IANA name such as "
			 "Europe/Prague)", zone);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%.64s", zone);
	if (strcmp(zone, "UTC") && (stat(path, &sb) || !S_ISREG(sb.st_mode))) {
		snprintf(err, SIM_ERRLEN, "unknown zone '%.64s' (not in /usr/share/zoneinfo)",
			 zone);
		return -ENOENT;
	}
	if (setenv("TZ", zone, 1)) {
		snprintf(err, SIM_ERRLEN, "setenv TZ: %s", strerror(errno));
		return -errno;
	}
	tzset();
	return 0;
}

int sim_fm_time_parse(const char *text, int64_t *ms)
{
	struct tm tm, back;
	int y, mo, d, h, mi, n = 0;
	time_t t;

	if (strlen(text) != 16 ||
	    sscanf(text, "%4d-%2d-%2d %2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || n != 16 ||
	    text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' ||
	    !isdigit((unsigned char)text[11]) || !isdigit((unsigned char)text[14]))
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	/* a time that does not exist in the zone (a DST gap) or out of range */
	if (t == (time_t)-1 || !localtime_r(&t, &back) || back.tm_year != y - 1900 ||
	    back.tm_mon != mo - 1 || back.tm_mday != d || back.tm_hour != h ||
	    back.tm_min != mi)
		return -ERANGE;
	*ms = (int64_t)t * 1000;
	return 0;
}

void sim_fm_time_format(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm)) {
		snprintf(buf, len, "N/A");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void sim_fm_number(uint64_t v, uint64_t scale_min, char *buf, size_t len)
{
	static const struct {
		double unit;
		const char *name;
	} units[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}};

	if (scale_min && v >= scale_min) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if ((double)v >= units[i].unit) {
				snprintf(buf, len, "%.1f %s", (double)v / units[i].unit,
					 units[i].name);
				return;
			}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static const char *proto_name(uint8_t p, char *buf, size_t len)
{
	switch (p) {
	case 1: return "ICMP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 47: return "GRE";
	case 58: return "ICMP6";
	default:
		snprintf(buf, len, "%u", p);
		return buf;
	}
}

/* One column's value of a flow as an appliance writes it (always text). */
static void col_value(const struct sim_flow *f, enum fm_col c, uint64_t scale_min,
		      char *buf, size_t len)
{
	static const char flag_chars[] = "UAPRSF";
	int64_t dur = f->end - f->start;

	switch (c) {
	case COL_TS: sim_fm_time_format(f->start, buf, len); break;
	case COL_TE: sim_fm_time_format(f->end, buf, len); break;
	case COL_TD:
		snprintf(buf, len, "%lld.%03lld", (long long)(dur / 1000), (long long)(dur % 1000));
		break;
	case COL_PR: {
		char num[8];
		snprintf(buf, len, "%s", proto_name(f->proto, num, sizeof(num)));
		break;
	}
	case COL_SA: sim_addr_format(&f->src, buf, len); break;
	case COL_DA: sim_addr_format(&f->dst, buf, len); break;
	case COL_SP: snprintf(buf, len, "%u", flow_port(f, true)); break;
	case COL_DP:
		if (f->proto == 1 || f->proto == 58)
			snprintf(buf, len, "%u.%u", f->icmp_type, f->icmp_code);
		else
			snprintf(buf, len, "%u", f->dport);
		break;
	case COL_FLG:
		for (int i = 0; i < 6 && (size_t)i + 1 < len; i++)
			buf[i] = f->proto == 6 && (f->tcp_flags & (0x20 >> i)) ? flag_chars[i] : '.';
		buf[len > 6 ? 6 : len - 1] = '\0';
		break;
	case COL_TOS: snprintf(buf, len, "0"); break;
	case COL_PKT: sim_fm_number(f->pkts, scale_min, buf, len); break;
	case COL_BYT: sim_fm_number(f->bytes, scale_min, buf, len); break;
	case COL_FL: snprintf(buf, len, "1"); break;
	case COL_IN: snprintf(buf, len, "%u", f->omit & SIM_OMIT_IF ? 0 : f->in_if); break;
	case COL_OUT: snprintf(buf, len, "%u", f->omit & SIM_OMIT_IF ? 0 : f->out_if); break;
	case COL_SAS: snprintf(buf, len, "%u", f->omit & SIM_OMIT_AS ? 0 : f->src_as); break;
	case COL_DAS: snprintf(buf, len, "%u", f->omit & SIM_OMIT_AS ? 0 : f->dst_as); break;
	default:
		snprintf(buf, len, "%s", f->exporter >= 1 && f->exporter <= FM_NCHANNELS ?
			 fm_channels[f->exporter - 1].router : "0.0.0.0");
		break;
	}
}

int sim_fm_json_row(struct sim_buf *b, const struct sim_flow *f, const uint8_t *cols,
		    int ncols, bool id_keys, uint64_t scale_min)
{
	char v[64];
	int rc = sim_buf_add(b, "{", 1);

	for (int i = 0; !rc && i < ncols; i++) {
		enum fm_col c = (enum fm_col)cols[i];
		col_value(f, c, scale_min, v, sizeof(v));
		rc = sim_buf_printf(b, "%s\"%s\":\"%s\"", i ? "," : "",
				    id_keys ? fm_cols[c].id : fm_cols[c].key, v);
	}
	return rc ? rc : sim_buf_add(b, "}", 1);
}

/* ---- forms ------------------------------------------------------------------ */

struct fm_form {
	char *name[FM_FORM_MAX], *value[FM_FORM_MAX];
	int n;
	char *store;		/* one copy of the body the fields point into */
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX and '+' in place. */
static void url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int form_add(struct fm_form *f, char *name, char *value)
{
	if (f->n >= FM_FORM_MAX)
		return -E2BIG;
	f->name[f->n] = name;
	f->value[f->n++] = value;
	return 0;
}

/* application/x-www-form-urlencoded: name=value&... */
static int form_urlencoded(struct fm_form *f)
{
	char *save = NULL;

	for (char *kv = strtok_r(f->store, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = '\0';
		url_decode(kv);
		url_decode(eq + 1);
		if (form_add(f, kv, eq + 1))
			return -E2BIG;
	}
	return 0;
}

/* multipart/form-data with the boundary of the Content-Type: each part's
 * Content-Disposition name and its body (up to CRLF--boundary). */
static int form_multipart(struct fm_form *f, const char *ctype, size_t len)
{
	const char *bp = strcasestr(ctype, "boundary=");
	char delim[80];
	size_t blen;
	char *p, *end = f->store + len;

	if (!bp)
		return -EINVAL;
	bp += 9;
	blen = strcspn(bp, "; \t");
	if (*bp == '"') {
		bp++;
		blen = strcspn(bp, "\"");
	}
	if (!blen || blen > 70)
		return -EINVAL;
	snprintf(delim, sizeof(delim), "--%.*s", (int)blen, bp);
	p = memmem(f->store, len, delim, strlen(delim));
	while (p) {
		char *hdr = p + strlen(delim), *body, *next, *name;
		if (hdr + 2 <= end && hdr[0] == '-' && hdr[1] == '-')
			break;	/* the closing delimiter */
		body = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
		if (!body)
			return -EINVAL;
		*body = '\0';
		body += 4;
		next = memmem(body, (size_t)(end - body), delim, strlen(delim));
		if (!next)
			return -EINVAL;
		name = strcasestr(hdr, "name=\"");
		if (name) {
			name += 6;
			char *q = strchr(name, '"');
			if (!q)
				return -EINVAL;
			*q = '\0';
			char *vend = next;
			if (vend - body >= 2 && vend[-2] == '\r' && vend[-1] == '\n')
				vend -= 2;
			*vend = '\0';
			if (form_add(f, name, body))
				return -E2BIG;
		}
		p = next;
	}
	return 0;
}

/* Parse a request body by its Content-Type (multipart/form-data, else
 * urlencoded).  -EINVAL on a malformed multipart body, -E2BIG past
 * FM_FORM_MAX fields, -ENOMEM. */
static int form_parse(const char *ctype, const char *body, size_t len, struct fm_form *f)
{
	memset(f, 0, sizeof(*f));
	f->store = malloc(len + 1);
	if (!f->store)
		return -ENOMEM;
	if (len)
		memcpy(f->store, body, len);
	f->store[len] = '\0';
	if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0)
		return form_multipart(f, ctype, len);
	return form_urlencoded(f);
}

static void form_free(struct fm_form *f)
{
	free(f->store);
	memset(f, 0, sizeof(*f));
}

/* A parameter: the form's field, else the URL's argument, else NULL. */
static const char *param(const struct sim_fm_req *rq, const struct fm_form *f,
			 const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return rq->arg ? rq->arg(rq->arg_cls, name) : NULL;
}

/* ---- state ------------------------------------------------------------------ */

struct fm_token {
	char access[65], refresh[65];
	int64_t expires;	/* monotonic ms */
	bool refresh_used;
	uint64_t seq;		/* 0: free */
};

struct fm_result {
	uint64_t id;			/* 0: a free slot */
	struct sim_fm_search q;		/* q.filter points at flt */
	struct sim_fm_filter flt;
	uint8_t cols[COL_N];
	int ncols;
	uint32_t showonly;
	uint64_t seed;
	int64_t created;		/* monotonic ms */
	int polls;			/* 202 answers given */
};

struct sim_fm {
	const struct sim_config *cfg;
	struct sim_dataset *ds;
	char user[128], password[128];
	pthread_mutex_t lock;
	uint64_t rng;
	struct fm_token tokens[FM_TOKENS];
	uint64_t token_seq;
	struct fm_result *results;	/* FM_RESULTS slots, by id % FM_RESULTS */
	uint64_t next_id;
	uint64_t logins, refreshes, refused, expired_401, listings, pending_202,
		 gone_204, empty_204, result_lists;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_fm_new(const struct sim_config *cfg, struct sim_dataset *ds, struct sim_fm **out)
{
	struct sim_fm *s = calloc(1, sizeof(*s));
	const char *cred = cfg->token[0] ? cfg->token : "admin:flowsim";
	const char *colon = strchr(cred, ':');
	struct timespec ts;

	if (!s)
		return -ENOMEM;
	s->results = calloc(FM_RESULTS, sizeof(*s->results));
	if (!s->results || !colon || (size_t)(colon - cred) >= sizeof(s->user) ||
	    strlen(colon + 1) >= sizeof(s->password)) {
		int rc = s->results ? -EINVAL : -ENOMEM;
		free(s->results);
		free(s);
		return rc;
	}
	memcpy(s->user, cred, (size_t)(colon - cred));
	strcpy(s->password, colon + 1);
	s->cfg = cfg;
	s->ds = ds;
	s->next_id = FM_FIRST_ID;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->rng = sim_mix((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
			 (uint64_t)getpid() << 48) | 1;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void sim_fm_free(struct sim_fm *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->results);
	free(s);
}

/* ---- routing ---------------------------------------------------------------- */

void sim_fm_route(const char *method, const char *url, struct sim_fm_route *r)
{
	const char *want = "GET", *want2 = NULL;
	static const char results[] = "/rest/fmc/analysis/results/";

	memset(r, 0, sizeof(*r));
	r->ep = -1;
	/* the guide's JavaScript writes /resources/oAuth/token (G10 p.143) */
	if (strcasecmp(url, "/resources/oauth/token") == 0) {
		r->ep = SIM_FM_TOKEN;
		want = "POST";
	} else if (strcmp(url, "/rest/fmc/profiles") == 0) {
		r->ep = SIM_FM_PROFILES;
	} else if (strcmp(url, "/rest/fmc/getprofiles") == 0) {
		r->ep = SIM_FM_PROFILES;
		want = "POST";
	} else if (strcmp(url, "/rest/fmc/profiles/channels") == 0) {
		r->ep = SIM_FM_CHANNELS;
	} else if (strcmp(url, "/rest/fmc/analysis/nfcolumns") == 0) {
		r->ep = SIM_FM_NFCOLUMNS;
	} else if (strcmp(url, "/rest/fmc/analysis/flows") == 0) {
		r->ep = SIM_FM_FLOWS;
		want2 = "POST";
	} else if (strcmp(url, "/rest/fmc/analysis/results") == 0) {
		r->ep = SIM_FM_RESULT_LIST;
	} else if (strncmp(url, results, sizeof(results) - 1) == 0) {
		const char *id = url + sizeof(results) - 1;
		size_t n = strlen(id);
		/* up to 19 digits: the id fits an int64 */
		if (n && n < 20 && strspn(id, "0123456789") == n) {
			memcpy(r->id, id, n + 1);
			r->ep = SIM_FM_RESULTS;
		}
	}
	r->method_ok = r->ep >= 0 &&
		       (strcmp(method, want) == 0 || (want2 && strcmp(method, want2) == 0));
	r->flows = r->ep == SIM_FM_FLOWS || r->ep == SIM_FM_RESULTS;
}

/* ---- answers ------------------------------------------------------------------ */

int sim_fm_error_body(struct sim_buf *b, unsigned status, const char *msg)
{
	int rc;

	if (status == 405)
		return sim_fm_validation_body(b, "", msg);
	if (status == 401 || status == 400) {
		rc = sim_buf_printf(b, "{\"error\":\"%s\",\"error_description\":",
				    status == 401 ? "invalid_token" : "invalid_request");
		if (!rc)
			rc = sim_json_string(b, msg);
		return rc ? rc : sim_buf_add(b, "}", 1);
	}
	rc = sim_buf_printf(b, "{\"code\":%u,\"status\":\"error\",\"message\":", status);
	if (!rc)
		rc = sim_json_string(b, msg);
	return rc ? rc : sim_buf_add(b, "}", 1);
}

int sim_fm_validation_body(struct sim_buf *b, const char *field, const char *msg)
{
	int rc = ADD(b, "{\"validationResults\":[{\"field\":");

	if (!rc)
		rc = sim_json_string(b, field);
	if (!rc)
		rc = ADD(b, ",\"message\":");
	if (!rc)
		rc = sim_json_string(b, msg);
	return rc ? rc : ADD(b, ",\"params\":[]}],\"checkedData\":{}}");
}

static void answer_json(struct sim_fm_answer *a, unsigned status)
{
	a->status = status;
	a->type = "application/json";
}

/* A 405 naming the field, with X-FM-Message (G10 p.12-13, p.40). */
static int invalid(struct sim_fm_answer *a, const char *field, const char *msg)
{
	answer_json(a, 405);
	a->fm_message = "Validation failed";
	return sim_fm_validation_body(&a->body, field, msg);
}

/* OAuth 2's error answer: {"error": error, "error_description": desc}. */
static int oauth_error(struct sim_fm_answer *a, unsigned status, const char *error,
		       const char *desc)
{
	int rc;

	answer_json(a, status);
	rc = sim_buf_printf(&a->body, "{\"error\":\"%s\",\"error_description\":", error);
	if (!rc)
		rc = sim_json_string(&a->body, desc);
	return rc ? rc : sim_buf_add(&a->body, "}", 1);
}

static void random_hex(struct sim_fm *s, char *out, int n)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < n; i++)
		out[i] = hex[sim_rand(&s->rng) >> 60];
	out[n] = '\0';
}

/* Constant-time comparison of two strings. */
static bool same(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), diff = na ^ nb;

	for (size_t i = 0; i < na && i < nb; i++)
		diff |= (size_t)(a[i] ^ b[i]);
	return diff == 0;
}

/* POST /resources/oauth/token: the password and refresh_token grants. */
static int serve_token(struct sim_fm *s, const struct sim_fm_req *rq, const struct fm_form *f,
		       struct sim_fm_answer *a)
{
	const char *grant = param(rq, f, "grant_type"), *client = param(rq, f, "client_id");
	struct fm_token *t = NULL;
	int64_t now = mono_ms();
	int rc;

	if (!grant || !client)
		return oauth_error(a, 400, "invalid_request",
				   "grant_type and client_id are required");
	if (strcmp(client, "invea-tech"))
		return oauth_error(a, 400, "invalid_client", "unknown client_id");
	pthread_mutex_lock(&s->lock);
	if (strcmp(grant, "password") == 0) {
		const char *u = param(rq, f, "username"), *p = param(rq, f, "password");
		if (!u || !p || !same(u, s->user) || !same(p, s->password)) {
			s->refused++;
			pthread_mutex_unlock(&s->lock);
			return oauth_error(a, 400, "invalid_grant", "Invalid username and password "
					   "combination");
		}
		s->logins++;
	} else if (strcmp(grant, "refresh_token") == 0) {
		const char *r = param(rq, f, "refresh_token");
		for (int i = 0; r && i < FM_TOKENS && !t; i++)
			if (s->tokens[i].seq && !s->tokens[i].refresh_used &&
			    same(s->tokens[i].refresh, r))
				t = &s->tokens[i];
		if (!t) {
			s->refused++;
			pthread_mutex_unlock(&s->lock);
			return oauth_error(a, 400, "invalid_grant", "Invalid refresh token");
		}
		t->refresh_used = true;	/* one use; the access token lives on */
		s->refreshes++;
	} else {
		pthread_mutex_unlock(&s->lock);
		return oauth_error(a, 400, "unsupported_grant_type",
				   "grant_type must be password or refresh_token");
	}
	/* a free slot, else the oldest */
	t = &s->tokens[0];
	for (int i = 0; i < FM_TOKENS; i++) {
		if (!s->tokens[i].seq) {
			t = &s->tokens[i];
			break;
		}
		if (s->tokens[i].seq < t->seq)
			t = &s->tokens[i];
	}
	random_hex(s, t->access, 64);
	random_hex(s, t->refresh, 64);
	t->expires = now + (int64_t)s->cfg->fm_token_ttl_s * 1000;
	t->refresh_used = false;
	t->seq = ++s->token_seq;
	answer_json(a, 200);
	rc = sim_buf_printf(&a->body, "{\"access_token\":\"%s\",\"token_type\":\"bearer\","
			    "\"expires_in\":%d,\"refresh_token\":\"%s\"}", t->access,
			    s->cfg->fm_token_ttl_s, t->refresh);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The Authorization header: "bearer TOKEN" (the scheme in any case) of a
 * live token.  0, or 401 with *why set. */
static unsigned check_token(struct sim_fm *s, const char *auth, const char **why)
{
	unsigned st = 401;

	*why = "missing Authorization: bearer token";
	if (!auth || strncasecmp(auth, "bearer ", 7) != 0)
		return st;
	*why = "invalid access token";
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < FM_TOKENS; i++) {
		if (!s->tokens[i].seq || !same(s->tokens[i].access, auth + 7))
			continue;
		if (mono_ms() >= s->tokens[i].expires) {
			*why = "access token expired";
			s->expired_401++;
		} else {
			st = 0;
		}
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return st;
}

int sim_fm_expire_tokens(struct sim_fm *s)
{
	int n = 0;
	int64_t now = mono_ms();

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < FM_TOKENS; i++)
		if (s->tokens[i].seq && s->tokens[i].expires > now) {
			s->tokens[i].expires = now;
			n++;
		}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* The one profile, live, with its channels in the short form of the
 * guide's profile listing (G10 p.33). */
static int serve_profiles(struct sim_fm_answer *a)
{
	int rc = ADD(&a->body, "[{\"id\":\"live\",\"name\":\"live\",\"description\":"
		     "\"All traffic\",\"start\":\"2026-01-01 00:00\",\"type\":\"real\","
		     "\"status\":\"OK\",\"history\":false,\"channels\":[");

	for (int i = 0; !rc && i < FM_NCHANNELS; i++)
		rc = sim_buf_printf(&a->body, "%s{\"id\":\"%s\",\"name\":\"%s\",\"sign\":\"+\","
				    "\"color\":\"#%06x\",\"parent\":\"*\",\"filter\":"
				    "\"router ip %s\"}", i ? "," : "",
				    strrchr(fm_channels[i].id, '/') + 1, fm_channels[i].name,
				    0x2466f4 + 0x101010 * i, fm_channels[i].router);
	answer_json(a, 200);
	return rc ? rc : sim_buf_add(&a->body, "]}]", 3);
}

/* The channels of profileId (only live): ids "live/<name>"; 404 else. */
static int serve_channels(const struct sim_fm_req *rq, const struct fm_form *f,
			  struct sim_fm_answer *a)
{
	const char *p = param(rq, f, "profileId");
	int rc = 0;

	if (!p || strcmp(p, "live")) {
		answer_json(a, 404);
		return sim_fm_error_body(&a->body, 404, "Not found");
	}
	answer_json(a, 200);
	rc = sim_buf_add(&a->body, "[", 1);
	for (int i = 0; !rc && i < FM_NCHANNELS; i++)
		rc = sim_buf_printf(&a->body, "%s{\"id\":\"%s\",\"name\":\"%s\"}", i ? "," : "",
				    fm_channels[i].id, fm_channels[i].name);
	return rc ? rc : sim_buf_add(&a->body, "]", 1);
}

static int serve_nfcolumns(struct sim_fm_answer *a)
{
	int rc = sim_buf_add(&a->body, "[", 1);

	for (int i = 0; !rc && i < COL_N; i++)
		rc = sim_buf_printf(&a->body, "%s{\"id\":\"%s\",\"name\":\"%s\",\"group\":\"%s\","
				    "\"aggregate\":0,\"output\":1,\"typeHint\":\"%s\"}",
				    i ? "," : "", fm_cols[i].id, fm_cols[i].name, fm_cols[i].group,
				    fm_cols[i].hint);
	answer_json(a, 200);
	return rc ? rc : sim_buf_add(&a->body, "]", 1);
}

static int col_find(const char *id)
{
	for (int i = 0; i < COL_N; i++)
		if (strcmp(fm_cols[i].id, id) == 0)
			return i;
	return -1;
}

/* The output parameter (a JSON array of column ids, or absent: the
 * default definition) into r->cols.  NULL, or the message of the 405. */
static const char *parse_output(const char *text, struct fm_result *r)
{
	cJSON *arr;
	const cJSON *it;

	r->ncols = 0;
	if (!text) {
		for (size_t i = 0; i < sizeof(fm_default_cols) / sizeof(fm_default_cols[0]); i++)
			r->cols[r->ncols++] = (uint8_t)fm_default_cols[i];
		return NULL;
	}
	arr = cJSON_Parse(text);
	if (!cJSON_IsArray(arr) || !cJSON_GetArraySize(arr)) {
		cJSON_Delete(arr);
		return "output must be a non-empty JSON array of column ids";
	}
	cJSON_ArrayForEach(it, arr) {
		int c = cJSON_IsString(it) ? col_find(it->valuestring) : -1;
		bool dup = false;
		if (c < 0) {
			cJSON_Delete(arr);
			return "unknown column id in output (see /rest/fmc/analysis/nfcolumns)";
		}
		for (int i = 0; i < r->ncols; i++)
			dup |= r->cols[i] == c;
		if (!dup && r->ncols < COL_N)
			r->cols[r->ncols++] = (uint8_t)c;
	}
	cJSON_Delete(arr);
	return NULL;
}

/* The search parameter into r->q (window, channels, filter).  NULL, or the
 * 405's field in *field and its message. */
static const char *parse_search(const struct sim_config *cfg, const char *text,
				struct fm_result *r, const char **field, char *err)
{
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *from, *to, *prof, *chans, *flt, *listing, *agg, *it;
	struct sim_fm_filter *parsed = NULL;
	const char *msg = NULL;
	int64_t lo, hi;

	*field = "search";
	if (!cJSON_IsObject(doc)) {
		msg = "search must be a JSON object";
		goto out;
	}
	from = cJSON_GetObjectItemCaseSensitive(doc, "from");
	to = cJSON_GetObjectItemCaseSensitive(doc, "to");
	prof = cJSON_GetObjectItemCaseSensitive(doc, "profile");
	chans = cJSON_GetObjectItemCaseSensitive(doc, "channels");
	flt = cJSON_GetObjectItemCaseSensitive(doc, "filter");
	listing = cJSON_GetObjectItemCaseSensitive(doc, "listing");
	*field = "search.from";
	if (!cJSON_IsString(from) || sim_fm_time_parse(from->valuestring, &lo)) {
		msg = "from must be \"YYYY-MM-DD HH:MM\", a time of the collector's zone";
		goto out;
	}
	*field = "search.to";
	if (!cJSON_IsString(to) || sim_fm_time_parse(to->valuestring, &hi)) {
		msg = "to must be \"YYYY-MM-DD HH:MM\", a time of the collector's zone";
		goto out;
	}
	*field = lo % SIM_FM_SLOT_MS ? "search.from" : "search.to";
	if (lo % SIM_FM_SLOT_MS || hi % SIM_FM_SLOT_MS) {
		msg = "times must lie on 5-minute boundaries";
		goto out;
	}
	if (!cfg->fm_to_exclusive)
		hi += SIM_FM_SLOT_MS;	/* the slot starting at to is read */
	if (hi <= lo || hi - lo > SIM_MAX_RANGE_MS) {
		msg = cfg->fm_to_exclusive ? "to must be after from, at most 31 days later" :
			"to must not be before from, at most 31 days later";
		goto out;
	}
	*field = "search.profile";
	if (!cJSON_IsString(prof) || strcmp(prof->valuestring, "live")) {
		msg = "unknown profile (this collector has live)";
		goto out;
	}
	*field = "search.channels";
	r->q.channels = 0;
	if (!cJSON_IsArray(chans) || !cJSON_GetArraySize(chans)) {
		msg = "channels is required: a non-empty array of channel names";
		goto out;
	}
	cJSON_ArrayForEach(it, chans) {
		int k = -1;
		for (int i = 0; cJSON_IsString(it) && i < FM_NCHANNELS; i++)
			if (strcmp(it->valuestring, strrchr(fm_channels[i].id, '/') + 1) == 0)
				k = i;
		if (k < 0) {
			msg = "unknown channel (send the part of its id after the last '/')";
			goto out;
		}
		r->q.channels |= 1u << k;
	}
	*field = "search.listing.aggregateBy";
	agg = cJSON_IsObject(listing) ? cJSON_GetObjectItemCaseSensitive(listing, "aggregateBy") :
		NULL;
	if (agg && (!cJSON_IsArray(agg) || cJSON_GetArraySize(agg))) {
		msg = "aggregated listings are not served by this collector (leave listing out)";
		goto out;
	}
	*field = "search.filter";
	if (flt && !cJSON_IsString(flt)) {
		msg = "filter must be a string";
		goto out;
	}
	if (sim_fm_filter_parse(flt ? flt->valuestring : "", &parsed, err)) {
		msg = err;
		goto out;
	}
	r->flt = *parsed;
	r->q.lo = lo;
	r->q.hi = hi;
	r->q.active_timeout_ms = (int64_t)cfg->fm_active_timeout_s * 1000;
out:
	sim_fm_filter_free(parsed);
	cJSON_Delete(doc);
	return msg;
}

/* GET|POST /rest/fmc/analysis/flows: check everything, keep a result. */
static int serve_listing(struct sim_fm *s, const struct sim_fm_req *rq,
			 const struct fm_form *f, struct sim_fm_answer *a)
{
	struct fm_result *r = calloc(1, sizeof(*r));
	const char *so = param(rq, f, "showonly"), *field = "search", *msg;
	char err[SIM_ERRLEN];
	uint32_t showonly = 10;		/* "Default 10" (G10 p.59) */
	int rc;

	if (!r)
		return -ENOMEM;
	msg = parse_search(s->cfg, param(rq, f, "search"), r, &field, err);
	if (!msg && so && (parse_uint(so, UINT32_MAX, &showonly) || showonly < 1 ||
			   showonly > s->cfg->max_records)) {
		field = "showonly";
		snprintf(err, sizeof(err), "showonly must be an integer from 1 to the maximum (%u)",
			 s->cfg->max_records);
		msg = err;
	}
	if (!msg && (msg = parse_output(param(rq, f, "output"), r)))
		field = "output";
	if (msg) {
		rc = invalid(a, field, msg);
		free(r);
		return rc;
	}
	r->showonly = showonly;
	r->q.visible_before = sim_now_ms(s->cfg);
	r->created = mono_ms();
	pthread_mutex_lock(&s->lock);
	r->seed = sim_rand(&s->rng);
	r->id = s->next_id++;
	s->listings++;
	s->results[r->id % FM_RESULTS] = *r;
	pthread_mutex_unlock(&s->lock);
	answer_json(a, 200);
	rc = sim_buf_printf(&a->body, "{\"id\":%llu}", (unsigned long long)r->id);
	free(r);
	return rc;
}

/* GET /rest/fmc/analysis/results: the latest results the appliance
 * still knows (G10 p.65-66, "list of latest async results"), newest
 * first, at most FM_LIST_LATEST of them (how many: a guess), each
 * {"id", "name", "state"} with state 0 while it answers 202, else 1
 * (finished; flowsim's searches never fail, 2); a forgotten result is
 * not listed, as /results/ID answers it 204. */
static int serve_result_list(struct sim_fm *s, struct sim_fm_answer *a)
{
	int64_t now = mono_ms();
	size_t shown = 0;
	int rc;

	answer_json(a, 200);
	rc = sim_buf_add(&a->body, "[", 1);
	pthread_mutex_lock(&s->lock);
	s->result_lists++;
	for (uint64_t id = s->next_id; !rc && id-- > FM_FIRST_ID && shown < FM_LIST_LATEST;) {
		const struct fm_result *r = &s->results[id % FM_RESULTS];
		if (r->id != id)
			break;	/* overwritten by a newer one: older ones are gone too */
		if (now - r->created >= (int64_t)s->cfg->fm_result_ttl_s * 1000)
			continue;
		rc = sim_buf_printf(&a->body, "%s{\"id\":%llu,\"name\":\"flowfs-sim\",\"state\":%d}",
				    shown++ ? "," : "", (unsigned long long)id,
				    r->polls < s->cfg->fm_pending ? 0 : 1);
	}
	pthread_mutex_unlock(&s->lock);
	if (!rc)
		rc = sim_buf_add(&a->body, "]", 1);
	return rc;
}

/* GET /rest/fmc/analysis/results/ID: 202 while "computing", then the
 * rows, 204 when there are none or the result is unknown or forgotten. */
static int serve_results(struct sim_fm *s, const struct sim_fm_req *rq,
			 struct sim_fm_answer *a)
{
	struct fm_result *r = malloc(sizeof(*r));
	struct sim_ref *refs = NULL, *pick = NULL;
	size_t n = 0, npick = 0;
	uint64_t id = strtoull(rq->route->id, NULL, 10), order;
	struct sim_matches m;
	struct sim_flow fl;
	int rc = 0;

	if (!r)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	*r = s->results[id % FM_RESULTS];
	bool known = r->id == id && id &&
		     mono_ms() - r->created < (int64_t)s->cfg->fm_result_ttl_s * 1000;
	bool pending = known && s->results[id % FM_RESULTS].polls < s->cfg->fm_pending;
	if (pending) {
		s->results[id % FM_RESULTS].polls++;
		s->pending_202++;
	}
	if (!known)
		s->gone_204++;
	order = sim_rand(&s->rng);
	pthread_mutex_unlock(&s->lock);
	if (!known) {
		a->status = 204;
		goto out;
	}
	if (pending) {
		answer_json(a, 202);
		rc = ADD(&a->body, "{\"code\":202,\"status\":\"error\",\"message\":"
			 "\"{_\\\"Requested result is not available yet.\\\"}\"}");
		goto out;
	}
	r->q.filter = &r->flt;
	rc = sim_fm_collect(s->ds, &r->q, &refs, &n);
	if (rc)
		goto out;
	if (!n) {
		pthread_mutex_lock(&s->lock);
		s->empty_204++;
		pthread_mutex_unlock(&s->lock);
		a->status = 204;
		goto out;
	}
	/* the same subset on every read of this result, in a new order */
	memset(&m, 0, sizeof(m));
	m.refs = refs;
	m.nrefs = n;
	m.total = n;
	rc = sim_query_pick(&m, r->showonly, r->seed, &pick, &npick);
	for (size_t i = npick; !rc && i > 1; i--) {
		size_t j = (size_t)sim_rand_below(&order, i);
		struct sim_ref t = pick[i - 1];
		pick[i - 1] = pick[j];
		pick[j] = t;
	}
	answer_json(a, 200);
	if (!rc)
		rc = sim_buf_add(&a->body, "[", 1);
	for (size_t i = 0; !rc && i < npick; i++) {
		const struct sim_chunk *c = sim_dataset_chunk(s->ds, pick[i].stream, pick[i].day);
		sim_flow_make(s->ds, pick[i].stream, pick[i].day, pick[i].pos,
			      c->start[pick[i].pos], &fl);
		if (i)
			rc = sim_buf_add(&a->body, ",", 1);
		if (!rc)
			rc = sim_fm_json_row(&a->body, &fl, r->cols, r->ncols, s->cfg->fm_id_keys,
					     s->cfg->fm_scale_min);
	}
	if (!rc)
		rc = sim_buf_add(&a->body, "]", 1);
out:
	free(pick);
	free(refs);
	free(r);
	return rc;
}

int sim_fm_serve(struct sim_fm *s, const struct sim_fm_req *rq, struct sim_fm_answer *a)
{
	struct fm_form form;
	const char *why;
	unsigned st;
	int rc;

	memset(a, 0, sizeof(*a));
	a->body.max = (size_t)1 << 30;
	rc = form_parse(rq->ctype, rq->body ? rq->body : "", rq->body ? rq->body_len : 0, &form);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		form_free(&form);
		if (rq->route->ep == SIM_FM_TOKEN)
			return oauth_error(a, 400, "invalid_request", "malformed form body");
		return invalid(a, "", "malformed form body");
	}
	if (rq->route->ep == SIM_FM_TOKEN) {
		rc = serve_token(s, rq, &form, a);
		goto out;
	}
	st = check_token(s, rq->auth, &why);
	if (st) {
		answer_json(a, st);
		rc = sim_fm_error_body(&a->body, st, why);
		goto out;
	}
	switch (rq->route->ep) {
	case SIM_FM_PROFILES: rc = serve_profiles(a); break;
	case SIM_FM_CHANNELS: rc = serve_channels(rq, &form, a); break;
	case SIM_FM_NFCOLUMNS: rc = serve_nfcolumns(a); break;
	case SIM_FM_FLOWS: rc = serve_listing(s, rq, &form, a); break;
	case SIM_FM_RESULT_LIST: rc = serve_result_list(s, a); break;
	default: rc = serve_results(s, rq, a); break;
	}
out:
	form_free(&form);
	return rc;
}

int sim_fm_counters(struct sim_fm *s, struct sim_buf *b)
{
	int live = 0, rc;
	int64_t now = mono_ms();

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < FM_TOKENS; i++)
		live += s->tokens[i].seq && s->tokens[i].expires > now;
	rc = sim_buf_printf(b, "{\"tokens\":%d,\"logins\":%llu,\"refreshes\":%llu,"
			    "\"refused_logins\":%llu,\"expired_401\":%llu,\"listings\":%llu,"
			    "\"pending_202\":%llu,\"gone_204\":%llu,\"empty_204\":%llu,"
			    "\"result_lists\":%llu}", live,
			    (unsigned long long)s->logins, (unsigned long long)s->refreshes,
			    (unsigned long long)s->refused, (unsigned long long)s->expired_401,
			    (unsigned long long)s->listings, (unsigned long long)s->pending_202,
			    (unsigned long long)s->gone_204, (unsigned long long)s->empty_204,
			    (unsigned long long)s->result_lists);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void sim_fm_counters_reset(struct sim_fm *s)
{
	pthread_mutex_lock(&s->lock);
	s->logins = s->refreshes = s->refused = s->expired_401 = 0;
	s->listings = s->pending_202 = s->gone_204 = s->empty_204 = s->result_lists = 0;
	pthread_mutex_unlock(&s->lock);
}

static int sim_buf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sim_buf *)a)->p, ((const struct sim_buf *)b)->p);
}

/* GET /_sim/flowmon/truth: every row a listing of [from, to) (export ms)
 * would hold without the cap, sorted by the row's text; filter, channels
 * (comma-separated names; default all) as in a listing. */
int sim_fm_truth(struct sim_fm *s, const char *from, const char *to, const char *filter,
		 const char *channels, bool rows, struct sim_buf *b, const char **msg)
{
	struct sim_fm_search q = {0};
	struct sim_fm_filter *flt = NULL;
	struct sim_ref *refs = NULL;
	struct sim_buf *each = NULL;
	uint8_t cols[COL_N];
	char err[SIM_ERRLEN];
	size_t n = 0;
	char *end;
	int rc;

	*msg = NULL;
	for (int i = 0; i < COL_N; i++)
		cols[i] = (uint8_t)i;
	if (!from || !to) {
		*msg = "from and to (ms) are required";
		return 0;
	}
	q.lo = strtoll(from, &end, 10);
	if (*end || end == from)
		*msg = "bad from";
	q.hi = strtoll(to, &end, 10);
	if (*end || end == to)
		*msg = "bad to";
	if (!*msg && (q.hi <= q.lo || q.hi - q.lo > SIM_MAX_RANGE_MS))
		*msg = "to must be after from, at most 31 days";
	q.channels = channels ? 0 : (1u << FM_NCHANNELS) - 1;
	for (const char *c = channels; !*msg && c && *c;) {
		size_t len = strcspn(c, ",");
		int k = -1;
		for (int i = 0; i < FM_NCHANNELS; i++) {
			const char *name = strrchr(fm_channels[i].id, '/') + 1;
			if (strlen(name) == len && strncmp(c, name, len) == 0)
				k = i;
		}
		if (k < 0)
			*msg = "unknown channel";
		else
			q.channels |= 1u << k;
		c += len + (c[len] == ',');
	}
	if (!*msg && sim_fm_filter_parse(filter, &flt, err))
		*msg = "bad filter";
	if (*msg)
		return 0;
	q.filter = flt;
	q.visible_before = sim_now_ms(s->cfg);
	q.active_timeout_ms = (int64_t)s->cfg->fm_active_timeout_s * 1000;
	rc = sim_fm_collect(s->ds, &q, &refs, &n);
	if (!rc)
		rc = sim_buf_printf(b, "{\"count\":%zu", n);
	if (!rc && rows) {
		each = calloc(n ? n : 1, sizeof(*each));
		rc = each ? sim_buf_add(b, ",\"rows\":[", 9) : -ENOMEM;
		for (size_t i = 0; !rc && i < n; i++) {
			const struct sim_chunk *c = sim_dataset_chunk(s->ds, refs[i].stream,
								      refs[i].day);
			struct sim_flow f;
			sim_flow_make(s->ds, refs[i].stream, refs[i].day, refs[i].pos,
				      c->start[refs[i].pos], &f);
			each[i].max = 4096;
			rc = sim_fm_json_row(&each[i], &f, cols, COL_N, s->cfg->fm_id_keys,
					     s->cfg->fm_scale_min);
			if (!rc)
				rc = sim_buf_add(&each[i], "", 1);	/* NUL-terminated */
		}
		if (!rc)
			qsort(each, n, sizeof(*each), sim_buf_cmp);
		for (size_t i = 0; !rc && i < n; i++)
			rc = sim_buf_printf(b, "%s%s", i ? "," : "", each[i].p);
		if (!rc)
			rc = sim_buf_add(b, "]", 1);
	}
	if (!rc)
		rc = sim_buf_add(b, "}", 1);
	for (size_t i = 0; each && i < n; i++)
		sim_buf_free(&each[i]);
	free(each);
	free(refs);
	sim_fm_filter_free(flt);
	return rc;
}
