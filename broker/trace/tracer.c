/* tracer.c - the span hooks behind tracer.h: trace contexts, span ids, and one OTLP span per
 * stage handed to the exporter (span_export.c). */
#include "tracer.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cloudevent.h"
#include "config.h"
#include "loop.h"
#include "span_json.h"
#include "traceparent.h"

struct td_tracer {
    struct td_span_export *exp;
    double sample_ratio;
};

/* Random ids: OpenSSL's DRBG (seeded from the kernel), getrandom(2) if it fails. An id must
 * not be all zeros (W3C), so a zero one is drawn again. */
static void random_id(uint8_t *id, size_t n)
{
    do {
        if (RAND_bytes(id, (int)n) != 1) {
            ssize_t got = getrandom(id, n, 0);
            if (got != (ssize_t)n) {
                /* Never happens on Linux >= 3.17 for n <= 256; a clock-derived id is still
                 * better than no trace. */
                uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)id;
                memcpy(id, &t, n < sizeof(t) ? n : sizeof(t));
            }
        }
    } while (td_trace_id_zero(id, n));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct td_tracer *td_tracer_new(const struct td_conf_daemon *dc, struct td_loop *loop,
                                struct td_http_client *http, bool *err)
{
    *err = false;
    if (!dc->tracing_endpoint) {
        return NULL;
    }
    struct td_tracer *tr = calloc(1, sizeof(*tr));
    if (!tr) {
        *err = true;
        return NULL;
    }
    const struct td_span_export_conf ec = {
        .endpoint = dc->tracing_endpoint,
        .headers = &dc->tracing_headers,
        .timeout_ms = dc->tracing_timeout_ms,
        .interval_ms = dc->tracing_interval_ms,
        .queue_size = (size_t)dc->tracing_queue_size,
        .service = dc->tracing_service_name,
    };
    tr->sample_ratio = dc->tracing_sample_ratio;
    tr->exp = td_span_export_new(loop, http, &ec);
    if (!tr->exp) {
        free(tr);
        *err = true;
        return NULL;
    }
    return tr;
}

void td_tracer_free(struct td_tracer *tr)
{
    if (!tr) {
        return;
    }
    td_span_export_free(tr->exp);
    free(tr);
}

bool td_tracer_flush(struct td_tracer *tr)
{
    return !tr || td_span_export_flush(tr->exp);
}

void td_tracer_counts(const struct td_tracer *tr, struct td_span_counts *out)
{
    memset(out, 0, sizeof(*out));
    if (tr) {
        td_span_export_counts(tr->exp, out);
    }
}

void td_tracer_render(FILE *f, const struct td_span_counts *c)
{
    fprintf(f,
            "# HELP triggerd_trace_spans_exported_total Spans the OTLP collector accepted.\n"
            "# TYPE triggerd_trace_spans_exported_total counter\n"
            "triggerd_trace_spans_exported_total %llu\n",
            (unsigned long long)c->exported);
    fprintf(f,
            "# HELP triggerd_trace_spans_dropped_total Spans not exported, by reason "
            "(queue_full: the export queue was full; export_failed: the collector refused or "
            "did not answer).\n"
            "# TYPE triggerd_trace_spans_dropped_total counter\n"
            "triggerd_trace_spans_dropped_total{reason=\"queue_full\"} %llu\n"
            "triggerd_trace_spans_dropped_total{reason=\"export_failed\"} %llu\n",
            (unsigned long long)c->dropped_full, (unsigned long long)c->dropped_failed);
}

/* ---- the message span ---- */

/* Trace-id ratio sampling, as OpenTelemetry's TraceIdRatioBased: the low 56 bits of the
 * (random) trace id against the ratio, so every holder of the id decides the same way. */
static bool sample(const struct td_tracer *tr, const uint8_t trace_id[16])
{
    if (tr->sample_ratio >= 1.0) {
        return true;
    }
    if (tr->sample_ratio <= 0.0) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 9; i < 16; i++) {
        v = v << 8 | trace_id[i];
    }
    return (double)v < tr->sample_ratio * (double)(1ULL << 56);
}

void td_trace_msg_begin(struct td_tracer *tr, struct td_msg *msg)
{
    if (!tr) {
        return;
    }
    struct td_trace_msg *t = calloc(1, sizeof(*t));
    if (!t) {
        return; /* out of memory: this event goes untraced, not undelivered */
    }
    t->tr = tr;
    /* received_ms is the loop's monotonic clock: the span starts that long before now, in
     * UNIX time. */
    int64_t age_ms = msg->received_ms > 0 ? td_now_ms() - msg->received_ms : 0;
    t->start_ns = now_ns() - (age_ms > 0 ? age_ms : 0) * 1000000;
    /* The parent: the transport's context (the ingress's headers), else the event's. */
    const char *tp = msg->tp_header, *ts = msg->ts_header;
    const char *etp = td_event_get(msg->ev, "traceparent");
    struct td_trace_ctx parent, own;
    bool has_own = etp && td_traceparent_parse(etp, &own) == 0;
    if (tp && td_traceparent_parse(tp, &parent) == 0) {
        /* The event's own context (where it was made) is linked, as OpenTelemetry's
         * CloudEvents conventions link the creation context. */
        if (has_own && (memcmp(own.trace_id, parent.trace_id, 16) != 0 ||
                        memcmp(own.span_id, parent.span_id, 8) != 0)) {
            memcpy(t->link_trace_id, own.trace_id, 16);
            memcpy(t->link_span_id, own.span_id, 8);
            t->has_link = true;
        }
    } else if (has_own) {
        tp = etp;
        parent = own;
        ts = td_event_get(msg->ev, "tracestate");
    } else {
        tp = NULL;
    }
    if (tp) {
        memcpy(t->trace_id, parent.trace_id, 16);
        memcpy(t->parent_id, parent.span_id, 8);
        t->has_parent = true;
        t->sampled = parent.flags & TD_TRACE_SAMPLED;
        if (ts && ts[0] && td_tracestate_ok(ts)) {
            t->tracestate = strdup(ts); /* NULL (no memory): forwarded without it */
        }
    } else {
        random_id(t->trace_id, 16);
        t->sampled = sample(tr, t->trace_id);
    }
    random_id(t->span_id, 8);
    msg->trace = t;
    /* The event carries its trace on (to the function, replies, dead letters, redrive). */
    if (!td_event_get(msg->ev, "traceparent")) {
        char buf[TD_TRACEPARENT_SIZE];
        td_traceparent_format(t->trace_id, t->span_id, t->sampled ? TD_TRACE_SAMPLED : 0, buf);
        td_event_set(msg->ev, "traceparent", buf); /* -1 (no memory): the header still has it */
        if (t->tracestate) {
            td_event_set(msg->ev, "tracestate", t->tracestate);
        }
    }
}

static void emit(struct td_trace_msg *t, const struct td_span_rec *r)
{
    size_t len = 0;
    char *json = td_span_json(r, &len);
    if (json) {
        td_span_export_push(t->tr->exp, json, len);
    }
}

/* Kafka coordinates are "topic/partition/offset": the last two as numbers, or -1. */
static void kafka_coords(const char *coord, int64_t *partition, int64_t *offset)
{
    *partition = *offset = -1;
    const char *last = coord ? strrchr(coord, '/') : NULL;
    if (!last || last == coord) {
        return;
    }
    const char *prev = last - 1;
    while (prev > coord && *prev != '/') {
        prev--;
    }
    if (*prev != '/') {
        return;
    }
    char *end;
    long long p = strtoll(prev + 1, &end, 10);
    if (end != last) {
        return;
    }
    long long o = strtoll(last + 1, &end, 10);
    if (*end) {
        return;
    }
    *partition = p;
    *offset = o;
}

void td_trace_msg_end_(struct td_msg *msg, enum td_outcome outcome)
{
    struct td_trace_msg *t = msg->trace;
    if (t->sampled) {
        static const char *const outcomes[] = {"ack", "release", "reject"};
        const struct td_source *src = msg->src;
        const char *kind = src->ops ? src->ops->name : "unknown";
        struct td_span_attr at[12];
        size_t n = 0;
        at[n++] = (struct td_span_attr){.key = "triggerd.source.name", .str = src->name};
        at[n++] = (struct td_span_attr){.key = "triggerd.source.kind", .str = kind};
        at[n++] = (struct td_span_attr){.key = "messaging.system", .str = kind};
        at[n++] = (struct td_span_attr){.key = "triggerd.outcome", .str = outcomes[outcome]};
        at[n++] = (struct td_span_attr){.key = "triggerd.dead_letters", .num = t->dead_letters};
        if (msg->coord) {
            at[n++] =
                (struct td_span_attr){.key = "triggerd.source.coordinates", .str = msg->coord};
        }
        int64_t partition = -1, offset = -1;
        if (strcmp(kind, "kafka") == 0) {
            kafka_coords(msg->coord, &partition, &offset);
        }
        if (partition >= 0) {
            at[n++] = (struct td_span_attr){.key = "messaging.destination.partition.id",
                                            .num = partition};
            at[n++] = (struct td_span_attr){.key = "messaging.kafka.offset", .num = offset};
        }
        const char *id = td_event_get(msg->ev, "id"), *type = td_event_get(msg->ev, "type");
        const char *esrc = td_event_get(msg->ev, "source");
        if (id) {
            at[n++] = (struct td_span_attr){.key = "cloudevents.event_id", .str = id};
        }
        if (type) {
            at[n++] = (struct td_span_attr){.key = "cloudevents.event_type", .str = type};
        }
        if (esrc) {
            at[n++] = (struct td_span_attr){.key = "cloudevents.event_source", .str = esrc};
        }
        char name[256];
        snprintf(name, sizeof(name), "process %s", src->name);
        bool failed = outcome != TD_OUTCOME_ACK || t->dead_letters > 0;
        const struct td_span_rec r = {
            .trace_id = t->trace_id,
            .span_id = t->span_id,
            .parent_id = t->has_parent ? t->parent_id : NULL,
            .trace_state = t->tracestate,
            .name = name,
            .kind = TD_SPAN_CONSUMER,
            .start_ns = t->start_ns,
            .end_ns = now_ns(),
            .status = failed ? TD_STATUS_ERROR : TD_STATUS_UNSET,
            .status_msg = outcome == TD_OUTCOME_RELEASE  ? "left unacknowledged for redelivery"
                          : outcome == TD_OUTCOME_REJECT ? "rejected (native dead letter)"
                          : failed                       ? "dead-lettered"
                                                         : NULL,
            .attrs = at,
            .nattrs = n,
            .link_trace_id = t->has_link ? t->link_trace_id : NULL,
            .link_span_id = t->has_link ? t->link_span_id : NULL,
        };
        emit(t, &r);
    }
    /* The source thread gets the message next: nothing of the trace is needed there. */
    msg->trace = NULL;
    td_trace_msg_free(t);
}

/* ---- delivery stages ---- */

static void open_stage(struct td_trace_stage *st)
{
    random_id(st->span_id, 8);
    st->start_ns = now_ns();
    st->open = true;
}

static void stage_header(const struct td_trace_msg *t, const struct td_trace_stage *st,
                         struct td_attempt *a)
{
    td_traceparent_format(t->trace_id, st->span_id, t->sampled ? TD_TRACE_SAMPLED : 0,
                          a->traceparent);
    a->tracestate = t->tracestate;
}

void td_trace_attempt_begin_(struct td_msg *msg, struct td_trace_stage *st, struct td_attempt *a)
{
    open_stage(st);
    stage_header(msg->trace, st, a);
}

/* The sink's destination without credentials, query or fragment. */
static void destination(const struct td_sink *k, char *out, size_t len)
{
    td_log_redact_url(k->dest, out, len);
}

void td_trace_attempt_end_(struct td_msg *msg, struct td_trace_stage *st, const char *trigger,
                           const struct td_sink *sink, const struct td_attempt *a, int attempt)
{
    struct td_trace_msg *t = msg->trace;
    if (!st->open) {
        return;
    }
    st->open = false;
    int64_t backoff = st->backoff_ms;
    st->backoff_ms = 0;
    if (!t->sampled) {
        return;
    }
    static const char *const results[] = {"ok", "retry", "final"};
    char dest[256], name[256], status[16];
    destination(sink, dest, sizeof(dest));
    struct td_span_attr at[12];
    size_t n = 0;
    at[n++] = (struct td_span_attr){.key = "triggerd.trigger", .str = trigger};
    at[n++] = (struct td_span_attr){.key = "triggerd.sink.name", .str = sink->name};
    at[n++] = (struct td_span_attr){.key = "triggerd.sink.kind",
                                    .str = sink->desc ? sink->desc->name : "unknown"};
    at[n++] = (struct td_span_attr){.key = "triggerd.sink.destination", .str = dest};
    if (sink->desc && sink->desc->uses_http) {
        at[n++] = (struct td_span_attr){.key = "url.full", .str = dest};
    }
    at[n++] = (struct td_span_attr){.key = "triggerd.attempt", .num = attempt};
    at[n++] = (struct td_span_attr){.key = "http.request.resend_count", .num = attempt - 1};
    at[n++] = (struct td_span_attr){.key = "triggerd.backoff_ms", .num = backoff};
    at[n++] = (struct td_span_attr){.key = "triggerd.result", .str = results[a->result]};
    if (a->http_status > 0) {
        at[n++] = (struct td_span_attr){.key = "http.response.status_code", .num = a->http_status};
    }
    if (a->result != TD_RESULT_OK) {
        if (a->http_status > 0) {
            snprintf(status, sizeof(status), "%d", a->http_status);
        }
        at[n++] = (struct td_span_attr){.key = "error.type",
                                        .str = a->http_status > 0 ? status : "transport"};
    }
    snprintf(name, sizeof(name), "deliver %s", trigger);
    const struct td_span_rec r = {
        .trace_id = t->trace_id,
        .span_id = st->span_id,
        .parent_id = t->span_id,
        .trace_state = t->tracestate,
        .name = name,
        .kind = TD_SPAN_CLIENT,
        .start_ns = st->start_ns,
        .end_ns = now_ns(),
        .status = a->result == TD_RESULT_OK ? TD_STATUS_UNSET : TD_STATUS_ERROR,
        .status_msg = a->result == TD_RESULT_OK ? NULL : a->reason,
        .attrs = at,
        .nattrs = n,
    };
    emit(t, &r);
}

void td_trace_stage_begin_(struct td_msg *msg, struct td_trace_stage *st, struct td_event *stamp)
{
    struct td_trace_msg *t = msg->trace;
    open_stage(st);
    if (stamp && !td_event_get(stamp, "traceparent")) {
        char buf[TD_TRACEPARENT_SIZE];
        td_traceparent_format(t->trace_id, st->span_id, t->sampled ? TD_TRACE_SAMPLED : 0, buf);
        td_event_set(stamp, "traceparent", buf); /* -1 (no memory): it goes without */
    }
}

void td_trace_stage_attempt_(struct td_msg *msg, struct td_trace_stage *st, struct td_attempt *a)
{
    if (st->open) {
        stage_header(msg->trace, st, a);
    }
}

void td_trace_stage_end_(struct td_msg *msg, struct td_trace_stage *st,
                         enum td_trace_stage_kind kind, const char *trigger,
                         const struct td_sink *target, const struct td_attempt *a, int attempts,
                         const char *reason, bool ok)
{
    struct td_trace_msg *t = msg->trace;
    if (!st->open) {
        return;
    }
    st->open = false;
    st->backoff_ms = 0;
    if (kind == TD_TRACE_DEAD_LETTER && ok) {
        t->dead_letters++;
    }
    if (!t->sampled) {
        return;
    }
    bool dl = kind == TD_TRACE_DEAD_LETTER;
    char dest[256], name[256];
    destination(target, dest, sizeof(dest));
    struct td_span_attr at[10];
    size_t n = 0;
    at[n++] = (struct td_span_attr){.key = "triggerd.trigger", .str = trigger};
    at[n++] = (struct td_span_attr){
        .key = dl ? "triggerd.dead_letter.target" : "triggerd.reply.target", .str = target->name};
    at[n++] = (struct td_span_attr){.key = "triggerd.sink.destination", .str = dest};
    at[n++] = (struct td_span_attr){.key = "triggerd.attempts", .num = attempts};
    if (dl && reason) {
        at[n++] = (struct td_span_attr){.key = "triggerd.dead_letter.reason", .str = reason};
    }
    if (!dl && a->ev) {
        const char *rid = td_event_get(a->ev, "id");
        if (rid) {
            at[n++] = (struct td_span_attr){.key = "cloudevents.event_id", .str = rid};
        }
    }
    if (a->http_status > 0) {
        at[n++] = (struct td_span_attr){.key = "http.response.status_code", .num = a->http_status};
    }
    snprintf(name, sizeof(name), "%s %s", dl ? "dead_letter" : "reply", trigger);
    const struct td_span_rec r = {
        .trace_id = t->trace_id,
        .span_id = st->span_id,
        .parent_id = t->span_id,
        .trace_state = t->tracestate,
        .name = name,
        .kind = TD_SPAN_PRODUCER,
        .start_ns = st->start_ns,
        .end_ns = now_ns(),
        .status = ok ? TD_STATUS_UNSET : TD_STATUS_ERROR,
        .status_msg = ok ? NULL : a->reason,
        .attrs = at,
        .nattrs = n,
    };
    emit(t, &r);
}
