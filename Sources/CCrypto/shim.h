// CCrypto: OpenSSL's libcrypto.
// - SHA-256 through the EVP digest API (EVP_DigestInit_ex, EVP_DigestUpdate, EVP_DigestFinal_ex),
//   for downloads and for dm-verity hash trees (SHA-512 too, for the latter).
// - PKCS#7, X.509 and PEM, to verify dm-verity root hash signatures in user space (docs/verity.md).
// libcurl uses libssl for TLS on its own.
#ifndef EARLYEXT_CCRYPTO_H
#define EARLYEXT_CCRYPTO_H
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/// EVP_sha256() behind a function the importer sees as returning a plain pointer.
static inline const EVP_MD *ee_evp_sha256(void) { return EVP_sha256(); }
static inline const EVP_MD *ee_evp_sha512(void) { return EVP_sha512(); }

// STACK_OF(X509) is a family of macros and inline functions; give Swift plain ones.
static inline STACK_OF(X509) *ee_sk_x509_new(void) { return sk_X509_new_null(); }
static inline int ee_sk_x509_push(STACK_OF(X509) *stack, X509 *cert) { return sk_X509_push(stack, cert); }
static inline int ee_sk_x509_num(const STACK_OF(X509) *stack) { return sk_X509_num(stack); }
static inline X509 *ee_sk_x509_value(const STACK_OF(X509) *stack, int i) { return sk_X509_value(stack, i); }
/// Frees the stack only (the certificates belong to someone else).
static inline void ee_sk_x509_free(STACK_OF(X509) *stack) { sk_X509_free(stack); }
/// Frees the stack and every certificate in it.
static inline void ee_sk_x509_pop_free(STACK_OF(X509) *stack) { sk_X509_pop_free(stack, X509_free); }

/// True if the PKCS#7 structure is signedData.
static inline int ee_pkcs7_is_signed(PKCS7 *p7) { return PKCS7_type_is_signed(p7); }
/// True if a signedData carries no content of its own (a detached signature).
static inline int ee_pkcs7_is_detached(PKCS7 *p7) { return PKCS7_get_detached(p7) != 0; }
/// The certificates embedded in a signedData (may be NULL); owned by p7.
static inline STACK_OF(X509) *ee_pkcs7_certificates(PKCS7 *p7) {
    return PKCS7_type_is_signed(p7) && p7->d.sign ? p7->d.sign->cert : NULL;
}
/// The number of SignerInfos.
static inline int ee_pkcs7_signer_count(PKCS7 *p7) {
    STACK_OF(PKCS7_SIGNER_INFO) *infos = PKCS7_get_signer_info(p7);
    return infos ? sk_PKCS7_SIGNER_INFO_num(infos) : 0;
}
/// Writes "issuer=…, serial=…" of SignerInfo i into buf (NUL-terminated).
static inline void ee_pkcs7_signer_describe(PKCS7 *p7, int i, char *buf, int size) {
    buf[0] = 0;
    STACK_OF(PKCS7_SIGNER_INFO) *infos = PKCS7_get_signer_info(p7);
    if (!infos || i >= sk_PKCS7_SIGNER_INFO_num(infos)) return;
    PKCS7_SIGNER_INFO *si = sk_PKCS7_SIGNER_INFO_value(infos, i);
    if (!si || !si->issuer_and_serial) return;
    char issuer[256];
    X509_NAME_oneline(si->issuer_and_serial->issuer, issuer, sizeof issuer);
    BIGNUM *bn = ASN1_INTEGER_to_BN(si->issuer_and_serial->serial, NULL);
    char *serial = bn ? BN_bn2hex(bn) : NULL;
    BIO_snprintf(buf, size, "issuer %s, serial %s", issuer, serial ? serial : "?");
    OPENSSL_free(serial);
    BN_free(bn);
}

static inline int ee_err_reason(unsigned long e) { return ERR_GET_REASON(e); }
static inline int ee_err_lib(unsigned long e) { return ERR_GET_LIB(e); }
static const int ee_X509_V_FLAG_PARTIAL_CHAIN = X509_V_FLAG_PARTIAL_CHAIN;
static const int ee_X509_V_FLAG_NO_CHECK_TIME = X509_V_FLAG_NO_CHECK_TIME;
static const int ee_X509_PURPOSE_ANY = X509_PURPOSE_ANY;
static const int ee_PKCS7_BINARY = PKCS7_BINARY;
static const int ee_PKCS7_NOVERIFY = PKCS7_NOVERIFY;
static const int ee_PKCS7_NOINTERN = PKCS7_NOINTERN;
#endif
