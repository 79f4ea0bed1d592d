import CShim
import Glibc

/// Where earlyext works: the root it extends and where it keeps its state.
public struct Environment: Sendable {
    public var root: String
    public var stateDir: String

    public init(root: String, stateDir: String) {
        self.root = root == "/" ? "" : (root.hasSuffix("/") ? String(root.dropLast()) : root)
        self.stateDir = stateDir
    }

    /// `--root` default: `/sysroot` in the initrd (where `/etc/initrd-release` exists), else `/`.
    public static func defaultRoot() -> String {
        access("/etc/initrd-release", F_OK) == 0 ? "/sysroot" : "/"
    }

    /// The host path of a hierarchy as named: ROOT + "/usr".
    public func path(_ hierarchy: String) -> String { root + hierarchy }

    /// The host path of a hierarchy with symlinks resolved inside the root (ROOT/opt may be a link
    /// to var/opt). A missing hierarchy other than /usr is created, mode 0755, as systemd-sysext
    /// does; a root without /usr is an error.
    public func resolve(_ hierarchy: String) throws -> String {
        do {
            return try resolveInsideRoot(root: rootForDisplay, path: hierarchy)
        } catch let error as EarlyextError where error.errno == .noSuchFile && hierarchy != "/usr" {
            do { try makeDirectories(path(hierarchy), mode: 0o755) } catch {
                throw EarlyextError(.mount, "\(path(hierarchy)): cannot create the hierarchy", errno: error)
            }
            return try resolveInsideRoot(root: rootForDisplay, path: hierarchy)
        } catch let error as EarlyextError {
            throw EarlyextError(.mount, "\(path(hierarchy)): the base hierarchy is missing or unusable: \(error.message)",
                                errno: error.errno)
        }
    }
    public var rootForDisplay: String { root.isEmpty ? "/" : root }
}

/// What the discover and plan stages produced, plus the opened images the mount stage reuses.
public struct Survey {
    public var host: Host
    public var discovery: DiscoveryResult
    public var plan: Plan
    public var opened: [String: OpenedExtension]
    public var timings: [(String, Double)]
    /// The fingerprint of the inputs, when there is one (see `Engine.inputs`).
    public var inputs: [String]?
    /// What the fetch stage did, if it ran.
    public var fetched: FetchReport?
    /// How each opened image was verified.
    public var verified: [String: VerifiedExtension] = [:]
}

/// The pipeline of `design.md`: discover → plan → (fetch, verify: later) → mount → publish.
public struct Engine {
    public var environment: Environment
    public var log: Log
    /// Extensions that must merge (`Required=yes` in a selection file). If one cannot, `merge`
    /// fails with `EarlyextError.Code.requiredFailed`, after merging the rest.
    public var required: Set<String> = []
    /// The selection files, read once by the configuration (nil if they could not be read: the
    /// fetch stage then reads them itself and reports why).
    public var selections: SelectionSet?
    /// How to download (`[Fetch]` of earlyext.conf, `--offline`).
    public var fetchOptions = FetchOptions()
    /// What verification every image needs (`[Policy] Require=` of earlyext.conf).
    public var policy = PolicyConfig()
    /// Stricter per-image policies (`Policy=` in selection files), by extension name.
    public var imagePolicies: [String: RequiredVerification] = [:]
    /// Expected SHA-256 of local images (`SHA256=` in selection files), by extension name.
    public var expectedDigests: [String: String] = [:]
    /// Trusted certificates for signed verity (`/etc/verity.d`, `/usr/lib/verity.d`).
    public var trust: TrustStore = .empty
    /// `--no-reload`: neither reload the service manager nor restart units, whatever the
    /// extensions ask (EXTENSION_RELOAD_MANAGER, EXTENSION_RESTART_UNITS).
    public var noReload = false

    public init(environment: Environment, log: Log) {
        self.environment = environment
        self.log = log
    }

    // MARK: discover + plan

    /// What the discover stage found.
    public struct Discovered {
        public var host: Host
        public var discovery: DiscoveryResult
        var timings: [(String, Double)]
        var startedAt: Double
    }

    /// Reads the host's identity and lists the candidates. Opens no image.
    public func discover() throws -> Discovered {
        let started = monotonicMilliseconds()
        let host = try Host.detect(root: environment.rootForDisplay)
        let discovery = try discoverExtensions(root: environment.rootForDisplay)
        for skipped in discovery.skipped { log.warning("\(skipped.entryPath): \(skipped.reason)") }
        return Discovered(host: host, discovery: discovery,
                          timings: [("discover", monotonicMilliseconds() - started)], startedAt: started)
    }

    /// Discovers the candidates, opens each one read-only and detached to read its release file
    /// (nothing becomes visible), and plans. The opened images are kept for the mount stage.
    public func survey() throws -> Survey { survey(try discover()) }

    func survey(_ discovered: Discovered, fetched: FetchReport? = nil) -> Survey {
        var timings = discovered.timings
        var started = monotonicMilliseconds()
        func lap(_ stage: String) {
            let now = monotonicMilliseconds()
            timings.append((stage, now - started))
            started = now
        }
        let candidates = discovered.discovery.candidates
        var justFetched: [String: String] = [:]
        for result in fetched?.results ?? [] { justFetched[result.name] = result.sha256 }
        for candidate in candidates {
            let effective = RequiredVerification.effective(global: policy.require, image: imagePolicies[candidate.name])
            if effective.ignoredLooser {
                log.warning("\(candidate.name): Policy= in its selection file is looser than [Policy] Require=\(policy.require.rawValue); the stricter applies")
            }
        }
        // Opening an image is mostly waiting for the loop device's reads (superblock, directory
        // and inode blocks): eight threads overlap those waits, even on one or two CPUs (a
        // 64-image merge on 2 CPUs: 24.3 ms with 4 threads, 20.8 ms with 8; docs/merge-engine.md).
        let results = concurrentMap(candidates, threads: Self.openingThreads) { candidate in
            self.inspect(candidate, architecture: discovered.host.architecture, digest:
                justFetched[candidate.name].map(DigestCheck.verifiedAtFetch)
                ?? self.expectedDigests[candidate.name].map { DigestCheck.verify(expected: $0) } ?? .none)
        }
        var opened: [String: OpenedExtension] = [:]
        var verifications: [String: VerifiedExtension] = [:]
        var inspections: [String: Result<Inspection, EarlyextError>] = [:]
        for (candidate, result) in zip(candidates, results) {
            inspections[candidate.name] = result.map(\.inspection)
            if case .success(let success) = result {
                opened[candidate.name] = success.image.opened
                verifications[candidate.name] = success.image
            }
        }
        lap("inspect")
        let plan = makePlan(host: discovered.host, discovery: discovered.discovery, inspections: inspections)
        lap("plan")
        return Survey(host: discovered.host, discovery: discovered.discovery, plan: plan, opened: opened,
                      timings: timings, inputs: inputs(discovered), fetched: fetched, verified: verifications)
    }

    /// verify + open: one candidate, read-only and detached, through verification under its
    /// policy (docs/verity.md), and what the plan needs from it. A refusal is a skip with its reason.
    /// How many images are opened at once.
    static let openingThreads = 8

    func inspect(_ candidate: Candidate, architecture: String,
                 digest: DigestCheck) -> Result<(image: VerifiedExtension, inspection: Inspection), EarlyextError> {
        let required = RequiredVerification.effective(global: policy.require, image: imagePolicies[candidate.name]).policy
        do {
            let verified = try OpenedExtension.openVerified(candidate, policy: required, trust: trust,
                                                            architecture: architecture, digest: digest)
            let image = verified.opened
            image.usrRoot = verified.designator == .usr
            let root = try image.mount.openDirectory("")
            let inspection = Inspection(
                release: readExtensionRelease(imageRoot: root.rawValue, name: candidate.name, usrRoot: image.usrRoot),
                hierarchies: hierarchiesPresent(imageRoot: root.rawValue, usrRoot: image.usrRoot))
            return .success((verified, inspection))
        } catch let refusal as VerificationRefusal {
            return .failure(EarlyextError(.invalidImage, "refused: \(refusal.refusal) (policy \(refusal.policy.rawValue))"))
        } catch {
            // The plan's reason is shown next to the entry path: don't name it twice.
            var failure = EarlyextError.wrapping(error, .invalidImage, candidate.entryPath)
            if failure.message.hasPrefix(candidate.entryPath + ": ") {
                failure.message.removeFirst(candidate.entryPath.count + 2)
            }
            return .failure(failure)
        }
    }

    /// A fingerprint of everything a merge depends on: the host's identity, and each entry's
    /// identity (device, inode, size, mtime of the image file). nil when an entry can't be
    /// fingerprinted cheaply (a directory extension: its files may change without its mtime).
    func inputs(_ discovered: Discovered) -> [String]? {
        let host = discovered.host
        var lines = ["host \(host.scope.rawValue) \(host.architecture) " +
                     host.osRelease.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")]
        for candidate in discovered.discovery.candidates {
            guard candidate.kind != .directory, let st = try? statAt(AT_FDCWD, candidate.resolvedPath) else { return nil }
            lines.append("\(candidate.name) \(candidate.entryPath) \(candidate.resolvedPath) \(st.st_dev):\(st.st_ino) " +
                         "\(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
        }
        for mask in discovered.discovery.masked { lines.append("masked \(mask.name) \(mask.entryPath)") }
        return lines
    }

    // MARK: mount + publish

    /// merge and refresh: builds the new merge completely, detached, then swaps it in per
    /// hierarchy. Before the swap nothing is visible; a failure releases every loop device and
    /// detached mount (their descriptors close).
    public func merge() throws -> StateRecord {
        // fetch: unless offline, what selections and transfers name and is missing locally.
        let fetched = fetchOptions.offline ? nil : try fetch(update: false)
        let discovered = try discover()
        let begin = discovered.startedAt
        let previous = StateRecord.load(from: environment.stateDir)
        if let previous, !previous.hierarchies.isEmpty, fetched?.results.isEmpty ?? true,
           let inputs = inputs(discovered), previous.inputs == inputs,
           try previous.hierarchies.allSatisfy(isLive) {
            log.info("nothing changed since \(previous.mergedAt): the merge stays as it is")
            return previous
        }
        var survey = survey(discovered, fetched: fetched)
        if let fetched { survey.timings.insert(("fetch", fetched.milliseconds), at: 0) }
        for entry in survey.plan.entries where entry.verdict == .skip {
            log.warning("\(entry.candidate?.entryPath ?? entry.name): \(entry.reason)")
        }
        do {
            return try build(survey: &survey, previous: previous, begin: begin)
        } catch {
            recordFailure(error, survey: survey, previous: previous)
            throw error
        }
    }

    /// A failed merge still leaves a record, so that `status` (also in the booted system) says why:
    /// with no merge in place, a record of the attempt; with one, that record plus `last_error`.
    func recordFailure(_ error: Error, survey: Survey, previous: StateRecord?) {
        let message: (String, JSON) = ("last_error", .string("\(currentTimestamp()): \(error)"))
        var record = StateRecord.load(from: environment.stateDir) ?? previous
            ?? StateRecord(root: environment.rootForDisplay, mergedAt: currentTimestamp(), hierarchies: [], survey: survey)
        record.details.removeAll { $0.0 == "last_error" }
        record.details.append(message)
        try? record.save(to: environment.stateDir)
    }

    /// mount and publish, from a survey.
    func build(survey: inout Survey, previous: StateRecord?, begin: Double) throws -> StateRecord {
        var started = monotonicMilliseconds()

        // Build every overlay before touching anything. The layers sit on a private stage while
        // overlayfs takes them; the stage goes as soon as the overlays exist (or anything fails).
        var built: [(hierarchy: String, target: String, overlay: DetachedMount, base: BaseHierarchy)] = []
        let mergedNames = survey.plan.toMerge.map(\.name)
        var modules: [String: KernelModules.Contribution] = [:]
        if !survey.plan.toMerge.isEmpty {
            let stage = try LayerStage(stateDir: environment.stateDir)
            defer { stage.close() }
            for hierarchy in extensionHierarchies {
                let layers = survey.plan.layers(for: hierarchy)
                if layers.isEmpty { continue }
                let target = try environment.resolve(hierarchy)
                let base = try BaseHierarchy.locate(hierarchy, target: target, environment: environment, previous: previous)
                let overlay = try buildOverlay(hierarchy, layers: layers, listing: mergedNames, opened: survey.opened,
                                               base: base, stage: stage, modules: &modules)
                built.append((hierarchy, target, overlay, base))
            }
        }
        survey.timings.append(("mount", monotonicMilliseconds() - started))
        started = monotonicMilliseconds()

        // Publish: each hierarchy flips atomically.
        // Publish: each hierarchy flips atomically. If a later one fails, the record still says
        // what is in place, so that status, refresh and unmerge see the truth.
        var hierarchies: [StateRecord.Hierarchy] = []
        func record() -> StateRecord {
            StateRecord(root: environment.rootForDisplay, mergedAt: currentTimestamp(),
                        hierarchies: hierarchies, survey: survey, modules: modules)
        }
        do {
            for item in built {
                try item.base.stash(in: environment.stateDir)
                let outcome: Publisher.Outcome
                do {
                    outcome = try Publisher.publish(item.overlay, at: item.target, log: log)
                } catch {
                    if item.base.forStash != nil {  // stashed just now: take it back
                        BaseHierarchy.dropStash(BaseHierarchy.stashPath(item.hierarchy, stateDir: environment.stateDir))
                    }
                    throw error
                }
                hierarchies.append(StateRecord.Hierarchy(
                    path: item.hierarchy, target: String(item.target.dropFirst(environment.root.count)), extensions: mergedNames,
                    baseWasMountPoint: item.base.wasMountPoint, published: outcome))
            }
            // A hierarchy merged before and empty now goes back to its base.
            for old in previous?.hierarchies ?? [] where !built.contains(where: { $0.hierarchy == old.path }) {
                try unmergeHierarchy(old)
            }
        } catch {
            let kept = previous?.hierarchies.filter { old in !hierarchies.contains { $0.path == old.path } } ?? []
            if !hierarchies.isEmpty || !kept.isEmpty {
                hierarchies += kept
                try? record().save(to: environment.stateDir)
            }
            throw error
        }
        survey.timings.append(("publish", monotonicMilliseconds() - started))
        survey.timings.append(("total", monotonicMilliseconds() - begin))

        // Saved even when nothing merged: the booted system's status shows what was refused.
        let record = record()
        try record.save(to: environment.stateDir)
        Coexistence.install(environment: environment, log: log)
        let merged = Set(hierarchies.flatMap(\.extensions))
        let missing = required.subtracting(merged).sorted(by: { compareVersions($0, $1) < 0 })
        if missing.isEmpty {
            for h in hierarchies {
                log.info("merged \(h.extensions.count) extension(s) into \(h.hostPath(in: environment)): \(h.extensions.joined(separator: " "))")
            }
            if hierarchies.isEmpty { log.info("nothing to merge") }
        }
        // What is merged now is in place, whatever is missing: the manager must see it.
        tellServiceManager(new: record.managedExtensions, previous: previous?.managedExtensions ?? [])
        if !missing.isEmpty {
            let reasons = missing.map { name in
                "\(name) (\(survey.plan.entries.first { $0.name == name }?.reason ?? "not found"))"
            }
            throw EarlyextError(.requiredFailed, "required extension(s) not merged: " + reasons.joined(separator: ", "))
        }
        return record
    }

    /// What the extensions ask of the service manager, for the change from `previous` to `new`
    /// (docs/runtime.md): done at runtime with ROOT = /, logged once otherwise.
    func tellServiceManager(new: [ManagerActions.Extension], previous: [ManagerActions.Extension]) {
        let plan = ManagerActions.plan(new: new, previous: previous, inInitrd: Coexistence.runningInInitrd,
                                       rootIsSlash: environment.root.isEmpty, noReload: noReload)
        ManagerActions.perform(plan, log: log, systemctl: plan.situation == .runtime ? ManagerActions.systemctl() : nil)
    }

    /// `layers` are the extensions with content in this hierarchy; `listing` is every merged
    /// extension, which systemd records in each hierarchy's metadata.
    func buildOverlay(_ hierarchy: String, layers: [PlanEntry], listing: [String], opened: [String: OpenedExtension],
                      base: BaseHierarchy, stage: LayerStage,
                      modules: inout [String: KernelModules.Contribution]) throws -> DetachedMount {
        let baseDirectory = try base.openDirectory()
        let metadata = try MetadataLayer(extensions: listing, like: baseDirectory)
        var layerPaths: [String] = []
        var layerDescriptors: [OwnedDescriptor] = []
        var names: [String] = []
        for entry in layers.reversed() {  // highest version on top
            guard let image = opened[entry.name], let subdirectory = image.directory(for: hierarchy) else { continue }
            do {
                layerDescriptors.append(OwnedDescriptor(try image.mount.openDirectory(subdirectory)))
            } catch {
                throw EarlyextError(.mount, "\(entry.name): cannot open \(hierarchy) in the image", errno: error)
            }
            layerPaths.append(try stage.place(image.mount, as: entry.name) + (subdirectory.isEmpty ? "" : "/" + subdirectory))
            names.append(entry.name)
        }
        let basePath = try stage.place(base.forOverlay, as: "base" + hierarchy.replacingEvery("/", with: "-"))
        let metadataPath = try stage.place(metadata.mount, as: "metadata" + hierarchy.replacingEvery("/", with: "-"))
        let kernel = KernelModules.runningKernel()
        if hierarchy == "/usr" {
            try generateEarlyBootFiles(names: names, layers: layerDescriptors, layerPaths: layerPaths, basePath: basePath,
                                       metadata: metadata, metadataPath: metadataPath, kernel: kernel, modules: &modules)
        }
        let overlay = try OverlayBuilder.build(hierarchy: hierarchy, metadata: metadata, metadataPath: metadataPath,
                                               extensionLayers: layerPaths, base: basePath)
        let shipped = modules.values.flatMap(\.modules)
        if hierarchy == "/usr", !shipped.isEmpty {
            for name in KernelModules.unresolved(shipped, overlay: overlay, kernel: kernel) {
                log.warning("kernel module \(name): shipped by an extension, but libkmod cannot resolve it in the merged tree")
            }
        }
        return overlay
    }

    /// What the merged /usr needs beyond the layers themselves: fresh kernel module indexes and
    /// a fresh hwdb.bin, generated over a writable staging overlay into the metadata layer. A
    /// failure here is reported and the merge goes on: the files still merge, only the index is stale.
    func generateEarlyBootFiles(names: [String], layers: [OwnedDescriptor], layerPaths: [String], basePath: String,
                                metadata: MetadataLayer, metadataPath: String, kernel: String,
                                modules: inout [String: KernelModules.Contribution]) throws {
        var hwdbShippers: [String] = []
        for (name, layer) in zip(names, layers) {
            let contribution = KernelModules.scan(usrLayer: layer.rawValue, kernel: kernel)
            if !contribution.isEmpty { modules[name] = contribution }
            if !contribution.otherKernels.isEmpty {
                log.info("\(name): modules for kernel \(contribution.otherKernels.joined(separator: ", ")) left alone (running \(kernel))")
            }
            if !HardwareDatabase.shipped(usrLayer: layer.rawValue).isEmpty { hwdbShippers.append(name) }
        }
        let moduleShippers = modules.filter { !$0.value.modules.isEmpty }.keys.sorted()
        guard !moduleShippers.isEmpty || !hwdbShippers.isEmpty else { return }
        let staging = try OverlayBuilder.staging(hierarchy: "/usr", metadataPath: metadataPath,
                                                 extensionLayers: layerPaths, base: basePath)
        if !moduleShippers.isEmpty {
            do {
                for complaint in try KernelModules.generateIndexes(staging: staging, kernel: kernel, scratch: environment.stateDir) {
                    log.warning("kernel module index: \(complaint)")
                }
                log.info("kernel module indexes regenerated for \(kernel): modules from \(moduleShippers.joined(separator: " "))")
            } catch {
                log.warning("\(error); modules from \(moduleShippers.joined(separator: " ")) may not load by name")
            }
        }
        if !hwdbShippers.isEmpty {
            do {
                try HardwareDatabase.generate(staging: staging, root: environment.root, metadata: metadata,
                                              scratch: environment.stateDir, log: log)
                log.info("hwdb.bin regenerated: entries from \(hwdbShippers.joined(separator: " "))")
            } catch {
                log.warning("\(error); hwdb entries from \(hwdbShippers.joined(separator: " ")) are not seen")
            }
        }
    }

    // MARK: unmerge

    /// Puts the base back at every merged hierarchy and forgets the merge.
    public func unmerge() throws {
        guard let previous = StateRecord.load(from: environment.stateDir), !previous.hierarchies.isEmpty else {
            StateRecord.remove(from: environment.stateDir)
            log.info("nothing is merged under \(environment.rootForDisplay)")
            return
        }
        for hierarchy in previous.hierarchies { try unmergeHierarchy(hierarchy) }
        StateRecord.remove(from: environment.stateDir)
        log.info("unmerged \(previous.hierarchies.map(\.path).joined(separator: " "))")
        // Every extension went away: their units are restarted, or stopped where their files are gone.
        tellServiceManager(new: [], previous: previous.managedExtensions)
    }

    func unmergeHierarchy(_ hierarchy: StateRecord.Hierarchy) throws {
        let target = hierarchy.hostPath(in: environment)
        let stash = BaseHierarchy.stashPath(hierarchy.path, stateDir: environment.stateDir)
        let table = try MountTable.current()
        if table.top(at: target).map(isOurMerge) ?? false {
            if hierarchy.baseWasMountPoint {
                // Bring the base back beneath the merge, then detach the merge: no gap.
                let base: DetachedMount
                do { base = try DetachedMount.clone(stash) } catch {
                    throw EarlyextError(.publish, "\(target): the base is gone from \(stash)", errno: error)
                }
                _ = try Publisher.publish(base, at: target, log: log)
            } else {
                try Publisher.detachTop(at: target)
            }
        }
        BaseHierarchy.dropStash(stash)
    }

    /// Is the recorded merge of this hierarchy still the one mounted?
    func isLive(_ hierarchy: StateRecord.Hierarchy) throws -> Bool {
        try MountTable.current().top(at: hierarchy.hostPath(in: environment)).map(isOurMerge) ?? false
    }

    /// A mount is a sysext merge if its `.systemd-sysext/dev` names its own device (systemd's rule).
    func isOurMerge(_ entry: MountEntry) -> Bool {
        guard entry.fstype == "overlay",
              let text = try? readTextFile(at: AT_FDCWD, entry.target + "/" + MetadataLayer.directory + "/dev", limit: 64)
        else { return false }
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "\n" }).compactMap { UInt32($0) }
        guard parts.count == 2 else { return false }
        return ee_makedev(parts[0], parts[1]) == entry.device
    }
}
