# Sourced by the SAML interop tests (after tests/e2e/lib.sh): Debian's
# SimpleSAMLphp (1.19, /usr/share/simplesamlphp) as the bank's SAML IdP, run
# by PHP's built-in server on 127.0.0.1 from a folder of the test's own
# (SIMPLESAMLPHP_CONFIG_DIR: /etc/simplesamlphp is never read or changed).
# Its signing key is made here with openssl; its users are exampleauth's
# UserPass with the workshop's attributes:
#   advisor     / advisor-pw     uid advisor-12345, role [advisor, FinancialAdvisor], employeeId 12345
#   compliance  / compliance-pw  uid compliance-67890, role ComplianceOfficer, employeeId 67890
#   stranger    / stranger-pw    uid stranger-4711, role visitor (no rule admits it)
# The service provider (Mandate) is registered from its own SP metadata
# (ssp_register_sp), converted by SimpleSAMLphp's own metadata parser.
#
#   ssp_start [--validate-authnrequest]
#       starts it; sets SSP_DIR, SSP_PORT, SSP_BASE, SSP_ENTITY_ID (also its
#       metadata URL), SSP_PID (the leader of its process group), SSP_LOG.
#       --validate-authnrequest: the IdP's metadata says
#       WantAuthnRequestsSigned and unsigned AuthnRequests are refused.
#   ssp_register_sp METADATA_FILE [--encrypt] [--encrypt-nameid] [--validate-authnrequest]
#       adds the SP of that metadata to saml20-sp-remote.php, or replaces it
#       (the file is read on each request: no restart); --encrypt: EncryptedAssertion under the SP's
#       encryption certificate; --encrypt-nameid: EncryptedID for the NameID
#       too; --validate-authnrequest: this SP's requests
#       must be signed (with its signing certificate).
#   ssp_stop
#       stops the process group (PHP's workers outlive their master).
# Needs php (php-cli) and simplesamlphp; without them: SKIP (77).

SSP_ROOT=${SSP_ROOT:-/usr/share/simplesamlphp}
command -v php >/dev/null 2>&1 || { echo "SKIP: no php (Debian: apt-get install php-cli, or bash .ci/install-deps)"; exit 77; }
[ -f "$SSP_ROOT/www/saml2/idp/SSOService.php" ] ||
    { echo "SKIP: no SimpleSAMLphp in $SSP_ROOT (Debian: apt-get install simplesamlphp)"; exit 77; }
SSP_PID=""

ssp_start() {
    local validate=false port i
    [ "${1:-}" = --validate-authnrequest ] && validate=true
    SSP_DIR="$TMP/simplesamlphp"
    mkdir -p "$SSP_DIR"/{config,metadata,cert,log,data,tmp,sessions}
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$SSP_DIR/cert/idp.key" -out "$SSP_DIR/cert/idp.crt" \
        -days 2 -subj "/CN=SimpleSAMLphp test IdP" >"$SSP_DIR/openssl.log" 2>&1 ||
        { cat "$SSP_DIR/openssl.log"; fatal "openssl could not make the IdP's key"; }
    port=$(free_port)
    SSP_PORT=$port
    SSP_BASE="http://127.0.0.1:$port/"
    SSP_ENTITY_ID="${SSP_BASE}saml2/idp/metadata.php"
    SSP_LOG="$SSP_DIR/log/php.log"
    cat >"$SSP_DIR/config/config.php" <<PHP
<?php
\$config = [
    'baseurlpath' => '$SSP_BASE',
    'certdir' => '$SSP_DIR/cert/',
    'loggingdir' => '$SSP_DIR/log/',
    'datadir' => '$SSP_DIR/data/',
    'tempdir' => '$SSP_DIR/tmp/',
    'metadatadir' => '$SSP_DIR/metadata/',
    'metadata.sources' => [['type' => 'flatfile', 'directory' => '$SSP_DIR/metadata']],
    'secretsalt' => '$(openssl rand -hex 16)',
    'auth.adminpassword' => '$(openssl rand -hex 16)',
    'technicalcontact_name' => 'Mandate tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '$SSP_DIR/sessions',
    // plain http on loopback: a Secure or SameSite=None cookie would be
    // dropped by Chrome ("Missing cookie")
    'session.cookie.secure' => false,
    'session.cookie.samesite' => 'Lax',
    'language.cookie.secure' => false,
    'language.cookie.samesite' => 'Lax',
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.level' => SimpleSAML\Logger::INFO,
    'showerrors' => true,
    'production' => false,
    'admin.checkforupdates' => false,
];
PHP
    cat >"$SSP_DIR/config/authsources.php" <<'PHP'
<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'bank-users' => [
        'exampleauth:UserPass',
        'advisor:advisor-pw' => ['uid' => ['advisor-12345'], 'role' => ['advisor', 'FinancialAdvisor'],
            'employeeId' => ['12345'], 'displayName' => ['Avery Advisor']],
        'compliance:compliance-pw' => ['uid' => ['compliance-67890'], 'role' => ['ComplianceOfficer'],
            'employeeId' => ['67890'], 'displayName' => ['Casey Compliance']],
        'stranger:stranger-pw' => ['uid' => ['stranger-4711'], 'role' => ['visitor'],
            'displayName' => ['Sam Stranger']],
    ],
];
PHP
    cat >"$SSP_DIR/metadata/saml20-idp-hosted.php" <<PHP
<?php
\$metadata['$SSP_ENTITY_ID'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'bank-users',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    // the NameID: the user's uid, persistent
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'simplesaml.nameidattribute' => 'uid',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
    'validate.authnrequest' => $validate,
];
PHP
    mkdir -p "$SSP_DIR/sp.d"
    printf '<?php\n$metadata = [];\n' >"$SSP_DIR/metadata/saml20-sp-remote.php"
    # its own process group, stopped as one (ssp_stop)
    SIMPLESAMLPHP_CONFIG_DIR="$SSP_DIR/config" PHP_CLI_SERVER_WORKERS=2 \
        setsid php -d "session.save_path=$SSP_DIR/sessions" -d display_errors=stderr \
        -S "127.0.0.1:$port" -t "$SSP_ROOT/www" >"$SSP_LOG" 2>&1 &
    SSP_PID=$!
    for i in $(seq 1 200); do
        curl -sf -o "$SSP_DIR/idp-metadata.xml" "$SSP_ENTITY_ID" && break
        kill -0 "$SSP_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -q "entityID=\"$SSP_ENTITY_ID\"" "$SSP_DIR/idp-metadata.xml" 2>/dev/null ||
        { tail -n 20 "$SSP_LOG" "$SSP_DIR/log/simplesamlphp.log" 2>/dev/null; fatal "SimpleSAMLphp did not answer its metadata"; }
}

ssp_register_sp() {
    local md=$1 encrypt=false encrypt_nameid=false validate=false
    shift
    for a in "$@"; do
        case $a in
        --encrypt) encrypt=true ;;
        --encrypt-nameid) encrypt_nameid=true ;;
        --validate-authnrequest) validate=true ;;
        *) fatal "ssp_register_sp: unknown option $a" ;;
        esac
    done
    # SimpleSAMLphp's own parser, as its metadata converter does
    SSP_ROOT="$SSP_ROOT" SIMPLESAMLPHP_CONFIG_DIR="$SSP_DIR/config" SSP_MD="$md" SSP_ENCRYPT=$encrypt SSP_ENCRYPT_NAMEID=$encrypt_nameid \
        SSP_VALIDATE=$validate \
        php -d display_errors=stderr -r '
        require getenv("SSP_ROOT") . "/lib/_autoload.php";
        $xml = file_get_contents(getenv("SSP_MD"));
        $out = "<?php\n";
        $n = 0;
        foreach (\SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($xml) as $entity) {
            $sp = $entity->getMetadata20SP();
            if ($sp === null) continue;
            unset($sp["entityDescriptor"], $sp["expire"]);
            $sp["assertion.encryption"] = getenv("SSP_ENCRYPT") === "true";
            $sp["nameid.encryption"] = getenv("SSP_ENCRYPT_NAMEID") === "true";
            $sp["validate.authnrequest"] = getenv("SSP_VALIDATE") === "true";
            $sp["saml20.sign.assertion"] = true;
            // single logout (Mandate publishes its SingleLogoutService): the
            // LogoutRequests of the SP signed where its AuthnRequests are, the
            // LogoutResponses of the IdP signed (Mandate requires it)
            $sp["validate.logout"] = getenv("SSP_VALIDATE") === "true";
            $sp["redirect.sign"] = true;
            $out .= "\$metadata[" . var_export($sp["entityid"], true) . "] = " . var_export($sp, true) . ";\n";
            $n++;
        }
        if ($n !== 1) { fwrite(STDERR, "expected one SP in the metadata, found $n\n"); exit(1); }
        echo $out;' >"$SSP_DIR/sp.d/new" 2>"$SSP_DIR/sp-remote.err" ||
        { cat "$SSP_DIR/sp-remote.err"; fatal "SimpleSAMLphp could not read the SP metadata $md"; }
    mv "$SSP_DIR/sp.d/new" "$SSP_DIR/sp.d/$(basename "$md").php"
    { printf '<?php\n'; cat "$SSP_DIR"/sp.d/*.php | grep -v '^<?php$'; } >"$SSP_DIR/metadata/saml20-sp-remote.php.new"
    mv "$SSP_DIR/metadata/saml20-sp-remote.php.new" "$SSP_DIR/metadata/saml20-sp-remote.php"
}

ssp_stop() {
    [ -n "$SSP_PID" ] || return 0
    kill -TERM -- "-$SSP_PID" 2>/dev/null
    wait "$SSP_PID" 2>/dev/null
    SSP_PID=""
}
trap 'ssp_stop; cleanup' EXIT
