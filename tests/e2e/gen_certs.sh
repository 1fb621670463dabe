#!/usr/bin/env bash
# Generates the certificates the remote-access tests need, into DIR:
#   ca.pem/ca.key           the CA vigild trusts for clients (and that signs the server)
#   server.pem/server.key   for 127.0.0.1 / localhost
#   client.pem/client.key   a valid client of ca
#   other-ca.pem, rogue.pem/rogue.key    a client from another CA
#   expired.pem/expired.key a client of ca whose validity ended in 2020
# usage: gen_certs.sh DIR
set -euo pipefail
d=$1
cd "$d"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vigil-test-ca -keyout ca.key -out ca.pem
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other-ca.key -out other-ca.pem
leaf() {  # name ca ext
  q openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem"
}
leaf server ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf client ca "extendedKeyUsage=clientAuth"
leaf rogue other-ca "extendedKeyUsage=clientAuth"
# Expired: openssl ca lets us set both ends of the validity window.
mkdir -p expired-ca/newcerts && : > expired-ca/index.txt && echo 01 > expired-ca/serial
cat > expired-ca/ca.cnf <<CNF
[ca]
default_ca = c
[c]
dir = $d/expired-ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
q openssl req -newkey rsa:2048 -nodes -subj /CN=expired -keyout expired.key -out expired.csr
q openssl ca -batch -config expired-ca/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20200102000000Z -out expired.pem
for f in ca server client rogue expired; do [ -s "$f.pem" ] || { echo "gen_certs: $f.pem missing" >&2; exit 1; }; done
