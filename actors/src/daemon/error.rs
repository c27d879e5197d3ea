//! Why an actor's work failed ([`WorkError`]), what that failure is
//! ([`Severity`]): transient (the work is retried), a reason to restart the
//! actor, or fatal for the process — and why the process ends ([`Exit`]).
//! Supervision (`supervision.rs`) turns a
//! severity into retry, restart or exit; no actor decides that itself.

/// Why an actor's work failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
    #[error("loading the repository: {0}")]
    Load(#[from] crate::repository::LoadError),
    #[error("fenced: this instance no longer holds the leader lease")]
    Fenced,
    #[error("the publisher could not commit: {0}")]
    Commit(String),
    #[error("clustering panicked on its thread: {0}")]
    Panic(String),
    #[error("clustering failed: {0}")]
    Cluster(String),
    #[error("injected fault ({0})")]
    Injected(&'static str),
    #[error("{0} is not running")]
    Mailbox(&'static str),
    /// An earlier commit of the same in-memory state failed, so this one
    /// was refused: the state is reloaded before it is used again.
    #[error(
        "refused: an earlier commit of this state failed; it is reloaded before the next pass"
    )]
    Stale,
}

/// What a failure means for the actor whose work failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The Publisher failed this commit or an earlier one of the same state
    /// (and restarts itself): the state is reloaded and the work done again,
    /// with no restart of the actor that asked.
    Transient,
    /// A lost connection, a failed load, a panicking or failing pass, an
    /// injected fault, a stopped actor: restart the actor through its
    /// supervisor (spending its budget).
    Restart,
    /// The lease is gone: this process must stop leading at once.
    Fatal,
}

impl WorkError {
    pub fn severity(&self) -> Severity {
        match self {
            WorkError::Stale | WorkError::Commit(_) => Severity::Transient,
            WorkError::Fenced => Severity::Fatal,
            WorkError::Redis(_)
            | WorkError::Pool(_)
            | WorkError::Load(_)
            | WorkError::Panic(_)
            | WorkError::Cluster(_)
            | WorkError::Injected(_)
            | WorkError::Mailbox(_) => Severity::Restart,
        }
    }
}

/// Why the process should end.
#[derive(Debug)]
pub enum Exit {
    /// Graceful stop (the `stop` command).
    Stop,
    /// The lease went to another instance.
    LostLease,
    /// An actor spent its restart budget.
    Budget {
        worker: &'static str,
        restarts: usize,
    },
}

impl From<bb8::RunError<redis::RedisError>> for WorkError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => WorkError::Redis(e),
            bb8::RunError::TimedOut => {
                WorkError::Pool("timed out waiting for a connection (is Redis up?)".into())
            }
        }
    }
}

/// A blocking task that did not finish: its panic's text as
/// [`WorkError::Panic`].
pub fn panicked(e: tokio::task::JoinError) -> WorkError {
    WorkError::Panic(panic_text(e))
}

/// Text of a panic payload.
pub fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_for_supervision() {
        assert_eq!(WorkError::Stale.severity(), Severity::Transient);
        assert_eq!(
            WorkError::Commit("x".into()).severity(),
            Severity::Transient
        );
        assert_eq!(WorkError::Fenced.severity(), Severity::Fatal);
        for e in [
            WorkError::Pool("x".into()),
            WorkError::Panic("x".into()),
            WorkError::Cluster("x".into()),
            WorkError::Injected("x"),
            WorkError::Mailbox("x"),
            WorkError::Redis(redis::RedisError::from((redis::ErrorKind::Io, "down"))),
        ] {
            assert_eq!(e.severity(), Severity::Restart, "{e}");
        }
    }
}
