// CCryptsetup: libcryptsetup, for dm-verity activation (docs/verity.md): crypt_init_data_device,
// crypt_load(CRYPT_VERITY), crypt_activate_by_signed_key / crypt_activate_by_volume_key,
// crypt_deactivate_by_name. The user-space checks (hash tree, PKCS#7) do not use it.
//
// libcryptsetup (with libdevmapper, json-c, argon2, …) is loaded when the first dm-verity image
// needs it (dlopen(3)), not at every start. Each function earlyext uses has an `ee_` wrapper that
// resolves it once per translation unit; without the library they return -ELIBACC, and
// ee_cryptsetup_load_error() says why.
#ifndef EARLYEXT_CCRYPTSETUP_H
#define EARLYEXT_CCRYPTSETUP_H
#include <libcryptsetup.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

/// The libcryptsetup earlyext loads: Debian's (and most distributions') SONAME.
#define EE_LIBCRYPTSETUP "libcryptsetup.so.12"

static inline void *ee_cryptsetup_symbol(const char *name) {
    void *library = dlopen(EE_LIBCRYPTSETUP, RTLD_NOW | RTLD_LOCAL);
    return library ? dlsym(library, name) : NULL;
}

/// dlerror(3) if libcryptsetup cannot be loaded, else NULL.
static inline const char *ee_cryptsetup_load_error(void) {
    if (dlopen(EE_LIBCRYPTSETUP, RTLD_NOW | RTLD_LOCAL)) return NULL;
    return dlerror();
}

#define EE_CRYPT_FUNCTION(name) \
    static __typeof__(&name) fn_##name; if (!fn_##name) fn_##name = (__typeof__(&name))ee_cryptsetup_symbol(#name)

/// crypt_init_data_device()
static inline int ee_crypt_init_data_device(struct crypt_device **cd, const char *device, const char *data_device) {
    EE_CRYPT_FUNCTION(crypt_init_data_device);
    return fn_crypt_init_data_device ? fn_crypt_init_data_device(cd, device, data_device) : -ELIBACC;
}
/// crypt_set_log_callback()
static inline void ee_crypt_set_log_callback(struct crypt_device *cd,
                                             void (*log)(int level, const char *msg, void *usrptr), void *usrptr) {
    EE_CRYPT_FUNCTION(crypt_set_log_callback);
    if (fn_crypt_set_log_callback) fn_crypt_set_log_callback(cd, log, usrptr);
}
/// crypt_load()
static inline int ee_crypt_load(struct crypt_device *cd, const char *type, void *params) {
    EE_CRYPT_FUNCTION(crypt_load);
    return fn_crypt_load ? fn_crypt_load(cd, type, params) : -ELIBACC;
}
/// crypt_free()
static inline void ee_crypt_free(struct crypt_device *cd) {
    EE_CRYPT_FUNCTION(crypt_free);
    if (fn_crypt_free) fn_crypt_free(cd);
}
/// crypt_get_verity_info()
static inline int ee_crypt_get_verity_info(struct crypt_device *cd, struct crypt_params_verity *vp) {
    EE_CRYPT_FUNCTION(crypt_get_verity_info);
    return fn_crypt_get_verity_info ? fn_crypt_get_verity_info(cd, vp) : -ELIBACC;
}
/// crypt_activate_by_signed_key()
static inline int ee_crypt_activate_by_signed_key(struct crypt_device *cd, const char *name,
                                                  const char *volume_key, size_t volume_key_size,
                                                  const char *signature, size_t signature_size, uint32_t flags) {
    EE_CRYPT_FUNCTION(crypt_activate_by_signed_key);
    return fn_crypt_activate_by_signed_key
        ? fn_crypt_activate_by_signed_key(cd, name, volume_key, volume_key_size, signature, signature_size, flags)
        : -ELIBACC;
}
/// crypt_activate_by_volume_key()
static inline int ee_crypt_activate_by_volume_key(struct crypt_device *cd, const char *name,
                                                  const char *volume_key, size_t volume_key_size, uint32_t flags) {
    EE_CRYPT_FUNCTION(crypt_activate_by_volume_key);
    return fn_crypt_activate_by_volume_key
        ? fn_crypt_activate_by_volume_key(cd, name, volume_key, volume_key_size, flags) : -ELIBACC;
}
/// crypt_deactivate_by_name()
static inline int ee_crypt_deactivate_by_name(struct crypt_device *cd, const char *name, uint32_t flags) {
    EE_CRYPT_FUNCTION(crypt_deactivate_by_name);
    return fn_crypt_deactivate_by_name ? fn_crypt_deactivate_by_name(cd, name, flags) : -ELIBACC;
}

/// CRYPT_VERITY is a string macro ("VERITY"); Swift does not import it.
static inline const char *ee_crypt_verity_type(void) { return CRYPT_VERITY; }

/// The flags earlyext uses, as plain values.
static const unsigned int ee_CRYPT_ACTIVATE_READONLY = CRYPT_ACTIVATE_READONLY;
static const unsigned int ee_CRYPT_DEACTIVATE_DEFERRED = CRYPT_DEACTIVATE_DEFERRED;
static const int ee_CRYPT_LOG_ERROR = CRYPT_LOG_ERROR;
#endif
