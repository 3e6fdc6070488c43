/*
 * community.c - Community ID v1, so that flows join with Zeek and Suricata.
 *
 * The hash input is: seed (2 bytes), the lesser endpoint's address, the
 * greater's, the protocol, a zero pad byte, and for port protocols the two
 * ports in the same order (for ICMP, the type and the code mapped to the
 * type of the reply, so a request and its reply share an ID).  Addresses
 * are 4 bytes for IPv4, 16 for IPv6.  SHA-1 from OpenSSL's libcrypto.
 */
#include "fetch.h"

#include <openssl/evp.h>
#include <string.h>

static bool is_v4(const uint8_t a[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, mapped, 12) == 0;
}

/* ICMP type -> the type that answers it, or -1 (one-way messages). */
static int icmp4_peer(int t)
{
	switch (t) {
	case 8: return 0;
	case 0: return 8;
	case 13: return 14;
	case 14: return 13;
	case 15: return 16;
	case 16: return 15;
	case 10: return 9;
	case 9: return 10;
	case 17: return 18;
	case 18: return 17;
	default: return -1;
	}
}

static int icmp6_peer(int t)
{
	switch (t) {
	case 128: return 129;
	case 129: return 128;
	case 133: return 134;
	case 134: return 133;
	case 135: return 136;
	case 136: return 135;
	case 130: return 131;
	case 131: return 130;
	case 139: return 140;
	case 140: return 139;
	case 144: return 145;
	case 145: return 144;
	default: return -1;
	}
}

/* One SHA-1 context a thread, reused: EVP_Digest would allocate one for
 * every flow.  The digest is fetched once a thread: EVP_sha1() in
 * EVP_DigestInit_ex makes OpenSSL 3 look the implementation up, under a
 * lock, for every flow. */
static __thread EVP_MD_CTX *tl_ctx;
static __thread EVP_MD *tl_sha1;

void fetch_community_done(void)
{
	EVP_MD_CTX_free(tl_ctx);
	tl_ctx = NULL;
	EVP_MD_free(tl_sha1);
	tl_sha1 = NULL;
}

void fetch_community_id(const struct flow_rec *f, uint16_t seed, char out[32])
{
	uint8_t buf[2 + 16 + 16 + 2 + 4], md[EVP_MAX_MD_SIZE];
	const uint8_t *a = f->src, *b = f->dst;
	bool v4 = is_v4(f->src) && is_v4(f->dst);
	size_t alen = v4 ? 4 : 16, off = v4 ? 12 : 0, n = 0;
	int proto = f->proto, sp = f->sport, dp = f->dport;
	bool ports = proto == 6 || proto == 17 || proto == 132 || proto == 1 || proto == 58;
	bool one_way = false;
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (proto < 0 || proto > 255)
		return;
	if (proto == 1 || proto == 58) {
		if (f->icmp_type < 0)
			return;
		int peer = proto == 1 ? icmp4_peer(f->icmp_type) : icmp6_peer(f->icmp_type);
		sp = f->icmp_type;
		if (peer >= 0) {
			dp = peer;
		} else {
			dp = f->icmp_code < 0 ? 0 : f->icmp_code;
			one_way = true;
		}
	} else if (ports && (sp < 0 || dp < 0)) {
		return;
	}
	/* order the endpoints: the lesser (address, port) first */
	if (!one_way) {
		int c = memcmp(a + off, b + off, alen);
		if (c > 0 || (c == 0 && ports && sp > dp)) {
			const uint8_t *t = a;
			a = b;
			b = t;
			int tp = sp;
			sp = dp;
			dp = tp;
		}
	}
	buf[n++] = (uint8_t)(seed >> 8);
	buf[n++] = (uint8_t)seed;
	memcpy(buf + n, a + off, alen);
	n += alen;
	memcpy(buf + n, b + off, alen);
	n += alen;
	buf[n++] = (uint8_t)proto;
	buf[n++] = 0;
	if (ports) {
		buf[n++] = (uint8_t)(sp >> 8);
		buf[n++] = (uint8_t)sp;
		buf[n++] = (uint8_t)(dp >> 8);
		buf[n++] = (uint8_t)dp;
	}
	EVP_MD_CTX *ctx = tl_ctx;
	if (!ctx && !(ctx = tl_ctx = EVP_MD_CTX_new()))
		return;
	if (!tl_sha1 && !(tl_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)))
		return;
	if (!EVP_DigestInit_ex2(ctx, tl_sha1, NULL) || !EVP_DigestUpdate(ctx, buf, n) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 20)
		return;
	memcpy(out, "1:", 2);
	EVP_EncodeBlock((unsigned char *)out + 2, md, 20);
}
