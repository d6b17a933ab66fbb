// The web workload: a small HTTP server that is ready once it answers GET /.
'use strict';
const http = require('http');
const crypto = require('crypto');
const zlib = require('zlib');
const url = require('url');

const port = Number(process.env.PORT || 18473);
const started = Date.now();

const server = http.createServer((req, res) => {
	const { pathname, query } = url.parse(req.url, true);
	if (pathname === '/') {
		const body = JSON.stringify({ ok: true, uptimeMs: Date.now() - started });
		res.writeHead(200, { 'content-type': 'application/json' });
		res.end(body + '\n');
		return;
	}
	if (pathname === '/hash') {
		const h = crypto.createHash('sha256').update(String(query.s || '')).digest('hex');
		res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
		res.end(zlib.gzipSync(h + '\n'));
		return;
	}
	res.writeHead(404, { 'content-type': 'text/plain' });
	res.end('not found\n');
});

server.listen(port, '127.0.0.1', () => {
	console.log(`listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
