/*
 * json.c - bounded buffers and the JSON that flowsim writes.
 *
 * Records are written by hand, not through a JSON library: a 10,000-record
 * answer is about 3 MB and must take a few milliseconds, so numbers are
 * formatted with a small digit loop and everything lands in one buffer that
 * grows geometrically up to a hard maximum.
 */
#include "sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sim_buf_reserve(struct sim_buf *b, size_t more)
{
	size_t need = b->len + more + 1, cap;
	char *p;

	if (need <= b->cap)
		return 0;
	if (need > b->max)
		return -E2BIG;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int sim_buf_add(struct sim_buf *b, const char *s, size_t n)
{
	int rc = sim_buf_reserve(b, n);

	if (rc)
		return rc;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = sim_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void sim_buf_free(struct sim_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int sim_json_string(struct sim_buf *b, const char *s)
{
	size_t n = strlen(s);
	int rc = sim_buf_reserve(b, n * 6 + 2);

	if (rc)
		return rc;
	char *o = b->p + b->len;
	*o++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c < 0x20) {
			o += sprintf(o, "\\u%04x", c);
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->p);
	return 0;
}

char *sim_put_u64(char *o, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*o++ = tmp[--n];
	return o;
}

static char *put_key_u64(char *o, const char *key, size_t klen, uint64_t v)
{
	memcpy(o, key, klen);
	return sim_put_u64(o + klen, v);
}

#define KEY(o, lit, v) put_key_u64((o), (lit), sizeof(lit) - 1, (v))

static char *put_groups(char *o, const char *key, size_t klen,
			const uint32_t *g, int n)
{
	memcpy(o, key, klen);
	o += klen;
	*o++ = '[';
	for (int i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		o = sim_put_u64(o, g[i]);
	}
	*o++ = ']';
	return o;
}

int sim_json_flow(struct sim_buf *b, const struct sim_flow *f)
{
	static const char hex[] = "0123456789abcdef";
	char src[64], dst[64];
	int rc = sim_buf_reserve(b, 1024);

	if (rc)
		return rc;
	sim_addr_format_style(&f->src, f->addr_style, src, sizeof(src));
	sim_addr_format_style(&f->dst, f->addr_style, dst, sizeof(dst));

	char *o = b->p + b->len;
	memcpy(o, "{\"id\":\"", 7);
	o += 7;
	for (int i = 15; i >= 0; i--)
		*o++ = hex[(f->id >> (i * 4)) & 15];
	*o++ = '"';
	o = KEY(o, ",\"start\":", (uint64_t)f->start);
	o = KEY(o, ",\"end\":", (uint64_t)f->end);
	o += sprintf(o, ",\"src\":\"%s\",\"dst\":\"%s\"", src, dst);
	o = KEY(o, ",\"sport\":", f->sport);
	o = KEY(o, ",\"dport\":", f->dport);
	o = KEY(o, ",\"proto\":", f->proto);
	o = KEY(o, ",\"pkts\":", f->pkts);
	o = KEY(o, ",\"bytes\":", f->bytes);
	o = KEY(o, ",\"tcp_flags\":", f->tcp_flags);
	if (f->proto == 1 || f->proto == 58) {
		o = KEY(o, ",\"icmp_type\":", f->icmp_type);
		o = KEY(o, ",\"icmp_code\":", f->icmp_code);
	}
	if (!(f->omit & SIM_OMIT_IF)) {
		o = KEY(o, ",\"in_if\":", f->in_if);
		o = KEY(o, ",\"out_if\":", f->out_if);
	}
	o = KEY(o, ",\"exporter\":", f->exporter);
	if (!(f->omit & SIM_OMIT_APP))
		o = KEY(o, ",\"app\":", f->app);
	o = put_groups(o, ",\"src_groups\":", 14, f->src_groups, f->nsrc_groups);
	o = put_groups(o, ",\"dst_groups\":", 14, f->dst_groups, f->ndst_groups);
	if (!(f->omit & SIM_OMIT_AS)) {
		o = KEY(o, ",\"src_as\":", f->src_as);
		o = KEY(o, ",\"dst_as\":", f->dst_as);
	}
	o = KEY(o, ",\"sampling\":", f->sampling);
	if (f->extra) {
		static const char ext[] =
			",\"x_ext\":{\"tos\":0,\"vlan\":[12,34],\"note\":\"vendor \\\"extension\\\"\"}";
		memcpy(o, ext, sizeof(ext) - 1);
		o += sizeof(ext) - 1;
	}
	*o++ = '}';
	*o = '\0';
	b->len = (size_t)(o - b->p);
	return 0;
}

/* ---- lookup tables ------------------------------------------------------ */

static const struct {
	uint32_t id;
	const char *name;
} apps[] = {
	{10, "ICMP"}, {40, "DNS"}, {70, "SSH"}, {90, "SMTP"}, {100, "IMAPS"},
	{110, "NTP"}, {120, "HTTP"}, {130, "HTTPS"}, {140, "RDP"},
	{150, "SMB"}, {160, "SIP, \"VoIP\""}, {170, "=HYPERLINK(\"x\")"},
};

const char *sim_app_name(uint32_t id)
{
	for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
		if (apps[i].id == id)
			return apps[i].name;
	return NULL;
}

int sim_json_applications(struct sim_buf *b)
{
	int rc = sim_buf_add(b, "{\"applications\":[", 17);

	for (size_t i = 0; !rc && i < sizeof(apps) / sizeof(apps[0]); i++) {
		rc = sim_buf_printf(b, "%s{\"id\":%u,\"name\":", i ? "," : "", apps[i].id);
		if (!rc)
			rc = sim_json_string(b, apps[i].name);
		if (!rc)
			rc = sim_buf_add(b, "}", 1);
	}
	return rc ? rc : sim_buf_add(b, "]}", 2);
}

/* Names hostile to CSV, as real ones can be: commas and quotes (12), a
 * leading '=' (15), a newline (17: in no default host's groups, so that
 * line tools work on the default scenario's flows; a scenario can use it). */
const struct sim_hostgroup sim_hostgroups[] = {
	{1, 0, "Inside Hosts"}, {11, 1, "Web Servers"},
	{12, 1, "DMZ, \"public\""}, {13, 1, "Databases"},
	{14, 1, "NAT gateways"}, {15, 1, "=cmd|' /C calc'!A0"},
	{16, 1, "IPv6 Lab"}, {17, 1, "Lab\nnetwork"}, {20, 0, "Outside Hosts"},
	{21, 20, "Suspicious"},
};
const size_t sim_nhostgroups = sizeof(sim_hostgroups) / sizeof(sim_hostgroups[0]);

int sim_json_hostgroups(struct sim_buf *b)
{
	int rc = sim_buf_add(b, "{\"hostgroups\":[", 15);

	for (size_t i = 0; !rc && i < sim_nhostgroups; i++) {
		rc = sim_buf_printf(b, "%s{\"id\":%u,\"parent\":%u,\"name\":", i ? "," : "",
				    sim_hostgroups[i].id, sim_hostgroups[i].parent);
		if (!rc)
			rc = sim_json_string(b, sim_hostgroups[i].name);
		if (!rc)
			rc = sim_buf_add(b, "}", 1);
	}
	return rc ? rc : sim_buf_add(b, "]}", 2);
}

int sim_json_exporters(struct sim_buf *b)
{
	/* ifindex 999 on dc-fw1 is deliberately missing: clients fall back to
	 * the number */
	static const char text[] =
		"{\"exporters\":["
		"{\"id\":1,\"name\":\"edge-rt1\",\"address\":\"192.0.2.1\",\"interfaces\":["
		"{\"ifindex\":514,\"name\":\"xe-0/0/1\",\"description\":\"transit-A\"},"
		"{\"ifindex\":515,\"name\":\"xe-0/0/2\",\"description\":\"transit-B\"},"
		"{\"ifindex\":516,\"name\":\"ae0\",\"description\":\"core uplink\"}]},"
		"{\"id\":2,\"name\":\"core-sw1\",\"address\":\"192.0.2.2\",\"interfaces\":["
		"{\"ifindex\":10,\"name\":\"Gi1/0/10\",\"description\":\"servers\"},"
		"{\"ifindex\":11,\"name\":\"Gi1/0/11\",\"description\":\"users\"},"
		"{\"ifindex\":12,\"name\":\"Gi1/0/12\",\"description\":\"dmz\"}]},"
		"{\"id\":3,\"name\":\"dc-fw1\",\"address\":\"2001:db8::fe\",\"interfaces\":["
		"{\"ifindex\":1,\"name\":\"outside\",\"description\":\"internet\"},"
		"{\"ifindex\":2,\"name\":\"inside\",\"description\":\"datacenter\"}]}"
		"]}";

	return sim_buf_add(b, text, sizeof(text) - 1);
}
