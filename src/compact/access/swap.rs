//! The local swap of a compacted access day's partition folder (`compact --access` on a local
//! destination): atomic where Linux `renameat2(RENAME_EXCHANGE)` is available.

use super::*;

/// The local swap: builds the partition folder as it is to be (hard links of every file that
/// stays, and the day object) in a run's staging folder, exchanges it with the live folder in
/// one `renameat2(RENAME_EXCHANGE)`, then moves in what a conversion committed into the old
/// folder meanwhile, and removes the old folder with the run. Where the exchange is not
/// available, the day object is renamed in and the per-file objects removed after (the object
/// store order, with its window).
pub(super) fn swap_local(
    lake: &Lake,
    folder: &Path,
    body: Vec<u8>,
    remove: &[String],
) -> Result<()> {
    let io = |path: &std::path::Path, e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let live = lake
        .local_path(folder)
        .ok_or_else(|| Error::Internal("local swap on an object store".into()))?;
    let removed: BTreeSet<String> = remove
        .iter()
        .filter_map(|k| k.rsplit('/').next())
        .map(str::to_string)
        .collect();
    let run = lake.for_work(["lake"])?;
    let staged = run.write_key(&Path::from("swap"))?;
    let new = run
        .local_path(&staged)
        .ok_or_else(|| Error::Internal("local swap without a folder".into()))?;
    std::fs::create_dir_all(&new).map_err(|e| io(&new, e))?;
    let entries = std::fs::read_dir(&live).map_err(|e| io(&live, e))?;
    for e in entries {
        let e = e.map_err(|e| io(&live, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if removed.contains(&name) || name == DAY_FILE {
            continue;
        }
        std::fs::hard_link(e.path(), new.join(&name)).map_err(|err| io(&e.path(), err))?;
    }
    let day = new.join(DAY_FILE);
    std::fs::write(&day, body).map_err(|e| io(&day, e))?;
    stall_point("access-swap", folder.as_ref());
    match exchange(&live, &new) {
        Ok(()) => {
            // `new` now holds the old folder. Whatever a conversion renamed into it after the
            // links were made is moved into the live folder (a file that is not the one linked).
            stall_point("access-swapped", folder.as_ref());
            for e in std::fs::read_dir(&new).map_err(|e| io(&new, e))? {
                let e = e.map_err(|e| io(&new, e))?;
                let name = e.file_name().to_string_lossy().to_string();
                if removed.contains(&name) || name == DAY_FILE {
                    continue;
                }
                let target = live.join(&name);
                if !same_file(&e.path(), &target) {
                    std::fs::rename(e.path(), &target).map_err(|err| io(&target, err))?;
                }
            }
        }
        Err(e) => {
            tracing::warn!(folder = %live.display(), error = %e, "no atomic folder exchange here: the day object goes in first, then the per-file objects go");
            let target = live.join(DAY_FILE);
            std::fs::rename(&day, &target).map_err(|e| io(&target, e))?;
            for name in &removed {
                let p = live.join(name);
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&p, e)),
                }
            }
        }
    }
    // The old folder goes with the run's staging folder.
    drop(run);
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Exchanges two folders atomically (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn exchange(a: &std::path::Path, b: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    const RENAME_EXCHANGE: libc::c_uint = 1 << 1;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; the
    // syscall only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &std::path::Path, _: &std::path::Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no RENAME_EXCHANGE",
    ))
}
