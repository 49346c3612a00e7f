#!/usr/bin/env bash
# Refresh the KaTeX files the report embeds (harness_app/report/katex/) from the npm registry's
# `katex` package: `npm pack` checks the tarball against the registry's integrity hash, and the
# hash is recorded in katex/VERSION. Only what the page needs is kept: the minified script and
# style, the auto-render extension, the woff2 fonts and the license. Needs npm; run by hand when
# bumping the version, never at report time (the page must open with no network).
set -euo pipefail
VERSION="${1:-0.19.1}"
cd "$(dirname "$0")/.."
dest=harness_app/report/katex
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "katex@$VERSION" >/dev/null && tar xzf "katex-$VERSION.tgz")
integrity="$(cd "$work" && npm view "katex@$VERSION" dist.integrity)"
dist="$work/package/dist"
rm -rf "$dest"
mkdir -p "$dest/fonts"
cp "$dist/katex.min.js" "$dist/katex.min.css" "$dist/contrib/auto-render.min.js" "$dest/"
cp "$dist"/fonts/*.woff2 "$dest/fonts/"
cp "$work/package/LICENSE" "$dest/LICENSE"
printf 'katex %s (npm registry, %s)\n' "$VERSION" "$integrity" >"$dest/VERSION"
echo "KaTeX $VERSION -> $dest"
