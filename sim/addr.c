/*
 * addr.c - addresses and prefixes for flowsim.
 *
 * Everything is held as 16 bytes, IPv4 mapped into ::ffff:0:0/96, so one
 * comparison routine serves both families; the family a prefix was written
 * in is kept so that 0.0.0.0/0 never matches an IPv6 address and ::/0 never
 * an IPv4 one.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool sim_addr_is_v4(const struct sim_addr *a)
{
	return memcmp(a->b, v4_mapped, 12) == 0;
}

static void clear_host_bits(struct sim_addr *a, int len)
{
	for (int i = 0; i < 16; i++) {
		int keep = len - i * 8;
		if (keep >= 8)
			continue;
		a->b[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

int sim_prefix_parse(const char *text, struct sim_prefix *out)
{
	char host[64];
	const char *slash = strchr(text, '/');
	size_t hl = slash ? (size_t)(slash - text) : strlen(text);
	struct sim_prefix p;
	struct in_addr v4;
	struct in6_addr v6;
	long len;

	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	memset(&p, 0, sizeof(p));
	if (inet_pton(AF_INET, host, &v4) == 1) {
		p.v4 = true;
		memcpy(p.addr.b, v4_mapped, 12);
		memcpy(p.addr.b + 12, &v4, 4);
	} else if (inet_pton(AF_INET6, host, &v6) == 1) {
		memcpy(p.addr.b, &v6, 16);
	} else {
		return -EINVAL;
	}
	if (slash) {
		char *end;
		const char *num = slash + 1;
		if (!isdigit((unsigned char)num[0]) || strlen(num) > 3)
			return -EINVAL;
		len = strtol(num, &end, 10);
		if (*end != '\0' || len < 0 || len > (p.v4 ? 32 : 128))
			return -EINVAL;
		if (p.v4)
			len += 96;
	} else {
		len = 128;
	}
	/* an IPv4-mapped prefix written as IPv6 (::ffff:0:0/96 and longer) is
	 * IPv4 traffic */
	if (!p.v4 && len >= 96 && sim_addr_is_v4(&p.addr))
		p.v4 = true;
	p.len = (int)len;
	clear_host_bits(&p.addr, p.len);
	*out = p;
	return 0;
}

void sim_addr_format(const struct sim_addr *a, char *buf, size_t len)
{
	if (sim_addr_is_v4(a))
		inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
}

void sim_addr_format_style(const struct sim_addr *a, unsigned style, char *buf,
			   size_t len)
{
	bool upper = style == 2 || style == 3;
	size_t o = 0;

	if (sim_addr_is_v4(a) || style == 0 || style > 4) {
		sim_addr_format(a, buf, len);
		return;
	}
	if (style == 2) {
		sim_addr_format(a, buf, len);
		for (char *c = buf; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		return;
	}
	/* 1 and 3: every group with four digits; 4: no zero compression */
	for (int g = 0; g < 8 && o + 6 < len; g++) {
		unsigned v = (unsigned)a->b[2 * g] << 8 | a->b[2 * g + 1];
		int n = snprintf(buf + o, len - o, style == 4 ? "%s%x" :
				 upper ? "%s%04X" : "%s%04x", g ? ":" : "", v);
		o += (size_t)n;
	}
}

bool sim_prefix_contains(const struct sim_prefix *p, const struct sim_addr *a)
{
	int full = p->len / 8, rest = p->len % 8;

	if (p->v4 != sim_addr_is_v4(a))
		return false;
	if (memcmp(p->addr.b, a->b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a->b[full] ^ p->addr.b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool sim_prefix_covers(const struct sim_prefix *outer,
		       const struct sim_prefix *inner)
{
	return outer->v4 == inner->v4 && outer->len <= inner->len &&
	       sim_prefix_contains(outer, &inner->addr);
}

bool sim_prefix_intersects(const struct sim_prefix *a,
			   const struct sim_prefix *b)
{
	return sim_prefix_covers(a, b) || sim_prefix_covers(b, a);
}
