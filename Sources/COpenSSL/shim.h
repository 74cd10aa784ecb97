#ifndef HERALD_COPENSSL_SHIM_H
#define HERALD_COPENSSL_SHIM_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

// SHA-256's own context, for HMACs built on it (Cryptography's SHA256.hmac). OpenSSL 3
// deprecates these in favour of EVP, whose one-shot HMAC fetches the algorithm from a
// provider under a lock and allocates about fifteen times per call: a worker signs every
// delivery. The context lives on the caller's stack; the block function is the same
// (with the CPU's SHA extensions where it has them).
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline int herald_sha256_init(SHA256_CTX *context) { return SHA256_Init(context); }
static inline int herald_sha256_update(SHA256_CTX *context, const void *data, size_t length) {
    return SHA256_Update(context, data, length);
}
static inline int herald_sha256_final(unsigned char *digest, SHA256_CTX *context) { return SHA256_Final(digest, context); }
#pragma clang diagnostic pop

#endif
