// CCurl: libcurl's easy interface, for earlyext's fetcher (Sources/EarlyextCore/Fetch/).
//
// curl_easy_setopt() and curl_easy_getinfo() are variadic, which Swift cannot call. Each argument
// type earlyext passes gets one fixed-arity static inline wrapper here; the Swift side
// (Fetch/CurlEasy.swift) wraps these once more and turns a CURLcode into a thrown error.
//
// libcurl is loaded when the first download needs it (dlopen(3)), not at startup: it pulls in some
// thirty libraries (TLS, Kerberos, LDAP, IDN, …) that cost every `earlyext` run milliseconds,
// including the many that fetch nothing. Each entry point earlyext uses resolves its symbol once
// (per translation unit) with dlsym(3). The headers still come through this .systemLibrary target.
#ifndef EARLYEXT_CCURL_H
#define EARLYEXT_CCURL_H
#include <curl/curl.h>
#include <dlfcn.h>
#include <stddef.h>

/// The libcurl earlyext loads: Debian's (and most distributions') SONAME.
#define EE_LIBCURL "libcurl.so.4"

/// dlopen(EE_LIBCURL) (a no-op after the first) and dlsym(name); NULL if either fails.
static inline void *ee_curl_symbol(const char *name) {
    void *library = dlopen(EE_LIBCURL, RTLD_NOW | RTLD_LOCAL);
    return library ? dlsym(library, name) : NULL;
}

/// Why libcurl could not be loaded, for the message: dlerror(3) after a failed dlopen.
static inline const char *ee_curl_load_error(void) {
    if (dlopen(EE_LIBCURL, RTLD_NOW | RTLD_LOCAL)) return NULL;
    return dlerror();
}

/// `fn_NAME`: NAME from libcurl, typed as curl.h declares it, looked up once.
#define EE_CURL_FUNCTION(name) \
    static __typeof__(&name) fn_##name; if (!fn_##name) fn_##name = (__typeof__(&name))ee_curl_symbol(#name)

/// curl_easy_init()
static inline CURL *ee_curl_easy_init(void) {
    EE_CURL_FUNCTION(curl_easy_init);
    return fn_curl_easy_init ? fn_curl_easy_init() : NULL;
}
/// curl_easy_cleanup()
static inline void ee_curl_easy_cleanup(CURL *handle) {
    EE_CURL_FUNCTION(curl_easy_cleanup);
    if (fn_curl_easy_cleanup) fn_curl_easy_cleanup(handle);
}
/// curl_easy_reset()
static inline void ee_curl_easy_reset(CURL *handle) {
    EE_CURL_FUNCTION(curl_easy_reset);
    if (fn_curl_easy_reset) fn_curl_easy_reset(handle);
}
/// curl_easy_perform()
static inline CURLcode ee_curl_easy_perform(CURL *handle) {
    EE_CURL_FUNCTION(curl_easy_perform);
    return fn_curl_easy_perform ? fn_curl_easy_perform(handle) : CURLE_FAILED_INIT;
}
/// curl_easy_strerror()
static inline const char *ee_curl_easy_strerror(CURLcode code) {
    EE_CURL_FUNCTION(curl_easy_strerror);
    return fn_curl_easy_strerror ? fn_curl_easy_strerror(code) : "libcurl is not available";
}
/// The variadic ones, through a pointer of their own type.
typedef CURLcode (*ee_curl_setopt_function)(CURL *, CURLoption, ...);
typedef CURLcode (*ee_curl_getinfo_function)(CURL *, CURLINFO, ...);
static inline ee_curl_setopt_function ee_curl_setopt_fn(void) {
    static ee_curl_setopt_function fn;
    if (!fn) fn = (ee_curl_setopt_function)ee_curl_symbol("curl_easy_setopt");
    return fn;
}
static inline ee_curl_getinfo_function ee_curl_getinfo_fn(void) {
    static ee_curl_getinfo_function fn;
    if (!fn) fn = (ee_curl_getinfo_function)ee_curl_symbol("curl_easy_getinfo");
    return fn;
}
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt(handle, option, value) \
    (ee_curl_setopt_fn() ? ee_curl_setopt_fn()((handle), (option), (value)) : CURLE_FAILED_INIT)
#define curl_easy_getinfo(handle, info, value) \
    (ee_curl_getinfo_fn() ? ee_curl_getinfo_fn()((handle), (info), (value)) : CURLE_FAILED_INIT)

/// The write and header callbacks: CURLOPT_WRITEFUNCTION / CURLOPT_HEADERFUNCTION.
typedef size_t (*ee_curl_data_callback)(char *data, size_t size, size_t count, void *context);
/// The progress callback: CURLOPT_XFERINFOFUNCTION.
typedef int (*ee_curl_xferinfo_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                         curl_off_t ultotal, curl_off_t ulnow);

/// curl_global_init(CURL_GLOBAL_DEFAULT): once per process, before any handle.
static inline CURLcode ee_curl_global_init(void) {
    EE_CURL_FUNCTION(curl_global_init);
    return fn_curl_global_init ? fn_curl_global_init(CURL_GLOBAL_DEFAULT) : CURLE_FAILED_INIT;
}

/// curl_easy_setopt() with a `long` argument.
static inline CURLcode ee_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
/// curl_easy_setopt() with a C string (copied by libcurl since 7.17).
static inline CURLcode ee_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
/// curl_easy_setopt() with an opaque pointer (CURLOPT_WRITEDATA, CURLOPT_XFERINFODATA, …).
static inline CURLcode ee_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
/// curl_easy_setopt() with a curl_off_t (CURLOPT_RESUME_FROM_LARGE, …).
static inline CURLcode ee_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
/// curl_easy_setopt() with a write or header callback.
static inline CURLcode ee_curl_setopt_data_callback(CURL *handle, CURLoption option, ee_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}
/// curl_easy_setopt() with a progress callback.
static inline CURLcode ee_curl_setopt_xferinfo_callback(CURL *handle, CURLoption option, ee_curl_xferinfo_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/// curl_easy_getinfo() for a `long` result (CURLINFO_RESPONSE_CODE, …).
static inline CURLcode ee_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
/// curl_easy_getinfo() for a curl_off_t result (CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, …).
static inline CURLcode ee_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
/// curl_easy_getinfo() for a string result (CURLINFO_EFFECTIVE_URL, …); owned by the handle.
static inline CURLcode ee_curl_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/// The size of the error buffer CURLOPT_ERRORBUFFER wants.
static const int ee_CURL_ERROR_SIZE = CURL_ERROR_SIZE;
#endif
