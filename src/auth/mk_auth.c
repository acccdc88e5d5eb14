/* mk_auth: principals, the default credentials policy and the server secret. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/mk_auth.h"
#include "core/mk_error.h"

bool mk_principal_allows_model(const struct mk_principal *p, const char *group)
{
    if (!p || !group) return false;
    if (!p->models[0]) return true;
    size_t gl = strlen(group);
    const char *s = p->models;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == gl && memcmp(s, group, gl) == 0) return true;
        if (!e) break;
        s = e + 1;
    }
    return false;
}

bool mk_host_is_loopback(const char *host)
{
    if (!host || !*host) return false;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
        /* ::ffff:127.x.y.z, how a dual-stack socket shows an IPv4 loopback peer */
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return false;
}

bool mk_auth_credentials_required(const struct mk_auth_policy *pol, const char *listen_host)
{
    if (pol && pol->required >= 0) return pol->required != 0;
    return !mk_host_is_loopback(listen_host);
}

int mk_auth_anonymous(const struct mk_auth_policy *pol, const char *listen_host, const char *peer_ip,
                      struct mk_principal *out)
{
    if (!out) return MK_EINVAL;
    if (mk_auth_credentials_required(pol, listen_host) || !mk_host_is_loopback(peer_ip)) return MK_EUNAUTHORIZED;
    memset(out, 0, sizeof *out);
    out->kind = MK_PRINCIPAL_ANONYMOUS;
    snprintf(out->id, sizeof out->id, "local");
    snprintf(out->tenant, sizeof out->tenant, "local");
    out->role = pol && pol->local_admin ? MK_ROLE_ADMIN : MK_ROLE_DEVELOPER;
    return 0;
}

int mk_auth_bearer(mk_slice h, mk_slice *out)
{
    const char *p = h.ptr, *end = h.ptr + h.len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (p == end) return MK_ENOTFOUND;
    if ((size_t)(end - p) < 7 || strncasecmp(p, "bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return MK_EUNAUTHORIZED;
    p += 7;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end) return MK_EUNAUTHORIZED;
    for (const char *q = p; q < end; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q == 0x7f) return MK_EUNAUTHORIZED;
    out->ptr = p;
    out->len = (size_t)(end - p);
    return 0;
}

bool mk_auth_is_api_key(mk_slice c) { return c.len >= 3 && memcmp(c.ptr, "mk-", 3) == 0; }

/* ---- server secret ------------------------------------------------------------------- */

static int read_secret(const char *path, unsigned char out[MK_AUTH_SECRET_BYTES], mk_buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (err) mk_buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        if (err) mk_buf_printf(err, "%s is not a regular file", path);
        return MK_EIO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        if (err) mk_buf_printf(err, "%s is accessible to group or others (mode %03o); chmod 600 it", path,
                               (unsigned)(st.st_mode & 0777));
        return MK_ECONFIG;
    }
    unsigned char buf[MK_AUTH_SECRET_BYTES + 1];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != MK_AUTH_SECRET_BYTES) {
        if (err) mk_buf_printf(err, "%s must hold exactly %d bytes", path, MK_AUTH_SECRET_BYTES);
        sodium_memzero(buf, sizeof buf);
        return MK_ECORRUPT;
    }
    memcpy(out, buf, MK_AUTH_SECRET_BYTES);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int mk_auth_secret_load(const char *data_dir, unsigned char out[MK_AUTH_SECRET_BYTES], mk_buf *err)
{
    if (!data_dir || !*data_dir) return MK_EINVAL;
    if (sodium_init() < 0) return MK_EINTERNAL;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        if (err) mk_buf_printf(err, "cannot create data_dir %s: %s", data_dir, strerror(errno));
        return MK_EIO;
    }
    char path[4096], tmp[4200];
    if (snprintf(path, sizeof path, "%s/%s", data_dir, MK_AUTH_SECRET_FILE) >= (int)sizeof path) return MK_EINVAL;
    int rc = read_secret(path, out, NULL);
    if (rc != MK_ENOTFOUND) return rc == 0 ? 0 : read_secret(path, out, err);

    /* First use: write a temp file, then link() it into place. link fails if another
     * process won the race; then we read theirs, so every process uses one secret. */
    unsigned char fresh[MK_AUTH_SECRET_BYTES];
    randombytes_buf(fresh, sizeof fresh);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (err) mk_buf_printf(err, "cannot create %s: %s", tmp, strerror(errno));
        return MK_EIO;
    }
    bool ok = write(fd, fresh, sizeof fresh) == (ssize_t)sizeof fresh && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    sodium_memzero(fresh, sizeof fresh);
    if (!ok) {
        unlink(tmp);
        if (err) mk_buf_printf(err, "cannot write %s", tmp);
        return MK_EIO;
    }
    int lrc = link(tmp, path);
    int lerr = errno;
    unlink(tmp);
    if (lrc != 0 && lerr != EEXIST) {
        if (err) mk_buf_printf(err, "cannot create %s: %s", path, strerror(lerr));
        return MK_EIO;
    }
    return read_secret(path, out, err);
}

void mk_auth_subkey(const unsigned char secret[MK_AUTH_SECRET_BYTES], uint64_t id, const char context[8],
                    unsigned char out[32])
{
    crypto_kdf_derive_from_key(out, 32, id, context, secret);
}
