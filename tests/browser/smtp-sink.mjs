// A tiny SMTP server for the browser suite: accepts every message on 127.0.0.1 and writes each
// to <dir>/NNNN.eml, its envelope recipients first as an X-Envelope-To header. Prints its port.
// Just enough SMTP (RFC 5321) for the server's lettre client without TLS or login.
//
//   node tests/browser/smtp-sink.mjs <dir>

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node smtp-sink.mjs <dir>');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
let count = 0;

const server = createServer((socket) => {
  socket.setEncoding('utf8');
  let buffer = '';
  /** @type {string[] | null} */
  let data = null;
  let to = [];
  const reply = (line) => socket.write(`${line}\r\n`);
  reply('220 sink ESMTP');
  socket.on('data', (chunk) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (data) {
        if (line === '.') {
          const name = join(dir, `${String(++count).padStart(4, '0')}.eml`);
          writeFileSync(`${name}.part`, [`X-Envelope-To: ${to.join(',')}`, ...data].join('\r\n'));
          renameSync(`${name}.part`, name);
          data = null;
          to = [];
          reply('250 OK: queued');
        } else {
          data.push(line.startsWith('..') ? line.slice(1) : line);
        }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') {
        reply('250-sink');
        reply('250 8BITMIME');
      } else if (verb === 'HELO' || verb === 'MAIL' || verb === 'NOOP') reply('250 OK');
      else if (verb === 'RSET') {
        to = [];
        reply('250 OK');
      } else if (verb === 'RCPT') {
        to.push(line.replace(/^RCPT TO:\s*<?([^>\s]*)>?.*$/i, '$1'));
        reply('250 OK');
      } else if (verb === 'DATA') {
        data = [];
        reply('354 End data with <CR><LF>.<CR><LF>');
      } else if (verb === 'QUIT') socket.end('221 Bye\r\n');
      else reply('502 Command not implemented');
    }
  });
  socket.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
