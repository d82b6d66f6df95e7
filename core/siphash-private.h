/* SipHash-2-4 (Aumasson and Bernstein), a keyed hash for tables whose keys
 * an outsider chooses (client ids, peer addresses): with a random key, no
 * one can pick keys that crowd one slot. */
#ifndef MANDATE_SIPHASH_PRIVATE_H
#define MANDATE_SIPHASH_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

/* The 128-bit output of SipHash-2-4 under key k (the reference siphash.c
 * with outlen 16; the same as OpenSSL's EVP_MAC "SIPHASH"). */
void mandate_siphash128(const uint64_t k[2], const unsigned char *in, size_t len,
                        uint64_t out[2]);

#endif
