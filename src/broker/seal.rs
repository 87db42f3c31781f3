//! What travels between instances is sealed: encrypted and authenticated (XChaCha20-Poly1305)
//! under a key that every instance derives from its configuration.
//!
//! The channels between instances are open to more than the instances. On Postgres anyone who
//! may connect to the database may `NOTIFY chat_events` and `LISTEN` to it: without a seal, a
//! read-only role could inject a message, a departure or a revocation, and read every private
//! room as it is written. Sealed, what does not open is dropped, and what goes by says nothing.
//! A sealed event can still be sent again as it is; each kind of event is harmless twice (see
//! the listener).
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};

const NONCE: usize = 24;
const TAG: usize = 16;

pub struct Seal {
    cipher: XChaCha20Poly1305,
    /// Bound into every seal: a payload sealed for one channel does not open on another.
    context: &'static [u8],
}

impl Seal {
    pub fn new(key: [u8; 32], context: &'static str) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            context: context.as_bytes(),
        }
    }

    /// Base64 of a random nonce and the ciphertext. The nonce is 192 bits, so random nonces
    /// never repeat in practice, however many events a key seals.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce = rand::random::<[u8; NONCE]>();
        let payload = Payload {
            msg: plaintext,
            aad: self.context,
        };
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .expect("XChaCha20-Poly1305 seals any length we send");
        let mut sealed = Vec::with_capacity(NONCE + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        STANDARD_NO_PAD.encode(sealed)
    }

    /// The plaintext, if `sealed` was sealed with this key for this context.
    pub fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE + TAG {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().ok()?;
        let payload = Payload {
            msg: ciphertext,
            aad: self.context,
        };
        self.cipher.decrypt(&XNonce::from(nonce), payload).ok()
    }

    /// The longest plaintext whose seal fits in `limit` bytes.
    pub const fn max_plaintext(limit: usize) -> usize {
        // Unpadded base64: 4 characters for every 3 bytes (and 2 or 3 for a last 1 or 2).
        limit / 4 * 3 - NONCE - TAG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let seal = Seal::new([7; 32], "events");
        let sealed = seal.seal(b"hello");
        assert_eq!(seal.open(&sealed).as_deref(), Some(&b"hello"[..]));
        // Another key, another context, a flipped character, plain text, nothing at all.
        assert_eq!(Seal::new([8; 32], "events").open(&sealed), None);
        assert_eq!(Seal::new([7; 32], "other").open(&sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(seal.open(std::str::from_utf8(&tampered).unwrap()), None);
        assert_eq!(seal.open(r#"{"k":"x","s":[]}"#), None);
        assert_eq!(seal.open(""), None);
        // The same plaintext twice seals differently.
        assert_ne!(seal.seal(b"hello"), sealed);
    }

    #[test]
    fn the_largest_plaintext_fits_the_limit() {
        let seal = Seal::new([1; 32], "events");
        for limit in [100, 7900, 7901, 7902, 7903] {
            let max = Seal::max_plaintext(limit);
            assert!(seal.seal(&vec![b'x'; max]).len() <= limit, "{limit}");
        }
    }
}
