/*
 * test_progress.c - flowfetch's progress line (fetch/progress.c, issue 13,
 * item 3): never wider than asked, fields kept by priority as the width
 * shrinks, no rate before a second, an estimate only when one can be made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fetch.h"

static const int widths[] = {40, 60, 80, 120, 200};

/* A busy moment: every field has something to say. */
static const struct fetch_progress_view busy = {
	.flows = 1234567, .windows_done = 120, .windows_planned = 340,
	.requests = 131, .retries = 2, .elapsed_ms = 12500,
};

static bool has(const char *line, const char *what)
{
	return strstr(line, what) != NULL;
}

/* The line of v at width w, checked for length and characters. */
static size_t line_at(const struct fetch_progress_view *v, int w, char *buf, size_t len)
{
	size_t n = fetch_progress_line(v, w, buf, len);

	assert_int_equal(n, strlen(buf));
	if (n > (size_t)w)
		fail_msg("width %d: %zu characters: '%s'", w, n, buf);
	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			fail_msg("width %d: byte %zu is 0x%02x", w, i, (unsigned char)buf[i]);
	return n;
}

static void test_widths_and_priority(void **state)
{
	(void)state;
	char buf[512];

	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		int w = widths[i];
		line_at(&busy, w, buf, sizeof(buf));
		/* the flows always; the rest in priority order: a field shown
		 * means every field above it is shown too */
		const bool f[] = {
			has(buf, "1234567 flows"), has(buf, "windows 120/340"),
			has(buf, "0:12 elapsed"), has(buf, "~0:22 left"),
			has(buf, "98765 flows/s"), has(buf, "requests 131  retries 2"),
			has(buf, "[#"),
		};
		assert_true(f[0]);
		for (size_t k = 1; k < sizeof(f) / sizeof(f[0]); k++)
			if (f[k] && !f[k - 1])
				fail_msg("width %d: field %zu shown, %zu not: '%s'", w, k, k - 1, buf);
		if (w >= 80)
			assert_true(f[4]);	/* 80 columns show flows to the rate */
		if (w >= 120)
			assert_true(f[6]);	/* and 120 everything, the bar too */
		if (w == 40) {
			assert_true(f[1]);
			assert_false(f[4]);
		}
	}
	/* the bar grows with the room, to 30 columns inside its brackets */
	char bar[33] = "[";
	memset(bar + 1, '#', 10);	/* 120 of 340 windows: 10 of 30 */
	memset(bar + 11, '.', 20);
	memcpy(bar + 31, "]", 2);
	line_at(&busy, 200, buf, sizeof(buf));
	assert_non_null(strstr(buf, bar));
}

static void test_narrow_and_tiny(void **state)
{
	(void)state;
	char buf[512];

	assert_int_equal(line_at(&busy, 13, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "1234567 flows");
	assert_int_equal(line_at(&busy, 5, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "12345");
	assert_int_equal(fetch_progress_line(&busy, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	/* a width past the buffer is the buffer's */
	char small[16];
	assert_int_equal(fetch_progress_line(&busy, 200, small, sizeof(small)), 13);
	assert_string_equal(small, "1234567 flows");
	/* every width from 1 to 250, and huge counters */
	struct fetch_progress_view big = {
		.flows = UINT64_MAX, .windows_done = 1, .windows_planned = UINT64_MAX,
		.requests = UINT64_MAX, .retries = UINT64_MAX, .elapsed_ms = INT64_MAX / 2,
	};
	for (int w = 1; w <= 250; w++) {
		line_at(&busy, w, buf, sizeof(buf));
		line_at(&big, w, buf, sizeof(buf));
	}
}

static void test_rate_after_a_second(void **state)
{
	(void)state;
	char buf[512];
	struct fetch_progress_view v = busy;

	v.elapsed_ms = 999;
	line_at(&v, 200, buf, sizeof(buf));
	assert_true(has(buf, "- flows/s"));
	assert_true(has(buf, "0:00 elapsed"));
	v.elapsed_ms = 1000;
	line_at(&v, 200, buf, sizeof(buf));
	assert_true(has(buf, " 1234567 flows/s"));
	v.elapsed_ms = 0;
	line_at(&v, 200, buf, sizeof(buf));
	assert_true(has(buf, "- flows/s"));
}

static void test_estimate_only_when_computable(void **state)
{
	(void)state;
	char buf[512];
	struct fetch_progress_view v = busy;

	/* nothing done yet */
	v.windows_done = 0;
	line_at(&v, 200, buf, sizeof(buf));
	assert_false(has(buf, "left"));
	assert_true(has(buf, "windows 0/340"));
	/* planned not known */
	v.windows_done = 3;
	v.windows_planned = 0;
	line_at(&v, 200, buf, sizeof(buf));
	assert_false(has(buf, "left"));
	assert_false(has(buf, "["));
	assert_true(has(buf, "windows 3/?"));
	/* all done */
	v.windows_planned = 3;
	line_at(&v, 200, buf, sizeof(buf));
	assert_false(has(buf, "left"));
	/* a quarter done in 1:00: three more minutes */
	v.windows_done = 25;
	v.windows_planned = 100;
	v.elapsed_ms = 60000;
	line_at(&v, 200, buf, sizeof(buf));
	assert_true(has(buf, "1:00 elapsed  ~3:00 left"));
	/* an hour and more */
	v.windows_done = 1;
	line_at(&v, 200, buf, sizeof(buf));
	assert_true(has(buf, "~1:39:00 left"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_widths_and_priority),
		cmocka_unit_test(test_narrow_and_tiny),
		cmocka_unit_test(test_rate_after_a_second),
		cmocka_unit_test(test_estimate_only_when_computable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
