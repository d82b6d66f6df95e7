// What the interop tests' OpenID providers on loopback share
// (oidc-provider.mjs serve, signin-idp.mjs): npm oidc-provider (not ours)
// from OIDC_NPM_DIR, where node_modules is (the build tree's; default: the
// working folder), an HTTP server on 127.0.0.1 whose port names the issuer,
// the provider's errors on stderr, and the end on SIGTERM or SIGINT.
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// loopbackProvider(PORT): { Provider, server, port, issuer } once the server
// listens on 127.0.0.1:PORT (0: any free one); Provider is oidc-provider's
// class, server has no handler yet
export async function loopbackProvider(port) {
    const npmDir = process.env.OIDC_NPM_DIR || process.cwd();
    const require = createRequire(path.join(npmDir, 'package.json'));
    const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
    const server = http.createServer();
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(port || 0), '127.0.0.1', resolve);
    });
    const bound = server.address().port;
    return { Provider, server, port: bound, issuer: `http://127.0.0.1:${bound}` };
}

// logErrors(PROVIDER): its server, grant and authorization errors on stderr
export function logErrors(provider) {
    provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error ${err.stack}\n`));
    provider.on('grant.error', (_ctx, err) => process.stderr.write(`grant.error ${err.message} ${err.error_description || ''}\n`));
    provider.on('authorization.error', (_ctx, err) => process.stderr.write(`authorization.error ${err.message} ${err.error_description || ''}\n`));
}

// announce(SERVER): prints "listening PORT"; SIGTERM and SIGINT close it,
// the broker's kept-alive connections too, and end the process
export function announce(server) {
    const stop = () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    console.log(`listening ${server.address().port}`);
}
