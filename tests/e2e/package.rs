//! The .deb users install: `dpkg -i` puts the tray app and the CLI on PATH, the installed
//! binaries run (the CLI's gateway answers /health), and `dpkg -r` removes every file it
//! installed. The package comes from `scripts/package.sh` (the test command builds it and
//! names it in `MOE_SOVEREIGN_DEB`); installing needs root, as the test command runs in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moe_sovereign_e2e::tools::run_ok;

fn deb() -> PathBuf {
    let path = std::env::var_os("MOE_SOVEREIGN_DEB").map(PathBuf::from).unwrap_or_else(|| {
        panic!("MOE_SOVEREIGN_DEB is not set: scripts/test.sh builds the .deb (scripts/package.sh) and sets it")
    });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn field(deb: &Path, name: &str) -> String {
    let out = run_ok(
        {
            let mut c = Command::new("dpkg-deb");
            c.args(["--field"]).arg(deb).arg(name);
            c
        },
        "dpkg-deb --field",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_deb_installs_runs_and_removes_cleanly() {
    let deb = deb();
    let package = field(&deb, "Package");
    let depends = field(&deb, "Depends");
    assert!(depends.contains("libwebkit2gtk-4.1-0"), "{depends}");
    let contents = String::from_utf8(
        run_ok(
            {
                let mut c = Command::new("dpkg-deb");
                c.arg("--contents").arg(&deb);
                c
            },
            "dpkg-deb --contents",
        )
        .stdout,
    )
    .unwrap();
    for file in [
        "usr/bin/moe-sovereign-desktop",
        "usr/bin/moe-sovereign",
        ".desktop",
    ] {
        assert!(
            contents.contains(file),
            "{file} is not in the package:\n{contents}"
        );
    }

    run_ok(
        {
            let mut c = Command::new("dpkg");
            c.arg("-i").arg(&deb);
            c
        },
        "dpkg -i",
    );
    let version = run_ok(
        {
            let mut c = Command::new("/usr/bin/moe-sovereign-desktop");
            c.arg("--version");
            c
        },
        "moe-sovereign-desktop --version",
    );
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("moe-sovereign-desktop "));
    run_ok(
        {
            let mut c = Command::new("/usr/bin/moe-sovereign");
            c.arg("--version");
            c
        },
        "moe-sovereign --version",
    );
    // The installed gateway answers.
    let home = tempfile::tempdir().unwrap();
    let mut serve = Command::new("/usr/bin/moe-sovereign")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MOE_SOVEREIGN_HOME", home.path())
        .env("MOE_SOVEREIGN_SECRET_STORE", "file")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{url}/health"),
            ])
            .output()
            .unwrap();
        if out.stdout == b"200" {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(answered, "the installed gateway did not answer /health");

    let files = String::from_utf8(
        run_ok(
            {
                let mut c = Command::new("dpkg");
                c.args(["-L", &package]);
                c
            },
            "dpkg -L",
        )
        .stdout,
    )
    .unwrap();
    let installed: Vec<&str> = files.lines().filter(|f| Path::new(f).is_file()).collect();
    assert!(installed.contains(&"/usr/bin/moe-sovereign"), "{files}");
    run_ok(
        {
            let mut c = Command::new("dpkg");
            c.args(["-r", &package]);
            c
        },
        "dpkg -r",
    );
    for file in installed {
        assert!(
            !Path::new(file).exists(),
            "{file} is still there after dpkg -r"
        );
    }
    let status = Command::new("dpkg")
        .args(["-s", &package])
        .output()
        .unwrap();
    assert!(
        !status.status.success() || String::from_utf8_lossy(&status.stdout).contains("deinstall")
    );
}
