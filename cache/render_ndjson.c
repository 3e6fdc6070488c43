/*
 * render_ndjson.c - flows.ndjson: one JSON object a line (JSON Lines), with
 * the keys of flows.csv in the same order.
 *
 * A field that is numeric in the CSV (ports, packets, bytes, AS numbers,
 * ICMP type and code, sampling, duration, ts) is a JSON number; unknown is
 * null; everything else is a string, including a name's numeric stand-in
 * ("inIf": "514" when the interface has no name), so that a key's type does
 * not change from line to line and jq filters stay simple.
 *
 * Strings are escaped for JSON: '"' and '\\' with a backslash, every control
 * character as \u00XX.  Bytes that are not valid UTF-8 (a collector's names
 * should be, but this is evidence and jq refuses a line that is not) become
 * U+FFFD, so that every line parses.
 */
#include "render_i.h"

size_t render_utf8_len(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The string, quoted and escaped.  Worst case 6 output bytes an input byte
 * (\u00XX), so that much room is made first. */
static void ndjson_string(struct render_out *o, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	char *d;

	if (!render_room(o, 6 * len + 2))
		return;
	d = o->buf + o->n;
	*d++ = '"';
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*d++ = (char)c;
			i++;
		} else if (c == '"' || c == '\\') {
			*d++ = '\\';
			*d++ = (char)c;
			i++;
		} else if (c < 0x20) {
			memcpy(d, "\\u00", 4);
			d[4] = hex[c >> 4];
			d[5] = hex[c & 0xf];
			d += 6;
			i++;
		} else {
			size_t n = render_utf8_len(s + i, len - i);
			if (n) {
				memcpy(d, s + i, n);
				d += n;
				i += n;
			} else {
				memcpy(d, "\xef\xbf\xbd", 3);	/* U+FFFD */
				d += 3;
				i++;
			}
		}
	}
	*d++ = '"';
	o->n = (size_t)(d - o->buf);
}

/* The key prefixes, {"firstSeen": then ,"lastSeen": and so on, with their
 * lengths: strlen of each key on every row was 3% of flowfs's CPU in perf
 * of the heavy day's first read of flows.ndjson; with the lengths here,
 * bench_render ndjson of one hour of that day (85,000 rows) runs 3.2% fewer
 * instructions (callgrind: 582.6 M -> 563.9 M), the bytes identical. */
struct ndjson_key {
	const char *s;
	size_t len;
};
#define NDJSON_KEY(k) {k, sizeof(k) - 1}
static const struct ndjson_key ndjson_keys[RENDER_NCOLS] = {
	NDJSON_KEY("{\"firstSeen\":"), NDJSON_KEY(",\"lastSeen\":"),
	NDJSON_KEY(",\"duration\":"), NDJSON_KEY(",\"proto\":"),
	NDJSON_KEY(",\"srcAddr\":"), NDJSON_KEY(",\"srcPort\":"),
	NDJSON_KEY(",\"dstAddr\":"), NDJSON_KEY(",\"dstPort\":"),
	NDJSON_KEY(",\"flags\":"), NDJSON_KEY(",\"packets\":"), NDJSON_KEY(",\"bytes\":"),
	NDJSON_KEY(",\"srcAS\":"), NDJSON_KEY(",\"dstAS\":"), NDJSON_KEY(",\"inIf\":"),
	NDJSON_KEY(",\"outIf\":"), NDJSON_KEY(",\"exporter\":"), NDJSON_KEY(",\"app\":"),
	NDJSON_KEY(",\"srcGroups\":"), NDJSON_KEY(",\"dstGroups\":"),
	NDJSON_KEY(",\"icmpType\":"), NDJSON_KEY(",\"icmpCode\":"),
	NDJSON_KEY(",\"sampling\":"), NDJSON_KEY(",\"ts\":"),
	NDJSON_KEY(",\"communityId\":"), NDJSON_KEY(",\"flowId\":"),
};

/* One object and LF; a write error is kept in o->err. */
void render_ndjson_row(struct render_out *o, const struct render_row *row)
{
	for (int i = 0; i < RENDER_NCOLS; i++) {
		const struct render_field *f = &row->f[i];
		render_put(o, ndjson_keys[i].s, ndjson_keys[i].len);
		switch (f->kind) {
		case RK_NULL:
			render_put(o, "null", 4);
			break;
		case RK_INT:
		case RK_MS:
			render_put(o, f->s, f->len);
			break;
		case RK_SAFE:
			if (render_room(o, (size_t)f->len + 2)) {
				o->buf[o->n++] = '"';
				memcpy(o->buf + o->n, f->s, f->len);
				o->n += f->len;
				o->buf[o->n++] = '"';
			}
			break;
		default:
			ndjson_string(o, f->s, f->len);
			break;
		}
	}
	render_put(o, "}\n", 2);
}
