//! Crash-safe file primitives: a file is either its old or its new content,
//! never torn, and a rename is durable once the call returns.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::failpoint;

/// Reads `path`; `None` when it does not exist.
pub fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` (mode 0600): temp file in the same
/// directory, fsync, rename over, fsync the directory.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent(path)?;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::now_v7()));
    let result = write_new(&tmp, contents).and_then(|()| rename(&tmp, path));
    if result.is_err() {
        // Best effort: a leftover temp file holds no state anyone reads.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `from` over `to` (same directory) and makes the rename durable.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    failpoint::io("rename")?;
    fs::rename(from, to)?;
    failpoint::io("dirsync")?;
    File::open(parent(to)?)?.sync_all()
}

/// Removes `path` durably; a missing file is not an error.
pub fn remove(path: &Path) -> io::Result<()> {
    failpoint::io("remove")?;
    match fs::remove_file(path) {
        Ok(()) => File::open(parent(path)?)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_new(tmp: &Path, contents: &[u8]) -> io::Result<()> {
    failpoint::io("write")?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // The umask can only narrow the mode, but set it anyway so it is exact.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    failpoint::io("fsync")?;
    file.sync_all()
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent directory"))
}

/// Creates `dir` and its parents with mode 0700 where missing.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
