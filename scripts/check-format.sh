#!/bin/sh
# Fails when a C file is not formatted with the committed .clang-format.
cd "$(dirname "$0")/.." || exit 1
command -v clang-format >/dev/null || { echo "format-check: clang-format missing, skipped"; exit 0; }
bad=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || ls src/*.c src/*.h); do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "format-check: $f is not formatted (run make format)"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "format-check: ok"
exit $bad
