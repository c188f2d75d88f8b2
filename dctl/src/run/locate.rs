//! [`locate`]: the file a service's `command` names, found before anything starts so a typo
//! fails the run with one line instead of after the node and the services before it started.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::run::manifest::{Program, Service};

/// The executable `service` runs: its `command` if it has a '/', else the first match on
/// `PATH` (the service's own `env.PATH` if it sets one, else dctl's). Its `cwd` must be a
/// folder.
///
/// # Errors
/// Why it cannot start, on one line.
pub(crate) fn locate(service: &Service) -> Result<PathBuf, String> {
    if !service.cwd.is_dir() {
        return Err(format!("its cwd {} is not a folder", service.cwd.display()));
    }
    match &service.program {
        Program::Path(path) if is_executable(path) => Ok(path.clone()),
        Program::Path(path) if path.exists() => {
            Err(format!("{} is not an executable file", path.display()))
        }
        Program::Path(path) => Err(format!("{} does not exist", path.display())),
        Program::Search(name) => {
            let path = service
                .env
                .get("PATH")
                .map(OsString::from)
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_default();
            std::env::split_paths(&path)
                // An empty or relative entry is relative to the working folder, as in a shell.
                .map(|dir| service.cwd.join(dir).join(name))
                .find(|candidate| is_executable(candidate))
                .ok_or_else(|| {
                    let hint = if name.contains(char::is_whitespace) {
                        " (no shell: put arguments in `args`)"
                    } else {
                        ""
                    };
                    format!("`{name}` is not found on PATH{hint}")
                })
        }
    }
}

/// A file someone may execute.
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::run::restart::Restart;

    fn service(program: Program, cwd: &Path, env: &[(&str, &str)]) -> Service {
        Service {
            name: "s".to_owned(),
            program,
            args: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            cwd: cwd.to_path_buf(),
            restart: Restart::Never,
            grace: None,
        }
    }

    fn script(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_path_must_be_an_executable_file() {
        let dir = tempfile::tempdir().expect("dir");
        let run = script(dir.path(), "run", 0o755);
        let plain = script(dir.path(), "plain", 0o644);
        let at = |p: PathBuf| locate(&service(Program::Path(p), dir.path(), &[]));
        assert_eq!(at(run.clone()), Ok(run));
        assert!(at(plain).is_err_and(|e| e.contains("not an executable")));
        assert!(at(dir.path().join("none")).is_err_and(|e| e.contains("does not exist")));
        assert!(at(dir.path().to_path_buf()).is_err_and(|e| e.contains("not an executable")));
    }

    #[test]
    fn a_bare_name_is_found_on_the_services_path() {
        let dir = tempfile::tempdir().expect("dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let tool = script(&bin, "tool", 0o755);
        let path = format!("/nonexistent:{}", bin.display());
        let s = service(
            Program::Search("tool".to_owned()),
            dir.path(),
            &[("PATH", &path)],
        );
        assert_eq!(locate(&s), Ok(tool));
        let relative = service(
            Program::Search("tool".to_owned()),
            dir.path(),
            &[("PATH", "bin")],
        );
        assert_eq!(locate(&relative), Ok(bin.join("tool")));
    }

    #[test]
    fn a_missing_name_or_folder_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let s = service(
            Program::Search("no such".to_owned()),
            dir.path(),
            &[("PATH", "/nonexistent")],
        );
        let e = locate(&s).expect_err("missing");
        assert!(e.contains("not found on PATH") && e.contains("args"), "{e}");
        let gone = service(
            Program::Search("sh".to_owned()),
            &dir.path().join("gone"),
            &[],
        );
        assert!(locate(&gone).is_err_and(|e| e.contains("not a folder")));
    }
}
