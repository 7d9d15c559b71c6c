#!/bin/bash
# Builds what the qemu harness boots: a Debian cloud kernel that has NET_DM as a module (the host
# kernel has no NET_DM family at all) and initramfs layers. Everything goes to test/qemu/cache/
# (gitignored). Each step is idempotent and keyed by a content hash, so a repeated test run only
# pays for what changed (usually the project layer, because dist/ was rebuilt).
#
# Usage: setup.sh check            prints "missing: ..." lines for absent prerequisites, exit 1 if any
#        setup.sh kernel           fetch + unpack the kernel .deb; prints KERNEL_DIR=...
#        setup.sh base             busybox, node, Debian dropwatch/dwdump/tcpdump, modules, /init
#        setup.sh project          the project's package.json, bin/, dist/, build/ (with the shared libraries its addons
#                                  link beyond node's: libbpf, libelf, libz), production node_modules
#        setup.sh python           optional layer: python3 + stdlib (only the fixture capture uses it)
#        setup.sh check-hw         prints "missing: ..." lines for what the hw layer needs, exit 1 if any
#        setup.sh hw               optional layer: psample.ko, netdevsim.ko (built once per kernel package, kept in
#                                  the machine-wide cache) and iproute2's devlink, for hardware (devlink trap) drops
#        setup.sh all              kernel + base + project
# Each layer step prints LAYER_<NAME>=<path of a .cpio>. Env: DWQ_KERNEL_PKG pins the kernel
# package, DWQ_NODE the node binary copied into the guest (default: the node on PATH), DWQ_SHARED_CACHE the
# machine-wide cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/dropwatch-qemu).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/cache"
mkdir -p "$CACHE"

# The fixtures in test/fixtures/netdm were captured with this package; a newer 6.1 ABI is accepted
# when Debian has dropped this one from the archive (it does after point releases).
DEFAULT_KERNEL_PKG="linux-image-6.1.0-56-cloud-amd64-unsigned"

STDBUF_LIB=/usr/libexec/coreutils/libstdbuf.so

log() { echo "setup.sh: $*" >&2; }

need_cmds() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=("qemu-system-x86_64 (Debian package qemu-system-x86)")
  command -v cpio >/dev/null || missing+=("cpio (Debian package cpio)")
  command -v ldd >/dev/null || missing+=("ldd (Debian package libc-bin)")
  command -v dpkg-deb >/dev/null || missing+=("dpkg-deb")
  if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then :; else
    missing+=("a static /bin/busybox (Debian package busybox-static)")
  fi
  # Debian's dropwatch is unpacked into the cache, never installed: installing it would take /usr/bin/dropwatch
  # from ours. Its shared libraries must be on the host for ldd to find them.
  # Read once, then searched: "ldconfig -p | grep -q" fails under pipefail whenever grep exits before ldconfig has
  # written everything (SIGPIPE), which made the qemu tests skip at random on a loaded machine.
  local lib cache
  cache="$(ldconfig -p)"
  for lib in libnl-3.so.200 libnl-genl-3.so.200 libreadline.so.8 libpcap.so.0.8; do
    grep -qF "$lib" <<<"$cache" || missing+=("$lib (Debian packages libnl-3-200 libnl-genl-3-200 libreadline8 libpcap0.8)")
  done
  command -v chrt >/dev/null || missing+=("chrt (Debian package util-linux)")
  [ -f "$STDBUF_LIB" ] || missing+=("$STDBUF_LIB (Debian package coreutils)")
  if ! [ -x "$CACHE/dropwatch-deb/usr/bin/dropwatch" ]; then
    command -v apt-get >/dev/null || missing+=("apt-get (to download Debian's dropwatch package)")
  fi
  # The kernel comes from the Debian archive unless it is cached already.
  if ! ls "$CACHE"/kernel-*/vmlinuz >/dev/null 2>&1; then
    command -v apt-get >/dev/null || missing+=("apt-get (to download the kernel package)")
  fi
  printf 'missing: %s\n' "${missing[@]+"${missing[@]}"}" | grep -v '^missing: $' || true
  [ ${#missing[@]} -eq 0 ]
}

# Picks the kernel package: the pinned one if the archive has it, else the newest 6.1 cloud one.
pick_kernel_pkg() {
  if [ -n "${DWQ_KERNEL_PKG:-}" ]; then echo "$DWQ_KERNEL_PKG"; return; fi
  if apt-cache show "$DEFAULT_KERNEL_PKG" >/dev/null 2>&1; then echo "$DEFAULT_KERNEL_PKG"; return; fi
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' |
    awk '{print $1}' | sort -V | tail -1
}

do_kernel() {
  local existing
  existing="$(ls -d "$CACHE"/kernel-* 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "${DWQ_KERNEL_PKG:-}" ] && [ -n "$existing" ] && [ -f "$existing/vmlinuz" ] && [ -f "$existing/drop_monitor.ko" ]; then
    echo "KERNEL_DIR=$existing"; return
  fi
  local pkg
  pkg="$(pick_kernel_pkg)"
  [ -n "$pkg" ] || { log "no linux-image-6.1.0-*-cloud-amd64-unsigned in apt-cache (run apt-get update)"; exit 1; }
  local dir="$CACHE/kernel-${pkg#linux-image-}"
  if [ ! -f "$dir/vmlinuz" ]; then
    log "downloading $pkg"
    local tmp
    tmp="$(mktemp -d "$CACHE/dl.XXXXXX")"
    (cd "$tmp" && apt-get download "$pkg" >&2 2>/dev/null) || (cd "$tmp" && apt-get download "$pkg" >&2)
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    # Filled in a temporary directory and renamed: another process may be looking for vmlinuz.
    local final="$dir"
    dir="$tmp/k"
    mkdir -p "$dir"
    local kver
    kver="$(ls "$tmp/x/lib/modules")"
    cp "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz"
    cp "$tmp"/x/boot/config-* "$dir/config"
    # The modules are uncompressed in Debian 6.1 (CONFIG_MODULE_COMPRESS_NONE); decompress in case
    # a later package changes that, since busybox insmod cannot read .ko.xz.
    for m in net/core/drop_monitor drivers/net/nlmon; do
      local f="$tmp/x/lib/modules/$kver/kernel/$m.ko"
      if [ -f "$f" ]; then cp "$f" "$dir/"
      elif [ -f "$f.xz" ]; then xz -dc "$f.xz" >"$dir/$(basename "$m").ko"
      elif [ -f "$f.zst" ]; then zstd -qdc "$f.zst" >"$dir/$(basename "$m").ko"
      fi
    done
    echo "$pkg" >"$dir/package"
    echo "$kver" >"$dir/release"
    dpkg-deb -f "$tmp"/*.deb Version >"$dir/version"
    [ -f "$final/vmlinuz" ] || { rm -rf "$final"; mv "$dir" "$final"; }
    dir="$final"
    rm -rf "$tmp"
  fi
  echo "KERNEL_DIR=$dir"
}

# Copies every shared library (and the loader) that ldd names for a file into the staging root.
copy_libs_of() {
  local stage="$1" file="$2" lib
  for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$stage$lib" ] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
}

# Copies binaries to the same paths in the staging root, with their shared libraries.
copy_with_libs() {
  local stage="$1"; shift
  local bin
  for bin in "$@"; do
    mkdir -p "$stage$(dirname "$bin")"
    cp -L "$bin" "$stage$bin"
    copy_libs_of "$stage" "$bin"
  done
}

# Packs a staging dir into a newc cpio (what the kernel's initramfs unpacker reads). Uncompressed on
# purpose: gunzip of the ~50 MB base layer costs about 1 s of every boot under TCG, disk is cheap.
pack() {
  local stage="$1" out="$2"
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >"$out.tmp")
  mv "$out.tmp" "$out"
}

# sha256 over file contents and names (not mtimes: tsc rewrites dist/ on every build). One
# sha256sum for all files: a process per file costs tens of seconds on a loaded 2-core machine.
hash_files() {
  local f existing=()
  for f in "$@"; do [ -e "$f" ] && existing+=("$f"); done
  [ ${#existing[@]} -gt 0 ] || { echo empty; return; }
  find "${existing[@]}" \( -type f -o -type l \) -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16
}

node_bin() { readlink -f "${DWQ_NODE:-$(command -v node)}"; }

# Debian's dropwatch and dwdump, the reference to compare with, unpacked from the archive's .deb into the cache.
reference_tools() {
  local dir="$CACHE/dropwatch-deb"
  if ! [ -x "$dir/usr/bin/dropwatch" ]; then
    local tmp
    tmp="$(mktemp -d "$CACHE/deb.XXXXXX")"
    (cd "$tmp" && apt-get download -qq dropwatch >&2) || { rm -rf "$tmp"; log "cannot download dropwatch"; return 1; }
    rm -rf "$dir.tmp" && dpkg-deb -x "$tmp"/dropwatch_*.deb "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
    rm -rf "$tmp"
  fi
  echo "$dir/usr/bin/dropwatch" "$dir/usr/bin/dwdump"
}

do_base() {
  local kdir
  kdir="$(do_kernel | sed -n 's/^KERNEL_DIR=//p')"
  local node
  node="$(node_bin)"
  local refs
  read -r -a refs <<<"$(reference_tools)"
  local tools=()
  command -v tcpdump >/dev/null && tools+=("$(readlink -f "$(command -v tcpdump)")")
  # bash: its /dev/udp/HOST/PORT redirection sends a datagram per write from a builtin, so guest sessions make
  # drops without paying a node start (~3 s under TCG) per burst. chrt: a SCHED_FIFO sender is never preempted by
  # drop_monitor's (SCHED_OTHER) worker, so a burst reliably outruns a short kernel queue. libstdbuf (coreutils):
  # line-buffered stdout for Debian's dropwatch, so a session can wait for its "activated" line instead of sleeping.
  tools+=(/bin/bash "$(readlink -f "$(command -v chrt)")" "$STDBUF_LIB")
  local h
  h="$(hash_files "$HERE/init.sh" "$HERE/setup.sh" /bin/busybox "$node" "${refs[@]}" "${tools[@]}" "$kdir/drop_monitor.ko" "$kdir/nlmon.ko")"
  local out="$CACHE/base-$h.cpio"
  if [ ! -f "$out" ]; then
    log "building base layer $out"
    local stage
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,guest,lib/modules,project}
    cp /bin/busybox "$stage/bin/busybox"
    cp "$HERE/init.sh" "$stage/init"
    chmod 755 "$stage/init"
    cp "$kdir/drop_monitor.ko" "$stage/lib/modules/"
    [ -f "$kdir/nlmon.ko" ] && cp "$kdir/nlmon.ko" "$stage/lib/modules/"
    cp "$kdir/release" "$stage/etc/dwq-kernel-release"
    copy_with_libs "$stage" "$node" "${tools[@]}"
    local ref
    for ref in "${refs[@]}"; do
      cp "$ref" "$stage/usr/bin/"
      copy_libs_of "$stage" "$ref"
    done
    [ "$node" = /usr/bin/node ] || ln -s "$node" "$stage/usr/bin/node"
    # tcpdump drops privileges to this user by default; -Z root avoids needing it, but keep a passwd
    # so libc lookups answer.
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
    printf 'root:x:0:\n' >"$stage/etc/group"
    printf '127.0.0.1 localhost\n' >"$stage/etc/hosts"
    pack "$stage" "$out"
    rm -rf "$stage"
    # Old layers are dead weight once inputs changed.
    find "$CACHE" -maxdepth 1 -name 'base-*.cpio' ! -name "base-$h.cpio" -delete
  fi
  echo "KERNEL_DIR=$kdir"
  echo "LAYER_BASE=$out"
}

# Production dependencies only: the guest runs the built program, not the toolchain (typescript,
# eslint and prettier would triple the image and the boot time).
prod_modules() {
  (cd "$ROOT" && node -e '
    const lock = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
    for (const [p, v] of Object.entries(lock.packages ?? {}))
      if (p.startsWith("node_modules/") && !v.dev && !v.devOptional && !v.link) console.log(p);
  ' 2>/dev/null || true)
}

# The shared libraries the built addons link that the base layer's node does not bring (the bpf addon's libbpf, libelf
# and libz), so `-b bpf` loads in the guest. Paths as ldd resolves them on this host.
addon_libs() {
  local node_libs f lib
  node_libs="$(ldd "$(node_bin)" 2>/dev/null | grep -o '/[^ ]*' || true)"
  for f in "$ROOT"/build/Release/*.node; do
    [ -f "$f" ] || continue
    for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true); do
      grep -qxF "$lib" <<<"$node_libs" || echo "$lib"
    done
  done | LC_ALL=C sort -u
}

do_project() {
  local items=(package.json bin dist build)
  local mods libs
  mods="$(prod_modules)"
  libs="$(addon_libs)"
  local h
  h="$(cd "$ROOT" && hash_files "${items[@]}" $mods $libs)"
  local out="$CACHE/project-$h.cpio"
  if [ ! -f "$out" ]; then
    log "building project layer $out"
    local stage
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    mkdir -p "$stage/project"
    local i
    for i in "${items[@]}" $mods; do
      [ -e "$ROOT/$i" ] || continue
      mkdir -p "$stage/project/$(dirname "$i")"
      cp -a "$ROOT/$i" "$stage/project/$i"
    done
    local lib
    for lib in $libs; do
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$lib" "$stage$lib"
    done
    # The test fixtures are read by guest-side tests; small, so always in.
    [ -d "$ROOT/test/fixtures" ] && mkdir -p "$stage/project/test" && cp -a "$ROOT/test/fixtures" "$stage/project/test/"
    pack "$stage" "$out"
    rm -rf "$stage"
    find "$CACHE" -maxdepth 1 -name 'project-*.cpio' ! -name "project-$h.cpio" -delete
  fi
  echo "LAYER_PROJECT=$out"
}

do_python() {
  local py=/usr/bin/python3
  [ -x "$py" ] || { log "missing /usr/bin/python3 (Debian package python3)"; exit 1; }
  local real ver
  real="$(readlink -f "$py")"
  ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  local h
  h="$(hash_files "$real" "$HERE/setup.sh" | cut -c1-16)-$ver"
  local out="$CACHE/python-$h.cpio"
  if [ ! -f "$out" ]; then
    log "building python layer $out"
    local stage
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    copy_with_libs "$stage" "$real"
    [ "$real" = /usr/bin/python3 ] || ln -s "$real" "$stage/usr/bin/python3"
    mkdir -p "$stage/usr/lib"
    # The stdlib minus the big parts nothing here imports.
    (cd /usr/lib && tar -cf - --exclude='__pycache__' --exclude="python$ver/test" --exclude="python$ver/idlelib" \
      --exclude="python$ver/tkinter" --exclude="python$ver/ensurepip" --exclude="python$ver/lib2to3" \
      --exclude="python$ver/pydoc_data" --exclude="python$ver/config-*" --exclude="python$ver/dist-packages" \
      --exclude="python$ver/site-packages" "python$ver") | tar -xf - -C "$stage/usr/lib"
    local so
    for so in "$stage/usr/lib/python$ver"/lib-dynload/*.so; do copy_libs_of "$stage" "$so"; done
    pack "$stage" "$out"
    rm -rf "$stage"
  fi
  echo "LAYER_PYTHON=$out"
}

# The machine-wide cache: outside the clone, so a fresh clone (every CI run) does not pay the kernel source download
# and the netdevsim build again. Keyed by the kernel package and its version, which alone decide the module.
shared_cache() {
  if [ -n "${DWQ_SHARED_CACHE:-}" ]; then echo "$DWQ_SHARED_CACHE"
  elif [ -n "${XDG_CACHE_HOME:-}" ]; then echo "$XDG_CACHE_HOME/dropwatch-qemu"
  elif [ -n "${HOME:-}" ]; then echo "$HOME/.cache/dropwatch-qemu"
  else echo /var/cache/dropwatch-qemu
  fi
}

# The vermagic string of a module (its .modinfo entry), without needing kmod's modinfo.
vermagic() { tr '\0' '\n' <"$1" | sed -n 's/^vermagic=//p' | head -n 1; }

need_hw_cmds() {
  local missing=()
  command -v devlink >/dev/null || missing+=("devlink (Debian package iproute2)")
  command -v flock >/dev/null || missing+=("flock (Debian package util-linux)")
  local kdir
  kdir="$(ls -d "$CACHE"/kernel-* 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$kdir" ] || ! [ -f "$(hw_module_dir "$kdir")/netdevsim.ko" ]; then
    # Not built yet for this kernel: the toolchain the Debian kernel was built with, and the archive.
    command -v gcc-12 >/dev/null || missing+=("gcc-12 (Debian package gcc-12)")
    command -v make >/dev/null || missing+=("make (Debian package make)")
    command -v strip >/dev/null || missing+=("strip (Debian package binutils)")
    command -v xz >/dev/null || missing+=("xz (Debian package xz-utils)")
    command -v apt-get >/dev/null || missing+=("apt-get (to download the kernel headers and source)")
  fi
  printf 'missing: %s\n' "${missing[@]+"${missing[@]}"}" | grep -v '^missing: $' || true
  [ ${#missing[@]} -eq 0 ]
}

hw_module_dir() {
  local kdir="$1"
  [ -f "$kdir/package" ] && [ -f "$kdir/version" ] || { echo "$kdir/no-package-version"; return; }
  echo "$(shared_cache)/modules/$(cat "$kdir/package")_$(cat "$kdir/version")"
}

# Builds netdevsim.ko out of tree for the cached kernel, as Debian would have: its flavour headers, their common
# headers and kbuild, and drivers/net/netdevsim/ alone from the kernel source, all at the kernel package's version,
# compiled with gcc-12. psample.ko (netdevsim needs it) comes from the kernel package itself.
build_hw_modules() {
  local kdir="$1" out="$2"
  local pkg ver rel series abi
  pkg="$(cat "$kdir/package")"
  ver="$(cat "$kdir/version")"
  rel="$(cat "$kdir/release")"                        # 6.1.0-56-cloud-amd64
  series="$(cut -d. -f1,2 <<<"$rel")"                 # 6.1
  abi="$(sed -E 's/^([0-9.]+-[0-9]+)-.*/\1/' <<<"$rel")" # 6.1.0-56
  log "building netdevsim.ko for $rel ($pkg $ver), once per machine, into $out"
  local tmp
  tmp="$(mktemp -d "$(dirname "$out")/build.XXXXXX")"
  # The headers want kbuild at least at their version; the archive may only have a later upload of the same series.
  (cd "$tmp" && apt-get download -qq "$pkg=$ver" "linux-headers-$rel=$ver" "linux-headers-$abi-common=$ver" \
    "linux-source-$series=$ver" "linux-kbuild-$series" >&2) || { rm -rf "$tmp"; log "cannot download the kernel headers and source for $rel"; return 1; }
  local d
  mkdir -p "$tmp/x"
  for d in "$tmp"/*.deb; do
    # Of the kernel package only psample.ko: unpacking every module would cost more than the download.
    case "$d" in
      "$tmp/$pkg"_*) dpkg-deb --fsys-tarfile "$d" | tar -x -C "$tmp/x" --wildcards '*/psample.ko*' ;;
      *) dpkg-deb -x "$d" "$tmp/x" ;;
    esac
  done
  local headers="$tmp/x/usr/src/linux-headers-$rel"
  # The flavour headers include the common ones by absolute path (/usr/src/...): point them at the unpacked copy.
  sed -i "s#^include /usr/src/#include $tmp/x/usr/src/#" "$headers/Makefile"
  tar -xJf "$tmp/x/usr/src/linux-source-$series.tar.xz" -C "$tmp" "linux-source-$series/drivers/net/netdevsim"
  local src="$tmp/linux-source-$series/drivers/net/netdevsim"
  make -s -j"$(nproc)" -C "$headers" M="$src" CONFIG_NETDEVSIM=m CC=gcc-12 modules >&2 ||
    { rm -rf "$tmp"; log "netdevsim build failed"; return 1; }
  local psample
  psample="$(find "$tmp/x/lib/modules" -name 'psample.ko*' | head -n 1)"
  [ -n "$psample" ] || { rm -rf "$tmp"; log "no psample.ko in $pkg"; return 1; }
  mkdir -p "$tmp/out"
  case "$psample" in
    *.xz) xz -dc "$psample" >"$tmp/out/psample.ko" ;;
    *.zst) zstd -qdc "$psample" >"$tmp/out/psample.ko" ;;
    *) cp "$psample" "$tmp/out/psample.ko" ;;
  esac
  # Debug info is most of the file and the guest unpacks every byte of its initramfs on each boot.
  strip --strip-debug -o "$tmp/out/netdevsim.ko" "$src/netdevsim.ko"
  local want got
  want="$(vermagic "$kdir/drop_monitor.ko")"
  got="$(vermagic "$tmp/out/netdevsim.ko")"
  if [ -z "$want" ] || [ "$got" != "$want" ]; then
    rm -rf "$tmp"; log "netdevsim.ko vermagic '$got' is not the kernel's '$want'"; return 1
  fi
  echo "$got" >"$tmp/out/vermagic"
  echo "$pkg $ver" >"$tmp/out/kernel-package"
  rm -rf "$out" && mv "$tmp/out" "$out"
  rm -rf "$tmp"
}

# The hw layer: psample.ko and netdevsim.ko next to drop_monitor.ko, and iproute2's devlink (busybox has none).
do_hw() {
  local kdir
  kdir="$(do_kernel | sed -n 's/^KERNEL_DIR=//p')"
  local mods
  mods="$(hw_module_dir "$kdir")"
  if ! [ -f "$mods/netdevsim.ko" ]; then
    mkdir -p "$(dirname "$mods")"
    # Another test process (another clone on this machine) may be building the same module: one build, both use it.
    (
      flock 9
      [ -f "$mods/netdevsim.ko" ] || build_hw_modules "$kdir" "$mods"
    ) 9>"$(dirname "$mods")/.build.lock" || exit 1
  fi
  local devlink
  devlink="$(readlink -f "$(command -v devlink)")"
  local h
  h="$(hash_files "$HERE/setup.sh" "$mods/netdevsim.ko" "$mods/psample.ko" "$devlink")"
  local out="$CACHE/hw-$h.cpio"
  if [ ! -f "$out" ]; then
    log "building hw layer $out"
    local stage
    stage="$(mktemp -d "$CACHE/stage.XXXXXX")"
    mkdir -p "$stage/lib/modules" "$stage/usr/sbin"
    cp "$mods/psample.ko" "$mods/netdevsim.ko" "$stage/lib/modules/"
    cp "$devlink" "$stage/usr/sbin/devlink"
    copy_libs_of "$stage" "$devlink"
    # The base layer has node's libraries (libc and the loader among them): not twice on every boot.
    local lib
    for lib in $(ldd "$(node_bin)" 2>/dev/null | grep -o '/[^ ]*' || true); do rm -f "$stage$lib"; done
    pack "$stage" "$out"
    rm -rf "$stage"
    find "$CACHE" -maxdepth 1 -name 'hw-*.cpio' ! -name "hw-$h.cpio" -delete
  fi
  echo "LAYER_HW=$out"
}

case "${1:-all}" in
  check) need_cmds ;;
  kernel) do_kernel ;;
  base) do_base ;;
  project) do_project ;;
  python) do_python ;;
  check-hw) need_hw_cmds ;;
  hw) do_hw ;;
  all) do_base; do_project ;;
  *) echo "usage: $0 check|kernel|base|project|python|check-hw|hw|all" >&2; exit 2 ;;
esac
