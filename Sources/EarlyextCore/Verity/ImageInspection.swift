import CShim
import Glibc

/// A refusal, thrown. Inspection throws these for what is wrong with the image itself, and
/// `EarlyextError` for what went wrong around it (an unreadable file, an I/O error).
struct RefusalError: Error {
    var refusal: Refusal
    init(_ refusal: Refusal) { self.refusal = refusal }
}

/// What an image carries, found by reading it and its sidecars, before anything is verified.
/// Each piece (hash tree, root hash, signature) comes from exactly one place.
final class InspectedImage {
    let format: Verification.Format
    let image: ImageReader
    /// The filesystem: the whole file, or the DDI's data partition.
    let data: ImageRegion
    let designator: Designator?
    /// Present when the image has verity data and a root hash.
    let verity: (layout: VerityLayout, parameters: VerityParameters, rootHash: [UInt8])?
    /// DER PKCS#7, and where it came from ("NAME.roothash.p7s", "usr-verity-sig partition 3").
    let signature: (bytes: [UInt8], source: String)?
    /// The `certificateFingerprint` a signature partition claims.
    let claimedFingerprint: String?
    /// Said about the image, not refusals.
    let notes: [String]

    init(format: Verification.Format, image: ImageReader, data: ImageRegion, designator: Designator?,
         verity: (layout: VerityLayout, parameters: VerityParameters, rootHash: [UInt8])?,
         signature: (bytes: [UInt8], source: String)?, claimedFingerprint: String?, notes: [String]) {
        self.format = format
        self.image = image
        self.data = data
        self.designator = designator
        self.verity = verity
        self.signature = signature
        self.claimedFingerprint = claimedFingerprint
        self.notes = notes
    }

    /// Sidecar limits.
    static let maximumRootHashFileBytes = 1024

    /// Reads `path` (an image file or block device) and, for files ending in `.raw`, the sidecars
    /// beside it: `NAME.roothash`, `NAME.roothash.p7s`, `NAME.verity`.
    ///
    /// - Throws: `RefusalError` (malformed, ambiguous, wrong architecture, root hash mismatch
    ///   between two sources) or `EarlyextError` (cannot open or read).
    static func inspect(path: String, architecture: String) throws -> InspectedImage {
        let image: ImageReader
        do { image = try ImageReader.open(path) } catch {
            throw EarlyextError(.invalidImage, "\(path): cannot open", errno: error)
        }
        let sidecars = try Sidecars.read(imagePath: path)
        let table: GPTTable?
        do { table = try GPTTable.probe(image) } catch let error as GPTError {
            throw RefusalError(.malformed("GPT: \(error)"))
        } catch let error as ImageFault {
            throw RefusalError(.malformed("GPT: \(error)"))
        } catch {
            throw EarlyextError.wrapping(error, .invalidImage, "\(path): cannot read")
        }
        do {
            if let table {
                return try inspectDDI(image, table: table, sidecars: sidecars, architecture: architecture)
            }
            return try inspectPlain(image, sidecars: sidecars)
        } catch let error as VerityError {
            throw RefusalError(error.mismatch ? .rootHashMismatch(error.description) : .malformed(error.description))
        } catch let error as ImageFault {
            throw RefusalError(.malformed(error.description))
        } catch let error as Errno {
            throw EarlyextError(.invalidImage, "\(path): cannot read", errno: error)
        }
    }

    private static func inspectPlain(_ image: ImageReader, sidecars: Sidecars) throws -> InspectedImage {
        let data = ImageRegion.whole(image)
        let p7s = sidecars.signature.map { (bytes: $0, source: sidecars.name(".roothash.p7s")) }
        switch (sidecars.rootHash, sidecars.hashTree) {
        case (nil, nil):
            if p7s != nil { throw RefusalError(.malformed("\(sidecars.name(".roothash.p7s")) without \(sidecars.name(".roothash"))")) }
            return InspectedImage(format: .plain, image: image, data: data, designator: nil, verity: nil,
                                  signature: nil, claimedFingerprint: nil, notes: [])
        case (nil, .some):
            throw RefusalError(.malformed("\(sidecars.name(".verity")) without \(sidecars.name(".roothash")): no root hash"))
        case (.some, nil):
            throw RefusalError(.malformed("\(sidecars.name(".roothash")) without \(sidecars.name(".verity")): no hash tree"))
        case (.some(let rootHash), .some(let hashTree)):
            let layout = VerityLayout(data: data, hash: .whole(hashTree))
            let parameters = try layout.parameters()
            try checkRootHashLength(rootHash, parameters)
            return InspectedImage(format: .sidecar, image: image, data: data, designator: nil,
                                  verity: (layout, parameters, rootHash), signature: p7s,
                                  claimedFingerprint: nil, notes: [])
        }
    }

    private static func checkRootHashLength(_ rootHash: [UInt8], _ parameters: VerityParameters) throws {
        guard rootHash.count == parameters.digestSize else {
            throw VerityError("the root hash has \(rootHash.count) bytes; \(parameters.algorithm) digests have \(parameters.digestSize)")
        }
    }

    private static func inspectDDI(_ image: ImageReader, table: GPTTable, sidecars: Sidecars,
                                   architecture: String) throws -> InspectedImage {
        let usable = table.partitions.filter { !$0.noAuto }
        guard let types = DiscoverableTypes.byArchitecture[architecture] else {
            throw RefusalError(.wrongArchitecture("no partition types are defined for the host architecture \(architecture)"))
        }
        func find(_ type: GUID, _ what: String) throws -> GPTPartition? {
            let matches = usable.filter { $0.type == type }
            guard matches.count <= 1 else {
                throw RefusalError(.malformed("more than one \(what) partition (\(matches.map { String($0.number) }.joined(separator: ", ")))"))
            }
            return matches.first
        }
        let root = try find(types.root, "root")
        let usr = try find(types.usr, "usr")
        let designator: Designator
        switch (root, usr) {
        case (.some, .some):
            throw RefusalError(.ambiguous("both a root and a usr partition for \(architecture); an extension has one"))
        case (.some, nil): designator = .root
        case (nil, .some): designator = .usr
        case (nil, nil):
            let others = usable.compactMap { DiscoverableTypes.identify($0.type) }.filter { $0.role == .data }
            if let other = others.first {
                throw RefusalError(.wrongArchitecture("the image has a \(other.designator.rawValue) partition for \(other.architecture), this host is \(architecture)"))
            }
            throw RefusalError(.malformed("a GPT image without a root or usr partition for \(architecture)"))
        }
        let dataPartition = (root ?? usr)!
        let (_, verityType, signatureType) = types.types(designator)
        let verityPartition = try find(verityType, "\(designator.rawValue)-verity")
        let signaturePartition = try find(signatureType, "\(designator.rawValue)-verity-sig")
        let name = designator.rawValue

        // Each piece from one place only.
        if sidecars.hashTree != nil {
            throw RefusalError(.ambiguous("a DDI with \(sidecars.name(".verity")) beside it: the hash tree belongs in the \(name)-verity partition"))
        }
        if signaturePartition != nil, sidecars.rootHash != nil || sidecars.signature != nil {
            let which = sidecars.rootHash != nil ? sidecars.name(".roothash") : sidecars.name(".roothash.p7s")
            throw RefusalError(.ambiguous("a DDI with a \(name)-verity-sig partition and \(which) beside it: two sources for the root hash"))
        }
        if verityPartition == nil, sidecars.rootHash != nil || sidecars.signature != nil {
            throw RefusalError(.ambiguous("a DDI without a \(name)-verity partition, with sidecar files beside it"))
        }
        if signaturePartition != nil, verityPartition == nil {
            throw RefusalError(.malformed("a \(name)-verity-sig partition without a \(name)-verity partition"))
        }

        let data = ImageRegion(reader: image, offset: dataPartition.offset, size: dataPartition.size)
        guard let verityPartition else {
            return InspectedImage(format: .ddi, image: image, data: data, designator: designator, verity: nil,
                                  signature: nil, claimedFingerprint: nil, notes: [])
        }
        let layout = VerityLayout(data: data, hash: ImageRegion(reader: image, offset: verityPartition.offset, size: verityPartition.size))
        let parameters = try layout.parameters()

        var rootHash: [UInt8]
        var signature: (bytes: [UInt8], source: String)?
        var claimed: String?
        if let signaturePartition {
            guard signaturePartition.size <= SignatureLimits.maximumPartitionBytes else {
                throw VerityError("the \(name)-verity-sig partition is \(signaturePartition.size) bytes, more than \(SignatureLimits.maximumPartitionBytes)")
            }
            let bytes = try image.read(offset: signaturePartition.offset, count: Int(signaturePartition.size))
            let parsed = try SignaturePartition.parse(bytes)
            rootHash = parsed.rootHash
            signature = (parsed.signature, "\(name)-verity-sig partition \(signaturePartition.number)")
            claimed = parsed.certificateFingerprint
        } else if let sidecarHash = sidecars.rootHash {
            rootHash = sidecarHash
            signature = sidecars.signature.map { ($0, sidecars.name(".roothash.p7s")) }
        } else {
            // Verity data, but nothing says what the root hash is: it cannot be used.
            return InspectedImage(format: .ddi, image: image, data: data, designator: designator, verity: nil,
                                  signature: nil, claimedFingerprint: nil,
                                  notes: ["the \(name)-verity partition is not used: there is no root hash (no \(name)-verity-sig partition, no \(sidecars.name(".roothash")))"])
        }
        try checkRootHashLength(rootHash, parameters)
        return InspectedImage(format: .ddi, image: image, data: data, designator: designator,
                              verity: (layout, parameters, rootHash), signature: signature,
                              claimedFingerprint: claimed, notes: [])
    }
}

/// The sidecar files of an image `DIR/NAME.raw`: `DIR/NAME.roothash` (hex, one line),
/// `DIR/NAME.roothash.p7s` (DER PKCS#7) and `DIR/NAME.verity` (the hash device). Symlinks are
/// not followed; a sidecar that is a symlink is refused.
struct Sidecars {
    /// "DIR/NAME" (the image path without `.raw`), or nil when the image has no `.raw` name.
    var base: String?
    var rootHash: [UInt8]?
    var signature: [UInt8]?
    var hashTree: ImageReader?

    func name(_ suffix: String) -> String {
        let full = (base ?? "IMAGE") + suffix
        return full.split(separator: "/").last.map(String.init) ?? full
    }

    static func read(imagePath: String) throws -> Sidecars {
        guard imagePath.hasSuffix(".raw") else { return Sidecars(base: nil) }
        let base = String(imagePath.dropLast(4))
        var sidecars = Sidecars(base: base)
        let slash = base.lastIndex(of: "/")
        let directory = slash.map { String(base[..<$0]) } ?? "."
        let stem = slash.map { String(base[base.index(after: $0)...]) } ?? base
        let dirFD: FileDescriptor
        do { dirFD = try openPath(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY) } catch {
            throw EarlyextError(.invalidImage, "\(directory): cannot open", errno: error)
        }
        func open(_ suffix: String) throws -> FileDescriptor? {
            do {
                return try openAt(dirFD.rawValue, stem + suffix, O_RDONLY | O_NOCTTY | O_NOFOLLOW)
            } catch where error == .noSuchFile {
                return nil
            } catch where error == .tooManyLinks {
                throw RefusalError(.malformed("\(stem + suffix) is a symlink; sidecar files must be regular files"))
            } catch {
                throw EarlyextError(.invalidImage, "\(base + suffix): cannot open", errno: error)
            }
        }
        func readSmall(_ fd: borrowing FileDescriptor, _ suffix: String, limit: Int) throws -> [UInt8] {
            do { return try readAll(fd.rawValue, limit: limit) } catch where error.rawValue == EFBIG {
                throw RefusalError(.malformed("\(stem + suffix) is larger than \(limit) bytes"))
            } catch {
                throw EarlyextError(.invalidImage, "\(base + suffix): cannot read", errno: error)
            }
        }
        if let fd = try open(".roothash") {
            let bytes = try readSmall(fd, ".roothash", limit: InspectedImage.maximumRootHashFileBytes)
            // One line of hex; a trailing newline (and spaces) are fine.
            var text = Substring(String(decoding: bytes, as: UTF8.self))
            while let last = text.last, last == "\n" || last == " " || last == "\t" || last == "\r" { text = text.dropLast() }
            guard let hash = parseHex(text), hash.count >= 16 else {
                throw RefusalError(.malformed("\(stem).roothash is not a hex root hash"))
            }
            sidecars.rootHash = hash
        }
        if let fd = try open(".roothash.p7s") {
            let bytes = try readSmall(fd, ".roothash.p7s", limit: SignatureLimits.maximumSignatureBytes)
            guard !bytes.isEmpty else { throw RefusalError(.badSignature("\(stem).roothash.p7s is empty")) }
            sidecars.signature = bytes
        }
        if let fd = try open(".verity") {
            do { sidecars.hashTree = try ImageReader(descriptor: fd, path: base + ".verity") } catch {
                throw RefusalError(.malformed("\(stem).verity is not a regular file or block device"))
            }
        }
        return sidecars
    }
}
