/*
 * progress.c - flowfetch's progress line, as text of a given width.
 *
 * The line is redrawn in place (`\r`, the line, `\033[K`) a few times a
 * second, so it must never be wider than the terminal: a line one column
 * too wide wraps, and every redraw then starts a new line (issue 13: the
 * old line was about 90 columns).  This file only decides the text; it
 * does no I/O and reads no clock, so a unit test can give it any counters
 * and any width.
 *
 * The fields, in the order they are shown:
 *
 *   [####......]  1234567 flows  windows 120/340  98000 flows/s  0:12 elapsed
 *   ~1:20 left  requests 130  retries 2
 *
 * When the terminal is narrower than all of them, fields are dropped in a
 * fixed order, least useful first: the bar, requests and retries, the
 * rate, the estimate, the elapsed time, the windows; the flows stay, cut
 * to the width only when even they do not fit.  The bar takes what room
 * is left (10 to 30 columns) and is shown only when it has 10.
 *
 * The rate is "-" until a second has passed (a rate over a few
 * milliseconds says nothing).  The estimate is the elapsed time scaled by
 * the windows left over the windows done: shown only once a window is
 * done and more are planned, and marked "~" since the planner adds
 * windows as it learns a day's size.  Every character is ASCII, so bytes
 * and columns are the same.
 */
#include "fetch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { PL_BAR, PL_FLOWS, PL_WINDOWS, PL_RATE, PL_ELAPSED, PL_ETA, PL_REQUESTS, PL_NFIELDS };

enum { PL_FIELD = 64, PL_BAR_MIN = 10, PL_BAR_MAX = 30 };

/* Fields dropped first to last when the line is too wide. */
static const int pl_drop_order[] = {PL_BAR, PL_REQUESTS, PL_RATE, PL_ETA, PL_ELAPSED, PL_WINDOWS};

/* "m:ss", or "h:mm:ss" from an hour on, of a duration in ms (>= 0). */
static void pl_clock(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s >= 3600)
		snprintf(buf, len, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
	else
		snprintf(buf, len, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

/* Write the bar, `inner` columns between its brackets, into buf (room for
 * inner + 3 bytes). */
static void pl_bar(const struct fetch_progress_view *v, int inner, char *buf)
{
	uint64_t done = v->windows_done < v->windows_planned ? v->windows_done : v->windows_planned;
	int fill = (int)((double)done / (double)v->windows_planned * inner);

	buf[0] = '[';
	for (int i = 0; i < inner; i++)
		buf[1 + i] = i < fill ? '#' : '.';
	buf[inner + 1] = ']';
	buf[inner + 2] = '\0';
}

/*
 * The progress line for a terminal of `width` columns into buf (len
 * bytes): never longer than width, nor than len - 1; always terminated
 * when len > 0.  Returns the line's length.  A width under 1 gives "".
 */
size_t fetch_progress_line(const struct fetch_progress_view *v, int width, char *buf, size_t len)
{
	char f[PL_NFIELDS][PL_FIELD], t1[24], t2[24];
	bool on[PL_NFIELDS];
	size_t total = 0, n = 0;
	int shown = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (width < 1)
		return 0;
	if ((size_t)width > len - 1)
		width = (int)(len - 1);

	memset(on, 0, sizeof(on));
	snprintf(f[PL_FLOWS], PL_FIELD, "%" PRIu64 " flows", v->flows);
	on[PL_FLOWS] = true;
	if (v->windows_planned)
		snprintf(f[PL_WINDOWS], PL_FIELD, "windows %" PRIu64 "/%" PRIu64, v->windows_done,
			 v->windows_planned);
	else
		snprintf(f[PL_WINDOWS], PL_FIELD, "windows %" PRIu64 "/?", v->windows_done);
	on[PL_WINDOWS] = true;
	if (v->elapsed_ms >= 1000) {
		double rate = (double)v->flows * 1000.0 / (double)v->elapsed_ms;
		snprintf(f[PL_RATE], PL_FIELD, "%" PRIu64 " flows/s",
			 rate < 1e19 ? (uint64_t)rate : (uint64_t)1e19);
	} else
		snprintf(f[PL_RATE], PL_FIELD, "- flows/s");
	on[PL_RATE] = true;
	pl_clock(v->elapsed_ms, t1, sizeof(t1));
	snprintf(f[PL_ELAPSED], PL_FIELD, "%s elapsed", t1);
	on[PL_ELAPSED] = true;
	if (v->windows_done > 0 && v->windows_planned > v->windows_done && v->elapsed_ms > 0) {
		double left = (double)v->elapsed_ms * (double)(v->windows_planned - v->windows_done) /
			      (double)v->windows_done;
		pl_clock(left < 3.6e11 ? (int64_t)left : (int64_t)3.6e11, t2, sizeof(t2));
		snprintf(f[PL_ETA], PL_FIELD, "~%s left", t2);
		on[PL_ETA] = true;
	}
	snprintf(f[PL_REQUESTS], PL_FIELD, "requests %" PRIu64 "  retries %" PRIu64, v->requests,
		 v->retries);
	on[PL_REQUESTS] = true;
	on[PL_BAR] = v->windows_planned > 0;

	/* the fields' widths with two spaces between them; the bar at its
	 * least until the others are settled */
	for (int i = 0; i < PL_NFIELDS; i++) {
		if (!on[i])
			continue;
		total += (i == PL_BAR ? PL_BAR_MIN + 2 : strlen(f[i])) + (shown ? 2 : 0);
		shown++;
	}
	for (size_t d = 0; total > (size_t)width && d < sizeof(pl_drop_order) / sizeof(pl_drop_order[0]);
	     d++) {
		int i = pl_drop_order[d];
		if (!on[i])
			continue;
		on[i] = false;
		total -= (i == PL_BAR ? PL_BAR_MIN + 2 : strlen(f[i])) + 2;
	}
	if (on[PL_BAR]) {
		size_t inner = PL_BAR_MIN + ((size_t)width - total);
		pl_bar(v, inner > PL_BAR_MAX ? PL_BAR_MAX : (int)inner, f[PL_BAR]);
	}

	for (int i = 0; i < PL_NFIELDS; i++) {
		if (!on[i])
			continue;
		int w = snprintf(buf + n, (size_t)width + 1 - n, "%s%s", n ? "  " : "", f[i]);
		if (w < 0 || n + (size_t)w > (size_t)width) {
			n = (size_t)width;	/* the flows alone, cut */
			break;
		}
		n += (size_t)w;
	}
	buf[n] = '\0';
	return n;
}
