#!/bin/sh
# Lays out a stub crate beside Cargo.toml (in the current directory): an empty source file
# at every target path the manifest names or implies — the library, binaries, benches,
# tests, examples — so that `cargo build` can compile the dependencies before the real
# sources are copied. Used by deploy/container/Dockerfile; checked by tests/deploy/check.sh.
set -eu
awk '
function flush() {
    if (kind == "") return
    if (path == "") {
        if (kind == "lib") path = "src/lib.rs"
        else if (kind == "bin") path = "src/bin/" name ".rs"
        else if (kind == "bench") path = "benches/" name ".rs"
        else if (kind == "test") path = "tests/" name ".rs"
        else if (kind == "example") path = "examples/" name ".rs"
    }
    print kind, path
    kind = ""; name = ""; path = ""
}
/^[ \t]*\[/ { flush() }
/^[ \t]*\[lib\]/ { kind = "lib" }
/^[ \t]*\[\[(bin|bench|test|example)\]\]/ { kind = $0; gsub(/[][ \t]/, "", kind) }
kind != "" && /^[ \t]*name[ \t]*=/ { name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name) }
kind != "" && /^[ \t]*path[ \t]*=/ { path = $0; sub(/^[^"]*"/, "", path); sub(/".*/, "", path) }
END { flush(); print "lib src/lib.rs"; print "bin src/main.rs" }
' Cargo.toml | while read -r kind path; do
    [ -e "$path" ] && continue
    mkdir -p "$(dirname "$path")"
    if [ "$kind" = lib ]; then : >"$path"; else echo 'fn main() {}' >"$path"; fi
done
