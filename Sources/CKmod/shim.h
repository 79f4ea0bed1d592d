// CKmod: libkmod, for checking that kernel modules shipped in extensions resolve in the merged
// tree (EarlyBoot/KernelModules.swift) and for loading dm_mod/dm_verity (Verity/Cryptsetup.swift).
//
// libkmod is loaded when first needed (dlopen(3)), not at startup: most runs merge no module and
// need no device-mapper, and libkmod brings libzstd, liblzma and libcrypto with it. Each entry
// point resolves its symbol once with dlsym(3); while the library cannot be loaded, every wrapper
// answers as libkmod does when it finds nothing (NULL, or a negative errno). The headers still come
// through this .systemLibrary target.
#ifndef EARLYEXT_CKMOD_H
#define EARLYEXT_CKMOD_H
#include <dlfcn.h>
#include <errno.h>
#include <libkmod.h>
#include <stddef.h>

/// The libkmod earlyext loads: Debian's (and most distributions') SONAME.
#define EE_LIBKMOD "libkmod.so.2"

/// dlopen(EE_LIBKMOD) (a no-op after the first) and dlsym(name); NULL if either fails.
static inline void *ee_kmod_symbol(const char *name) {
    void *library = dlopen(EE_LIBKMOD, RTLD_NOW | RTLD_LOCAL);
    return library ? dlsym(library, name) : NULL;
}

/// `fn_NAME`: NAME from libkmod, typed as libkmod.h declares it, looked up once.
#define EE_KMOD_FUNCTION(name) \
    static __typeof__(&name) fn_##name; if (!fn_##name) fn_##name = (__typeof__(&name))ee_kmod_symbol(#name)

/// kmod_new(3)
static inline struct kmod_ctx *ee_kmod_new(const char *dirname, const char * const *config_paths) {
    EE_KMOD_FUNCTION(kmod_new);
    return fn_kmod_new ? fn_kmod_new(dirname, config_paths) : NULL;
}

/// kmod_unref(3)
static inline void ee_kmod_unref(struct kmod_ctx *ctx) {
    EE_KMOD_FUNCTION(kmod_unref);
    if (fn_kmod_unref) fn_kmod_unref(ctx);
}

/// kmod_module_new_from_lookup(3)
static inline int ee_kmod_module_new_from_lookup(struct kmod_ctx *ctx, const char *given_alias, struct kmod_list **list) {
    EE_KMOD_FUNCTION(kmod_module_new_from_lookup);
    return fn_kmod_module_new_from_lookup ? fn_kmod_module_new_from_lookup(ctx, given_alias, list) : -ENOSYS;
}

/// kmod_module_unref_list(3)
static inline int ee_kmod_module_unref_list(struct kmod_list *list) {
    EE_KMOD_FUNCTION(kmod_module_unref_list);
    return fn_kmod_module_unref_list ? fn_kmod_module_unref_list(list) : 0;
}

/// kmod_module_get_module(3)
static inline struct kmod_module *ee_kmod_module_get_module(const struct kmod_list *entry) {
    EE_KMOD_FUNCTION(kmod_module_get_module);
    return fn_kmod_module_get_module ? fn_kmod_module_get_module(entry) : NULL;
}

/// kmod_module_unref(3)
static inline struct kmod_module *ee_kmod_module_unref(struct kmod_module *mod) {
    EE_KMOD_FUNCTION(kmod_module_unref);
    return fn_kmod_module_unref ? fn_kmod_module_unref(mod) : NULL;
}

/// kmod_module_get_path(3)
static inline const char *ee_kmod_module_get_path(const struct kmod_module *mod) {
    EE_KMOD_FUNCTION(kmod_module_get_path);
    return fn_kmod_module_get_path ? fn_kmod_module_get_path(mod) : NULL;
}

/// kmod_module_probe_insert_module(3), with no callbacks.
static inline int ee_kmod_module_probe_insert_module(struct kmod_module *mod, unsigned int flags) {
    EE_KMOD_FUNCTION(kmod_module_probe_insert_module);
    return fn_kmod_module_probe_insert_module
        ? fn_kmod_module_probe_insert_module(mod, flags, NULL, NULL, NULL, NULL) : -ENOSYS;
}

/// Why libkmod could not be loaded (dlerror(3)), or NULL if it can be.
static inline const char *ee_kmod_load_error(void) {
    if (dlopen(EE_LIBKMOD, RTLD_NOW | RTLD_LOCAL)) return NULL;
    return dlerror();
}
#endif
