//! Supervision (SPEC §6): the states an actor reports, its heartbeat
//! answer, the messages every actor takes (Ping, SetPaused, Restart), its
//! restart budget, and [`Lifecycle`], through which every actor fails,
//! restarts, resumes, pauses and answers a ping.
//!
//! Every actor runs under an actix `Supervisor` on the system thread. An
//! actor whose work fails hands the error to [`Lifecycle::failed`], the one
//! place that decides what happens from the error's [`Severity`]: retry the
//! work, restart the actor (it calls `ctx.stop()` and the supervisor
//! restarts it in place, spending its budget), or end the process. Past the
//! budget (`supervision.max_restarts` in `supervision.window_ms`) the
//! process exits with status 1 so the service manager restarts it.

use super::engine::Shared;
use super::error::{Exit, Severity, WorkError};
use crate::settings::Settings;
use actix::prelude::*;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tracing::{error, info};

/// What to do about work that failed, decided by [`Lifecycle::failed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Do the work again (the state is reloaded first); no restart.
    Retry,
    /// Stop the actor: its supervisor restarts it.
    Restart,
    /// The process is ending: do nothing more.
    Exit,
}

/// The states of SPEC §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Degraded,
    Restarting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Degraded => "degraded",
            State::Restarting => "restarting",
        }
    }
}

/// One actor's answer to a heartbeat ping.
#[derive(Clone, Debug)]
pub struct Health {
    pub state: State,
    pub restarts: u64,
    /// Role-specific fields (SPEC §6: ticks, last_tick_ms, dirty; ingested,
    /// dead_lettered, lag; …).
    pub fields: Map<String, Value>,
}

/// A heartbeat ping. `None` means the actor is wedged (its work in hand has
/// run longer than `supervision.wedged_ms`): no heartbeat is written for it.
#[derive(Message)]
#[rtype(result = "Option<Health>")]
pub struct Ping;

/// Pause (true) or resume (false) the actor's work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

/// Restart through the supervisor (the `restart` control action).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

/// Whether an actor's work in hand has been running too long to answer.
pub fn wedged(busy_since: Option<Instant>, settings: &Settings) -> bool {
    busy_since.is_some_and(|t| t.elapsed() > Duration::from_millis(settings.supervision.wedged_ms))
}

/// Ends the process when `e` is fatal (the lease is gone); true if it was.
pub fn exit_if_fatal(shared: &Shared, e: &WorkError) -> bool {
    let fatal = e.severity() == Severity::Fatal;
    if fatal {
        shared.exit(Exit::LostLease);
    }
    fatal
}

/// One actor's restart budget: at most `max` restarts within `window`.
#[derive(Debug)]
pub struct Budget {
    times: VecDeque<Instant>,
    max: usize,
    window: Duration,
}

impl Budget {
    pub fn new(settings: &Settings) -> Budget {
        Budget {
            times: VecDeque::new(),
            max: settings.supervision.max_restarts as usize,
            window: Duration::from_millis(settings.supervision.window_ms),
        }
    }

    /// Records a restart now; false when that exceeds the budget.
    pub fn spend(&mut self) -> bool {
        let now = Instant::now();
        self.times.retain(|t| now.duration_since(*t) < self.window);
        self.times.push_back(now);
        self.times.len() <= self.max
    }

    pub fn spent(&self) -> usize {
        self.times.len()
    }
}

/// An actor's supervision state: what its heartbeat reports (state,
/// restarts), the operator's pause, and its restart budget. Every actor
/// keeps one and goes through it when it fails, restarts, resumes, pauses
/// or answers a ping.
#[derive(Debug)]
pub struct Lifecycle {
    pub state: State,
    /// Paused by an operator; survives a restart.
    pub paused: bool,
    pub restarts: u64,
    budget: Budget,
    /// The stop in progress is a failure (spends budget), not an
    /// operator's `restart`.
    failed: bool,
}

impl Lifecycle {
    pub fn new(settings: &Settings) -> Lifecycle {
        Lifecycle {
            state: State::Running,
            paused: false,
            restarts: 0,
            budget: Budget::new(settings),
            failed: false,
        }
    }

    /// The actor's work failed with `e`: decides, from its severity, whether
    /// the work is retried, the actor restarted (it is degraded until the
    /// restart, which spends budget) or the process ended. The caller logs
    /// and then acts on the answer (`ctx.stop()` for a restart).
    pub fn failed(&mut self, shared: &Shared, e: &WorkError) -> Disposition {
        if exit_if_fatal(shared, e) {
            return Disposition::Exit;
        }
        match e.severity() {
            Severity::Transient => Disposition::Retry,
            Severity::Restart | Severity::Fatal => {
                self.failed = true;
                self.state = State::Degraded;
                Disposition::Restart
            }
        }
    }

    /// Called from `Supervised::restarting`: counts the restart, and when it
    /// follows a failure spends budget — past the budget the process exits
    /// so the service manager restarts the daemon.
    pub fn restarting(&mut self, shared: &Shared, worker: &'static str) {
        self.state = State::Restarting;
        self.restarts += 1;
        shared.metrics().restarted(worker);
        let budget = &mut self.budget;
        if std::mem::take(&mut self.failed) && !budget.spend() {
            error!(
                worker,
                restarts = budget.spent(),
                "restart budget spent; exiting so the service manager restarts the daemon"
            );
            shared.exit(Exit::Budget {
                worker,
                restarts: budget.spent(),
            });
        } else {
            info!(worker, restarts = self.restarts, "restarting");
        }
    }

    /// Working again after a restart (or a failure): running, or paused if
    /// an operator paused it.
    pub fn resume(&mut self) {
        if matches!(self.state, State::Restarting | State::Degraded) {
            self.state = if self.paused {
                State::Paused
            } else {
                State::Running
            };
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.state = if paused {
            State::Paused
        } else {
            State::Running
        };
    }

    /// The heartbeat answer, with role-specific fields.
    pub fn health(&self, fields: &[(&str, Value)]) -> Health {
        Health {
            state: self.state,
            restarts: self.restarts,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}
