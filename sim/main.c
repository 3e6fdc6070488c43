/*
 * main.c - flowsim's command line: options, the dataset, signals.
 *
 * SIGTERM and SIGINT are blocked before any thread starts and taken with
 * sigwait() here, so no handler runs inside a server thread and shutdown
 * is an ordinary function call.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILE_MAX (1 << 20)

static void usage(FILE *out)
{
	fputs("usage: flowsim [options]\n"
	      "  --listen HOST:PORT      listen address (default 127.0.0.1:8080; port 0: any)\n"
	      "  --port-file FILE        write the port there once listening\n"
	      "  --seed N                dataset seed (default 1)\n"
	      "  --scenario FILE         scenario file (default: built in)\n"
	      "  --print-scenario        print the built-in scenario and exit\n"
	      "  --days N                days of data ending today (default 7, 1..400)\n"
	      "  --now T                 freeze the clock (ms since the epoch or ISO 8601 UTC)\n"
	      "  --max-records N         per-request cap (default 10000)\n"
	      "  --match start|overlap   how a window selects flows (default start)\n"
	      "  --export-delay S        export delay in seconds (default 300)\n"
	      "  --retention-days N      retention reported by /info (default 90)\n"
	      "  --token T, --token-file F  require this bearer token\n"
	      "  --truth                 enable the /_sim test endpoints\n"
	      "  --log                   log one line a request to stderr\n"
	      "  --fail-500 R --fail-503 R --fail-429 R --slow R --stall R\n"
	      "  --reset R --cut R --malformed R --html R --fail-401 R   fault rates, 0 to 1\n"
	      "  --foreign R             fault rate, 0 to 1: an answer that ignores its filter\n"
	      "                          (1 to 5 flows the query does not select added,\n"
	      "                          never past the cap: see docs/flowsim.md)\n"
	      "  --retry-after S --slow-ms MS --stall-s S   fault parameters\n"
	      "  --fault-scope flows|all  which endpoints faults hit (default flows)\n"
	      "  --fault-seed N          seed of the fault draws\n"
	      "  --dialect flowapi|sna|flowmon  the API to serve (default flowapi)\n"
	      "  SNA dialect:\n"
	      "  --sna-user U --sna-password P --sna-password-file F\n"
	      "                          the accepted login (default admin / flowsim)\n"
	      "  --sna-session-s N       session lifetime (default 1200, 1..86400)\n"
	      "  --sna-query-ms MS       searches stay IN_PROGRESS this long (default 200)\n"
	      "  --sna-query-ttl-s S     searches are kept this long once done (default 600)\n"
	      "  --sna-max-queries N     searches kept at once (default 1024, 1..100000)\n"
	      "  --sna-tenants 1|2       tenants served (default 1)\n"
	      "  --sna-any-accept        serve the tenants list (text/plain) whatever the\n"
	      "                          Accept header says (default: 406 unless it admits\n"
	      "                          text/plain)\n"
	      "  --sna-no-xsrf           no XSRF-TOKEN cookie and no header check\n"
	      "  --sna-xsrf-header-only  check X-XSRF-TOKEN against the session alone (default:\n"
	      "                          the XSRF-TOKEN cookie must come back too, equal)\n"
	      "  --sna-xsrf-rotate-s N   a session's XSRF token changes every N s after its\n"
	      "                          login, told to no one (default 0: never)\n"
	      "  --sna-tags-display-name the tag list's items carry displayName besides name\n"
	      "  --sna-fail-query R      rate of searches that end FAILED (default 0)\n"
	      "  --sna-cancel-query R    rate of searches that end CANCELED (default 0)\n"
	      "  --sna-status-extra L    statuses (comma-separated, at most 4) a search shows\n"
	      "                          before IN_PROGRESS (default none)\n"
	      "  Flowmon dialect (the login is --token or --token-file, user:password;\n"
	      "  default admin:flowsim):\n"
	      "  --flowmon-token-ttl S   expires_in of an access token (default 3600)\n"
	      "  --flowmon-pending N     202 answers a result gives before 200 (default 1)\n"
	      "  --flowmon-result-ttl S  a result is forgotten S s after its listing\n"
	      "                          (default 600)\n"
	      "  --flowmon-active-timeout S  a flow is exported up to S after its end\n"
	      "                          (default 300)\n"
	      "  --flowmon-tz ZONE       the collector's zone (default UTC)\n"
	      "  --flowmon-to-exclusive  a listing does not read the slot starting at to\n"
	      "  --flowmon-keys internal|ids  row keys (default internal: srcip, srcport:p...)\n"
	      "  --flowmon-scale-min N   numbers from N on are scaled, \"1.3 M\" (default\n"
	      "                          1000000, nfdump's; 0: never)\n"
	      "See docs/flowsim.md.\n", out);
}

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

enum {
	O_LISTEN = 256, O_PORTFILE, O_SEED, O_SCENARIO, O_PRINT, O_DAYS, O_NOW,
	O_MAXREC, O_MATCH, O_DELAY, O_RETENTION, O_TOKEN, O_TOKENFILE, O_TRUTH,
	O_LOG, O_RETRYAFTER, O_SLOWMS, O_STALLS, O_SCOPE, O_FSEED, O_HELP,
	O_DIALECT, O_SNAUSER, O_SNAPASS, O_SNAPASSFILE, O_SNASESSION, O_SNAQUERYMS,
	O_SNATTL, O_SNAMAXQ, O_SNATENANTS, O_SNATEXT, O_SNANOXSRF, O_SNAFAIL,
	O_SNAANYACCEPT, O_SNAXSRFHDR, O_SNAXSRFROT, O_SNATAGSDN, O_SNACANCEL, O_SNASTATUS,
	O_FMTTL, O_FMPENDING, O_FMRESTTL, O_FMTIMEOUT, O_FMTZ, O_FMTOEXCL, O_FMKEYS,
	O_FMSCALE,
	O_FAULT0 = 512,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", 1, 0, O_LISTEN}, {"port-file", 1, 0, O_PORTFILE},
		{"seed", 1, 0, O_SEED}, {"scenario", 1, 0, O_SCENARIO},
		{"print-scenario", 0, 0, O_PRINT}, {"days", 1, 0, O_DAYS},
		{"now", 1, 0, O_NOW}, {"max-records", 1, 0, O_MAXREC},
		{"match", 1, 0, O_MATCH}, {"export-delay", 1, 0, O_DELAY},
		{"retention-days", 1, 0, O_RETENTION}, {"token", 1, 0, O_TOKEN},
		{"token-file", 1, 0, O_TOKENFILE}, {"truth", 0, 0, O_TRUTH},
		{"log", 0, 0, O_LOG}, {"retry-after", 1, 0, O_RETRYAFTER},
		{"slow-ms", 1, 0, O_SLOWMS}, {"stall-s", 1, 0, O_STALLS},
		{"fault-scope", 1, 0, O_SCOPE}, {"fault-seed", 1, 0, O_FSEED},
		{"help", 0, 0, O_HELP}, {"dialect", 1, 0, O_DIALECT},
		{"sna-user", 1, 0, O_SNAUSER}, {"sna-password", 1, 0, O_SNAPASS},
		{"sna-password-file", 1, 0, O_SNAPASSFILE},
		{"sna-session-s", 1, 0, O_SNASESSION}, {"sna-query-ms", 1, 0, O_SNAQUERYMS},
		{"sna-query-ttl-s", 1, 0, O_SNATTL}, {"sna-max-queries", 1, 0, O_SNAMAXQ},
		{"sna-tenants", 1, 0, O_SNATENANTS}, {"sna-tenants-text", 0, 0, O_SNATEXT},
		{"sna-no-xsrf", 0, 0, O_SNANOXSRF}, {"sna-fail-query", 1, 0, O_SNAFAIL},
		{"sna-any-accept", 0, 0, O_SNAANYACCEPT},
		{"sna-xsrf-header-only", 0, 0, O_SNAXSRFHDR},
		{"sna-xsrf-rotate-s", 1, 0, O_SNAXSRFROT},
		{"sna-tags-display-name", 0, 0, O_SNATAGSDN},
		{"sna-cancel-query", 1, 0, O_SNACANCEL},
		{"sna-status-extra", 1, 0, O_SNASTATUS},
		{"flowmon-token-ttl", 1, 0, O_FMTTL}, {"flowmon-pending", 1, 0, O_FMPENDING},
		{"flowmon-result-ttl", 1, 0, O_FMRESTTL},
		{"flowmon-active-timeout", 1, 0, O_FMTIMEOUT}, {"flowmon-tz", 1, 0, O_FMTZ},
		{"flowmon-to-exclusive", 0, 0, O_FMTOEXCL}, {"flowmon-keys", 1, 0, O_FMKEYS},
		{"flowmon-scale-min", 1, 0, O_FMSCALE},
		{"fail-500", 1, 0, O_FAULT0 + SIM_FAULT_500},
		{"fail-503", 1, 0, O_FAULT0 + SIM_FAULT_503},
		{"fail-429", 1, 0, O_FAULT0 + SIM_FAULT_429},
		{"slow", 1, 0, O_FAULT0 + SIM_FAULT_SLOW},
		{"stall", 1, 0, O_FAULT0 + SIM_FAULT_STALL},
		{"reset", 1, 0, O_FAULT0 + SIM_FAULT_RESET},
		{"cut", 1, 0, O_FAULT0 + SIM_FAULT_CUT},
		{"malformed", 1, 0, O_FAULT0 + SIM_FAULT_MALFORMED},
		{"html", 1, 0, O_FAULT0 + SIM_FAULT_HTML},
		{"fail-401", 1, 0, O_FAULT0 + SIM_FAULT_401},
		{"foreign", 1, 0, O_FAULT0 + SIM_FAULT_FOREIGN},
		{0, 0, 0, 0},
	};
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
	cfg.ndays = 7;
	cfg.max_records = 10000;
	cfg.export_delay_s = 300;
	cfg.retention_days = 90;
	cfg.retry_after_s = 1;
	cfg.slow_ms = 2000;
	cfg.stall_s = 600;
	cfg.fault_seed = (uint64_t)time(NULL);
	strcpy(cfg.sna_user, "admin");
	strcpy(cfg.sna_password, "flowsim");
	cfg.sna_session_s = 1200;
	cfg.sna_query_ms = 200;
	cfg.sna_query_ttl_s = 600;
	cfg.sna_max_queries = 1024;
	cfg.sna_tenants = 1;
	cfg.fm_token_ttl_s = 3600;
	cfg.fm_pending = 1;
	cfg.fm_result_ttl_s = 600;
	cfg.fm_active_timeout_s = 300;
	strcpy(cfg.fm_tz, "UTC");
	cfg.fm_scale_min = 1000000;

	/* the options that take an int in a range */
	const struct {
		int opt;
		long lo, hi;
		int *dst;
	} ints[] = {
		{O_DAYS, 1, SIM_MAX_DAYS, &cfg.ndays},
		{O_DELAY, 0, 86400, &cfg.export_delay_s},
		{O_RETENTION, 1, 3650, &cfg.retention_days},
		{O_RETRYAFTER, 0, 3600, &cfg.retry_after_s},
		{O_SLOWMS, 0, 3600000, &cfg.slow_ms},
		{O_STALLS, 0, 86400, &cfg.stall_s},
		{O_SNASESSION, 1, 86400, &cfg.sna_session_s},
		{O_SNAQUERYMS, 0, 600000, &cfg.sna_query_ms},
		{O_SNATTL, 1, 86400, &cfg.sna_query_ttl_s},
		{O_SNATENANTS, 1, 2, &cfg.sna_tenants},
		{O_SNAXSRFROT, 0, 86400, &cfg.sna_xsrf_rotate_s},
		{O_FMTTL, 1, 31536000, &cfg.fm_token_ttl_s},
		{O_FMPENDING, 0, 1000, &cfg.fm_pending},
		{O_FMRESTTL, 1, 86400, &cfg.fm_result_ttl_s},
		{O_FMTIMEOUT, 0, 86400, &cfg.fm_active_timeout_s},
	};

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		bool is_int = false;
		rc = 0;
		for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
			if (ints[i].opt == c) {
				rc = parse_int(optarg, ints[i].lo, ints[i].hi, &v);
				*ints[i].dst = (int)v;
				is_int = true;
			}
		}
		switch (is_int ? 0 : c) {
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
			rc = parse_int(optarg, 1, 1000000, &v);
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
			rc = parse_int(optarg, 1, 100000, &v);
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
			usage(stdout);
			return 0;
		default:
			if (c >= O_FAULT0 && c < O_FAULT0 + SIM_NFAULTS) {
				rc = parse_rate(optarg, &cfg.rate[c - O_FAULT0]);
				break;
			}
			usage(stderr);
			return 2;
		}
		if (rc) {
			const char *name = "?";
			for (const struct option *o = opts; o->name; o++)
				if (o->val == c)
					name = o->name;
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
}
