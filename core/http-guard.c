#include "config.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "http-guard-private.h"
#include "siphash-private.h"
#include "util-private.h"

enum slot_state { SLOT_FREE, SLOT_HANDED, SLOT_SERVING };
/* which deadline a connection is under, if any */
enum phase { PHASE_NONE, PHASE_IDLE, PHASE_REQUEST, PHASE_WORK };

#define NO_SLOT (-1)

typedef struct slot {
    unsigned char addr[16]; /* the peer, IPv4 as ::ffff:a.b.c.d */
    unsigned char state, phase;
    int64_t deadline_ms;
    int prev, next; /* in its phase's list, when IDLE or REQUEST */
} slot;

/* A list of connections under one kind of deadline. Every entry of a list
 * got the same allowance when it was appended, so the list is in deadline
 * order and a sweep stops at the first entry not yet due. */
typedef struct deadline_list {
    int head, tail;
} deadline_list;

/* One peer address and the connections it holds; count 0 is an empty
 * entry. Open addressing with linear probing: the table holds at most as
 * many addresses as connections are open, so it stays small. */
typedef struct address_count {
    unsigned char addr[16];
    uint32_t count;
} address_count;

struct mandate_http_guard {
    pthread_mutex_t lock;
    mandate_http_guard_limits limits;
    uint64_t hash_key[2]; /* so that no peer can pick addresses that collide */
    slot *slots;          /* indexed by socket */
    size_t slot_cap;
    deadline_list idle, request;
    address_count *addresses;
    size_t address_cap; /* a power of two */
    size_t address_used;
    unsigned open;
};

static void address_key(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

/* --- the peer addresses */

static size_t address_home(const mandate_http_guard *g, const unsigned char addr[16])
{
    uint64_t h[2];
    mandate_siphash128(g->hash_key, addr, 16, h);
    return (size_t)h[0] & (g->address_cap - 1);
}

/* The entry of addr, or where it would go. */
static size_t address_find(const mandate_http_guard *g, const unsigned char addr[16])
{
    size_t i = address_home(g, addr);
    while (g->addresses[i].count != 0 && memcmp(g->addresses[i].addr, addr, 16) != 0)
        i = (i + 1) & (g->address_cap - 1);
    return i;
}

static void address_grow(mandate_http_guard *g)
{
    address_count *old = g->addresses;
    size_t old_cap = g->address_cap;
    g->address_cap *= 2;
    g->addresses = mandate_xcalloc(g->address_cap, sizeof(address_count));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].count != 0)
            g->addresses[address_find(g, old[i].addr)] = old[i];
    free(old);
}

static void address_add(mandate_http_guard *g, const unsigned char addr[16])
{
    if ((g->address_used + 1) * 2 > g->address_cap)
        address_grow(g);
    size_t i = address_find(g, addr);
    if (g->addresses[i].count++ == 0) {
        memcpy(g->addresses[i].addr, addr, 16);
        g->address_used++;
    }
}

static void address_remove(mandate_http_guard *g, const unsigned char addr[16])
{
    size_t mask = g->address_cap - 1, i = address_find(g, addr);
    if (g->addresses[i].count == 0 || --g->addresses[i].count != 0)
        return;
    g->address_used--;
    /* backward-shift deletion: move later entries of the probe run into
     * the hole when their home is not between the hole and them */
    for (size_t j = (i + 1) & mask; g->addresses[j].count != 0; j = (j + 1) & mask) {
        size_t home = address_home(g, g->addresses[j].addr);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            g->addresses[i] = g->addresses[j];
            g->addresses[j].count = 0;
            i = j;
        }
    }
}

/* --- the deadline lists */

static void list_append(mandate_http_guard *g, deadline_list *l, int fd)
{
    g->slots[fd].prev = l->tail;
    g->slots[fd].next = NO_SLOT;
    if (l->tail != NO_SLOT)
        g->slots[l->tail].next = fd;
    else
        l->head = fd;
    l->tail = fd;
}

static deadline_list *list_of(mandate_http_guard *g, const slot *s)
{
    return s->phase == PHASE_IDLE ? &g->idle : s->phase == PHASE_REQUEST ? &g->request : NULL;
}

static void list_unlink(mandate_http_guard *g, int fd)
{
    slot *s = &g->slots[fd];
    deadline_list *l = list_of(g, s);
    if (l != NULL) {
        if (s->prev != NO_SLOT)
            g->slots[s->prev].next = s->next;
        else
            l->head = s->next;
        if (s->next != NO_SLOT)
            g->slots[s->next].prev = s->prev;
        else
            l->tail = s->prev;
    }
    s->phase = PHASE_NONE;
}

static void enter_phase(mandate_http_guard *g, int fd, enum phase phase, int64_t deadline_ms)
{
    list_unlink(g, fd);
    slot *s = &g->slots[fd];
    s->phase = (unsigned char)phase;
    s->deadline_ms = deadline_ms;
    deadline_list *l = list_of(g, s);
    if (l != NULL)
        list_append(g, l, fd);
}

/* --- the connections */

static slot *known(mandate_http_guard *g, int fd)
{
    return fd >= 0 && (size_t)fd < g->slot_cap && g->slots[fd].state != SLOT_FREE
               ? &g->slots[fd]
               : NULL;
}

static void forget(mandate_http_guard *g, int fd)
{
    slot *s = known(g, fd);
    if (s == NULL)
        return;
    list_unlink(g, fd);
    address_remove(g, s->addr);
    s->state = SLOT_FREE;
    g->open--;
}

mandate_http_guard *mandate_http_guard_new(const mandate_http_guard_limits *limits)
{
    mandate_http_guard *g = mandate_xcalloc(1, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    g->limits = *limits;
    if (g->limits.connections == 0)
        g->limits.connections = 1;
    if (RAND_bytes((unsigned char *)g->hash_key, sizeof(g->hash_key)) != 1)
        mandate_die("no randomness for the connection guard's hash key");
    g->idle = g->request = (deadline_list){NO_SLOT, NO_SLOT};
    g->address_cap = 64;
    g->addresses = mandate_xcalloc(g->address_cap, sizeof(address_count));
    return g;
}

void mandate_http_guard_free(mandate_http_guard **guard)
{
    mandate_http_guard *g = *guard;
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g->slots);
    free(g->addresses);
    free(g);
    *guard = NULL;
}

bool mandate_http_guard_full(mandate_http_guard *g)
{
    pthread_mutex_lock(&g->lock);
    bool full = g->open >= g->limits.connections;
    pthread_mutex_unlock(&g->lock);
    return full;
}

bool mandate_http_guard_admit(mandate_http_guard *g, int fd, const struct sockaddr *peer,
                              int64_t now_ms)
{
    if (fd < 0)
        return false;
    unsigned char addr[16];
    address_key(peer, addr);
    pthread_mutex_lock(&g->lock);
    if ((size_t)fd >= g->slot_cap) {
        size_t cap = g->slot_cap ? g->slot_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        g->slots = mandate_xrealloc(g->slots, cap * sizeof(slot));
        memset(g->slots + g->slot_cap, 0, (cap - g->slot_cap) * sizeof(slot));
        g->slot_cap = cap;
    }
    /* The socket's number is free again, so whatever the table held for it
     * is closed: a connection libmicrohttpd dropped before it started
     * serving it (out of memory), of which it says nothing. */
    forget(g, fd);
    const address_count *a = &g->addresses[address_find(g, addr)];
    if (g->limits.per_address != 0 && a->count >= g->limits.per_address) {
        pthread_mutex_unlock(&g->lock);
        return false;
    }
    address_add(g, addr);
    g->open++;
    slot *s = &g->slots[fd];
    memcpy(s->addr, addr, 16);
    s->state = SLOT_HANDED;
    s->phase = PHASE_NONE;
    enter_phase(g, fd, PHASE_IDLE, now_ms + g->limits.idle_ms);
    pthread_mutex_unlock(&g->lock);
    return true;
}

void mandate_http_guard_release(mandate_http_guard *g, int fd)
{
    pthread_mutex_lock(&g->lock);
    forget(g, fd);
    pthread_mutex_unlock(&g->lock);
}

void mandate_http_guard_started(mandate_http_guard *g, int fd)
{
    pthread_mutex_lock(&g->lock);
    slot *s = known(g, fd);
    if (s != NULL)
        s->state = SLOT_SERVING;
    pthread_mutex_unlock(&g->lock);
}

void mandate_http_guard_closed(mandate_http_guard *g, int fd)
{
    mandate_http_guard_release(g, fd);
}

void mandate_http_guard_request_begins(mandate_http_guard *g, int fd, int64_t now_ms)
{
    pthread_mutex_lock(&g->lock);
    if (known(g, fd) != NULL)
        enter_phase(g, fd, PHASE_REQUEST, now_ms + g->limits.request_ms);
    pthread_mutex_unlock(&g->lock);
}

void mandate_http_guard_request_read(mandate_http_guard *g, int fd)
{
    pthread_mutex_lock(&g->lock);
    if (known(g, fd) != NULL)
        enter_phase(g, fd, PHASE_WORK, 0);
    pthread_mutex_unlock(&g->lock);
}

void mandate_http_guard_request_done(mandate_http_guard *g, int fd, int64_t now_ms)
{
    pthread_mutex_lock(&g->lock);
    if (known(g, fd) != NULL)
        enter_phase(g, fd, PHASE_IDLE, now_ms + g->limits.idle_ms);
    pthread_mutex_unlock(&g->lock);
}

static unsigned sweep_list(mandate_http_guard *g, deadline_list *l, int64_t now_ms,
                           mandate_http_guard_reason reason,
                           void (*shut)(int, mandate_http_guard_reason, void *), void *ctx)
{
    unsigned n = 0;
    while (l->head != NO_SLOT && g->slots[l->head].deadline_ms <= now_ms) {
        int fd = l->head;
        list_unlink(g, fd);
        /* Only a connection libmicrohttpd serves: one handed over but not
         * started may be gone already, its number given to another
         * descriptor. Out of the lists either way, so it is done once. */
        if (g->slots[fd].state != SLOT_SERVING)
            continue;
        shut(fd, reason, ctx);
        n++;
    }
    return n;
}

unsigned mandate_http_guard_sweep(mandate_http_guard *g, int64_t now_ms,
                                  void (*shut)(int, mandate_http_guard_reason, void *),
                                  void *ctx)
{
    pthread_mutex_lock(&g->lock);
    unsigned n = sweep_list(g, &g->request, now_ms, MANDATE_GUARD_REQUEST_DEADLINE, shut, ctx) +
                 sweep_list(g, &g->idle, now_ms, MANDATE_GUARD_IDLE_DEADLINE, shut, ctx);
    pthread_mutex_unlock(&g->lock);
    return n;
}

unsigned mandate_http_guard_open(mandate_http_guard *g)
{
    pthread_mutex_lock(&g->lock);
    unsigned n = g->open;
    pthread_mutex_unlock(&g->lock);
    return n;
}

unsigned mandate_http_guard_from(mandate_http_guard *g, const struct sockaddr *peer)
{
    unsigned char addr[16];
    address_key(peer, addr);
    pthread_mutex_lock(&g->lock);
    unsigned n = g->addresses[address_find(g, addr)].count;
    pthread_mutex_unlock(&g->lock);
    return n;
}
