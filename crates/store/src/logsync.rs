//! Group commit for an SQLite file (docs/ARCHITECTURE.md, "Storage"). SQLite commits into its
//! write-ahead log without waiting for the disk (`synchronous = NORMAL`), and a write is
//! acknowledged only once a sync of the log that began after its commit has finished: one
//! `fdatasync` covers every commit made before it started, so writers that arrive together share
//! it instead of queueing for one sync each behind the single writer connection.
//!
//! What survives a power loss is what `synchronous = FULL` kept: every acknowledged write, and
//! whatever it read (the log is appended in order, so a sync covers every earlier commit too).
//! SQLite itself still syncs the log before a checkpoint and the database file after it.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tessera_core::error::{Error, Result};
use tokio::sync::watch;

/// Waits for the disk on behalf of the writers of one SQLite file; a thread of its own does the
/// syncing and stops when this is dropped.
pub struct LogSync {
    shared: Arc<Shared>,
}

struct Shared {
    asked: Mutex<Asked>,
    wake: Condvar,
    done: watch::Sender<Synced>,
}

#[derive(Default)]
struct Asked {
    /// The last ticket handed out: a ticket is taken after its commit returned.
    ticket: u64,
    stop: bool,
}

#[derive(Clone, Default)]
struct Synced {
    /// Every ticket up to this one is on disk.
    through: u64,
    /// A sync failed: what is in the log can no longer be trusted to reach the disk, so every
    /// write from then on is refused until the server restarts (as PostgreSQL does).
    failure: Option<Arc<str>>,
}

impl Shared {
    fn asked(&self) -> std::sync::MutexGuard<'_, Asked> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The newest ticket once one is newer than `synced`; `None` when the log sync stops.
    fn next_target(&self, synced: u64) -> Option<u64> {
        let mut asked = self.asked();
        while !asked.stop && asked.ticket <= synced {
            asked = self
                .wake
                .wait(asked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        (!asked.stop).then_some(asked.ticket)
    }

    /// The syncing thread: every ticket up to `target` was taken after its commit returned, so a
    /// sync begun once `target` is read covers them all.
    fn run(&self, sync: &mut dyn FnMut() -> io::Result<()>) {
        let mut synced = 0;
        while let Some(target) = self.next_target(synced) {
            if let Err(e) = sync() {
                tracing::error!(
                    error = %e,
                    "syncing the SQLite log to disk failed; writes are refused until the server \
                     restarts"
                );
                self.done
                    .send_modify(|s| s.failure = Some(e.to_string().into()));
                return;
            }
            synced = target;
            self.done.send_modify(|s| s.through = target);
        }
    }
}

impl LogSync {
    /// Syncs `<db>-wal` (and, the first time it sees a new log file, the folder that holds it,
    /// so the file itself survives too).
    pub fn for_database(db: &Path) -> io::Result<LogSync> {
        let mut log = WalFile::of(db);
        LogSync::start(move || log.sync())
    }

    /// Runs `sync` on a thread of its own whenever a writer waits for it.
    fn start(mut sync: impl FnMut() -> io::Result<()> + Send + 'static) -> io::Result<LogSync> {
        let shared = Arc::new(Shared {
            asked: Mutex::new(Asked::default()),
            wake: Condvar::new(),
            done: watch::Sender::new(Synced::default()),
        });
        let syncer = shared.clone();
        std::thread::Builder::new()
            .name("tessera-log-sync".into())
            .spawn(move || syncer.run(&mut sync))?;
        Ok(LogSync { shared })
    }

    /// How many acknowledgements have been synced so far.
    pub fn synced(&self) -> u64 {
        self.shared.done.borrow().through
    }

    /// Returns once every commit that returned before this call is on disk.
    pub async fn durable(&self) -> Result<()> {
        let ticket = {
            let mut asked = self.shared.asked();
            asked.ticket += 1;
            asked.ticket
        };
        self.shared.wake.notify_one();
        let mut done = self.shared.done.subscribe();
        let synced = done
            .wait_for(|s| s.through >= ticket || s.failure.is_some())
            .await
            .map_err(|_| Error::Store("the SQLite log syncer stopped".into()))?;
        match &synced.failure {
            Some(failure) if synced.through < ticket => Err(Error::Store(format!(
                "the write was not acknowledged: syncing the SQLite log to disk failed ({failure})"
            ))),
            _ => Ok(()),
        }
    }
}

impl Drop for LogSync {
    fn drop(&mut self) {
        self.shared.asked().stop = true;
        self.shared.wake.notify_one();
    }
}

/// The log file of one database.
struct WalFile {
    wal: PathBuf,
    folder: PathBuf,
    /// The log file last synced, whose name is known to be on disk. Holding it open keeps its
    /// inode number from being reused by a later log file.
    known: Option<(std::fs::File, FileId)>,
}

#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = ();

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> FileId {}

impl WalFile {
    fn of(db: &Path) -> WalFile {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalFile {
            wal: wal.into(),
            folder: match db.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            },
            known: None,
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        // No log: the last connection closed, after SQLite checkpointed it into the database
        // file and synced that.
        let id = match std::fs::metadata(&self.wal) {
            Ok(meta) => file_id(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some((file, known)) = &self.known
            && *known == id
        {
            return file.sync_data();
        }
        let file = match OpenOptions::new().write(true).open(&self.wal) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.sync_data()?;
        // A new log file's name lives in its folder: sync that once per file, as SQLite does.
        #[cfg(unix)]
        std::fs::File::open(&self.folder)?.sync_all()?;
        let id = file_id(&file.metadata()?);
        self.known = Some((file, id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;

    /// A writer waiting for the disk on a task of its own.
    fn writer(log: &Arc<LogSync>) -> tokio::task::JoinHandle<Result<()>> {
        let log = log.clone();
        tokio::spawn(async move { log.durable().await })
    }

    /// A sync that reports when it begins and waits to be let go.
    fn gated() -> (
        LogSync,
        mpsc::Receiver<()>,
        mpsc::SyncSender<io::Result<()>>,
    ) {
        let (began, began_rx) = mpsc::sync_channel(16);
        let (release, release_rx) = mpsc::sync_channel::<io::Result<()>>(16);
        let log = LogSync::start(move || {
            let _ = began.send(());
            release_rx.recv().unwrap_or(Ok(()))
        })
        .unwrap();
        (log, began_rx, release)
    }

    #[tokio::test]
    async fn a_write_waits_for_a_sync_that_began_after_its_commit() {
        // Each writer "commits" (counts itself) and then waits; each sync notes how many commits
        // it began after. A writer must never come back before a sync that covers it.
        let committed = Arc::new(AtomicU64::new(0));
        let covered = Arc::new(AtomicU64::new(0));
        let log = {
            let (committed, covered) = (committed.clone(), covered.clone());
            Arc::new(
                LogSync::start(move || {
                    let seen = committed.load(Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    covered.fetch_max(seen, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap(),
            )
        };
        let mut writers = Vec::new();
        for _ in 0..64 {
            let (log, committed, covered) = (log.clone(), committed.clone(), covered.clone());
            writers.push(tokio::spawn(async move {
                let mine = committed.fetch_add(1, Ordering::SeqCst) + 1;
                log.durable().await.unwrap();
                assert!(
                    covered.load(Ordering::SeqCst) >= mine,
                    "acknowledged commit {mine} before a sync covered it"
                );
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
    }

    // The test blocks on the gate's channel, so the writers need worker threads of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_that_wait_together_share_one_sync() {
        let (log, began, release) = gated();
        let log = Arc::new(log);
        let first = writer(&log);
        began.recv().unwrap();
        // While the first sync runs, 50 more writers arrive.
        let others: Vec<_> = (0..50).map(|_| writer(&log)).collect();
        while log.shared.asked.lock().unwrap().ticket < 51 {
            tokio::task::yield_now().await;
        }
        release.send(Ok(())).unwrap();
        first.await.unwrap().unwrap();
        // One more sync covers all fifty.
        began.recv().unwrap();
        release.send(Ok(())).unwrap();
        for o in others {
            o.await.unwrap().unwrap();
        }
        assert!(
            began.try_recv().is_err(),
            "a third sync ran for writers the second already covered"
        );
    }

    // The test blocks on the gate's channel, so the writers need worker threads of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_refuses_the_write_and_every_later_one() {
        let (log, began, release) = gated();
        let log = Arc::new(log);
        let waiting = writer(&log);
        began.recv().unwrap();
        release
            .send(Err(io::Error::other("the disk went away")))
            .unwrap();
        let refused = waiting.await.unwrap().unwrap_err().to_string();
        assert!(refused.contains("the disk went away"), "{refused}");
        let later = log.durable().await.unwrap_err().to_string();
        assert!(later.contains("not acknowledged"), "{later}");
    }

    #[cfg(unix)]
    #[test]
    fn the_log_beside_the_database_is_the_file_synced() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut log = WalFile::of(&dir.path().join("t.db"));
        // Before SQLite made a log there is nothing to sync, and that is not an error.
        log.sync().unwrap();
        assert!(log.known.is_none());
        let wal = dir.path().join("t.db-wal");
        let synced = |log: &WalFile| log.known.as_ref().map(|(_, id)| *id);
        std::fs::write(&wal, b"frames").unwrap();
        log.sync().unwrap();
        let first = std::fs::metadata(&wal).unwrap();
        assert_eq!(synced(&log), Some((first.dev(), first.ino())));
        // A new log file (SQLite deletes it when the last connection closes) is noticed.
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"frames again").unwrap();
        log.sync().unwrap();
        let second = std::fs::metadata(&wal).unwrap();
        assert_ne!(first.ino(), second.ino());
        assert_eq!(synced(&log), Some((second.dev(), second.ino())));
    }
}
