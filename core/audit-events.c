#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <syslog.h>

#include "audit-events-private.h"
#include "audit-private.h"
#include "log-private.h"
#include "text-encoding.h"

static pthread_mutex_t trail_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(mandate_audit *) trail;
static mandate_audit_config trail_config;
static char *trail_dir;
static char *trail_checkpoint_file;
static bool trail_sealed;

static mandate_audit_fsync fsync_mode(const char *name)
{
    if (name != NULL && strcmp(name, "always") == 0)
        return MANDATE_AUDIT_FSYNC_ALWAYS;
    if (name != NULL && strcmp(name, "off") == 0)
        return MANDATE_AUDIT_FSYNC_OFF;
    return MANDATE_AUDIT_FSYNC_BATCH;
}

int mandate_audit_syslog_facility(const char *name)
{
    static const struct {
        const char *name;
        int facility;
    } facilities[] = {
        {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
        {"user", LOG_USER},     {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1},
        {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4},
        {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7}};
    for (size_t i = 0; name != NULL && i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (strcmp(name, facilities[i].name) == 0)
            return facilities[i].facility;
    return 0; /* "off" */
}

/* The trail's settings (the seal key apart). */
static mandate_audit_config config_of(const mandate_config *cfg)
{
    return (mandate_audit_config){
        .dir = cfg->audit_dir,
        .fsync = fsync_mode(cfg->audit_fsync),
        .rotate_bytes = cfg->audit_rotate_bytes,
        .rotate_daily = cfg->audit_rotate_daily,
        .checkpoint_records = (uint64_t)cfg->audit_checkpoint_records,
        .checkpoint_seconds = cfg->audit_checkpoint_seconds,
        .checkpoint_syslog = mandate_audit_syslog_facility(cfg->audit_checkpoint_syslog),
        .checkpoint_file = cfg->audit_checkpoint_file};
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static mandate_rc start(const mandate_config *cfg, bool deferred, mandate_error *err)
{
    mandate_audit_config ac = config_of(cfg);
    mandate_audit_config open_as = ac;
    if (deferred) {
        /* a short-lived command: no sync per record, and no sealer thread:
         * it seals once, when it closes the trail */
        open_as.fsync = MANDATE_AUDIT_FSYNC_OFF;
        open_as.checkpoint_seconds = 0;
    }
    EVP_PKEY *seal_key = NULL;
    if (cfg->audit_seal) {
        mandate_error kerr = {0};
        mandate_rc rc = mandate_audit_seal_key_load(cfg->kek_file, &seal_key, &kerr);
        if (rc != MANDATE_OK)
            return mandate_error_set(err, rc, "cannot seal the trail (audit.seal): %s",
                                     kerr.message);
    }
    open_as.seal_key = seal_key;
    mandate_audit *a = NULL;
    mandate_rc rc = mandate_audit_open(&open_as, &a, err);
    EVP_PKEY_free(seal_key); /* the handle holds its own reference */
    if (rc != MANDATE_OK)
        return rc;
    pthread_mutex_lock(&trail_lock);
    mandate_audit *old = atomic_load(&trail);
    free(trail_dir);
    free(trail_checkpoint_file);
    trail_dir = strdup(cfg->audit_dir);
    trail_checkpoint_file =
        cfg->audit_checkpoint_file != NULL ? strdup(cfg->audit_checkpoint_file) : NULL;
    trail_config = ac;
    trail_config.dir = trail_dir;
    trail_config.checkpoint_file = trail_checkpoint_file;
    trail_sealed = cfg->audit_seal;
    atomic_store(&trail, a);
    pthread_mutex_unlock(&trail_lock);
    mandate_audit_close(&old);
    return MANDATE_OK;
}

mandate_rc mandate_audit_events_start(const mandate_config *cfg, mandate_error *err)
{
    return start(cfg, false, err);
}

mandate_rc mandate_audit_events_start_deferred(const mandate_config *cfg, mandate_error *err)
{
    return start(cfg, true, err);
}

void mandate_audit_events_stop(void)
{
    pthread_mutex_lock(&trail_lock);
    mandate_audit *old = atomic_exchange(&trail, NULL);
    pthread_mutex_unlock(&trail_lock);
    mandate_audit_close(&old);
}

bool mandate_audit_events_head(uint64_t *seq_r, char hash_hex_r[65])
{
    pthread_mutex_lock(&trail_lock);
    mandate_audit *a = atomic_load(&trail);
    if (a != NULL)
        mandate_audit_head(a, seq_r, hash_hex_r);
    pthread_mutex_unlock(&trail_lock);
    return a != NULL;
}

mandate_rc mandate_audit_events_seal(char **line_r, mandate_error *err)
{
    /* the trail outlives every caller (as in mandate_audit_event) */
    mandate_audit *a = atomic_load(&trail);
    if (a == NULL) {
        *line_r = NULL;
        return mandate_error_set(err, MANDATE_NOT_FOUND, "audit: no trail is open");
    }
    return mandate_audit_seal(a, line_r, err);
}

bool mandate_audit_events_started(void)
{
    pthread_mutex_lock(&trail_lock);
    bool started = atomic_load(&trail) != NULL;
    pthread_mutex_unlock(&trail_lock);
    return started;
}

bool mandate_audit_events_same(const mandate_config *cfg)
{
    mandate_audit_config ac = config_of(cfg);
    pthread_mutex_lock(&trail_lock);
    bool same =
        trail_dir != NULL && strcmp(trail_dir, cfg->audit_dir) == 0 &&
        ac.fsync == trail_config.fsync && ac.rotate_bytes == trail_config.rotate_bytes &&
        ac.rotate_daily == trail_config.rotate_daily && cfg->audit_seal == trail_sealed &&
        ac.checkpoint_records == trail_config.checkpoint_records &&
        ac.checkpoint_seconds == trail_config.checkpoint_seconds &&
        ac.checkpoint_syslog == trail_config.checkpoint_syslog &&
        same_text(ac.checkpoint_file, trail_config.checkpoint_file);
    pthread_mutex_unlock(&trail_lock);
    return same;
}

/* The deferral of the calling thread's request: active, and the highest
 * seq it appended. */
static _Thread_local bool deferring;
static _Thread_local uint64_t deferred_seq;

void mandate_audit_events_defer_begin(void)
{
    deferring = true;
    deferred_seq = 0;
}

uint64_t mandate_audit_events_defer_end(void)
{
    deferring = false;
    return deferred_seq;
}

mandate_audit_durability mandate_audit_events_when_durable(uint64_t seq,
                                                           mandate_audit_durable_cb cb,
                                                           void *ctx)
{
    mandate_audit *a = atomic_load(&trail);
    if (a == NULL)
        return MANDATE_AUDIT_DURABLE;
    return mandate_audit_when_durable(a, seq, cb, ctx);
}

mandate_rc mandate_audit_event(const char *event, json_t *fields)
{
    /* The trail outlives every request: it is closed only after the HTTP
     * server has drained, so no lock is held across the append (appends of
     * concurrent requests must share one fsync). */
    mandate_audit *a = atomic_load(&trail);
    if (a == NULL) {
        json_decref(fields);
        return MANDATE_OK;
    }
    mandate_error err = {0};
    mandate_rc rc;
    if (deferring) {
        uint64_t seq = 0;
        rc = mandate_audit_append_nowait(a, event, mandate_log_request_id(), fields, &seq, &err);
        if (rc == MANDATE_OK && seq > deferred_seq)
            deferred_seq = seq;
    } else {
        rc = mandate_audit_append(a, event, mandate_log_request_id(), fields, NULL, &err);
    }
    if (rc != MANDATE_OK)
        log_error("audit: %s record not written: %s", event, err.message);
    return rc;
}

static char actor[160];
static pthread_once_t actor_once = PTHREAD_ONCE_INIT;

static void find_actor(void)
{
    uid_t uid = geteuid();
    struct passwd pw, *found = NULL;
    char buf[1024];
    const char *name = getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != NULL
                           ? found->pw_name
                           : "?";
    const char *sudo_user = getenv("SUDO_USER");
    snprintf(actor, sizeof(actor), "uid=%u(%.64s)%s%.64s", (unsigned)uid, name,
             sudo_user != NULL && sudo_user[0] != '\0' ? " sudo_user=" : "",
             sudo_user != NULL ? sudo_user : "");
}

const char *mandate_audit_actor(void)
{
    pthread_once(&actor_once, find_actor);
    return actor;
}

json_t *mandate_audit_text(const char *text, size_t max)
{
    if (text == NULL)
        return json_null();
    char buf[1024];
    size_t len = strnlen(text, max < sizeof(buf) ? max : sizeof(buf));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    return json_stringn(buf, len);
}

void mandate_audit_token_ref(const char *token, size_t len, char out[9])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len < 4)
        memset(md, 0, 4);
    mandate_hex_encode(md, 4, out);
}
