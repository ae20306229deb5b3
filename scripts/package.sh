#!/bin/bash
# Builds the Debian package virt-lvmlockd_<version>_all.deb with dpkg-deb alone (no debhelper):
# the compiled daemon and CLI with their production node_modules under /usr/lib/virt-lvmlockd,
# wrappers in /usr/bin, the systemd unit, the D-Bus policy, the qemu hook, the configuration as a
# conffile, man pages and a DEP-5 copyright file.
#   bash scripts/package.sh [--out DIR]      (default DIR: dist/)
# Needs node, npm, dpkg-deb, gzip; the npm packages come from the lockfile (npm's cache or registry).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

out=dist
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    *) echo "package.sh: unknown argument $1 (usage: package.sh [--out DIR])" >&2; exit 2 ;;
  esac
done
for tool in node npm dpkg-deb gzip; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing" >&2; exit 1; }
done

LIB=usr/lib/virt-lvmlockd
NODE_MIN=18.20
version=$(node -p 'require("./package.json").version')
# Reproducible: every date in the package is the last commit's (or now, outside git).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# One step, bounded: npm or tsc hanging on a dead registry must not hold the build forever.
run() { timeout --kill-after=10s 600s "$@"; }

stage=$ROOT/.cache/package/stage
pkg=$stage/root
rm -rf "$stage" && mkdir -p "$pkg/DEBIAN" "$pkg/$LIB"

echo "package: compiling" >&2
[ -x node_modules/.bin/tsc ] || run npm ci --no-audit --no-fund
run npx tsc -p tsconfig.json

# Only the .js of sources that exist (dist/ may hold files of deleted sources) and no source maps
# (they point at .ts files the package does not ship; stack traces name the .js lines).
(cd src && find . -name '*.ts' -printf '%P\n') | while read -r ts; do
  install -D -m 644 "dist/src/${ts%.ts}.js" "$pkg/$LIB/dist/src/${ts%.ts}.js"
done
node -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license,
                 type: p.type, engines: p.engines, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' > "$pkg/$LIB/package.json"

echo "package: installing the production dependencies" >&2
cp package-lock.json "$pkg/$LIB/"
(cd "$pkg/$LIB" && run npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
rm -rf "$pkg/$LIB/package-lock.json" "$pkg/$LIB/node_modules/.package-lock.json" "$pkg/$LIB/node_modules/.bin"
node dist/scripts/package/copyright.js "$pkg/$LIB/node_modules" "/$LIB" > "$stage/copyright"
# What Node never loads: type declarations, TypeScript sources, source maps, docs, licence files
# (their texts are in the copyright file), and dotfiles.
find "$pkg/$LIB/node_modules" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
  -o -iname '*.md' -o -iname '*.markdown' -o -iname 'licen[cs]e*' -o -iname 'copying*' -o -iname 'changelog*' \
  -o -name '.*' \) -delete
find "$pkg/$LIB/node_modules" -depth -type d -empty -delete

install -D -m 755 src/hook/qemu "$pkg/$LIB/hooks/qemu"
install -d "$pkg/etc/libvirt/hooks/qemu.d"
# A symlink, not a copy: it goes away with the package (a conffile would stay after a remove and
# refuse every guest start with the daemon gone), and it always matches the installed daemon.
ln -s "/$LIB/hooks/qemu" "$pkg/etc/libvirt/hooks/qemu.d/virt-lvmlockd"
install -D -m 755 packaging/virt-lvmlockd.wrapper "$pkg/usr/bin/virt-lvmlockd"
install -D -m 755 packaging/virt-lvmlockctl.wrapper "$pkg/usr/bin/virt-lvmlockctl"
install -D -m 644 systemd/virt-lvmlockd.service "$pkg/usr/lib/systemd/system/virt-lvmlockd.service"
install -D -m 644 systemd/org.virtlvmlockd.conf "$pkg/usr/share/dbus-1/system.d/org.virtlvmlockd.conf"
install -D -m 644 config/virt-lvmlockd.yaml "$pkg/etc/virt-lvmlockd/config.yaml"
for page in man/*.[1-8]; do
  section=${page##*.}
  install -D -m 644 "$page" "$pkg/usr/share/man/man$section/${page##*/}"
  gzip -9n "$pkg/usr/share/man/man$section/${page##*/}"
done
for prog in virt-lvmlockctl virt-lvmlockd; do
  install -D -m 644 "packaging/bash-completion/$prog" "$pkg/usr/share/bash-completion/completions/$prog"
done
doc=$pkg/usr/share/doc/virt-lvmlockd
install -D -m 644 "$stage/copyright" "$doc/copyright"
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" packaging/changelog | gzip -9n > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"

# npm leaves whatever modes the tarballs had: normalise, keeping only our own executables.
find "$pkg" -path "$pkg/DEBIAN" -prune -o -type d -exec chmod 755 {} +
find "$pkg/$LIB/dist" "$pkg/$LIB/node_modules" -type f -exec chmod 644 {} +
# Files that start with #! are programs (our two entry points, the bundled packages' CLIs).
find "$pkg/$LIB/dist" "$pkg/$LIB/node_modules" -type f -exec sh -c 'for f; do [ "$(head -c 2 "$f")" = "#!" ] && chmod 755 "$f"; done; true' sh {} +
install -D -m 644 packaging/lintian-overrides "$pkg/usr/share/lintian/overrides/virt-lvmlockd"

install -m 755 packaging/postinst packaging/prerm packaging/postrm "$pkg/DEBIAN/"
install -m 644 packaging/conffiles "$pkg/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@NODE_MIN@/$NODE_MIN/" packaging/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 644 "$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb=$out/virt-lvmlockd_${version}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "package: built $deb ($(du -k "$deb" | cut -f1) KiB)"
