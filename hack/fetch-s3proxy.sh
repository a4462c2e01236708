#!/usr/bin/env bash
# Fetches S3Proxy (Apache-2.0), a real S3 server, from Maven Central into the cache.
set -euo pipefail
S3PROXY_VERSION="${S3PROXY_VERSION:-4.1.0}"
CACHE="${LATHE_CACHE:-$HOME/.cache/lathe}"
out="$CACHE/s3proxy-$S3PROXY_VERSION"
[[ -f "$out/s3proxy.jar" ]] && exit 0
echo "[fetch-s3proxy] Fetching S3Proxy $S3PROXY_VERSION" >&2
mvn -q dependency:get -Dtransitive=false \
  "-Dartifact=org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies"
mkdir -p "$out"
cp "$HOME/.m2/repository/org/gaul/s3proxy/$S3PROXY_VERSION/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar" "$out/s3proxy.jar.tmp"
mv "$out/s3proxy.jar.tmp" "$out/s3proxy.jar"
