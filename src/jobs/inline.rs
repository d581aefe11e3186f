//! Jobs settled in the write that claims them: a Moment's dispatch to a host that needs no
//! asking (momentline's own page).

use super::dispatch_moment;
use crate::db::jobs::{self, Claimed};
use crate::db::{params, Conn, DbError};
use crate::domain::JobKind;
use crate::events::Events;
use crate::telemetry::RequestId;

/// Jobs with nothing to wait for, settled in the write that claims them: the embedded
/// dispatch. Each is settled under a savepoint of its own; one that fails is left to the
/// ordinary path, which retries and reports it.
pub(super) struct Inline {
    /// Only a host that needs no asking has its dispatches settled at once.
    pub(super) host: crate::host::Host,
    pub(super) sender: &'static str,
    pub(super) events: Events,
}

impl Inline {
    /// Settles what it can of `claimed`; answers the rest, and how many it settled.
    pub(super) fn settle(
        &self,
        tx: &Conn,
        claimed: Vec<Claimed>,
    ) -> Result<(Vec<Claimed>, usize), DbError> {
        let mut rest = Vec::with_capacity(claimed.len());
        let mut settled = 0;
        for job in claimed {
            if job.kind != JobKind::DispatchMoment || !self.host.needs_no_asking() {
                rest.push(job);
                continue;
            }
            tx.execute("SAVEPOINT inline", params![])?;
            // The texts it queues carry on the request that queued it.
            let done = RequestId::on_thread(job.request.clone(), || {
                dispatch_moment::settle_at_claim(tx, &job, &self.host, self.sender, self.events)
            })
            .and_then(|done| {
                if done {
                    jobs::finish(tx, job.id)?;
                }
                Ok(done)
            });
            if !matches!(done, Ok(true)) {
                tx.execute("ROLLBACK TO inline", params![])?;
            }
            tx.execute("RELEASE inline", params![])?;
            match done {
                Ok(true) => settled += 1,
                Ok(false) => rest.push(job),
                // In a batch, another write holds what this needs: the whole claim runs again
                // alone, where it may wait.
                Err(DbError::WouldWait) => return Err(DbError::WouldWait),
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "dispatch could not be settled at once");
                    rest.push(job);
                }
            }
        }
        Ok((rest, settled))
    }
}
