/**
 * Which ciphers the agent's leg offers. The client's order decides there: OpenSSH lists
 * chacha20-poly1305 first, then aes-ctr, then aes-gcm. ssh2 without its optional native addon
 * (not built here) runs chacha20-poly1305 with Poly1305 in WebAssembly and three OpenSSL ciphers
 * per packet: in a CPU profile of a 256 MB download the WebAssembly alone was ~0.36 ms per MB, a
 * tenth of the gateway's CPU. AES-CTR (one cipher per direction, an HMAC per packet) and AES-GCM
 * (one cipher per packet) run in OpenSSL; between them `npm run bench:ssh-cpu` sees no difference
 * beyond its noise. The upstream leg keeps ssh2's own order (the gateway is the client there,
 * so aes128-gcm).
 */
import type { CipherAlgorithm } from 'ssh2';
import { ssh2CryptoModule } from './ssh2-padding';

function nativeChaChaAvailable(): boolean {
  try {
    return (ssh2CryptoModule() as { bindingAvailable?: boolean }).bindingAvailable === true;
  } catch {
    return false;
  }
}

const OPENSSL_CIPHERS: CipherAlgorithm[] = ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

/**
 * What the agent's leg offers. The client's order decides there, so an expensive cipher is left
 * out rather than put last: a client limited to chacha20-poly1305 alone is refused at key exchange.
 */
export const AGENT_LEG_CIPHERS: CipherAlgorithm[] = nativeChaChaAvailable() ? [...OPENSSL_CIPHERS, 'chacha20-poly1305@openssh.com'] : OPENSSL_CIPHERS;
