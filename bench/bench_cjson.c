/*
 * bench_cjson.c - the baseline of a cold download: how fast cJSON alone
 * decodes saturated /flows answers on one core.
 *
 * Fetches each URL once (libcurl, plain, with the bearer token read from
 * TOKEN_FILE), checks that every answer holds the same number of records,
 * then ROUNDS times, single-threaded: cJSON_Parse every body, walk every
 * field of every record (keys, numbers, strings, group arrays) and
 * cJSON_Delete it.  Prints one line of key=value figures on stdout, for
 * bench/engine.py:
 *   records=N bytes=B rounds=R best_s=S median_s=S records_per_s=X mb_per_s=Y
 * where records and bytes are per round and records_per_s is from the
 * median round.
 *
 * Usage: bench_cjson TOKEN_FILE ROUNDS URL...
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Touch every key and value under 'it'; the sum keeps the work alive. */
static double walk(const cJSON *it)
{
	double acc = 0;

	for (const cJSON *c = it->child; c; c = c->next) {
		if (c->string)
			acc += (double)strlen(c->string);
		if (cJSON_IsNumber(c))
			acc += c->valuedouble;
		else if (cJSON_IsString(c))
			acc += (double)strlen(c->valuestring);
		else if (cJSON_IsBool(c))
			acc += cJSON_IsTrue(c);
		else if (cJSON_IsArray(c) || cJSON_IsObject(c))
			acc += walk(c);
	}
	return acc;
}

/* Parse, walk, free; the number of records, or -1. */
static long decode(const char *json, double *sink)
{
	cJSON *root = cJSON_Parse(json);
	long n = -1;

	if (root) {
		const cJSON *flows = cJSON_GetObjectItemCaseSensitive(root, "flows");
		if (cJSON_IsArray(flows)) {
			n = 0;
			for (const cJSON *r = flows->child; r; r = r->next) {
				*sink += walk(r);
				n++;
			}
		}
		cJSON_Delete(root);
	}
	return n;
}

int main(int argc, char **argv)
{
	char token[1024], auth[1100];
	FILE *f;

	if (argc < 4 || atoi(argv[2]) < 1) {
		fprintf(stderr, "usage: bench_cjson TOKEN_FILE ROUNDS URL...\n");
		return 2;
	}
	if (!(f = fopen(argv[1], "r")) || !fgets(token, sizeof(token), f)) {
		fprintf(stderr, "bench_cjson: cannot read the token file\n");
		return 1;
	}
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	memset(token, 0, sizeof(token));

	int rounds = atoi(argv[2]), nb = argc - 3;
	struct body *b = calloc((size_t)nb, sizeof(*b));
	double *secs = calloc((size_t)rounds, sizeof(double));
	if (!b || !secs)
		return 1;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, auth);
	memset(auth, 0, sizeof(auth));
	long per_round = 0;
	size_t bytes = 0;
	double sink = 0;
	for (int i = 0; i < nb; i++) {
		long status = 0;
		curl_easy_setopt(h, CURLOPT_URL, argv[3 + i]);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b[i]);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		if (curl_easy_perform(h) != CURLE_OK ||
		    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200 ||
		    !b[i].p) {
			fprintf(stderr, "bench_cjson: request %d failed (HTTP %ld)\n", i + 1, status);
			return 1;
		}
		long n = decode(b[i].p, &sink);	/* also warms the allocator */
		if (n < 0) {
			fprintf(stderr, "bench_cjson: answer %d is not a flows document\n", i + 1);
			return 1;
		}
		per_round += n;
		bytes += b[i].len;
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	curl_global_cleanup();

	for (int r = 0; r < rounds; r++) {
		double t0 = now_s();
		for (int i = 0; i < nb; i++)
			decode(b[i].p, &sink);
		secs[r] = now_s() - t0;
	}
	qsort(secs, (size_t)rounds, sizeof(double), cmp_d);
	double med = secs[rounds / 2];
	printf("records=%ld bytes=%zu rounds=%d best_s=%.4f median_s=%.4f records_per_s=%.0f mb_per_s=%.1f sink=%g\n",
	       per_round, bytes, rounds, secs[0], med, (double)per_round / med,
	       (double)bytes / med / 1e6, sink > 0 ? 1.0 : 0.0);
	for (int i = 0; i < nb; i++)
		free(b[i].p);
	free(b);
	free(secs);
	return 0;
}
