#!/bin/bash
# The layering of doc/README.md ("Layering"), checked by grep over the
# sources: what each floor may not include or call.
#
#   lib/         includes nothing of core/, libmandate/ or plugins/
#   plugins/     include nothing of core/ (their one way in is the host table)
#   libmandate/  includes nothing of core/
#
# Each rule is one `rule` line below: a name, an extended regex that no line
# of the files may match, the files, and after --except those it does not
# apply to. A rule whose files hold no line at all, or whose regex matches
# nothing in the code it is written against (--must-match), fails too, so a
# typo cannot make a rule pass on anything.
set -u
cd "${MANDATE_SRCDIR:-$(dirname "$0")/..}" || exit 1
shopt -s nullglob

CHECKS=0
FAILURES=0

# A regex alternation of the base names of the headers in FOLDER (escaped).
headers_of() {
    local h names=()
    for h in "$1"/*.h; do
        names+=("$(basename "$h" | sed 's/[.]/[.]/g')")
    done
    local IFS='|'
    echo "${names[*]:-^\$}"
}

# An #include "..." of a header in one of the named folders, by path
# ("core/x.h") or by base name ("x.h", found through -I), or of any
# "*-private.h" (only the core has them).
include_of() { # FOLDER...
    local f alt=()
    for f in "$@"; do
        alt+=("$f/.*" "(.*/)?($(headers_of "$f"))")
    done
    local IFS='|'
    echo "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"(.*-private[.]h|${alt[*]})\""
}

# rule NAME REGEX [--must-match FILE...] [--except FILE...] -- FILE...
rule() {
    local name=$1 regex=$2 mode=files f hits
    local files=() except=() must=()
    shift 2
    for f in "$@"; do
        case $f in
        --except) mode=except ;;
        --must-match) mode=must ;;
        --) mode=files ;;
        *) case $mode in
            files) files+=("$f") ;;
            except) except+=("$f") ;;
            must) must+=("$f") ;;
            esac ;;
        esac
    done
    local checked=()
    for f in "${files[@]}"; do
        [[ " ${except[*]} " == *" $f "* ]] || checked+=("$f")
    done
    CHECKS=$((CHECKS + 1))
    if [ ${#checked[@]} -eq 0 ]; then
        echo "FAIL: $name: no file to check"
        FAILURES=$((FAILURES + 1))
        return
    fi
    if [ ${#must[@]} -gt 0 ] && ! grep -qE "$regex" "${must[@]}"; then
        echo "FAIL: $name: the rule matches nothing in ${must[*]}: is its regex right?"
        FAILURES=$((FAILURES + 1))
        return
    fi
    hits=$(grep -nE "$regex" "${checked[@]}" /dev/null)
    if [ -n "$hits" ]; then
        echo "FAIL: $name:"
        printf '%s\n' "$hits" | sed 's/^/  /'
        FAILURES=$((FAILURES + 1))
    else
        echo "ok: $name (${#checked[@]} files)"
    fi
}

CORE=$(include_of core)

rule "lib/ includes nothing of core/, libmandate/ or plugins/" \
    "$(include_of core libmandate plugins)" --must-match core/*.c -- lib/*.[ch]
rule "plugins include nothing of core/" "$CORE" --must-match core/*.c -- plugins/*/*.[ch]
rule "libmandate includes nothing of core/" "$CORE" --must-match core/*.c -- libmandate/*.[ch]

echo "$((CHECKS - FAILURES)) passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
