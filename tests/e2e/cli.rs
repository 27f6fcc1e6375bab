//! The command line as a user meets it: errors are one clear line and a non-zero exit.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use moe_sovereign_e2e::gateway::binary;

fn run(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary())
        .args(args)
        .env("MOE_SOVEREIGN_HOME", home)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn without_a_keychain_the_error_names_the_file_store_and_the_opt_in_works() {
    let home = tempfile::tempdir().unwrap();
    let no_bus = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    let out = run(home.path(), &["keys", "create"], &no_bus);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "a key was printed although none was stored"
    );
    let message = stderr(&out);
    assert!(
        message.contains("no OS keychain is available")
            && message.contains("MOE_SOVEREIGN_SECRET_STORE=file"),
        "{message}"
    );
    assert!(
        !home.path().join("keys.json").exists(),
        "a key without its secret was recorded"
    );

    let file_store = [no_bus[0], ("MOE_SOVEREIGN_SECRET_STORE", "file")];
    let out = run(home.path(), &["keys", "create"], &file_store);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    for file in ["keys.json", "secrets.json"] {
        let mode = std::fs::metadata(home.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let out = run(home.path(), &["credential"], &file_store);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), key);
}

#[test]
fn bad_config_and_missing_keys_fail_with_a_clear_reason() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[[experts]]\nname = \"a\"\nkind = \"local\"\nbase_url = \"http://x\"\n\n[profiles.moe_fast]\n",
    )
    .unwrap();
    let out = run(home.path(), &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(!out.status.success());
    let message = stderr(&out);
    let config = home.path().join("config.toml");
    assert!(
        message.contains(&format!(
            "{}:3:8: expert \"a\": kind = \"local\" needs model",
            config.display()
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{}:6:11: unknown profile \"moe_fast\"",
            config.display()
        )),
        "{message}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path(), &["credential"], &[]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("no API key exists yet"),
        "{}",
        stderr(&out)
    );

    let out = run(empty.path(), &["serve", "--listen", "0.0.0.0:0"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--allow-remote"), "{}", stderr(&out));
}
