//! Files the daemon writes (the drift file, the NTS master key file):
//! whole, or not at all, and never through a link someone planted.

use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes `contents` to `path` through a temporary file and a rename, so
/// that a crash never leaves half a file.
///
/// The temporary file `PATH.tmp` is created afresh (`O_CREAT | O_EXCL`,
/// with `mode`), which never follows a symbolic link: a link planted
/// there by whoever can write the folder is removed (the link, not its
/// target), and if another appears in its place the write fails instead
/// of truncating the link's target. The rename replaces `PATH` itself,
/// never what a link at `PATH` points to. The data reach the disk before
/// the rename.
///
/// # Errors
///
/// The file system's, and `AlreadyExists` when something keeps
/// reappearing at `PATH.tmp`.
pub(crate) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(temporary)
    };
    let mut file = match create() {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // A leftover of a crash, or something planted: remove that
            // entry (unlink never follows a link) and try once more.
            std::fs::remove_file(temporary)?;
            create()?
        }
        other => other?,
    };
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temporary, path)
}
