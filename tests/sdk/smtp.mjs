// A minimal SMTP server on loopback that accepts every message (no TLS, no auth), so mail
// flows can be tested against both servers.
import net from 'node:net';

function decodeQuotedPrintable(s) {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

export async function startSmtpSink() {
  const mails = [];
  const waiters = [];
  const server = net.createServer((sock) => {
    let buf = '';
    let inData = false;
    let data = '';
    let to = [];
    sock.write('220 sink ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i + 1);
        buf = buf.slice(i + 1);
        if (inData) {
          if (line === '.\r\n' || line === '.\n') {
            inData = false;
            // Base64 parts are decoded too, so tests can search the text.
            let text = decodeQuotedPrintable(data);
            for (const m of data.matchAll(/Content-Transfer-Encoding: base64\r?\n(?:[^\r\n]+\r?\n)*\r?\n([A-Za-z0-9+/=\r\n]+)/gi)) {
              text += '\n' + Buffer.from(m[1].replace(/\s+/g, ''), 'base64').toString('utf8');
            }
            const mail = { to, text };
            to = [];
            data = '';
            const w = waiters.findIndex((x) => mail.to.some((t) => t.toLowerCase() === x.to));
            if (w >= 0) waiters.splice(w, 1)[0].resolve(mail); else mails.push(mail);
            sock.write('250 queued\r\n');
          } else {
            data += line;
          }
          continue;
        }
        const upper = line.toUpperCase();
        if (upper.startsWith('EHLO')) sock.write('250-sink\r\n250 8BITMIME\r\n');
        else if (upper.startsWith('RCPT TO:')) { to.push(line.slice(8).trim().replace(/^<|>$/g, '')); sock.write('250 OK\r\n'); }
        else if (upper.startsWith('DATA')) { inData = true; sock.write('354 go ahead\r\n'); }
        else if (upper.startsWith('QUIT')) { sock.end('221 bye\r\n'); }
        else sock.write('250 OK\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    /** Resolves with the next mail to `to` (10 s at most). */
    waitFor(addr) {
      const a = addr.toLowerCase();
      const i = mails.findIndex((m) => m.to.some((t) => t.toLowerCase() === a));
      if (i >= 0) return Promise.resolve(mails.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no mail to ${addr} within 10s`)), 10000);
        waiters.push({ to: a, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      });
    },
    close: () => server.close(),
  };
}

export function linkToken(mail, page) {
  const m = mail.text.match(new RegExp(`/auth/${page}/([A-Za-z0-9._-]+)`));
  if (!m) throw new Error(`no ${page} link in mail: ${mail.text}`);
  return m[1];
}

export function otpCode(mail) {
  const m = mail.text.match(/<strong>(\d+)<\/strong>/);
  if (!m) throw new Error(`no OTP in mail: ${mail.text}`);
  return m[1];
}
