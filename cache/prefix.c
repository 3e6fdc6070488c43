/*
 * prefix.c - addresses and prefixes on the 16-byte form.
 *
 * IPv4 is held IPv4-mapped (::ffff:a.b.c.d), so one byte-wise comparison
 * serves both families and a prefix is a contiguous byte range: the store
 * filters peers with BLOB BETWEEN on exactly the bounds cache_prefix_range()
 * gives.  The family a prefix was written in is kept, as the collector does
 * (docs/collector-api.md, flowsim's addr.c): 0.0.0.0/0 never contains an IPv6
 * address and ::/0 never an IPv4 one.
 *
 * Text goes both ways here.  Parsing takes any valid spelling (inet_pton);
 * the canonical text is RFC 5952 (lowercase, the longest run of two or more
 * zero groups compressed, the first on a tie) and dotted quads for IPv4,
 * including IPv4-mapped addresses written in IPv6 form.  Formatting is done
 * by hand: it runs twice a row in the renderers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "cache_i.h"

static const uint8_t prefix_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool prefix_is_v4(const uint8_t a[16])
{
	return memcmp(a, prefix_v4_mapped, 12) == 0;
}

/* True when no bit at or after position len is set. */
static bool prefix_host_bits_zero(const uint8_t a[16], int len)
{
	for (int i = len / 8; i < 16; i++) {
		int keep = len - i * 8;
		uint8_t mask = keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
		if (a[i] & (uint8_t)~mask)
			return false;
	}
	return true;
}

/* Why host (a text inet_pton refused) is not an address: a dotted quad
 * with a number past 255 or a leading zero is named as such. */
static const char *prefix_why_not_address(const char *host)
{
	int parts = 0;

	if (host[strspn(host, "0123456789.")] != '\0' || strchr(host, '.') == NULL)
		return "not an IPv4 or IPv6 address";
	for (const char *q = host;; q++) {
		size_t n = strspn(q, "0123456789");
		if (n == 0)
			return "not an IPv4 address: a dot without a number beside it";
		if (n > 1 && q[0] == '0')
			return "not an IPv4 address: a number with a leading zero (octal to some tools)";
		if (n > 3 || (n == 3 && strncmp(q, "255", 3) > 0))
			return "not an IPv4 address: each of its four numbers is 0 to 255";
		parts++;
		q += n;
		if (*q == '\0')
			break;
	}
	return parts != 4 ? "not an IPv4 address: it has four numbers" : "not an IPv4 address";
}

/*
 * Parse "A" or "A/N".  A is a dotted quad or any IPv6 spelling inet_pton
 * takes; N is 1 to 3 decimal digits, at most 32 (IPv4) or 128 (IPv6), and
 * every bit after N must be zero.  An IPv6 prefix inside ::ffff:0:0/96 is
 * IPv4 traffic and becomes an IPv4 prefix.  -EINVAL on anything else, with
 * *out untouched, *why the reason, and network->len 0 but when the host
 * bits are the only fault: then *network is the prefix they were meant
 * to be (cleared).
 */
int cache_prefix_parse_why(const char *text, struct cache_prefix *out, const char **why,
			   struct cache_prefix *network)
{
	char host[INET6_ADDRSTRLEN + 1];
	struct cache_prefix p;
	struct in6_addr v6;
	struct in_addr v4;
	const char *slash;
	size_t hl;
	int len;

	*why = "not an address";
	if (network)
		memset(network, 0, sizeof(*network));
	if (!text || !out)
		return -EINVAL;
	slash = strchr(text, '/');
	hl = slash ? (size_t)(slash - text) : strlen(text);
	if (hl == 0)
		return -EINVAL;
	if (hl >= sizeof(host)) {
		*why = "not an address (too long)";
		return -EINVAL;
	}
	memcpy(host, text, hl);
	host[hl] = '\0';
	memset(&p, 0, sizeof(p));
	if (inet_pton(AF_INET, host, &v4) == 1) {
		p.v4 = true;
		memcpy(p.addr, prefix_v4_mapped, 12);
		memcpy(p.addr + 12, &v4, 4);
	} else if (inet_pton(AF_INET6, host, &v6) == 1) {
		memcpy(p.addr, &v6, 16);
	} else {
		*why = prefix_why_not_address(host);
		return -EINVAL;
	}
	if (slash) {
		const char *n = slash + 1;
		size_t nl = strlen(n);
		if (nl == 0 || nl > 3 || strspn(n, "0123456789") != nl) {
			*why = "the prefix length is not a number";
			return -EINVAL;
		}
		len = 0;
		for (size_t i = 0; i < nl; i++)
			len = len * 10 + (n[i] - '0');
		if (len > (p.v4 ? 32 : 128)) {
			*why = p.v4 ? "the prefix length is more than 32" : "the prefix length is more than 128";
			return -EINVAL;
		}
		if (p.v4)
			len += 96;
	} else {
		len = 128;
	}
	if (!p.v4 && len >= 96 && prefix_is_v4(p.addr))
		p.v4 = true;
	if (!prefix_host_bits_zero(p.addr, len)) {
		*why = "host bits are set (a prefix's address ends in zero bits)";
		if (network) {
			uint8_t hi[16];
			p.len = len;
			*network = p;
			cache_prefix_range(&p, network->addr, hi);
		}
		return -EINVAL;
	}
	p.len = len;
	*out = p;
	*why = NULL;
	return 0;
}

int cache_prefix_parse(const char *text, struct cache_prefix *out)
{
	const char *why;

	return cache_prefix_parse_why(text, out, &why, NULL);
}

static char *prefix_put_dec(char *o, unsigned v)
{
	if (v >= 100)
		*o++ = (char)('0' + v / 100);
	if (v >= 10)
		*o++ = (char)('0' + v / 10 % 10);
	*o++ = (char)('0' + v % 10);
	return o;
}

static char *prefix_put_hex16(char *o, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	int shift = 12;

	while (shift > 0 && ((v >> shift) & 0xf) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*o++ = hex[(v >> shift) & 0xf];
	return o;
}

/*
 * The canonical text of a (no NUL written); out needs 46 bytes (the longest
 * IPv6 text is 39).  Returns the length.
 */
size_t cache_addr_text(const uint8_t a[16], char *out)
{
	char *o = out;

	if (prefix_is_v4(a)) {
		for (int i = 12; i < 16; i++) {
			if (i > 12)
				*o++ = '.';
			o = prefix_put_dec(o, a[i]);
		}
		return (size_t)(o - out);
	}
	unsigned w[8];
	int best = -1, bestlen = 1, run = 0;
	for (int i = 0; i < 8; i++) {
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		run = w[i] == 0 ? run + 1 : 0;
		if (run > bestlen) {
			bestlen = run;
			best = i - run + 1;
		}
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			*o++ = ':';
			*o++ = ':';
			i += bestlen - 1;
			continue;
		}
		if (i > 0 && i != best + bestlen)
			*o++ = ':';
		o = prefix_put_hex16(o, w[i]);
	}
	return (size_t)(o - out);
}

/* cache_addr_text with a NUL, cut to len - 1 bytes when len is short. */
void cache_addr_format(const uint8_t a[16], char *buf, size_t len)
{
	char t[48];
	size_t n = cache_addr_text(a, t);

	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(buf, t, n);
	buf[n] = '\0';
}

/* The canonical text: the address, then "/N" (N counted in the prefix's own
 * family) unless it is a single address; cut to len - 1 bytes if need be. */
void cache_prefix_format(const struct cache_prefix *p, char *buf, size_t len)
{
	char t[64];
	size_t n = cache_addr_text(p->addr, t);
	int bits = p->v4 ? p->len - 96 : p->len;

	if (p->len < 128) {
		t[n++] = '/';
		n = (size_t)(prefix_put_dec(t + n, (unsigned)(bits < 0 ? 0 : bits)) - t);
	}
	if (len == 0)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(buf, t, n);
	buf[n] = '\0';
}

/* Same family, and the first p->len bits equal. */
bool cache_prefix_contains(const struct cache_prefix *p, const uint8_t a[16])
{
	int full = p->len / 8, rest = p->len % 8;

	if (p->v4 != prefix_is_v4(a))
		return false;
	if (memcmp(p->addr, a, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ p->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* lo: host bits cleared, hi: host bits set; memcmp order is address order,
 * so lo <= a <= hi (as BLOBs in SQL) is the same as "a in p" within p's
 * family. */
void cache_prefix_range(const struct cache_prefix *p, uint8_t lo[16], uint8_t hi[16])
{
	for (int i = 0; i < 16; i++) {
		int keep = p->len - i * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
		lo[i] = p->addr[i] & mask;
		hi[i] = (uint8_t)(p->addr[i] | (uint8_t)~mask);
	}
}
