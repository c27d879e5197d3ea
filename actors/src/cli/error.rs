//! The command line's error type: every verb returns it, and `main.rs`
//! turns it into the exit status (2 for bad usage or configuration, 1 for a
//! runtime failure). It imports nothing of the verbs, so they and the
//! dispatch in `mod.rs` depend on it without a circle.

/// An error with the exit status it deserves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Runtime failure: exit 1.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}
