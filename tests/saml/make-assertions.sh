#!/bin/bash
# Makes SAML test material with tools independent of Mandate: OpenSSL for the
# keys and certificates, Debian's xmlsec1 command for the signatures.
#
#   make-assertions.sh OUTDIR [NOW [BENCH_N]]
#
# NOW (seconds since the epoch, default: the current time) is the instant the
# validity windows are built around; BENCH_N (default 0) extra signed
# assertions with distinct IDs go to OUTDIR/bench-N.b64.
#
# In OUTDIR:
#   idp1.key idp1.crt idp2.key idp2.crt  the IdP's signing keys (rollover: both
#                                        in the metadata; idp2 without use=)
#   enc.key enc.crt                      the IdP's encryption key (use="encryption"
#                                        in the metadata: must not verify)
#   attacker.key attacker.crt            a key the IdP does not have; also the
#                                        signing key of the "other" IdP
#   metadata.xml                         the IdP: entityID $ISSUER, idp1, idp2, enc
#   other-metadata.xml                   another IdP: $OTHER_ISSUER, attacker
#   nocert-metadata.xml                  the IdP with an encryption key only
#   NAME.xml and NAME.b64 (base64url, no padding, one line) for each case
#   below; NAME.std.b64 (standard base64 with padding) for "assertion".
#   ids.txt                              NAME ID of each case's assertion
#   sp.key sp.crt sp-next.key sp-next.crt  the service provider's keys (sign-in:
#                                        AuthnRequests, encrypted assertions)
#   acs-NAME.xml and .b64 (standard base64, as the HTTP-POST binding sends)
#                                        Responses for the Assertion Consumer
#                                        Service: Destination and Recipient
#                                        $ACS_URL, InResponseTo $REQUEST_ID
#
# With KEEP_KEYS=1 the keys already in OUTDIR are kept; with ONLY_ACS=1 only
# the acs-* cases are made (an end-to-end test makes them per AuthnRequest);
# ACS_ROLE is the role attribute of acs-ok and acs-unsolicited (default
# FinancialAdvisor).
set -euo pipefail
# Bash 5.2 would put the matched text for an '&' in a ${var//pattern/string}.
shopt -u patsub_replacement 2>/dev/null || true

out=${1:?usage: make-assertions.sh OUTDIR [NOW [BENCH_N]]}
now=${2:-$(date +%s)}
bench_n=${3:-0}
here=$(cd "$(dirname "$0")" && pwd)
XMLSEC1=${XMLSEC1:-xmlsec1}

ISSUER=${ISSUER:-https://idp.example.com/}
OTHER_ISSUER=${OTHER_ISSUER:-https://other-idp.example.net/}
AUDIENCE=${AUDIENCE:-https://mandate.example.com/saml}
RECIPIENT=${RECIPIENT:-https://mandate.example.com/oauth2/token}
NAMEID=${NAMEID:-alice@example.com}
ACS_URL=${ACS_URL:-https://mandate.example.com/login/backend-corp/callback}
REQUEST_ID=${REQUEST_ID:-_req5f0c2a9d41b7e8}
# set per case below: extra attributes of the SubjectConfirmationData and the
# Response, and the Response's status
SCD_EXTRA="" RESPONSE_EXTRA=""
STATUS_OK='    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
STATUS=$STATUS_OK

mkdir -p "$out"
cd "$out"

ts() { TZ=UTC0 printf '%(%Y-%m-%dT%H:%M:%SZ)T' "$1"; }
# fill TEMPLATE [NAME VALUE]...: TEMPLATE with each @NAME@ replaced by its
# VALUE, in that order
fill() {
    local s=$1
    shift
    while [ $# -gt 1 ]; do
        s=${s//@$1@/$2}
        shift 2
    done
    printf '%s\n' "$s"
}

# --- keys and certificates ---------------------------------------------------
for k in idp1 idp2 enc attacker sp sp-next; do
    [ -n "${KEEP_KEYS:-}" ] && [ -f "$k.key" ] && [ -f "$k.crt" ] && continue
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$k.key" -out "$k.crt" -days 3650 \
        -subj "/CN=$k.test.invalid" 2>/dev/null
done
der64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
CERT1=$(der64 idp1.crt)
CERT2=$(der64 idp2.crt)
CERT_ENC=$(der64 enc.crt)
CERT_ATT=$(der64 attacker.crt)

md=$(<"$here/metadata.xml.in")
fill "$md" ISSUER "$ISSUER" CERT1 "$CERT1" CERT2 "$CERT2" CERT_ENC "$CERT_ENC" >metadata.xml
fill "$md" ISSUER "$OTHER_ISSUER" CERT1 "$CERT_ATT" CERT2 "$CERT_ATT" CERT_ENC "$CERT_ENC" >other-metadata.xml
# Only the encryption KeyDescriptor: no signing certificate.
perl -0pe 's{<md:KeyDescriptor use="signing">.*?</md:KeyDescriptor>\s*}{}s;
           s{<md:KeyDescriptor>.*?</md:KeyDescriptor>\s*}{}s' metadata.xml >nocert-metadata.xml

# --- templates ----------------------------------------------------------------
sig_tpl=$(<"$here/signature.xml.in")
a_tpl=$(<"$here/assertion.xml.in")
r_tpl=$(<"$here/response.xml.in")

seq_no=0
# Unique within a run, unpredictable across runs.
run_tag=$(openssl rand -hex 8)
id="" fid="" nid=""
new_id() { seq_no=$((seq_no + 1)); printf -v "$1" '_a%s%05d' "$run_tag" "$seq_no"; }

# signature REF SIGNED: the enveloped signature of the element REF names,
# to be made by xmlsec1, when SIGNED is 1
signature() { if [ "$2" = 1 ]; then printf '%s' "${sig_tpl//@REF@/$1}"; fi; }

# assertion ID [signed=1] [issuer] [nameid] [audience] [not_before] [not_on_or_after] [role]
assertion() {
    local id=$1 signed=${2:-1} iss=${3:-$ISSUER} nameid=${4:-$NAMEID} aud=${5:-$AUDIENCE}
    local nb=${6:-$((now - 60))} noa=${7:-$((now + 300))} role=${8:-FinancialAdvisor}
    fill "$a_tpl" SIGNATURE "$(signature "$id" "$signed")" ID "$id" ISSUER "$iss" NAMEID "$nameid" \
        AUDIENCE "$aud" RECIPIENT "$RECIPIENT" SCD_EXTRA "$SCD_EXTRA" ISSUE_INSTANT "$(ts $((nb + 60)))" \
        AUTHN_INSTANT "$(ts $((now - 120)))" NOT_BEFORE "$(ts "$nb")" NOT_ON_OR_AFTER "$(ts "$noa")" \
        ROLE "$role" EMPLOYEE_ID 12345
}

# response RESPONSE_ID signed ASSERTIONS [EXTENSIONS] [issuer]
response() {
    local rid=$1 signed=$2 assertions=$3 ext=${4:-} iss=${5:-$ISSUER}
    fill "$r_tpl" SIGNATURE "$(signature "$rid" "$signed")" EXTENSIONS "$ext" RESPONSE_ID "$rid" \
        ISSUER "$iss" RECIPIENT "$RECIPIENT" RESPONSE_EXTRA "$RESPONSE_EXTRA" STATUS "$STATUS" \
        ISSUE_INSTANT "$(ts "$now")" ASSERTIONS "$assertions"
}

# sign KEY NODE < template > signed  (NODE: Assertion or Response)
sign() {
    local key=$1 node=$2 ns=urn:oasis:names:tc:SAML:2.0:assertion tmp
    [ "$node" = Response ] && ns=urn:oasis:names:tc:SAML:2.0:protocol
    tmp=$(mktemp ./sign.XXXXXX)
    cat >"$tmp"
    "$XMLSEC1" --sign --privkey-pem "$key.key,$key.crt" --id-attr:ID "$ns:$node" \
        --output "$tmp.out" "$tmp" 2>"$tmp.err" || { cat "$tmp.err" >&2; exit 1; }
    # Without its XML declaration, so that it can be nested.
    sed '1{/^<?xml/d}' "$tmp.out"
    rm -f "$tmp" "$tmp.out" "$tmp.err"
}

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# emit NAME ID < xml
emit() {
    cat >"$1.xml"
    b64url <"$1.xml" >"$1.b64"
    printf '%s %s\n' "$1" "$2" >>ids.txt
}

: >ids.txt

if [ -z "${ONLY_ACS:-}" ]; then
# --- accepted -------------------------------------------------------------------
new_id id; assertion "$id" | sign idp1 Assertion | emit assertion "$id"
base64 -w0 <assertion.xml >assertion.std.b64
new_id id; assertion "$id" | sign idp2 Assertion | emit rollover "$id"
new_id id; a=$(assertion "$id" 0)
response "_r$(openssl rand -hex 12)" 1 "$a" | sign idp1 Response | emit response "$id"
# Both the response and its assertion signed.
new_id id; a=$(assertion "$id" | sign idp1 Assertion)
response "_r$(openssl rand -hex 12)" 1 "$a" | sign idp2 Response | emit response-both "$id"
# An unsigned response around a signed assertion.
new_id id; a=$(assertion "$id" | sign idp1 Assertion)
response "_r$(openssl rand -hex 12)" 0 "$a" | emit response-assertion-signed "$id"
# Another IdP's assertion, signed with its key: NEXT for ours, OK for it.
new_id id; assertion "$id" 1 "$OTHER_ISSUER" | sign attacker Assertion | emit other-idp "$id"

# --- refused: signatures ----------------------------------------------------------
new_id id; assertion "$id" 0 | emit unsigned "$id"
new_id id; response "_r$(openssl rand -hex 12)" 0 "$(assertion "$id" 0)" |
    emit response-unsigned "$id"
new_id id; assertion "$id" | sign attacker Assertion | emit attacker "$id"
new_id id; assertion "$id" | sign enc Assertion | emit encryption-key "$id"
new_id id; assertion "$id" | sign idp1 Assertion |
    sed "s|>$NAMEID</saml:NameID>|>admin@example.com</saml:NameID>|" | emit tampered-nameid "$id"
new_id id; assertion "$id" "" "" "" "" "" "" Employee | sign idp1 Assertion |
    sed 's|>Employee</saml:AttributeValue>|>ComplianceOfficer</saml:AttributeValue>|' |
    emit tampered-attribute "$id"
# The response's signature checks, but the assertion was changed after the
# response was signed.
new_id id; response "_r$(openssl rand -hex 12)" 1 "$(assertion "$id" 0)" |
    sign idp1 Response | sed "s|>$NAMEID</saml:NameID>|>admin@example.com</saml:NameID>|" |
    emit tampered-response "$id"

# --- refused: signature wrapping --------------------------------------------------
# The signed assertion moved into the response's Extensions; a forged unsigned
# assertion with the same ID where it is read.
new_id id; signed=$(assertion "$id" | sign idp1 Assertion)
forged=$(assertion "$id" 0 "" admin@example.com)
response "_r$(openssl rand -hex 12)" 0 "$forged" \
    "$(printf '\n  <samlp:Extensions>\n%s\n  </samlp:Extensions>' "$signed")" |
    emit wrap-extensions "$id"
# A forged root assertion (other ID) carrying the genuine signature, with the
# signed assertion hidden in the signature's ds:Object.
new_id id; new_id fid; signed=$(assertion "$id" | sign idp1 Assertion)
sigblock=$(printf '%s\n' "$signed" | sed -n '/<ds:Signature/,/<\/ds:Signature>/p')
obj=$(printf '<ds:Object>%s</ds:Object></ds:Signature>' "$signed")
sigblock=${sigblock%</ds:Signature>}$obj
forged=$(assertion "$fid" 0 "" admin@example.com)
printf '%s\n' "${forged/<\/saml:Issuer>/</saml:Issuer>$sigblock}" | emit wrap-object "$fid"
# The same, but the forged assertion takes the signed one's ID.
forged=$(assertion "$id" 0 "" admin@example.com)
printf '%s\n' "${forged/<\/saml:Issuer>/</saml:Issuer>$sigblock}" | emit wrap-object-same-id "$id"
# A signed response with a second, unsigned assertion added after signing.
new_id id; new_id fid
forged=$(assertion "$fid" 0 "" admin@example.com)
signed=$(response "_r$(openssl rand -hex 12)" 1 "$(assertion "$id" 0)" | sign idp1 Response)
printf '%s\n' "${signed/<\/samlp:Response>/$forged</samlp:Response>}" |
    emit wrap-second-assertion "$fid"
# An unsigned forged assertion placed before a signed one in a response.
new_id id; new_id fid
signed=$(assertion "$id" | sign idp1 Assertion)
response "_r$(openssl rand -hex 12)" 0 "$(assertion "$fid" 0 "" admin@example.com)
$signed" | emit wrap-two-assertions "$fid"
# The assertion's ID changed after signing: the Reference names another element.
new_id id; new_id nid
assertion "$id" | sign idp1 Assertion | sed "0,/ID=\"$id\"/s//ID=\"$nid\"/" |
    emit wrap-reference-uri "$nid"
# An xml:id elsewhere that duplicates the assertion's ID.
new_id id; assertion "$id" | sign idp1 Assertion |
    sed "s|<saml:AuthnContext>|<saml:AuthnContext xml:id=\"$id\">|" | emit wrap-duplicate-id "$id"
# Comment injection in a signed NameID (exclusive c14n drops the comment).
new_id id; assertion "$id" 1 "" 'admin@example.com<!---->.evil.com' | sign idp1 Assertion |
    emit comment-nameid "$id"

# --- refused: conditions ----------------------------------------------------------
new_id id; assertion "$id" 1 "" "" "" $((now - 3600)) $((now - 600)) | sign idp1 Assertion |
    emit expired "$id"
new_id id; assertion "$id" 1 "" "" "" $((now + 600)) $((now + 1200)) | sign idp1 Assertion |
    emit not-yet-valid "$id"
new_id id; assertion "$id" 1 "" "" https://someone-else.example/saml | sign idp1 Assertion |
    emit wrong-audience "$id"
# Signed by our IdP's key but naming another issuer: not ours (NEXT).
new_id id; assertion "$id" 1 https://evil.example/ | sign idp1 Assertion |
    emit wrong-issuer "$id"
# A response from our IdP around an assertion naming another issuer.
new_id id; response "_r$(openssl rand -hex 12)" 1 "$(assertion "$id" 0 https://evil.example/)" |
    sign idp1 Response | emit response-issuer-mismatch "$id"

# --- refused: DTDs -----------------------------------------------------------------
new_id id
{
    printf '<?xml version="1.0"?>\n<!DOCTYPE saml:Assertion [\n'
    printf ' <!ENTITY lol "lol">\n'
    printf ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    for i in 2 3 4 5 6 7 8 9; do
        p=$((i - 1))
        printf ' <!ENTITY lol%d "' "$i"
        for _ in 1 2 3 4 5 6 7 8 9 10; do printf '&lol%d;' "$p"; done
        printf '">\n'
    done
    printf ']>\n'
    assertion "$id" 0 "" '&lol9;'
} | emit entity-bomb "$id"
new_id id
{
    printf '<?xml version="1.0"?>\n<!DOCTYPE saml:Assertion [\n'
    printf ' <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    assertion "$id" 0 "" '&xxe;'
} | emit external-entity "$id"

fi # ONLY_ACS

# --- the Assertion Consumer Service (sign-in) ----------------------------------------
enc_tpl=$(<"$here/encrypted-data.xml.in")
# encrypt CERT ELEMENT [block cipher URI] < xml holding the element once > xml
# with the element replaced by its EncryptedData
encrypt() {
    local cert=$1 el=$2 alg=${3:-http://www.w3.org/2001/04/xmlenc#aes128-cbc} tmp sk=aes-128
    case $alg in *aes256*) sk=aes-256 ;; esac
    tmp=$(mktemp ./enc.XXXXXX)
    cat >"$tmp"
    local tpl=${enc_tpl//@ALG@/$alg}
    # ENC_DS_PREFIX: the KeyInfo's prefix for the dsig namespace (xmlseclibs,
    # SimpleSAMLphp's library, writes dsig: where the signature says ds:)
    if [ -n "${ENC_DS_PREFIX:-}" ]; then
        tpl=${tpl//ds:/$ENC_DS_PREFIX:}
        tpl=${tpl//xmlns:ds=/xmlns:$ENC_DS_PREFIX=}
    fi
    printf '%s\n' "$tpl" >"$tmp.tpl"
    "$XMLSEC1" --encrypt --pubkey-cert-pem "$cert.crt" --session-key "$sk" --xml-data "$tmp" \
        --node-name "urn:oasis:names:tc:SAML:2.0:assertion:$el" --output "$tmp.out" "$tmp.tpl" \
        2>"$tmp.err" || { cat "$tmp.err" >&2; exit 1; }
    sed '1{/^<?xml/d}' "$tmp.out"
    rm -f "$tmp" "$tmp.tpl" "$tmp.out" "$tmp.err"
}
# wrap ELEMENT < xml > the same in saml:ELEMENT (EncryptedAssertion, EncryptedID)
wrap() {
    printf '<saml:%s xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">' "$1"
    cat
    printf '</saml:%s>\n' "$1"
}
# emit_acs NAME ID < xml: the HTTP-POST binding's standard base64
emit_acs() {
    cat >"acs-$1.xml"
    base64 -w0 <"acs-$1.xml" >"acs-$1.b64"
    printf 'acs-%s %s\n' "$1" "$2" >>ids.txt
}
rid() { printf '_r%s' "$(openssl rand -hex 12)"; }
RECIPIENT=$ACS_URL
irt=" InResponseTo=\"$REQUEST_ID\""
SCD_EXTRA=$irt RESPONSE_EXTRA=$irt
# accepted
new_id id; a=$(assertion "$id" 1 "" "" "" "" "" "${ACS_ROLE:-FinancialAdvisor}" | sign idp1 Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs ok "$id"
new_id id; response "$(rid)" 0 "$(assertion "$id" | sign idp1 Assertion)" |
    emit_acs assertion-signed "$id"
new_id id; response "$(rid)" 1 "$(assertion "$id" 0)" | sign idp1 Response |
    emit_acs response-signed "$id"
RESPONSE_EXTRA=""
new_id id; response "$(rid)" 0 "$(assertion "$id" | sign idp1 Assertion)" |
    emit_acs no-response-irt "$id"
RESPONSE_EXTRA=$irt
new_id id; a=$(assertion "$id" | sign idp1 Assertion | wrap EncryptedAssertion | encrypt sp Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs encrypted "$id"
new_id id; a=$(assertion "$id" | sign idp1 Assertion | wrap EncryptedAssertion |
    encrypt sp Assertion http://www.w3.org/2009/xmlenc11#aes256-gcm)
response "$(rid)" 0 "$a" | emit_acs encrypted-gcm "$id"
new_id id; a=$(assertion "$id" | sign idp1 Assertion | wrap EncryptedAssertion | encrypt sp-next Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs encrypted-next "$id"
new_id id; a=$(assertion "$id" | sed 's|<saml:NameID |<saml:EncryptedID><saml:NameID |; s|</saml:NameID>|</saml:NameID></saml:EncryptedID>|' |
    encrypt sp NameID | sign idp1 Assertion)
response "$(rid)" 0 "$a" | emit_acs encrypted-nameid "$id"
# as SimpleSAMLphp sends it with both on: the encrypted NameID (its KeyInfo
# in the dsig: prefix) inside the signed assertion (ds:), that assertion
# encrypted, the Response signed
new_id id; a=$(assertion "$id" | sed 's|<saml:NameID |<saml:EncryptedID><saml:NameID |; s|</saml:NameID>|</saml:NameID></saml:EncryptedID>|' |
    ENC_DS_PREFIX=dsig encrypt sp NameID | sign idp1 Assertion | wrap EncryptedAssertion |
    encrypt sp Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs encrypted-both "$id"
# refused
new_id id; a=$(assertion "$id" 0 | wrap EncryptedAssertion | encrypt sp Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs encrypted-unsigned "$id"
new_id id; a=$(assertion "$id" | sign idp1 Assertion | wrap EncryptedAssertion | encrypt attacker Assertion)
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs encrypted-other-key "$id"
# the key transport names its digest twice: refused before xmlsec reads it
# (xmlsec 1.2.37 keeps the last and leaks the first: lsh123/xmlsec#1165)
oaep='<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"'
digest='<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>'
new_id id; a=$(assertion "$id" | sign idp1 Assertion | wrap EncryptedAssertion | encrypt sp Assertion |
    sed "s|$oaep/>|$oaep>$digest$digest</xenc:EncryptionMethod>|")
response "$(rid)" 0 "$a" | emit_acs encrypted-repeated-digest "$id"
SCD_EXTRA="$irt" RECIPIENT=https://mandate.example.com/login/other/callback
new_id id; a=$(assertion "$id" | sign idp1 Assertion)
RECIPIENT=$ACS_URL
response "$(rid)" 0 "$a" | emit_acs wrong-recipient "$id"
RECIPIENT=https://elsewhere.example/acs
new_id id; a=$(assertion "$id" | sign idp1 Assertion | sed "s|Recipient=\"$RECIPIENT\"|Recipient=\"$ACS_URL\"|")
response "$(rid)" 1 "$a" | sign idp1 Response | emit_acs wrong-destination "$id"
RECIPIENT=$ACS_URL
other=" InResponseTo=\"_req0ther0000000000\""
SCD_EXTRA=$other RESPONSE_EXTRA=$other
new_id id; response "$(rid)" 0 "$(assertion "$id" | sign idp1 Assertion)" | emit_acs wrong-irt "$id"
SCD_EXTRA="" RESPONSE_EXTRA=""
new_id id; response "$(rid)" 0 "$(assertion "$id" | sign idp1 Assertion)" | emit_acs no-irt "$id"
new_id id; response "$(rid)" 0 "$(assertion "$id" 1 "" "" "" "" "" "${ACS_ROLE:-FinancialAdvisor}" |
    sign idp1 Assertion)" | emit_acs unsolicited "$id"
SCD_EXTRA=$irt RESPONSE_EXTRA=$irt
new_id id; response "$(rid)" 0 "$(assertion "$id" 1 "" "" https://someone-else.example/saml |
    sign idp1 Assertion)" | emit_acs wrong-audience "$id"
new_id id; response "$(rid)" 0 "$(assertion "$id" 1 "" "" "" $((now - 3600)) $((now - 600)) |
    sign idp1 Assertion)" | emit_acs expired "$id"
new_id id; response "$(rid)" 0 "$(assertion "$id" 1 "" "" "" $((now + 600)) $((now + 1200)) |
    sign idp1 Assertion)" | emit_acs not-yet-valid "$id"
new_id id; response "$(rid)" 0 "$(assertion "$id" 1 "" 'admin@example.com<!---->.evil.com' |
    sign idp1 Assertion)" | emit_acs comment-nameid "$id"
new_id id; signed=$(assertion "$id" | sign idp1 Assertion)
forged=$(assertion "$id" 0 "" admin@example.com)
response "$(rid)" 0 "$forged" \
    "$(printf '\n  <samlp:Extensions>\n%s\n  </samlp:Extensions>' "$signed")" |
    emit_acs wrap-extensions "$id"
new_id id; new_id fid
forged=$(assertion "$fid" 0 "" admin@example.com)
signed=$(response "$(rid)" 1 "$(assertion "$id" 0)" | sign idp1 Response)
printf '%s\n' "${signed/<\/samlp:Response>/$forged</samlp:Response>}" |
    emit_acs wrap-second-assertion "$fid"
new_id id; response "$(rid)" 0 "$(assertion "$id" | sign idp1 Assertion)" |
    sed "s|>$NAMEID</saml:NameID>|>admin@example.com</saml:NameID>|" | emit_acs tampered "$id"
new_id id
{
    printf '<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n <!ENTITY lol "lol">\n'
    printf ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
    response "$(rid)" 0 "$(assertion "$id" 0 "" '&lol1;')"
} | emit_acs entity-bomb "$id"
new_id id
{
    printf '<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n'
    printf ' <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    response "$(rid)" 0 "$(assertion "$id" 0 "" '&xxe;')"
} | emit_acs external-entity "$id"
STATUS='    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">
      <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/>
    </samlp:StatusCode>
    <samlp:StatusMessage>The user cancelled the login</samlp:StatusMessage>'
response "$(rid)" 0 "" | emit_acs authn-failed "-"
STATUS=$STATUS_OK

# --- benchmark ---------------------------------------------------------------------
[ -n "${ONLY_ACS:-}" ] && exit 0
for ((i = 0; i < bench_n; i++)); do
    new_id id; assertion "$id" | sign idp1 Assertion >"bench.xml"
    b64url <bench.xml >"bench-$i.b64"
done
rm -f bench.xml
