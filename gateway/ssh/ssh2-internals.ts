/**
 * Two things OpenSSH clients show to their user that ssh2's public API cannot send: a
 * USERAUTH_BANNER during authentication (to say *why* a login is refused) and a description on
 * a refused channel open (to say why a port forward is refused). Both reach into ssh2's
 * Protocol object; every access is guarded, so a changed ssh2 internals degrades to a silent
 * refusal, never to a crash.
 */
import type { Connection } from 'ssh2';

interface PacketWriter {
  allocStart: number;
  alloc(n: number): Buffer;
  finalize(packet: Buffer): Buffer;
}

interface ProtocolLike {
  _packetRW?: { write?: PacketWriter };
  _cipher?: { encrypt(packet: Buffer): void };
  _kexinit?: unknown;
  channelOpenFail?: (recipient: number, reason: number, desc?: string) => void;
}

const USERAUTH_BANNER = 53;
const ADMINISTRATIVELY_PROHIBITED = 1;

function protocolOf(obj: unknown): ProtocolLike | null {
  const proto = (obj as { _protocol?: unknown } | null)?._protocol;
  return proto && typeof proto === 'object' ? (proto as ProtocolLike) : null;
}

/** Sends a banner line during authentication; OpenSSH prints it on the client's stderr. */
export function sendAuthBanner(authContextOrConnection: unknown, message: string): boolean {
  const proto = protocolOf(authContextOrConnection);
  const w = proto?._packetRW?.write;
  if (!proto || !w || !proto._cipher || proto._kexinit !== undefined) return false;
  try {
    const text = message.endsWith('\r\n') ? message : `${message}\r\n`;
    const len = Buffer.byteLength(text);
    const p = w.allocStart;
    const packet = w.alloc(1 + 4 + len + 4);
    packet[p] = USERAUTH_BANNER;
    packet.writeUInt32BE(len, p + 1);
    packet.write(text, p + 5, len, 'utf8');
    packet.writeUInt32BE(0, p + 5 + len);
    proto._cipher.encrypt(w.finalize(packet));
    return true;
  } catch {
    return false;
  }
}

/**
 * Lets `deny(message)` refuse the channel open being handled with "administratively prohibited"
 * and a description the client prints. Call `install` once per connection.
 */
export class OpenFailDescriber {
  private next: string | null = null;

  install(conn: Connection): void {
    const proto = protocolOf(conn);
    const original = proto?.channelOpenFail;
    if (!proto || typeof original !== 'function') return;
    proto.channelOpenFail = (recipient: number, reason: number, desc?: string): void => {
      const message = this.next;
      this.next = null;
      if (message !== null) original.call(proto, recipient, ADMINISTRATIVELY_PROHIBITED, message);
      else original.call(proto, recipient, reason, desc);
    };
  }

  /** Rejects via ssh2's `reject`, with this message as the description. */
  deny(reject: () => void, message: string): void {
    this.next = message;
    try {
      reject();
    } finally {
      this.next = null;
    }
  }
}

interface CorkableSocket {
  write(...args: unknown[]): boolean;
  cork(): void;
  uncork(): void;
  destroyed: boolean;
}

/**
 * ssh2 writes each SSH packet to its socket in three pieces (length, body, MAC) and, with
 * TCP_NODELAY, each piece went out as its own TCP segment and syscall: on loopback those writes
 * were the gateway's largest CPU cost. Corking the socket until the current tick's work is done
 * sends every packet that tick produced in one writev, without delaying any of them.
 * `owner` is an ssh2 Client or server Connection; anything else is left alone.
 */
export function coalesceWrites(owner: unknown): (() => void) | null {
  const sock = (owner as { _sock?: unknown } | null)?._sock as Partial<CorkableSocket> | undefined;
  if (!sock || typeof sock.write !== 'function' || typeof sock.cork !== 'function' || typeof sock.uncork !== 'function') return null;
  const s = sock as CorkableSocket;
  const write = s.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    if (!s.destroyed) s.uncork();
  };
  s.write = function coalescedWrite(this: CorkableSocket, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      s.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  };
  // Stops coalescing: what was written goes out now, and each later packet in its own write.
  return () => {
    s.write = write;
    if (corked) uncork();
  };
}
