/* The key-encryption key: 32 random bytes, hex in a file of mode 0600 (or in
 * $MANDATE_KEK). Every other secret of the broker is derived from it or
 * encrypted under it. */
#ifndef MANDATE_KEK_PRIVATE_H
#define MANDATE_KEK_PRIVATE_H

#include <mandate/plugin.h>

#define MANDATE_KEK_LEN 32

/* Creates a new key file; refuses to overwrite one. */
mandate_rc mandate_kek_create(const char *path, mandate_error *err);
/* $MANDATE_KEK if set, else the file, which must not be readable by group
 * or others. */
mandate_rc mandate_kek_load(const char *path, unsigned char kek[MANDATE_KEK_LEN],
                            mandate_error *err);
/* HKDF-SHA256 of the KEK with a purpose label: one key per purpose. */
mandate_rc mandate_kek_derive(const unsigned char kek[MANDATE_KEK_LEN], const char *label,
                              unsigned char out[32], mandate_error *err);

#endif
