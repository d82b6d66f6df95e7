/* The one door to plugin code (Dovecot's auth calls its drivers from
 * passdb.c and userdb.c only): typed calls for every store, backend and
 * format operation the core uses. Nothing else in the core reads a
 * plugin's ops table (tests/facade.sh checks it). Here, and only here:
 *  - the kind of an instance is checked before its ops are read as that
 *    kind's, and an instance that is not started is never called;
 *  - an optional operation (NULL) answers what its absence means: NEXT for
 *    an authenticator or a parser, false for a query, MANDATE_ERROR for
 *    what the core cannot do without it;
 *  - a field of a newer ABI minor is read only from a plugin that has it:
 *    store lists (1.2), backend status and format sign (1.3), the grant's
 *    prior_actors (1.4);
 *  - a store call that fails (TEMPFAIL or ERROR) is counted in
 *    mandate_store_errors_total;
 *  - the calls of a MANDATE_PLUGIN_BLOCKING instance are bounded (see
 *    mandate_plugins_gate_open).
 *
 * The store of a runtime is mandate_runtime_store(rt); a store function
 * handed NULL, or a store not started, answers MANDATE_ERROR "no store is
 * ready". Names follow the ABI's: mandate_store_client_get calls
 * mandate_store_ops.client_get. */
#ifndef MANDATE_PLUGINS_PRIVATE_H
#define MANDATE_PLUGINS_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <mandate/backend.h>
#include <mandate/format.h>
#include <mandate/store.h>

#include "config-private.h"
#include "plugin-loader-private.h"

struct mandate_core_host;
struct mandate_plugins_gate;

/* One configured plugin instance (a file of mandate.d), loaded and, once
 * its runtime starts it, instantiated. */
typedef struct mandate_instance {
    const mandate_instance_conf *conf;
    mandate_plugin_handle *handle;
    void *inst;
    struct mandate_core_host *host; /* the runtime's: what the plugin reaches */
    bool instantiated;
    struct mandate_plugins_gate *gate; /* MANDATE_PLUGIN_BLOCKING instances only */
} mandate_instance;

/* How long a call to a blocking instance waits for a free slot before it
 * answers MANDATE_TEMPFAIL. */
#define MANDATE_PLUGINS_BLOCKING_WAIT_MS 200

/* A MANDATE_PLUGIN_BLOCKING instance may wait on the network (an IdP, AWS,
 * PostgreSQL): at most workers - 1 of its calls (at least 1) run at once,
 * so that a slow upstream never holds every HTTP worker and the health
 * checks, the JWKS, the metadata and the work of other instances keep being
 * served. A call that finds no free slot within
 * MANDATE_PLUGINS_BLOCKING_WAIT_MS answers MANDATE_TEMPFAIL (the client
 * gets 503 with Retry-After) and a warning names the instance, at most once
 * a second. Nothing for another instance. Before the instance starts. */
void mandate_plugins_gate_open(mandate_instance *in, unsigned workers);
/* Once no call can be under way (the runtime's last reference is gone). */
void mandate_plugins_gate_close(mandate_instance *in);
/* How many calls to in may run at once: 0 when it is not bounded. */
unsigned mandate_plugins_gate_slots(const mandate_instance *in);

/* --- store --------------------------------------------------------------- */

mandate_rc mandate_store_ping(const mandate_instance *store, mandate_error *err);
mandate_rc mandate_store_migrate(const mandate_instance *store, mandate_error *err);
mandate_rc mandate_store_generation(const mandate_instance *store, uint64_t *generation_r,
                                    mandate_error *err);

mandate_rc mandate_store_client_get(const mandate_instance *store, mandate_pool *pool,
                                    const char *client_id, mandate_client *client_r,
                                    mandate_error *err);
mandate_rc mandate_store_client_create(const mandate_instance *store,
                                       const mandate_client *client, mandate_error *err);
mandate_rc mandate_store_client_update(const mandate_instance *store,
                                       const mandate_client *client, mandate_error *err);
mandate_rc mandate_store_client_delete(const mandate_instance *store, const char *client_id,
                                       mandate_error *err);
mandate_rc mandate_store_client_list(const mandate_instance *store,
                                     const mandate_client_filter *filter,
                                     mandate_client_cb each, void *ctx, mandate_error *err);
mandate_rc mandate_store_client_import(const mandate_instance *store,
                                       const mandate_client *clients, size_t n,
                                       mandate_error *err);

mandate_rc mandate_store_key_add(const mandate_instance *store, const mandate_key *key,
                                 mandate_error *err);
mandate_rc mandate_store_key_update(const mandate_instance *store, const mandate_key *key,
                                    mandate_error *err);
mandate_rc mandate_store_key_list(const mandate_instance *store, mandate_key_cb each, void *ctx,
                                  mandate_error *err);
mandate_rc mandate_store_key_delete(const mandate_instance *store, const char *kid,
                                    mandate_error *err);

mandate_rc mandate_store_token_put(const mandate_instance *store,
                                   const mandate_token_record *record, mandate_error *err);
mandate_rc mandate_store_token_get(const mandate_instance *store, mandate_pool *pool,
                                   const unsigned char *hash, size_t hash_len, int64_t now,
                                   mandate_token_record *record_r, mandate_error *err);

mandate_rc mandate_store_revoke(const mandate_instance *store, const char *jti,
                                const char *client_id, int64_t expires_at, mandate_error *err);
mandate_rc mandate_store_is_revoked(const mandate_instance *store, const char *jti,
                                    bool *revoked_r, mandate_error *err);
mandate_rc mandate_store_replay_claim(const mandate_instance *store, const char *ns,
                                      const char *id, int64_t expires_at, mandate_error *err);
mandate_rc mandate_store_purge(const mandate_instance *store, int64_t now, uint64_t *count_r,
                               mandate_error *err);

/* Whether the store can list its short-lived rows (ABI 1.2: mandatectl
 * migrate); the three lists answer MANDATE_ERROR when it cannot. */
bool mandate_store_can_list(const mandate_instance *store);
mandate_rc mandate_store_revocation_list(const mandate_instance *store, int64_t now,
                                         mandate_revocation_cb each, void *ctx,
                                         mandate_error *err);
mandate_rc mandate_store_token_list(const mandate_instance *store, int64_t now,
                                    mandate_token_record_cb each, void *ctx,
                                    mandate_error *err);
mandate_rc mandate_store_replay_list(const mandate_instance *store, int64_t now,
                                     mandate_replay_cb each, void *ctx, mandate_error *err);

/* Sign-in (store ABI 1.5): whether the store has every operation; each call
 * answers MANDATE_ERROR when it has not. See include/mandate/store.h for
 * what each answers. A client's registered metadata is refused by a store
 * before 1.5 (it would drop it), and read as NULL from one. */
bool mandate_store_signs_in(const mandate_instance *store);
mandate_rc mandate_store_once_put(const mandate_instance *store, const char *ns,
                                  const unsigned char *key, size_t key_len, const char *value,
                                  int64_t expires_at, mandate_error *err);
mandate_rc mandate_store_once_take(const mandate_instance *store, mandate_pool *pool,
                                   const char *ns, const unsigned char *key, size_t key_len,
                                   int64_t now, char **value_r, mandate_error *err);
/* Stores value under (ns, key) until expires_at, replacing a live record;
 * one that has the same value and lasts until keep_until is left alone
 * (store ABI 1.7; an older store takes and puts, writing every time). */
mandate_rc mandate_store_once_set(const mandate_instance *store, const char *ns,
                                  const unsigned char *key, size_t key_len, const char *value,
                                  int64_t expires_at, int64_t keep_until, mandate_error *err);
/* writes[0..n) in one atomic transaction (store ABI 1.8 write_batch: all
 * or nothing; *failed_r, which may be NULL, the index of the write that
 * failed, n on success). A store before 1.8 gets each write alone, in
 * order, up to the first that fails: those before it stay written. */
mandate_rc mandate_store_write_batch(const mandate_instance *store,
                                     const mandate_store_write *writes, size_t n,
                                     size_t *failed_r, mandate_error *err);
mandate_rc mandate_store_auth_code_put(const mandate_instance *store,
                                       const mandate_auth_code *code, mandate_error *err);
mandate_rc mandate_store_auth_code_take(const mandate_instance *store, mandate_pool *pool,
                                        const unsigned char *hash, size_t hash_len, int64_t now,
                                        mandate_auth_code *code_r, mandate_error *err);
mandate_rc mandate_store_refresh_put(const mandate_instance *store,
                                     const mandate_refresh_token *token, mandate_error *err);
mandate_rc mandate_store_refresh_get(const mandate_instance *store, mandate_pool *pool,
                                     const unsigned char *hash, size_t hash_len, int64_t now,
                                     mandate_refresh_token *token_r, mandate_error *err);
mandate_rc mandate_store_refresh_rotate(const mandate_instance *store, mandate_pool *pool,
                                        const unsigned char *old_hash, size_t old_hash_len,
                                        int64_t now, const mandate_refresh_token *next,
                                        mandate_refresh_token *old_r, mandate_error *err);
mandate_rc mandate_store_refresh_revoke_family(const mandate_instance *store,
                                               const char *family_id, uint64_t *count_r,
                                               mandate_error *err);
mandate_rc mandate_store_refresh_revoke_subject(const mandate_instance *store,
                                                const char *tenant, const char *subject,
                                                uint64_t *count_r, mandate_error *err);
mandate_rc mandate_store_session_put(const mandate_instance *store,
                                     const mandate_session *session, mandate_error *err);
mandate_rc mandate_store_session_get(const mandate_instance *store, mandate_pool *pool,
                                     const unsigned char *hash, size_t hash_len, int64_t now,
                                     mandate_session *session_r, mandate_error *err);
mandate_rc mandate_store_session_touch(const mandate_instance *store, const unsigned char *hash,
                                       size_t hash_len, int64_t now, mandate_error *err);
mandate_rc mandate_store_session_delete(const mandate_instance *store, const unsigned char *hash,
                                        size_t hash_len, mandate_error *err);
mandate_rc mandate_store_session_delete_subject(const mandate_instance *store,
                                                const char *tenant, const char *subject,
                                                uint64_t *count_r, mandate_error *err);
mandate_rc mandate_store_consent_put(const mandate_instance *store,
                                     const mandate_consent *consent, mandate_error *err);
mandate_rc mandate_store_consent_get(const mandate_instance *store, mandate_pool *pool,
                                     const char *tenant, const char *subject,
                                     const char *client_id, int64_t now,
                                     mandate_consent *consent_r, mandate_error *err);
mandate_rc mandate_store_consent_delete(const mandate_instance *store, const char *tenant,
                                        const char *subject, const char *client_id,
                                        mandate_error *err);
mandate_rc mandate_store_consent_list(const mandate_instance *store, const char *tenant,
                                      const char *subject, mandate_consent_cb each, void *ctx,
                                      mandate_error *err);
mandate_rc mandate_store_client_document_put(const mandate_instance *store,
                                             const mandate_client_document *doc,
                                             mandate_error *err);
mandate_rc mandate_store_client_document_get(const mandate_instance *store, mandate_pool *pool,
                                             const char *url, mandate_client_document *doc_r,
                                             mandate_error *err);
mandate_rc mandate_store_lineage_add(const mandate_instance *store, const char *jti,
                                     const char *parent, const char *client_id,
                                     int64_t expires_at, mandate_error *err);
mandate_rc mandate_store_revoke_descendants(const mandate_instance *store, const char *root,
                                            uint64_t *count_r, mandate_error *err);

/* --- backend --------------------------------------------------------------- */

/* What a started backend instance can do; false for any other instance. */
bool mandate_backend_authenticates(const mandate_instance *in);
bool mandate_backend_provisions(const mandate_instance *in);
bool mandate_backend_validates(const mandate_instance *in);
/* It validates assertions and declares token_type among them. */
bool mandate_backend_accepts(const mandate_instance *in, const char *token_type);

/* MANDATE_NEXT from an instance that authenticates no client. */
mandate_rc mandate_backend_authenticate(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_credential *cred,
                                        const mandate_client *client, mandate_error *err);
/* MANDATE_NEXT from an instance that validates no assertion; token_type
 * need not be one it declares (mandatectl mapping test tries each kind). */
mandate_rc mandate_backend_validate(const mandate_instance *in, mandate_pool *pool,
                                    const char *token_type, const char *assertion, size_t len,
                                    mandate_identity *identity_r, mandate_error *err);
/* MANDATE_INVALID from an instance that cannot make credentials. */
mandate_rc mandate_backend_provision(const mandate_instance *in, mandate_pool *pool,
                                     mandate_provision_mode mode, mandate_client *client,
                                     char **secret_r, mandate_error *err);
/* One of the MANDATE_BACKEND_STATE_* strings, or NULL when the instance
 * reports no state (no status, or before ABI 1.3). Never bounded: a status
 * answers from what the instance holds, and /readyz must answer while the
 * instance's calls are all taken. */
const char *mandate_backend_status(const mandate_instance *in, mandate_pool *pool,
                                   const char **detail_r);

/* Sign-in at the backend's IdP (backend ABI 1.5): whether the instance
 * offers it; start and finish (include/mandate/backend.h). finish answers
 * MANDATE_INVALID when the plugin returns no subject. */
bool mandate_backend_signs_in(const mandate_instance *in);
mandate_rc mandate_backend_login_start(const mandate_instance *in, mandate_pool *pool,
                                       const mandate_login_request *request,
                                       mandate_login_redirect *redirect_r, mandate_error *err);
mandate_rc mandate_backend_login_finish(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_login_response *response,
                                        mandate_identity *identity_r, mandate_error *err);
/* What the IdP's administrator needs (SAML SP metadata): MANDATE_NOT_FOUND
 * when the instance publishes none. */
bool mandate_backend_publishes_login_metadata(const mandate_instance *in);
mandate_rc mandate_backend_login_metadata(const mandate_instance *in, mandate_pool *pool,
                                          const char *callback_url, char **text_r,
                                          const char **content_type_r, mandate_error *err);

/* Single logout at the backend's IdP (backend ABI 1.6): whether the
 * instance offers it; the sign-in's session_ref and session_key from an
 * identity login_finish gave (false, both NULL: none); start and finish
 * (include/mandate/backend.h). start answers MANDATE_NOT_FOUND when there
 * is nothing to do at the IdP. */
bool mandate_backend_logs_out(const mandate_instance *in);
bool mandate_backend_session_refs(const mandate_instance *in, const mandate_identity *id,
                                  const char **ref_r, const char **key_r);
mandate_rc mandate_backend_logout_start(const mandate_instance *in, mandate_pool *pool,
                                        const mandate_logout_request *request,
                                        mandate_login_redirect *redirect_r, mandate_error *err);
mandate_rc mandate_backend_logout_finish(const mandate_instance *in, mandate_pool *pool,
                                         const mandate_logout_message *message,
                                         mandate_logout_result *result_r, mandate_error *err);

/* --- format ---------------------------------------------------------------- */

bool mandate_format_parses(const mandate_instance *in);
/* It makes keys and takes a key set: a format that signs (jwt). */
bool mandate_format_has_keys(const mandate_instance *in);
/* It signs other JWTs than access tokens (ABI 1.3). */
bool mandate_format_signs(const mandate_instance *in);
/* It carries a grant's prior_actors (ABI 1.4). */
bool mandate_format_carries_actors(const mandate_instance *in);

/* MANDATE_ERROR for a grant with prior_actors that the format cannot carry:
 * a token that says less than it is is never minted. */
mandate_rc mandate_format_mint(const mandate_instance *in, mandate_pool *pool,
                               const mandate_grant *grant, char **token_r, mandate_error *err);
/* MANDATE_NEXT from an instance that parses nothing. The grant's
 * prior_actors is NULL from a format before ABI 1.4, whatever it left
 * there. */
mandate_rc mandate_format_parse(const mandate_instance *in, mandate_pool *pool,
                                const char *token, size_t len, mandate_grant *grant_r,
                                mandate_error *err);
/* MANDATE_ERROR from a format without keys. */
mandate_rc mandate_format_keygen(const mandate_instance *in, mandate_pool *pool,
                                 const char *alg, mandate_key *key_r,
                                 unsigned char **private_der_r, size_t *private_der_len_r,
                                 mandate_error *err);
mandate_rc mandate_format_set_keys(const mandate_instance *in, const mandate_signing_key *keys,
                                   size_t n, mandate_error *err);
/* MANDATE_ERROR from a format that signs nothing else. */
mandate_rc mandate_format_sign(const mandate_instance *in, mandate_pool *pool, const char *typ,
                               const char *claims, size_t claims_len, char **jws_r,
                               mandate_error *err);

#endif
