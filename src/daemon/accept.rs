//! Group commit: webhook handlers hand their deliveries to one writer task, which commits
//! every delivery waiting at that moment in one transaction and answers each handler. Under
//! load many deliveries share a commit (and its fsync); alone, a delivery is committed at
//! once. A handler answers 202 only after its delivery's commit.

use crate::event::Event;
use crate::store::{Accepted, Delivery, Store, StoreError};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

/// Deliveries committed together at most.
const GROUP: usize = 128;

struct Job {
    source: String,
    key: String,
    body_hash: String,
    events: Vec<Event>,
    received_at: DateTime<Utc>,
    reply: oneshot::Sender<Result<Accepted, String>>,
}

/// The handle the webhook handlers use.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer task.
    pub fn start(store: Store) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * GROUP);
        (Committer { tx }, tokio::spawn(write(store, rx)))
    }

    /// Commits one delivery (its key, its body's SHA-256 in hex); returns when it is durable.
    pub async fn accept(
        &self,
        source: &str,
        key: String,
        body_hash: String,
        events: Vec<Event>,
        received_at: DateTime<Utc>,
    ) -> Result<Accepted, String> {
        let (reply, answer) = oneshot::channel();
        let job = Job { source: source.to_string(), key, body_hash, events, received_at, reply };
        self.tx.send(job).await.map_err(|_| "the store writer has stopped".to_string())?;
        answer.await.map_err(|_| "the store writer has stopped".to_string())?
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut jobs, GROUP).await > 0 {
        let result: Result<Vec<Accepted>, StoreError> = {
            let deliveries: Vec<Delivery<'_>> = jobs
                .iter()
                .map(|j| Delivery {
                    source: &j.source,
                    key: &j.key,
                    body_hash: Some(&j.body_hash),
                    events: &j.events,
                    received_at: j.received_at,
                })
                .collect();
            store.accept_all(&deliveries).await
        };
        match result {
            Ok(answers) => {
                for (job, answer) in jobs.drain(..).zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
