//! A `.pending` file a person placed by hand for an assisted rotation. It has
//! no version id in the sidecar, so it is named by the file itself:
//! `placed-<mtime ns>-<length>-<inode>`. The name is stable while the file
//! is unchanged — a journal that recorded it still names it after a restart —
//! and changes when someone replaces or rewrites the file, so a key that was
//! verified is never confused with one placed after it.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::UNIX_EPOCH;

const PREFIX: &str = "placed-";

/// Whether `version_id` names a placed file (rekey's own ids are rotation ids).
pub(super) fn is_placed(version_id: &str) -> bool {
    version_id.starts_with(PREFIX)
}

/// The id of the file at `path`; `None` when there is no file.
pub(super) fn id_of(path: &Path) -> io::Result<Option<String>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (nanos, len, inode) = (mtime.as_nanos(), meta.len(), meta.ino());
    Ok(Some(format!("{PREFIX}{nanos}-{len}-{inode}")))
}

/// The file becomes the current secret by a rename, so it keeps its mode:
/// make it 0600 like every file of this store. Only the mode changes, not the
/// mtime, so the id holds. Best effort: a file rekey may not chmod (another
/// owner) is still promoted, with a warning.
pub(super) fn make_private(path: &Path) {
    let private = Permissions::from_mode(0o600);
    if let Err(e) = fs::set_permissions(path, private) {
        tracing::warn!(path = %path.display(), error = %e, "cannot make the placed pending file 0600; it becomes the current secret with its own mode");
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use secrecy::ExposeSecret;

    use super::super::FileStore;
    use crate::policy::{Format, Target};
    use crate::stores::{SecretStore, StoreError};

    fn target(format: Format) -> Target {
        Target {
            store: "local".into(),
            secret_id: "llm".into(),
            lease: crate::names::LeaseKey::aws("test", "llm"),
            format,
            field: (format != Format::Raw).then(|| "API_KEY".to_string()),
            create: false,
        }
    }

    /// The way a person places a file: a temp file renamed over `.pending`.
    fn place(dir: &Path, content: &str) {
        let tmp = dir.join(".llm.pending.tmp");
        fs::write(&tmp, content).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        fs::rename(&tmp, dir.join("llm.pending")).unwrap();
    }

    fn cases() -> [(Format, &'static str, &'static str); 3] {
        [
            (Format::Raw, "sk-old\n", "sk-placed\n"),
            (
                Format::Json,
                r#"{"API_KEY":"sk-old","x":1}"#,
                r#"{"API_KEY":"sk-placed","x":1}"#,
            ),
            (
                Format::Env,
                "A=1\nAPI_KEY=sk-old\n",
                "A=1\nAPI_KEY=sk-placed\n",
            ),
        ]
    }

    #[tokio::test]
    async fn a_placed_pending_file_is_read_with_a_stable_id_and_promoted_by_it() {
        for (format, old, placed) in cases() {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("llm"), old).unwrap();
            place(dir.path(), placed);
            let store = FileStore::new("local", dir.path());
            let t = target(format);

            let pending = store.read_pending(&t).await.unwrap().expect("placed");
            assert_eq!(pending.key.expose_secret(), "sk-placed", "{format:?}");
            assert!(super::is_placed(&pending.version_id));
            let again = store.read_pending(&t).await.unwrap().expect("placed");
            assert_eq!(
                again.version_id, pending.version_id,
                "{format:?}: stable id"
            );

            store.promote(&t, &pending.version_id).await.unwrap();
            let current = store.read_current(&t).await.unwrap().unwrap();
            assert_eq!(current.expose_secret(), "sk-placed");
            let previous = store.read_previous(&t).await.unwrap().unwrap();
            assert_eq!(previous.expose_secret(), "sk-old");
            assert!(store.read_pending(&t).await.unwrap().is_none());
            assert_eq!(fs::read_to_string(dir.path().join("llm")).unwrap(), placed);
            let mode = fs::metadata(dir.path().join("llm"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "{format:?}: the new current file is private"
            );
            store
                .promote(&t, &pending.version_id)
                .await
                .expect("promoting again is a no-op");
        }
    }

    #[tokio::test]
    async fn a_placed_file_replaced_after_it_was_read_is_not_promoted_under_the_old_id() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("llm"), "sk-old").unwrap();
        place(dir.path(), "sk-first-placed");
        let store = FileStore::new("local", dir.path());
        let t = target(Format::Raw);
        let first = store.read_pending(&t).await.unwrap().unwrap().version_id;

        place(dir.path(), "sk-second-placed-longer");
        let second = store.read_pending(&t).await.unwrap().unwrap();
        assert_ne!(second.version_id, first);
        let err = store.promote(&t, &first).await.err();
        assert!(matches!(err, Some(StoreError::Permanent { .. })), "{err:?}");
        let current = store.read_current(&t).await.unwrap().unwrap();
        assert_eq!(current.expose_secret(), "sk-old", "nothing was promoted");
    }

    #[tokio::test]
    async fn a_dropped_placed_file_is_gone_and_current_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("llm"), "sk-old").unwrap();
        place(dir.path(), "sk-placed");
        let store = FileStore::new("local", dir.path());
        let t = target(Format::Raw);
        store.drop_pending(&t).await.unwrap();
        assert!(store.read_pending(&t).await.unwrap().is_none());
        assert!(!dir.path().join("llm.pending").exists());
        let current = store.read_current(&t).await.unwrap().unwrap();
        assert_eq!(current.expose_secret(), "sk-old");
    }

    #[tokio::test]
    async fn a_placed_file_of_the_wrong_shape_is_a_clear_shape_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("llm"), r#"{"API_KEY":"sk-old"}"#).unwrap();
        place(dir.path(), "sk-just-the-key");
        let store = FileStore::new("local", dir.path());
        let err = store.read_pending(&target(Format::Json)).await.err();
        assert!(matches!(err, Some(StoreError::Shape { .. })), "{err:?}");

        fs::write(dir.path().join("llm"), "API_KEY=sk-old\n").unwrap();
        place(dir.path(), "OTHER=1\n");
        let err = store.read_pending(&target(Format::Env)).await.err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("holds no API_KEY"), "{text}");
    }
}
