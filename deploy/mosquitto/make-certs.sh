#!/bin/sh
# TLS certificates for the shopgate broker (mosquitto.conf's listener 8883), with openssl.
#
#   make-certs.sh broker DIR HOST [HOST...]   a private CA (made once) and the broker's
#                                             certificate for HOST...: the DNS names and IP
#                                             addresses the stores put in mqtt.url
#   make-certs.sh client DIR NAME             a client certificate, for mutual TLS only
#                                             (require_certificate in mosquitto.conf)
#
# DIR gets: ca.key (the CA's key: keep it off the broker once done), ca.crt (to every agent
# as mqtt.tls.ca_file, and to a hub on another host), broker.key and broker.crt (to
# /etc/mosquitto/certs/), NAME.key and NAME.crt. Run `broker` again with the same DIR to
# renew the broker's certificate: the CA is reused, so the agents need nothing new.
# Lifetimes: CA_DAYS (default 3650), DAYS (default 825) in the environment.
set -eu

usage() {
    echo "usage: $0 broker DIR HOST [HOST...] | $0 client DIR NAME" >&2
    exit 2
}

[ $# -ge 3 ] || usage
what=$1 dir=$2
shift 2
CA_DAYS=${CA_DAYS:-3650}
DAYS=${DAYS:-825}
umask 077
mkdir -p "$dir"

serial() { echo "0x$(openssl rand -hex 16)"; }

make_ca() {
    [ -f "$dir/ca.key" ] && [ -f "$dir/ca.crt" ] && return 0
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$CA_DAYS" -set_serial "$(serial)" \
        -subj "/CN=shopgate broker CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    chmod 0644 "$dir/ca.crt"
    echo "made the CA: $dir/ca.crt (its key $dir/ca.key stays private)"
}

# sign NAME USAGE [SAN]: NAME.key and NAME.crt, signed by the CA.
sign() {
    name=$1 usage=$2 san=${3:-}
    ext="$dir/$name.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$usage"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid"
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "$(serial)" -days "$DAYS" -sha256 -extfile "$ext" \
        -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$ext"
    chmod 0644 "$dir/$name.crt"
}

case $what in
broker)
    san=""
    for host in "$@"; do
        case $host in
        *[!0-9.]* | "") case $host in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
        *) kind=IP ;;
        esac
        san="${san:+$san,}$kind:$host"
    done
    make_ca
    sign broker serverAuth "$san"
    echo "made the broker's certificate for $san: $dir/broker.crt, $dir/broker.key"
    ;;
client)
    [ $# -eq 1 ] || usage
    make_ca
    sign "$1" clientAuth
    echo "made a client certificate: $dir/$1.crt, $dir/$1.key"
    ;;
*) usage ;;
esac
