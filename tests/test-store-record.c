/* lib/store-record.c: each record's table has as many fields as its column
 * list names, and a record bound then read back (as the stores do, through
 * their binder and reader) is the record it was, every kind of field. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <mandate/store.h>

#include "store-record.h"

#define MAX_COLUMNS 32

/* A row of columns, as a statement's parameters and as its result. */
typedef struct row {
    int first;
    int n;
    const char *text[MAX_COLUMNS];
    const unsigned char *blob[MAX_COLUMNS];
    size_t blob_len[MAX_COLUMNS];
    int64_t integer[MAX_COLUMNS];
    double real[MAX_COLUMNS];
} row;

static int slot(row *r, int at)
{
    int i = at - r->first;
    assert_true(i >= 0 && i < MAX_COLUMNS);
    assert_int_equal(i, r->n); /* bound in order, none skipped */
    r->n++;
    return i;
}

static void bind_text(void *dst, int at, const char *v)
{
    row *r = dst;
    r->text[slot(r, at)] = v;
}

static void bind_blob(void *dst, int at, const unsigned char *v, size_t len)
{
    row *r = dst;
    int i = slot(r, at);
    r->blob[i] = v;
    r->blob_len[i] = len;
}

static void bind_integer(void *dst, int at, int64_t v)
{
    row *r = dst;
    r->integer[slot(r, at)] = v;
}

static void bind_real(void *dst, int at, double v)
{
    row *r = dst;
    r->real[slot(r, at)] = v;
}

static const char *read_text(const void *src, int col)
{
    return ((const row *)src)->text[col - ((const row *)src)->first];
}

static const unsigned char *read_blob(const void *src, int col, size_t *len_r)
{
    const row *r = src;
    *len_r = r->blob_len[col - r->first];
    return r->blob[col - r->first];
}

static int64_t read_integer(const void *src, int col)
{
    return ((const row *)src)->integer[col - ((const row *)src)->first];
}

static double read_real(const void *src, int col)
{
    return ((const row *)src)->real[col - ((const row *)src)->first];
}

static const store_binder binder = {bind_text, bind_blob, bind_integer, bind_real};
static const store_reader reader = {read_text, read_blob, read_integer, read_real};

/* The names in a column list. */
static size_t columns_in(const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

static void test_tables_match_columns(void **state)
{
    (void)state;
    static const struct {
        const store_record *rec;
        const char *columns;
        size_t size;
    } records[] = {
        {&store_client_record, CLIENT_COLUMNS, sizeof(mandate_client)},
        {&store_key_record, KEY_COLUMNS, sizeof(mandate_key)},
        {&store_token_record, TOKEN_COLUMNS, sizeof(mandate_token_record)},
        {&store_code_record, CODE_COLUMNS, sizeof(mandate_auth_code)},
        {&store_refresh_record, REFRESH_COLUMNS, sizeof(mandate_refresh_token)},
        {&store_session_record, SESSION_COLUMNS, sizeof(mandate_session)},
        {&store_consent_record, CONSENT_COLUMNS, sizeof(mandate_consent)},
        {&store_document_record, DOCUMENT_COLUMNS, sizeof(mandate_client_document)},
    };
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        const store_record *rec = records[i].rec;
        if (rec->n != columns_in(records[i].columns) || rec->size != records[i].size)
            fail_msg("record %zu (%s): %zu fields, %zu columns", i, records[i].columns, rec->n,
                     columns_in(records[i].columns));
        for (size_t f = 0; f < rec->n; f++)
            assert_true(rec->fields[f].off < rec->size && rec->fields[f].len_off < rec->size);
    }
}

static void test_client_round_trip(void **state)
{
    (void)state;
    static const unsigned char hash[] = {1, 2, 3, 0, 5}, prev[] = {9};
    mandate_client in = {.client_id = "agent-1",
                         .tenant = "default",
                         .name = NULL,
                         .scopes = "a b",
                         .token_ttl = 300,
                         .status = MANDATE_CLIENT_DISABLED,
                         .flags = 0x80000001u,
                         .secret_hash = hash,
                         .secret_hash_len = sizeof(hash),
                         .prev_secret_hash = prev,
                         .prev_secret_hash_len = sizeof(prev),
                         .prev_secret_expires_at = -1,
                         .rate_limit = 2.5,
                         .rate_burst = 7,
                         .created_at = INT64_MAX,
                         .metadata = "{}"};
    row r = {.first = 3};
    store_record_bind(&binder, &r, 3, &store_client_record, &in);
    assert_int_equal(r.n, (int)store_client_record.n);
    mandate_client out;
    memset(&out, 0xa5, sizeof(out)); /* read must clear what it does not fill */
    store_record_read(&reader, &r, 3, &store_client_record, &out);
    assert_string_equal(out.client_id, "agent-1");
    assert_string_equal(out.tenant, "default");
    assert_null(out.name);
    assert_string_equal(out.scopes, "a b");
    assert_null(out.audiences);
    assert_int_equal(out.token_ttl, 300);
    assert_int_equal(out.status, MANDATE_CLIENT_DISABLED);
    assert_int_equal(out.flags, 0x80000001u);
    assert_int_equal(out.secret_hash_len, sizeof(hash));
    assert_memory_equal(out.secret_hash, hash, sizeof(hash));
    assert_int_equal(out.prev_secret_hash_len, sizeof(prev));
    assert_int_equal(out.prev_secret_expires_at, -1);
    assert_true(out.rate_limit == 2.5);
    assert_int_equal(out.rate_burst, 7);
    assert_true(out.created_at == INT64_MAX);
    assert_int_equal(out.updated_at, 0);
    assert_string_equal(out.metadata, "{}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_match_columns),
        cmocka_unit_test(test_client_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
