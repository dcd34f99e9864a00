#!/usr/bin/env bash
# Makes a development CA, a server certificate for the gateway and a client
# certificate for a test connector, in certs/dev/ (git-ignored). FOR TESTING
# ONLY: production uses real certificates (tls.cert_file / tls.key_file).
#   certs/make-dev-certs.sh [gateway-host-name] [connector-client-name]
set -euo pipefail
cd "$(dirname "$0")"
host=${1:-gateway.sealgate.test}
client=${2:-relay.tenant.test}
mkdir -p dev && cd dev
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj "/CN=Sealgate Dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
for who in server client; do
  name=$host; eku=serverAuth
  [ "$who" = client ] && name=$client && eku=clientAuth
  openssl req "${ec[@]}" -keyout "$who.key" -out "$who.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$name" "$eku" > "$who.ext"
  openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$who.pem" -days 30 -extfile "$who.ext" 2>/dev/null
  rm -f "$who.csr" "$who.ext"
done
chmod 600 ./*.key
echo "made certs/dev/{ca,server,client}.pem and keys: server for $host, client for $client"
