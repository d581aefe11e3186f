//! Checks made before anything is opened or bound: the database path, the media directory,
//! the listen address; each problem with what to do about it.

use std::sync::atomic::Ordering;

use crate::config::Settings;

/// Every problem with the database path, the media directory and the listen address, found
/// before anything is opened or bound, each with what to do about it.
pub fn preflight(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if settings.database_url.is_none() {
        problems.extend(database_problems(&settings.db_path));
    }
    problems.extend(media_problems(&settings.media_dir));
    if settings.dev_phone
        && !settings.dev_phone_forced
        && !crate::config::listens_on_loopback(&settings.addr)
    {
        problems.push(format!(
            "MOMENTLINE_DEV_PHONE: the dev phone lets anyone who reaches it text as any number, \
             and MOMENTLINE_ADDR ({}) is not a loopback address; listen on 127.0.0.1, or set \
             MOMENTLINE_DEV_PHONE=force to serve it anyway",
            settings.addr
        ));
    }
    use std::net::ToSocketAddrs;
    if settings
        .addr
        .to_socket_addrs()
        .map_or(true, |mut a| a.next().is_none())
    {
        problems.push(format!(
            "MOMENTLINE_ADDR '{}' is not an address to listen on: give host:port, e.g. \
             127.0.0.1:8080, or :8080 for every interface",
            settings.addr
        ));
    }
    problems
}

/// What stops momentline from keeping media in `media`, if anything.
pub fn media_problems(media: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    if media.exists() && !media.is_dir() {
        problems.push(format!(
            "MOMENTLINE_MEDIA_DIR {} is a file, not a directory",
            media.display()
        ));
    } else {
        // The directory, or the nearest one above it that exists (the rest is created).
        let existing = media
            .ancestors()
            .map(|a| {
                if a.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    a
                }
            })
            .find(|a| a.is_dir());
        match existing {
            Some(dir) if writable(dir) => {}
            Some(dir) => problems.push(format!(
                "MOMENTLINE_MEDIA_DIR {}: cannot write in {}; give access, or point \
                 MOMENTLINE_MEDIA_DIR elsewhere",
                media.display(),
                dir.display()
            )),
            None => problems.push(format!(
                "MOMENTLINE_MEDIA_DIR {}: no directory on its path exists",
                media.display()
            )),
        }
    }
    problems
}

/// What stops momentline from opening or creating the database at `db`, if anything.
pub fn database_problems(db: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    if db.is_dir() {
        problems.push(format!(
            "MOMENTLINE_DB {} is a directory: give the path of a database file in it, e.g. {}",
            db.display(),
            db.join("momentline.db").display()
        ));
    } else if db.exists() {
        let read_only = std::fs::metadata(db).map(|m| m.permissions().readonly());
        if read_only.unwrap_or(true) {
            problems.push(format!(
                "MOMENTLINE_DB {} cannot be written: give momentline write access to it",
                db.display()
            ));
        }
    } else {
        let parent = match db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if !parent.is_dir() {
            problems.push(format!(
                "MOMENTLINE_DB {}: the directory {} does not exist; create it, or point \
                 MOMENTLINE_DB elsewhere",
                db.display(),
                parent.display()
            ));
        } else if !writable(&parent) {
            problems.push(format!(
                "MOMENTLINE_DB {}: cannot create the database in {} (no write access); \
                 give access, or point MOMENTLINE_DB elsewhere",
                db.display(),
                parent.display()
            ));
        }
    }
    problems
}

/// Whether a file can be made in `dir`, answered by making one.
fn writable(dir: &std::path::Path) -> bool {
    // Named by process and call: two checks at once never take each other's file.
    static CHECKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CHECKS.fetch_add(1, Ordering::Relaxed);
    let probe = dir.join(format!(".momentline-check-{}-{call}", std::process::id()));
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    if made {
        let _ = std::fs::remove_file(&probe);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("settings")
    }

    #[test]
    fn every_problem_with_paths_and_address_is_found_before_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("file");
        let missing = dir.path().join("no/such/dir/momentline.db");
        let s = settings(&[
            ("MOMENTLINE_DB", missing.to_str().expect("utf-8")),
            ("MOMENTLINE_MEDIA_DIR", file.to_str().expect("utf-8")),
            ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ]);
        let problems = preflight(&s);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("MOMENTLINE_DB") && problems[0].contains("does not exist"));
        assert!(
            problems[1].starts_with("MOMENTLINE_MEDIA_DIR") && problems[1].contains("is a file")
        );
        // An address of the wrong form is the settings' to refuse, with their other problems.
        let refused = Settings::from_lookup(|name| {
            (name == "MOMENTLINE_ADDR").then(|| "no-port-here".to_owned())
        });
        assert!(refused.is_err_and(|e| e.to_string().starts_with("MOMENTLINE_ADDR")));

        let s = settings(&[("MOMENTLINE_DB", dir.path().to_str().expect("utf-8"))]);
        assert!(preflight(&s)[0].contains("is a directory"));

        // Relative paths (the defaults) are checked from the working directory.
        let relative = settings(&[("MOMENTLINE_ADDR", "127.0.0.1:0")]);
        assert!(
            preflight(&relative).is_empty(),
            "{:?}",
            preflight(&relative)
        );

        let fine = dir.path().join("momentline.db");
        let s = settings(&[
            ("MOMENTLINE_DB", fine.to_str().expect("utf-8")),
            ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ]);
        assert!(preflight(&s).is_empty(), "{:?}", preflight(&s));
    }

    #[test]
    fn serve_refuses_the_dev_phone_on_a_network_address_unless_forced() {
        for addr in [
            "0.0.0.0:8080",
            ":8080",
            "[::]:8080",
            "192.168.1.5:80",
            "m.example:80",
        ] {
            let on = settings(&[("MOMENTLINE_DEV_PHONE", "1"), ("MOMENTLINE_ADDR", addr)]);
            let problems = preflight(&on);
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("MOMENTLINE_DEV_PHONE")
                        && p.contains("MOMENTLINE_ADDR")
                        && p.contains("force")),
                "{addr}: {problems:?}"
            );
            let forced = settings(&[("MOMENTLINE_DEV_PHONE", "force"), ("MOMENTLINE_ADDR", addr)]);
            assert!(
                !preflight(&forced)
                    .iter()
                    .any(|p| p.starts_with("MOMENTLINE_DEV_PHONE")),
                "{addr}"
            );
        }
        let local = settings(&[
            ("MOMENTLINE_DEV_PHONE", "1"),
            ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ]);
        assert!(preflight(&local).is_empty(), "{:?}", preflight(&local));
    }
}
