/// The partition types of the Discoverable Partitions Specification that earlyext looks for in a
/// DDI (disk image) extension: the root and /usr data partitions, their dm-verity hash partitions
/// and their signature partitions, per architecture (systemd's naming, as `Host.architecture`).
struct DiscoverableTypes: Equatable {
    var root: GUID
    var rootVerity: GUID
    var rootVeritySignature: GUID
    var usr: GUID
    var usrVerity: GUID
    var usrVeritySignature: GUID

    init(root: String, rootVerity: String, rootVeritySignature: String,
         usr: String, usrVerity: String, usrVeritySignature: String) {
        self.root = GUID(root)!
        self.rootVerity = GUID(rootVerity)!
        self.rootVeritySignature = GUID(rootVeritySignature)!
        self.usr = GUID(usr)!
        self.usrVerity = GUID(usrVerity)!
        self.usrVeritySignature = GUID(usrVeritySignature)!
    }

    /// The types for one designator ("root" or "usr").
    func types(_ designator: Designator) -> (data: GUID, verity: GUID, signature: GUID) {
        switch designator {
        case .root: (root, rootVerity, rootVeritySignature)
        case .usr: (usr, usrVerity, usrVeritySignature)
        }
    }

    /// Which architecture and role a type GUID has, if it is one of ours for any architecture.
    static func identify(_ type: GUID) -> (architecture: String, designator: Designator, role: Role)? {
        for (architecture, types) in byArchitecture {
            for designator in [Designator.root, .usr] {
                let t = types.types(designator)
                if type == t.data { return (architecture, designator, .data) }
                if type == t.verity { return (architecture, designator, .verity) }
                if type == t.signature { return (architecture, designator, .signature) }
            }
        }
        return nil
    }

    enum Role: String { case data, verity, signature }

    /// From the Discoverable Partitions Specification (the same GUIDs as systemd's sd-gpt.h and
    /// util-linux's `sfdisk --label gpt -T`; a test compares them with the latter).
    static let byArchitecture: [String: DiscoverableTypes] = [
        "x86-64": .init(root: "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", rootVerity: "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5",
                     rootVeritySignature: "41092b05-9fc8-4523-994f-2def0408b176",
                     usr: "8484680c-9521-48c6-9c11-b0720656f69e", usrVerity: "77ff5f63-e7b6-4633-acf4-1565b864c0e6",
                     usrVeritySignature: "e7bb33fb-06cf-4e81-8273-e543b413e2e2"),
        "arm64": .init(root: "b921b045-1df0-41c3-af44-4c6f280d3fae", rootVerity: "df3300ce-d69f-4c92-978c-9bfb0f38d820",
                     rootVeritySignature: "6db69de6-29f4-4758-a7a5-962190f00ce3",
                     usr: "b0e01050-ee5f-4390-949a-9101b17104e9", usrVerity: "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e",
                     usrVeritySignature: "c23ce4ff-44bd-4b00-b2d4-b41b3419e02a"),
        "x86": .init(root: "44479540-f297-41b2-9af7-d131d5f0458a", rootVerity: "d13c5d3b-b5d1-422a-b29f-9454fdc89d76",
                     rootVeritySignature: "5996fc05-109c-48de-808b-23fa0830b676",
                     usr: "75250d76-8cc6-458e-bd66-bd47cc81a812", usrVerity: "8f461b0d-14ee-4e81-9aa9-049b6fb97abd",
                     usrVeritySignature: "974a71c0-de41-43c3-be5d-5c5ccd1ad2c0"),
        "arm": .init(root: "69dad710-2ce4-4e3c-b16c-21a1d49abed3", rootVerity: "7386cdf2-203c-47a9-a498-f2ecce45a2d6",
                     rootVeritySignature: "42b0455f-eb11-491d-98d3-56145ba9d037",
                     usr: "7d0359a3-02b3-4f0a-865c-654403e70625", usrVerity: "c215d751-7bcd-4649-be90-6627490a4c05",
                     usrVeritySignature: "d7ff812f-37d1-4902-a810-d76ba57b975a"),
        "riscv64": .init(root: "72ec70a6-cf74-40e6-bd49-4bda08e8f224", rootVerity: "b6ed5582-440b-4209-b8da-5ff7c419ea3d",
                     rootVeritySignature: "efe0f087-ea8d-4469-821a-4c2a96a8386a",
                     usr: "beaec34b-8442-439b-a40b-984381ed097d", usrVerity: "8f1056be-9b05-47c4-81d6-be53128e5b54",
                     usrVeritySignature: "d2f9000a-7a18-453f-b5cd-4d32f77a7b32"),
        "riscv32": .init(root: "60d5a7fe-8e7d-435c-b714-3dd8162144e1", rootVerity: "ae0253be-1167-4007-ac68-43926c14c5de",
                     rootVeritySignature: "3a112a75-8729-4380-b4cf-764d79934448",
                     usr: "b933fb22-5c3f-4f91-af90-e2bb0fa50702", usrVerity: "cb1ee4e3-8cd0-4136-a0a4-aa61a32e8730",
                     usrVeritySignature: "c3836a13-3137-45ba-b583-b16c50fe5eb4"),
        "ppc64-le": .init(root: "c31c45e6-3f39-412e-80fb-4809c4980599", rootVerity: "906bd944-4589-4aae-a4e4-dd983917446a",
                     rootVeritySignature: "d4a236e7-e873-4c07-bf1d-bf6cf7f1c3c6",
                     usr: "15bb03af-77e7-4d4a-b12b-c0d084f7491c", usrVerity: "ee2b9983-21e8-4153-86d9-b6901a54d1ce",
                     usrVeritySignature: "c8bfbd1e-268e-4521-8bba-bf314c399557"),
        "ppc64": .init(root: "912ade1d-a839-4913-8964-a10eee08fbd2", rootVerity: "9225a9a3-3c19-4d89-b4f6-eeff88f17631",
                     rootVeritySignature: "f5e2c20c-45b2-4ffa-bce9-2a60737e1aaf",
                     usr: "2c9739e2-f068-46b3-9fd0-01c5a9afbcca", usrVerity: "bdb528a5-a259-475f-a87d-da53fa736a07",
                     usrVeritySignature: "0b888863-d7f8-4d9e-9766-239fce4d58af"),
        "ppc": .init(root: "1de3f1ef-fa98-47b5-8dcd-4a860a654d78", rootVerity: "98cfe649-1588-46dc-b2f0-add147424925",
                     rootVeritySignature: "1b31b5aa-add9-463a-b2ed-bd467fc857e7",
                     usr: "7d14fec5-cc71-415d-9d6c-06bf0b3c3eaf", usrVerity: "df765d00-270e-49e5-bc75-f47bb2118b09",
                     usrVeritySignature: "7007891d-d371-4a80-86a4-5cb875b9302e"),
        "s390x": .init(root: "5eead9a9-fe09-4a1e-a1d7-520d00531306", rootVerity: "b325bfbe-c7be-4ab8-8357-139e652d2f6b",
                     rootVeritySignature: "c80187a5-73a3-491a-901a-017c3fa953e9",
                     usr: "8a4f5770-50aa-4ed3-874a-99b710db6fea", usrVerity: "31741cc4-1a2a-4111-a581-e00b447d2d06",
                     usrVeritySignature: "3f324816-667b-46ae-86ee-9b0c0c6c11b4"),
        "s390": .init(root: "08a7acea-624c-4a20-91e8-6e0fa67d23f9", rootVerity: "7ac63b47-b25c-463b-8df8-b4a94e6c90e1",
                     rootVeritySignature: "3482388e-4254-435a-a241-766a065f9960",
                     usr: "cd0f869b-d0fb-4ca0-b141-9ea87cc78d66", usrVerity: "b663c618-e7bc-4d6d-90aa-11b756bb1797",
                     usrVeritySignature: "17440e4f-a8d0-467f-a46e-3912ae6ef2c5"),
        "loongarch64": .init(root: "77055800-792c-4f94-b39a-98c91b762bb6", rootVerity: "f3393b22-e9af-4613-a948-9d3bfbd0c535",
                     rootVeritySignature: "5afb67eb-ecc8-4f85-ae8e-ac1e7c50e7d0",
                     usr: "e611c702-575c-4cbe-9a46-434fa0bf7e3f", usrVerity: "f46b2c26-59ae-48f0-9106-c50ed47f673d",
                     usrVeritySignature: "b024f315-d330-444c-8461-44bbde524e99"),
        "alpha": .init(root: "6523f8ae-3eb1-4e2a-a05a-18b695ae656f", rootVerity: "fc56d9e9-e6e5-4c06-be32-e74407ce09a5",
                     rootVeritySignature: "d46495b7-a053-414f-80f7-700c99921ef8",
                     usr: "e18cf08c-33ec-4c0d-8246-c6c6fb3da024", usrVerity: "8cce0d25-c0d0-4a44-bd87-46331bf1df67",
                     usrVeritySignature: "5c6e1c76-076a-457a-a0fe-f3b4cd21ce6e"),
        "arc": .init(root: "d27f46ed-2919-4cb8-bd25-9531f3c16534", rootVerity: "24b2d975-0f97-4521-afa1-cd531e421b8d",
                     rootVeritySignature: "143a70ba-cbd3-4f06-919f-6c05683a78bc",
                     usr: "7978a683-6316-4922-bbee-38bff5a2fecc", usrVerity: "fca0598c-d880-4591-8c16-4eda05c7347c",
                     usrVeritySignature: "94f9a9a1-9971-427a-a400-50cb297f0f35"),
        "ia64": .init(root: "993d8d3d-f80e-4225-855a-9daf8ed7ea97", rootVerity: "86ed10d5-b607-45bb-8957-d350f23d0571",
                     rootVeritySignature: "e98b36ee-32ba-4882-9b12-0ce14655f46a",
                     usr: "4301d2a6-4e3b-4b2a-bb94-9e0b2c4225ea", usrVerity: "6a491e03-3be7-4545-8e38-83320e0ea880",
                     usrVeritySignature: "8de58bc2-2a43-460d-b14e-a76e4a17b47f"),
        "mips-le": .init(root: "37c58c8a-d913-4156-a25f-48b1b64e07f0", rootVerity: "d7d150d2-2a04-4a33-8f12-16651205ff7b",
                     rootVeritySignature: "c919cc1f-4456-4eff-918c-f75e94525ca5",
                     usr: "0f4868e9-9952-4706-979f-3ed3a473e947", usrVerity: "46b98d8d-b55c-4e8f-aab3-37fca7f80752",
                     usrVeritySignature: "3e23ca0b-a4bc-4b4e-8087-5ab6a26aa8a9"),
        "mips64-le": .init(root: "700bda43-7a34-4507-b179-eeb93d7a7ca3", rootVerity: "16b417f8-3e06-4f57-8dd2-9b5232f41aa6",
                     rootVeritySignature: "904e58ef-5c65-4a31-9c57-6af5fc7c5de7",
                     usr: "c97c1f32-ba06-40b4-9f22-236061b08aa8", usrVerity: "3c3d61fe-b5f3-414d-bb71-8739a694a4ef",
                     usrVeritySignature: "f2c2c7ee-adcc-4351-b5c6-ee9816b66e16"),
        "tilegx": .init(root: "c50cdd70-3862-4cc3-90e1-809a8c93ee2c", rootVerity: "966061ec-28e4-4b2e-b4a5-1f0a825a1d84",
                     rootVeritySignature: "b3671439-97b0-4a53-90f7-2d5a8f3ad47b",
                     usr: "55497029-c7c1-44cc-aa39-815ed1558630", usrVerity: "2fb4bf56-07fa-42da-8132-6b139f2026ae",
                     usrVeritySignature: "4ede75e2-6ccc-4cc8-b9c7-70334b087510"),
    ]
}

/// Which tree a DDI's data partition holds: a whole extension root (`usr/`, `opt/` inside, as
/// `systemd-repart --make-ddi=sysext` builds them) or just the contents of /usr.
public enum Designator: String, Sendable {
    case root, usr
}
