// CCrypto: OpenSSL's libcrypto, for SHA-256 through the EVP digest API (EVP_DigestInit_ex,
// EVP_DigestUpdate, EVP_DigestFinal_ex). Nothing else of OpenSSL is used directly; libcurl uses
// libssl for TLS on its own.
#ifndef EARLYEXT_CCRYPTO_H
#define EARLYEXT_CCRYPTO_H
#include <openssl/evp.h>

/// EVP_sha256() behind a function the importer sees as returning a plain pointer.
static inline const EVP_MD *ee_evp_sha256(void) { return EVP_sha256(); }
#endif
