/*
 * main.c - flowsim's command line: options, the dataset, signals.
 *
 * SIGTERM and SIGINT are blocked before any thread starts and taken with
 * sigwait() here, so no handler runs inside a server thread and shutdown
 * is an ordinary function call.
 */
#include "sim.h"
#include "opttab.h"

#include <microhttpd.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILE_MAX (1 << 20)

enum {
	O_LISTEN = 256, O_PORTFILE, O_SEED, O_SCENARIO, O_PRINT, O_DAYS, O_NOW,
	O_MAXREC, O_MATCH, O_DELAY, O_RETENTION, O_TOKEN, O_TOKENFILE, O_TRUTH,
	O_LOG, O_RETRYAFTER, O_SLOWMS, O_STALLS, O_SCOPE, O_FSEED, O_HELP,
	O_DIALECT, O_SNAUSER, O_SNAPASS, O_SNAPASSFILE, O_SNASESSION, O_SNAQUERYMS,
	O_SNATTL, O_SNAMAXQ, O_SNATENANTS, O_SNATEXT, O_SNANOXSRF, O_SNAFAIL,
	O_SNAANYACCEPT, O_SNAXSRFHDR, O_SNAXSRFROT, O_SNATAGSDN, O_SNACANCEL, O_SNASTATUS,
	O_FMTTL, O_FMPENDING, O_FMRESTTL, O_FMTIMEOUT, O_FMTZ, O_FMTOEXCL, O_FMKEYS,
	O_FMSCALE, O_VERSION, O_MAN,
	O_FAULT0 = 512,
};

#define ARG(nm, a, k, h, ...) {.name = nm, .type = OPTTAB_TEXT, .arg = a, .help = h, .key = k, \
			       .at = OPTTAB_NOWHERE, __VA_ARGS__}
#define INT(nm, a, k, l, hh, d, h) {.name = nm, .type = OPTTAB_INT, .arg = a, .lo = l, \
				    .hi = hh, .def = d, .help = h, .key = k, .at = OPTTAB_NOWHERE}
#define FLAG(nm, k, h) {.name = nm, .type = OPTTAB_FLAG, .help = h, .key = k, \
			.at = OPTTAB_NOWHERE}
#define RATE(nm, f, h) ARG(nm, "R", O_FAULT0 + (f), h, .values = "a rate from 0 to 1", \
			   .def_text = "0")

/* flowsim's options: --help, --man and getopt read this table only
 * (docs/flowsim.md tells more of each). */
static const struct opttab sim_opts_table[] = {
	ARG("listen", "HOST:PORT", O_LISTEN, "the address to listen on (port 0: any free one)",
	    .def_text = "127.0.0.1:8080"),
	ARG("port_file", "FILE", O_PORTFILE, "write the port there once listening"),
	ARG("seed", "N", O_SEED, "the dataset's seed", .def_text = "1"),
	ARG("scenario", "FILE", O_SCENARIO, "the scenario file", .def_text = "the built-in one"),
	FLAG("print_scenario", O_PRINT, "print the built-in scenario, and exit"),
	INT("days", "N", O_DAYS, 1, SIM_MAX_DAYS, 7, "days of data, ending today"),
	ARG("now", "T", O_NOW, "freeze the clock: milliseconds since the epoch, or ISO 8601 UTC "
	    "(YYYY-MM-DD[THH:MM:SS[.mmm]][Z])", .def_text = "the real clock"),
	INT("max_records", "N", O_MAXREC, 1, 1000000, 10000, "the per-request cap"),
	ARG("match", "start|overlap", O_MATCH, "how a window selects flows: by their start, or "
	    "by overlap", .def_text = "start"),
	INT("export_delay", "S", O_DELAY, 0, 86400, 300, "the export delay, in seconds"),
	INT("retention_days", "N", O_RETENTION, 1, 3650, 90, "the retention /info reports"),
	ARG("token", "T", O_TOKEN, "require this bearer token", .def_text = "none checked"),
	ARG("token_file", "FILE", O_TOKENFILE, "require the bearer token in the file's first line"),
	FLAG("truth", O_TRUTH, "enable the /_sim test endpoints (truth, counters, faults)"),
	FLAG("log", O_LOG, "log one line a request to stderr"),
	RATE("fail_500", SIM_FAULT_500, "fault: answer 500"),
	RATE("fail_503", SIM_FAULT_503, "fault: answer 503"),
	RATE("fail_429", SIM_FAULT_429, "fault: answer 429 with Retry-After"),
	RATE("slow", SIM_FAULT_SLOW, "fault: answer after --slow-ms"),
	RATE("stall", SIM_FAULT_STALL, "fault: accept, then send nothing for --stall-s"),
	RATE("reset", SIM_FAULT_RESET, "fault: reset the connection"),
	RATE("cut", SIM_FAULT_CUT, "fault: cut the body short"),
	RATE("malformed", SIM_FAULT_MALFORMED, "fault: a body that is not the dialect's"),
	RATE("html", SIM_FAULT_HTML, "fault: an HTML page (a proxy's)"),
	RATE("fail_401", SIM_FAULT_401, "fault: answer 401 (a token that expired)"),
	RATE("foreign", SIM_FAULT_FOREIGN, "fault: an answer that ignores its filter (1 to 5 "
	     "flows the query does not select added, never past the cap)"),
	INT("retry_after", "S", O_RETRYAFTER, 0, 3600, 1, "a 429's Retry-After, in seconds"),
	INT("slow_ms", "MS", O_SLOWMS, 0, 3600000, 2000, "a slow answer's delay"),
	INT("stall_s", "S", O_STALLS, 0, 86400, 600, "a stalled answer's silence"),
	ARG("fault_scope", "flows|all", O_SCOPE, "which endpoints faults hit",
	    .def_text = "flows"),
	ARG("fault_seed", "N", O_FSEED, "the seed of the fault draws",
	    .def_text = "the time at start"),
	ARG("dialect", "flowapi|sna|flowmon", O_DIALECT, "the API to serve",
	    .def_text = "flowapi"),
	ARG("sna_user", "U", O_SNAUSER, "sna: the accepted login's user", .def_text = "admin"),
	ARG("sna_password", "P", O_SNAPASS, "sna: the accepted login's password",
	    .def_text = "flowsim"),
	ARG("sna_password_file", "FILE", O_SNAPASSFILE, "sna: the password in the file's first "
	    "line"),
	INT("sna_session_s", "N", O_SNASESSION, 1, 86400, 1200, "sna: a session's lifetime"),
	INT("sna_query_ms", "MS", O_SNAQUERYMS, 0, 600000, 200, "sna: searches stay "
	    "IN_PROGRESS this long"),
	INT("sna_query_ttl_s", "S", O_SNATTL, 1, 86400, 600, "sna: searches are kept this long "
	    "once done"),
	INT("sna_max_queries", "N", O_SNAMAXQ, 1, 100000, 1024, "sna: searches kept at once"),
	INT("sna_tenants", "N", O_SNATENANTS, 1, 2, 1, "sna: tenants served"),
	FLAG("sna_tenants_text", O_SNATEXT, "sna: accepted for old scripts (text/plain is the "
	     "default now)"),
	FLAG("sna_any_accept", O_SNAANYACCEPT, "sna: serve the tenants list (text/plain) "
	     "whatever the Accept header says (default: 406 unless it admits text/plain)"),
	FLAG("sna_no_xsrf", O_SNANOXSRF, "sna: no XSRF-TOKEN cookie and no header check"),
	FLAG("sna_xsrf_header_only", O_SNAXSRFHDR, "sna: check X-XSRF-TOKEN against the session "
	     "alone (default: the XSRF-TOKEN cookie must come back too, equal)"),
	INT("sna_xsrf_rotate_s", "N", O_SNAXSRFROT, 0, 86400, 0, "sna: a session's XSRF token "
	    "changes every N s after its login, told to no one (0: never)"),
	FLAG("sna_tags_display_name", O_SNATAGSDN, "sna: the tag list's items carry displayName "
	     "besides name"),
	ARG("sna_fail_query", "R", O_SNAFAIL, "sna: the rate of searches that end FAILED",
	    .def_text = "0", .values = "a rate from 0 to 1"),
	ARG("sna_cancel_query", "R", O_SNACANCEL, "sna: the rate of searches that end CANCELED",
	    .def_text = "0", .values = "a rate from 0 to 1"),
	ARG("sna_status_extra", "L", O_SNASTATUS, "sna: statuses (comma-separated, at most 4) a "
	    "search shows before IN_PROGRESS", .def_text = "none"),
	INT("flowmon_token_ttl", "S", O_FMTTL, 1, 31536000, 3600, "flowmon: expires_in of an "
	    "access token (the login is --token or --token-file, user:password; default "
	    "admin:flowsim)"),
	INT("flowmon_pending", "N", O_FMPENDING, 0, 1000, 1, "flowmon: 202 answers a result "
	    "gives before 200"),
	INT("flowmon_result_ttl", "S", O_FMRESTTL, 1, 86400, 600, "flowmon: a result is "
	    "forgotten S s after its listing"),
	INT("flowmon_active_timeout", "S", O_FMTIMEOUT, 0, 86400, 300, "flowmon: a flow is "
	    "exported up to S after its end"),
	ARG("flowmon_tz", "ZONE", O_FMTZ, "flowmon: the collector's zone", .def_text = "UTC"),
	FLAG("flowmon_to_exclusive", O_FMTOEXCL, "flowmon: a listing does not read the slot "
	     "starting at to"),
	ARG("flowmon_keys", "internal|ids", O_FMKEYS, "flowmon: row keys (internal: srcip, "
	    "srcport:p, ...; ids: the column ids asked)", .def_text = "internal"),
	ARG("flowmon_scale_min", "N", O_FMSCALE, "flowmon: numbers from N on are scaled, "
	    "\"1.3 M\" (0: never)", .def_text = "1000000, nfdump's"),
	{.name = "help", .short_name = 'h', .type = OPTTAB_FLAG, .help = "this help, and exit",
	 .key = O_HELP, .at = OPTTAB_NOWHERE},
	FLAG("version", O_VERSION, "the version, and exit"),
	FLAG("man", O_MAN, "the man page (roff) on stdout, and exit"),
};

static const struct opttab_example sim_examples[] = {
	{"A collector on a free port of the loopback, with a token and the test endpoints:",
	 "flowsim --listen 127.0.0.1:0 --port-file /tmp/port --token-file token --truth"},
	{"Then every flow of one of its hosts, yesterday, with flowfetch(1):",
	 "flowfetch http://127.0.0.1:$(cat /tmp/port) --token-file token --ip 10.0.1.11 \\\n"
	 "    --from $(date -u -d yesterday +%F) --to $(date -u -d yesterday +%F) -o db-1.csv"},
};

static const struct opttab_prog sim_prog = {
	.name = "flowsim", .section = 1, .version = FLOWFS_VERSION,
	.summary = "a simulated flow collector, for flowfs's tests and demos",
	.synopsis = "[options]",
	.description =
		"flowsim serves the reference dialect flowapi/1 (or, with --dialect sna, an SNA "
		"Manager's; with --dialect flowmon, a Flowmon appliance's) over HTTP from a dataset generated from a seed and a scenario, with "
		"the limits of a real collector: a cap on every answer, answers in no order, a "
		"live edge.\n"
		"\n"
		"Faults are rates from 0 to 1 (they must add up to at most 1), and can be changed "
		"while it runs through /_sim/faults with --truth. SIGTERM or SIGINT stop it.\n",
	.style = OPTTAB_LONG, .opts = sim_opts_table,
	.nopts = sizeof(sim_opts_table) / sizeof(sim_opts_table[0]),
	.examples = sim_examples, .nexamples = sizeof(sim_examples) / sizeof(sim_examples[0]),
	.see_also = "flowfs(8), flowfetch(1); docs/flowsim.md in flowfs's sources",
	.footer = "See docs/flowsim.md.\n",
};
/* Read a whole small file into a new string.  -errno with cause in err. */
static int read_file(const char *path, char **out, char *err)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(err, SIM_ERRLEN, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	buf = malloc(FILE_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, FILE_MAX + 1, f);
	fclose(f);
	if (n > FILE_MAX) {
		free(buf);
		snprintf(err, SIM_ERRLEN, "%s is larger than %d bytes", path, FILE_MAX);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

int sim_time_parse(const char *text, int64_t *ms)
{
	struct tm tm;
	char *end;
	unsigned frac = 0;

	if (text[0] >= '0' && text[0] <= '9' && !strchr(text, '-')) {
		long long v;
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno || *end || v < 0)
			return -EINVAL;
		*ms = v;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(text, "%Y-%m-%d", &tm);
	if (!end)
		return -EINVAL;
	if (*end == 'T') {
		end = strptime(end + 1, "%H:%M:%S", &tm);
		if (!end)
			return -EINVAL;
		if (*end == '.') {
			int n = 0;
			if (sscanf(end + 1, "%3u%n", &frac, &n) != 1 || n != 3)
				return -EINVAL;
			end += 4;
		}
		if (*end == 'Z')
			end++;
	}
	if (*end)
		return -EINVAL;
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return 0;
}

/* Copy a non-empty option value that fits; -EINVAL otherwise. */
static int copy_opt(char *dst, size_t len, const char *value)
{
	if (!*value || strlen(value) >= len)
		return -EINVAL;
	strcpy(dst, value);
	return 0;
}

/* *out = 0 for the word a, 1 for b; -EINVAL for anything else. */
static int choose(const char *s, const char *a, const char *b, long *out)
{
	*out = strcmp(s, b) == 0;
	return strcmp(s, a) == 0 || *out ? 0 : -EINVAL;
}

/* The first line of a file into dst (non-empty, fits); -errno or -EINVAL
 * with the cause in err. */
static int read_secret(const char *path, char *dst, size_t len, char *err)
{
	char *text;
	int rc = read_file(path, &text, err);

	if (rc)
		return rc;
	text[strcspn(text, "\r\n")] = '\0';
	rc = copy_opt(dst, len, text);
	if (rc)
		snprintf(err, SIM_ERRLEN, "%s: the first line must hold 1 to %zu characters", path,
			 len - 1);
	free(text);
	return rc;
}

static int parse_rate(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static struct opttab_getopt g;
	const struct opttab *t;
	char oerr[OPTTAB_ERRLEN];
	struct sim_config cfg;
	static struct sim_scenario sc;	/* large: keep it off the stack */
	static struct sim_dataset ds;
	struct sim_server *srv = NULL;
	char err[SIM_ERRLEN] = "", *text = NULL;
	const char *scenario_path = NULL;
	sigset_t set;
	long v;
	int c, sig, rc;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.listen, "127.0.0.1:8080");
	cfg.seed = 1;
	cfg.max_records = (uint32_t)opttab_by_key(&sim_prog, O_MAXREC)->def;
	cfg.fault_seed = (uint64_t)time(NULL);
	strcpy(cfg.sna_user, "admin");
	strcpy(cfg.sna_password, "flowsim");
	cfg.sna_max_queries = (uint32_t)opttab_by_key(&sim_prog, O_SNAMAXQ)->def;
	strcpy(cfg.fm_tz, "UTC");
	cfg.fm_scale_min = 1000000;

	/* the options that take an int in a range (the table's) */
	const struct {
		int opt;
		int *dst;
	} ints[] = {
		{O_DAYS, &cfg.ndays}, {O_DELAY, &cfg.export_delay_s},
		{O_RETENTION, &cfg.retention_days}, {O_RETRYAFTER, &cfg.retry_after_s},
		{O_SLOWMS, &cfg.slow_ms}, {O_STALLS, &cfg.stall_s},
		{O_SNASESSION, &cfg.sna_session_s}, {O_SNAQUERYMS, &cfg.sna_query_ms},
		{O_SNATTL, &cfg.sna_query_ttl_s}, {O_SNATENANTS, &cfg.sna_tenants},
		{O_SNAXSRFROT, &cfg.sna_xsrf_rotate_s},
		{O_FMTTL, &cfg.fm_token_ttl_s}, {O_FMPENDING, &cfg.fm_pending},
		{O_FMRESTTL, &cfg.fm_result_ttl_s}, {O_FMTIMEOUT, &cfg.fm_active_timeout_s},
	};

	if (opttab_getopt(&sim_prog, &g))
		return 2;
	for (size_t i = 0; i < sim_prog.nopts; i++)	/* the table's defaults */
		for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++)
			if (sim_opts_table[i].key == ints[k].opt)
				*ints[k].dst = (int)sim_opts_table[i].def;
	for (int li = -1; (c = getopt_long(argc, argv, g.shortopts, g.longopts, &li)) != -1;
	     li = -1) {
		bool is_int = false;
		rc = 0;
		t = opttab_getopt_entry(&g, c, li);
		for (size_t i = 0; t && i < sizeof(ints) / sizeof(ints[0]); i++) {
			if (ints[i].opt == c) {
				if (opttab_parse_int(t, OPTTAB_LONG, optarg, &v, oerr))
					goto bad_opt;
				*ints[i].dst = (int)v;
				is_int = true;
			}
		}
		switch (!t ? '?' : is_int ? 0 : c) {
		case 0:
			break;
		case O_LISTEN:
			rc = strlen(optarg) < sizeof(cfg.listen) ? 0 : -EINVAL;
			if (!rc)
				strcpy(cfg.listen, optarg);
			break;
		case O_PORTFILE:
			rc = strlen(optarg) < sizeof(cfg.port_file) ? 0 : -EINVAL;
			if (!rc)
				strcpy(cfg.port_file, optarg);
			break;
		case O_SEED:
			rc = parse_int(optarg, 0, 0x7fffffffffffffffL, &v);
			cfg.seed = (uint64_t)v;
			break;
		case O_SCENARIO: scenario_path = optarg; break;
		case O_PRINT: fputs(sim_default_scenario, stdout); return 0;
		case O_NOW: rc = sim_time_parse(optarg, &cfg.now_ms); break;
		case O_MAXREC:
			if (opttab_parse_int(t, OPTTAB_LONG, optarg, &v, oerr))
				goto bad_opt;
			cfg.max_records = (uint32_t)v;
			break;
		case O_MATCH:
			rc = choose(optarg, "start", "overlap", &v);
			cfg.match = v ? SIM_MATCH_OVERLAP : SIM_MATCH_START;
			break;
		case O_TOKEN:
			rc = copy_opt(cfg.token, sizeof(cfg.token), optarg);
			break;
		case O_TOKENFILE:
			if (read_secret(optarg, cfg.token, sizeof(cfg.token), err))
				goto bad_err;
			break;
		case O_TRUTH: cfg.truth = true; break;
		case O_LOG: cfg.log = true; break;
		case O_SCOPE:
			rc = choose(optarg, "flows", "all", &v);
			cfg.faults_all = v == 1;
			break;
		case O_FSEED:
			rc = parse_int(optarg, 0, 0x7fffffffffffffffL, &v);
			cfg.fault_seed = (uint64_t)v;
			break;
		case O_DIALECT:
			rc = strcmp(optarg, "flowmon") ? choose(optarg, "flowapi", "sna", &v) : 0;
			cfg.dialect = strcmp(optarg, "flowmon") == 0 ? SIM_FLOWMON :
				      v ? SIM_SNA : SIM_FLOWAPI;
			break;
		case O_FMTZ: rc = copy_opt(cfg.fm_tz, sizeof(cfg.fm_tz), optarg); break;
		case O_FMTOEXCL: cfg.fm_to_exclusive = true; break;
		case O_FMKEYS:
			rc = choose(optarg, "internal", "ids", &v);
			cfg.fm_id_keys = v == 1;
			break;
		case O_FMSCALE:
			rc = parse_int(optarg, 0, 0x7fffffffffffffffL, &v);
			cfg.fm_scale_min = (uint64_t)v;
			break;
		case O_SNAUSER:
			rc = copy_opt(cfg.sna_user, sizeof(cfg.sna_user), optarg);
			break;
		case O_SNAPASS:
			rc = copy_opt(cfg.sna_password, sizeof(cfg.sna_password), optarg);
			break;
		case O_SNAPASSFILE:
			if (read_secret(optarg, cfg.sna_password, sizeof(cfg.sna_password), err))
				goto bad_err;
			break;
		case O_SNAMAXQ:
			if (opttab_parse_int(t, OPTTAB_LONG, optarg, &v, oerr))
				goto bad_opt;
			cfg.sna_max_queries = (uint32_t)v;
			break;
		case O_SNATEXT: break;	/* text/plain is the default now */
		case O_SNANOXSRF: cfg.sna_no_xsrf = true; break;
		case O_SNAFAIL: rc = parse_rate(optarg, &cfg.sna_fail_query); break;
		case O_SNAANYACCEPT: cfg.sna_any_accept = true; break;
		case O_SNAXSRFHDR: cfg.sna_xsrf_header_only = true; break;
		case O_SNATAGSDN: cfg.sna_tags_display_name = true; break;
		case O_SNACANCEL: rc = parse_rate(optarg, &cfg.sna_cancel_query); break;
		case O_SNASTATUS: rc = sim_sna_parse_statuses(optarg, &cfg); break;
		case O_HELP:
		case 'h':
			opttab_help(&sim_prog, stdout);
			return 0;
		case O_VERSION:
			printf("flowsim %s\nlibmicrohttpd %s\n", FLOWFS_VERSION, MHD_get_version());
			return 0;
		case O_MAN:
			opttab_man(&sim_prog, stdout);
			return 0;
		default:
			if (c >= O_FAULT0 && c < O_FAULT0 + SIM_NFAULTS) {
				rc = parse_rate(optarg, &cfg.rate[c - O_FAULT0]);
				break;
			}
			opttab_help(&sim_prog, stderr);
			return 2;
		}
		if (rc) {
			char name[OPTTAB_NAME_MAX];
			opttab_long_name(t, name, sizeof(name));
			fprintf(stderr, "flowsim: bad value '%s' for --%s\n", optarg, name);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "flowsim: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (sim_config_check(&cfg, err))
		goto bad_err;
	/* the collector's zone, before any thread starts (flowmon.c) */
	if (cfg.dialect == SIM_FLOWMON && sim_fm_zone_set(cfg.fm_tz, err))
		goto bad_err;
	if (scenario_path) {
		if (read_file(scenario_path, &text, err))
			goto bad_err;
		rc = sim_scenario_parse(text, &sc, err);
		free(text);
		if (rc) {
			fprintf(stderr, "flowsim: %s: %s\n", scenario_path, err);
			return 2;
		}
	} else if (sim_scenario_parse(sim_default_scenario, &sc, err)) {
		goto bad_err;
	}
	if (sim_dataset_init(&ds, &sc, cfg.seed, sim_now_ms(&cfg), cfg.ndays)) {
		fprintf(stderr, "flowsim: out of memory\n");
		return 1;
	}

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = sim_server_start(&cfg, &ds, &srv, err);
	if (rc) {
		fprintf(stderr, "flowsim: %s\n", err);
		sim_dataset_free(&ds);
		return 1;
	}
	sigwait(&set, &sig);
	fprintf(stderr, "flowsim: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	sim_server_stop(srv);
	sim_dataset_free(&ds);
	return 0;

bad_err:
	fprintf(stderr, "flowsim: %s\n", err);
	return 2;
bad_opt:
	fprintf(stderr, "flowsim: %s\n", oerr);
	return 2;
}
