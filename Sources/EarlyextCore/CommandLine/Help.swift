/// The `--help` and `--version` texts.

/// What `earlyext --version` prints.
public let versionText = "earlyext 0.1.0"

/// The help for one command, or the overview when `command` is nil. Ends with a newline.
public func helpText(for command: Command?) -> String {
    guard let command else { return overview() }
    let options = OptionKind.allCases.filter { $0 != .version && $0.commands.contains(command) }
    return """
        usage: earlyext [OPTIONS] \(command.synopsis)

        \(command.details)

        Options:
        \(table(options.map { ($0.synopsis, $0.summary) }))

        """
}

private func overview() -> String {
    """
    earlyext [OPTIONS...] COMMAND ...

    Merge system extension images into /usr and /opt from the initrd, atomically.

    Commands:
    \(table(Command.allCases.map { ($0.synopsis, $0.summary) }))

    Options:
    \(table(OptionKind.allCases.map { ($0.synopsis, $0.summary) }))

    See earlyext(8) for details.

    """
}

/// Two aligned columns, each row indented by two spaces, rows separated by newlines.
private func table(_ rows: [(String, String)]) -> String {
    let width = rows.map(\.0.count).max() ?? 0
    return rows.map { left, right in
        "  " + left + String(repeating: " ", count: width - left.count + 2) + right
    }.joined(separator: "\n")
}

extension Command {
    /// `verify IMAGE...`, `merge`.
    fileprivate var synopsis: String {
        operandName.map { "\(rawValue) \($0)..." } ?? rawValue
    }

    /// One line for the overview.
    fileprivate var summary: String {
        switch self {
        case .plan: "Show what merge would do and why, without changing anything"
        case .list: "List the extension images found, with source, format and verdict"
        case .fetch: "Download the images that selection files and transfers name"
        case .merge: "Fetch, verify and merge the extension images"
        case .refresh: "Compute a new merge and swap it in atomically"
        case .unmerge: "Remove the merge, so that /usr shows the base again"
        case .status: "Show what is merged now, per hierarchy"
        case .verify: "Check images against the host and the policy"
        }
    }

    /// A few sentences for the command's own help.
    fileprivate var details: String {
        switch self {
        case .plan:
            "Print each extension candidate with its verdict (merge, fetch or skip) and the\n"
                + "reason. Nothing is changed."
        case .list:
            "List the extension images in the search directories, with the directory they\n"
                + "come from, their format and their verdict."
        case .fetch:
            "Download the images that selection files and sysupdate transfers name and that\n"
                + "are missing locally. With --update, also take newer versions."
        case .merge:
            "Fetch what is missing (unless --offline), verify, and merge the extension images.\n"
                + "If a merge is already in place, it is replaced atomically, as with refresh."
        case .refresh:
            "Compute a new merge and swap it in atomically. If anything fails, the old merge\n"
                + "stays in place."
        case .unmerge:
            "Remove the merge, so that ROOT/usr shows the base again."
        case .status:
            "Show what is merged now, per hierarchy: names, versions, since when, and how\n"
                + "each image was verified."
        case .verify:
            "Check each IMAGE against the host and the policy (digest, dm-verity, signature)\n"
                + "without merging anything."
        }
    }
}

extension OptionKind {
    /// `-h --help`, `   --root=DIR`: the short name, when any, in a column of its own.
    fileprivate var synopsis: String {
        let shortColumn = short.map { "-\($0) " } ?? "   "
        return shortColumn + "--" + long + (valueName.map { "=" + $0 } ?? "")
    }

    /// One line for the option tables.
    fileprivate var summary: String {
        switch self {
        case .help: "Show this help"
        case .version: "Show the version"
        case .root: "Operate on the tree under DIR (default: /sysroot in the initrd, else /)"
        case .stateDir: "Keep the state record in DIR (default: /run/earlyext)"
        case .json: "Print JSON (plan, list, status)"
        case .offline: "Never use the network"
        case .update: "Also take newer versions (fetch, merge, refresh)"
        case .noReload: "Do not reload the service manager or restart units the extensions name"
                + " (merge, refresh, unmerge)"
        case .logLevel: "Log at LEVEL: \(listing(LogLevel.allCases.map(\.rawValue), conjunction: "or"))"
                + " (default: info)"
        }
    }
}
