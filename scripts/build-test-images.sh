#!/usr/bin/env bash
# Builds the local images the agent's tests and `npm start` use, without a
# registry: each image is a root filesystem assembled from this host's files
# and loaded with `docker import`.
#
#   mominai/busybox:test  busybox-static only (sh, sleep, stty, ps, ...), user `app` (uid 1000)
#   mominai/node:test     the host's node + npm, the glibc libraries they and bash need,
#                         bash, util-linux's script, busybox, users root and `node` (uid 1000), CA certificates;
#                         also tagged node:20-bullseye (the default image) when that tag is free
#
# Usage: scripts/build-test-images.sh [busybox|node]...   (default: both)
# An image that already exists is kept unless FORCE=1.
# Needs: a Docker engine, busybox-static (/bin/busybox), node and npm on PATH,
# ldd, tar. On Debian 12: apt-get install docker.io busybox-static.
set -euo pipefail

FORCE="${FORCE:-0}"
BUSYBOX_IMAGE="mominai/busybox:test"
NODE_IMAGE="mominai/node:test"
DEFAULT_IMAGE_TAG="node:20-bullseye"
SYSTEM_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
IMAGE_MARK="built by mominai scripts/build-test-images.sh"

log() { printf '[build-test-images] %s\n' "$*" >&2; }
die() { printf '[build-test-images] error: %s\n' "$*" >&2; exit 1; }

# Staging folders, removed when the script exits, whatever the outcome.
STAGING=()
cleanup() { [ ${#STAGING[@]} -eq 0 ] || rm -rf "${STAGING[@]}"; }
trap cleanup EXIT
new_rootfs() { mktemp -d "${TMPDIR:-/tmp}/mominai-rootfs.XXXXXX"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

check_prerequisites() {
  command -v docker >/dev/null 2>&1 || die "the docker client is not installed (apt-get install docker.io)"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer; start it (e.g. \`nohup dockerd >/var/log/dockerd.log 2>&1 &\`) or set DOCKER_HOST"
  command -v tar >/dev/null 2>&1 || die "tar is not installed"
}

# A statically linked busybox, so the image needs no libraries for it.
find_busybox() {
  local candidate
  for candidate in /bin/busybox /usr/bin/busybox "$(command -v busybox 2>/dev/null || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    # ldd fails on a static binary: read its message, not its status.
    if [[ "$(ldd "$candidate" 2>&1 || true)" == *'not a dynamic executable'* ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  die "no statically linked busybox found (apt-get install busybox-static provides /bin/busybox)"
}

# Installs busybox at /bin/busybox and a symlink for every applet whose path is still free.
install_busybox() {
  local root="$1" bb="$2" applet
  mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin"
  cp "$bb" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  while IFS= read -r applet; do
    [ -n "$applet" ] || continue
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$bb" --list-full)
  # Scripts start with `#!/usr/bin/env node`: env must be there whatever the applet list says.
  [ -e "$root/usr/bin/env" ] || ln -s /bin/busybox "$root/usr/bin/env"
}

# /tmp, /workspace, the home of the uid-1000 user, passwd and group.
install_base() {
  local root="$1" user="$2"
  mkdir -p "$root/etc" "$root/tmp" "$root/workspace" "$root/root" "$root/home/$user" "$root/proc" "$root/sys" "$root/dev"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
$user:x:1000:1000:$user:/home/$user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<EOF
root:x:0:
$user:x:1000:
nogroup:x:65534:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
  if [ "$(id -u)" = 0 ]; then
    chown 1000:1000 "$root/home/$user" "$root/workspace"
  else
    log "not running as root: /home/$user and /workspace are made world-writable instead of owned by uid 1000"
    chmod 1777 "$root/home/$user" "$root/workspace"
  fi
}

# Copies a file to the same path under root, following symlinks.
copy_path() {
  local root="$1" file="$2"
  mkdir -p "$root/$(dirname "$file")"
  cp -L "$file" "$root/$file"
}

# Copies every shared library a dynamically linked binary needs, and the loader.
copy_libs() {
  local root="$1" bin="$2" lib
  while IFS= read -r lib; do
    [ -n "$lib" ] && copy_path "$root" "$lib"
  done < <(ldd "$bin" | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+ \(/{print $1}')
}

# Packs root as one layer (numeric owners, so uid 1000 stays 1000) and drops
# the image it replaces when nothing else uses it.
import_rootfs() {
  local root="$1" tag="$2" old
  shift 2
  old="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
  tar --numeric-owner -C "$root" -c . | docker import --message "$IMAGE_MARK" "$@" - "$tag" >/dev/null
  drop_if_untagged "$old"
}

drop_if_untagged() {
  [ -n "$1" ] && [ "$(docker image inspect --format '{{len .RepoTags}}' "$1" 2>/dev/null || true)" = 0 ] || return 0
  docker image rm "$1" >/dev/null 2>&1 || true
}

# True when the tag names an image this script made (its import message says so).
made_here() { [ "$(docker image inspect --format '{{.Comment}}' "$1" 2>/dev/null || true)" = "$IMAGE_MARK" ]; }

build_busybox() {
  if image_exists "$BUSYBOX_IMAGE" && [ "$FORCE" != 1 ]; then
    log "$BUSYBOX_IMAGE exists (FORCE=1 rebuilds it)"
    return
  fi
  local started=$SECONDS root bb
  bb="$(find_busybox)"
  root="$(new_rootfs)"
  STAGING+=("$root")
  log "building $BUSYBOX_IMAGE from $bb"
  install_base "$root" app
  install_busybox "$root" "$bb"
  import_rootfs "$root" "$BUSYBOX_IMAGE" \
    --change "ENV PATH=$SYSTEM_PATH" \
    --change 'WORKDIR /workspace' \
    --change 'CMD ["sh"]'
  log "built $BUSYBOX_IMAGE in $((SECONDS - started)) s"
}

build_node() {
  if image_exists "$NODE_IMAGE" && [ "$FORCE" != 1 ]; then
    log "$NODE_IMAGE exists (FORCE=1 rebuilds it)"
  else
    local started=$SECONDS root bb node bash npm_dir
    bb="$(find_busybox)"
    node="$(command -v node || true)"
    [ -n "$node" ] || die "node is not installed on this host; the node image copies the host's node binary"
    node="$(readlink -f "$node")"
    command -v npm >/dev/null 2>&1 || die "npm is not installed on this host; the node image copies the host's npm"
    npm_dir="$(npm root -g 2>/dev/null)/npm"
    [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm's install folder was not found at $npm_dir"
    bash="$(command -v bash || true)"
    [ -n "$bash" ] || die "bash is not installed on this host"
    bash="$(readlink -f "$bash")"
    command -v ldd >/dev/null 2>&1 || die "ldd is not installed (Debian package libc-bin)"

    root="$(new_rootfs)"
    STAGING+=("$root")
    log "building $NODE_IMAGE from $node ($("$node" --version)), npm in $npm_dir, $bash, $bb"
    install_base "$root" node
    mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules"
    cp "$node" "$root/usr/local/bin/node"
    copy_libs "$root" "$node"
    cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    mkdir -p "$root/bin"
    cp "$bash" "$root/bin/bash"
    copy_libs "$root" "$bash"
    # script(1) from util-linux, as in Debian's node images (bsdutils): the session daemon's PTYs.
    if [ -x /usr/bin/script ]; then
      mkdir -p "$root/usr/bin"
      cp /usr/bin/script "$root/usr/bin/script"
      copy_libs "$root" /usr/bin/script
    else
      log "warning: /usr/bin/script not found (apt-get install bsdutils); terminals in the node image use docker exec"
    fi
    install_busybox "$root" "$bb"

    local changes=(--change "ENV PATH=$SYSTEM_PATH" --change 'WORKDIR /workspace' --change 'CMD ["sh"]')
    if [ -f "$CA_BUNDLE" ]; then
      copy_path "$root" "$CA_BUNDLE"
      changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$CA_BUNDLE" --change "ENV SSL_CERT_FILE=$CA_BUNDLE")
    else
      log "warning: $CA_BUNDLE not found; HTTPS through an intercepting proxy will fail inside the image"
    fi
    import_rootfs "$root" "$NODE_IMAGE" "${changes[@]}"
    log "built $NODE_IMAGE ($(du -sh "$root" | cut -f1)) in $((SECONDS - started)) s"
  fi

  # The default image tag is only ever taken when free, or moved when it is already ours.
  if image_exists "$DEFAULT_IMAGE_TAG" && ! made_here "$DEFAULT_IMAGE_TAG"; then
    log "$DEFAULT_IMAGE_TAG exists and was not built here; left as it is"
  elif [ "$(docker image inspect --format '{{.Id}}' "$DEFAULT_IMAGE_TAG" 2>/dev/null || true)" = "$(docker image inspect --format '{{.Id}}' "$NODE_IMAGE")" ]; then
    log "$DEFAULT_IMAGE_TAG is $NODE_IMAGE"
  else
    local old
    old="$(docker image inspect --format '{{.Id}}' "$DEFAULT_IMAGE_TAG" 2>/dev/null || true)"
    docker tag "$NODE_IMAGE" "$DEFAULT_IMAGE_TAG"
    drop_if_untagged "$old"
    log "tagged $NODE_IMAGE as $DEFAULT_IMAGE_TAG"
  fi
}

main() {
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(busybox node)
  check_prerequisites
  # Test workers may ask for the same image at once: one builds, the others then find it.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/mominai-build-test-images.lock"
    flock 9
  fi
  local t
  for t in "${targets[@]}"; do
    case "$t" in
      busybox) build_busybox ;;
      node) build_node ;;
      *) die "unknown image \"$t\" (expected busybox or node)" ;;
    esac
  done
}

main "$@"
