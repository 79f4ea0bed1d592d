// CCurl: libcurl's easy interface, for earlyext's fetcher (Sources/EarlyextCore/Fetch/).
//
// curl_easy_setopt() and curl_easy_getinfo() are variadic, which Swift cannot call. Each argument
// type earlyext passes gets one fixed-arity static inline wrapper here; the Swift side
// (Fetch/CurlEasy.swift) wraps these once more and turns a CURLcode into a thrown error.
#ifndef EARLYEXT_CCURL_H
#define EARLYEXT_CCURL_H
#include <curl/curl.h>

/// The write and header callbacks: CURLOPT_WRITEFUNCTION / CURLOPT_HEADERFUNCTION.
typedef size_t (*ee_curl_data_callback)(char *data, size_t size, size_t count, void *context);
/// The progress callback: CURLOPT_XFERINFOFUNCTION.
typedef int (*ee_curl_xferinfo_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                         curl_off_t ultotal, curl_off_t ulnow);

/// curl_global_init(CURL_GLOBAL_DEFAULT): once per process, before any handle.
static inline CURLcode ee_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }

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
