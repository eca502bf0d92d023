#!/bin/bash
# tests/cap/test_cross.sh - the node's cross builds for arm64 and armhf
# (docs/packaging.md, "Cross-building the node"), built and inspected, not run.
#
# Prints "ok - name" / "not ok - name" per check, as scripts/run-tests.sh
# counts them. Run from the repository root (FW_ROOT); each architecture
# builds into build/cross-<arch>/ next to FW_BUILD (the release flavour,
# with -Werror as in CI), never into the sanitized build. For each of them:
#   1. `make deb-node` with Debian's cross compiler and the target's
#      libraries from the sysroot scripts/deps.sh made (build/cross-sysroot/);
#   2. readelf: the program is an AArch64 ELF64, or an ARM ELF32 with the
#      EABI5 hard-float ABI (Debian's armhf), in the build and in the package;
#   3. the package's Architecture field names the architecture;
#   4. every NEEDED library is in the target's multiarch directory of the
#      sysroot, and the package shipping it is in the .deb's Depends.
# Without the cross compilers or the sysroot (a developer machine where
# scripts/deps.sh test did not run as root) each check is skipped, with why.
set -u
cd "${FW_ROOT:-.}" || exit 1
build=${FW_BUILD:-$PWD/build/san}
top=${build%/*}
top=${top#"$PWD"/}
sysroots=build/cross-sysroot
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fw-cross-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT HUP
fails=0

ok() { echo "ok - $1"; }
notok() {
    echo "not ok - $1"
    fails=$((fails + 1))
}

# elf_check ARCH FILE: succeeds when FILE is an ELF for the Debian ARCH.
elf_check() {
    local h
    h=$(readelf -h "$2" 2>/dev/null) || return 1
    case $1 in
    arm64) grep -q 'Class: *ELF64' <<<"$h" && grep -q 'Machine: *AArch64' <<<"$h" ;;
    armhf) grep -q 'Class: *ELF32' <<<"$h" && grep -q 'Machine: *ARM$' <<<"$h" &&
        grep -q 'Flags:.*Version5 EABI, hard-float ABI' <<<"$h" ;;
    *) return 1 ;;
    esac
}

for arch in arm64 armhf; do
    case $arch in
    arm64) triplet=aarch64-linux-gnu ;;
    armhf) triplet=arm-linux-gnueabihf ;;
    esac
    sr=$sysroots/$arch
    dir=$top/cross-$arch
    names=("$arch: make deb-node with $triplet-gcc and -Werror" "$arch: firewatch-node is the target's ELF"
        "$arch: package Architecture is $arch" "$arch: every NEEDED library is in the sysroot and in Depends")
    why=""
    command -v "$triplet-gcc" >/dev/null 2>&1 || why="no $triplet-gcc (Debian package crossbuild-essential-$arch)"
    [ -n "$why" ] || [ -f "$sr/.stamp" ] || why="no $arch sysroot in $sr (scripts/deps.sh test, as root)"
    if [ -n "$why" ]; then
        for n in "${names[@]}"; do ok "$n # SKIP $why"; done
        continue
    fi

    # 1. The documented command (docs/packaging.md), in its own OUT and DEB_DIR.
    rm -rf "$dir/deb"
    # (Not the runner's SAN=1, which `make test` passes down in MAKEFLAGS.)
    if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PKG_CONFIG_LIBDIR="$sr/usr/lib/$triplet/pkgconfig" \
        PKG_CONFIG_SYSROOT_DIR="$sr" make --no-print-directory -s SAN=0 OUT="$dir/out" DEB_DIR="$dir/deb" \
        DEB_ARCH=$arch CC="$triplet-gcc" AR="$triplet-ar" STRIP="$triplet-strip" CROSS_SYSROOT="$sr" WERROR=1 \
        deb-node >"$tmp/make-$arch.log" 2>&1; then
        ok "${names[0]}"
    else
        notok "${names[0]}"
        grep -v 'pkg-config\|Package .* was not found\|PKG_CONFIG_PATH\|libmosquitto' "$tmp/make-$arch.log" |
            tail -20 | sed 's/^/#   /'
    fi
    bin=$dir/out/bin/firewatch-node
    deb=$(find "$dir/deb" -maxdepth 1 -name "firewatch-node_*_$arch.deb" 2>/dev/null | head -1)

    # 2. The ELF header, of the build and of the packaged (stripped) program.
    rm -rf "$tmp/x-$arch"
    [ -n "$deb" ] && dpkg-deb -x "$deb" "$tmp/x-$arch"
    if elf_check $arch "$bin" && elf_check $arch "$tmp/x-$arch/usr/bin/firewatch-node"; then
        ok "${names[1]} ($(readelf -h "$bin" | sed -n 's/^ *Machine: *//p'), in the build and the package)"
    else
        notok "${names[1]}"
        readelf -h "$bin" 2>&1 | grep -E 'Class|Machine|Flags|Error' | sed 's/^/#   /'
    fi

    # 3. The control file.
    field=$( [ -n "$deb" ] && dpkg-deb -f "$deb" Architecture)
    if [ "$field" = "$arch" ]; then ok "${names[2]} (${deb##*/})"; else
        notok "${names[2]} (Architecture: '$field', package: '${deb:-none}')"
    fi

    # 4. Each NEEDED library: found in /lib/<triplet> or /usr/lib/<triplet> of
    # the sysroot (the target's own packages), shipped by a package Depends names.
    depends=$( [ -n "$deb" ] && dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/[ (].*//')
    bad=""
    needed=$(readelf -d "$bin" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    for lib in $needed; do
        path=""
        for d in /lib/$triplet /usr/lib/$triplet; do
            [ -e "$sr$d/$lib" ] && path=$d/$lib && break
        done
        if [ -z "$path" ]; then
            bad="$bad $lib(not in $sr/{,usr/}lib/$triplet)"
            continue
        fi
        owner=$(grep -lx "$path" "$sr"/.pkgs/*.list | head -1)
        owner=${owner##*/}
        owner=${owner%.list}
        grep -qx "$owner" <<<"$depends" || bad="$bad $lib(from ${owner:-no package}, not in Depends)"
    done
    if [ -n "$needed" ] && [ -z "$bad" ]; then
        ok "${names[3]} (${needed//$'\n'/ })"
    else
        notok "${names[3]}:${bad:- no NEEDED entries}"
    fi
done
exit $((fails > 0))
