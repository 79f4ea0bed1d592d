#!/usr/bin/env bash
# Builders for verity test images: sourced by the Swift tests (VerityTests), bench/verity.sh and
# the QEMU suite. Everything is made fresh, in the directory given; no key is ever committed.
#
#   make_pki DIR                 CA (ca.crt/.key), signer issued by it (signer.crt/.key),
#                                an unrelated self-signed "rogue" (rogue.crt/.key)
#   make_tree DIR NAME DESIG     an extension tree: DESIG=root → usr/lib/extension-release.d/…,
#                                DESIG=usr → lib/extension-release.d/… (the contents of /usr)
#   make_fs TREE OUT             squashfs of TREE
#   make_verity DATA HASH        veritysetup format; prints the root hash
#   sign_hash ROOTHASH KEY CERT OUT [nocerts|newline]
#                                detached DER PKCS#7 over the hex root hash, as systemd signs it
#   sig_json ROOTHASH P7S CERT   the verity-sig partition JSON
#   make_ddi OUT ARCH DESIG DATA [HASH [SIGJSON]]
#                                a GPT disk image with DPS partitions, as systemd-repart makes them
#   dps_type ARCH KIND           KIND: root usr root-verity usr-verity root-verity-sig usr-verity-sig
#   build_signed_ddi DIR NAME ARCH DESIG PKI [SIZE_MB]
#                                all of the above: DIR/NAME.raw, prints the root hash
set -euo pipefail

make_pki() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 3 \
        -subj "/CN=earlyext test CA $$" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/signer.key" -out "$d/signer.csr" \
        -subj "/CN=earlyext test signer $$" 2>/dev/null
    openssl x509 -req -in "$d/signer.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -out "$d/signer.crt" -days 3 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/rogue.key" -out "$d/rogue.crt" -days 3 \
        -subj "/CN=earlyext test rogue $$" 2>/dev/null
}

make_tree() {
    local dir=$1 name=$2 desig=$3 prefix=usr/
    [[ $desig == usr ]] && prefix=
    mkdir -p "$dir/${prefix}lib/extension-release.d" "$dir/${prefix}bin"
    printf 'ID=_any\nARCHITECTURE=x86-64\n' > "$dir/${prefix}lib/extension-release.d/extension-release.$name"
    printf '#!/bin/sh\necho %s\n' "$name" > "$dir/${prefix}bin/$name"
    chmod 755 "$dir/${prefix}bin/$name"
}

make_fs() {
    mksquashfs "$1" "$2" -all-root -noappend -quiet >/dev/null
}

make_verity() {
    veritysetup format "$1" "$2" | awk '/^Root hash:/ { print $3 }'
}

sign_hash() {
    local hash=$1 key=$2 cert=$3 out=$4 mode=${5:-}
    local content
    content=$(mktemp)
    if [[ $mode == newline ]]; then printf '%s\n' "$hash" > "$content"; else printf '%s' "$hash" > "$content"; fi
    local extra=()
    [[ $mode == nocerts ]] && extra=(-nocerts)
    openssl smime -sign -in "$content" -inkey "$key" -signer "$cert" -binary -noattr \
        -outform der -out "$out" "${extra[@]}"
    rm -f "$content"
}

cert_fingerprint() {
    openssl x509 -in "$1" -outform der | sha256sum | cut -d' ' -f1
}

sig_json() {
    printf '{"rootHash":"%s","certificateFingerprint":"%s","signature":"%s"}' \
        "$1" "$(cert_fingerprint "$3")" "$(base64 -w0 "$2")"
}

dps_type() {
    local arch=$1 kind=$2
    case "$arch/$kind" in
        x86-64/root) echo 4f68bce3-e8cd-4db1-96e7-fbcaf984b709 ;;
        x86-64/usr) echo 8484680c-9521-48c6-9c11-b0720656f69e ;;
        x86-64/root-verity) echo 2c7357ed-ebd2-46d9-aec1-23d437ec2bf5 ;;
        x86-64/usr-verity) echo 77ff5f63-e7b6-4633-acf4-1565b864c0e6 ;;
        x86-64/root-verity-sig) echo 41092b05-9fc8-4523-994f-2def0408b176 ;;
        x86-64/usr-verity-sig) echo e7bb33fb-06cf-4e81-8273-e543b413e2e2 ;;
        arm64/root) echo b921b045-1df0-41c3-af44-4c6f280d3fae ;;
        arm64/usr) echo b0e01050-ee5f-4390-949a-9101b17104e9 ;;
        arm64/root-verity) echo df3300ce-d69f-4c92-978c-9bfb0f38d820 ;;
        arm64/usr-verity) echo 6e11a4e7-fbca-4ded-b9e9-e1a512bb664e ;;
        arm64/root-verity-sig) echo 6db69de6-29f4-4758-a7a5-962190f00ce3 ;;
        arm64/usr-verity-sig) echo c23ce4ff-44bd-4b00-b2d4-b41b3419e02a ;;
        *) echo "dps_type: unknown $arch/$kind" >&2; return 1 ;;
    esac
}

make_ddi() {
    local out=$1 arch=$2 desig=$3 data=$4 hash=${5:-} sig=${6:-}
    local sectors_of
    sectors_of() { local s; s=$(stat -c %s "$1"); echo $(( (s + 4095) / 4096 * 8 )); }
    local start=2048 script n_data n_hash=0 n_sig=0
    n_data=$(sectors_of "$data")
    [[ -n $hash ]] && n_hash=$(sectors_of "$hash")
    [[ -n $sig ]] && n_sig=$(( ($(stat -c %s "$sig") + 4095) / 4096 * 8 ))
    local total=$(( start + n_data + n_hash + n_sig + 2048 ))
    rm -f "$out"
    truncate -s $(( total * 512 )) "$out"
    script="label: gpt
unit: sectors
first-lba: $start
start=$start, size=$n_data, type=$(dps_type "$arch" "$desig"), name=\"$desig-$arch\""
    local at=$(( start + n_data ))
    if [[ -n $hash ]]; then
        script+="
start=$at, size=$n_hash, type=$(dps_type "$arch" "$desig-verity"), name=\"$desig-$arch-verity\""
        at=$(( at + n_hash ))
    fi
    if [[ -n $sig ]]; then
        script+="
start=$at, size=$n_sig, type=$(dps_type "$arch" "$desig-verity-sig"), name=\"$desig-$arch-verity-sig\""
    fi
    echo "$script" | sfdisk -q "$out" >/dev/null
    dd if="$data" of="$out" bs=512 seek=$start conv=notrunc status=none
    at=$(( start + n_data ))
    if [[ -n $hash ]]; then
        dd if="$hash" of="$out" bs=512 seek=$at conv=notrunc status=none
        at=$(( at + n_hash ))
    fi
    if [[ -n $sig ]]; then
        dd if="$sig" of="$out" bs=512 seek=$at conv=notrunc status=none
    fi
}

# DIR/NAME.raw: a signed DDI; DIR/NAME.work/ keeps the parts. Prints the root hash.
build_signed_ddi() {
    local dir=$1 name=$2 arch=$3 desig=$4 pki=$5 size_mb=${6:-0}
    local work="$dir/$name.work"
    mkdir -p "$work/tree"
    make_tree "$work/tree" "$name" "$desig"
    if (( size_mb > 0 )); then
        # Incompressible payload, so the filesystem really is about SIZE_MB.
        local prefix=usr/
        [[ $desig == usr ]] && prefix=
        mkdir -p "$work/tree/${prefix}share/$name"
        head -c $(( size_mb * 1048576 )) /dev/urandom > "$work/tree/${prefix}share/$name/payload"
    fi
    make_fs "$work/tree" "$work/data.img"
    local root
    root=$(make_verity "$work/data.img" "$work/hash.img")
    sign_hash "$root" "$pki/signer.key" "$pki/signer.crt" "$work/sig.p7s"
    sig_json "$root" "$work/sig.p7s" "$pki/signer.crt" > "$work/sig.json"
    make_ddi "$dir/$name.raw" "$arch" "$desig" "$work/data.img" "$work/hash.img" "$work/sig.json"
    echo "$root"
}
