/*
 * bus_amqp: the RabbitMQ bus backend, for deployments of many nodes.
 *
 * librabbitmq (rabbitmq-c) is blocking, so it never runs on the loop. Two threads,
 * each with its own connection (RabbitMQ blocks a publishing connection under memory
 * pressure; acknowledgements must not wait behind that):
 *
 *   publisher  declares the durable topic exchange "mayak.events", turns on publisher
 *              confirms, sends every queued event (persistent, routing key = type) and
 *              reads the broker's basic.ack / basic.nack. An event leaves the publish
 *              queue only when confirmed; after a lost connection or a nack everything
 *              unconfirmed is sent again, in order. The queue is bounded
 *              (max_pending events, MK_BUS_MAX_PENDING_BYTES): mk_bus_publish says
 *              MK_EBUSY rather than eat the memory during a long outage.
 *   consumer   declares, binds and consumes one queue per subscription (durable
 *              "<prefix>.<group>", or exclusive auto-delete for fan-out), with
 *              basic.qos = the subscription's prefetch, and hands every delivery to the
 *              loop. Acks come back from the loop as commands; an ack for a delivery
 *              of an older connection is dropped (the broker has requeued it already).
 *
 * Loop <-> threads: one mutex guards the queues between them; an eventfd per thread
 * wakes it (it polls the eventfd next to its socket); one uv_async wakes the loop for
 * confirmations to report and deliveries to hand out.
 *
 * Reconnecting: a failed connect or a lost connection is retried after a jittered,
 * doubling backoff (reconnect_min_ms .. reconnect_max_ms), so a broker restart costs a
 * few seconds of latency and no events. Heartbeats are off (librabbitmq only sends them
 * from inside its own waits); TCP keepalive finds a dead peer instead.
 *
 * No TLS yet ("amqps" is refused): librabbitmq's TLS socket needs CA wiring the config
 * does not have.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus/bus_int.h"
#include "core/mk_error.h"
#include "core/mk_log.h"
#include "core/mk_rand.h"
#include "core/mk_time.h"

#define EXCHANGE "mayak.events"
#define CHANNEL 1
/* A frame bigger than this is split; 128 KB is RabbitMQ's default. */
#define FRAME_MAX 131072
/* Longest idle wait of a thread before it looks at its queues again anyway. */
#define IDLE_WAIT_MS 1000
/* Frames read in one go before the thread turns to its own queue again. */
#define READ_BATCH 256

struct target {
    char *host, *user, *pass, *vhost;
    int port;
};

enum cmd_kind { CMD_ACK, CMD_NACK, CMD_REJECT, CMD_SUB, CMD_CANCEL };

/* The consumer thread's own copy of a subscription (the loop's may be gone). */
struct tsub {
    uint64_t id;
    char *queue;             /* durable queue name; NULL = server-named exclusive */
    char **patterns;
    size_t npatterns;
    uint16_t prefetch;
    char tag[32];            /* consumer tag "mk-<id>" */
    struct tsub *next;
};

struct cmd {
    enum cmd_kind kind;
    uint64_t tag, gen, sub_id;
    struct tsub *sub;        /* CMD_SUB */
    struct cmd *next;
};

struct incoming {
    uint64_t sub_id, tag, gen;
    bool redelivered;
    char *body;
    size_t len;
    struct incoming *next;
};

struct amqp {
    struct mk_bus *bus;
    struct target t;
    uint32_t connect_timeout_ms, backoff_min, backoff_max, max_pending;
    uv_async_t async;
    pthread_t pub_thread, con_thread;
    bool pub_started, con_started;
    int pub_efd, con_efd;

    pthread_mutex_t mu;      /* guards everything down to the atomics */
    bool stop;
    uint64_t drain_deadline_ms;
    struct bus_msg *unsent_head, *unsent_tail;
    size_t pending, pending_bytes;   /* unsent + sent-unconfirmed */
    struct bus_msg *done_head, *done_tail;
    struct incoming *in_head, *in_tail;
    struct cmd *cmd_head, *cmd_tail;

    atomic_bool pub_up, con_up;
};

/* ---- helpers ---------------------------------------------------------------------- */

static bool accepts(const char *url) { return !strncmp(url, "amqp://", 7) || !strncmp(url, "amqps://", 8); }

static void wake(int efd)
{
    uint64_t one = 1;
    ssize_t w = write(efd, &one, sizeof one);
    (void)w; /* EAGAIN: already awake */
}

static void drain_efd(int efd)
{
    uint64_t v;
    ssize_t r = read(efd, &v, sizeof v);
    (void)r;
}

/* Sleeps up to ms, or until the eventfd is written. */
static void wait_efd(int efd, uint32_t ms)
{
    struct pollfd p = {.fd = efd, .events = POLLIN};
    if (poll(&p, 1, (int)ms) > 0) drain_efd(efd);
}

static uint32_t jitter(uint32_t ms) { return ms / 2 + mk_rand_uniform(ms / 2 + 1); }

static void reply_text(amqp_rpc_reply_t r, char *why, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(why, n, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(why, n, "no reply");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, n, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *c = r.reply.decoded;
            snprintf(why, n, "broker closed the connection: %u %.*s", c->reply_code, (int)c->reply_text.len,
                     (const char *)c->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *c = r.reply.decoded;
            snprintf(why, n, "broker closed the channel: %u %.*s", c->reply_code, (int)c->reply_text.len,
                     (const char *)c->reply_text.bytes);
        } else {
            snprintf(why, n, "broker error (method 0x%08x)", (unsigned)r.reply.id);
        }
        break;
    }
}

static bool ok_reply(amqp_connection_state_t conn, char *why, size_t n)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
    reply_text(r, why, n);
    return false;
}

/* Connects, logs in, opens the channel and declares the exchange. NULL with a reason
 * in why when any step fails (each bounded by connect_timeout_ms). */
static amqp_connection_state_t link_open(struct amqp *a, char *why, size_t n)
{
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {a->connect_timeout_ms / 1000, (a->connect_timeout_ms % 1000) * 1000};
    int st = sock ? amqp_socket_open_noblock(sock, a->t.host, a->t.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (st != AMQP_STATUS_OK) {
        snprintf(why, n, "connect to %s:%d: %s", a->t.host, a->t.port, amqp_error_string2(st));
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    amqp_rpc_reply_t r =
        amqp_login(conn, a->t.vhost, 0, FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN, a->t.user, a->t.pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_text(r, why, n);
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, CHANNEL);
    if (!ok_reply(conn, why, n)) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                          amqp_empty_table);
    if (!ok_reply(conn, why, n)) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    /* No AMQP heartbeats (see the file comment): let TCP notice a dead broker. */
    int fd = amqp_get_sockfd(conn), on = 1, idle = 10, intvl = 5, cnt = 3;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    return conn;
}

/* Closes politely (the broker then requeues at once and logs nothing odd). */
static void link_close(amqp_connection_state_t conn)
{
    amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* Waits until the connection has something to read or efd is written. true when the
 * connection should be read. */
static bool wait_link(amqp_connection_state_t conn, int efd, int ms)
{
    if (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn)) return true;
    struct pollfd p[2] = {{.fd = amqp_get_sockfd(conn), .events = POLLIN}, {.fd = efd, .events = POLLIN}};
    int r = poll(p, 2, ms);
    if (r <= 0) return false;
    if (p[1].revents) drain_efd(efd);
    return p[0].revents != 0;
}

/* ---- publisher thread -------------------------------------------------------------- */

struct sent_list {
    struct bus_msg *head, *tail;
    size_t n;
};

static void list_append(struct bus_msg **head, struct bus_msg **tail, struct bus_msg *m)
{
    m->next = NULL;
    if (*tail) (*tail)->next = m;
    else *head = m;
    *tail = m;
}

/* Puts a chain (head..tail, in order) back at the front of the unsent queue. */
static void unsent_prepend(struct amqp *a, struct bus_msg *head, struct bus_msg *tail)
{
    if (!head) return;
    pthread_mutex_lock(&a->mu);
    tail->next = a->unsent_head;
    a->unsent_head = head;
    if (!a->unsent_tail) a->unsent_tail = tail;
    pthread_mutex_unlock(&a->mu);
}

static void confirmed(struct amqp *a, struct bus_msg *m)
{
    bool notify = false;
    pthread_mutex_lock(&a->mu);
    a->pending--;
    a->pending_bytes -= m->body_len;
    atomic_store(&a->bus->st_pending, a->pending);
    if (m->cb) {
        list_append(&a->done_head, &a->done_tail, m);
        notify = true;
    }
    pthread_mutex_unlock(&a->mu);
    atomic_fetch_add(&a->bus->st_confirmed, 1);
    if (notify) uv_async_send(&a->async);
    else mk_bus__msg_free(m); /* only this thread holds it */
}

/* basic.ack / basic.nack for `tag` (and everything before it when multiple). Acked
 * events are done; nacked ones go back to the front of the queue, in order. */
static void on_confirm(struct amqp *a, struct sent_list *s, uint64_t tag, bool multiple, bool ack)
{
    struct bus_msg *again_head = NULL, *again_tail = NULL, *prev = NULL, *m = s->head;
    while (m) {
        struct bus_msg *next = m->next;
        if (m->seq > tag) break;
        if (multiple || m->seq == tag) {
            if (prev) prev->next = next;
            else s->head = next;
            if (s->tail == m) s->tail = prev;
            s->n--;
            if (ack) {
                confirmed(a, m);
            } else {
                atomic_fetch_add(&a->bus->st_resent, 1);
                list_append(&again_head, &again_tail, m);
            }
        } else {
            prev = m;
        }
        m = next;
    }
    unsent_prepend(a, again_head, again_tail);
}

/* Reads what the broker sent. -1 when the connection is unusable. */
static int read_confirms(struct amqp *a, amqp_connection_state_t conn, struct sent_list *s)
{
    for (int i = 0; i < READ_BATCH; i++) {
        amqp_maybe_release_buffers(conn);
        amqp_frame_t f;
        struct timeval tv = {0, 20000};
        int st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT) return 0;
        if (st != AMQP_STATUS_OK) {
            mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "publisher", "why", amqp_error_string2(st), NULL);
            return -1;
        }
        if (f.frame_type == AMQP_FRAME_METHOD) {
            switch (f.payload.method.id) {
            case AMQP_BASIC_ACK_METHOD: {
                amqp_basic_ack_t *m = f.payload.method.decoded;
                on_confirm(a, s, m->delivery_tag, m->multiple, true);
                break;
            }
            case AMQP_BASIC_NACK_METHOD: {
                amqp_basic_nack_t *m = f.payload.method.decoded;
                mk_log(MK_LOG_WARN, "bus_amqp_nack", "why", "the broker refused events; sending them again", NULL);
                on_confirm(a, s, m->delivery_tag, m->multiple, false);
                break;
            }
            case AMQP_CONNECTION_CLOSE_METHOD:
            case AMQP_CHANNEL_CLOSE_METHOD: {
                char why[256];
                amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
                reply_text(r, why, sizeof why);
                mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "publisher", "why", why, NULL);
                return -1;
            }
            default:
                break; /* connection.blocked/unblocked and the like: nothing to do */
            }
        }
        if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) return 0;
    }
    return 0;
}

/* A lost connection: everything unconfirmed goes back to the front, in order. */
static void pub_drop(struct amqp *a, amqp_connection_state_t *conn, struct sent_list *s)
{
    amqp_destroy_connection(*conn);
    *conn = NULL;
    atomic_store(&a->pub_up, false);
    if (s->head) {
        atomic_fetch_add(&a->bus->st_resent, s->n);
        unsent_prepend(a, s->head, s->tail);
    }
    s->head = s->tail = NULL;
    s->n = 0;
}

static void *pub_main(void *arg)
{
    struct amqp *a = arg;
    amqp_connection_state_t conn = NULL;
    struct sent_list s = {0};
    uint64_t seq = 0;
    uint32_t backoff = a->backoff_min;
    bool ever = false, down_logged = false;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        bool stop = a->stop, empty = a->unsent_head == NULL;
        uint64_t deadline = a->drain_deadline_ms;
        pthread_mutex_unlock(&a->mu);
        /* Stopping: keep going while connected and events wait for a confirm, up to
         * the drain deadline. */
        if (stop && (!conn || (empty && !s.head) || mk_now_ms() >= deadline)) break;
        if (!conn) {
            char why[256];
            conn = link_open(a, why, sizeof why);
            if (conn) {
                amqp_confirm_select(conn, CHANNEL);
                if (!ok_reply(conn, why, sizeof why)) {
                    amqp_destroy_connection(conn);
                    conn = NULL;
                }
            }
            if (!conn) {
                if (!down_logged) mk_log(MK_LOG_WARN, "bus_amqp_unavailable", "link", "publisher", "why", why, NULL);
                down_logged = true;
                wait_efd(a->pub_efd, jitter(backoff));
                backoff = backoff >= a->backoff_max / 2 ? a->backoff_max : backoff * 2;
                continue;
            }
            seq = 0; /* confirm sequence numbers start at 1 on each channel */
            backoff = a->backoff_min;
            if (ever) atomic_fetch_add(&a->bus->st_reconnects, 1);
            ever = true;
            down_logged = false;
            atomic_store(&a->pub_up, true);
            mk_log(MK_LOG_INFO, "bus_amqp_connected", "link", "publisher", NULL);
        }
        pthread_mutex_lock(&a->mu);
        struct bus_msg *batch = a->unsent_head;
        a->unsent_head = a->unsent_tail = NULL;
        pthread_mutex_unlock(&a->mu);
        bool broken = false;
        while (batch) {
            struct bus_msg *m = batch;
            amqp_basic_properties_t props = {0};
            props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                           AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
            props.content_type = amqp_cstring_bytes("application/json");
            props.delivery_mode = 2; /* persistent: survives a broker restart in a durable queue */
            props.message_id = amqp_cstring_bytes(m->id);
            props.type = amqp_cstring_bytes(m->type);
            props.timestamp = (uint64_t)(m->time_ms / 1000);
            props.app_id = amqp_cstring_bytes("mayak");
            amqp_bytes_t body = {m->body_len, m->body};
            int st = amqp_basic_publish(conn, CHANNEL, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes(m->type), 0, 0,
                                        &props, body);
            if (st != AMQP_STATUS_OK) {
                mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "publisher", "why", amqp_error_string2(st), NULL);
                broken = true;
                break;
            }
            batch = m->next;
            m->seq = ++seq;
            list_append(&s.head, &s.tail, m);
            s.n++;
        }
        if (broken) {
            struct bus_msg *tail = batch;
            while (tail->next) tail = tail->next;
            unsent_prepend(a, batch, tail);
            pub_drop(a, &conn, &s);
            continue;
        }
        if (wait_link(conn, a->pub_efd, stop ? 50 : IDLE_WAIT_MS) && read_confirms(a, conn, &s) != 0)
            pub_drop(a, &conn, &s);
    }
    if (conn) link_close(conn);
    atomic_store(&a->pub_up, false);
    if (s.head) unsent_prepend(a, s.head, s.tail); /* close() reports them lost */
    return NULL;
}

/* ---- consumer thread --------------------------------------------------------------- */

static void tsub_free(struct tsub *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->npatterns; i++) free(t->patterns[i]);
    free(t->patterns);
    free(t->queue);
    free(t);
}

/* qos, queue, bindings, consume. false (why set) when the connection must go. */
static bool tsub_setup(amqp_connection_state_t conn, struct tsub *t, char *why, size_t n)
{
    amqp_basic_qos(conn, CHANNEL, 0, t->prefetch, 0);
    if (!ok_reply(conn, why, n)) return false;
    amqp_queue_declare_ok_t *q;
    if (t->queue)
        q = amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(t->queue), 0, 1, 0, 0, amqp_empty_table);
    else
        q = amqp_queue_declare(conn, CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    bool declared = ok_reply(conn, why, n);
    if (!q || !declared) {
        if (declared) snprintf(why, n, "queue.declare failed");
        return false;
    }
    amqp_bytes_t qname = amqp_bytes_malloc_dup(q->queue);
    if (!qname.bytes) {
        snprintf(why, n, "out of memory");
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < t->npatterns; i++) {
        amqp_queue_bind(conn, CHANNEL, qname, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes(t->patterns[i]),
                        amqp_empty_table);
        ok = ok_reply(conn, why, n);
    }
    if (ok) {
        amqp_basic_consume(conn, CHANNEL, qname, amqp_cstring_bytes(t->tag), 0, 0, 0, amqp_empty_table);
        ok = ok_reply(conn, why, n);
    }
    amqp_bytes_free(qname);
    return ok;
}

static void push_incoming(struct amqp *a, struct incoming *in)
{
    pthread_mutex_lock(&a->mu);
    in->next = NULL;
    if (a->in_tail) a->in_tail->next = in;
    else a->in_head = in;
    a->in_tail = in;
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->async);
}

/* Reads deliveries. -1 when the connection must go. */
static int read_deliveries(struct amqp *a, amqp_connection_state_t conn, uint64_t gen)
{
    for (int i = 0; i < READ_BATCH; i++) {
        amqp_maybe_release_buffers(conn);
        amqp_envelope_t env;
        struct timeval tv = {0, 20000};
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            uint64_t sub_id = 0;
            char tag[32];
            size_t tl = env.consumer_tag.len < sizeof tag - 1 ? env.consumer_tag.len : sizeof tag - 1;
            memcpy(tag, env.consumer_tag.bytes, tl);
            tag[tl] = '\0';
            if (strncmp(tag, "mk-", 3) == 0) sub_id = strtoull(tag + 3, NULL, 10);
            size_t len = env.message.body.len;
            struct incoming *in = NULL;
            if (len <= MK_BUS_MAX_EVENT_BYTES && (in = calloc(1, sizeof *in)) && (in->body = malloc(len + 1))) {
                memcpy(in->body, env.message.body.bytes, len);
                in->body[len] = '\0';
                in->len = len;
                in->sub_id = sub_id;
                in->tag = env.delivery_tag;
                in->gen = gen;
                in->redelivered = env.redelivered;
                push_incoming(a, in);
            } else if (len > MK_BUS_MAX_EVENT_BYTES) {
                /* Not ours (nothing Mayak publishes is this big): drop it for good. */
                atomic_fetch_add(&a->bus->st_malformed, 1);
                mk_log(MK_LOG_WARN, "bus_event_malformed", "why", "larger than MK_BUS_MAX_EVENT_BYTES", NULL);
                amqp_basic_reject(conn, CHANNEL, env.delivery_tag, 0);
            } else {
                free(in); /* out of memory: let the broker send it again later */
                amqp_basic_nack(conn, CHANNEL, env.delivery_tag, 0, 1);
            }
            amqp_destroy_envelope(&env);
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
            return 0;
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* A frame other than a delivery is waiting: read it. */
            amqp_frame_t f;
            int st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
            if (st == AMQP_STATUS_TIMEOUT) return 0;
            if (st != AMQP_STATUS_OK) {
                mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "consumer", "why", amqp_error_string2(st), NULL);
                return -1;
            }
            if (f.frame_type == AMQP_FRAME_METHOD) {
                amqp_method_number_t id = f.payload.method.id;
                if (id == AMQP_CONNECTION_CLOSE_METHOD || id == AMQP_CHANNEL_CLOSE_METHOD) {
                    char why[256];
                    amqp_rpc_reply_t rr = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
                    reply_text(rr, why, sizeof why);
                    mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "consumer", "why", why, NULL);
                    return -1;
                }
                if (id == AMQP_BASIC_CANCEL_METHOD) {
                    /* The broker cancelled a consumer (its queue was deleted): start over,
                     * which declares the queues again. */
                    mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "consumer", "why", "consumer cancelled by the broker",
                           NULL);
                    return -1;
                }
            }
        } else {
            char why[256];
            reply_text(r, why, sizeof why);
            mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "consumer", "why", why, NULL);
            return -1;
        }
        if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) return 0;
    }
    return 0;
}

static void *con_main(void *arg)
{
    struct amqp *a = arg;
    amqp_connection_state_t conn = NULL;
    struct tsub *subs = NULL;
    uint64_t gen = 0;
    uint32_t backoff = a->backoff_min;
    bool ever = false, down_logged = false;
    char why[256];
    for (;;) {
        pthread_mutex_lock(&a->mu);
        bool stop = a->stop;
        struct cmd *cmds = a->cmd_head;
        a->cmd_head = a->cmd_tail = NULL;
        pthread_mutex_unlock(&a->mu);
        bool broken = false;
        while (cmds) {
            struct cmd *c = cmds;
            cmds = c->next;
            if (c->kind == CMD_SUB) {
                c->sub->next = subs;
                subs = c->sub;
                why[0] = '\0';
                if (conn && !broken && !stop) {
                    if (tsub_setup(conn, c->sub, why, sizeof why)) {
                        atomic_fetch_add(&a->bus->st_consuming, 1);
                    } else {
                        mk_log(MK_LOG_WARN, "bus_amqp_lost", "link", "consumer", "why", why, NULL);
                        broken = true;
                    }
                }
            } else if (c->kind == CMD_CANCEL) {
                for (struct tsub **pp = &subs; *pp; pp = &(*pp)->next)
                    if ((*pp)->id == c->sub_id) {
                        struct tsub *t = *pp;
                        *pp = t->next;
                        if (conn && !broken && !stop) {
                            amqp_basic_cancel(conn, CHANNEL, amqp_cstring_bytes(t->tag));
                            if (!ok_reply(conn, why, sizeof why)) broken = true;
                            else atomic_fetch_sub(&a->bus->st_consuming, 1);
                        }
                        tsub_free(t);
                        break;
                    }
            } else if (conn && !broken && c->gen == gen) {
                int st = c->kind == CMD_ACK    ? amqp_basic_ack(conn, CHANNEL, c->tag, 0)
                         : c->kind == CMD_NACK ? amqp_basic_nack(conn, CHANNEL, c->tag, 0, 1)
                                               : amqp_basic_reject(conn, CHANNEL, c->tag, 0);
                if (st != AMQP_STATUS_OK) broken = true;
            }
            free(c);
        }
        if (stop) break;
        if (broken) {
            amqp_destroy_connection(conn);
            conn = NULL;
            atomic_store(&a->con_up, false);
            atomic_store(&a->bus->st_consuming, 0);
        }
        if (!conn) {
            conn = link_open(a, why, sizeof why);
            uint64_t consuming = 0;
            for (struct tsub *t = subs; conn && t; t = t->next) {
                why[0] = '\0';
                if (!tsub_setup(conn, t, why, sizeof why)) {
                    amqp_destroy_connection(conn);
                    conn = NULL;
                } else {
                    consuming++;
                }
            }
            if (!conn) {
                if (!down_logged) mk_log(MK_LOG_WARN, "bus_amqp_unavailable", "link", "consumer", "why", why, NULL);
                down_logged = true;
                wait_efd(a->con_efd, jitter(backoff));
                backoff = backoff >= a->backoff_max / 2 ? a->backoff_max : backoff * 2;
                continue;
            }
            gen++; /* acks for deliveries of the previous connection are void now */
            backoff = a->backoff_min;
            if (ever) atomic_fetch_add(&a->bus->st_reconnects, 1);
            ever = true;
            down_logged = false;
            atomic_store(&a->con_up, true);
            atomic_store(&a->bus->st_consuming, consuming);
            mk_log(MK_LOG_INFO, "bus_amqp_connected", "link", "consumer", NULL);
        }
        if (wait_link(conn, a->con_efd, IDLE_WAIT_MS) && read_deliveries(a, conn, gen) != 0) {
            amqp_destroy_connection(conn);
            conn = NULL;
            atomic_store(&a->con_up, false);
            atomic_store(&a->bus->st_consuming, 0);
        }
    }
    if (conn) link_close(conn);
    atomic_store(&a->con_up, false);
    atomic_store(&a->bus->st_consuming, 0);
    while (subs) {
        struct tsub *t = subs;
        subs = t->next;
        tsub_free(t);
    }
    return NULL;
}

/* ---- the loop side ----------------------------------------------------------------- */

static void push_cmd(struct amqp *a, struct cmd *c)
{
    pthread_mutex_lock(&a->mu);
    c->next = NULL;
    if (a->cmd_tail) a->cmd_tail->next = c;
    else a->cmd_head = c;
    a->cmd_tail = c;
    pthread_mutex_unlock(&a->mu);
    wake(a->con_efd);
}

static void send_settle(struct amqp *a, enum cmd_kind kind, uint64_t tag, uint64_t gen)
{
    struct cmd *c = calloc(1, sizeof *c);
    if (!c) return; /* the broker redelivers it once the connection goes */
    c->kind = kind;
    c->tag = tag;
    c->gen = gen;
    push_cmd(a, c);
}

static struct mk_bus_sub *find_sub(struct mk_bus *bus, uint64_t id)
{
    for (struct mk_bus_sub *s = bus->subs; s; s = s->next)
        if (s->id == id && s->active) return s;
    return NULL;
}

static void on_async(uv_async_t *h)
{
    struct amqp *a = h->data;
    struct mk_bus *bus = a->bus;
    if (bus->closing) return;
    pthread_mutex_lock(&a->mu);
    struct bus_msg *done = a->done_head;
    struct incoming *in = a->in_head;
    a->done_head = a->done_tail = NULL;
    a->in_head = a->in_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    while (done) {
        struct bus_msg *m = done;
        done = m->next;
        m->cb(0, m->id, m->cb_arg);
        mk_bus__msg_free(m);
    }
    mk_bus__ref(bus); /* a handler may free the bus; finish this batch first */
    while (in) {
        struct incoming *d = in;
        in = d->next;
        struct mk_bus_sub *sub = bus->closing ? NULL : find_sub(bus, d->sub_id);
        if (!sub) {
            if (!bus->closing) send_settle(a, CMD_NACK, d->tag, d->gen); /* unsubscribed meanwhile */
        } else {
            struct mk_bus_wire_event ev;
            mk_buf err;
            mk_buf_init(&err, 512);
            int rc = mk_bus_wire_event_parse(d->body, d->len, &ev, &err);
            if (rc == MK_ENOMEM) {
                send_settle(a, CMD_NACK, d->tag, d->gen);
            } else if (rc) {
                atomic_fetch_add(&bus->st_malformed, 1);
                mk_log(MK_LOG_WARN, "bus_event_malformed", "why", err.data ? err.data : "?", NULL);
                send_settle(a, CMD_REJECT, d->tag, d->gen);
            } else {
                struct bus_msg *m = mk_bus__msg_from_wire(&ev);
                if (m) mk_bus__msg_ref(m); /* ours until the call returns (it may finish at once) */
                if (!m || mk_bus__deliver(bus, sub, m, d->redelivered, d->tag, d->gen) != 0)
                    send_settle(a, CMD_NACK, d->tag, d->gen);
                mk_bus__msg_unref(m);
            }
            mk_buf_release(&err);
        }
        free(d->body);
        free(d);
    }
    /* Left over when a handler closed the bus: the broker takes them back. */
    while (in) {
        struct incoming *d = in;
        in = d->next;
        free(d->body);
        free(d);
    }
    mk_bus__unref(bus);
}

static void target_release(struct target *t)
{
    free(t->host);
    free(t->user);
    free(t->pass);
    free(t->vhost);
}

static int parse_target(const char *url, struct target *t, mk_buf *err)
{
    char *copy = strdup(url);
    if (!copy) return MK_ENOMEM;
    struct amqp_connection_info info;
    amqp_default_connection_info(&info);
    int st = amqp_parse_url(copy, &info);
    if (st != AMQP_STATUS_OK) {
        free(copy);
        if (err) mk_buf_printf(err, "bus url is not a valid amqp:// URL (amqp://user:pass@host:port/vhost)");
        return MK_EINVAL;
    }
    if (info.ssl) {
        free(copy);
        if (err) mk_buf_printf(err, "bus url: amqps:// (TLS) is not supported yet; use amqp:// on a trusted network");
        return MK_EINVAL;
    }
    if (info.port <= 0 || info.port > 65535 || !info.host || !*info.host) {
        free(copy);
        if (err) mk_buf_printf(err, "bus url needs a host and a port in 1..65535");
        return MK_EINVAL;
    }
    t->host = strdup(info.host);
    t->user = strdup(info.user ? info.user : "guest");
    t->pass = strdup(info.password ? info.password : "guest");
    t->vhost = strdup(info.vhost && *info.vhost ? info.vhost : "/");
    t->port = info.port;
    free(copy);
    if (!t->host || !t->user || !t->pass || !t->vhost) {
        target_release(t);
        return MK_ENOMEM;
    }
    return 0;
}

static void amqp_release(struct amqp *a)
{
    if (a->pub_efd >= 0) close(a->pub_efd);
    if (a->con_efd >= 0) close(a->con_efd);
    pthread_mutex_destroy(&a->mu);
    target_release(&a->t);
    free(a);
}

static void stop_threads(struct amqp *a)
{
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    a->drain_deadline_ms = mk_now_ms() + a->bus->opt.drain_ms;
    pthread_mutex_unlock(&a->mu);
    wake(a->pub_efd);
    wake(a->con_efd);
    if (a->pub_started) pthread_join(a->pub_thread, NULL);
    if (a->con_started) pthread_join(a->con_thread, NULL);
    a->pub_started = a->con_started = false;
}

static void on_closed(uv_handle_t *h)
{
    struct amqp *a = h->data;
    struct mk_bus *bus = a->bus;
    amqp_release(a);
    mk_bus__unref(bus);
}

static void on_closed_early(uv_handle_t *h) { amqp_release(h->data); }

static int open_amqp(struct mk_bus *bus, const char *url, mk_buf *err)
{
    struct amqp *a = calloc(1, sizeof *a);
    if (!a) return MK_ENOMEM;
    a->pub_efd = a->con_efd = -1;
    a->bus = bus;
    a->connect_timeout_ms = bus->opt.connect_timeout_ms;
    a->backoff_min = bus->opt.reconnect_min_ms;
    a->backoff_max = bus->opt.reconnect_max_ms;
    a->max_pending = bus->opt.max_pending;
    pthread_mutex_init(&a->mu, NULL);
    int rc = parse_target(url, &a->t, err);
    if (rc) {
        pthread_mutex_destroy(&a->mu);
        free(a);
        return rc;
    }
    a->pub_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a->con_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->pub_efd < 0 || a->con_efd < 0 || uv_async_init(bus->loop, &a->async, on_async) != 0) {
        if (err) mk_buf_printf(err, "bus: cannot create wake-up handles: %s", strerror(errno));
        amqp_release(a);
        return MK_EINTERNAL;
    }
    a->async.data = a;
    bus->impl = a;
    a->pub_started = pthread_create(&a->pub_thread, NULL, pub_main, a) == 0;
    a->con_started = a->pub_started && pthread_create(&a->con_thread, NULL, con_main, a) == 0;
    if (!a->pub_started || !a->con_started) {
        stop_threads(a);
        if (err) mk_buf_printf(err, "bus: cannot start the broker threads");
        bus->impl = NULL;
        /* The caller frees the bus at once: this close must not touch it. */
        uv_close((uv_handle_t *)&a->async, on_closed_early);
        return MK_EINTERNAL;
    }
    mk_bus__ref(bus); /* the async handle's */
    return 0;
}

static void close_amqp(struct mk_bus *bus)
{
    struct amqp *a = bus->impl;
    stop_threads(a);
    /* The threads are gone: the queues are ours alone now. */
    struct bus_msg *done = a->done_head, *lost = a->unsent_head;
    struct incoming *in = a->in_head;
    struct cmd *cmds = a->cmd_head;
    a->done_head = a->done_tail = a->unsent_head = a->unsent_tail = NULL;
    a->in_head = a->in_tail = NULL;
    a->cmd_head = a->cmd_tail = NULL;
    while (done) {
        struct bus_msg *m = done;
        done = m->next;
        m->cb(0, m->id, m->cb_arg);
        mk_bus__msg_free(m);
    }
    size_t nlost = 0;
    while (lost) {
        struct bus_msg *m = lost;
        lost = m->next;
        nlost++;
        if (m->cb) m->cb(MK_ECANCELLED, m->id, m->cb_arg);
        mk_bus__msg_free(m);
    }
    if (nlost) {
        char n[24];
        snprintf(n, sizeof n, "%zu", nlost);
        mk_log(MK_LOG_ERROR, "bus_events_lost", "count", n, "why", "not confirmed by the broker before shutdown",
               NULL);
    }
    while (in) {
        struct incoming *d = in;
        in = d->next;
        free(d->body);
        free(d);
    }
    while (cmds) {
        struct cmd *c = cmds;
        cmds = c->next;
        if (c->kind == CMD_SUB) tsub_free(c->sub);
        free(c);
    }
    atomic_store(&bus->st_pending, 0);
    uv_close((uv_handle_t *)&a->async, on_closed);
}

static int publish_amqp(struct mk_bus *bus, struct bus_msg *m)
{
    struct amqp *a = bus->impl;
    pthread_mutex_lock(&a->mu);
    if (a->stop) {
        pthread_mutex_unlock(&a->mu);
        return MK_ECANCELLED;
    }
    if (a->pending >= a->max_pending || a->pending_bytes + m->body_len > MK_BUS_MAX_PENDING_BYTES) {
        pthread_mutex_unlock(&a->mu);
        return MK_EBUSY;
    }
    list_append(&a->unsent_head, &a->unsent_tail, m);
    a->pending++;
    a->pending_bytes += m->body_len;
    atomic_store(&bus->st_pending, a->pending);
    pthread_mutex_unlock(&a->mu);
    wake(a->pub_efd);
    return 0;
}

static int subscribe_amqp(struct mk_bus *bus, struct mk_bus_sub *sub)
{
    struct amqp *a = bus->impl;
    struct tsub *t = calloc(1, sizeof *t);
    struct cmd *c = calloc(1, sizeof *c);
    if (!t || !c) goto oom;
    t->id = sub->id;
    t->prefetch = sub->prefetch > 65535 ? 65535 : (uint16_t)sub->prefetch;
    snprintf(t->tag, sizeof t->tag, "mk-%" PRIu64, sub->id);
    if (sub->group) {
        size_t n = strlen(bus->opt.queue_prefix) + 1 + strlen(sub->group) + 1;
        if (!(t->queue = malloc(n))) goto oom;
        snprintf(t->queue, n, "%s.%s", bus->opt.queue_prefix, sub->group);
    }
    if (!(t->patterns = calloc(sub->npatterns, sizeof *t->patterns))) goto oom;
    for (size_t i = 0; i < sub->npatterns; i++) {
        if (!(t->patterns[i] = strdup(sub->patterns[i]))) goto oom;
        t->npatterns++;
    }
    c->kind = CMD_SUB;
    c->sub = t;
    push_cmd(a, c);
    return 0;
oom:
    tsub_free(t);
    free(c);
    return MK_ENOMEM;
}

static void unsubscribe_amqp(struct mk_bus *bus, struct mk_bus_sub *sub)
{
    struct amqp *a = bus->impl;
    struct cmd *c = calloc(1, sizeof *c);
    if (!c) return; /* the consumer keeps running; its deliveries are nacked (no sub) */
    c->kind = CMD_CANCEL;
    c->sub_id = sub->id;
    push_cmd(a, c);
}

static void settle_amqp(struct mk_bus *bus, struct mk_bus_delivery *d, bool ok)
{
    send_settle(bus->impl, ok ? CMD_ACK : CMD_NACK, d->tag, d->gen);
}

static bool connected_amqp(const struct mk_bus *bus)
{
    const struct amqp *a = bus->impl;
    return a && atomic_load(&a->pub_up) && atomic_load(&a->con_up);
}

const struct bus_backend mk_bus_amqp_backend = {
    .name = "amqp",
    .accepts = accepts,
    .open = open_amqp,
    .close = close_amqp,
    .publish = publish_amqp,
    .subscribe = subscribe_amqp,
    .unsubscribe = unsubscribe_amqp,
    .settle = settle_amqp,
    .connected = connected_amqp,
};
