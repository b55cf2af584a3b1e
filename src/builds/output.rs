//! A build's output: said to the pusher through the hook, kept in the build's log, followed by `output_stream_url`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::hook::HookMessage;
use super::Builds;
use crate::model::AppName;

/// A build's output on disk, `<state-dir>/build-logs/<id>.log`, and who
/// follows it: the build's `output_stream_url` streams it.
#[derive(Debug)]
pub(super) struct BuildLog {
    file: Mutex<std::fs::File>,
    /// Bytes written so far; the sender is dropped when the build ends.
    written: tokio::sync::watch::Sender<u64>,
}

impl BuildLog {
    fn append(&self, text: &str) {
        use std::io::Write;
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.write_all(text.as_bytes()).is_ok() {
            self.written.send_modify(|n| *n += text.len() as u64);
        }
    }
}

/// Sends build output to the pusher, to the build's log and, line by
/// line, to the journal.
#[derive(Debug, Clone)]
pub(super) struct Output {
    tx: mpsc::Sender<HookMessage>,
    app: AppName,
    log: Option<Arc<BuildLog>>,
}

impl Output {
    /// Output of `app`'s push to the hook behind `tx`, kept nowhere else.
    pub(super) fn new(tx: mpsc::Sender<HookMessage>, app: AppName) -> Self {
        Self { tx, app, log: None }
    }

    /// The same output, also kept in `log`.
    pub(super) fn with_log(&self, log: Option<Arc<BuildLog>>) -> Self {
        Self {
            log,
            ..self.clone()
        }
    }

    /// Says `text` to the pusher, the log and the journal.
    pub(super) async fn say(&self, text: impl Into<String>) {
        let text = text.into();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(target: "corral::build", app = %self.app, "{line}");
        }
        if let Some(log) = &self.log {
            log.append(&text);
        }
        // A pusher that went away does not stop the build.
        let _ = self.tx.send(HookMessage::Out(text)).await;
    }
}

impl Builds {
    /// Where build `id`'s output is kept.
    pub(crate) fn log_path(&self, id: Uuid) -> PathBuf {
        self.config
            .state_dir
            .join("build-logs")
            .join(format!("{id}.log"))
    }

    /// Opens build `id`'s log; followers wait for it to grow until
    /// [`Builds::end_log`].
    pub(super) fn open_log(&self, id: Uuid) -> std::io::Result<Arc<BuildLog>> {
        let path = self.log_path(id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let (written, rx) = tokio::sync::watch::channel(0u64);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, rx);
        Ok(Arc::new(BuildLog {
            file: Mutex::new(file),
            written,
        }))
    }

    /// Marks build `id`'s log finished: followers from now on read it to
    /// its end and stop (those already following stop when the log is
    /// dropped).
    pub(super) fn end_log(&self, id: Uuid) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Build `id`'s output from the start, following it while the build
    /// runs: chunks of text, ending when the build does. `None` if there
    /// is no such output.
    pub(crate) async fn follow_output(
        &self,
        id: Uuid,
    ) -> Option<impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static> {
        let file = tokio::fs::File::open(self.log_path(id)).await.ok()?;
        let growing = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        Some(futures_util::stream::unfold(
            (file, growing),
            |(mut file, mut growing)| async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match file.read(&mut buf).await {
                        Ok(n) if n > 0 => {
                            buf.truncate(n);
                            return Some((bytes::Bytes::from(buf), (file, growing)));
                        }
                        Ok(_) => {}
                        Err(_) => return None,
                    }
                    // At the end of what is written: wait for more, or
                    // for the build's end (its sender is dropped).
                    let rx = growing.as_mut()?;
                    if rx.changed().await.is_err() {
                        growing = None;
                    }
                }
            },
        ))
    }
}
