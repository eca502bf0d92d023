#!/bin/bash
# tests/cap/test_package.sh - packaging: `make install-data`, the man pages,
# and the two Debian packages (hub/package.mk, packaging/debian/).
#
# Prints "ok - name" / "not ok - name" per check, as scripts/run-tests.sh
# counts them. Run from the repository root (FW_ROOT) with FW_BUILD naming
# the build whose programs go into the packages (the runner's sanitized
# build is fine: the packages are inspected and unpacked, not run).
#   1. install-data into a scratch DESTDIR with PREFIX=/usr: every file lands,
#      units name /usr/bin, modes are right;
#   2. each man page renders with groff -ww (and man -l) without a warning,
#      and documents every option of its example config and of --help;
#   3. make deb into a scratch directory; dpkg-deb --info/--contents; the
#      md5sums verify; every library the programs need is in Depends;
#   4. dpkg --root unpacks the hub package into an empty root (configuring
#      is not possible there: dpkg would chroot into a root with no shell),
#      then the maintainer scripts run against that root through DPKG_ROOT
#      with adduser, systemd and friends replaced by stubs that log.
set -u
cd "${FW_ROOT:-.}" || exit 1
build=${FW_BUILD:-$PWD/build/san}
out_rel=${build#"$PWD"/}
san=0
case "$out_rel" in *san* | */h-*) san=1 ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fw-package-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

ok() { echo "ok - $1"; }
notok() {
    echo "not ok - $1"
    fails=$((fails + 1))
}
check() { # check NAME COMMAND...: ok when the command succeeds
    local name=$1
    shift
    if "$@" >"$tmp/last.log" 2>&1; then ok "$name"; else
        notok "$name"
        sed 's/^/#   /' "$tmp/last.log" | head -20
    fi
}

# ---- 1. install-data ----------------------------------------------------------
dest=$tmp/dest
if make --no-print-directory -s install-data DESTDIR="$dest" PREFIX=/usr OUT="$out_rel" >"$tmp/install.log" 2>&1; then
    ok "make install-data DESTDIR=... PREFIX=/usr"
else
    notok "make install-data DESTDIR=... PREFIX=/usr"
    sed 's/^/#   /' "$tmp/install.log" | tail -20
fi
want=(
    usr/share/man/man8/firewatch-hub.8 usr/share/man/man8/firewatch-node.8 usr/share/man/man8/firewatchctl.8
    usr/share/man/man5/firewatch-hub.conf.5 usr/share/man/man5/firewatch-node.conf.5
    etc/firewatch/hub.conf.example etc/firewatch/node.conf.example
    lib/systemd/system/firewatch-hub.service lib/systemd/system/firewatch-node.service
    lib/udev/rules.d/60-firewatch-gpio.rules
    usr/share/firewatch/web/index.html
)
missing=""
for f in "${want[@]}"; do [ -f "$dest/$f" ] || missing="$missing $f"; done
if [ -z "$missing" ]; then ok "install-data: man pages, example configs, units, udev rule, dashboard"; else
    notok "install-data: missing:$missing"
fi
# Every file of hub/web, subdirectories included, with mode 0644.
webmiss=$(cd hub/web && find . -type f ! -name '.*' | while read -r f; do
    [ -f "$dest/usr/share/firewatch/web/${f#./}" ] || echo "$f"
done)
if [ -z "$webmiss" ]; then ok "install-data: every dashboard file"; else notok "install-data: dashboard files missing: $webmiss"; fi
badmode=$(find "$dest" -type f ! -perm 0644 -printf '%P %m\n')
if [ -z "$badmode" ]; then ok "install-data: files are 0644"; else notok "install-data: modes: $badmode"; fi
if grep -q 'ExecStart=/usr/bin/firewatch-hub ' "$dest/lib/systemd/system/firewatch-hub.service" &&
    grep -q 'ExecStart=/usr/bin/firewatch-node ' "$dest/lib/systemd/system/firewatch-node.service" &&
    ! grep -rq /usr/local "$dest/lib/systemd/system"; then
    ok "install-data: units run PREFIX/bin (no /usr/local left)"
else
    notok "install-data: units run PREFIX/bin (no /usr/local left)"
    grep -n 'Exec\|/usr/local' "$dest"/lib/systemd/system/* | sed 's/^/#   /'
fi
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify resolves ExecStart against the real /usr/bin: only report the
    # syntax problems, not the missing programs.
    for u in "$dest"/lib/systemd/system/*.service; do
        if systemd-analyze verify "$u" 2>&1 | grep -v -e 'is not executable' -e 'No such file' \
            -e 'Command .* is not' -e 'Failed to prepare filename' -e 'Unit configuration has fatal error' \
            -e 'Failed to create' -e 'Failed to load' -e 'Failed to set up' -e 'chroot' -e '^$' \
            -e 'Assignment outside of section' >"$tmp/verify.log"; then
            notok "systemd-analyze verify ${u##*/}"
            sed 's/^/#   /' "$tmp/verify.log" | head
        else
            ok "systemd-analyze verify ${u##*/}"
        fi
    done
fi

# ---- 2. man pages ---------------------------------------------------------------
have_groff=1
command -v groff >/dev/null 2>&1 || have_groff=0
for page in docs/man/*.[58]; do
    name=${page##*/}
    if [ $have_groff = 0 ]; then
        ok "man page $name: groff -ww # SKIP groff not installed (Debian package groff-base)"
    elif warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) && [ -n "$warn" ]; then
        notok "man page $name: groff -ww"
        printf '%s\n' "$warn" | sed 's/^/#   /' | head
    else
        ok "man page $name: groff -ww"
    fi
    base=${name%.*}
    sect=${name##*.}
    th=$(sed -n 's/^\.TH \([^ ]*\) \([0-9]\).*/\1 \2/p' "$page" | sed 's/\\-/-/g')
    if [ "$th" = "$(echo "$base" | tr '[:lower:]' '[:upper:]') $sect" ]; then ok "man page $name: .TH names it"; else
        notok "man page $name: .TH is '$th'"
    fi
    if [ $have_groff = 1 ] && command -v man >/dev/null 2>&1; then
        text=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>"$tmp/man.err")
        if [ -s "$tmp/man.err" ] || ! printf '%s' "$text" | grep -q '^NAME'; then
            notok "man -l $name renders without warnings"
            sed 's/^/#   /' "$tmp/man.err" | head
        else
            ok "man -l $name renders without warnings"
        fi
    fi
done

# Every option of an example config is documented in its section 5 page.
conf_keys() { sed -n 's/^#\{0,1\}\([a-z][a-z0-9_]*\)\( .*\)\{0,1\}$/\1/p' "$1"; }
for pair in hub/hub.conf.example:docs/man/firewatch-hub.conf.5 firmware/node.conf.example:docs/man/firewatch-node.conf.5; do
    conf=${pair%%:*}
    page=${pair##*:}
    undocumented=""
    n=0
    for k in $(conf_keys "$conf"); do
        n=$((n + 1))
        roff=$(printf '%s' "$k" | sed 's/-/\\\\-/g')
        grep -q "^\.BI \"$roff " "$page" || undocumented="$undocumented $k"
    done
    if [ -z "$undocumented" ] && [ "$n" -gt 10 ]; then ok "${page##*/} documents all $n options of $conf"; else
        notok "${page##*/} documents the options of $conf (missing:$undocumented; $n found)"
    fi
done

# Every long option of each program's --help, and every firewatchctl command,
# is in its section 8 page (when the programs are built).
for prog in firewatch-hub firewatch-node firewatchctl; do
    bin=$build/bin/$prog
    page=docs/man/$prog.8
    if [ ! -x "$bin" ] || [ $have_groff = 0 ]; then
        ok "$prog.8 matches --help # SKIP $bin not built or groff missing"
        continue
    fi
    help=$(ASAN_OPTIONS=detect_leaks=0 "$bin" --help 2>&1)
    plain=$(groff -man -Tutf8 "$page" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g')
    missing=""
    for opt in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        printf '%s' "$plain" | grep -q -- "$opt" || missing="$missing $opt"
    done
    if [ "$prog" = firewatchctl ]; then
        while read -r group verb; do
            printf '%s' "$plain" | grep -q "^ *$group $verb" || missing="$missing '$group $verb'"
        done < <(printf '%s\n' "$help" | sed -n 's/^  firewatchctl \([a-z]*\) \([a-z]*\).*/\1 \2/p')
    fi
    if [ -z "$missing" ]; then ok "$prog.8 documents everything in --help"; else
        notok "$prog.8 documents everything in --help (missing:$missing)"
    fi
done

# ---- 3. make deb ---------------------------------------------------------------
debdir=$tmp/deb
if make --no-print-directory -s deb OUT="$out_rel" SAN=$san DEB_DIR="$debdir" >"$tmp/deb.log" 2>&1; then
    ok "make deb"
else
    notok "make deb"
    sed 's/^/#   /' "$tmp/deb.log" | tail -20
fi
arch=$(dpkg --print-architecture)
hubdeb=$(find "$debdir" -maxdepth 1 -name "firewatch-hub_*_$arch.deb" 2>/dev/null | head -1)
nodedeb=$(find "$debdir" -maxdepth 1 -name "firewatch-node_*_$arch.deb" 2>/dev/null | head -1)

# elf_arch FILE: the Debian architecture of an ELF file.
elf_arch() {
    case $(readelf -h "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p') in
    *X86-64*) echo amd64 ;;
    *AArch64*) echo arm64 ;;
    ARM) echo armhf ;;
    *80386*) echo i386 ;;
    *) echo unknown ;;
    esac
}

inspect() { # inspect PKG DEB "programs" "paths" "depends"
    local pkg=$1 deb=$2 progs=$3 paths=$4 deps=$5
    if [ -z "$deb" ] || [ ! -f "$deb" ]; then
        notok "$pkg: package built"
        return
    fi
    ok "$pkg: package built (${deb##*/})"
    local info
    info=$(dpkg-deb --info "$deb")
    local field
    field=$(dpkg-deb -f "$deb" Package Architecture)
    if [ "$field" = "Package: $pkg
Architecture: $arch" ]; then ok "$pkg: control Package and Architecture"; else
        notok "$pkg: control fields: $field"
    fi
    local d missing=""
    for d in $deps; do
        dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx "$d" || missing="$missing $d"
    done
    if [ -z "$missing" ]; then ok "$pkg: Depends on$deps"; else notok "$pkg: Depends lacks$missing"; fi
    for s in postinst prerm postrm conffiles md5sums; do
        printf '%s' "$info" | grep -q " $s\$\| $s " || missing="$missing $s"
    done
    if [ -z "$missing" ]; then ok "$pkg: maintainer scripts, conffiles and md5sums"; else
        notok "$pkg: control archive lacks$missing"
    fi
    local contents
    contents=$(dpkg-deb --contents "$deb")
    missing=""
    for p in $paths; do printf '%s\n' "$contents" | grep -q " \./$p\$" || missing="$missing $p"; done
    if [ -z "$missing" ]; then ok "$pkg: contents"; else notok "$pkg: contents lack$missing"; fi
    local notroot
    notroot=$(printf '%s\n' "$contents" | awk '$2 != "root/root"')
    if [ -z "$notroot" ]; then ok "$pkg: every file owned by root/root"; else notok "$pkg: owners: $notroot"; fi
    local x=$tmp/x-$pkg
    rm -rf "$x" && mkdir -p "$x" && dpkg-deb -x "$deb" "$x" && dpkg-deb -e "$deb" "$x/DEBIAN"
    check "$pkg: md5sums verify" sh -c "cd '$x' && md5sum --quiet -c DEBIAN/md5sums"
    check "$pkg: md5sums cover every file" sh -c "cd '$x' && [ \$(find . -path ./DEBIAN -prune -o -type f -print | wc -l) -eq \$(wc -l < DEBIAN/md5sums) ]"
    # Every library the programs need comes from a package in Depends
    # (the sanitizer runtimes of a test build excepted).
    local bad="" prog lib libpkg
    for prog in $progs; do
        [ "$(elf_arch "$x/usr/bin/$prog")" = "$arch" ] || bad="$bad $prog:arch=$(elf_arch "$x/usr/bin/$prog")"
        [ "$(stat -c %a "$x/usr/bin/$prog")" = 755 ] || bad="$bad $prog:mode"
        for lib in $(readelf -d "$x/usr/bin/$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            case $lib in libasan.so* | libubsan.so*) continue ;; esac
            # Any package that ships a file of that name will do (libm.so.6
            # is in libc6 and, with multilib, libc6-i386 too).
            libpkg=$(dpkg -S "*/$lib" 2>/dev/null | sed 's/: .*//; s/, /\n/g' | sed 's/:.*//' | sort -u)
            printf '%s\n' "$libpkg" | grep -qxF -f <(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
                sed 's/^ *//; s/ .*//') || bad="$bad $prog:$lib(${libpkg//$'\n'/ })"
        done
    done
    if [ -z "$bad" ]; then ok "$pkg: programs are $arch, 0755, and every NEEDED library is in Depends"; else
        notok "$pkg: programs:$bad"
    fi
    check "$pkg: scripts pass sh -n" sh -c "for s in '$x'/DEBIAN/postinst '$x'/DEBIAN/prerm '$x'/DEBIAN/postrm; do sh -n \"\$s\" || exit 1; done"
}
inspect firewatch-hub "$hubdeb" "firewatch-hub firewatchctl" \
    "usr/bin/firewatch-hub usr/bin/firewatchctl usr/share/man/man8/firewatch-hub.8.gz usr/share/man/man8/firewatchctl.8.gz usr/share/man/man5/firewatch-hub.conf.5.gz etc/firewatch/hub.conf.example lib/systemd/system/firewatch-hub.service usr/share/firewatch/web/index.html usr/share/doc/firewatch-hub/copyright usr/share/doc/firewatch-hub/changelog.gz" \
    "libpaho-mqtt1.3 libsqlite3-0 libmicrohttpd12 libcjson1 libsodium23 mosquitto adduser"
inspect firewatch-node "$nodedeb" "firewatch-node" \
    "usr/bin/firewatch-node usr/share/man/man8/firewatch-node.8.gz usr/share/man/man5/firewatch-node.conf.5.gz etc/firewatch/node.conf.example lib/systemd/system/firewatch-node.service lib/udev/rules.d/60-firewatch-gpio.rules usr/share/doc/firewatch-node/copyright" \
    "libpaho-mqtt1.3 libgpiod2 libcjson1 adduser"

# ---- 4. dpkg --root and the maintainer scripts ------------------------------------
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
: >"$root/var/lib/dpkg/status"
if [ -n "$hubdeb" ] && dpkg --root="$root" --log=/dev/null --force-depends --unpack "$hubdeb" >"$tmp/dpkg.log" 2>&1 &&
    dpkg --root="$root" -s firewatch-hub 2>/dev/null | grep -q '^Status: install ok unpacked' &&
    [ -x "$root/usr/bin/firewatch-hub" ] && [ -f "$root/etc/firewatch/hub.conf.example.dpkg-new" ]; then
    ok "dpkg --root unpacks firewatch-hub into an empty root"
else
    notok "dpkg --root unpacks firewatch-hub into an empty root"
    sed 's/^/#   /' "$tmp/dpkg.log" | tail
fi
if [ -n "$nodedeb" ] && dpkg --root="$root" --log=/dev/null --force-depends --unpack "$nodedeb" >"$tmp/dpkg.log" 2>&1 &&
    [ -x "$root/usr/bin/firewatch-node" ]; then
    ok "dpkg --root unpacks firewatch-node next to it"
else
    notok "dpkg --root unpacks firewatch-node next to it"
    sed 's/^/#   /' "$tmp/dpkg.log" | tail
fi

# What dpkg --configure does before it runs postinst: conffiles unpacked as
# *.dpkg-new take their names.
find "$root" -name '*.dpkg-new' | while read -r f; do mv "$f" "${f%.dpkg-new}"; done
cp -p "$root/var/lib/dpkg/info/firewatch-hub.postinst" "$tmp/check-exists" 2>/dev/null ||
    notok "dpkg --root keeps the maintainer scripts in var/lib/dpkg/info"

# Stubs for everything that would touch the real system; each logs its call.
stubs=$tmp/stubs
calls=$tmp/calls
mkdir -p "$stubs"
for c in adduser addgroup chown deb-systemd-helper deb-systemd-invoke systemctl udevadm; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 0\n' "$c" "$calls" >"$stubs/$c"
done
printf '#!/bin/sh\necho "getent $*" >>"%s"\nexit 2\n' "$calls" >"$stubs/getent"
# shellcheck disable=SC2016 # $* and ${NODE_CHECK_RC} belong to the stub
printf '#!/bin/sh\necho "firewatch-node $*" >>"%s"\nexit ${NODE_CHECK_RC:-1}\n' "$calls" >"$stubs/firewatch-node"
chmod 0755 "$stubs"/*
run_script() { # run_script PKG SCRIPT ARGS...
    local pkg=$1 script=$2
    shift 2
    : >"$calls"
    DPKG_ROOT=$root PATH="$stubs:$PATH" sh "$root/var/lib/dpkg/info/$pkg.$script" "$@" >"$tmp/script.log" 2>&1
}
called() { grep -qx -- "$1" "$calls"; }

if run_script firewatch-hub postinst configure &&
    called "addgroup --system firewatch" &&
    grep -q '^adduser --system --ingroup firewatch --home /var/lib/firewatch .* firewatch$' "$calls" &&
    called "chown firewatch:firewatch $root/var/lib/firewatch" &&
    called "deb-systemd-helper enable firewatch-hub.service" &&
    ! grep -q 'deb-systemd-invoke\|systemctl' "$calls" &&
    [ -d "$root/var/lib/firewatch" ] && [ "$(stat -c %a "$root/var/lib/firewatch")" = 750 ] &&
    cmp -s "$root/etc/firewatch/hub.conf" "$root/etc/firewatch/hub.conf.example" &&
    [ "$(stat -c %a "$root/etc/firewatch/hub.conf")" = 640 ]; then
    ok "hub postinst without systemd (a chroot): user, state dir, hub.conf 0640, enabled, not started"
else
    notok "hub postinst without systemd (a chroot): user, state dir, hub.conf 0640, enabled, not started"
    sed 's/^/#   call: /' "$calls"
    sed 's/^/#   /' "$tmp/script.log"
fi
mkdir -p "$root/run/systemd/system"
echo "broker tcp://10.0.0.2:1883" >"$root/etc/firewatch/hub.conf"
if run_script firewatch-hub postinst configure 0.0.9 &&
    called "systemctl --system daemon-reload" &&
    called "deb-systemd-invoke restart firewatch-hub.service" &&
    [ "$(cat "$root/etc/firewatch/hub.conf")" = "broker tcp://10.0.0.2:1883" ]; then
    ok "hub postinst on upgrade under systemd: restarts, keeps the admin's hub.conf"
else
    notok "hub postinst on upgrade under systemd: restarts, keeps the admin's hub.conf"
    sed 's/^/#   call: /' "$calls"
fi
if run_script firewatch-hub postinst configure && called "deb-systemd-invoke start firewatch-hub.service"; then
    ok "hub postinst on a fresh install under systemd: starts"
else
    notok "hub postinst on a fresh install under systemd: starts"
fi
if run_script firewatch-hub prerm remove && called "deb-systemd-invoke stop firewatch-hub.service" &&
    run_script firewatch-hub postrm remove && called "deb-systemd-helper mask firewatch-hub.service"; then
    ok "hub prerm/postrm remove: stops and masks"
else
    notok "hub prerm/postrm remove: stops and masks"
    sed 's/^/#   call: /' "$calls"
fi
touch "$root/var/lib/firewatch/hub.db"
if run_script firewatch-hub postrm purge && called "deb-systemd-helper purge firewatch-hub.service" &&
    [ ! -e "$root/etc/firewatch/hub.conf" ] && [ -f "$root/var/lib/firewatch/hub.db" ]; then
    ok "hub postrm purge: config gone, database kept"
else
    notok "hub postrm purge: config gone, database kept"
fi

if NODE_CHECK_RC=1 run_script firewatch-node postinst configure &&
    called "addgroup --system gpio" && called "adduser firewatch gpio" &&
    called "deb-systemd-helper enable firewatch-node.service" &&
    ! grep -q 'deb-systemd-invoke' "$calls" && grep -q "set at least 'id'" "$tmp/script.log" &&
    [ "$(stat -c %a "$root/etc/firewatch/node.conf")" = 640 ] && [ -d "$root/var/lib/firewatch-node" ]; then
    ok "node postinst with an unprovisioned config: gpio group, enabled, not started, says why"
else
    notok "node postinst with an unprovisioned config: gpio group, enabled, not started, says why"
    sed 's/^/#   call: /' "$calls"
    sed 's/^/#   /' "$tmp/script.log"
fi
if NODE_CHECK_RC=0 run_script firewatch-node postinst configure &&
    called "deb-systemd-invoke start firewatch-node.service"; then
    ok "node postinst with a valid config under systemd: starts"
else
    notok "node postinst with a valid config under systemd: starts"
    sed 's/^/#   call: /' "$calls"
fi
exit $((fails > 0))
