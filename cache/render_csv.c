/*
 * render_csv.c - flows.csv: a header row, then one row a flow.
 *
 * RFC 4180 quoting: a field holding a comma, a double quote, CR or LF is
 * enclosed in double quotes and its quotes doubled; every other field is
 * written as it is, the empty field for unknown.  Lines end in LF, not the
 * RFC's CRLF: the audience is grep, awk, cut and sort, which would carry a
 * stray CR into the last field (flowId); Python's csv module, pandas, and
 * spreadsheets read LF files alike.
 *
 * Names starting with '=', '+', '-' or '@' are written as they are (quoted
 * only if they hold one of the four characters above): flows.csv is
 * evidence, and a field must round-trip unchanged through any CSV reader;
 * prepending a quote to defuse spreadsheet formulas would alter the data.
 *
 * Speed: see render.c (about 530,000-650,000 rows/s for 1,000,000 flows).
 */
#include "render_i.h"

/* The column names, comma-separated (none needs quoting). */
void render_csv_header(struct render_out *o)
{
	for (int i = 0; i < RENDER_NCOLS; i++) {
		if (i)
			render_put(o, ",", 1);
		render_put(o, render_columns[i], strlen(render_columns[i]));
	}
	render_put(o, "\n", 1);
}

/* Does the text need RFC 4180 quoting? */
static bool csv_needs_quotes(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == ',' || ch == '"' || ch == '\n' || ch == '\r')
			return true;
	}
	return false;
}

/* The field, quoted when needed.  Room for the worst case is made first
 * (every byte a quote), so the copy itself needs no check. */
void render_csv_field(struct render_out *o, const struct render_field *f)
{
	char *d;

	if (f->kind != RK_TEXT || !csv_needs_quotes(f->s, f->len)) {
		render_put(o, f->s, f->len);
		return;
	}
	if (!render_room(o, 2 * (size_t)f->len + 2))
		return;
	d = o->buf + o->n;
	*d++ = '"';
	for (uint32_t i = 0; i < f->len; i++) {
		if (f->s[i] == '"')
			*d++ = '"';
		*d++ = f->s[i];
	}
	*d++ = '"';
	o->n = (size_t)(d - o->buf);
}

/* One line; a write error is kept in o->err and later rows are dropped. */
void render_csv_row(struct render_out *o, const struct render_row *row)
{
	for (int i = 0; i < RENDER_NCOLS; i++) {
		if (i)
			render_put(o, ",", 1);
		render_csv_field(o, &row->f[i]);
	}
	render_put(o, "\n", 1);
}
