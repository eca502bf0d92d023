/*
 * outq.c - see outq.h. A plain array in arrival order; removing from the
 * middle is a memmove of pointers, cheap at the few hundred messages a node
 * holds.
 */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct outq {
    size_t max, n;
    struct outq_msg **msgs;
    uint64_t dropped[OUTQ_CLASSES];
};

struct outq *outq_new(size_t max)
{
    struct outq *q = calloc(1, sizeof *q);
    if (!q || max == 0 || !(q->msgs = calloc(max, sizeof *q->msgs))) {
        free(q);
        errno = max == 0 ? EINVAL : ENOMEM;
        return NULL;
    }
    q->max = max;
    return q;
}

void outq_free(struct outq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        free(q->msgs[i]);
    free(q->msgs);
    free(q);
}

static void remove_at(struct outq *q, size_t i)
{
    free(q->msgs[i]);
    memmove(q->msgs + i, q->msgs + i + 1, (q->n - i - 1) * sizeof *q->msgs);
    q->n--;
}

/* Index of the oldest message of class cls, or q->n. */
static size_t oldest_of(const struct outq *q, enum outq_class cls)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->msgs[i]->cls == cls)
            return i;
    return q->n;
}

int outq_push(struct outq *q, enum fw_channel ch, int qos, bool retain, enum outq_class cls,
              const char *payload, size_t len)
{
    int rc = 0;
    if (q->n == q->max) {
        /* Lowest class first; alarm-class messages are never displaced. */
        size_t victim = q->n;
        for (int c = OUTQ_READING; c <= (int)cls && c < OUTQ_ALARM && victim == q->n; c++)
            victim = oldest_of(q, (enum outq_class)c);
        if (victim == q->n) {
            q->dropped[cls]++;
            return -ENOBUFS;
        }
        q->dropped[q->msgs[victim]->cls]++;
        remove_at(q, victim);
        rc = 1;
    }
    struct outq_msg *m = malloc(sizeof *m + len + 1);
    if (!m)
        return -ENOMEM;
    m->channel = ch;
    m->qos = qos;
    m->retain = retain;
    m->cls = cls;
    m->len = len;
    memcpy(m->payload, payload, len);
    m->payload[len] = '\0';
    q->msgs[q->n++] = m;
    return rc;
}

const struct outq_msg *outq_peek(const struct outq *q)
{
    return q->n ? q->msgs[0] : NULL;
}

void outq_pop(struct outq *q)
{
    if (q->n)
        remove_at(q, 0);
}

size_t outq_len(const struct outq *q)
{
    return q->n;
}

uint64_t outq_dropped(const struct outq *q, enum outq_class cls)
{
    return (unsigned)cls < OUTQ_CLASSES ? q->dropped[cls] : 0;
}

enum outq_class outq_event_class(enum fw_event_type type)
{
    switch (type) {
    case FW_EV_ALARM:
    case FW_EV_ALARM_CLEAR:
    case FW_EV_SILENCE:
    case FW_EV_TEST: return OUTQ_ALARM;
    default: return OUTQ_EVENT;
    }
}
