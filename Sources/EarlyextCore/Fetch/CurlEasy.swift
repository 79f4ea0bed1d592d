import CCurl

/// curl_global_init(), once per process (Swift runs a global's initializer exactly once).
private let curlGlobalInit: CURLcode = ee_curl_global_init()

/// A libcurl easy handle. Each setopt/getinfo call earlyext makes is wrapped once here, on the
/// fixed-arity wrappers in CCurl's header; a failing setopt is a programming error or a libcurl
/// built without a feature, and is thrown as `CurlError`.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer
    /// CURLOPT_ERRORBUFFER: libcurl's detailed message for the last failure.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// curl_easy_init(), loading libcurl on first use (CCurl/shim.h).
    init() throws(CurlError) {
        if let problem = ee_curl_load_error() {
            throw CurlError(code: CURLE_FAILED_INIT, detail: "cannot load \(EE_LIBCURL): \(String(cString: problem))")
        }
        guard curlGlobalInit == CURLE_OK else { throw CurlError(code: curlGlobalInit, detail: "curl_global_init") }
        guard let handle = ee_curl_easy_init() else { throw CurlError(code: CURLE_FAILED_INIT, detail: "curl_easy_init") }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(ee_CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(ee_CURL_ERROR_SIZE) + 1)
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
    }

    deinit {
        ee_curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// curl_easy_reset(), keeping the error buffer.
    func reset() throws(CurlError) {
        ee_curl_easy_reset(handle)
        errorBuffer[0] = 0
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
    }

    private func check(_ code: CURLcode, _ what: String) throws(CurlError) {
        if code != CURLE_OK { throw CurlError(code: code, detail: what) }
    }

    /// curl_easy_setopt(long).
    func set(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try check(ee_curl_setopt_long(handle, option, value), "setopt \(option.rawValue)")
    }

    /// curl_easy_setopt(const char *).
    func set(_ option: CURLoption, _ value: String) throws(CurlError) {
        try check(ee_curl_setopt_string(handle, option, value), "setopt \(option.rawValue)")
    }

    /// curl_easy_setopt(void *).
    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) throws(CurlError) {
        try check(ee_curl_setopt_pointer(handle, option, pointer), "setopt \(option.rawValue)")
    }

    /// curl_easy_setopt(curl_off_t).
    func set(_ option: CURLoption, offset: Int64) throws(CurlError) {
        try check(ee_curl_setopt_off_t(handle, option, curl_off_t(offset)), "setopt \(option.rawValue)")
    }

    /// curl_easy_setopt() of a write or header callback.
    func set(_ option: CURLoption, callback: ee_curl_data_callback) throws(CurlError) {
        try check(ee_curl_setopt_data_callback(handle, option, callback), "setopt \(option.rawValue)")
    }

    /// curl_easy_setopt() of the progress callback.
    func set(_ option: CURLoption, progress: ee_curl_xferinfo_callback) throws(CurlError) {
        try check(ee_curl_setopt_xferinfo_callback(handle, option, progress), "setopt \(option.rawValue)")
    }

    /// curl_easy_perform(): the transfer, synchronously. Returns libcurl's result code.
    func perform() -> CURLcode {
        errorBuffer[0] = 0
        return ee_curl_easy_perform(handle)
    }

    /// curl_easy_getinfo(CURLINFO_RESPONSE_CODE): the last HTTP status (0 for file://).
    var responseCode: Int {
        var code = 0
        _ = ee_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// curl_easy_getinfo(CURLINFO_CONTENT_LENGTH_DOWNLOAD_T): the body's length, nil if unknown.
    var contentLength: Int64? {
        var length: curl_off_t = -1
        _ = ee_curl_getinfo_off_t(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
        return length >= 0 ? Int64(length) : nil
    }

    /// curl_easy_getinfo(CURLINFO_EFFECTIVE_URL): the URL after redirects.
    var effectiveURL: String? {
        var pointer: UnsafeMutablePointer<CChar>?
        _ = ee_curl_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &pointer)
        return pointer.map { String(cString: $0) }
    }

    /// The reason for `code`: libcurl's error buffer when it has one, else curl_easy_strerror().
    func message(for code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: ee_curl_easy_strerror(code)) : detail
    }
}

/// A libcurl failure outside a transfer (setup).
struct CurlError: Error, CustomStringConvertible {
    var code: CURLcode
    var detail: String
    var description: String { "libcurl: \(detail): \(String(cString: ee_curl_easy_strerror(code)))" }
}
