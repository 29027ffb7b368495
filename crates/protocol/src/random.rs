//! Unguessable values: codes, tokens, request URIs, `jti`s (F2SP-5.4.1-4: at least 128
//! bits of entropy; we use 256).

use crate::jose::b64url;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// 32 random bytes, base64url (43 characters).
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    // SystemRandom only fails when the OS has no entropy source; nothing can go on then.
    if SystemRandom::new().fill(&mut buf).is_err() {
        panic!("the operating system random number generator failed");
    }
    b64url(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F2SP-5.4.1-4: 256 bits, distinct values.
    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
