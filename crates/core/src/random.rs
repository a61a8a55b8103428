/// The randomness source did not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A cryptographically secure random number generator.
///
/// Everything in plinth that needs randomness takes one of these as a parameter, so that
/// tests can see exactly where randomness enters. `plinth-crypto` provides the system
/// implementation.
pub trait SecureRandom: Send + Sync {
    /// Fills `dest` with random bytes.
    ///
    /// # Errors
    /// [`RandomError`] when the generator fails; callers fail closed.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;
}
