#!/bin/bash
# The plugin facade is the core's only door to plugin code (doc/README.md,
# "The plugin facade"): no core file but core/plugins.c reads a plugin's
# ops table or holds a pointer to one. In every .c and .h under core/,
# comments and string literals left out, this fails on:
#   - a member access to ops ("->ops" or ".ops"), but for the loader's check
#     of the descriptor before any plugin code runs ("p->ops == NULL" in
#     core/plugin-loader.c);
#   - the name of an ops table type (mandate_store_ops, mandate_backend_ops,
#     mandate_format_ops): what a core file would need to call through one.
# Tests and plugins are not the core: they may call a plugin's ops directly.
set -u
src=${MANDATE_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}

# file:line: code for each line of the files given that breaks the rule.
offences() {
    perl -ne '
        BEGIN { $/ = undef }
        my $file = $ARGV;
        my $text = $_;
        # comments, string and character literals: out, their newlines kept
        $text =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
                  { my $m = $1; my $n = ($m =~ tr/\n//);
                    substr($m, 0, 1) eq "/" ? "\n" x $n : "\"\"" }gse;
        my $line = 0;
        for my $l (split /\n/, $text, -1) {
            $line++;
            my $bad = $l =~ /\bmandate_(store|backend|format)_ops\b/;
            if ($l =~ /(->|\.)\s*ops\b/) {
                my $loader = $file =~ m{(^|/)core/plugin-loader\.c$};
                $bad = 1 unless $loader && $l =~ /->ops == NULL/;
            }
            print "$file:$line: $l\n" if $bad;
        }
    ' "$@"
}

# The rule itself, on a file that breaks it and one that does not.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core"
cat >"$tmp/core/bad.c" <<'EOF'
/* in a comment, in->handle->plugin->ops is fine */
const char *s = "->ops and mandate_store_ops in a string are fine";
static int f(const mandate_instance *in)
{
    const mandate_format_ops *ops = in->handle->plugin->ops;
    return ops->parse != NULL;
}
EOF
cat >"$tmp/core/good.c" <<'EOF'
/* mandate_format_ops, plugin->ops: said, not done */
static int g(const mandate_instance *in) { return mandate_format_parses(in); }
static const char *const condition_ops[] = {"equals", NULL};
EOF
want="$tmp/core/bad.c:5"
got=$(offences "$tmp/core/bad.c" "$tmp/core/good.c" | cut -d: -f1,2 | sort -u | tr '\n' ' ')
if [ "$got" != "$want " ]; then
    echo "FAIL: the check itself: expected '$want ', found '$got'"
    exit 1
fi

found=$(cd "$src" && find core -name '*.[ch]' ! -path core/plugins.c -print0 | sort -z |
    xargs -0 bash -c "$(declare -f offences); offences \"\$@\"" _)
if [ -n "$found" ]; then
    echo "FAIL: only core/plugins.c may read a plugin's ops (use its mandate_store_*,"
    echo "mandate_backend_* and mandate_format_* calls):"
    echo "$found"
    exit 1
fi
n=$(cd "$src" && find core -name '*.[ch]' | wc -l)
echo "ok: no core file but core/plugins.c reads a plugin's ops ($n files)"
