/*
 * mk_config_values: the string-level decoders of the config loader, free of libfyaml:
 * single-quoted YAML scalars, http(s) URLs and `listen` addresses. Each returns why a
 * text is wrong rather than reporting, so the walker can place the message.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/mk_config_int.h"
#include "core/mk_limits.h"

static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) return true;
    }
    return false;
}

static bool blank_char(char ch) { return ch == ' ' || ch == '\t'; }

/* Unescapes the inside of a single-quoted scalar ('' -> ', line folding as YAML 1.2
 * section 7.3.2 says). libfyaml 0.7.12 decodes runs of '' wrongly (five of them and a
 * letter come back as five quotes, the letter lost) and leaks its buffer doing so, so
 * these scalars are decoded here from the source text. */
int cfg_sq_unescape(const char *s, size_t n, mk_buf *out)
{
    size_t i = 0, empties = 0;
    bool first = true;
    int rc = 0;
    for (;;) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        bool last = e >= n;
        size_t ls = i, le = e;
        if (!last && le > ls && s[le - 1] == '\r') le--;
        if (!first)
            while (ls < le && blank_char(s[ls])) ls++;
        if (!last)
            while (le > ls && blank_char(s[le - 1])) le--;
        if (!first && !last && ls == le) { /* an empty line inside: kept as a newline */
            empties++;
            i = e + 1;
            continue;
        }
        if (!first) {
            if (empties == 0) rc = mk_buf_append_char(out, ' '); /* a single break folds to a space */
            for (; empties > 0 && rc == 0; empties--) rc = mk_buf_append_char(out, '\n');
        }
        for (size_t k = ls; k < le && rc == 0; k++) {
            rc = mk_buf_append_char(out, s[k]);
            if (s[k] == '\'' && k + 1 < le && s[k + 1] == '\'') k++;
        }
        if (rc || last) break;
        first = false;
        i = e + 1;
    }
    if (rc == 0 && !out->data) rc = mk_buf_append(out, "", 0);
    return rc;
}

/* Splits an http(s) URL. On success returns NULL, the host (brackets removed) in
 * host, and in *path_at the index where the path starts. Otherwise a reason. */
const char *cfg_url_split(const char *u, char *host, size_t hostsz, size_t *path_at)
{
    size_t skip;
    if (!strncasecmp(u, "http://", 7)) skip = 7;
    else if (!strncasecmp(u, "https://", 8)) skip = 8;
    else return "must start with http:// or https://";
    if (has_ctl(u, strlen(u)) || strchr(u, ' ')) return "must not contain spaces or control characters";
    const char *a = u + skip;
    size_t alen = strcspn(a, "/?#");
    *path_at = skip + alen;
    if (alen == 0) return "has no host";
    if (memchr(a, '@', alen)) return "must not carry user:password@ (use api_key, credentials or headers)";
    const char *port = NULL;
    size_t hlen;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close) return "has an unclosed '[' in the host";
        hlen = (size_t)(close - a - 1);
        if (hlen == 0 || hlen >= hostsz) return "has a bad IPv6 host";
        memcpy(host, a + 1, hlen);
        host[hlen] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) return "has a bad IPv6 host";
        size_t rest = alen - (size_t)(close + 1 - a);
        if (rest > 0) {
            if (close[1] != ':') return "has junk after the IPv6 host";
            port = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0) return "has no host";
        if (hlen >= hostsz) return "has a host name that is too long";
        for (size_t i = 0; i < hlen; i++) {
            char ch = a[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '-' || ch == '_'))
                return "has a host with characters not allowed in a host name";
        }
        memcpy(host, a, hlen);
        host[hlen] = '\0';
        if (colon) port = colon + 1;
    }
    if (port) {
        size_t plen = (size_t)(a + alen - port);
        long v = 0;
        if (plen == 0 || plen > 5) return "has a bad port";
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9') return "has a bad port";
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535) return "has a port out of range (1-65535)";
    }
    return NULL;
}

static bool host_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost")) return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    return false;
}

bool cfg_url_is_loopback(const char *url)
{
    char host[MK_MAX_NAME_BYTES + 1];
    size_t path_at;
    if (!url || cfg_url_split(url, host, sizeof host, &path_at)) return false;
    return host_is_loopback(host);
}


const char *cfg_listen_split(const char *s, char *host, size_t hostsz, int *port)
{
    if (!s || !*s) return "expected host:port such as 127.0.0.1:8080";
    const char *portstr;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        size_t hlen = close ? (size_t)(close - s - 1) : 0;
        struct in6_addr a6;
        if (!close || hlen == 0 || hlen >= hostsz) {
            return "expected [IPv6]:port such as [::1]:8080";
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            return "the address in brackets is not an IPv6 address";
        }
        if (close[1] != ':') {
            return "expected [IPv6]:port such as [::1]:8080";
        }
        portstr = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            return "expected host:port such as 127.0.0.1:8080";
        }
        size_t hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen)) {
            return "IPv6 addresses go in brackets, e.g. \"[::1]:8080\"";
        }
        if (hlen == 0 || hlen >= hostsz) {
            return "expected host:port such as 127.0.0.1:8080 (use 0.0.0.0 for every interface)";
        }
        for (size_t i = 0; i < hlen; i++) {
            char ch = s[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '-')) {
                return "the host has characters not allowed in a host name or address";
            }
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        portstr = colon + 1;
    }
    size_t plen = strlen(portstr);
    if (plen == 0 || plen > 9 || strspn(portstr, "0123456789") != plen) {
        return "the port must be a number";
    }
    long v = strtol(portstr, NULL, 10); /* at most 9 digits: no overflow */
    if (v < 1 || v > 65535) return "the port is out of range (1-65535)";
    *port = (int)v;
    return NULL;
}
