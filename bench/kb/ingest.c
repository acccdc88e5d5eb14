/* kb_ingest (bench/kb/ingest.c): ingestion speed of the knowledge base, stage by stage.
 *
 *   kb_ingest [--repeat N] [--store-only] DIR...
 *
 * Reads every .md file under the DIRs into memory (N copies, 10 by default, each copy
 * a distinct document) and measures, in MB of Markdown per second of wall and of CPU:
 *   parse     mk_kb_parse: cmark-gfm, the structural chunker, language detection
 *   index     parse + mk_kb_put_chunks into an in-memory kb (tokenizing, stemming, BM25)
 *   vectors   parse + index with vectors on (embedding and HNSW insertion)
 *   store     mk_kb_lib_add_path of the copies written to a temporary folder, into a
 *             fresh SQLite store (`mayak kb add` minus process start: reading, hashing,
 *             parsing, batched transactions with fsync)
 * and prints one JSON object. The files are only copied under /tmp and removed after. */
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/mk_error.h"
#include "embed/mk_embed.h"
#include "kb/mk_kb_store.h"
#include "store/mk_store.h"

struct file {
    char *name;
    char *data;
    size_t len;
};

static struct file *files;
static size_t nfiles, capfiles;

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            load_dir(path);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0)
            continue;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = malloc((size_t)sb.st_size + 1);
        size_t got = buf ? fread(buf, 1, (size_t)sb.st_size, f) : 0;
        fclose(f);
        if (!buf)
            exit(1);
        buf[got] = '\0';
        if (nfiles == capfiles) {
            capfiles = capfiles ? capfiles * 2 : 256;
            files = realloc(files, capfiles * sizeof *files);
            if (!files)
                exit(1);
        }
        /* Name: the folder's last part and the file, so en/x and ru/x stay apart. */
        const char *slash = strrchr(dir, '/');
        char name[512];
        snprintf(name, sizeof name, "%s-%.*s", slash ? slash + 1 : dir, (int)(n - 3), e->d_name);
        files[nfiles++] = (struct file){strdup(name), buf, got};
    }
    closedir(d);
}

static json_object *stage(const char *what, double bytes, double wall, double cpu)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "stage", json_object_new_string(what));
    json_object_object_add(o, "mb", json_object_new_double(bytes / 1e6));
    json_object_object_add(o, "wall_s", json_object_new_double(wall));
    json_object_object_add(o, "cpu_s", json_object_new_double(cpu));
    json_object_object_add(o, "mb_per_s_wall", json_object_new_double(bytes / 1e6 / wall));
    json_object_object_add(o, "mb_per_s_cpu", json_object_new_double(bytes / 1e6 / cpu));
    fprintf(stderr, "%-8s %6.1f MB  %6.2f s wall %6.2f s cpu  %6.1f MB/s wall %6.1f MB/s cpu\n", what, bytes / 1e6,
            wall, cpu, bytes / 1e6 / wall, bytes / 1e6 / cpu);
    return o;
}

/* Parses (and indexes into kb when not NULL) every copy. */
static void run(int repeat, mk_kb *kb, double *bytes)
{
    *bytes = 0;
    for (int r = 0; r < repeat; r++)
        for (size_t i = 0; i < nfiles; i++) {
            struct mk_kb_parsed p;
            int rc = mk_kb_parse(MK_KB_FORMAT_MARKDOWN, files[i].data, files[i].len, files[i].name, NULL, &p, NULL);
            if (rc) {
                fprintf(stderr, "%s: %s\n", files[i].name, mk_strerror(rc));
                exit(1);
            }
            *bytes += files[i].len;
            if (kb && p.n) {
                struct mk_kb_chunk_in *in = calloc(p.n, sizeof *in);
                for (size_t k = 0; k < p.n; k++)
                    in[k] = (struct mk_kb_chunk_in){.section = p.chunks[k].section, .text = p.chunks[k].text,
                                                    .text_len = p.chunks[k].text_len, .lang = p.chunks[k].lang};
                char id[600];
                snprintf(id, sizeof id, "%s-%d", files[i].name, r);
                struct mk_kb_doc d = {.id = id, .lang = p.lang, .title = p.title};
                rc = mk_kb_put_chunks(kb, &d, in, p.n, NULL);
                free(in);
                if (rc) {
                    fprintf(stderr, "%s: %s\n", id, mk_strerror(rc));
                    exit(1);
                }
            }
            mk_kb_parsed_release(&p);
        }
}

int main(int argc, char **argv)
{
    int repeat = 10;
    bool store_only = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]) > 0 ? (int)strtol(argv[i], NULL, 10) : 1;
        else if (!strcmp(argv[i], "--store-only"))
            store_only = true;
        else {
            fprintf(stderr, "usage: kb_ingest [--repeat N] [--store-only] DIR...\n");
            return 2;
        }
    }
    if (i == argc) {
        fprintf(stderr, "usage: kb_ingest [--repeat N] [--store-only] DIR...\n");
        return 2;
    }
    for (; i < argc; i++)
        load_dir(argv[i]);
    json_object *out = json_object_new_object(), *st = json_object_new_array();
    json_object_object_add(out, "files", json_object_new_int64((int64_t)nfiles));
    json_object_object_add(out, "repeat", json_object_new_int(repeat));
    double bytes, w0, c0;

    if (!store_only) {
        w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        run(repeat, NULL, &bytes);
        json_object_array_add(st, stage("parse", bytes, now(CLOCK_MONOTONIC) - w0, now(CLOCK_PROCESS_CPUTIME_ID) - c0));

        mk_kb *kb = mk_kb_new();
        w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        run(repeat, kb, &bytes);
        json_object_array_add(st, stage("index", bytes, now(CLOCK_MONOTONIC) - w0, now(CLOCK_PROCESS_CPUTIME_ID) - c0));
        json_object_object_add(out, "chunks", json_object_new_int64((int64_t)mk_kb_chunk_count(kb)));
        mk_kb_free(kb);

        mk_embedder *e = NULL;
        if (mk_embedder_new(NULL, &e) != 0)
            return 1;
        kb = mk_kb_new();
        mk_kb_enable_vectors(kb, e);
        w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        run(repeat, kb, &bytes);
        json_object_array_add(st,
                              stage("vectors", bytes, now(CLOCK_MONOTONIC) - w0, now(CLOCK_PROCESS_CPUTIME_ID) - c0));
        mk_kb_free(kb);
        mk_embedder_free(e);
    }

    /* The store stage reads real files: write the copies to a temporary folder. */
    char tmp[] = "/tmp/mayak-kb-ingest-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char docs[600], url[600];
    snprintf(docs, sizeof docs, "%s/docs", tmp);
    snprintf(url, sizeof url, "%s/mayak.db", tmp);
    mkdir(docs, 0700);
    for (int r = 0; r < repeat; r++)
        for (size_t k = 0; k < nfiles; k++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s-%d.md", docs, files[k].name, r);
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(files[k].data, 1, files[k].len, f) != files[k].len)
                return 1;
            fclose(f);
        }
    struct mk_store *s = NULL;
    struct mk_kb_lib *lib = NULL;
    if (mk_store_open(url, NULL, &s, NULL) || mk_kb_lib_open(s, NULL, &lib, NULL))
        return 1;
    struct mk_kb_report rep = {0};
    w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    int rc = mk_kb_lib_add_path(lib, docs, NULL, &rep, NULL);
    double wall = now(CLOCK_MONOTONIC) - w0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (rc || rep.failed) {
        fprintf(stderr, "store stage failed: %s (%zu failed)\n", mk_strerror(rc), rep.failed);
        return 1;
    }
    json_object_array_add(st, stage("store", (double)rep.bytes, wall, cpu));
    json_object_object_add(out, "store_added", json_object_new_int64((int64_t)rep.added));
    json_object_object_add(out, "store_skipped", json_object_new_int64((int64_t)rep.skipped));
    mk_kb_lib_free(lib);
    mk_store_free(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);

    json_object_object_add(out, "stages", st);
    printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY));
    json_object_put(out);
    for (size_t k = 0; k < nfiles; k++) {
        free(files[k].name);
        free(files[k].data);
    }
    free(files);
    return 0;
}
