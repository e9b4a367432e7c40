#!/usr/bin/env bash
# Builds a stand-in for the distroless Node.js 24 runtime base where no registry is reachable: an image
# assembled FROM scratch out of this host's Node 24 binary and exactly the shared libraries it loads
# (ldd), plus what distroless ships around it: /etc/passwd and /etc/group with nonroot (65532), the CA
# bundle, /tmp. Same layout as gcr.io/distroless/nodejs24-debian12 (/nodejs/bin/node, no shell).
# Usage: build.sh [NODE_BINARY] [TAG]   (prints the tag). Needs podman (or buildah) and ldd.
set -euo pipefail
node_bin=${1:-$(command -v node)}
tag=${2:-localhost/cardhold-local-base:node$("$node_bin" -p 'process.versions.node')}
"$node_bin" -p 'process.versions.node' | grep -q '^24\.' || { echo "not Node 24: $node_bin" >&2; exit 1; }

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
mkdir -p "$root/nodejs/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
cp "$node_bin" "$root/nodejs/bin/node"
# The dynamic loader and every library the binary needs (ldd), and, as distroless's cc base ships them,
# the rest of glibc, libgcc and libstdc++ (Debian packages libc6, libgcc-s1, libstdc++6): native addons
# load libraries node itself does not (@node-rs/argon2 needs librt).
libs=$(ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
libs="$libs $(dpkg -L libc6 libgcc-s1 libstdc++6 | grep -E '/lib/.*\.so(\.[0-9]+)*$' || true)"
for lib in $libs; do
  [ -e "$lib" ] && cp --parents -L "$lib" "$root"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/home/nonroot"
cat >"$context/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
USER 65532:65532
ENV PATH=/nodejs/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/nodejs/bin/node"]
CONTAINERFILE
podman build --quiet --network none --label org.opencontainers.image.description="local stand-in for distroless nodejs24 (host binary)" \
  --tag "$tag" "$context" >/dev/null
echo "$tag"
