#!/bin/sh
# Create internflow's namespace and its search attributes on a running Temporal server.
# Idempotent. Environment: TEMPORAL_ADDRESS, NAMESPACE, RETENTION, and SEARCH_ATTRIBUTES as
# space-separated Name=Type pairs (the list in runtime/search_attributes.py; tests compare them).
set -eu
address="${TEMPORAL_ADDRESS:?}"
namespace="${NAMESPACE:?}"

# Retry a command up to 30 times, 2 s apart (the server and a new namespace take a moment).
retry() {
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 30 ]; then
            echo "gave up: $*" >&2
            return 1
        fi
        sleep 2
    done
}

retry temporal operator cluster health --address "$address"

if temporal operator namespace describe --address "$address" --namespace "$namespace" \
    >/dev/null 2>&1; then
    echo "namespace $namespace exists"
else
    temporal operator namespace create --address "$address" --namespace "$namespace" \
        --retention "${RETENTION:?}" --description "internflow internships"
fi

has_attribute() {
    temporal operator search-attribute list --address "$address" --namespace "$namespace" \
        | grep -qw "$1"
}

for pair in ${SEARCH_ATTRIBUTES:?}; do
    name="${pair%%=*}"
    type="${pair#*=}"
    if has_attribute "$name"; then
        echo "search attribute $name exists"
    else
        retry temporal operator search-attribute create --address "$address" \
            --namespace "$namespace" --name "$name" --type "$type"
    fi
done
echo "namespace $namespace ready"
