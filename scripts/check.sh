#!/bin/bash
# make check: the static checks every commit must pass.
#   1. formatting matches .clang-format (clang-format --dry-run)
#   2. no banned functions (unbounded or error-swallowing libc calls)
#   3. cppcheck finds nothing at warning level or above
# usage: scripts/check.sh FILE...
set -u
status=0
files=("$@")
[ ${#files[@]} -gt 0 ] || { echo "check: no files given" >&2; exit 2; }

echo "check: clang-format on ${#files[@]} files"
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/fw-format.$$; then
    head -40 /tmp/fw-format.$$
    echo "check: formatting differs; run: clang-format -i ${files[*]}"
    status=1
fi
rm -f /tmp/fw-format.$$

# The banned list, after curl's: each has a bounded or checked replacement.
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|gets|atoi|atol|atof|atoll|tmpnam|mktemp)[[:space:]]*\('
echo "check: banned functions"
if grep -nE "$banned" "${files[@]}" | grep -v 'banned-ok'; then
    echo "check: use snprintf, memcpy with checked lengths, strtok_r or strtol with end-pointer checks"
    status=1
fi

echo "check: cppcheck"
csrcs=()
for f in "${files[@]}"; do [[ $f == *.c ]] && csrcs+=("$f"); done
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
        --std=c11 -D__GNUC__ -Iprotocol/include -Itests/lib --suppress=missingIncludeSystem \
        "${csrcs[@]}"; then
    status=1
fi
[ $status -eq 0 ] && echo "check: clean"
exit $status
