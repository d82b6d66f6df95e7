// A local AWS Secrets Manager for the secretsmanager backend's test: the
// JSON 1.1 protocol calls the backend makes (GetSecretValue with VersionStage
// or VersionId, CreateSecret, PutSecretValue) with version stages
// (AWSCURRENT, AWSPREVIOUS; older versions lose their labels), and AWS's
// error answers. Every call must carry a SigV4 signature that AWS's own
// signer, @smithy/signature-v4, recomputes identically from the request
// received and the known test credentials; the credential scope must name
// the region and the service, the date must be recent, and host, x-amz-date,
// x-amz-target, content-type and any x-amz-security-token must be signed.
// Anything else is refused as AWS refuses it, so the broker's signing is
// judged by code we did not write.
//
// Environment: SM_NPM_DIR (where node_modules is), SM_REGION, SM_CREDENTIALS
// (JSON [{accessKeyId, secretAccessKey, sessionToken?}]), SM_PORT (0: any).
// Prints "listening PORT" once it listens on 127.0.0.1.
//
// Test controls, unsigned, under /__admin/ (never part of the AWS protocol):
//   POST /__admin/mode   {"throttle": bool, "deny": [names]}: answer every
//                        call with 400 ThrottlingException; AccessDenied on
//                        GetSecretValue for those secrets
//   POST /__admin/raw    {"name", "string"}: a new AWSCURRENT version, as is
//   POST /__admin/delete {"name"}: the secret is gone
//   GET  /__admin/secret?name=N: the secret's versions, stages, KMS key, tags
//   GET  /__admin/stats  : calls verified and refused, by reason
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.SM_NPM_DIR || process.cwd(), 'package.json'));
const { SignatureV4 } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

const REGION = process.env.SM_REGION || 'us-east-1';
const SERVICE = 'secretsmanager';
const ACCOUNT = '123456789012';
const CREDENTIALS = JSON.parse(process.env.SM_CREDENTIALS || '[]');
const MAX_SKEW_MS = 5 * 60 * 1000;
const REQUIRED_SIGNED = ['host', 'x-amz-date', 'x-amz-target', 'content-type'];

const secrets = new Map(); // name -> {arn, name, kmsKeyId, tags, description, versions: Map}
let throttle = false;
let deny = new Set();
const stats = { verified: 0, refused: 0, reasons: {}, targets: {}, sessionTokenSigned: 0, accessKeys: {} };

class AwsError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

function refuse(reason, status, type, message) {
  stats.refused++;
  stats.reasons[reason] = (stats.reasons[reason] || 0) + 1;
  console.log(`refused: ${reason}`);
  return new AwsError(status, type, message);
}

// "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request,
//  SignedHeaders=a;b, Signature=hex"
function parseAuthorization(value) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(value);
  if (!m) return null;
  const scope = m[1].split('/');
  if (scope.length !== 5) return null;
  return {
    accessKeyId: scope[0], date: scope[1], region: scope[2], service: scope[3], terminator: scope[4],
    signedHeaders: m[2].split(';'), signature: m[3],
  };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return null;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function verify(req, body) {
  const auth = req.headers['authorization'];
  if (!auth) throw refuse('no Authorization', 400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  const a = parseAuthorization(auth);
  if (!a) throw refuse('malformed Authorization', 400, 'IncompleteSignatureException', 'Authorization header is malformed');
  const cred = CREDENTIALS.find((c) => c.accessKeyId === a.accessKeyId);
  if (!cred) throw refuse('unknown access key', 400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (a.region !== REGION || a.service !== SERVICE || a.terminator !== 'aws4_request')
    throw refuse(`scope ${a.region}/${a.service}/${a.terminator}`, 400, 'InvalidSignatureException',
      `Credential should be scoped to a valid region (${REGION}) and service (${SERVICE}).`);
  const amzDate = req.headers['x-amz-date'];
  const date = parseAmzDate(amzDate);
  if (!date) throw refuse('no x-amz-date', 400, 'IncompleteSignatureException', 'X-Amz-Date is missing or malformed');
  if (amzDate.slice(0, 8) !== a.date)
    throw refuse('scope date', 400, 'InvalidSignatureException', 'Credential scope date does not match X-Amz-Date');
  if (Math.abs(Date.now() - date.getTime()) > MAX_SKEW_MS)
    throw refuse('date skew', 400, 'InvalidSignatureException', 'Signature expired');
  for (const h of REQUIRED_SIGNED)
    if (!a.signedHeaders.includes(h))
      throw refuse(`${h} not signed`, 400, 'InvalidSignatureException', `${h} must be signed`);
  const token = req.headers['x-amz-security-token'];
  if (token !== undefined && !a.signedHeaders.includes('x-amz-security-token'))
    throw refuse('session token not signed', 400, 'InvalidSignatureException', 'x-amz-security-token must be signed');
  if ((cred.sessionToken || undefined) !== token)
    throw refuse(cred.sessionToken ? (token ? 'wrong session token' : 'no session token') : 'unexpected session token',
      400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');

  // Recompute with AWS's signer: the request as received, reduced to the
  // headers it says it signed.
  const headers = {};
  for (const h of a.signedHeaders) {
    const v = req.headers[h];
    if (v === undefined) throw refuse(`signed header ${h} absent`, 400, 'InvalidSignatureException', 'A signed header is absent');
    headers[h] = Array.isArray(v) ? v.join(',') : v;
  }
  const url = new URL(req.url, 'http://placeholder');
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey, sessionToken: cred.sessionToken },
    region: REGION, service: SERVICE, sha256: Hash.bind(null, 'sha256'), applyChecksum: false,
  });
  const signed = await signer.sign({
    method: req.method, protocol: 'http:', hostname: (req.headers.host || '').replace(/:\d+$/, ''),
    path: url.pathname, query, headers, body: new Uint8Array(body),
  }, { signingDate: date });
  const expected = parseAuthorization(signed.headers['authorization']);
  if (!expected || expected.signedHeaders.join(';') !== a.signedHeaders.join(';'))
    throw refuse('signed headers differ', 400, 'InvalidSignatureException', 'SignedHeaders do not match');
  if (!crypto.timingSafeEqual(Buffer.from(expected.signature), Buffer.from(a.signature)))
    throw refuse('signature mismatch', 400, 'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  stats.verified++;
  stats.accessKeys[cred.accessKeyId] = (stats.accessKeys[cred.accessKeyId] || 0) + 1;
  if (token !== undefined) stats.sessionTokenSigned++;
}

function findSecret(id) {
  if (typeof id !== 'string' || id === '') throw new AwsError(400, 'InvalidParameterException', 'SecretId is required');
  for (const s of secrets.values()) if (s.name === id || s.arn === id) return s;
  throw new AwsError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
}

// A new version takes the stages; AWSCURRENT moving makes the old current
// AWSPREVIOUS, and whichever version was AWSPREVIOUS loses the label.
function addVersion(s, versionId, string, stages = ['AWSCURRENT']) {
  if (s.versions.has(versionId)) {
    if (s.versions.get(versionId).string === string) return s.versions.get(versionId);
    throw new AwsError(400, 'ResourceExistsException', 'A version with this ClientRequestToken already exists with a different value.');
  }
  if (stages.includes('AWSCURRENT')) {
    for (const v of s.versions.values()) v.stages.delete('AWSPREVIOUS');
    for (const v of s.versions.values())
      if (v.stages.delete('AWSCURRENT')) v.stages.add('AWSPREVIOUS');
  }
  for (const v of s.versions.values()) for (const st of stages) if (st !== 'AWSCURRENT') v.stages.delete(st);
  const version = { versionId, string, stages: new Set(stages), created: Date.now() / 1000 };
  s.versions.set(versionId, version);
  return version;
}

function requestToken(t) {
  if (t === undefined) return crypto.randomUUID();
  if (typeof t !== 'string' || t.length < 32 || t.length > 64)
    throw new AwsError(400, 'InvalidParameterException', 'ClientRequestToken must be 32 to 64 characters');
  return t;
}

const operations = {
  CreateSecret(input) {
    const name = input.Name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name))
      throw new AwsError(400, 'InvalidParameterException', 'Invalid name');
    if (typeof input.SecretString !== 'string') throw new AwsError(400, 'InvalidParameterException', 'SecretString is required here');
    if (secrets.has(name)) throw new AwsError(400, 'ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
    const suffix = crypto.randomBytes(3).toString('hex');
    const s = {
      name, arn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-${suffix}`,
      kmsKeyId: input.KmsKeyId || null, tags: input.Tags || [], description: input.Description || null,
      versions: new Map(),
    };
    secrets.set(name, s);
    const v = addVersion(s, requestToken(input.ClientRequestToken), input.SecretString);
    return { ARN: s.arn, Name: s.name, VersionId: v.versionId };
  },
  PutSecretValue(input) {
    const s = findSecret(input.SecretId);
    if (typeof input.SecretString !== 'string') throw new AwsError(400, 'InvalidParameterException', 'SecretString is required here');
    const v = addVersion(s, requestToken(input.ClientRequestToken), input.SecretString, input.VersionStages || ['AWSCURRENT']);
    return { ARN: s.arn, Name: s.name, VersionId: v.versionId, VersionStages: [...v.stages] };
  },
  GetSecretValue(input) {
    const s = findSecret(input.SecretId);
    if (deny.has(s.name))
      throw new AwsError(400, 'AccessDeniedException',
        `User: arn:aws:iam::${ACCOUNT}:user/mandate is not authorized to perform: secretsmanager:GetSecretValue on resource: ${s.name}`);
    let version;
    if (input.VersionId !== undefined) version = s.versions.get(input.VersionId);
    const stage = input.VersionStage || (input.VersionId === undefined ? 'AWSCURRENT' : undefined);
    if (stage !== undefined) {
      const byStage = [...s.versions.values()].find((v) => v.stages.has(stage));
      if (input.VersionId !== undefined && byStage !== version) version = undefined;
      else version = byStage;
    }
    if (!version)
      throw new AwsError(400, 'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for staging label: ${stage}`);
    return {
      ARN: s.arn, Name: s.name, VersionId: version.versionId, SecretString: version.string,
      VersionStages: [...version.stages], CreatedDate: version.created,
    };
  },
};

function send(res, status, obj, type) {
  const body = JSON.stringify(obj);
  const headers = { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(body),
    'x-amzn-RequestId': crypto.randomUUID() };
  if (type) headers['x-amzn-ErrorType'] = `${type}:http://internal.amazon.com/coral/com.amazonaws.secretsmanager/`;
  res.writeHead(status, headers);
  res.end(body);
}

function sendError(res, e) {
  if (!(e instanceof AwsError)) {
    console.log(`internal error: ${e && e.stack}`);
    e = new AwsError(500, 'InternalServiceError', 'internal error');
  }
  send(res, e.status, { __type: `com.amazonaws.secretsmanager#${e.type}`, message: e.message }, e.type);
}

function admin(req, res, body, url) {
  const input = body.length ? JSON.parse(body.toString('utf8')) : {};
  switch (url.pathname) {
    case '/__admin/mode':
      if (input.throttle !== undefined) throttle = !!input.throttle;
      if (input.deny !== undefined) deny = new Set(input.deny);
      return send(res, 200, { throttle, deny: [...deny] });
    case '/__admin/raw': {
      const s = secrets.get(input.name);
      if (!s) return send(res, 404, { error: 'no such secret' });
      const v = addVersion(s, crypto.randomUUID(), input.string);
      return send(res, 200, { VersionId: v.versionId });
    }
    case '/__admin/delete':
      return send(res, 200, { deleted: secrets.delete(input.name) });
    case '/__admin/secret': {
      const s = secrets.get(url.searchParams.get('name'));
      if (!s) return send(res, 404, { error: 'no such secret' });
      return send(res, 200, {
        Name: s.name, ARN: s.arn, KmsKeyId: s.kmsKeyId, Tags: s.tags, Description: s.description,
        Versions: [...s.versions.values()].map((v) => ({ VersionId: v.versionId, SecretString: v.string, VersionStages: [...v.stages] })),
      });
    }
    case '/__admin/stats':
      return send(res, 200, stats);
    default:
      return send(res, 404, { error: 'unknown admin path' });
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://placeholder');
    try {
      if (url.pathname.startsWith('/__admin/')) return admin(req, res, body, url);
      if (req.method !== 'POST') throw new AwsError(404, 'UnknownOperationException', 'POST only');
      await verify(req, body);
      const target = req.headers['x-amz-target'] || '';
      const op = target.startsWith('secretsmanager.') ? operations[target.slice('secretsmanager.'.length)] : undefined;
      if (!op || !Object.hasOwn(operations, target.slice('secretsmanager.'.length)))
        throw new AwsError(400, 'UnknownOperationException', `Unknown operation ${target}`);
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1')
        throw new AwsError(400, 'SerializationException', 'Content-Type must be application/x-amz-json-1.1');
      stats.targets[target] = (stats.targets[target] || 0) + 1;
      if (throttle) throw new AwsError(400, 'ThrottlingException', 'Rate exceeded');
      let input;
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        throw new AwsError(400, 'SerializationException', 'The body is not JSON');
      }
      send(res, 200, op(input));
    } catch (e) {
      sendError(res, e);
    }
  });
});

server.listen(Number(process.env.SM_PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
