/*
 * bench_sim.c - is flowsim fast enough not to be the bottleneck?
 *
 * Starts flowsim on loopback, asks a saturated window (the heavy host's
 * busiest hour: 10,000 records an answer) again and again, and reports:
 *   - the latency of one 10,000-record answer (p50, p95, max), plain and gzip;
 *   - records served per second with 1 and 4 clients;
 * against a baseline measured in the same run on the same bodies: the rate
 * at which cJSON alone parses them on one core, which is the ceiling of any
 * client's cold download (docs/design.md, "The engine").  flowsim is not the bottleneck
 * while its serving rate is a multiple of that.
 *
 * Prints a Markdown section on stdout (bench/run splices it into bench/REPORT.md).
 * Usage: bench_sim FLOWSIM_BINARY
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOW_ISO "2026-11-29T12:00:00Z"
#define NOW_MS 1795953600000LL
#define DAY_MS 86400000LL	/* a day, in ms */
#define SEQ_REQUESTS 40
#define PAR_REQUESTS 20	/* each of 4 clients */

struct body {
	char *p;
	size_t len, cap;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1 << 22;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char url[256];

/* One GET of the saturated window; returns seconds, fills b. */
static double fetch(CURL *h, struct body *b, bool gzip)
{
	double t0 = now_s();

	b->len = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, gzip ? "gzip" : NULL);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) != CURLE_OK) {
		fprintf(stderr, "bench_sim: request failed\n");
		exit(1);
	}
	return now_s() - t0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int count_records(const char *json)
{
	cJSON *root = cJSON_Parse(json);
	int n = -1;

	if (root) {
		n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "flows"));
		cJSON_Delete(root);
	}
	return n;
}

static void *client(void *arg)
{
	CURL *h = curl_easy_init();
	struct body b = {0};
	long *records = arg;

	for (int i = 0; i < PAR_REQUESTS; i++) {
		fetch(h, &b, false);
		*records += 10000;
	}
	free(b.p);
	curl_easy_cleanup(h);
	return NULL;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench_sim.XXXXXX", portfile[300];
	double lat[SEQ_REQUESTS], latz[SEQ_REQUESTS], parse_s = 0, t0;
	struct body b = {0};
	pid_t pid;
	FILE *pf;
	int port = 0, nrec;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_sim FLOWSIM\n");
		return 2;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	pid = fork();
	if (pid == 0) {
		execl(argv[1], argv[1], "--listen", "127.0.0.1:0", "--port-file", portfile,
		      "--now", NOW_ISO, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !port; i++) {
		usleep(100000);
		if ((pf = fopen(portfile, "r"))) {
			if (fscanf(pf, "%d", &port) != 1)
				port = 0;
			fclose(pf);
		}
	}
	if (!port) {
		fprintf(stderr, "bench_sim: flowsim did not start\n");
		kill(pid, SIGTERM);
		return 1;
	}
	long long day = (NOW_MS / DAY_MS - 1) * DAY_MS;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/flows?ip=10.0.1.20&start=%lld&end=%lld",
		 port, day + 14 * 3600000LL, day + 15 * 3600000LL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *h = curl_easy_init();

	fetch(h, &b, false);	/* warm up: the chunk is generated */
	for (int i = 0; i < SEQ_REQUESTS; i++)
		lat[i] = fetch(h, &b, false);
	for (int i = 0; i < SEQ_REQUESTS; i++)
		latz[i] = fetch(h, &b, true);
	fetch(h, &b, false);
	size_t body_len = b.len;

	/* the baseline: cJSON parses the same answer on one core */
	int reps = 10;
	t0 = now_s();
	for (int i = 0; i < reps; i++) {
		nrec = count_records(b.p);
		if (nrec != 10000) {
			fprintf(stderr, "bench_sim: expected 10000 records, got %d\n", nrec);
			return 1;
		}
	}
	parse_s = now_s() - t0;
	double parse_rate = reps * 10000.0 / parse_s;

	double seq_total = 0;
	for (int i = 0; i < SEQ_REQUESTS; i++)
		seq_total += lat[i];
	double seq_rate = SEQ_REQUESTS * 10000.0 / seq_total;

	pthread_t th[4];
	long recs[4] = {0};
	t0 = now_s();
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, client, &recs[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	double par_s = now_s() - t0;
	double par_rate = (double)(recs[0] + recs[1] + recs[2] + recs[3]) / par_s;

	qsort(lat, SEQ_REQUESTS, sizeof(double), cmp_d);
	qsort(latz, SEQ_REQUESTS, sizeof(double), cmp_d);
	double p50 = lat[SEQ_REQUESTS / 2] * 1e3, p95 = lat[SEQ_REQUESTS * 95 / 100] * 1e3;
	double p50z = latz[SEQ_REQUESTS / 2] * 1e3, p95z = latz[SEQ_REQUESTS * 95 / 100] * 1e3;

	printf("Saturated window: heavy-1 (10.0.1.20), 14:00-15:00 UTC yesterday, "
	       "10,000 records an answer, %.1f MB of JSON.\n"
	       "Baseline, same run: cJSON parses the same answer at %.0f records/s on one core.\n\n",
	       (double)body_len / 1e6, parse_rate);
	printf("| figure | value | ratio |\n| --- | --- | --- |\n");
	printf("| latency of a 10,000-record answer, p50 / p95 / max | %.1f / %.1f / %.1f ms | p95 = %.2f x the 50 ms target |\n",
	       p50, p95, lat[SEQ_REQUESTS - 1] * 1e3, p95 / 50.0);
	printf("| the same with gzip, p50 / p95 | %.1f / %.1f ms | p95 = %.2f x the 50 ms target |\n",
	       p50z, p95z, p95z / 50.0);
	printf("| records served per second, 1 client | %.0f | %.2f x cJSON parse rate |\n",
	       seq_rate, seq_rate / parse_rate);
	printf("| records served per second, 4 clients | %.0f | %.2f x cJSON parse rate |\n",
	       par_rate, par_rate / parse_rate);
	fflush(stdout);

	free(b.p);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(portfile);
	rmdir(dir);
	return 0;
}
