#!/bin/bash
# Mutual TLS (RFC 8705, issue 25) end to end, with certificates made here by
# openssl: (a) Mandate's own HTTPS asking for a client certificate
# (server.tls.client_ca): tls_client_auth by subject DN and by SAN,
# self_signed_tls_client_auth by certificate and by thumbprint, every
# refusal (no certificate, another DN or SAN, an untrusted chain, another
# self-signed certificate); tokens bound to the certificate (cnf x5t#S256 =
# the thumbprint openssl computes), in introspection too; (b) nginx
# terminating TLS (ssl_verify_client optional_no_ca) in front of Mandate and
# forwarding $ssl_client_escaped_cert from a trusted proxy address: the
# same client authentication through it, the header from any other address
# refused and audited, and the gateway check of a certificate-bound token
# (the right certificate 200, another 401, none 401); (c) a client that
# registers itself (RFC 7591) as tls_client_auth, known by its certificate.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

command -v nginx >/dev/null 2>&1 || fatal "nginx is needed (Debian: apt-get install nginx-light)"
command -v openssl >/dev/null 2>&1 || fatal "openssl is needed"

new_state
PKI="$TMP/pki"
mkdir "$PKI"
AUD=https://mcp.example/cal

# --- certificates -------------------------------------------------------------------
ec_req() { # KEYFILE SUBJECT: a CSR on stdout
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1" -subj "$2" 2>/dev/null
}
ca() { # NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.pem" >/dev/null 2>&1
}
leaf() { # NAME SUBJECT CA SAN
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=%s\n' "$4" >"$PKI/$1.ext"
    ec_req "$PKI/$1.key" "$2" | openssl x509 -req -days 1 -CA "$PKI/$3.pem" -CAkey "$PKI/$3.key" \
        -CAcreateserial -extfile "$PKI/$1.ext" -out "$PKI/$1.pem" >/dev/null 2>&1
}
self_signed() { # NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$2" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.pem" >/dev/null 2>&1
}
thumbprint() { # NAME: base64url(SHA-256(DER)), RFC 8705 §3.1
    openssl x509 -in "$PKI/$1.pem" -outform DER | openssl dgst -sha256 -binary | base64 -w0 |
        tr '+/' '-_' | tr -d '='
}
ca ca "Test Client CA"
ca rogue "Rogue CA"
leaf agent-a "/C=US/O=Example Corp/CN=agent-a" ca "DNS:agent-a.example.com,URI:spiffe://example.com/agent-a"
leaf agent-b "/C=US/O=Example Corp/CN=agent-b" ca "DNS:agent-b.example.com"
leaf forged "/C=US/O=Example Corp/CN=agent-a" rogue "DNS:agent-a.example.com"
self_signed self "self-signed agent"
self_signed self2 "self-signed agent"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$STATE/tls-key.pem" -out "$STATE/tls-cert.pem" >/dev/null 2>&1
chmod 600 "$STATE/tls-key.pem" "$PKI"/*.key
check "certificates made" test -s "$PKI/agent-a.pem" -a -s "$PKI/forged.pem" -a -s "$PKI/self2.pem"
X5T_A=$(thumbprint agent-a)
X5T_SELF=$(thumbprint self)

# nginx connects to Mandate from 127.0.0.2, the one trusted proxy address;
# the tests' own requests come from 127.0.0.1
sed -i "s|^server: {|server: {\n  tls: { certificate = \"tls-cert.pem\"; key = \"tls-key.pem\"; client_ca = \"$PKI/ca.pem\"; };\n  trusted_proxies = [\"127.0.0.2\"];\n  client_certificate_header = \"X-Client-Cert\";\n  mtls_base_url = \"https://mtls.example\";|" "$CONF"
with_fakeidp # backend-corp, the sign-in's IdP
cat >>"$CONF" <<CONF
targets = ( { name = "cal"; paths = ["/mcp"]; audience = "$AUD"; scopes = ["mcp:call"]; } );
mappings = ( { name = "advisors"; idp = "backend-corp"; subject = "advisor-\${uid}";
               tenant = "default"; scopes = ["mcp:call"]; audience = ["$AUD"]; } );
signin: { tenants = ( { tenant = "default"; name = "Example Bank"; } ); };
CONF
daemon_up
BASE="https://127.0.0.1:$PORT"
TOKEN_URL="$BASE/oauth2/token"
sed -i "s|^server: {|server: {\n  issuer = \"$BASE\";|" "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with the issuer" wait_for_log "$LOG" "reloaded:"

new_client() { # ID [options]: prints what mandatectl printed
    local id=$1
    shift
    "${CTL[@]}" client create "$id" --scope mcp:call --default-scope mcp:call --audience "$AUD" "$@" 2>"$TMP/ctl.err"
}
token() { # CERT|- [curl args]: POST /oauth2/token to Mandate's HTTPS with that client certificate
    local cert=$1
    shift
    local with=()
    [ "$cert" != - ] && with=(--cert "$PKI/$cert.pem" --key "$PKI/$cert.key")
    curl -s -o "$TMP/t" -w '%{http_code}' --cacert "$STATE/tls-cert.pem" "${with[@]}" \
        -d "grant_type=${GRANT:-client_credentials}" "$@" "${URL:-$TOKEN_URL}"
}
cnf_of() { jwt_claims "$(json_get "$(cat "$TMP/t")" access_token)"; }
audited() { cat "$STATE"/audit/audit-*.jsonl | grep -c -- "$1"; }
# audited_beyond TEXT N: TEXT audited more than N times. A refusal identical to one of
# the same second is counted and written by the next housekeeping, within a second
# (core/refusals-private.h), so this waits up to three seconds for it
audited_beyond() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        [ "$(audited "$1")" -gt "$2" ] && return 0
        sleep 0.3
    done
    return 1
}

meta=$(curl -s --cacert "$STATE/tls-cert.pem" "$BASE/.well-known/oauth-authorization-server")
expect_contains "metadata: tls_client_certificate_bound_access_tokens" \
    '"tls_client_certificate_bound_access_tokens":true' "$meta"
METHODS='"client_secret_basic","client_secret_post","private_key_jwt"'
MTLS_METHODS='"tls_client_auth","self_signed_tls_client_auth"]'
expect_contains "  both mTLS methods among the token endpoint's" \
    "\"token_endpoint_auth_methods_supported\":[$METHODS,\"none\",$MTLS_METHODS" "$meta"
expect_contains "  and the introspection endpoint's" \
    "\"introspection_endpoint_auth_methods_supported\":[$METHODS,$MTLS_METHODS" "$meta"
expect_contains "  mtls_endpoint_aliases from server.mtls_base_url" \
    '"mtls_endpoint_aliases":{"token_endpoint":"https://mtls.example/oauth2/token"' "$meta"

# --- (a) Mandate's own HTTPS: tls_client_auth ---------------------------------------
new_client tls-a --auth tls_client_auth --tls-subject-dn "CN=agent-a,O=Example Corp,C=US" >/dev/null
check "client create --auth tls_client_auth: no secret shown" bash -c "! grep -q client_secret '$TMP/ctl.err'"
expect_contains "client show: auth tls_client_auth" '"auth": "tls_client_auth"' \
    "$("${CTL[@]}" --json client show tls-a)"
expect_eq "tls_client_auth by subject DN with agent-a's certificate: 200" 200 "$(token agent-a -d client_id=tls-a)"
expect_eq "  token_type Bearer (RFC 8705 §3)" Bearer "$(json_get "$(cat "$TMP/t")" token_type)"
expect_contains "  cnf x5t#S256: the certificate's thumbprint, as openssl computes it" \
    "\"cnf\":{\"x5t#S256\":\"$X5T_A\"}" "$(cnf_of)"
BOUND=$(json_get "$(cat "$TMP/t")" access_token)
check "  token.issued names the thumbprint" bash -c "cat '$STATE'/audit/audit-*.jsonl | grep token.issued | grep -q '\"cnf_x5t_s256\":\"$X5T_A\"'"
expect_eq "no certificate: 401" 401 "$(token - -d client_id=tls-a)"
expect_contains "  invalid_client" invalid_client "$(cat "$TMP/t")"
expect_eq "agent-b's certificate (another DN): 401" 401 "$(token agent-b -d client_id=tls-a)"
expect_eq "agent-a's DN from an untrusted CA: 401" 401 "$(token forged -d client_id=tls-a)"
expect_eq "a self-signed certificate: 401" 401 "$(token self -d client_id=tls-a)"
check "  audited with why: the DN" test "$(audited "subject DN is not the registered one")" -ge 1
check "  audited with why: no certificate" test "$(audited "no client certificate came")" -ge 1
check "  audited with why: the chain" test "$(audited "unable to get local issuer certificate")" -ge 1
expect_eq "a client secret is not its credential: 401" 401 "$(token agent-a -u "tls-a:guess")"
# DPoP at the mTLS endpoint alias (review s32, finding 14): the proof names the URL the
# metadata sends a client with a certificate to
PROOF="$BUILDDIR/tests/dpop-proof"
"$PROOF" keygen ES256 "$TMP/dpop.pem"
expect_eq "DPoP with mTLS, the proof's htu the alias (mtls_base_url): 200" 200 \
    "$(token agent-a -d client_id=tls-a -H "DPoP: $("$PROOF" proof "$TMP/dpop.pem" POST https://mtls.example/oauth2/token)")"
expect_eq "  token_type DPoP" DPoP "$(json_get "$(cat "$TMP/t")" token_type)"
expect_eq "  the issuer's URL, as before: 200" 200 \
    "$(token agent-a -d client_id=tls-a -H "DPoP: $("$PROOF" proof "$TMP/dpop.pem" POST "$TOKEN_URL")")"
expect_eq "  another URL at the alias: 400" 400 \
    "$(token agent-a -d client_id=tls-a -H "DPoP: $("$PROOF" proof "$TMP/dpop.pem" POST https://mtls.example/oauth2/par)")"

new_client tls-dns --auth tls_client_auth --tls-san-dns agent-a.example.com >/dev/null
expect_eq "tls_client_auth by DNS SAN: 200" 200 "$(token agent-a -d client_id=tls-dns)"
expect_eq "  agent-b's: 401" 401 "$(token agent-b -d client_id=tls-dns)"
expect_eq "  the forged one (same SAN, untrusted chain): 401" 401 "$(token forged -d client_id=tls-dns)"
"${CTL[@]}" client set tls-dns --auth tls_client_auth --tls-san-dns agent-b.example.com >/dev/null
expect_eq "client set --auth --tls-san-dns replaces the name: agent-b's certificate 200" 200 \
    "$(token agent-b -d client_id=tls-dns)"
expect_eq "  agent-a's: 401" 401 "$(token agent-a -d client_id=tls-dns)"
new_client tls-uri --auth tls_client_auth --tls-san-uri spiffe://example.com/agent-a >/dev/null
expect_eq "tls_client_auth by URI SAN: 200" 200 "$(token agent-a -d client_id=tls-uri)"
expect_eq "  agent-b's: 401" 401 "$(token agent-b -d client_id=tls-uri)"
expect_eq "--auth tls_client_auth with two names: refused by mandatectl" 1 \
    "$(new_client tls-two --auth tls_client_auth --tls-san-dns a.example --tls-subject-dn CN=a >/dev/null; echo $?)"

# --- self_signed_tls_client_auth ------------------------------------------------------
new_client self-a --auth self_signed_tls_client_auth --tls-cert "$PKI/self.pem" >/dev/null
expect_eq "self_signed_tls_client_auth with the registered certificate: 200" 200 "$(token self -d client_id=self-a)"
# the profile fapi2 (doc/fapi.md) takes a certificate as the client's credential and its
# binding as sender-constraint: no DPoP proof needed
new_client self-fapi --auth self_signed_tls_client_auth --tls-cert "$PKI/self.pem" >/dev/null
"${CTL[@]}" client set self-fapi --profile fapi2 >/dev/null
expect_eq "profile fapi2 by self_signed_tls_client_auth, no DPoP proof: 200" 200 "$(token self -d client_id=self-fapi)"
expect_contains "  certificate-bound" 'x5t#S256' "$(cnf_of)"
expect_contains "  bound to it" "\"x5t#S256\":\"$X5T_SELF\"" "$(cnf_of)"
expect_eq "  another self-signed certificate of the same name: 401" 401 "$(token self2 -d client_id=self-a)"
expect_eq "  a CA-signed one: 401" 401 "$(token agent-a -d client_id=self-a)"
check "  audited" test "$(audited "not one the client registered")" -ge 1
new_client self-t --auth self_signed_tls_client_auth --tls-cert-sha256 "$(thumbprint self2)" >/dev/null
expect_eq "self_signed by thumbprint: 200" 200 "$(token self2 -d client_id=self-t)"
expect_eq "  another certificate: 401" 401 "$(token self -d client_id=self-t)"
# a client moved to its certificate keeps no secret (review s32, finding 3)
MOVED_SECRET=$(new_client moved | client_secret)
expect_eq "a secret client before the move: 200" 200 "$(token - -u "moved:$MOVED_SECRET")"
moved=$("${CTL[@]}" client set moved --auth self_signed_tls_client_auth --tls-cert "$PKI/self.pem" 2>&1)
expect_contains "client set --auth: its client secret is removed" "client secret is removed" "$moved"
expect_eq "  the old secret, no certificate: 401" 401 "$(token - -u "moved:$MOVED_SECRET")"
expect_eq "  the old secret with the registered certificate: 401" 401 "$(token self -u "moved:$MOVED_SECRET")"
check "  the refusal audited" test "$(audited "registered for self_signed_tls_client_auth only, not client_secret_basic")" -ge 1
check "  the move audited" bash -c "cat '$STATE'/audit/audit-*.jsonl | grep client.updated | grep -q '\"credential_dropped\":\"client_secret\"'"
expect_eq "  its certificate: 200" 200 "$(token self -d client_id=moved)"
expect_eq "  client rotate-secret refused" 1 "$("${CTL[@]}" client rotate-secret moved >/dev/null 2>&1; echo $?)"

# --- binding on request -----------------------------------------------------------------
"${CTL[@]}" client set tls-a --no-cert-bound >/dev/null
token agent-a -d client_id=tls-a >/dev/null
check "client set --no-cert-bound: no cnf" bash -c "! grep -q x5t <<<'$(cnf_of)'"
"${CTL[@]}" client set tls-a --cert-bound >/dev/null
SECRET=$(new_client secret-bound --cert-bound | client_secret)
expect_eq "a secret client with --cert-bound and a certificate: 200" 200 \
    "$(token agent-b -u "secret-bound:$SECRET")"
expect_contains "  bound to the certificate it came with" "\"x5t#S256\":\"$(thumbprint agent-b)\"" "$(cnf_of)"
expect_eq "  without a certificate: 200" 200 "$(token - -u "secret-bound:$SECRET")"
check "  a bearer token" bash -c "! grep -q cnf <<<'$(cnf_of)'"
PLAIN_SECRET=$(new_client plain | client_secret)
token agent-b -u "plain:$PLAIN_SECRET" >/dev/null
check "a client that does not ask: a certificate binds nothing" bash -c "! grep -q cnf <<<'$(cnf_of)'"
BEARER=$(json_get "$(cat "$TMP/t")" access_token)

# --- introspection ------------------------------------------------------------------------
GW_SECRET=$(new_client gateway --introspect | client_secret)
out=$(curl -s --cacert "$STATE/tls-cert.pem" -u "gateway:$GW_SECRET" --data-urlencode "token=$BOUND" "$BASE/oauth2/introspect")
expect_contains "introspection: active" '"active":true' "$out"
expect_contains "  cnf x5t#S256" "\"cnf\":{\"x5t#S256\":\"$X5T_A\"}" "$out"
expect_eq "  token_type Bearer" Bearer "$(json_get "$out" token_type)"

# --- token exchange keeps the binding -------------------------------------------------------
exchange() { # CERT|- [curl args]: BOUND as the subject token
    GRANT=urn:ietf:params:oauth:grant-type:token-exchange token "$@" --data-urlencode "subject_token=$BOUND" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token
}
expect_eq "a certificate-bound subject token exchanged without its certificate: 400" 400 \
    "$(exchange - -u "secret-bound:$SECRET")"
expect_contains "  invalid_grant, certificate-bound" 'certificate-bound' "$(cat "$TMP/t")"
expect_eq "  with another certificate: 400" 400 "$(exchange agent-b -u "secret-bound:$SECRET")"
exchange agent-a -d client_id=tls-a >/dev/null
check "  by the holder of its certificate: not refused for the binding" \
    bash -c "! grep -q certificate-bound '$TMP/t'"

# --- a public client's refresh token, bound to its certificate (RFC 8705 §4) -----------------
REDIRECT=http://127.0.0.1:7777/cb
"${CTL[@]}" client create app --public --redirect-uri "$REDIRECT" --grant-type authorization_code \
    --grant-type refresh_token --scope mcp:call --audience "$AUD" --cert-bound >/dev/null 2>&1
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -binary -sha256 | b64url)
enc() { printf '%s' "$1" | sed 's|:|%3A|g; s|/|%2F|g'; }
COOKIES=""
browse() { # URL [curl args]: headers in $TMP/h, the cookies kept by hand
    local url=$1 c
    shift
    curl -s --cacert "$STATE/tls-cert.pem" -D "$TMP/h" -o "$TMP/b" ${COOKIES:+-H "Cookie: $COOKIES"} "$@" "$url"
    while read -r c; do COOKIES="${COOKIES:+$COOKIES; }${c%%;*}"; done \
        < <(sed -n 's/^Set-Cookie: //Ip' "$TMP/h" | tr -d '\r')
}
browse "$BASE/oauth2/authorize?response_type=code&client_id=app&redirect_uri=$(enc "$REDIRECT")&scope=mcp:call&state=s&code_challenge=$CHALLENGE&code_challenge_method=S256&resource=$(enc "$AUD")&login_hint=alice%40bank.example"
browse "$(location)"
browse "$BASE/consent" -d "handle=$(form_value handle)" -d "csrf=$(form_value csrf)" -d decision=allow
CODE=$(location | tr '?&' '\n\n' | sed -n 's/^code=//p')
check "a sign-in's code" test -n "$CODE"
expect_eq "the public client's code with a certificate: 200" 200 "$(GRANT=authorization_code token self \
    -d client_id=app -d "code=$CODE" -d "code_verifier=$VERIFIER" -d "redirect_uri=$REDIRECT")"
expect_contains "  the access token bound" "\"x5t#S256\":\"$X5T_SELF\"" "$(cnf_of)"
REFRESH=$(json_get "$(cat "$TMP/t")" refresh_token)
check "  a refresh token" test -n "$REFRESH"
expect_eq "refresh without the certificate: 400" 400 "$(GRANT=refresh_token token - -d client_id=app \
    --data-urlencode "refresh_token=$REFRESH")"
expect_contains "  certificate-bound" certificate-bound "$(cat "$TMP/t")"
expect_eq "refresh with another certificate: 400" 400 "$(GRANT=refresh_token token self2 -d client_id=app \
    --data-urlencode "refresh_token=$REFRESH")"
expect_eq "refresh with the certificate: 200 (the refusals spent nothing)" 200 \
    "$(GRANT=refresh_token token self -d client_id=app --data-urlencode "refresh_token=$REFRESH")"
NEXT=$(json_get "$(cat "$TMP/t")" refresh_token)
expect_eq "  the rotated refresh token is bound too" 400 "$(GRANT=refresh_token token self2 -d client_id=app \
    --data-urlencode "refresh_token=$NEXT")"

# --- (b) nginx in front, forwarding the certificate ---------------------------------------
GW_PORT=$(free_port)
GW="https://127.0.0.1:$GW_PORT"
NGX="$TMP/nginx"
mkdir -p "$NGX/www/mcp"
echo "tool ok" >"$NGX/www/mcp/tools"
cat >"$NGX/nginx.conf" <<NGINX
worker_processes 1;
error_log $NGX/error.log info;
pid $NGX/nginx.pid;
events { worker_connections 64; }
http {
    access_log $NGX/access.log;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    server {
        listen 127.0.0.1:$GW_PORT ssl;
        ssl_certificate $STATE/tls-cert.pem;
        ssl_certificate_key $STATE/tls-key.pem;
        # ask for a certificate, judge none: Mandate does (RFC 8705 §2)
        ssl_verify_client optional_no_ca;
        proxy_bind 127.0.0.2;
        location /oauth2/ {
            proxy_pass https://127.0.0.1:$PORT;
            proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
        }
        # a proxy that authenticates itself to Mandate with a certificate
        location /proxycert/oauth2/ {
            proxy_pass https://127.0.0.1:$PORT/oauth2/;
            proxy_ssl_certificate $PKI/agent-b.pem;
            proxy_ssl_certificate_key $PKI/agent-b.key;
            proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
        }
        location = /_mandate_check {
            internal;
            proxy_pass https://127.0.0.1:$PORT/gateway/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
        }
        location /mcp/ {
            auth_request /_mandate_check;
            root $NGX/www;
        }
    }
}
NGINX
nginx -t -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/test.log" 2>&1 || { cat "$NGX/test.log"; fatal "nginx -t"; }
nginx -p "$NGX" -c "$NGX/nginx.conf" -g "daemon off; user $(id -un);" 2>"$NGX/stderr.log" &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do
    curl -s -k -o /dev/null "$GW/mcp/" && break
    sleep 0.05
done

expect_eq "through nginx: tls_client_auth with agent-a's certificate: 200" 200 \
    "$(URL="$GW/oauth2/token" token agent-a -d client_id=tls-a)"
THROUGH=$(json_get "$(cat "$TMP/t")" access_token)
expect_contains "  bound to it" "\"x5t#S256\":\"$X5T_A\"" "$(cnf_of)"
expect_eq "  agent-b's: 401" 401 "$(URL="$GW/oauth2/token" token agent-b -d client_id=tls-a)"
expect_eq "  the forged one (nginx does not judge; Mandate does): 401" 401 \
    "$(URL="$GW/oauth2/token" token forged -d client_id=tls-a)"
expect_eq "  none: 401" 401 "$(URL="$GW/oauth2/token" token - -d client_id=tls-a)"
expect_eq "  self_signed through nginx: 200" 200 "$(URL="$GW/oauth2/token" token self -d client_id=self-a)"

ESCAPED=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).read(), safe=""))' "$PKI/agent-a.pem")
before=$(audited "not a trusted proxy")
expect_eq "the certificate header straight from 127.0.0.1 (not a trusted proxy): 401" 401 \
    "$(token - -H "X-Client-Cert: $ESCAPED" -d client_id=tls-a)"
expect_contains "  invalid_client" invalid_client "$(cat "$TMP/t")"
check "  audited" audited_beyond "not a trusted proxy" "$before"
expect_eq "  even for a client that authenticates otherwise: 401" 401 \
    "$(token - -H "X-Client-Cert: $ESCAPED" -u "plain:$PLAIN_SECRET")"

gw() { # CERT|- TOKEN: the status of a call to the tool through nginx
    local with=()
    [ "$1" != - ] && with=(--cert "$PKI/$1.pem" --key "$PKI/$1.key")
    curl -s -o "$TMP/g" -D "$TMP/gh" -w '%{http_code}' --cacert "$STATE/tls-cert.pem" "${with[@]}" \
        -H "Authorization: Bearer $2" "$GW/mcp/tools"
}
expect_eq "gateway: a bound token with its certificate: 200" 200 "$(gw agent-a "$THROUGH")"
expect_eq "  the tool answers" "tool ok" "$(cat "$TMP/g")"
expect_eq "  the token bound at Mandate's own HTTPS, the same certificate: 200" 200 "$(gw agent-a "$BOUND")"
expect_eq "  with another certificate: 401" 401 "$(gw agent-b "$THROUGH")"
expect_eq "  with none: 401" 401 "$(gw - "$THROUGH")"
check "  audited: another certificate" test "$(audited "with another client certificate")" -ge 1
check "  audited: no certificate" test "$(audited "without a client certificate")" -ge 1
expect_eq "  a bearer token needs no certificate: 200" 200 "$(gw - "$BEARER")"
out=$(curl -s -D "$TMP/dh" -o /dev/null -w '%{http_code}' --cacert "$STATE/tls-cert.pem" \
    -H "Authorization: Bearer $THROUGH" -H "X-Original-URI: /mcp/tools" -H "X-Client-Cert: $ESCAPED" \
    "$BASE/gateway/check")
expect_eq "the check asked straight, with the certificate header from 127.0.0.1: 401" 401 "$out"
expect_contains "  WWW-Authenticate: Bearer error=invalid_token" 'error="invalid_token"' "$(cat "$TMP/dh")"
out=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$STATE/tls-cert.pem" -H "Authorization: Bearer $BEARER" \
    -H "X-Original-URI: /mcp/tools" -H "X-Client-Cert: $ESCAPED" "$BASE/gateway/check")
expect_eq "  even with a bearer token: 401" 401 "$out"
expect_eq "  which passes without the header: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' \
    --cacert "$STATE/tls-cert.pem" -H "Authorization: Bearer $BEARER" -H "X-Original-URI: /mcp/tools" \
    "$BASE/gateway/check")"

# server.client_certificate_proxies: 127.0.0.1 a trusted proxy (X-Forwarded-For), nginx the only
# one whose certificate header is believed (review s32, finding 12)
reloads=$(grep -c "reloaded:" "$LOG")
sed -i 's|trusted_proxies = \["127.0.0.2"\];|trusted_proxies = ["127.0.0.2", "127.0.0.1"];\n  client_certificate_proxies = ["127.0.0.2"];|' "$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with client_certificate_proxies" wait_for_log "$LOG" "reloaded:" $((reloads + 1))
before=$(audited "not a trusted proxy")
expect_eq "the certificate header from a trusted proxy not in client_certificate_proxies: 401" 401 \
    "$(token - -H "X-Client-Cert: $ESCAPED" -d client_id=tls-a)"
check "  audited" audited_beyond "not a trusted proxy" "$before"
expect_eq "  through nginx, in client_certificate_proxies: 200" 200 \
    "$(URL="$GW/oauth2/token" token agent-a -d client_id=tls-a)"
# a proxy with a client certificate of its own on its connection to Mandate (review s32,
# finding 12): the forwarded certificate is the client's, the proxy's never is
expect_eq "through nginx with its own certificate (agent-b's) to Mandate, agent-a's forwarded: 200" 200 \
    "$(URL="$GW/proxycert/oauth2/token" token agent-a -d client_id=tls-a)"
expect_contains "  bound to agent-a's" "\"x5t#S256\":\"$X5T_A\"" "$(cnf_of)"
expect_eq "  none forwarded, for a client of the proxy's certificate: 401" 401 \
    "$(URL="$GW/proxycert/oauth2/token" token - -d client_id=tls-dns)"

# --- registration (RFC 7591) of a client known by its certificate (RFC 8705 §2.1.2) -----------
reloads=$(grep -c "reloaded:" "$LOG")
printf 'registration = { mode = "open"; scopes = ["mcp:call"]; };\n' >>"$CONF"
kill -HUP "$DAEMON_PID"
check "reloaded with registration open" wait_for_log "$LOG" "reloaded:" $((reloads + 1))
reg=$(curl -s --cacert "$STATE/tls-cert.pem" -H "Content-Type: application/json" \
    -d '{"redirect_uris":["http://127.0.0.1:4000/cb"],"token_endpoint_auth_method":"tls_client_auth",
         "tls_client_auth_subject_dn":"CN=agent-a,O=Example Corp,C=US"}' "$BASE/oauth2/register")
DCR_ID=$(json_get "$reg" client_id)
check "registered: a client id" test -n "$DCR_ID"
expect_contains "  token_endpoint_auth_method tls_client_auth" '"token_endpoint_auth_method":"tls_client_auth"' "$reg"
check "  and no secret" bash -c "! grep -q client_secret <<<'$reg'"
# the client authenticates before its code is looked at: a bad code is the
# code's refusal (400), a wrong certificate the client's (401)
GRANT=authorization_code
expect_eq "the registered client with agent-a's certificate is known: a bad code is 400" 400 \
    "$(token agent-a -d "client_id=$DCR_ID" -d code=not-a-code -d code_verifier=0123456789012345678901234567890123456789abc -d redirect_uri=http://127.0.0.1:4000/cb)"
expect_eq "  invalid_grant" invalid_grant "$(json_get "$(cat "$TMP/t")" error)"
expect_eq "  with agent-b's certificate: 401" 401 \
    "$(token agent-b -d "client_id=$DCR_ID" -d code=not-a-code -d code_verifier=0123456789012345678901234567890123456789abc -d redirect_uri=http://127.0.0.1:4000/cb)"
expect_eq "  invalid_client" invalid_client "$(json_get "$(cat "$TMP/t")" error)"
# a client that registered itself uses only the grants it registered: its
# certificate must not buy it client credentials or a token exchange
GRANT=client_credentials
expect_eq "the registered client asking client_credentials: 400" 400 \
    "$(token agent-a -d "client_id=$DCR_ID" -d scope=mcp:call)"
expect_eq "  unauthorized_client" unauthorized_client "$(json_get "$(cat "$TMP/t")" error)"
check "  audited" test "$(audited "grant_type\":\"client_credentials\".*unauthorized_client\|unauthorized_client.*grant_type\":\"client_credentials")" -ge 1
GRANT=urn:ietf:params:oauth:grant-type:token-exchange
expect_eq "  asking a token exchange: 400" 400 \
    "$(token agent-a -d "client_id=$DCR_ID" -d subject_token=x \
        -d subject_token_type=urn:ietf:params:oauth:token-type:access_token)"
expect_eq "  unauthorized_client" unauthorized_client "$(json_get "$(cat "$TMP/t")" error)"
GRANT=authorization_code
expect_eq "a registration of tls_client_auth without a name: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' \
    --cacert "$STATE/tls-cert.pem" -H "Content-Type: application/json" \
    -d '{"redirect_uris":["http://127.0.0.1:4000/cb"],"token_endpoint_auth_method":"tls_client_auth"}' \
    "$BASE/oauth2/register")"
unset GRANT

check "no sanitizer report" bash -c "! grep -q Sanitizer '$LOG'"
finish
