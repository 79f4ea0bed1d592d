// CCryptsetup: libcryptsetup, for dm-verity activation (docs/verity.md): crypt_init_data_device,
// crypt_load(CRYPT_VERITY), crypt_activate_by_signed_key / crypt_activate_by_volume_key,
// crypt_deactivate_by_name. The user-space checks (hash tree, PKCS#7) do not use it.
#ifndef EARLYEXT_CCRYPTSETUP_H
#define EARLYEXT_CCRYPTSETUP_H
#include <libcryptsetup.h>

/// CRYPT_VERITY is a string macro ("VERITY"); Swift does not import it.
static inline const char *ee_crypt_verity_type(void) { return CRYPT_VERITY; }

/// The flags earlyext uses, as plain values.
static const unsigned int ee_CRYPT_ACTIVATE_READONLY = CRYPT_ACTIVATE_READONLY;
static const unsigned int ee_CRYPT_DEACTIVATE_DEFERRED = CRYPT_DEACTIVATE_DEFERRED;
static const int ee_CRYPT_LOG_ERROR = CRYPT_LOG_ERROR;
#endif
