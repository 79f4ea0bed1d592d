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

    /// The host path of a hierarchy: ROOT + "/usr".
    public func path(_ hierarchy: String) -> String { root + hierarchy }
    public var rootForDisplay: String { root.isEmpty ? "/" : root }
}

/// What the discover and plan stages produced, plus the opened images the mount stage reuses.
public struct Survey {
    public var host: Host
    public var discovery: DiscoveryResult
    public var plan: Plan
    public var opened: [String: OpenedExtension]
    public var timings: [(String, Double)]
}

/// The pipeline of `design.md`: discover → plan → (fetch, verify: later) → mount → publish.
public struct Engine {
    public var environment: Environment
    public var log: Log
    /// Extensions that must merge (`Required=yes` in a selection file). If one cannot, `merge`
    /// fails with `EarlyextError.Code.requiredFailed`, after merging the rest.
    public var required: Set<String> = []

    public init(environment: Environment, log: Log) {
        self.environment = environment
        self.log = log
    }

    // MARK: discover + plan

    /// Discovers the candidates, opens each one read-only and detached to read its release file
    /// (nothing becomes visible), and plans. The opened images are kept for the mount stage.
    public func survey() throws -> Survey {
        var timings: [(String, Double)] = []
        var started = monotonicMilliseconds()
        func lap(_ stage: String) {
            let now = monotonicMilliseconds()
            timings.append((stage, now - started))
            started = now
        }
        let host = try Host.detect(root: environment.rootForDisplay)
        let discovery = try discoverExtensions(root: environment.rootForDisplay)
        for skipped in discovery.skipped { log.warning("\(skipped.entryPath): \(skipped.reason)") }
        lap("discover")

        var opened: [String: OpenedExtension] = [:]
        var inspections: [String: Result<Inspection, EarlyextError>] = [:]
        for candidate in discovery.candidates {
            do {
                let image = try OpenedExtension.open(candidate)
                let root = try image.mount.openDirectory("")
                let inspection = Inspection(release: readExtensionRelease(imageRoot: root.rawValue, name: candidate.name),
                                            hierarchies: hierarchiesPresent(imageRoot: root.rawValue))
                inspections[candidate.name] = .success(inspection)
                opened[candidate.name] = image
            } catch {
                // The plan's reason is shown next to the entry path: don't name it twice.
                var failure = EarlyextError.wrapping(error, .invalidImage, candidate.entryPath)
                if failure.message.hasPrefix(candidate.entryPath + ": ") {
                    failure.message.removeFirst(candidate.entryPath.count + 2)
                }
                inspections[candidate.name] = .failure(failure)
            }
        }
        lap("inspect")
        let plan = makePlan(host: host, discovery: discovery, inspections: inspections)
        lap("plan")
        return Survey(host: host, discovery: discovery, plan: plan, opened: opened, timings: timings)
    }

    // MARK: mount + publish

    /// merge and refresh: builds the new merge completely, detached, then swaps it in per
    /// hierarchy. Before the swap nothing is visible; a failure releases every loop device and
    /// detached mount (their descriptors close).
    public func merge() throws -> StateRecord {
        let begin = monotonicMilliseconds()
        var survey = try survey()
        for entry in survey.plan.entries where entry.verdict == .skip {
            log.warning("\(entry.candidate?.entryPath ?? entry.name): \(entry.reason)")
        }
        let previous = StateRecord.load(from: environment.stateDir)
        var started = monotonicMilliseconds()

        // Build every overlay before touching anything.
        var built: [(hierarchy: String, overlay: DetachedMount, base: BaseHierarchy, layers: [PlanEntry])] = []
        for hierarchy in extensionHierarchies {
            let layers = survey.plan.layers(for: hierarchy)
            if layers.isEmpty { continue }
            let base = try BaseHierarchy.locate(hierarchy, environment: environment, previous: previous)
            let overlay = try buildOverlay(hierarchy, layers: layers, opened: survey.opened, base: base)
            built.append((hierarchy, overlay, base, layers))
        }
        survey.timings.append(("mount", monotonicMilliseconds() - started))
        started = monotonicMilliseconds()

        // Publish: each hierarchy flips atomically.
        // Publish: each hierarchy flips atomically. If a later one fails, the record still says
        // what is in place, so that status, refresh and unmerge see the truth.
        var hierarchies: [StateRecord.Hierarchy] = []
        func record() -> StateRecord {
            StateRecord(root: environment.rootForDisplay, mergedAt: currentTimestamp(),
                        hierarchies: hierarchies, survey: survey)
        }
        do {
            for item in built {
                try item.base.stash(in: environment.stateDir)
                let outcome: Publisher.Outcome
                do {
                    outcome = try Publisher.publish(item.overlay, at: environment.path(item.hierarchy), log: log)
                } catch {
                    if item.base.forStash != nil {  // stashed just now: take it back
                        BaseHierarchy.dropStash(BaseHierarchy.stashPath(item.hierarchy, stateDir: environment.stateDir))
                    }
                    throw error
                }
                hierarchies.append(StateRecord.Hierarchy(
                    path: item.hierarchy, extensions: item.layers.map(\.name),
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
        let merged = Set(hierarchies.flatMap(\.extensions))
        let missing = required.subtracting(merged).sorted(by: { compareVersions($0, $1) < 0 })
        if !missing.isEmpty {
            let reasons = missing.map { name in
                "\(name) (\(survey.plan.entries.first { $0.name == name }?.reason ?? "not found"))"
            }
            throw EarlyextError(.requiredFailed, "required extension(s) not merged: " + reasons.joined(separator: ", "))
        }
        for h in hierarchies {
            log.info("merged \(h.extensions.count) extension(s) into \(environment.path(h.path)): \(h.extensions.joined(separator: " "))")
        }
        if hierarchies.isEmpty { log.info("nothing to merge") }
        return record
    }

    func buildOverlay(_ hierarchy: String, layers: [PlanEntry], opened: [String: OpenedExtension],
                      base: BaseHierarchy) throws -> DetachedMount {
        let metadata = try MetadataLayer(extensions: layers.map(\.name))
        var extensionLayers: [OwnedDescriptor] = []
        for entry in layers.reversed() {  // highest version on top
            guard let image = opened[entry.name] else { continue }
            do {
                extensionLayers.append(OwnedDescriptor(try image.mount.openDirectory(String(hierarchy.dropFirst()))))
            } catch {
                throw EarlyextError(.mount, "\(entry.name): cannot open \(hierarchy) in the image", errno: error)
            }
        }
        let baseDirectory = try base.openDirectory()
        return try OverlayBuilder.build(hierarchy: hierarchy, metadata: metadata,
                                        extensionLayers: extensionLayers, base: baseDirectory)
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
    }

    func unmergeHierarchy(_ hierarchy: StateRecord.Hierarchy) throws {
        let target = environment.path(hierarchy.path)
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
